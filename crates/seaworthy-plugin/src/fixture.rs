//! Plugin fixtures: the core [`Fixture`] contract, implemented by calls into a plugin.
//!
//! [`PluginFixtureDefinition`] is made from a loaded [`Plugin`] and a configuration; making it
//! calls the plugin's `definition` (so a bad configuration fails there, naming the key). It is a
//! [`FixtureDefinition`] like any native one: start it per test, or share it per process or per
//! run with [`seaworthy::Shared`]. Its `attach` calls the plugin's `ready` until it answers true
//! and asks for the connection info; [`PluginFixture::clean`] calls the plugin's `clean`. Every
//! call runs on Seaworthy's own runtime, so a fixture shared between tests (each with its own
//! runtime) keeps working.

use std::sync::Arc;
use std::time::{Duration, Instant};

use seaworthy::baseline_cache::BaselineCache;
use seaworthy::{
    ConnectionInfo, Container, ContainerDefinition, ContainerFixtureDefinition, Fixture, Wait,
};

use crate::error::{PluginError, Result};
use crate::instance::{Call, Reply, Runner};
use crate::isolation::SlotPool;
use crate::latest::types::{
    ConnectionInfo as WitConnection, ContainerSpec, MountSource, Wait as WitWait,
};
use crate::limits::Limits;
use crate::plugin::{block_on, Plugin, PluginHost};

/// Label on the containers of plugin fixtures, naming the plugin.
pub const LABEL_PLUGIN: &str = "io.seaworthy.plugin";

/// How often `ready` is asked while the service is not ready.
const READY_INTERVAL: Duration = Duration::from_millis(50);
/// Startup deadline when the plugin's spec names none.
const DEFAULT_STARTUP: Duration = Duration::from_secs(60);

pub(crate) type Config = Arc<Vec<(String, String)>>;

/// Runs a plugin call on the caller's tokio runtime when there is one (no hop between
/// runtimes: the plugin's TCP connections are registered with Seaworthy's runtime, which
/// outlives any test's), else on Seaworthy's runtime.
pub(crate) async fn here_or_on_runtime<F, T>(fut: F) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        fut.await
    } else {
        seaworthy::runtime::run(fut).await
    }
}

/// A plugin plus a configuration: a [`FixtureDefinition`](seaworthy::FixtureDefinition) whose container and behaviour come
/// from the plugin.
///
/// ```no_run
/// use seaworthy::{Fixture, FixtureDefinition, Shared};
/// use seaworthy_plugin::PluginFixtureDefinition;
///
/// fn memcached() -> PluginFixtureDefinition {
///     // Found on SEAWORTHY_PLUGIN_PATH, granted in seaworthy.toml.
///     PluginFixtureDefinition::load("memcached", [("memory-mb", "32")]).expect("the memcached plugin")
/// }
/// static MEMCACHED: Shared<PluginFixtureDefinition> = Shared::per_process(memcached);
///
/// #[tokio::test]
/// async fn caches() -> seaworthy::Result<()> {
///     let cache = MEMCACHED.fresh().await?; // this test's alone, cleaned at hand-out
///     let url = cache.connection().url(); // memcached://127.0.0.1:49153
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct PluginFixtureDefinition {
    plugin: Plugin,
    pub(crate) config: Config,
    pub(crate) spec: Arc<ContainerSpec>,
    limits: Limits,
    /// The baseline cache setting (as the environment says unless set).
    pub(crate) cache: BaselineCache,
    /// The cached baseline image this definition starts from, instead of the spec's image.
    pub(crate) cached_image: Option<Arc<str>>,
}

impl std::fmt::Debug for PluginFixtureDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginFixtureDefinition")
            .field("plugin", &self.plugin.id())
            .field("config", &self.config)
            .field("image", &self.spec.image)
            .field("cached_image", &self.cached_image)
            .finish()
    }
}

