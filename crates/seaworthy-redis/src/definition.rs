//! [`Redis`]: the fixture definition (image, password, server options) and its readiness check.

use std::fmt;
use std::time::Duration;

use seaworthy::kit::key_hash;
use seaworthy::wait::CheckTarget;
use seaworthy::{ContainerDefinition, ContainerFixtureDefinition, Wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::RedisFixture;

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
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            container: ContainerDefinition::new(DEFAULT_IMAGE)
                .with_startup_timeout(Duration::from_secs(60)),
            password: None,
            args: Vec::new(),
            tmpfs_data: true,
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
            "redis image={} args={:?} password={password} tmpfs={} container={}",
            self.container.image(),
            self.args,
            self.tmpfs_data,
            key_hash(&self.container.key())
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
        // Refused before anything is created, however the definition is started.
        definition.refused_by(self.validate().map_err(Into::into))
    }

    async fn attach(&self, container: seaworthy::Container) -> crate::Result<RedisFixture> {
        RedisFixture::attach(self.clone(), container).await
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
