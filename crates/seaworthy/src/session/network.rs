//! The session's networks and volumes: its bridge network (created by the first container with a
//! name or alias; the containers already on the default bridge join it then), the network shared by
//! the run's shared containers, and named session volumes.

use std::collections::HashMap;
use std::time::Instant;

use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};

use super::handle::{BridgeMembers, ResourceKind, Session};
use crate::error::{status_of, Error, Result};
use crate::runtime::on_runtime;

impl Session {
    /// The session's bridge network, created on first use (by the first container with a name
    /// or alias, or by this call). From then on every container of this session is on it unless
    /// told otherwise, reachable there by its name: the containers started on the default bridge
    /// before it existed join it as it is created.
    pub async fn network_name(&self) -> Result<String> {
        let session = self.clone();
        on_runtime(async move {
            let mut slot = session.0.network.lock().await;
            if let Some(name) = slot.as_ref() {
                return Ok(name.clone());
            }
            let name = session.0.namespace.clone();
            let request = NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                labels: Some(session.labels()),
                ..Default::default()
            };
            let started = Instant::now();
            let created = session
                .0
                .engine
                .docker()
                .create_network(request)
                .await
                .map_err(|e| Error::docker(format!("create network {name}"), e))?;
            session.track(ResourceKind::Network, &created.id, &name);
            tracing::debug!(network = %name, elapsed = ?started.elapsed(), "created the session network");
            *slot = Some(name.clone());
            // The containers already on the default bridge join now (those still being created
            // join themselves when their create returns; see `bridge_member_created`).
            let waiting: Vec<String> = {
                let mut bridge = session.bridge();
                bridge.network = Some(name.clone());
                let (created, creating) = std::mem::take(&mut bridge.members)
                    .into_iter()
                    .partition(|(_, created)| *created);
                bridge.members = creating;
                created.into_iter().map(|(n, _)| n).collect()
            };
            // By engine name: a container removed since is skipped (404), and one whose warm
            // standby took its name is replaced by that standby.
            let joins = waiting
                .into_iter()
                .map(|container| session.connect_to_network(&name, container));
            for joined in futures_util::future::join_all(joins).await {
                if let Err(e) = joined {
                    tracing::warn!("an earlier container stays off the session network: {e}");
                }
            }
            tracing::debug!(network = %name, elapsed = ?started.elapsed(), "the earlier containers joined the session network");
            Ok(name)
        })
        .await
    }

    /// The network shared by the run's shared containers (`sw-<run>`), found or created under a
    /// cross-process lock. It belongs to the run, like they do.
    pub async fn run_network_name(&self) -> Result<String> {
        let session = self.clone();
        on_runtime(async move {
            let name = session.run_namespace();
            let lock = crate::state::lock_file(
                format!("run-{}-network.lock", session.0.run_id),
                "run network",
            )
            .await?;
            let docker = session.0.engine.docker();
            let existing = docker
                .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
                    filters: Some(HashMap::from([(
                        "name".to_string(),
                        vec![format!("^{name}$")],
                    )])),
                }))
                .await
                .map_err(|e| Error::docker(format!("look up network {name}"), e))?;
            if existing
                .iter()
                .all(|n| n.name.as_deref() != Some(name.as_str()))
            {
                docker
                    .create_network(NetworkCreateRequest {
                        name: name.clone(),
                        driver: Some("bridge".into()),
                        labels: Some(session.run_labels()),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| Error::docker(format!("create network {name}"), e))?;
            }
            drop(lock);
            Ok(name)
        })
        .await
    }

    /// Forgets the session network (after the engine lost it), so the next use recreates it.
    pub(crate) async fn forget_network(&self) {
        *self.0.network.lock().await = None;
        self.bridge().network = None;
    }

    pub(super) fn bridge(&self) -> std::sync::MutexGuard<'_, BridgeMembers> {
        self.0.bridge.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session network if it exists; otherwise `None`, and the container about to be created
    /// as `name` on the default bridge joins it once it exists.
    pub(crate) fn session_network_or_wait(&self, name: &str) -> Option<String> {
        let mut bridge = self.bridge();
        if bridge.network.is_some() {
            return bridge.network.clone();
        }
        if !bridge.members.iter().any(|(n, _)| n == name) {
            bridge.members.push((name.to_string(), false));
        }
        None
    }

    /// The session network if it exists, without creating it.
    pub(crate) fn existing_session_network(&self) -> Option<String> {
        self.bridge().network.clone()
    }

    /// Records that the container `name`, created on the default bridge, now exists; returns the
    /// session network when it appeared in the meantime (the container must then join it).
    pub(crate) fn bridge_member_created(&self, name: &str) -> Option<String> {
        let mut bridge = self.bridge();
        let position = bridge.members.iter().position(|(n, _)| n == name)?;
        if bridge.network.is_some() {
            bridge.members.remove(position);
            return bridge.network.clone();
        }
        bridge.members[position].1 = true;
        None
    }

    /// Forgets a default-bridge container (its create failed, or it was removed).
    pub(crate) fn bridge_member_gone(&self, name: &str) {
        self.bridge().members.retain(|(n, _)| n != name);
    }

    /// Connects the container `container` to `network`, without aliases. A container removed in
    /// the meantime is not an error.
    pub(crate) async fn connect_to_network(&self, network: &str, container: String) -> Result<()> {
        let joined = self
            .0
            .engine
            .docker()
            .connect_network(
                network,
                bollard::models::NetworkConnectRequest {
                    container: container.clone(),
                    endpoint_config: Some(Default::default()),
                },
            )
            .await;
        match joined {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(Error::docker(
                format!("connect container {container} to network {network}"),
                e,
            )),
        }
    }

    /// The engine name of the session volume the user calls `name`, created on first use.
    pub async fn volume_name(&self, name: &str) -> Result<String> {
        let session = self.clone();
        let name = name.to_string();
        on_runtime(async move {
            let mut volumes = session.0.volumes.lock().await;
            if let Some(engine_name) = volumes.get(&name) {
                return Ok(engine_name.clone());
            }
            let engine_name = session.scoped_name(&name);
            session
                .0
                .engine
                .docker()
                .create_volume(VolumeCreateRequest {
                    name: Some(engine_name.clone()),
                    labels: Some(session.labels()),
                    ..Default::default()
                })
                .await
                .map_err(|e| Error::docker(format!("create volume {engine_name}"), e))?;
            session.track(ResourceKind::Volume, &engine_name, &engine_name);
            volumes.insert(name, engine_name.clone());
            Ok(engine_name)
        })
        .await
    }
}
