//! Sessions: who owns which Docker resources, and how they are removed whatever happens.
//!
//! A [`Session`] belongs to one test process. It labels everything it creates with
//! [`LABEL_MANAGED`], [`LABEL_SESSION`] (the id shared by all processes of one test run: nextest's
//! `NEXTEST_RUN_ID`, else a hash of the parent process id and start time, so every test binary that
//! `cargo test` runs shares it) and [`LABEL_OWNER`] (this process: pid and start time, so a sweep can
//! tell a dead owner from a live one). Names are prefixed with the session's namespace
//! (`sw-<run>-<process>`), so two runs, or two processes of one run, never collide.
//!
//! Ownership starts with the API call that creates a resource: from then on the session tracks it
//! until it is removed, by its handle ([`Container::remove`](crate::Container::remove) or drop), by
//! [`Session::teardown`], or at process exit (an `atexit` hook, which also runs after a panicking or
//! failing test) or on SIGINT/SIGTERM. Teardown removes containers, then networks, then volumes, then
//! images, each kind in parallel. `SEAWORTHY_KEEP=1` keeps everything for debugging (it is listed at
//! exit instead).
//!
//! All engine calls run on a small runtime owned by the library, so handles work from any async
//! runtime (each `#[tokio::test]` has its own) and can be removed from `Drop`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{RemoveContainerOptions, RemoveImageOptions, RemoveVolumeOptions};

use crate::engine::Engine;
use crate::error::{status_of, Error, Result};

/// Label on every resource Seaworthy creates.
pub const LABEL_MANAGED: &str = "io.seaworthy.managed";
/// Label naming the test run (shared by all processes of the run).
pub const LABEL_SESSION: &str = "io.seaworthy.session";
/// Label naming the owning process as `pid:start-time`, or [`OWNER_RUN`] for resources shared by
/// the whole test run.
pub const LABEL_OWNER: &str = "io.seaworthy.owner";
/// Label naming the process that runs the tests (`cargo`, `cargo-nextest`) as `pid:start-time`:
/// resources shared per run live until it is gone.
pub const LABEL_RUNNER: &str = "io.seaworthy.runner";
/// Label naming the machine whose processes the owner and runner labels refer to.
pub const LABEL_HOST: &str = "io.seaworthy.host";
/// Label marking a container shared per run, with the key of its fixture definition.
pub const LABEL_FIXTURE: &str = "io.seaworthy.fixture";
/// The owner of resources shared by every process of a test run.
pub const OWNER_RUN: &str = "run";

/// How long teardown at exit waits for removals before giving up.
const EXIT_TEARDOWN_DEADLINE: Duration = Duration::from_secs(60);

/// A kind of Docker resource, in teardown order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// A container (removed with force and its anonymous volumes).
    Container,
    /// A network.
    Network,
    /// A volume.
    Volume,
    /// An image (snapshots and builds).
    Image,
}

#[derive(Default)]
struct Tracker {
    /// Live resources by kind: engine id or name -> display name.
    live: Mutex<HashMap<ResourceKind, HashMap<String, String>>>,
    /// Removals running in the background, and a condition variable signalled when one ends.
    pending: Mutex<usize>,
    idle: Condvar,
}

/// The containers that started on the engine's default bridge because no session network existed
/// yet, and must join it once it does (so that they reach the named containers that need it, and
/// those reach them).
#[derive(Default)]
struct BridgeMembers {
    /// The session network once it exists (mirrors `SessionInner::network`, without awaiting).
    network: Option<String>,
    /// Engine names, with whether the container has been created yet. Removed containers stay
    /// listed until the network is created (a few bytes each; their join is then skipped).
    members: Vec<(String, bool)>,
}

pub(crate) struct SessionInner {
    run_id: String,
    owner: String,
    runner: String,
    host: String,
    namespace: String,
    engine: Engine,
    keep: bool,
    tracker: Tracker,
    network: tokio::sync::Mutex<Option<String>>,
    bridge: Mutex<BridgeMembers>,
    volumes: tokio::sync::Mutex<HashMap<String, String>>,
    present_images: Mutex<std::collections::HashSet<String>>,
}

