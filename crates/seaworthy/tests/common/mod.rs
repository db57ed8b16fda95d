//! Helpers shared by the core crate's integration tests.
#![allow(dead_code)]

use seaworthy::{ContainerDefinition, Session, Wait};

/// The busybox test image (built by `cargo xtask images`).
pub const BUSYBOX: &str = "seaworthy-test/busybox";
/// The shell-less FROM-scratch test image.
pub const SCRATCH: &str = "seaworthy-test/scratch";
/// The nginx test image.
pub const NGINX: &str = "seaworthy-test/nginx";

/// A busybox container that prints `ready` and then sleeps.
pub fn sleeper() -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
        .with_wait(Wait::log("^ready$"))
}

/// Whether the engine still knows a container by id.
pub async fn container_exists(session: &Session, id: &str) -> bool {
    match session.engine().docker().inspect_container(id, None).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => false,
        Err(e) => panic!("inspect {id}: {e}"),
    }
}

/// Installs a tracing subscriber once (RUST_LOG selects what is shown).
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
