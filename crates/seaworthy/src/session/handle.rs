//! The `Session` handle: labels and names, tracking and removal of what it created, teardown.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bollard::query_parameters::{RemoveContainerOptions, RemoveImageOptions, RemoveVolumeOptions};

use super::{LABEL_HOST, LABEL_MANAGED, LABEL_OWNER, LABEL_RUNNER, LABEL_SESSION, OWNER_RUN};
use crate::engine::Engine;
use crate::error::{status_of, Error, Result};
use crate::identity::{host_name, owner_id, process_token, run_id, runner_id};
use crate::runtime::{on_runtime, runtime};

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
pub(super) struct Tracker {
    /// Live resources by kind: engine id or name -> display name.
    pub(super) live: Mutex<HashMap<ResourceKind, HashMap<String, String>>>,
    /// Removals running in the background, and a condition variable signalled when one ends.
    pub(super) pending: Mutex<usize>,
    pub(super) idle: Condvar,
}

/// The containers that started on the engine's default bridge because no session network existed
/// yet, and must join it once it does (so that they reach the named containers that need it, and
/// those reach them).
#[derive(Default)]
pub(super) struct BridgeMembers {
    /// The session network once it exists (mirrors `SessionInner::network`, without awaiting).
    pub(super) network: Option<String>,
    /// Engine names, with whether the container has been created yet. Removed containers stay
    /// listed until the network is created (a few bytes each; their join is then skipped).
    pub(super) members: Vec<(String, bool)>,
}

pub(crate) struct SessionInner {
    pub(super) run_id: String,
    pub(super) owner: String,
    pub(super) runner: String,
    pub(super) host: String,
    pub(super) namespace: String,
    pub(super) engine: Engine,
    pub(super) keep: bool,
    pub(super) tracker: Tracker,
    pub(super) network: tokio::sync::Mutex<Option<String>>,
    pub(super) bridge: Mutex<BridgeMembers>,
    pub(super) volumes: tokio::sync::Mutex<HashMap<String, String>>,
    pub(super) present_images: Mutex<std::collections::HashSet<String>>,
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

static GLOBAL: OnceLock<Session> = OnceLock::new();
static GLOBAL_INIT: Mutex<()> = Mutex::new(());
pub(super) static SESSIONS: Mutex<Vec<Session>> = Mutex::new(Vec::new());
pub(super) static EXIT_HOOK: std::sync::Once = std::sync::Once::new();
/// How many sessions this process has created.
static SESSION_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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
        super::exit::install_exit_hooks(&session);
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

    pub(super) async fn teardown_here(&self) -> Vec<Error> {
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
        if let Ok(entries) = std::fs::read_dir(crate::state::snapshot_dir()) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        errors
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
            // An image removed meanwhile by another process (another reaper of the same run)
            // can fail with a 500 instead of a 404: gone is gone.
            Err(_)
                if kind == ResourceKind::Image
                    && docker
                        .inspect_image(id)
                        .await
                        .is_err_and(|e| status_of(&e) == Some(404)) =>
            {
                return Ok(());
            }
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
