//! Warm standby: a container pre-started from a snapshot, so that a restore is a swap.
//!
//! [`Container::enable_standby`] starts a second container from the snapshot, off every network
//! and with ports of its own, and waits until it is ready. A later [`Container::restore`] of that
//! snapshot then swaps instead of re-creating: the standby takes the container's name and network
//! aliases, the old container is removed in the background, and a new standby is prepared in the
//! background for the next restore.
//!
//! Host ports cannot move from one container to another while both exist, so with a standby the
//! published TCP ports are served by a small proxy in the test process, which forwards to whichever
//! container is current: [`Container::host_port`] returns the proxy's port from
//! `enable_standby` on, and it stays the same across restores. Enable the standby before handing out
//! connection strings (`SnapshotFixture::with_standby` does). UDP ports cannot be proxied: a
//! container publishing UDP cannot have a standby.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest};
use bollard::query_parameters::RenameContainerOptions;
use tokio::net::{TcpListener, TcpStream};

use crate::container::{Container, Inner};
use crate::error::{Error, Result};
use crate::runtime::{on_runtime, runtime};
use crate::session::ResourceKind;
use crate::snapshot::Snapshot;
use crate::spec::Protocol;

/// A TCP listener on the host that forwards every connection to the current backend.
pub(crate) struct PortProxy {
    pub(crate) port: u16,
    backend: Arc<RwLock<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl PortProxy {
    async fn bind(backend: String) -> std::io::Result<PortProxy> {
        let listener = TcpListener::bind(("0.0.0.0", 0)).await?;
        let port = listener.local_addr()?.port();
        let backend = Arc::new(RwLock::new(backend));
        let current = backend.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = current.read().unwrap_or_else(|e| e.into_inner()).clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(PortProxy {
            port,
            backend,
            task,
        })
    }

    fn point_at(&self, backend: String) {
        *self.backend.write().unwrap_or_else(|e| e.into_inner()) = backend;
    }
}

impl Drop for PortProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A ready standby container.
struct Ready {
    id: String,
    name: String,
    ports: HashMap<(u16, Protocol), u16>,
}

/// The standby of one container: its proxies, the snapshot it mirrors, and the next standby.
pub(crate) struct StandbyState {
    proxies: HashMap<(u16, Protocol), PortProxy>,
    snapshot: Snapshot,
    next: tokio::sync::Mutex<Next>,
}

/// The next standby.
enum Next {
    None,
    Preparing(tokio::task::JoinHandle<Result<Ready>>),
    Ready(Ready),
}

impl Next {
    /// Waits for a standby being prepared; the error of a failed preparation is returned once.
    async fn settle(&mut self) -> Result<()> {
        if matches!(self, Next::Preparing(_)) {
            let Next::Preparing(task) = std::mem::replace(self, Next::None) else {
                return Ok(());
            };
            let ready = task
                .await
                .map_err(|e| Error::io("prepare a standby", std::io::Error::other(e)))??;
            *self = Next::Ready(ready);
        }
        Ok(())
    }
}

impl StandbyState {
    /// The proxy's host port for `port`, if proxied.
    pub(crate) fn public_port(&self, key: &(u16, Protocol)) -> Option<u16> {
        self.proxies.get(key).map(|p| p.port)
    }

