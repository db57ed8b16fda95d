//! [`Container`]: a running container owned by its session (the start sequence that makes one is
//! `container/start.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bollard::models::{ContainerInspectResponse, ContainerState};
use bollard::query_parameters::StopContainerOptions;

use crate::definition::ContainerDefinition;
use crate::error::{status_of, Error, Result};
use crate::runtime::on_runtime;
use crate::session::{ResourceKind, Session};
use crate::spec::Protocol;

pub(crate) mod start;

pub(crate) struct Inner {
    pub(crate) session: Session,
    id: RwLock<String>,
    pub(crate) name: String,
    pub(crate) short_name: Option<String>,
    pub(crate) image: String,
    /// The definition it was created from (snapshots re-create it from this).
    pub(crate) definition: ContainerDefinition,
    pub(crate) ports: Mutex<HashMap<(u16, Protocol), u16>>,
    /// The warm standby, once enabled (its proxies then serve the published ports).
    pub(crate) standby: Mutex<Option<Arc<crate::standby::StandbyState>>>,
    removed: AtomicBool,
    kept: AtomicBool,
    /// What is known of its runs, to tell the current run's log lines from earlier runs'.
    runs: Mutex<Runs>,
}

/// What Seaworthy knows of a container's runs. The engine keeps the log lines of every run of a
/// container; these tell where the current run's begin.
#[derive(Debug, Default)]
struct Runs {
    /// The engine id all this is about (a restored snapshot is a new container: a new id).
    id: String,
    /// How often Seaworthy started it.
    starts: u32,
    /// When its runs ended (the engine's `FinishedAt`), as seen; the latest few.
    ends: Vec<SystemTime>,
}

/// How many run ends [`Runs`] keeps.
const RUN_ENDS_KEPT: usize = 4;

/// How far before the start of a run its log is taken to begin, when nothing says where the
/// previous run's ended (a container started behind Seaworthy's back that has stopped since).
const RUN_START_SLACK: Duration = Duration::from_secs(1);

impl Inner {
    /// The runs record of the current engine id.
    fn runs(&self) -> std::sync::MutexGuard<'_, Runs> {
        let id = self.id();
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if runs.id != id {
            *runs = Runs {
                id,
                ..Runs::default()
            };
        }
        runs
    }

    /// Whether the container is on the first run Seaworthy gave it, as far as this handle knows
    /// (started once, no run seen ending): its whole log is the current run's.
    pub(crate) fn on_first_run(&self) -> bool {
        let runs = self.runs();
        runs.starts == 1 && runs.ends.is_empty()
    }

    /// Notes that Seaworthy is starting the container; whether it had started it before.
    fn note_start(&self) -> bool {
        let mut runs = self.runs();
        runs.starts += 1;
        runs.starts > 1
    }

    /// Notes the end of a run that `state` records.
    fn note_state(&self, state: &ContainerState) {
        let Some(end) = state
            .finished_at
            .as_deref()
            .and_then(crate::logs::parse_timestamp)
        else {
            return;
        };
        let mut runs = self.runs();
        if !runs.ends.contains(&end) {
            runs.ends.push(end);
            runs.ends.sort();
            let excess = runs.ends.len().saturating_sub(RUN_ENDS_KEPT);
            runs.ends.drain(..excess);
        }
    }

    /// When the log of the run that `state` describes (the current one, or the last one once
    /// stopped) begins, in the engine's clock: lines recorded before belong to earlier runs.
    /// `None` when it is the first run.
    ///
    /// Neither of the engine's own times is that boundary: it records the start of a run
    /// (`StartedAt`) a moment after the process started, so the first lines may be recorded
    /// before it, and the end of a run (`FinishedAt`) a moment before its last lines are read.
    /// Between the end of one run and the start of the next lies at least the engine's work of
    /// starting a container: the midpoint of the two is after the one's last line and before
    /// the other's first.
    pub(crate) fn run_log_start(&self, state: &ContainerState) -> Option<SystemTime> {
        let started = state
            .started_at
            .as_deref()
            .and_then(crate::logs::parse_timestamp)?;
        // Running, `FinishedAt` is the previous run's end (or never, on the first run); stopped,
        // it is this run's, which may even come before its `StartedAt` (a process that exits at
        // once is gone before the engine records its start).
        self.note_state(state);
        let own_end = (state.running != Some(true))
            .then(|| {
                state
                    .finished_at
                    .as_deref()
                    .and_then(crate::logs::parse_timestamp)
            })
            .flatten();
        let runs = self.runs();
        let previous_end = runs
            .ends
            .iter()
            .filter(|end| **end < started && Some(**end) != own_end)
            .max();
        match previous_end {
            Some(end) => {
                let gap = started.duration_since(*end).unwrap_or_default();
                Some(*end + gap / 2)
            }
            None if state.running == Some(true) => None,
            // Stopped: its own end is all the engine tells. Seaworthy started it once: the first
            // run (a restart by Seaworthy would have noted the previous end).
            None if runs.starts == 1 => None,
            None => Some(started - RUN_START_SLACK),
        }
    }

    /// The engine id (it changes when a snapshot is restored; the name does not).
    pub(crate) fn id(&self) -> String {
        self.id.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_id(&self, id: String) {
        *self.id.write().unwrap_or_else(|e| e.into_inner()) = id;
    }

    pub(crate) fn docker(&self) -> &bollard::Docker {
        self.session.engine().docker()
    }
}