impl Plugin {
    /// A fixture definition for `config` (key/value pairs the plugin documents). Calls the
    /// plugin's `definition`, so an invalid configuration fails here; blocks the calling thread
    /// for that call.
    pub fn fixture<I, K, V>(&self, config: I) -> Result<PluginFixtureDefinition>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let config: Config = Arc::new(
            config
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        let runner = Runner::new(self.inner.clone(), None, self.inner.limits.clone());
        // The plugin must be what its manifest says it is: the grants were given to that id.
        match block_on(runner.call(Call::Metadata, &Vec::new()))? {
            Reply::Metadata(m) if m.id == self.id() => {}
            Reply::Metadata(m) => {
                return Err(PluginError::InvalidComponent {
                    plugin: self.id().to_string(),
                    path: self.wasm_path().to_path_buf(),
                    reason: format!(
                        "its manifest says id `{}` but its metadata() says {:?}; refused",
                        self.id(),
                        crate::host_api::clip(&m.id, 100)
                    ),
                })
            }
            _ => return Err(runner.mismatch(Call::Metadata)),
        }
        let spec = match block_on(runner.call(Call::Definition, &config))? {
            Reply::Definition(Ok(spec)) => spec,
            Reply::Definition(Err(e)) => return Err(block_on(runner.failed(Call::Definition, &e))),
            _ => return Err(runner.mismatch(Call::Definition)),
        };
        check_spec(self.id(), &spec)?;
        Ok(PluginFixtureDefinition {
            plugin: self.clone(),
            config,
            spec: Arc::new(spec),
            limits: self.inner.limits.clone(),
            cache: BaselineCache::from_env(),
            cached_image: None,
        })
    }
}

/// The most entries a container spec's lists may have (ports, mounts, waits, environment,
/// arguments), and the longest string in it: the host's work on a spec stays small whatever a
/// plugin returns.
const MAX_SPEC_ENTRIES: usize = 256;
const MAX_SPEC_STRING: usize = 64 << 10;

/// Refuses what a plugin may not ask for: host directories, waits on unpublished ports, and
/// specs larger than the host's bounds.
fn check_spec(plugin: &str, spec: &ContainerSpec) -> Result<()> {
    let refuse = |message: String| PluginError::Failed {
        plugin: plugin.to_string(),
        call: "definition",
        message,
    };
    let args = |list: &Option<Vec<String>>| list.as_ref().map_or(0, Vec::len);
    for (what, count) in [
        ("ports", spec.ports.len()),
        ("mounts", spec.mounts.len()),
        ("waits", spec.waits.len()),
        ("environment variables", spec.env.len()),
        ("command arguments", args(&spec.cmd)),
        ("entrypoint arguments", args(&spec.entrypoint)),
    ] {
        if count > MAX_SPEC_ENTRIES {
            return Err(refuse(format!(
                "the container spec has {count} {what}, over the host's limit of {MAX_SPEC_ENTRIES}"
            )));
        }
    }
    let longest = [&spec.image]
        .into_iter()
        .chain(spec.user.iter())
        .chain(spec.env.iter().flat_map(|(k, v)| [k, v]))
        .chain(spec.cmd.iter().flatten())
        .chain(spec.entrypoint.iter().flatten())
        .map(String::len)
        .max()
        .unwrap_or(0);
    if longest > MAX_SPEC_STRING {
        return Err(refuse(format!(
            "the container spec has a string of {longest} bytes, over the host's limit of {MAX_SPEC_STRING}"
        )));
    }
    for mount in &spec.mounts {
        if !mount.target.starts_with('/') {
            return Err(refuse(format!(
                "mount target {:?} is not an absolute path",
                mount.target
            )));
        }
        if let MountSource::Volume(name) = &mount.source {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && name.as_bytes()[0].is_ascii_alphanumeric();
            if !ok {
                return Err(refuse(format!(
                    "volume name {name:?} must be letters, digits, `-` and `_` (plugins cannot mount host paths)"
                )));
            }
        }
    }
    for wait in &spec.waits {
        let port = match wait {
            WitWait::Http(h) => Some(h.port),
            WitWait::Tcp(p) => Some(*p),
            _ => None,
        };
        if let Some(port) = port.filter(|p| !spec.ports.contains(p)) {
            return Err(refuse(format!(
                "a wait uses port {port}, which the spec does not publish"
            )));
        }
    }
    Ok(())
}

impl PluginFixtureDefinition {
    /// Loads plugin `id` with the process-wide [`PluginHost::global`] (search path and grants
    /// from `SEAWORTHY_PLUGIN_PATH` and `seaworthy.toml`) and makes a definition for `config`.
    /// `id` may be an OCI reference (`registry.example.com/acme/kv:0.1`): it is resolved through
    /// `seaworthy.lock` and the local store, and installed on a miss (see [`crate::oci`]).
    pub fn load<I, K, V>(id: &str, config: I) -> Result<PluginFixtureDefinition>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        PluginHost::global()?.load(id)?.fixture(config)
    }

    /// Overrides the plugin's limits for fixtures started from this definition.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The plugin.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The configuration.
    pub fn config(&self) -> &[(String, String)] {
        &self.config
    }

    /// The spec's startup timeout (or the default), cut to the host's
    /// [`Limits::max_startup`]: a plugin cannot make a run wait for days.
    fn startup_timeout(&self) -> Duration {
        self.spec
            .startup_timeout_ms
            .map_or(DEFAULT_STARTUP, |ms| Duration::from_millis(u64::from(ms)))
            .min(self.limits.max_startup)
    }
}

