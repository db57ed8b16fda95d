//! [`RabbitMq`]: the fixture definition (image, default user, configuration) and its readiness
//! check.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use seaworthy::baseline_cache::BaselineCache;
use seaworthy::kit::key_hash;
use seaworthy::reqwest;
use seaworthy::wait::CheckTarget;
use seaworthy::{ConnectionInfo, ContainerDefinition, ContainerFixtureDefinition, Wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::RabbitMqFixture;
use crate::management::Management;

/// The error an init closure returns: any error (`?` converts it); the kit's
/// [`InitError`](seaworthy::kit::InitError).
pub type BoxError = seaworthy::kit::InitError;

/// The broker's home and, by default, its database (the official image's `VOLUME`): a tmpfs in
/// the fixture's container.
pub const DATA_DIR: &str = "/var/lib/rabbitmq";

/// Where the broker keeps its database (`RABBITMQ_MNESIA_BASE`) when the baseline cache is on:
/// outside the image's `VOLUME` ([`DATA_DIR`]), in the container's own layer, so a cached image
/// carries it in its layers and a start reads it in place (no copy into a fresh volume), in a
/// directory every image lets the broker's user create (`/var/tmp` is world-writable).
pub const CACHED_DATA_DIR: &str = "/var/tmp/seaworthy-rabbitmq";

/// The variable that tells RabbitMQ where to keep its node's database.
const MNESIA_BASE: &str = "RABBITMQ_MNESIA_BASE";

/// The host name of a broker whose database is cached (see
/// [`RabbitMq::with_baseline_cache`]): RabbitMQ names its node `rabbit@<host name>` and keeps
/// its database in a directory named after the node, so a broker started from a cached image
/// finds its data only under the same host name.
pub const CACHED_HOSTNAME: &str = "seaworthy-rabbitmq";

/// What an init closure gets: the management API and an AMQP channel, both as the fixture's
/// default user, and where the broker is (for tools that want a URL).
pub struct InitContext {
    /// The management HTTP API, authenticated as the default user.
    pub management: Management,
    /// A channel on a connection to the default virtual host.
    pub channel: lapin::Channel,
    /// `amqp://user:password@host:port/%2F` (the URL includes the password).
    pub amqp: ConnectionInfo,
}

pub(crate) type InitFn = seaworthy::kit::InitFn<InitContext>;

/// One step that builds the baseline.
#[derive(Clone)]
pub(crate) enum InitStep {
    /// Definitions (the JSON of `rabbitmqctl export_definitions`) imported as they are.
    Definitions(String),
    /// A definitions file, read when the step runs.
    DefinitionsFile(PathBuf),
    /// A closure of the user's.
    Closure { name: String, run: InitFn },
}

impl InitStep {
    /// A description for keys and messages.
    pub(crate) fn name(&self, index: usize) -> String {
        match self {
            InitStep::Definitions(_) => format!("definitions #{}", index + 1),
            InitStep::DefinitionsFile(path) => format!("definitions file {}", path.display()),
            InitStep::Closure { name, .. } => name.clone(),
        }
    }
}

/// The AMQP port inside the container.
pub const AMQP_PORT: u16 = 5672;
/// The management HTTP API's port inside the container.
pub const MANAGEMENT_PORT: u16 = 15672;

/// The image a definition starts unless told otherwise: the official one with the management
/// plugin. Image substitution (`seaworthy.toml` or `SEAWORTHY_IMAGE_MAP`) can replace it without
/// touching the tests.
pub const DEFAULT_IMAGE: &str = "rabbitmq:3-management";

/// Where the fixture's own configuration goes in the container (`conf.d`, read by RabbitMQ 3.9
/// and later after `rabbitmq.conf`).
pub const CONFIG_PATH: &str = "/etc/rabbitmq/conf.d/90-seaworthy.conf";

/// Describes a RabbitMQ fixture: the official `rabbitmq:3-management` image, its default user
/// (`RABBITMQ_DEFAULT_USER` / `RABBITMQ_DEFAULT_PASS`, `guest` / `guest` unless set), statistics
/// every 500 ms instead of 5 s (so the management API's counters follow a test closely), ready
/// when an AMQP connection is greeted and the management API answers `GET /api/overview` for the
/// user.
///
/// ```no_run
/// use seaworthy::FixtureDefinition;
/// use seaworthy_rabbitmq::RabbitMq;
///
/// # async fn demo() -> seaworthy::Result<()> {
/// let rabbit = RabbitMq::new().with_user("app", "s3cret").start().await?;
/// println!("{}", seaworthy::Fixture::connection(&rabbit)); // amqp://app:***@127.0.0.1:49154/%2F
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RabbitMq {
    container: ContainerDefinition,
    user: String,
    password: String,
    config: Vec<String>,
    pub(crate) init: Vec<InitStep>,
    /// The baseline cache setting (see `cache.rs`).
    pub(crate) cache: BaselineCache,
    /// Started from a cached baseline image: the init steps are in it already.
    pub(crate) from_cache: bool,
}

impl Default for RabbitMq {
    fn default() -> Self {
        RabbitMq {
            container: ContainerDefinition::new(DEFAULT_IMAGE)
                .with_startup_timeout(Duration::from_secs(120)),
            user: "guest".into(),
            password: "guest".into(),
            config: vec!["collect_statistics_interval = 500".into()],
            init: Vec::new(),
            cache: BaselineCache::from_env(),
            from_cache: false,
        }
    }
}

impl fmt::Debug for RabbitMq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitMq")
            .field("image", &self.container.image())
            .field("user", &self.user)
            .field("password", &"***")
            .field("config", &self.config)
            .field(
                "init",
                &self
                    .init
                    .iter()
                    .enumerate()
                    .map(|(i, s)| s.name(i))
                    .collect::<Vec<_>>(),
            )
            .field("cache", &self.cache)
            .field("from_cache", &self.from_cache)
            .field("startup_timeout", &self.container.startup_timeout())
            .finish()
    }
}