/// A container created by Seaworthy. It is removed (with force, and with its anonymous volumes)
/// when the handle is dropped, by [`Container::remove`], or at the latest when the process exits.
///
/// The handle is cheap to share behind an `Arc`; every method takes `&self`.
pub struct Container {
    pub(crate) inner: Arc<Inner>,
    /// A view lent to a custom wait check: it owns nothing, dropping it does nothing.
    view: bool,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("name", &self.inner.name)
            .field("id", &self.short_id())
            .field("image", &self.inner.image)
            .finish()
    }
}

impl Container {
    /// A handle to `inner`'s container that owns nothing (dropping it does nothing), for a custom
    /// wait check.
    pub(crate) fn view(inner: Arc<Inner>) -> Container {
        Container { inner, view: true }
    }

    /// Gives up ownership without removing anything: another handle owns the container now.
    pub(crate) fn disown(self) {
        self.inner.kept.store(true, Ordering::SeqCst);
    }

    /// The engine's id (a restored snapshot is a new container with the same name: a new id).
    pub fn id(&self) -> String {
        self.inner.id()
    }

    /// The first 12 characters of the id.
    pub fn short_id(&self) -> String {
        let id = self.inner.id();
        id[..12.min(id.len())].to_string()
    }

    /// The engine name (`sw-<run>-<process>-NAME`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The name given in the definition, by which other containers reach this one.
    pub fn alias(&self) -> Option<&str> {
        self.inner.short_name.as_deref()
    }

    /// The image this container was created from.
    pub fn image(&self) -> &str {
        &self.inner.image
    }

    /// The session that owns this container.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// The host at which published ports are reached.
    pub fn host(&self) -> &str {
        self.inner.session.engine().host()
    }

    /// The host port published for TCP `port`.
    pub fn host_port(&self, port: u16) -> Result<u16> {
        self.host_port_for(port, Protocol::Tcp)
    }

    /// The host port published for `port`/`protocol`.
    pub fn host_port_for(&self, port: u16, protocol: Protocol) -> Result<u16> {
        let standby = self
            .inner
            .standby
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(public) = standby.and_then(|s| s.public_port(&(port, protocol))) {
            return Ok(public);
        }
        self.inner
            .ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(port, protocol))
            .copied()
            .ok_or_else(|| Error::Container {
                container: self.inner.name.clone(),
                reason: format!("port {port}/{protocol} is not published (use with_port({port}) and start the container)"),
            })
    }

    /// The host port of the first TCP port in the definition, if any is published.
    pub fn first_published_port(&self) -> Option<u16> {
        let first = self.inner.definition.ports.first()?;
        self.host_port_for(first.container_port, first.protocol)
            .ok()
    }

    /// `host:port` for TCP `port`.
    pub fn address(&self, port: u16) -> Result<String> {
        Ok(format!("{}:{}", self.host(), self.host_port(port)?))
    }

    /// The engine's full description of the container.
    pub async fn inspect(&self) -> Result<ContainerInspectResponse> {
        let inner = self.inner.clone();
        on_runtime(async move { inspect_here(&inner).await }).await
    }

    /// Whether the container is running.
    pub async fn is_running(&self) -> Result<bool> {
        let info = self.inspect().await?;
        Ok(info.state.and_then(|s| s.running).unwrap_or(false))
    }

    /// Stops the container (its stop signal, then SIGKILL after `timeout`).
    pub async fn stop(&self, timeout: Duration) -> Result<()> {
        let inner = self.inner.clone();
        on_runtime(async move {
            let options = StopContainerOptions {
                t: Some(timeout.as_secs().min(i32::MAX as u64) as i32),
                ..Default::default()
            };
            match inner
                .docker()
                .stop_container(&inner.name, Some(options))
                .await
            {
                Ok(()) => Ok(()),
                Err(e) if status_of(&e) == Some(304) => Ok(()),
                Err(e) => Err(Error::docker(format!("stop container {}", inner.name), e)),
            }
        })
        .await
    }

    /// Sends `signal` (`SIGKILL`, `SIGHUP`...) to the container's main process.
    pub async fn kill(&self, signal: &str) -> Result<()> {
        let inner = self.inner.clone();
        let signal = signal.to_string();
        on_runtime(async move {
            inner
                .docker()
                .kill_container(
                    &inner.name,
                    Some(bollard::query_parameters::KillContainerOptions { signal }),
                )
                .await
                .map_err(|e| Error::docker(format!("kill container {}", inner.name), e))
        })
        .await
    }

    /// Removes the container now (force, with anonymous volumes) and waits for it to be gone.
    pub async fn remove(self) -> Result<()> {
        self.inner.removed.store(true, Ordering::SeqCst);
        self.inner
            .session
            .remove_resource(
                ResourceKind::Container,
                self.inner.id(),
                self.inner.name.clone(),
            )
            .await
    }

    /// Leaves the container running after the handle and the session are gone (for debugging):
    /// the reaper and the sweeps of other processes leave it alone. It keeps its labels, so
    /// `seaworthy gc` (which removes kept containers too when asked) can still remove it.
    pub fn keep(self) -> String {
        self.inner.kept.store(true, Ordering::SeqCst);
        self.inner
            .session
            .untrack(ResourceKind::Container, &self.inner.id());
        // Recorded, so that this process's reaper (and other processes' sweeps) leave it alone.
        crate::state::record_kept(&self.inner.id());
        eprintln!("seaworthy: keeping container {}", self.inner.name);
        self.inner.name.clone()
    }

    /// Re-reads the published ports (after a restart the engine may assign new ones).
    pub async fn refresh(&self) -> Result<()> {
        let inner = self.inner.clone();
        on_runtime(async move { refresh_ports(&inner).await }).await
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.view {
            return;
        }
        if let Some(state) = self
            .inner
            .standby
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            crate::standby::discard(&state, &self.inner.session);
        }
        if self.inner.removed.load(Ordering::SeqCst) || self.inner.kept.load(Ordering::SeqCst) {
            return;
        }
        if std::thread::panicking() && crate::identity::keep_on_failure() {
            self.inner.kept.store(true, Ordering::SeqCst);
            self.inner
                .session
                .untrack(ResourceKind::Container, &self.inner.id());
            crate::state::record_kept(&self.inner.id());
            eprintln!(
                "seaworthy: the test failed; keeping container {} for debugging (SEAWORTHY_KEEP_ON_FAILURE); `seaworthy gc` removes it",
                self.inner.name
            );
            return;
        }
        self.inner.removed.store(true, Ordering::SeqCst);
        self.inner.session.remove_in_background(
            ResourceKind::Container,
            self.inner.id(),
            self.inner.name.clone(),
        );
    }
}

