//! The bare engine calls the benchmarks compare Seaworthy with (each bench uses some of them).
#![allow(dead_code)]

use std::collections::HashMap;

use futures_util::StreamExt;
use seaworthy::bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
};
use seaworthy::bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions,
};
use seaworthy::Session;

/// With `RUST_LOG` set (`RUST_LOG=seaworthy=debug,bollard=debug`), prints the library's and the
/// client's events with their times on stderr: the steps of a start or a restore and the engine
/// requests each side makes.
pub fn trace_from_env() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
}

/// The busybox test image.
pub const IMAGE: &str = "seaworthy-test/busybox";
/// What its containers run: a line to wait for, then sleep.
pub const SCRIPT: &str = "echo ready; exec sleep 3600";

/// The bare engine calls a start-to-ready needs: create (the session's labels, on `network` or
/// the engine's default bridge, named `NAMESPACE-bare-N` when `n` is given), start, and follow
/// the log until the line appears. Returns the container's id.
pub async fn bare_start(session: &Session, network: Option<&str>, n: Option<usize>) -> String {
    let docker = session.engine().docker();
    let name = n.map(|n| format!("{}-bare-{n}", session.namespace()));
    let id = docker
        .create_container(
            Some(CreateContainerOptions {
                name,
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(IMAGE.into()),
                cmd: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
                labels: Some(session.labels()),
                host_config: Some(HostConfig {
                    network_mode: network.map(str::to_string),
                    ..Default::default()
                }),
                networking_config: network.map(|n| NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(
                        n.to_string(),
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

/// Removes a container made by [`bare_start`] (force, with its volumes).
pub async fn bare_remove(session: &Session, id: &str) {
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

/// Creates a bridge network `name` with the session's labels, as a stack creates its own.
pub async fn bare_network(session: &Session, name: &str) -> String {
    session
        .engine()
        .docker()
        .create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(session.labels()),
            ..Default::default()
        })
        .await
        .expect("create a network")
        .id
}

/// Removes a network made by [`bare_network`].
pub async fn bare_network_remove(session: &Session, id: &str) {
    session
        .engine()
        .docker()
        .remove_network(id)
        .await
        .expect("remove a network");
}
