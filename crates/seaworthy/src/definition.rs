//! [`ContainerDefinition`]: what to run, described with builders and short forms.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::files::CopySource;
use crate::image::PullPolicy;
use crate::reference::ImageRef;
use crate::spec::{parse_env, MountSource, MountSpec, PortSpec};
use crate::wait::Wait;

/// A Docker healthcheck, run by the engine inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Time between checks.
    pub interval: Duration,
    /// Time a check may take.
    pub timeout: Duration,
    /// Failures in a row before unhealthy.
    pub retries: u32,
    /// Grace period after start during which failures don't count.
    pub start_period: Duration,
}

impl Healthcheck {
    /// A check run by the container's shell (`CMD-SHELL`).
    pub fn shell(command: impl Into<String>) -> Self {
        Healthcheck::from_test(vec!["CMD-SHELL".into(), command.into()])
    }

    /// A check run without a shell (`CMD`).
    pub fn cmd<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut test = vec!["CMD".to_string()];
        test.extend(argv.into_iter().map(Into::into));
        Healthcheck::from_test(test)
    }

    /// Disables the image's healthcheck.
    pub fn none() -> Self {
        Healthcheck::from_test(vec!["NONE".into()])
    }

    fn from_test(test: Vec<String>) -> Self {
        Healthcheck {
            test,
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            retries: 3,
            start_period: Duration::ZERO,
        }
    }

    /// Sets the interval between checks (the default is 500 ms, tuned for tests).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the time one check may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the number of failures in a row that make the container unhealthy.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the start period.
    pub fn start_period(mut self, start_period: Duration) -> Self {
        self.start_period = start_period;
        self
    }
}

/// Resource limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a CPU (`1_500_000_000` is 1.5 CPUs).
    pub nano_cpus: Option<i64>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
}

/// Whether a container joins the session network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionNetwork {
    /// When it has a name or aliases (others must reach it), or once the network exists
    /// (named containers are there to be reached); until then the default bridge, which the
    /// engine sets up faster.
    Auto,
    /// Always ([`ContainerDefinition::on_session_network`]).
    Always,
    /// Never ([`ContainerDefinition::without_session_network`] and the network modes).
    Never,
}

/// A network to join besides (or instead of) the session network.
#[derive(Debug, Clone)]
pub(crate) struct NetworkJoin {
    pub(crate) network: String,
    pub(crate) aliases: Vec<String>,
}

/// Describes a container: image, configuration, and the wait that says it is ready.
///
/// Defaults: the image is pulled when missing; every container port you publish gets a random
/// host port; a container with a name or alias joins the session network, reachable there by
/// that name (see [`ContainerDefinition::with_name`] for unnamed containers); it is
/// labelled and named for the session and removed with it. Errors in short forms (`"8080:x"`) are
/// reported by [`ContainerDefinition::start`], naming the bad string.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use seaworthy::{ContainerDefinition, Wait};
/// let web = ContainerDefinition::new("seaworthy-test/nginx")
///     .with_name("web")
///     .with_port(80)
///     .with_wait(Wait::http(80, "/health"))
///     .start()
///     .await?;
/// let body = web.http(80)?.get("/").send().await?.text().await?;
/// assert!(body.contains("nginx"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ContainerDefinition {
    pub(crate) image: String,
    pub(crate) name: Option<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cmd: Option<Vec<String>>,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) user: Option<String>,
    pub(crate) workdir: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) ports: Vec<PortSpec>,
    pub(crate) mounts: Vec<MountSpec>,
    pub(crate) networks: Vec<NetworkJoin>,
    pub(crate) session_network: SessionNetwork,
    pub(crate) aliases: Vec<String>,
    pub(crate) network_mode: Option<String>,
    pub(crate) healthcheck: Option<Healthcheck>,
    pub(crate) resources: Resources,
    pub(crate) privileged: bool,
    pub(crate) cap_add: Vec<String>,
    pub(crate) init: bool,
    pub(crate) stop_signal: Option<String>,
    pub(crate) stop_timeout: Option<Duration>,
    /// Run in the container right before each paused snapshot.
    pub(crate) snapshot_flush: Option<crate::exec::Exec>,
    pub(crate) copies: Vec<(String, CopySource)>,
    pub(crate) wait: Option<Wait>,
    pub(crate) startup_timeout: Duration,
    pub(crate) pull: PullPolicy,
    /// The platform (`linux/arm64`) asked of the engine for the pull and the create.
    pub(crate) platform: Option<String>,
    /// The OCI runtime the engine runs the container with (`runc`, `runsc`).
    pub(crate) runtime: Option<String>,
    /// Shared by the whole test run: run labels, run namespace, not owned by this process.
    pub(crate) run_scoped: bool,
    /// The exact engine name (a restored snapshot takes its predecessor's).
    pub(crate) engine_name: Option<String>,
    /// Reuse across runs as set by [`ContainerDefinition::with_reuse`] (`None`: as
    /// `SEAWORTHY_REUSE` says).
    pub(crate) reuse: Option<bool>,
    /// Created to be reused across runs: labelled as such, owned by no process nor run.
    pub(crate) reused: bool,
    pub(crate) invalid: Option<String>,
    /// Set by [`ContainerDefinition::refuse`]: the definition's owner found it invalid.
    pub(crate) refusal: Option<Refusal>,
}

