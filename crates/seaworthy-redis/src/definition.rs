//! [`Redis`]: the fixture definition (image, password, server options) and its readiness check.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use seaworthy::baseline_cache::BaselineCache;
use seaworthy::kit::{init_key, key_hash, InitError};
use seaworthy::wait::CheckTarget;
use seaworthy::{ContainerDefinition, ContainerFixtureDefinition, Wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::RedisFixture;
use crate::init::InitContext;

/// An init step of a Redis definition (the kit's, with the Redis context).
pub(crate) type InitStep = seaworthy::kit::InitStep<InitContext>;

/// Where the server keeps its data when the baseline cache is on: outside the image's `VOLUME`
/// (`/data`), in the container's own layer, so the cached image carries the RDB file in its
/// layers and a start loads it in place.
pub(crate) const CACHED_DATA_DIR: &str = "/var/lib/seaworthy/redis";

/// The RDB file the init steps' result is saved to when the baseline cache is on.
pub(crate) const CACHED_RDB: &str = "seaworthy-baseline.rdb";

/// The port Redis listens on inside the container.
pub const REDIS_PORT: u16 = 6379;

/// The image a definition starts unless told otherwise: the official one. Image substitution
/// (`seaworthy.toml` or `SEAWORTHY_IMAGE_MAP`) can replace it without touching the tests.
pub const DEFAULT_IMAGE: &str = "redis:7";

/// Describes a Redis fixture: the official `redis:7` image, no persistence (no RDB snapshots, no
/// AOF, `/data` on tmpfs), ready when the server answers `PING` with `PONG`.
///
/// ```no_run
/// use seaworthy::FixtureDefinition;
/// use seaworthy_redis::Redis;
///
/// # async fn demo() -> seaworthy::Result<()> {
/// let redis = Redis::new().with_password("s3cret").with_arg("--maxmemory").with_arg("64mb").start().await?;
/// println!("{}", seaworthy::Fixture::connection(&redis)); // redis://default:***@127.0.0.1:49153/0
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Redis {
    container: ContainerDefinition,
    password: Option<String>,
    args: Vec<String>,
    tmpfs_data: bool,
    /// The steps that build the baseline, in order.
    pub(crate) init: Vec<InitStep>,
    /// The baseline cache setting (see `cache.rs`).
    pub(crate) cache: BaselineCache,
    /// Started from a cached baseline image: the init steps are in it already.
    pub(crate) from_cache: bool,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            container: ContainerDefinition::new(DEFAULT_IMAGE)
                .with_startup_timeout(Duration::from_secs(60)),
            password: None,
            args: Vec::new(),
            tmpfs_data: true,
            init: Vec::new(),
            cache: BaselineCache::from_env(),
            from_cache: false,
        }
    }
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("image", &self.container.image())
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("args", &self.args)
            .field("startup_timeout", &self.container.startup_timeout())
            .field("tmpfs_data", &self.tmpfs_data)
            .field(
                "init",
                &self
                    .init
                    .iter()
                    .enumerate()
                    .map(|(i, step)| step.name(i))
                    .collect::<Vec<_>>(),
            )
            .field("cache", &self.cache)
            .field("from_cache", &self.from_cache)
            .finish()
    }
}

impl Redis {
    /// The default definition: `redis:7`, no password, 16 databases.
    pub fn new() -> Self {
        Redis::default()
    }

    /// Customises the container, as any [`ContainerDefinition`]: another image (a Redis 6 or 7 compatible with the official image's command line;
    /// image substitution applies to it as well), the startup timeout (60 s by
    /// default), labels, extra environment variables, mounts, networks and aliases, resource
    /// limits... The fixture adds its own configuration over it when it starts: the `redis-server` command line, port 6379, a tmpfs at `/data` (unless [`with_data_volume`](Self::with_data_volume)) and its
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

    /// Requires `password` (`--requirepass`); clients authenticate as the `default` user.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Adds a `redis-server` command-line argument (`--maxmemory`, then `64mb`).
    pub fn with_arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds `redis-server` command-line arguments.
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets the number of databases (`--databases`; 16 by default). Isolation hands out every
    /// database but 0, one per test.
    pub fn with_databases(self, databases: u32) -> Self {
        self.with_args(["--databases".to_string(), databases.to_string()])
    }

    /// Keeps `/data` on the image's volume instead of a tmpfs (for tests of persistence).
    pub fn with_data_volume(mut self) -> Self {
        self.tmpfs_data = false;
        self
    }

