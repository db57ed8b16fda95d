//! Helpers shared by the core crate's integration tests.
#![allow(dead_code)]

use std::collections::HashMap;

use seaworthy::bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
};
use seaworthy::{
    Container, ContainerDefinition, Session, StackDefinition, StackFixture, Wait, LABEL_STACK,
};

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

/// A busybox web server on port 80 (published) that answers `body` at `/ping`, ready once it does.
pub fn web_server(body: &str) -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd([
            "sh".to_string(),
            "-c".to_string(),
            format!("mkdir /www && echo {body} > /www/ping && exec httpd -f -p 80 -h /www"),
        ])
        .with_port(80)
        .with_wait(Wait::http(80, "/ping"))
}

/// A session of the test's own (its own namespace, network and teardown) on the engine the
/// global session found: `DOCKER_HOST`, a Docker context or the local socket, as for any test.
pub async fn own_session() -> Session {
    Session::with_engine(Session::global().await.unwrap().engine().clone())
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

// Child processes of this test binary that stay in this process's test run (the helpers live in
// seaworthy-testkit, with those of children in a run of their own).
#[allow(unused_imports)]
pub use seaworthy_testkit::{child_command, ids_in, read_ids, run_ignored_tests};

/// A stack fixture named `name`: `web` (busybox httpd serving `/www/v`, `base` at the baseline;
/// the primary member) and `client` (a busybox that sleeps, to fetch `http://web/v`).
pub fn web_and_client(name: &str) -> StackFixture {
    StackFixture::new(
        StackDefinition::new(name)
            .with_container(
                "web",
                ContainerDefinition::new(BUSYBOX)
                    .with_cmd([
                        "sh",
                        "-c",
                        "mkdir -p /www && echo base > /www/v && exec httpd -f -p 80 -h /www",
                    ])
                    .with_port(80)
                    .with_wait(Wait::http(80, "/v")),
            )
            .with_container("client", sleeper()),
        "web",
    )
}

/// The body of a child test that fails with a fixture: writes `contents` to `path` in its
/// container (the state `SEAWORTHY_KEEP_ON_FAILURE=1` keeps), prints the container's `ID=` line
/// for the parent, and panics.
pub async fn dirty_and_fail(container: &Container, path: &str, contents: &str) {
    container.write_file(path, contents, 0o644).await.unwrap();
    println!("ID={}", container.id());
    panic!("deliberately failing");
}

/// Containers, networks and volumes labelled with stack `id` that the engine still has.
pub async fn leftovers(session: &Session, id: &str) -> Vec<String> {
    let docker = session.engine().docker();
    let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_STACK}={id}")])]);
    let mut left = Vec::new();
    for c in docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .unwrap()
    {
        left.push(format!("container {:?}", c.names.unwrap_or_default()));
    }
    for n in docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .unwrap()
    {
        left.push(format!("network {}", n.name.unwrap_or_default()));
    }
    for v in docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .unwrap()
        .volumes
        .unwrap_or_default()
    {
        left.push(format!("volume {}", v.name));
    }
    left
}