fn wait_of(wait: &WitWait) -> Wait {
    match wait {
        WitWait::Log(l) => Wait::log_times(&l.pattern, l.times.max(1) as usize),
        WitWait::Http(h) => match h.status {
            Some(status) => Wait::http_status(h.port, h.path.clone(), status),
            None => Wait::http(h.port, h.path.clone()),
        },
        WitWait::Tcp(port) => Wait::tcp(*port),
        WitWait::Healthy => Wait::healthy(),
        WitWait::RunningForMs(ms) => Wait::running_for(Duration::from_millis(u64::from(*ms))),
    }
}

impl ContainerFixtureDefinition for PluginFixtureDefinition {
    type Fixture = PluginFixture;

    fn key(&self) -> String {
        let config: Vec<String> = self
            .config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let key = format!(
            "plugin:{}:{}:{}",
            self.plugin.id(),
            &self.plugin.component_digest()[..16],
            config.join(",")
        );
        match &self.cached_image {
            Some(image) => format!("{key}:cached={image}"),
            None => key,
        }
    }

    fn container_definition(&self) -> ContainerDefinition {
        let spec = &self.spec;
        let image = self
            .cached_image
            .as_deref()
            .map_or_else(|| spec.image.clone(), str::to_string);
        let mut def = ContainerDefinition::new(image)
            .with_label(LABEL_PLUGIN, self.plugin.id())
            .with_startup_timeout(self.startup_timeout());
        for (k, v) in &spec.env {
            def = def.with_env(k, v);
        }
        if let Some(cmd) = &spec.cmd {
            def = def.with_cmd(cmd.clone());
        }
        if let Some(entrypoint) = &spec.entrypoint {
            def = def.with_entrypoint(entrypoint.clone());
        }
        if let Some(user) = &spec.user {
            def = def.with_user(user);
        }
        for port in &spec.ports {
            def = def.with_port(*port);
        }
        for mount in &spec.mounts {
            def = match &mount.source {
                MountSource::Tmpfs(size) => def.with_tmpfs(
                    mount.target.clone(),
                    size.map(|s| s.min(i64::MAX as u64) as i64),
                ),
                MountSource::Volume(name) => def.with_mount(&format!(
                    "{name}:{}{}",
                    mount.target,
                    if mount.read_only { ":ro" } else { "" }
                )),
            };
        }
        let mut waits: Vec<Wait> = spec.waits.iter().map(wait_of).collect();
        match waits.len() {
            0 => def,
            1 => def.with_wait(waits.remove(0)),
            _ => def.with_wait(Wait::all(waits)),
        }
    }

    async fn attach(&self, container: Container) -> seaworthy::Result<PluginFixture> {
        let name = container.name().to_string();
        let definition = self.clone();
        seaworthy::runtime::run(async move { PluginFixture::attach(definition, container).await })
            .await
            .map_err(|e| e.into_core(self.plugin.id(), &name, "attach"))
    }

    async fn prepare(&self, session: &seaworthy::Session) -> seaworthy::Result<Self> {
        seaworthy::baseline_cache::prepare(self, session).await
    }
}

/// A started plugin fixture: its container, and the plugin instance that cleans it.
pub struct PluginFixture {
    pub(crate) definition: PluginFixtureDefinition,
    pub(crate) container: Arc<Container>,
    pub(crate) runner: Arc<Runner>,
    pub(crate) connection: ConnectionInfo,
    pub(crate) slots: Arc<SlotPool>,
}

impl std::fmt::Debug for PluginFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginFixture")
            .field("plugin", &self.definition.plugin.id())
            .field("container", &self.container.name())
            .field("connection", &self.connection)
            .finish()
    }
}