    /// Adds an init step: Redis commands, one a line, as `redis-cli` reads them (words separated
    /// by blanks, `"double"` or `'single'` quotes around words with blanks, `#` comment lines),
    /// sent pipelined in one round trip. What the init steps leave is the fixture's baseline:
    /// [`clean`](seaworthy::Fixture::clean) returns to it (keys with their values, types and
    /// time to live, in every database; functions; configuration and users). The text is part
    /// of the definition's key and of the [baseline cache](Self::with_baseline_cache)'s. A
    /// command the server refuses fails the start, naming its line.
    ///
    /// ```no_run
    /// use seaworthy::FixtureDefinition;
    /// use seaworthy_redis::Redis;
    ///
    /// # async fn demo() -> seaworthy::Result<()> {
    /// let redis = Redis::new()
    ///     .with_seed_commands("SET greeting hello\nHSET user:1 name \"Ada Lovelace\"\nSET session:x 1 EX 3600")
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn with_seed_commands(mut self, commands: impl Into<String>) -> Self {
        self.init.push(InitStep::Sql(commands.into()));
        self
    }

    /// Adds an init step that runs the commands of the file at `path` (in the form of
    /// [`with_seed_commands`](Self::with_seed_commands)), read when the step runs. Its content
    /// is part of the [baseline cache](Self::with_baseline_cache)'s key, so a seed file edited
    /// in place builds a new cached baseline.
    pub fn with_seed_file(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.cache = self.cache.clone().with_input(path.clone());
        let name = format!("seed file {}", path.display());
        self.with_init(name, move |ctx| {
            let path = path.clone();
            async move { crate::init::run_file(&path, &ctx).await }
        })
    }

    /// Adds an init step of your own: `step` gets an [`InitContext`] (a connection to database 0
    /// and a client) and runs once per container, after the steps before it, before the baseline
    /// is recorded; `?` works on any error type. `name` stands for the step in messages, in the
    /// definition's key and in the [baseline cache](Self::with_baseline_cache)'s (code cannot be
    /// hashed): rename the step when you change what it does, and add the files it reads with
    /// [`BaselineCache::with_input`].
    ///
    /// ```no_run
    /// use seaworthy_redis::{redis, Redis};
    ///
    /// let redis = Redis::new().with_init("rate limits v1", |ctx| async move {
    ///     let mut conn = ctx.connection;
    ///     redis::cmd("SET").arg("limit:api").arg(100).query_async::<()>(&mut conn).await?;
    ///     Ok(())
    /// });
    /// ```
    pub fn with_init<F, Fut>(mut self, name: impl Into<String>, step: F) -> Self
    where
        F: Fn(InitContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), InitError>> + Send + 'static,
    {
        self.init.push(InitStep::closure(name, step));
        self
    }

    /// The image.
    pub fn image(&self) -> &str {
        self.container.image()
    }

    /// The password, if one is required.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Checks the definition; every start runs this before anything is created. The error
    /// ([`seaworthy::Error::Invalid`], inside this crate's `Error::Seaworthy`) names the field and the value at fault: an
    /// empty password (Redis would then require none, and the fixture's `AUTH` would fail), a
    /// `--databases` value that is not a number from 1 to 1,000,000, an empty argument name.
    pub fn validate(&self) -> crate::Result<()> {
        let invalid = |kind: &'static str, input: &str, reason: &str| {
            Err(seaworthy::Error::invalid(kind, input, reason).into())
        };
        if self.password.as_deref() == Some("") {
            return invalid(
                "redis password",
                "",
                "is empty (`--requirepass \"\"` requires no password; leave it unset instead)",
            );
        }
        let mut args = self.args.iter().peekable();
        while let Some(arg) = args.next() {
            if arg == "--" {
                return invalid("redis argument", arg, "is an option without a name");
            }
            if arg == "--databases" {
                let value = args.peek().map(|v| v.as_str()).unwrap_or("");
                if !matches!(value.parse::<u32>(), Ok(1..=1_000_000)) {
                    return invalid(
                        "redis --databases",
                        value,
                        "must be a number from 1 to 1000000",
                    );
                }
            }
        }
        for step in &self.init {
            match step {
                InitStep::Sql(text) => {
                    if let Err(reason) = crate::init::parse_commands(text) {
                        let first_line = text.lines().next().unwrap_or("");
                        return invalid("redis seed commands", first_line, &reason);
                    }
                }
                InitStep::Closure { name, .. } if name.is_empty() => {
                    return invalid("redis init step name", "", "is empty");
                }
                InitStep::Closure { .. } => {}
            }
        }
        Ok(())
    }

    /// The readiness check the container definition uses: `PING` answers `PONG` (after `AUTH`
    /// when a password is set). Use it to wait again after restarting the container.
    pub fn readiness(&self) -> Wait {
        ping_wait(self.password.clone())
    }

    /// The `redis-server` command line the container runs.
    pub fn command(&self) -> Vec<String> {
        let mut cmd: Vec<String> = ["redis-server", "--save", "", "--appendonly", "no"]
            .into_iter()
            .map(String::from)
            .collect();
        if self.persistent() {
            // The data the init steps leave is saved (SAVE) where the cached image keeps it.
            for arg in ["--dir", CACHED_DATA_DIR, "--dbfilename", CACHED_RDB] {
                cmd.push(arg.into());
            }
        }
        cmd.extend(self.args.iter().cloned());
        if let Some(password) = &self.password {
            cmd.push("--requirepass".into());
            cmd.push(password.clone());
        }
        cmd
    }
}

