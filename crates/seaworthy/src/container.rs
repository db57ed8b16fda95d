//! [`Container`]: a running container owned by its session, and the start sequence that makes one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerState, EndpointSettings, HealthConfig,
    HostConfig, Mount, MountTmpfsOptions, MountType, NetworkConnectRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::{CreateContainerOptions, StopContainerOptions};

use crate::definition::{ContainerDefinition, SessionNetwork};
use crate::error::{status_of, Error, Result};
use crate::reference::ImageRef;
use crate::runtime::on_runtime;
use crate::session::{ResourceKind, Session};
use crate::spec::{MountSource, Protocol};
use crate::wait::Wait;

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

impl ContainerDefinition {
    /// Creates and starts the container in the global session, then waits until it is ready.
    ///
    /// On any failure (pull, create, start, wait) the container is removed and the error names the
    /// image or container; a failed wait carries the last lines of its log.
    pub async fn start(self) -> Result<Container> {
        let session = Session::global().await?;
        self.start_in(&session).await
    }

    /// Like [`start`](Self::start), in a given session.
    ///
    /// The startup timeout bounds it all: pulling the image, creating the container, starting it
    /// and the wait.
    pub async fn start_in(self, session: &Session) -> Result<Container> {
        let deadline = Instant::now() + self.startup_timeout;
        let container = self.clone().create_until(session, deadline).await?;
        match container.start_and_wait(self.wait.as_ref(), deadline).await {
            Ok(()) => Ok(container),
            Err(e) => {
                // Remove it before reporting, so a failed start leaves nothing behind.
                if !session.keeps_resources() {
                    if let Err(removal) = container.remove().await {
                        tracing::warn!(error = %removal, "removing a container whose start failed");
                    }
                }
                Err(e)
            }
        }
    }

    /// Creates the container (pulling its image if needed) without starting it: files can be
    /// read from it, and [`Container::start`] starts it later. The startup timeout bounds the
    /// pull and the create.
    pub async fn create(self) -> Result<Container> {
        let session = Session::global().await?;
        self.create_in(&session).await
    }

    /// Like [`create`](Self::create), in a given session.
    pub async fn create_in(self, session: &Session) -> Result<Container> {
        let deadline = Instant::now() + self.startup_timeout;
        self.create_until(session, deadline).await
    }

    async fn create_until(self, session: &Session, deadline: Instant) -> Result<Container> {
        let session = session.clone();
        on_runtime(async move { create_here_until(self, session, deadline).await }).await
    }
}

/// Creates the container of `def` in `session` (pulling its image if needed), within the
/// definition's startup timeout from now.
pub(crate) async fn create_here(def: ContainerDefinition, session: Session) -> Result<Container> {
    let deadline = Instant::now() + def.startup_timeout;
    create_here_until(def, session, deadline).await
}

/// Creates the container of `def` in `session` (pulling its image if needed) by `deadline`: a
/// pull or create still running then is abandoned, and the error names the image or container.
pub(crate) async fn create_here_until(
    mut def: ContainerDefinition,
    session: Session,
    deadline: Instant,
) -> Result<Container> {
    // Before anything is created: an invalid definition leaves no trace on the engine.
    def.validate()?;
    if let Some(substitute) = crate::substitution::substitute(&def.image)? {
        tracing::debug!(from = %def.image, to = %substitute, "image substituted");
        def.image = substitute;
    }
    let image = ImageRef::parse(&def.image)?;
    crate::image::ensure_image_until(
        &session,
        &image,
        def.pull,
        def.platform.as_deref(),
        deadline,
        def.startup_timeout,
    )
    .await?;
    let name = match (&def.name, def.run_scoped) {
        _ if def.engine_name.is_some() => def.engine_name.clone().unwrap_or_default(),
        (Some(n), true) => format!("{}-{n}", session.run_namespace()),
        (Some(n), false) => session.scoped_name(n),
        (None, _) => session.fresh_name(),
    };
    let created = tokio::time::timeout_at(
        deadline.into(),
        create_named(&def, &session, &image, &name, deadline),
    )
    .await;
    match created {
        Ok(created) => created,
        // A container created meanwhile is removed: by its handle (dropped with the future),
        // or by `create_detached` when the engine answers after the deadline.
        Err(_) => {
            session.bridge_member_gone(&name);
            Err(Error::Timeout {
                action: format!(
                    "create container {name} from {} (the startup timeout)",
                    def.image
                ),
                timeout: def.startup_timeout,
            })
        }
    }
}

/// A container the engine created, removed when dropped unless claimed: the create of a start
/// whose deadline passed while the engine was at it leaves nothing behind.
struct Unclaimed {
    session: Session,
    id: Option<String>,
    name: String,
}