impl RabbitMq {
    /// The default definition: `rabbitmq:3-management`, user `guest` / `guest`.
    pub fn new() -> Self {
        RabbitMq::default()
    }

    /// Customises the container, as any [`ContainerDefinition`]: another image (one with the management plugin, configured like the official image;
    /// image substitution applies to it as well), the startup timeout (120 s (RabbitMQ takes several) by
    /// default), labels, extra environment variables, mounts, networks and aliases, resource
    /// limits... The fixture adds its own configuration over it when it starts: the default user's environment, the ports 5672 and 15672, its configuration file, a tmpfs at `/var/lib/rabbitmq` and its
    /// readiness check (after a wait of yours, when you set one). The whole customisation is part
    /// of the definition's [key](seaworthy::FixtureDefinition::key).
    pub fn with_container(
        mut self,
        customise: impl FnOnce(ContainerDefinition) -> ContainerDefinition,
    ) -> Self {
        self.container = customise(self.container);
        self
    }

    /// The container as customised with [`with_container`](Self::with_container), before the
    /// fixture adds its own configuration ([`ContainerFixtureDefinition::container_definition`] is the
    /// whole).
    pub fn container(&self) -> &ContainerDefinition {
        &self.container
    }

    /// The default user the broker creates (`RABBITMQ_DEFAULT_USER` / `RABBITMQ_DEFAULT_PASS`),
    /// which the fixture connects as.
    pub fn with_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }

    /// Adds a line of `rabbitmq.conf` syntax (`vm_memory_high_watermark.relative = 0.8`).
    pub fn with_config(mut self, line: impl Into<String>) -> Self {
        self.config.push(line.into());
        self
    }

    /// Adds definitions to the baseline: the JSON that `rabbitmqctl export_definitions` and
    /// `GET /api/definitions` write (users, vhosts, permissions, policies, parameters, queues,
    /// exchanges, bindings; any subset), imported through the management API. Init steps run
    /// once per container, in the order given, before the baseline is recorded; every
    /// [`clean`](seaworthy::Fixture::clean) returns to the state they left. Their content is part
    /// of the definition's [key](seaworthy::FixtureDefinition::key) and of the
    /// [baseline cache](Self::with_baseline_cache)'s.
    ///
    /// ```no_run
    /// # use seaworthy_rabbitmq::RabbitMq;
    /// let rabbit = RabbitMq::new().with_definitions(r#"{
    ///     "vhosts": [{"name": "orders"}],
    ///     "permissions": [{"user": "guest", "vhost": "orders",
    ///                      "configure": ".*", "write": ".*", "read": ".*"}],
    ///     "queues": [{"name": "jobs", "vhost": "orders", "durable": true,
    ///                 "auto_delete": false, "arguments": {}}]
    /// }"#);
    /// ```
    pub fn with_definitions(mut self, json: impl Into<String>) -> Self {
        self.init.push(InitStep::Definitions(json.into()));
        self
    }

    /// Adds a definitions file (as [`with_definitions`](Self::with_definitions)), read when the
    /// step runs; its content is part of the [baseline cache](Self::with_baseline_cache)'s key,
    /// so a file edited in place builds a new cached baseline.
    pub fn with_definitions_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.init.push(InitStep::DefinitionsFile(path.into()));
        self
    }

    /// Adds a step of your own to the baseline (declare queues over AMQP, call the management
    /// API...). The closure gets an [`InitContext`] and runs once per container, in order with
    /// the other init steps; `?` works on any error type (it returns [`BoxError`]). `name`
    /// stands for the closure's code in the definition's [key](seaworthy::FixtureDefinition::key)
    /// and in the [baseline cache](Self::with_baseline_cache)'s (code cannot be hashed): rename
    /// it (`"queues v2"`) when the step changes, and add the files it reads with
    /// [`BaselineCache::with_input`].
    ///
    /// ```no_run
    /// # use seaworthy_rabbitmq::RabbitMq;
    /// use seaworthy_rabbitmq::lapin::options::QueueDeclareOptions;
    ///
    /// let rabbit = RabbitMq::new().with_init("jobs queue v1", |ctx| async move {
    ///     let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ///     ctx.channel.queue_declare("jobs".into(), durable, Default::default()).await?;
    ///     Ok(())
    /// });
    /// ```
    pub fn with_init<F, Fut>(mut self, name: impl Into<String>, step: F) -> Self
    where
        F: Fn(InitContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let run: InitFn = Arc::new(move |ctx| Box::pin(step(ctx)));
        self.init.push(InitStep::Closure {
            name: name.into(),
            run,
        });
        self
    }

    /// The image.
    pub fn image(&self) -> &str {
        self.container.image()
    }

    /// The default user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The default user's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Checks the definition; every start runs this before anything is created. The error
    /// ([`seaworthy::Error::Invalid`], inside this crate's `Error::Seaworthy`) names the field and the value at fault: an
    /// empty user name or password, a user name with a `:` (HTTP basic authentication, which
    /// the management API uses, cannot carry it), a configuration line that is not
    /// `key = value` (or a `#` comment) or spans lines, an environment variable name that is
    /// empty or holds `=`.
    pub fn validate(&self) -> crate::Result<()> {
        let invalid = |kind: &'static str, input: &str, reason: &str| {
            Err(seaworthy::Error::invalid(kind, input, reason).into())
        };
        if self.user.is_empty() {
            return invalid("rabbitmq user", "", "is empty");
        }
        if self.user.contains(':') {
            return invalid(
                "rabbitmq user",
                &self.user,
                "contains `:`, which HTTP basic authentication (the management API) cannot carry",
            );
        }
        if self.password.is_empty() {
            return invalid("rabbitmq password", "", "is empty");
        }
        for step in &self.init {
            if let InitStep::Definitions(json) = step {
                if let Err(e) =
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
                {
                    return invalid(
                        "rabbitmq definitions",
                        json,
                        &format!("is not a JSON object of definitions: {e}"),
                    );
                }
            }
        }
        for line in &self.config {
            let trimmed = line.trim();
            if line.contains('\n') || line.contains('\r') {
                return invalid(
                    "rabbitmq configuration line",
                    line,
                    "spans lines (add one line per call)",
                );
            }
            let comment = trimmed.is_empty() || trimmed.starts_with('#');
            let key_value = trimmed
                .split_once('=')
                .is_some_and(|(key, _)| !key.trim().is_empty());
            if !comment && !key_value {
                return invalid(
                    "rabbitmq configuration line",
                    line,
                    "is not `key = value` (rabbitmq.conf syntax)",
                );
            }
        }
        Ok(())
    }

    /// The readiness check the container definition uses: an AMQP connection is greeted with
    /// `connection.start`, and `GET /api/overview` answers 200 for the default user. Use it to
    /// wait again after restarting the container.
    pub fn readiness(&self) -> Wait {
        let user = self.user.clone();
        let password = self.password.clone();
        let client = Arc::new(reqwest::Client::new());
        Wait::custom(
            "rabbitmq greets an AMQP connection and its management API answers",
            move |target| {
                let (user, password, client) = (user.clone(), password.clone(), client.clone());
                async move {
                    Ok(amqp_greets(&target).await
                        && management_answers(&target, &client, &user, &password).await)
                }
            },
        )
    }
}