/// One process's view of a test run: the engine, the labels and names it gives, and everything it
/// created and must remove. Cheap to clone.
#[derive(Clone)]
pub struct Session(pub(crate) Arc<SessionInner>);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("run_id", &self.0.run_id)
            .field("namespace", &self.0.namespace)
            .field("engine", &self.0.engine)
            .finish()
    }
}

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
static GLOBAL: OnceLock<Session> = OnceLock::new();
static GLOBAL_INIT: Mutex<()> = Mutex::new(());
static SESSIONS: Mutex<Vec<Session>> = Mutex::new(Vec::new());
static EXIT_HOOK: std::sync::Once = std::sync::Once::new();
/// How many sessions this process has created.
static SESSION_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The library's runtime: two worker threads that carry every engine call.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("seaworthy")
            .enable_all()
            .build()
            .expect("the Seaworthy runtime could not start (out of threads?)")
    })
}

/// Spawns `fut` on Seaworthy's own runtime. Fixtures start their clients' connection tasks here,
/// so the clients keep working whichever runtime (each `#[tokio::test]` has its own) uses them.
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(fut)
}

/// Runs `fut` on Seaworthy's own runtime and waits for it, from any runtime.
pub async fn run<F, T>(fut: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    on_runtime(fut).await
}

/// Runs `fut` on the library's runtime and waits for it from any runtime (or none).
pub(crate) async fn on_runtime<F, T>(fut: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    match runtime().spawn(fut).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("Seaworthy's runtime stopped while a call was running: {e}"),
    }
}

impl Session {
    /// The process-wide session on the engine named by `DOCKER_HOST`, created on first use.
    pub async fn global() -> Result<Session> {
        if let Some(s) = GLOBAL.get() {
            return Ok(s.clone());
        }
        let session = on_runtime(async { Engine::connect().await }).await?;
        let _guard = GLOBAL_INIT.lock().unwrap_or_else(|e| e.into_inner());
        Ok(GLOBAL.get_or_init(|| Session::with_engine(session)).clone())
    }

    /// A new session on `engine`, with its own namespace and resources.
    pub fn with_engine(engine: Engine) -> Session {
        let run_id = run_id();
        let owner = owner_id();
        let runner = runner_id();
        let host = host_name();
        let namespace = format!(
            "sw-{}-{}",
            &run_id[..8.min(run_id.len())],
            process_token(SESSION_COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        );
        let keep = std::env::var("SEAWORTHY_KEEP").is_ok_and(|v| v == "1" || v == "true");
        let session = Session(Arc::new(SessionInner {
            run_id,
            owner,
            runner,
            host,
            namespace,
            engine,
            keep,
            tracker: Tracker::default(),
            network: tokio::sync::Mutex::new(None),
            bridge: Mutex::new(BridgeMembers::default()),
            volumes: tokio::sync::Mutex::new(HashMap::new()),
            present_images: Mutex::new(Default::default()),
        }));
        SESSIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session.clone());
        install_exit_hooks(&session);
        session
    }

    /// Connects to `endpoint` and starts a new session there.
    pub async fn connect_to(endpoint: &str) -> Result<Session> {
        let endpoint = endpoint.to_string();
        let engine = on_runtime(async move { Engine::connect_to(&endpoint).await }).await?;
        Ok(Session::with_engine(engine))
    }

    /// The engine this session talks to.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The test run's id, shared by all processes of the run (the value of [`LABEL_SESSION`]).
    pub fn run_id(&self) -> &str {
        &self.0.run_id
    }

    /// The prefix of every name this session gives (`sw-<run>-<process>`).
    pub fn namespace(&self) -> &str {
        &self.0.namespace
    }

    /// Whether resources are kept at exit (`SEAWORTHY_KEEP=1`).
    pub fn keeps_resources(&self) -> bool {
        self.0.keep
    }

    /// The labels every resource of this session carries.
    pub fn labels(&self) -> HashMap<String, String> {
        self.labels_for(&self.0.owner)
    }

    /// The labels of a resource shared by every process of the run (owner [`OWNER_RUN`]).
    pub fn run_labels(&self) -> HashMap<String, String> {
        self.labels_for(OWNER_RUN)
    }