impl Unclaimed {
    fn claim(mut self) -> String {
        self.id.take().unwrap_or_default()
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            tracing::debug!(container = %self.name, "removing a container created after its start was abandoned");
            self.session
                .remove_in_background(ResourceKind::Container, id, self.name.clone());
        }
    }
}

/// Asks the engine to create container `name` from `body`. The request runs on its own: if the
/// caller gives up waiting (its deadline passed), a container the engine still creates is
/// removed.
async fn create_detached(
    session: &Session,
    name: &str,
    platform: Option<&str>,
    body: ContainerCreateBody,
) -> std::result::Result<String, bollard::errors::Error> {
    let platform = platform.unwrap_or_default().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let owner = session.clone();
    let name = name.to_string();
    crate::runtime::runtime().spawn(async move {
        let created = owner
            .engine()
            .docker()
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    platform,
                }),
                body,
            )
            .await
            .map(|created| Unclaimed {
                session: owner.clone(),
                id: Some(created.id),
                name,
            });
        // Nobody waiting any more: the container (if any) is dropped, and so removed.
        let _ = tx.send(created);
    });
    match rx.await {
        Ok(created) => created.map(Unclaimed::claim),
        Err(_) => Err(bollard::errors::Error::IOError {
            err: std::io::Error::other("the create request was lost (the runtime is stopping?)"),
        }),
    }
}

/// Creates container `name` of `def` once its image is present (the network, the create and the
/// files to copy in).
async fn create_named(
    def: &ContainerDefinition,
    session: &Session,
    image: &ImageRef,
    name: &str,
    deadline: Instant,
) -> Result<Container> {
    let name = name.to_string();
    let mut attempt = 0;
    loop {
        let session_network = session_network_for(def, session, Some(&name)).await?;
        let body = create_body(def, session, &name, session_network.as_deref()).await?;
        let started = Instant::now();
        let created = create_detached(session, &name, def.platform.as_deref(), body).await;
        match created {
            Ok(id) => {
                // Owned from here on: any later failure removes it. A container shared by the
                // run belongs to no process: the reaper removes it when the runner is gone.
                if !def.run_scoped {
                    session.track(ResourceKind::Container, &id, &name);
                }
                tracing::debug!(container = %name, image = %def.image, elapsed = ?started.elapsed(), "created");
                let container = Container {
                    inner: Arc::new(Inner {
                        session: session.clone(),
                        id: RwLock::new(id),
                        name: name.clone(),
                        short_name: def.name.clone(),
                        image: def.image.clone(),
                        definition: def.clone(),
                        ports: Mutex::new(HashMap::new()),
                        standby: Mutex::new(None),
                        removed: AtomicBool::new(false),
                        kept: AtomicBool::new(def.run_scoped),
                        runs: Mutex::new(Runs::default()),
                    }),
                    view: false,
                };
                if session_network.is_none() && def.network_mode.is_none() {
                    // Created on the default bridge: join the session network if it appeared
                    // while this container was being created.
                    if let Some(network) = session.bridge_member_created(&name) {
                        session.connect_to_network(&network, name.clone()).await?;
                    }
                }
                container
                    .join_networks(def, session_network.is_some())
                    .await?;
                for (path, source) in &def.copies {
                    crate::files::copy_source_here(&container.inner, path, source).await?;
                }
                return Ok(container);
            }
            // The session network was removed behind our back (by another process's teardown, or
            // by hand): recreate it once.
            Err(e)
                if status_of(&e) == Some(404)
                    && attempt == 0
                    && e.to_string().contains("network") =>
            {
                attempt += 1;
                session.forget_network().await;
            }
            // The image was removed since this session last saw it: pull (or fail) again, once.
            Err(e)
                if status_of(&e) == Some(404)
                    && attempt == 0
                    && session.image_known_present(&image.to_string()) =>
            {
                attempt += 1;
                session.forget_image(&image.to_string());
                crate::image::ensure_image_until(
                    session,
                    image,
                    def.pull,
                    def.platform.as_deref(),
                    deadline,
                    def.startup_timeout,
                )
                .await?;
            }
            Err(e) if status_of(&e) == Some(404) => {
                session.bridge_member_gone(&name);
                return Err(Error::Image {
                    image: def.image.clone(),
                    reason: format!("cannot create container {name}: {e}"),
                });
            }
            Err(e) => {
                session.bridge_member_gone(&name);
                return Err(Error::docker(
                    format!("create container {name} from {}", def.image),
                    e,
                ));
            }
        }
    }
}