    /// The snapshot the standby mirrors.
    pub(crate) fn snapshot_image(&self) -> &str {
        &self.snapshot.image_id
    }
}

impl Container {
    /// Prepares a warm standby from `snapshot`: later restores of it are swaps (see the
    /// [module docs](crate::standby) for how host ports are kept).
    pub async fn enable_standby(&self, snapshot: &Snapshot) -> Result<()> {
        let inner = self.inner.clone();
        let snapshot = snapshot.clone();
        on_runtime(async move {
            if inner
                .definition
                .ports
                .iter()
                .any(|p| p.protocol != Protocol::Tcp)
            {
                return Err(Error::Container {
                    container: inner.name.clone(),
                    reason:
                        "a standby needs every published port to be TCP (UDP cannot be proxied)"
                            .into(),
                });
            }
            let host = inner.session.engine().host().to_string();
            let engine_ports = inner
                .ports
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let mut proxies = HashMap::new();
            for (key, engine_port) in engine_ports {
                let proxy = PortProxy::bind(crate::engine::host_with_port(&host, engine_port))
                    .await
                    .map_err(|e| {
                        Error::io(format!("bind a port proxy for container {}", inner.name), e)
                    })?;
                proxies.insert(key, proxy);
            }
            let state = Arc::new(StandbyState {
                proxies,
                snapshot: snapshot.clone(),
                next: tokio::sync::Mutex::new(Next::None),
            });
            *state.next.lock().await = Next::Preparing(spawn_prepare(inner.clone(), snapshot));
            *inner.standby.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
            Ok(())
        })
        .await
    }
}

impl Container {
    /// Waits until the next standby is ready (restores then take only the swap). Errors if
    /// preparing it failed, or if no standby is enabled.
    pub async fn wait_for_standby(&self) -> Result<()> {
        let inner = self.inner.clone();
        on_runtime(async move {
            let state = inner
                .standby
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let Some(state) = state else {
                return Err(Error::Container {
                    container: inner.name.clone(),
                    reason: "no standby is enabled (call enable_standby first)".into(),
                });
            };
            let mut next = state.next.lock().await;
            next.settle().await
        })
        .await
    }
}

fn spawn_prepare(inner: Arc<Inner>, snapshot: Snapshot) -> tokio::task::JoinHandle<Result<Ready>> {
    runtime().spawn(async move { prepare(&inner, &snapshot).await })
}

/// Creates and starts a standby container from `snapshot`, off every network, and waits for it.
async fn prepare(inner: &Inner, snapshot: &Snapshot) -> Result<Ready> {
    let mut def = snapshot.definition_over(&inner.definition);
    def.engine_name = Some(format!(
        "{}-standby-{:06x}",
        inner.name,
        rand::random::<u32>() & 0xff_ffff
    ));
    def.session_network = crate::definition::SessionNetwork::Never;
    def.networks.clear();
    def.network_mode = None;
    def.aliases.clear();
    def.hostname = def.hostname.or_else(|| def.name.clone());
    def.run_scoped = false;
    for p in &mut def.ports {
        p.host_port = None;
        p.host_ip = None;
    }
    let wait = def.wait.clone();
    let deadline = Instant::now() + def.startup_timeout;
    let standby = Box::pin(crate::container::start::create_here(
        def,
        inner.session.clone(),
    ))
    .await?;
    // On failure, dropping the handle removes the half-made standby.
    crate::container::start::start_here(&standby.inner, wait.as_ref(), deadline).await?;
    crate::container::refresh_ports(&standby.inner).await?;
    let ready = Ready {
        id: standby.id(),
        name: standby.name().to_string(),
        ports: standby
            .inner
            .ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    };
    // The standby is owned by `inner` from now on (still tracked by the session for teardown).
    standby.disown();
    Ok(ready)
}

/// Swaps the ready standby in for `inner`'s container; returns false when `snapshot` is not the
/// standby's (the caller then restores the slow way).
pub(crate) async fn try_swap(inner: &Arc<Inner>, snapshot: &Snapshot) -> Result<bool> {
    let Some(state) = inner
        .standby
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    else {
        return Ok(false);
    };
    if state.snapshot_image() != snapshot.image_id {
        return Ok(false);
    }
    let started = Instant::now();
    let ready = {
        let mut next = state.next.lock().await;
        next.settle().await?;
        match std::mem::replace(&mut *next, Next::None) {
            Next::Ready(ready) => ready,
            _ => prepare(inner, snapshot).await?,
        }
    };
    tracing::debug!(elapsed = ?started.elapsed(), "standby swap: standby in hand");
    let docker = inner.docker();
    let host = inner.session.engine().host().to_string();
    // 1. New connections from the host go to the standby.
    for (key, proxy) in &state.proxies {
        if let Some(port) = ready.ports.get(key) {
            proxy.point_at(crate::engine::host_with_port(&host, *port));
        }
    }
    // 2. Names and networks: the old container steps aside, the standby takes its place.
    let old_id = inner.id();
    let retired = retired_name(&inner.name);
    let mut joins: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(network) =
        crate::container::start::session_network_for(&inner.definition, &inner.session, None)
            .await?
    {
        let mut aliases = inner.definition.aliases.clone();
        aliases.extend(inner.definition.name.clone());
        joins.push((network, aliases));
    }
    joins.extend(
        inner
            .definition
            .networks
            .iter()
            .map(|j| (j.network.clone(), j.aliases.clone())),
    );
    // The renames must follow each other (one name), but the network calls need not wait for
    // them, nor for each other: all of it is one round of engine calls. While it runs, a peer
    // resolving an alias may still get the old container; once restore returns, only the
    // standby holds the name and the aliases.
    let renames = async {
        docker
            .rename_container(
                &old_id,
                RenameContainerOptions {
                    name: retired.clone(),
                },
            )
            .await
            .map_err(|e| Error::docker(format!("rename container {} aside", inner.name), e))?;
        docker
            .rename_container(
                &ready.id,
                RenameContainerOptions {
                    name: inner.name.clone(),
                },
            )
            .await
            .map_err(|e| {
                Error::docker(
                    format!("rename standby {} to {}", ready.name, inner.name),
                    e,
                )
            })
    };
    let disconnect_old = futures_util::future::join_all(joins.iter().map(|(network, _)| {
        docker.disconnect_network(
            network,
            NetworkDisconnectRequest {
                container: old_id.clone(),
                force: Some(true),
            },
        )
    }));
    let connect = futures_util::future::join_all(joins.iter().map(|(network, aliases)| {
        docker.connect_network(
            network,
            NetworkConnectRequest {
                container: ready.id.clone(),
                endpoint_config: Some(EndpointSettings {
                    aliases: Some(aliases.clone()),
                    ..Default::default()
                }),
            },
        )
    }));
    let phase = Instant::now();
    let (renamed, _, connected) = tokio::join!(renames, disconnect_old, connect);
    tracing::debug!(elapsed = ?phase.elapsed(), networks = joins.len(), "standby swap: renamed, networks moved");
    renamed?;
    for c in connected {
        c.map_err(|e| {
            Error::docker(
                format!("connect container {} to its networks", inner.name),
                e,
            )
        })?;
    }
    // 3. Bookkeeping; the old container goes in the background, a new standby comes.
    inner.set_id(ready.id.clone());
    *inner.ports.lock().unwrap_or_else(|e| e.into_inner()) = ready.ports;
    inner.session.untrack(ResourceKind::Container, &old_id);
    inner
        .session
        .track(ResourceKind::Container, &old_id, &retired);
    inner
        .session
        .remove_in_background(ResourceKind::Container, old_id, retired);
    *state.next.lock().await = Next::Preparing(spawn_prepare(inner.clone(), snapshot.clone()));
    tracing::debug!(container = %inner.name, elapsed = ?started.elapsed(), "restored by swapping in the standby");
    Ok(true)
}

/// The name a replaced container steps aside to (its own name goes to its replacement) until it
/// is removed in the background.
pub(crate) fn retired_name(name: &str) -> String {
    format!("{name}-retired-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Removes a standby that was prepared but never used (when its container goes).
pub(crate) fn discard(state: &StandbyState, session: &crate::session::Session) {
    if let Ok(mut next) = state.next.try_lock() {
        let session = session.clone();
        match std::mem::replace(&mut *next, Next::None) {
            Next::Preparing(task) => {
                runtime().spawn(async move {
                    if let Ok(Ok(ready)) = task.await {
                        session.remove_in_background(ResourceKind::Container, ready.id, ready.name);
                    }
                });
            }
            Next::Ready(ready) => {
                session.remove_in_background(ResourceKind::Container, ready.id, ready.name)
            }
            Next::None => {}
        }
    }
}

impl StandbyState {
    /// Points the proxies at the container's current engine ports (after a slow restore).
    pub(crate) fn follow(&self, host: &str, ports: &HashMap<(u16, Protocol), u16>) {
        for (key, proxy) in &self.proxies {
            if let Some(port) = ports.get(key) {
                proxy.point_at(crate::engine::host_with_port(host, *port));
            }
        }
    }
}