/// Why the owner of a definition (a fixture) refused it: the parts of an [`Error::Invalid`].
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    kind: &'static str,
    input: String,
    reason: String,
}

impl ContainerDefinition {
    /// A container of `image` (`"redis:7"`, `"redis"` meaning `redis:latest`).
    pub fn new(image: impl Into<String>) -> Self {
        let image = image.into();
        let invalid = ImageRef::parse(&image).err().map(|e| e.to_string());
        ContainerDefinition {
            image,
            name: None,
            env: Vec::new(),
            cmd: None,
            entrypoint: None,
            user: None,
            workdir: None,
            hostname: None,
            labels: HashMap::new(),
            ports: Vec::new(),
            mounts: Vec::new(),
            networks: Vec::new(),
            session_network: SessionNetwork::Auto,
            aliases: Vec::new(),
            network_mode: None,
            healthcheck: None,
            resources: Resources::default(),
            privileged: false,
            cap_add: Vec::new(),
            init: false,
            stop_signal: None,
            stop_timeout: None,
            snapshot_flush: None,
            copies: Vec::new(),
            wait: None,
            startup_timeout: Duration::from_secs(60),
            pull: PullPolicy::Missing,
            platform: crate::image::default_platform(),
            runtime: None,
            run_scoped: false,
            engine_name: None,
            reuse: None,
            reused: false,
            invalid,
            refusal: None,
        }
    }

    fn defer(mut self, error: Error) -> Self {
        if self.invalid.is_none() {
            self.invalid = Some(error.to_string());
        }
        self
    }

    /// The image reference as given.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The wait that says the container is ready, if any.
    pub fn wait(&self) -> Option<&Wait> {
        self.wait.as_ref()
    }

    /// The deadline for pulling, creating, starting and the wait, together
    /// ([`with_startup_timeout`](Self::with_startup_timeout)).
    pub fn startup_timeout(&self) -> Duration {
        self.startup_timeout
    }