/// The session (or run) network `def` joins at create, if any. An unnamed container created as
/// `registering` while no session network exists is recorded, to join it once it does; without
/// `registering`, only an existing network is reported.
pub(crate) async fn session_network_for(
    def: &ContainerDefinition,
    session: &Session,
    registering: Option<&str>,
) -> Result<Option<String>> {
    if def.network_mode.is_some() {
        return Ok(None);
    }
    match def.session_network {
        SessionNetwork::Never => Ok(None),
        _ if def.run_scoped => session.run_network_name().await.map(Some),
        SessionNetwork::Always => session.network_name().await.map(Some),
        SessionNetwork::Auto if def.name.is_some() || !def.aliases.is_empty() => {
            session.network_name().await.map(Some)
        }
        SessionNetwork::Auto => Ok(match registering {
            Some(name) => session.session_network_or_wait(name),
            None => session.existing_session_network(),
        }),
    }
}

async fn create_body(
    def: &ContainerDefinition,
    session: &Session,
    name: &str,
    session_network: Option<&str>,
) -> Result<ContainerCreateBody> {
    let mut labels = def.labels.clone();
    labels.extend(if def.run_scoped {
        session.run_labels()
    } else {
        session.labels()
    });
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut exposed = Vec::new();
    for p in &def.ports {
        exposed.push(p.key());
        port_bindings
            .entry(p.key())
            .or_default()
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
            });
    }
    let mut mounts = Vec::new();
    for m in &def.mounts {
        let (typ, source, tmpfs_options) = match &m.source {
            MountSource::Volume(v) => {
                (MountType::VOLUME, Some(session.volume_name(v).await?), None)
            }
            MountSource::ExternalVolume(v) => (MountType::VOLUME, Some(v.clone()), None),
            MountSource::Anonymous => (MountType::VOLUME, None, None),
            MountSource::Bind(p) => (MountType::BIND, Some(p.display().to_string()), None),
            MountSource::Tmpfs { size_bytes } => (
                MountType::TMPFS,
                None,
                Some(MountTmpfsOptions {
                    size_bytes: *size_bytes,
                    ..Default::default()
                }),
            ),
        };
        mounts.push(Mount {
            target: Some(m.target.clone()),
            source,
            typ: Some(typ),
            read_only: Some(m.read_only),
            tmpfs_options,
            ..Default::default()
        });
    }
    let networking_config = if let Some(network) = session_network {
        // (A container shared by the run joins the run's network: a process's network goes
        // with its process.)
        let network = network.to_string();
        let mut aliases = def.aliases.clone();
        if let Some(short) = &def.name {
            aliases.push(short.clone());
        }
        Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network,
                EndpointSettings {
                    aliases: Some(aliases),
                    ..Default::default()
                },
            )])),
        })
    } else {
        def.networks.first().map(|first| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                first.network.clone(),
                EndpointSettings {
                    aliases: Some(first.aliases.clone()),
                    ..Default::default()
                },
            )])),
        })
    };
    let network_mode = def.network_mode.clone().or_else(|| {
        networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.as_ref())
            .and_then(|e| e.keys().next().cloned())
    });
    let nanos = |d: Duration| d.as_nanos().min(i64::MAX as u128) as i64;
    Ok(ContainerCreateBody {
        image: Some(def.image.clone()),
        hostname: def.hostname.clone().or_else(|| {
            // Sharing another container's network namespace forbids setting a host name.
            def.network_mode
                .is_none()
                .then(|| def.name.clone())
                .flatten()
        }),
        env: Some(def.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        cmd: def.cmd.clone(),
        entrypoint: def.entrypoint.clone(),
        user: def.user.clone(),
        working_dir: def.workdir.clone(),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck: def.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: Some(nanos(h.interval)),
            timeout: Some(nanos(h.timeout)),
            retries: Some(i64::from(h.retries)),
            start_period: Some(nanos(h.start_period)),
            ..Default::default()
        }),
        stop_signal: def.stop_signal.clone(),
        stop_timeout: def.stop_timeout.map(|d| d.as_secs() as i64),
        host_config: Some(HostConfig {
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            mounts: (!mounts.is_empty()).then_some(mounts),
            network_mode,
            memory: def.resources.memory_bytes,
            nano_cpus: def.resources.nano_cpus,
            pids_limit: def.resources.pids_limit,
            privileged: Some(def.privileged),
            cap_add: (!def.cap_add.is_empty()).then(|| def.cap_add.clone()),
            init: def.init.then_some(true),
            runtime: def.runtime.clone(),
            ..Default::default()
        }),
        networking_config,
        ..Default::default()
    })
    .inspect(|_| tracing::trace!(container = name, "create body prepared"))
}