impl RabbitMq {
    /// Whether the database is kept in the image's volume under a fixed node name: when the
    /// baseline cache is on for this run, or the definition starts from a cached image.
    fn persistent(&self) -> bool {
        self.from_cache || self.cache.is_active()
    }

    /// Where the database is when it is [persistent](Self::persistent): the customisation's
    /// `RABBITMQ_MNESIA_BASE`, else [`CACHED_DATA_DIR`].
    pub(crate) fn cached_data_dir(&self) -> &str {
        self.container
            .env_value(MNESIA_BASE)
            .unwrap_or(CACHED_DATA_DIR)
    }
}

impl ContainerFixtureDefinition for RabbitMq {
    type Fixture = RabbitMqFixture;

    fn key(&self) -> String {
        let password = key_hash(&self.password);
        let init: Vec<String> = self
            .init
            .iter()
            .enumerate()
            .map(|(i, step)| match step {
                InitStep::Definitions(json) => format!("definitions:{}", key_hash(json)),
                _ => format!("step:{}", step.name(i)),
            })
            .collect();
        format!(
            "rabbitmq image={} user={} password={password} config={:?} init={init:?} persistent={} container={}",
            self.container.image(),
            self.user,
            self.config,
            self.persistent(),
            key_hash(&self.container.key())
        )
    }

