//! Suite `start`: Seaworthy's start-to-ready and teardown against the bare engine calls they need.
//!
//! `cargo bench -p seaworthy --bench start` (needs `cargo xtask images`).

use std::collections::HashMap;
use std::time::Instant;

use futures_util::StreamExt;
use seaworthy::bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig,
};
use seaworthy::bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions,
};
use seaworthy::{ContainerDefinition, Session, Wait};
use seaworthy_benchkit::Suite;

const IMAGE: &str = "seaworthy-test/busybox";
const SCRIPT: &str = "echo ready; exec sleep 3600";

fn seaworthy_definition() -> ContainerDefinition {
    ContainerDefinition::new(IMAGE)
        .with_cmd(["sh", "-c", SCRIPT])
        .with_wait(Wait::log("^ready$"))
}

/// The bare engine calls a start-to-ready needs: create (same labels, same network), start, and
/// follow the log until the line appears.
async fn bare_start(session: &Session, network: &str, n: usize) -> String {
    let docker = session.engine().docker();
    let name = format!("{}-bare-{n}", session.namespace());
    let id = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(IMAGE.into()),
                cmd: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
                labels: Some(session.labels()),
                host_config: Some(HostConfig {
                    network_mode: Some(network.into()),
                    ..Default::default()
                }),
                networking_config: Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(
                        network.to_string(),
                        EndpointSettings::default(),
                    )])),
                }),
                ..Default::default()
            },
        )
        .await
        .expect("create")
        .id;
    docker.start_container(&id, None).await.expect("start");
    let mut logs = docker.logs(
        &id,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    );
    while let Some(chunk) = logs.next().await {
        if chunk.expect("logs").to_string().contains("ready") {
            break;
        }
    }
    id
}

async fn bare_remove(session: &Session, id: &str) {
    session
        .engine()
        .docker()
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
        .expect("remove");
}

fn main() {
    let mut suite = Suite::new("start");
    let session = suite.block_on(Session::global()).expect("a Docker engine");
    let network = suite
        .block_on(session.network_name())
        .expect("session network");
    // Warm up both paths (image cache, network, first connections).
    suite.block_on(async {
        seaworthy_definition()
            .start()
            .await
            .expect("warm-up")
            .remove()
            .await
            .expect("remove");
        let id = bare_start(&session, &network, 0).await;
        bare_remove(&session, &id).await;
    });

    let mut n = 0;
    suite.compare(
        "busybox.start_to_ready",
        "bare engine: create, start, follow log",
        20,
        || async {
            let t = Instant::now();
            let c = seaworthy_definition().start().await.expect("start");
            let elapsed = t.elapsed();
            c.remove().await.expect("remove");
            elapsed
        },
        || {
            n += 1;
            let (session, network) = (session.clone(), network.clone());
            async move {
                let t = Instant::now();
                let id = bare_start(&session, &network, n).await;
                let elapsed = t.elapsed();
                bare_remove(&session, &id).await;
                elapsed
            }
        },
    );

    let mut n = 1000;
    suite.compare(
        "busybox.teardown",
        "bare engine: remove (force, volumes)",
        20,
        || async {
            let c = seaworthy_definition().start().await.expect("start");
            let t = Instant::now();
            c.remove().await.expect("remove");
            t.elapsed()
        },
        || {
            n += 1;
            let (session, network) = (session.clone(), network.clone());
            async move {
                let id = bare_start(&session, &network, n).await;
                let t = Instant::now();
                bare_remove(&session, &id).await;
                t.elapsed()
            }
        },
    );
    suite.finish();
}