impl Container {
    async fn join_networks(&self, def: &ContainerDefinition, on_session: bool) -> Result<()> {
        // The first extra network was joined at create when the session network was not.
        let skip = usize::from(!on_session && def.network_mode.is_none());
        for join in def.networks.iter().skip(skip) {
            self.inner
                .docker()
                .connect_network(
                    &join.network,
                    NetworkConnectRequest {
                        container: self.inner.name.clone(),
                        endpoint_config: Some(EndpointSettings {
                            aliases: Some(join.aliases.clone()),
                            ..Default::default()
                        }),
                    },
                )
                .await
                .map_err(|e| {
                    Error::docker(
                        format!(
                            "connect container {} to network {}",
                            self.inner.name, join.network
                        ),
                        e,
                    )
                })?;
        }
        Ok(())
    }

    /// Starts a created (or stopped) container and waits for `wait` until `deadline`.
    pub(crate) async fn start_and_wait(
        &self,
        wait: Option<&Wait>,
        deadline: Instant,
    ) -> Result<()> {
        let inner = self.inner.clone();
        let wait = wait.cloned();
        on_runtime(async move { start_here(&inner, wait.as_ref(), deadline).await }).await
    }

    /// A handle to `inner`'s container that owns nothing (dropping it does nothing), for a custom
    /// wait check.
    pub(crate) fn view(inner: Arc<Inner>) -> Container {
        Container { inner, view: true }
    }

    /// Gives up ownership without removing anything: another handle owns the container now.
    pub(crate) fn disown(self) {
        self.inner.kept.store(true, Ordering::SeqCst);
    }

    /// Starts the container (after [`ContainerDefinition::create`] or [`Container::stop`]).
    pub async fn start(&self) -> Result<()> {
        self.start_and_wait(None, Instant::now()).await
    }

    /// Waits until `wait` holds, for at most `timeout`.
    pub async fn wait_for(&self, wait: &Wait, timeout: Duration) -> Result<()> {
        let inner = self.inner.clone();
        let wait = wait.clone();
        on_runtime(
            async move { crate::wait::wait_until(&inner, &wait, Instant::now() + timeout).await },
        )
        .await
    }

    /// Waits until the definition's wait holds again (after a restart, say), within its startup
    /// timeout. Without a wait in the definition, returns at once.
    pub async fn wait_ready(&self) -> Result<()> {
        let Some(wait) = self.inner.definition.wait.clone() else {
            return Ok(());
        };
        self.wait_for(&wait, self.inner.definition.startup_timeout)
            .await
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
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            let inner = Arc::new(Inner {
                session,
                id: RwLock::new(info.id.unwrap_or(id)),
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
            refresh_ports(&inner).await?;
            Ok(Container { inner, view: false })
        })
        .await
    }

    /// Whether dropping this handle leaves the container in place (kept, or shared by the run).
    pub fn is_kept(&self) -> bool {
        self.inner.kept.load(Ordering::SeqCst)
    }
}

/// Starts `inner`'s container and waits for `wait`; runs on the library's runtime.
pub(crate) async fn start_here(
    inner: &Arc<Inner>,
    wait: Option<&Wait>,
    deadline: Instant,
) -> Result<()> {
    if inner.note_start() {
        // Started again: note when the previous run ended, so that a wait on its log tells the
        // runs apart even once this one has ended too.
        if let Ok(info) = inspect_here(inner).await {
            inner.note_state(&info.state.unwrap_or_default());
        }
    }
    let started = Instant::now();
    inner
        .docker()
        .start_container(&inner.name, None)
        .await
        .map_err(|e| Error::docker(format!("start container {}", inner.name), e))?;
    tracing::debug!(container = %inner.name, elapsed = ?started.elapsed(), "started");
    // Only published ports need the engine's answer of which host port it chose. A wait that
    // does not probe ports (logs, health, exit) runs meanwhile: the answer is in hand by the
    // time the container is ready, and the start is ready no later than the wait alone.
    let ports = async {
        if inner.definition.ports.is_empty() {
            Ok(())
        } else {
            refresh_ports(inner).await
        }
    };
    match wait {
        Some(wait) if wait.needs_ports() => {
            ports.await?;
            crate::wait::wait_until(inner, wait, deadline).await?;
        }
        Some(wait) => {
            tokio::try_join!(ports, crate::wait::wait_until(inner, wait, deadline))?;
        }
        None => ports.await?,
    }
    if wait.is_some() {
        tracing::debug!(container = %inner.name, elapsed = ?started.elapsed(), "ready");
    }
    Ok(())
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
    Ok(())
}