    fn container_definition(&self) -> ContainerDefinition {
        let mut config = self.config.join("\n");
        config.push('\n');
        let mut definition = self
            .container
            .clone()
            .with_env("RABBITMQ_DEFAULT_USER", self.user.clone())
            .with_env("RABBITMQ_DEFAULT_PASS", self.password.clone())
            .with_port(AMQP_PORT)
            .with_port(MANAGEMENT_PORT)
            .with_file(CONFIG_PATH, config.into_bytes(), 0o644);
        // The broker's home (and by default its database) lives on tmpfs: nothing to keep,
        // nothing to sync to disk, no volume to create.
        definition = definition.with_tmpfs(DATA_DIR, None);
        if self.persistent() {
            // The database moves to the container's layer, which a cached image carries, under
            // a node name (from the host name) that a start from that image finds again.
            definition = definition.with_hostname(CACHED_HOSTNAME);
            if self.container.env_value(MNESIA_BASE).is_none() {
                definition = definition.with_env(MNESIA_BASE, CACHED_DATA_DIR);
            }
        }
        let definition = definition.and_wait(self.readiness());
        // Refused before anything is created, however the definition is started.
        definition.refused_by(self.validate().map_err(Into::into))
    }

    async fn attach(&self, container: seaworthy::Container) -> crate::Result<RabbitMqFixture> {
        RabbitMqFixture::attach(self.clone(), container).await
    }

    async fn prepare(&self, session: &seaworthy::Session) -> crate::Result<RabbitMq> {
        Ok(seaworthy::baseline_cache::prepare(self, session).await?)
    }
}