impl ContainerFixtureDefinition for Redis {
    type Fixture = RedisFixture;

    fn key(&self) -> String {
        // The password goes into the key only as a digest: keys end up in labels and logs.
        let password = match &self.password {
            Some(p) => key_hash(p),
            None => "none".into(),
        };
        format!(
            "redis image={} args={:?} password={password} tmpfs={} container={} init=[{}] persistent={}",
            self.container.image(),
            self.args,
            self.tmpfs_data,
            key_hash(&self.container.key()),
            init_key(&self.init),
            self.persistent()
        )
    }

    fn container_definition(&self) -> ContainerDefinition {
        let mut definition = self
            .container
            .clone()
            .with_port(REDIS_PORT)
            .with_cmd(self.command())
            .and_wait(self.readiness());
        if self.tmpfs_data {
            definition = definition.with_tmpfs("/data", None);
        }
        if self.persistent() {
            // The image's entrypoint gives its working directory to the redis user.
            definition = definition.with_workdir(CACHED_DATA_DIR);
        }
        // Refused before anything is created, however the definition is started.
        definition.refused_by(self.validate().map_err(Into::into))
    }

    async fn attach(&self, container: seaworthy::Container) -> crate::Result<RedisFixture> {
        RedisFixture::attach(self.clone(), container).await
    }

    async fn prepare(&self, session: &seaworthy::Session) -> crate::Result<Redis> {
        Ok(seaworthy::baseline_cache::prepare(self, session).await?)
    }
}

impl Redis {
    /// Whether the server saves its data under [`CACHED_DATA_DIR`]: when the baseline cache is
    /// on for this run, or the definition starts from a cached image.
    pub(crate) fn persistent(&self) -> bool {
        self.from_cache || self.cache.is_active()
    }
}

/// Ready when `PING` (after `AUTH` when a password is set) answers `+PONG`: a server still
/// loading its data answers `-LOADING`, one not listening yet refuses the connection.
fn ping_wait(password: Option<String>) -> Wait {
    Wait::custom("redis answers PING with PONG", move |target| {
        let password = password.clone();
        async move { Ok(ping(&target, password.as_deref()).await) }
    })
}

async fn ping(target: &CheckTarget, password: Option<&str>) -> bool {
    let Some(port) = target.ports.get(&REDIS_PORT) else {
        return false;
    };
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect((target.host.as_str(), *port))
            .await
            .ok()?;
        let mut request = Vec::new();
        let mut replies = 1;
        if let Some(password) = password {
            request.extend(redis::cmd("AUTH").arg(password).get_packed_command());
            replies += 1;
        }
        request.extend(redis::cmd("PING").get_packed_command());
        stream.write_all(&request).await.ok()?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 256];
        while answer.iter().filter(|&&b| b == b'\n').count() < replies {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        Some(answer)
    };
    match tokio::time::timeout(Duration::from_secs(1), probe).await {
        Ok(Some(answer)) => String::from_utf8_lossy(&answer).lines().last() == Some("+PONG"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_official_image_without_persistence() {
        let redis = Redis::new();
        assert_eq!(redis.image(), "redis:7");
        assert_eq!(
            redis.command(),
            ["redis-server", "--save", "", "--appendonly", "no"]
        );
        assert_eq!(redis.container_definition().image(), "redis:7");
    }

    #[test]
    fn invalid_definitions_are_refused_naming_the_field() {
        let kind_of = |redis: Redis| match redis.validate() {
            Err(crate::Error::Seaworthy(e)) => match e {
                seaworthy::Error::Invalid { kind, input, .. } => (kind, input),
                e => panic!("{e}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(kind_of(Redis::new().with_password("")).0, "redis password");
        assert_eq!(
            kind_of(Redis::new().with_databases(0)),
            ("redis --databases", "0".to_string())
        );
        assert_eq!(
            kind_of(Redis::new().with_args(["--databases", "many"])).1,
            "many"
        );
        assert!(Redis::new().with_databases(4).validate().is_ok());
        // Every way of starting it refuses, through the container definition.
        let invalid = Redis::new().with_databases(0).container_definition();
        seaworthy_testkit::assert_invalid(
            &invalid.validate().unwrap_err(),
            "redis --databases",
            "0",
        );
    }

    #[test]
    fn the_password_stays_out_of_debug_and_key() {
        let redis = Redis::new().with_password("hunter2").with_databases(4);
        assert!(!format!("{redis:?}").contains("hunter2"));
        assert!(!redis.key().contains("hunter2"));
        assert_ne!(redis.key(), Redis::new().with_databases(4).key());
        assert!(redis
            .command()
            .ends_with(&["--requirepass".to_string(), "hunter2".to_string()]));
        assert!(redis.command().contains(&"--databases".to_string()));
    }
}