    /// A stable text of everything the definition configures (labels in order, file contents
    /// included), the same in every process: a fixture hashes it into its key, so that two
    /// fixtures customised differently are never taken for one another. Not meant to be read (it
    /// holds environment values): hash it.
    #[doc(hidden)]
    pub fn key(&self) -> String {
        let labels: std::collections::BTreeMap<_, _> = self.labels.iter().collect();
        let networks: Vec<_> = self
            .networks
            .iter()
            .map(|n| (&n.network, &n.aliases))
            .collect();
        format!(
            "{:?}",
            (
                (
                    &self.image,
                    &self.name,
                    &self.env,
                    &self.cmd,
                    &self.entrypoint
                ),
                (
                    &self.user,
                    &self.workdir,
                    &self.hostname,
                    labels,
                    &self.ports
                ),
                (&self.mounts, networks, &self.aliases, &self.network_mode),
                (
                    &self.healthcheck,
                    &self.resources,
                    self.privileged,
                    &self.cap_add
                ),
                (
                    self.init,
                    &self.stop_signal,
                    self.stop_timeout,
                    &self.copies
                ),
                (&self.wait, self.pull, &self.platform, &self.runtime),
                (
                    format!("{:?}", self.session_network),
                    self.run_scoped,
                    &self.snapshot_flush
                ),
            )
        )
    }

