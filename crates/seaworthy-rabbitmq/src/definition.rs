//! [`RabbitMq`]: the fixture definition (image, default user, configuration) and its readiness
//! check.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use seaworthy::kit::key_hash;
use seaworthy::reqwest;
use seaworthy::wait::CheckTarget;
use seaworthy::{ContainerDefinition, ContainerFixtureDefinition, Wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::RabbitMqFixture;

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
}

impl Default for RabbitMq {
    fn default() -> Self {
        RabbitMq {
            container: ContainerDefinition::new(DEFAULT_IMAGE)
                .with_startup_timeout(Duration::from_secs(120)),
            user: "guest".into(),
            password: "guest".into(),
            config: vec!["collect_statistics_interval = 500".into()],
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

impl ContainerFixtureDefinition for RabbitMq {
    type Fixture = RabbitMqFixture;

    fn key(&self) -> String {
        let password = key_hash(&self.password);
        format!(
            "rabbitmq image={} user={} password={password} config={:?} container={}",
            self.container.image(),
            self.user,
            self.config,
            key_hash(&self.container.key())
        )
    }

    fn container_definition(&self) -> ContainerDefinition {
        let mut config = self.config.join("\n");
        config.push('\n');
        let definition = self
            .container
            .clone()
            .with_env("RABBITMQ_DEFAULT_USER", self.user.clone())
            .with_env("RABBITMQ_DEFAULT_PASS", self.password.clone())
            .with_port(AMQP_PORT)
            .with_port(MANAGEMENT_PORT)
            .with_file(CONFIG_PATH, config.into_bytes(), 0o644)
            // The broker's database lives on tmpfs: nothing to keep, nothing to sync to disk.
            .with_tmpfs("/var/lib/rabbitmq", None)
            .and_wait(self.readiness());
        // Refused before anything is created, however the definition is started.
        definition.refused_by(self.validate().map_err(Into::into))
    }

    async fn attach(&self, container: seaworthy::Container) -> crate::Result<RabbitMqFixture> {
        RabbitMqFixture::attach(self.clone(), container).await
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