/// Sends the AMQP 0-9-1 protocol header and checks that the broker answers with a method frame
/// carrying `connection.start` (class 10, method 10).
async fn amqp_greets(target: &CheckTarget) -> bool {
    let Some(port) = target.ports.get(&AMQP_PORT) else {
        return false;
    };
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect((target.host.as_str(), *port))
            .await
            .ok()?;
        stream.write_all(b"AMQP\x00\x00\x09\x01").await.ok()?;
        let mut frame = [0u8; 11];
        stream.read_exact(&mut frame).await.ok()?;
        Some(frame[0] == 1 && frame[7..11] == [0, 10, 0, 10])
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Some(true))
    )
}

async fn management_answers(
    target: &CheckTarget,
    client: &reqwest::Client,
    user: &str,
    password: &str,
) -> bool {
    let Some(port) = target.ports.get(&MANAGEMENT_PORT) else {
        return false;
    };
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    let request = client
        .get(format!("http://{host}:{port}/api/overview"))
        .basic_auth(user, Some(password))
        .timeout(Duration::from_secs(2))
        .send();
    matches!(request.await, Ok(r) if r.status().is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_official_management_image_and_guest() {
        let r = RabbitMq::new();
        assert_eq!(r.image(), "rabbitmq:3-management");
        assert_eq!((r.user(), r.password()), ("guest", "guest"));
        assert_eq!(r.container_definition().image(), "rabbitmq:3-management");
    }

    #[test]
    fn invalid_definitions_are_refused_naming_the_field() {
        let kind_of = |rabbit: RabbitMq| match rabbit.validate() {
            Err(crate::Error::Seaworthy(e)) => match e {
                seaworthy::Error::Invalid { kind, input, .. } => (kind, input),
                e => panic!("{e}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(
            kind_of(RabbitMq::new().with_user("", "pw")).0,
            "rabbitmq user"
        );
        assert_eq!(
            kind_of(RabbitMq::new().with_user("a:b", "pw")),
            ("rabbitmq user", "a:b".to_string())
        );
        assert_eq!(
            kind_of(RabbitMq::new().with_user("app", "")).0,
            "rabbitmq password"
        );
        assert_eq!(
            kind_of(RabbitMq::new().with_config("log.console")),
            ("rabbitmq configuration line", "log.console".to_string())
        );
        assert_eq!(
            kind_of(RabbitMq::new().with_config("a = 1\nb = 2")).0,
            "rabbitmq configuration line"
        );
        assert!(RabbitMq::new()
            .with_config("# a comment")
            .with_config("log.console.level = debug")
            .validate()
            .is_ok());
        let invalid = RabbitMq::new().with_user("", "pw").container_definition();
        seaworthy_testkit::assert_invalid(&invalid.validate().unwrap_err(), "rabbitmq user", "");
    }

    #[test]
    fn a_customised_container_keeps_the_fixture_s_own_settings_and_changes_the_key() {
        let custom = RabbitMq::new().with_container(|c| {
            c.with_image("rabbitmq:3.13-management")
                .with_label("team", "a")
        });
        assert_eq!(custom.image(), "rabbitmq:3.13-management");
        assert_ne!(custom.key(), RabbitMq::new().key());
        assert_eq!(custom.key(), custom.clone().key());
        let def = custom.container_definition();
        assert_eq!(def.image(), "rabbitmq:3.13-management");
        assert!(def.wait().is_some());
    }

    #[test]
    fn secrets_stay_out_of_debug_and_key() {
        let r = RabbitMq::new()
            .with_user("app", "hunter2")
            .with_container(|c| c.with_env("RABBITMQ_ERLANG_COOKIE", "cookie-secret"));
        for text in [format!("{r:?}"), r.key()] {
            assert!(
                !text.contains("hunter2") && !text.contains("cookie-secret"),
                "{text}"
            );
        }
        assert_ne!(r.key(), RabbitMq::new().with_user("app", "other").key());
    }
}
