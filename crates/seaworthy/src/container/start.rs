//! The start sequence every container goes through: the image (substituted, pulled when
//! missing), the create (on the session network when it needs one), the copies, the start and the
//! wait, all under one deadline; a failed start removes what it created.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountTmpfsOptions,
    MountType, NetworkConnectRequest, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::CreateContainerOptions;

use crate::definition::{ContainerDefinition, SessionNetwork};
use crate::error::{status_of, Error, Result};
use crate::reference::ImageRef;
use crate::runtime::on_runtime;
use crate::session::{ResourceKind, Session};
use crate::spec::MountSource;

use super::{inspect_here, refresh_ports, Container, Inner, Runs};
use crate::wait::Wait;

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
        let session = session.clone();
        // The whole sequence in one trip to the library's runtime: each trip wakes a thread of
        // another runtime and waits to be woken back, a scheduling delay each on a loaded machine.
        on_runtime(async move {
            let wait = self.wait.clone();
            let container = create_here_until(self, session.clone(), deadline).await?;
            match start_here(&container.inner, wait.as_ref(), deadline).await {
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
        })
        .await
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
    labels.extend(if def.reused {
        crate::session::reused::labels()
    } else if def.run_scoped {
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
        // Left out when empty or off, as the Docker CLI and a bare client leave them out: the
        // create body is the one a user's own call would send.
        env: (!def.env.is_empty())
            .then(|| def.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
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
            privileged: def.privileged.then_some(true),
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
}

/// How often a start refused because the engine chose a taken host port is tried again.
const ENGINE_PORT_RETRIES: u32 = 4;

/// Whether a refused start is the engine's own port race: it chose every host port (none is
/// pinned, so a taken port is not the user's conflict) and said one was already allocated.
fn engine_chose_a_taken_port(ports: &[crate::spec::PortSpec], error: &str) -> bool {
    !ports.is_empty()
        && ports.iter().all(|p| p.host_port.is_none())
        && error.contains("port is already allocated")
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
    let mut refused = 0;
    loop {
        match inner.docker().start_container(&inner.name, None).await {
            Ok(()) => break,
            Err(e)
                if refused < ENGINE_PORT_RETRIES
                    && Instant::now() < deadline
                    && engine_chose_a_taken_port(&inner.definition.ports, &e.to_string()) =>
            {
                // Docker 20.10 picks a free host port for IPv4 and binds the same number on
                // IPv6, where another container may hold it ("Bind for :::PORT failed: port is
                // already allocated"). No port of ours is pinned: starting again lets the engine
                // pick another.
                refused += 1;
                tracing::debug!(container = %inner.name, error = %e, "the engine chose a host port that was taken; start again");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(refused))).await;
            }
            Err(e) => return Err(Error::docker(format!("start container {}", inner.name), e)),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::engine_chose_a_taken_port;
    use crate::spec::PortSpec;

    const TAKEN: &str = "Docker responded with status code 500: driver failed programming \
        external connectivity on endpoint sw-1 (f2b3): Bind for :::33793 failed: port is already \
        allocated";

    #[test]
    fn only_the_engines_own_choice_of_a_taken_port_is_started_again() {
        let chosen = [PortSpec::tcp(5432), PortSpec::tcp(8080)];
        assert!(engine_chose_a_taken_port(&chosen, TAKEN));
        // A port the user pinned is their conflict: said at once, not retried.
        let pinned = [PortSpec::tcp(5432), PortSpec::parse("8080:80").unwrap()];
        assert!(!engine_chose_a_taken_port(&pinned, TAKEN));
        // Nothing published, or another refusal: not this race.
        assert!(!engine_chose_a_taken_port(&[], TAKEN));
        assert!(!engine_chose_a_taken_port(
            &chosen,
            "Docker responded with status code 500: OCI runtime create failed"
        ));
    }
}