    /// The name given with [`with_name`](Self::with_name), if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Replaces the image (used for image substitution by fixtures).
    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self.invalid = ImageRef::parse(&self.image).err().map(|e| e.to_string());
        self
    }

    /// Names the container. The engine name is namespaced (`sw-<run>-<process>-NAME`); on the
    /// session network, other containers reach it as `NAME`.
    ///
    /// The session network (a user-defined bridge with the engine's name resolution) is created
    /// by the first container of the session that has a name or alias. Every container of the
    /// session is on it from then on: unnamed containers started before it existed join it
    /// when it is created, so they reach the named ones. An unnamed container started while no
    /// named one exists stays on the engine's default bridge, where the engine starts it faster
    /// (no name resolver to set up; BENCHMARKS.md has the figures); [`ContainerDefinition::on_session_network`] puts it on the session network
    /// regardless.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets an environment variable.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Keeps the container of a fixture shared per run ([`Shared::per_run`](crate::Shared::per_run))
    /// after the run, for the next run to reuse (`true`), or never (`false`); unset, as
    /// `SEAWORTHY_REUSE=on|off` says (off by default). `SEAWORTHY_REUSE=off` turns reuse off
    /// for a run whatever the definitions say. See [`reuse`](crate::reuse) for how a reused
    /// fixture is found, checked and cleaned, and how `seaworthy gc` removes idle ones.
    pub fn with_reuse(mut self, reuse: bool) -> Self {
        self.reuse = Some(reuse);
        self
    }

    /// Whether a fixture shared per run from this definition is reused across runs, in this run
    /// (the definition's [`with_reuse`](Self::with_reuse), then `SEAWORTHY_REUSE`).
    pub fn reuses(&self) -> bool {
        crate::session::reused::active(self.reuse)
    }

    /// The value of the environment variable `key` as set on this definition (the last setting
    /// wins), not counting the image's own environment.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets environment variables from `KEY=value` strings.
    pub fn with_env_entries<I, S>(mut self, entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for entry in entries {
            match parse_env(entry.as_ref()) {
                Ok(kv) => self.env.push(kv),
                Err(e) => return self.defer(e),
            }
        }
        self
    }

    /// Replaces the image's command.
    pub fn with_cmd<I, S>(mut self, cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cmd = Some(cmd.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces the image's entrypoint (an empty list clears it).
    pub fn with_entrypoint<I, S>(mut self, entrypoint: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.entrypoint = Some(entrypoint.into_iter().map(Into::into).collect());
        self
    }

    /// Runs as `user` (`name`, `uid`, `uid:gid`).
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the working directory.
    pub fn with_workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// Sets the container's host name.
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Adds a label (the session's labels are always added).
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Publishes a container port: `80` on a random host port, or a [`PortSpec`].
    pub fn with_port(mut self, port: impl Into<PortSpec>) -> Self {
        self.ports.push(port.into());
        self
    }

    /// Publishes a port from its short form: `80`, `53/udp`, `8080:80`, `127.0.0.1:8080:80`.
    pub fn with_port_spec(self, spec: &str) -> Self {
        match PortSpec::parse(spec) {
            Ok(p) => self.with_port(p),
            Err(e) => self.defer(e),
        }
    }

    /// Mounts from a short form: `data:/var/lib/x[:ro]` (a session volume) or `/host:/in[:ro]`.
    pub fn with_mount(mut self, spec: &str) -> Self {
        match MountSpec::parse(spec) {
            Ok(m) => {
                self.mounts.push(m);
                self
            }
            Err(e) => self.defer(e),
        }
    }

    /// Adds a parsed mount.
    pub fn with_mount_spec(mut self, mount: MountSpec) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Mounts a [`Volume`](crate::Volume) at `target`.
    pub fn with_volume(
        mut self,
        volume: &crate::Volume,
        target: impl Into<String>,
        read_only: bool,
    ) -> Self {
        self.mounts.push(MountSpec {
            source: MountSource::ExternalVolume(volume.name().to_string()),
            target: target.into(),
            read_only,
        });
        self
    }

    /// Mounts a tmpfs at `target`, limited to `size_bytes` when given.
    pub fn with_tmpfs(mut self, target: impl Into<String>, size_bytes: Option<i64>) -> Self {
        self.mounts.push(MountSpec {
            source: MountSource::Tmpfs { size_bytes },
            target: target.into(),
            read_only: false,
        });
        self
    }

    /// Joins `network` with extra `aliases` (besides the session network).
    pub fn with_network<I, S>(mut self, network: &crate::Network, aliases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.networks.push(NetworkJoin {
            network: network.name().to_string(),
            aliases: aliases.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Adds an alias on the session network (the container's name is always one).
    pub fn with_alias(mut self, alias: impl Into<String>) -> Self {
        self.aliases.push(alias.into());
        self
    }

    /// Joins the session network even without a name or alias (by default such a container
    /// starts on the engine's default bridge, and joins the session network only once a named
    /// container has created it). Other containers then reach it by its engine name
    /// ([`Container::name`](crate::Container::name)).
    pub fn on_session_network(mut self) -> Self {
        self.session_network = SessionNetwork::Always;
        self
    }

    /// Keeps the container off the session network (it then joins only the networks given, or the
    /// engine's default bridge when none).
    pub fn without_session_network(mut self) -> Self {
        self.session_network = SessionNetwork::Never;
        self
    }

    /// Shares the network namespace of `other` (a sidecar: it reaches `other` on localhost).
    pub fn with_network_of(mut self, other: &crate::Container) -> Self {
        self.network_mode = Some(format!("container:{}", other.id()));
        self.session_network = SessionNetwork::Never;
        self
    }

    /// Sets the engine network mode directly (`host`, `none`, `container:<id>`).
    pub fn with_network_mode(mut self, mode: impl Into<String>) -> Self {
        self.network_mode = Some(mode.into());
        self.session_network = SessionNetwork::Never;
        self
    }

    /// Sets a healthcheck, replacing the image's.
    pub fn with_healthcheck(mut self, healthcheck: Healthcheck) -> Self {
        self.healthcheck = Some(healthcheck);
        self
    }

    /// Limits memory, in bytes.
    pub fn with_memory_limit(mut self, bytes: i64) -> Self {
        self.resources.memory_bytes = Some(bytes);
        self
    }

    /// Limits CPU (`1.5` = one and a half CPUs).
    pub fn with_cpu_limit(mut self, cpus: f64) -> Self {
        self.resources.nano_cpus = Some((cpus * 1e9) as i64);
        self
    }

    /// Limits the number of processes.
    pub fn with_pids_limit(mut self, pids: i64) -> Self {
        self.resources.pids_limit = Some(pids);
        self
    }

    /// Runs privileged.
    pub fn with_privileged(mut self, privileged: bool) -> Self {
        self.privileged = privileged;
        self
    }

    /// Adds a Linux capability (`NET_ADMIN`).
    pub fn with_capability(mut self, cap: impl Into<String>) -> Self {
        self.cap_add.push(cap.into());
        self
    }

    /// Runs the engine's init process as PID 1.
    pub fn with_init(mut self, init: bool) -> Self {
        self.init = init;
        self
    }

    /// Sets the signal that stops the container.
    pub fn with_stop_signal(mut self, signal: impl Into<String>) -> Self {
        self.stop_signal = Some(signal.into());
        self
    }

    /// Sets how long `stop` waits before killing.
    pub fn with_stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = Some(timeout);
        self
    }

    /// Runs `flush` in the container right before each paused snapshot
    /// ([`Consistency::Paused`](crate::Consistency::Paused), the default), so that the snapshot
    /// holds what the service has acknowledged but keeps only in memory.
    ///
    /// A paused snapshot is crash-consistent: it holds what the service had written to its files
    /// at that instant, not what it holds in memory. PostgreSQL with `synchronous_commit=off` (a
    /// usual setting for tests) acknowledges a commit before it writes the commit's WAL, and writes
    /// it up to three `wal_writer_delay`s later (600 ms by default): a snapshot in that window
    /// restores without the transaction (a table created and loaded just before is missing, its
    /// rows too). For PostgreSQL, `CHECKPOINT` writes everything out (and leaves the restored
    /// server no WAL to replay).
    ///
    /// The snapshot fails if the command does (an exit code other than 0, or its
    /// [timeout](crate::Exec::timeout)); the error names the command and the container, which is
    /// left running, not paused.
    ///
    /// ```no_run
    /// # async fn demo() -> seaworthy::Result<()> {
    /// use seaworthy::{ContainerDefinition, Exec, Wait};
    /// let pg = ContainerDefinition::new("postgres:16")
    ///     .with_env("POSTGRES_PASSWORD", "secret")
    ///     .with_cmd(["postgres", "-c", "synchronous_commit=off"])
    ///     .with_port(5432)
    ///     .with_wait(Wait::tcp(5432))
    ///     .with_snapshot_flush(Exec::new(["psql", "-U", "postgres", "-c", "CHECKPOINT"]))
    ///     .start()
    ///     .await?;
    /// // ... load data ...
    /// let loaded = pg.snapshot("loaded").await?; // holds every committed row
    /// # Ok(()) }
    /// ```
    pub fn with_snapshot_flush(mut self, flush: impl Into<crate::exec::Exec>) -> Self {
        self.snapshot_flush = Some(flush.into());
        self
    }

    /// The command run right before each paused snapshot, if any
    /// ([`with_snapshot_flush`](Self::with_snapshot_flush)).
    pub fn snapshot_flush(&self) -> Option<&crate::exec::Exec> {
        self.snapshot_flush.as_ref()
    }

    /// Places a file with `contents` and permission `mode` at `path` before the container starts.
    pub fn with_file(
        mut self,
        path: impl Into<String>,
        contents: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Self {
        self.copies.push((
            path.into(),
            CopySource::Bytes {
                data: contents.into(),
                mode,
            },
        ));
        self
    }

    /// Copies a host file or directory to `path` before the container starts.
    pub fn with_copy(mut self, host_path: impl Into<PathBuf>, path: impl Into<String>) -> Self {
        self.copies
            .push((path.into(), CopySource::HostPath(host_path.into())));
        self
    }

    /// Sets the condition that means "ready"; [`start`](Self::start) returns once it holds.
    pub fn with_wait(mut self, wait: Wait) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Adds `wait` to the condition that means "ready": the one set before and `wait` must both
    /// hold (just `wait` when none was set). A fixture adds its readiness check so to a
    /// container customised with a wait of the user's.
    pub fn and_wait(mut self, wait: Wait) -> Self {
        self.wait = Some(match self.wait.take() {
            Some(before) => before.and(wait),
            None => wait,
        });
        self
    }

    /// Sets the deadline for pulling the image, creating and starting the container, and the
    /// wait, together (default 60 s). A pull still running at the deadline is abandoned, and the
    /// error names the image.
    pub fn with_startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Sets when the image is pulled.
    pub fn with_pull_policy(mut self, pull: PullPolicy) -> Self {
        self.pull = pull;
        self
    }

    /// Runs the image built for `platform` (`os[/arch[/variant]]`: `linux/amd64`,
    /// `linux/arm64/v8`), as `docker run --platform` does. The platform goes with the pull (a
    /// multi-platform image is pulled for it) and with the create: the engine refuses to create
    /// from a local image of another platform, and its error says which platform the image has.
    /// A local image is not pulled again for the platform under [`PullPolicy::Missing`]; use
    /// [`PullPolicy::Always`] to fetch another platform's variant of a tag already present.
    /// An empty `platform` leaves the choice to the engine (its own platform). Without this
    /// call, `DOCKER_DEFAULT_PLATFORM` is the platform when set, as for `docker run`.
    pub fn with_platform(mut self, platform: impl Into<String>) -> Self {
        let platform = platform.into();
        self.platform = (!platform.is_empty()).then_some(platform);
        self
    }

    /// The platform given with [`with_platform`](Self::with_platform), if any.
    pub fn platform(&self) -> Option<&str> {
        self.platform.as_deref()
    }

    /// Runs the container with the engine's OCI runtime named `runtime` (`runc`, or one
    /// configured in the engine's `runtimes`, like `runsc` or `kata`), as `docker run --runtime`.
    /// The engine refuses a runtime it does not know when the container is created, naming it.
    pub fn with_runtime(mut self, runtime: impl Into<String>) -> Self {
        self.runtime = Some(runtime.into());
        self
    }

    /// Marks the definition invalid: [`validate`](Self::validate), and so every start, fails
    /// with [`Error::Invalid`] `{ kind, input, reason }` before anything (container, network,
    /// volume) is created. For a fixture whose own configuration is invalid (an empty password, a
    /// reserved database name): its [`container_definition`](crate::ContainerFixtureDefinition::container_definition)
    /// refuses, so every way of starting it does. The first refusal is kept.
    pub fn refuse(
        mut self,
        kind: &'static str,
        input: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        if self.refusal.is_none() {
            self.refusal = Some(Refusal {
                kind,
                input: input.into(),
                reason: reason.into(),
            });
        }
        self
    }

    /// Refuses the definition (as [`refuse`](Self::refuse)) when `check` failed: a fixture's
    /// [`container_definition`](crate::ContainerFixtureDefinition::container_definition) passes its own
    /// validation's result (converted into Seaworthy's error), so every way of starting it
    /// refuses an invalid fixture before anything is created. An [`Error::Invalid`] is kept as
    /// it is; another error becomes the reason of an `invalid fixture definition`.
    pub fn refused_by(self, check: Result<()>) -> Self {
        match check {
            Ok(()) => self,
            Err(Error::Invalid {
                kind,
                input,
                reason,
            }) => self.refuse(kind, input, reason),
            Err(e) => self.refuse("fixture definition", String::new(), e.to_string()),
        }
    }

    /// The first error in the definition: a refusal ([`refuse`](Self::refuse)), a bad short form
    /// (`"8080:x"`), an invalid image reference, or an invalid wait (a log regex that does not
    /// compile, see [`Wait::validate`]); each names the bad string. Every start and create runs it
    /// first, before anything is created.
    pub fn validate(&self) -> Result<()> {
        if let Some(r) = &self.refusal {
            return Err(Error::Invalid {
                kind: r.kind,
                input: r.input.clone(),
                reason: r.reason.clone(),
            });
        }
        if let Some(e) = &self.invalid {
            return Err(Error::invalid(
                "container definition",
                &self.image,
                e.clone(),
            ));
        }
        match &self.wait {
            Some(wait) => wait.validate(),
            None => Ok(()),
        }
    }
}