    fn labels_for(&self, owner: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_SESSION.to_string(), self.0.run_id.clone()),
            (LABEL_OWNER.to_string(), owner.to_string()),
            (LABEL_RUNNER.to_string(), self.0.runner.clone()),
            (LABEL_HOST.to_string(), self.0.host.clone()),
        ])
    }

    /// This process as `pid:start-time` (the value of [`LABEL_OWNER`] on its resources).
    pub fn owner(&self) -> &str {
        &self.0.owner
    }

    /// The test runner process as `pid:start-time` (the value of [`LABEL_RUNNER`]).
    pub fn runner(&self) -> &str {
        &self.0.runner
    }

    /// The prefix of names shared by every process of the run (`sw-<run>`).
    pub fn run_namespace(&self) -> String {
        format!("sw-{}", &self.0.run_id[..8.min(self.0.run_id.len())])
    }

    /// The engine name for a resource the user calls `name`.
    pub fn scoped_name(&self, name: &str) -> String {
        format!("{}-{name}", self.0.namespace)
    }

    /// A fresh engine name for an unnamed resource.
    pub(crate) fn fresh_name(&self) -> String {
        let n: u32 = rand::random();
        format!("{}-{n:08x}", self.0.namespace)
    }

    /// Starts tracking a resource this session created.
    pub(crate) fn track(&self, kind: ResourceKind, id: &str, name: &str) {
        self.0
            .tracker
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default()
            .insert(id.to_string(), name.to_string());
    }

    /// Stops tracking a resource (it was removed, or handed over to the user to keep).
    pub(crate) fn untrack(&self, kind: ResourceKind, id: &str) {
        if let Some(set) = self
            .0
            .tracker
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&kind)
        {
            set.remove(id);
        }
    }

    /// How many resources of `kind` this session currently owns.
    pub fn live_count(&self, kind: ResourceKind) -> usize {
        self.0
            .tracker
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&kind)
            .map_or(0, |s| s.len())
    }

    /// Removes one resource now and stops tracking it; a resource already gone counts as removed.
    pub(crate) async fn remove_resource(
        &self,
        kind: ResourceKind,
        id: String,
        name: String,
    ) -> Result<()> {
        let session = self.clone();
        on_runtime(async move {
            let result = remove_now(&session.0.engine, kind, &id, &name).await;
            if result.is_ok() {
                session.untrack(kind, &id);
            }
            result
        })
        .await
    }

    /// Removes one resource in the background (from `Drop`); the exit hook waits for it.
    pub(crate) fn remove_in_background(&self, kind: ResourceKind, id: String, name: String) {
        if self.0.keep {
            return;
        }
        *self
            .0
            .tracker
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner()) += 1;
        let session = self.clone();
        runtime().spawn(async move {
            match remove_now(&session.0.engine, kind, &id, &name).await {
                Ok(()) => session.untrack(kind, &id),
                Err(e) => tracing::warn!(error = %e, "background removal failed; retried at exit"),
            }
            let tracker = &session.0.tracker;
            let mut pending = tracker.pending.lock().unwrap_or_else(|e| e.into_inner());
            *pending -= 1;
            tracker.idle.notify_all();
        });
    }

    /// Waits until background removals have finished (at most `timeout`).
    pub fn wait_for_background_removals(&self, timeout: Duration) -> bool {
        let tracker = &self.0.tracker;
        let deadline = Instant::now() + timeout;
        let mut pending = tracker.pending.lock().unwrap_or_else(|e| e.into_inner());
        while *pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            pending = tracker
                .idle
                .wait_timeout(pending, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Removes everything this session still owns: containers, then networks, then volumes, then
    /// images, each kind in parallel. Returns the errors of removals that failed.
    pub async fn teardown(&self) -> Vec<Error> {
        let session = self.clone();
        on_runtime(async move { session.teardown_here().await }).await
    }

    async fn teardown_here(&self) -> Vec<Error> {
        let mut errors = Vec::new();
        for kind in [
            ResourceKind::Container,
            ResourceKind::Network,
            ResourceKind::Volume,
            ResourceKind::Image,
        ] {
            let items: Vec<(String, String)> = self
                .0
                .tracker
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&kind)
                .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            let removals = items.into_iter().map(|(id, name)| {
                let session = self.clone();
                async move {
                    let r = remove_now(&session.0.engine, kind, &id, &name).await;
                    if r.is_ok() {
                        session.untrack(kind, &id);
                    }
                    r
                }
            });
            for r in futures_util::future::join_all(removals).await {
                if let Err(e) = r {
                    errors.push(e);
                }
            }
        }
        *self.0.network.lock().await = None;
        self.bridge().network = None;
        self.0.volumes.lock().await.clear();
        // The volume data of this session's snapshots (kept snapshots are named `kept-…`).
        let prefix = format!("{}-", self.0.namespace);
        if let Ok(entries) = std::fs::read_dir(crate::snapshot::snapshot_dir()) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        errors
    }

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
            let lock = crate::gc::lock_file(
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

    fn bridge(&self) -> std::sync::MutexGuard<'_, BridgeMembers> {
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
            Err(e) if crate::error::status_of(&e) == Some(404) => Ok(()),
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

    /// Whether this session already saw `image` present (saves an inspect per start).
    pub(crate) fn image_known_present(&self, image: &str) -> bool {
        self.0
            .present_images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(image)
    }

    pub(crate) fn remember_image_present(&self, image: &str) {
        self.0
            .present_images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(image.to_string());
    }

    /// Forgets what it knew about `image` (it turned out to be missing after all).
    pub(crate) fn forget_image(&self, image: &str) {
        self.0
            .present_images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(image);
    }

    fn teardown_at_exit(&self) {
        if self.0.keep {
            let live = self
                .0
                .tracker
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (kind, items) in live.iter() {
                for name in items.values() {
                    eprintln!("seaworthy: SEAWORTHY_KEEP is set; keeping {kind:?} {name}");
                }
            }
            return;
        }
        self.wait_for_background_removals(EXIT_TEARDOWN_DEADLINE);
        let session = self.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        runtime().spawn(async move {
            let _ = tx.send(session.teardown_here().await);
        });
        match rx.recv_timeout(EXIT_TEARDOWN_DEADLINE) {
            Ok(errors) => {
                for e in errors {
                    eprintln!("seaworthy: teardown at exit: {e}");
                }
            }
            Err(_) => eprintln!(
                "seaworthy: teardown at exit did not finish within {EXIT_TEARDOWN_DEADLINE:?}; `seaworthy gc` removes what is left"
            ),
        }
    }
}

/// Removes one resource, treating "already gone" as success; networks and volumes still in use by a
/// container being removed are retried for a few seconds.
pub(crate) async fn remove_now(
    engine: &Engine,
    kind: ResourceKind,
    id: &str,
    name: &str,
) -> Result<()> {
    let docker = engine.docker();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    let mut delay = Duration::from_millis(20);
    loop {
        let result = match kind {
            ResourceKind::Container => {
                docker
                    .remove_container(
                        id,
                        Some(RemoveContainerOptions {
                            force: true,
                            v: true,
                            ..Default::default()
                        }),
                    )
                    .await
            }
            ResourceKind::Network => docker.remove_network(id).await,
            ResourceKind::Volume => {
                docker
                    .remove_volume(id, Some(RemoveVolumeOptions { force: true }))
                    .await
            }
            ResourceKind::Image => docker
                .remove_image(
                    id,
                    Some(RemoveImageOptions {
                        force: true,
                        noprune: false,
                        ..Default::default()
                    }),
                    None,
                )
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => {
                tracing::debug!(?kind, name, elapsed = ?started.elapsed(), "removed");
                return Ok(());
            }
            Err(e) if status_of(&e) == Some(404) => return Ok(()),
            // A removal already in progress (409), or a network/volume still in use (403/409).
            Err(e) if matches!(status_of(&e), Some(403 | 409)) && Instant::now() < deadline => {
                tracing::trace!(?kind, name, error = %e, "resource busy; retrying removal");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
            Err(e) => {
                let what = match kind {
                    ResourceKind::Container => "container",
                    ResourceKind::Network => "network",
                    ResourceKind::Volume => "volume",
                    ResourceKind::Image => "image",
                };
                return Err(Error::docker(format!("remove {what} {name}"), e));
            }
        }
    }
}

/// The test run's id: `SEAWORTHY_SESSION`, nextest's run id, or a hash of the parent process.
fn run_id() -> String {
    if let Ok(id) = std::env::var("SEAWORTHY_SESSION") {
        if !id.is_empty() {
            return id;
        }
    }
    if let Ok(id) = std::env::var("NEXTEST_RUN_ID") {
        let id: String = id.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if !id.is_empty() {
            return id.to_lowercase();
        }
    }
    let ppid = std::os::unix::process::parent_id();
    let start = process_start_time(ppid).unwrap_or(0);
    format!("{:016x}", fnv1a(format!("{ppid}:{start}").as_bytes()))
}

/// This process's part of the namespace of its session number `session` (counted from 0): its
/// pid in hex, so that the live processes of a run never share one, then `t` and the low 16 bits
/// of its start time in hex, so that a later process given the same pid almost surely does not
/// share the namespace of a killed one either, then `s<n>` for the process's later sessions. The
/// letters are not hex digits, so two tokens are the same only when all three parts are; and
/// none has a `-`, so no namespace followed by `-` (how teardown and gc select names) begins
/// another.
fn process_token(session: usize) -> String {
    let pid = std::process::id();
    let start = process_start_time(pid).unwrap_or(0) & 0xffff;
    let mut token = format!("{pid:x}t{start:x}");
    if session > 0 {
        token.push_str(&format!("s{session}"));
    }
    token
}

/// `pid:start-time` of this process, the value of [`LABEL_OWNER`].
fn owner_id() -> String {
    let pid = std::process::id();
    format!("{pid}:{}", process_start_time(pid).unwrap_or(0))
}

/// `pid:start-time` of the parent process (the test runner), the value of [`LABEL_RUNNER`].
fn runner_id() -> String {
    let ppid = std::os::unix::process::parent_id();
    format!("{ppid}:{}", process_start_time(ppid).unwrap_or(0))
}

/// This machine's host name (the value of [`LABEL_HOST`]).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Whether the process named `pid:start-time` is alive (a zombie counts as dead).
pub fn process_alive(id: &str) -> bool {
    let Some((pid, start)) = id.split_once(':') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return false;
    };
    let mut fields = after.split_whitespace();
    let state = fields.next().unwrap_or("Z");
    let started: Option<u64> = fields.nth(18).and_then(|f| f.parse().ok());
    state != "Z" && state != "X" && started == Some(start)
}

/// The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), which with
/// the pid identifies a process across pid reuse.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The 64-bit FNV-1a hash of `bytes`: the one short, stable digest of Seaworthy and its fixtures
/// (run ids, definition keys that must not carry a password). Stable across processes, builds
/// and versions, since other processes of a run compare it; not a cryptographic hash.
#[doc(hidden)]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether `SEAWORTHY_KEEP_ON_FAILURE` (`1` or `true`) asks to keep what a failed test used as
/// it was left (containers, and the namespaces fixtures hand out), for debugging. A fixture's
/// guard dropped while its test panics checks it before it resets or releases anything.
pub fn keep_on_failure() -> bool {
    std::env::var("SEAWORTHY_KEEP_ON_FAILURE").is_ok_and(|v| v == "1" || v == "true")
}

fn install_exit_hooks(session: &Session) {
    EXIT_HOOK.call_once(|| {
        if !session.0.keep {
            crate::gc::spawn_reaper(
                session.0.engine.endpoint(),
                &session.0.run_id,
                &session.0.owner,
                &session.0.runner,
            );
            // Sweep what earlier, killed runs left behind, without holding anything up.
            let engine = session.0.engine.clone();
            runtime().spawn(async move {
                match crate::gc::collect(&engine, crate::gc::GcOptions::default()).await {
                    Ok(report) if !report.removed.is_empty() => {
                        tracing::info!(
                            removed = report.removed.len(),
                            "removed resources of dead test processes"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "startup sweep failed"),
                }
            });
        }
        extern "C" fn at_exit() {
            teardown_all_sessions();
        }
        // SAFETY: registering a plain `extern "C" fn()` with the C library's atexit is sound; the
        // handler only uses the library's own statics, which are never dropped.
        unsafe {
            libc::atexit(at_exit);
        }
        runtime().spawn(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            let code = tokio::select! {
                _ = int.recv() => 130,
                _ = term.recv() => 143,
            };
            eprintln!("seaworthy: signal received; removing this process's containers");
            // exit() runs the atexit hook, which tears everything down.
            std::thread::spawn(move || std::process::exit(code));
        });
    });
}

fn teardown_all_sessions() {
    let sessions: Vec<Session> = SESSIONS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for session in sessions {
        session.teardown_at_exit();
    }
}