/// The host-side connection info for a plugin's answer: the container port becomes the
/// published host port.
pub(crate) fn connection_of(
    plugin: &str,
    container: &Container,
    c: WitConnection,
) -> Result<ConnectionInfo> {
    let port = container
        .host_port(c.port)
        .map_err(|source| PluginError::Container {
            plugin: plugin.to_string(),
            source: Box::new(source),
        })?;
    let mut info = ConnectionInfo::new(c.scheme, container.host(), port);
    if let Some(user) = c.user {
        info = info.with_credentials(user, c.password);
    }
    if let Some(path) = c.path {
        info = info.with_path(path);
    }
    for (k, v) in c.params {
        info = info.with_param(k, v);
    }
    Ok(info)
}

impl PluginFixture {
    async fn attach(
        definition: PluginFixtureDefinition,
        container: Container,
    ) -> Result<PluginFixture> {
        let container = Arc::new(container);
        let plugin = definition.plugin.clone();
        let runner = Arc::new(Runner::new(
            plugin.inner.clone(),
            Some(container.clone()),
            definition.limits.clone(),
        ));
        let config = definition.config.clone();
        let deadline = Instant::now() + definition.startup_timeout();
        loop {
            match runner.call(Call::Ready, &config).await? {
                Reply::Ready(Ok(true)) => break,
                Reply::Ready(Ok(false)) if Instant::now() < deadline => {
                    tokio::time::sleep(READY_INTERVAL).await
                }
                Reply::Ready(Ok(false)) => {
                    return Err(PluginError::Failed {
                        plugin: plugin.id().to_string(),
                        call: "ready",
                        message: format!(
                            "the service in container {} was not ready within {:?}",
                            container.name(),
                            definition.startup_timeout()
                        ),
                    })
                }
                Reply::Ready(Err(e)) => return Err(runner.failed(Call::Ready, &e).await),
                _ => return Err(runner.mismatch(Call::Ready)),
            }
        }
        let connection = match runner.call(Call::Connection, &config).await? {
            Reply::Connection(Some(c)) => connection_of(plugin.id(), &container, c)?,
            Reply::Connection(None) => match definition.spec.ports.first() {
                Some(port) => connection_of(
                    plugin.id(),
                    &container,
                    WitConnection {
                        scheme: "tcp".into(),
                        port: *port,
                        user: None,
                        password: None,
                        path: None,
                        params: Vec::new(),
                    },
                )?,
                None => ConnectionInfo::new("container", container.name(), 0),
            },
            _ => return Err(runner.mismatch(Call::Connection)),
        };
        let slots = match runner.call(Call::IsolationSlots, &config).await? {
            Reply::Slots(n) => n.min(4096),
            _ => return Err(runner.mismatch(Call::IsolationSlots)),
        };
        let slots = Arc::new(SlotPool::new(slots, runner.clone(), config.clone()));
        Ok(PluginFixture {
            definition,
            container,
            runner,
            connection,
            slots,
        })
    }

    /// The plugin.
    pub fn plugin(&self) -> &Plugin {
        &self.definition.plugin
    }

    /// The definition this fixture was started from.
    pub fn definition(&self) -> &PluginFixtureDefinition {
        &self.definition
    }

    /// Calls the plugin's `clean`, returning the plugin's own error type.
    pub async fn try_clean(&self) -> Result<()> {
        let runner = self.runner.clone();
        let config = self.definition.config.clone();
        here_or_on_runtime(async move {
            match runner.call(Call::Clean, &config).await? {
                Reply::Unit(Ok(())) => Ok(()),
                Reply::Unit(Err(e)) => Err(runner.failed(Call::Clean, &e).await),
                _ => Err(runner.mismatch(Call::Clean)),
            }
        })
        .await
    }

    /// Calls the plugin's `ready` once.
    pub async fn check_ready(&self) -> Result<bool> {
        let runner = self.runner.clone();
        let config = self.definition.config.clone();
        here_or_on_runtime(async move {
            match runner.call(Call::Ready, &config).await? {
                Reply::Ready(Ok(ready)) => Ok(ready),
                Reply::Ready(Err(e)) => Err(runner.failed(Call::Ready, &e).await),
                _ => Err(runner.mismatch(Call::Ready)),
            }
        })
        .await
    }
}

impl Fixture for PluginFixture {
    type Error = seaworthy::Error;

    fn kind(&self) -> &str {
        self.definition.plugin.id()
    }

    fn container(&self) -> &Container {
        &self.container
    }

    async fn clean(&self) -> seaworthy::Result<()> {
        self.try_clean()
            .await
            .map_err(|e| e.into_core(self.kind(), self.container.name(), "clean"))
    }

    fn connection(&self) -> ConnectionInfo {
        self.connection.clone()
    }
}