impl Container {
    /// A handle to an existing container that this process does not own (dropping it removes
    /// nothing): a per-run shared container started by another process, found by its labels.
    pub(crate) async fn attach(
        session: &Session,
        id: &str,
        definition: ContainerDefinition,
    ) -> Result<Container> {
        let session = session.clone();
        let id = id.to_string();
        on_runtime(async move {
            let info = session
                .engine()
                .docker()
                .inspect_container(&id, None)
                .await
                .map_err(|e| Error::docker(format!("inspect container {id}"), e))?;
            let name = info
                .name
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            let inner = Arc::new(Inner {
                session,
                id: RwLock::new(info.id.clone().unwrap_or(id)),
                name,
                short_name: definition.name.clone(),
                image: definition.image.clone(),
                definition,
                ports: Mutex::new(HashMap::new()),
                standby: Mutex::new(None),
                removed: AtomicBool::new(false),
                kept: AtomicBool::new(true),
                runs: Mutex::new(Runs::default()),
            });
            // The inspect above says where its ports are: no second one.
            store_ports(&inner, info);
            Ok(Container { inner, view: false })
        })
        .await
    }

    /// Whether dropping this handle leaves the container in place (kept, or shared by the run).
    pub fn is_kept(&self) -> bool {
        self.inner.kept.load(Ordering::SeqCst)
    }
}

pub(crate) async fn inspect_here(inner: &Inner) -> Result<ContainerInspectResponse> {
    inner
        .docker()
        .inspect_container(&inner.name, None)
        .await
        .map_err(|e| match status_of(&e) {
            Some(404) => Error::Container {
                container: inner.name.clone(),
                reason: "the container no longer exists (removed behind Seaworthy's back?)".into(),
            },
            _ => Error::docker(format!("inspect container {}", inner.name), e),
        })
}

pub(crate) async fn refresh_ports(inner: &Inner) -> Result<()> {
    let info = inspect_here(inner).await?;
    store_ports(inner, info);
    Ok(())
}

/// Keeps the host ports `info` (an inspect of the container) says are published.
fn store_ports(inner: &Inner, info: ContainerInspectResponse) {
    let mut ports = HashMap::new();
    if let Some(map) = info.network_settings.and_then(|n| n.ports) {
        for (key, bindings) in map {
            let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let proto = match proto {
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            let host_port = bindings
                .unwrap_or_default()
                .iter()
                .filter_map(|b| b.host_port.as_deref()?.parse::<u16>().ok())
                .next();
            if let Some(h) = host_port {
                ports.insert((port, proto), h);
            }
        }
    }
    *inner.ports.lock().unwrap_or_else(|e| e.into_inner()) = ports;
}
