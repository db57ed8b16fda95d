//! The fixture contract: a service in a container that tests can share, because it can be put
//! back to its baseline state between them.
//!
//! # Lifecycle
//!
//! ```text
//! FixtureDefinition ──start──▶ container created, started, ready (the definition's waits)
//!                              │
//!                              ▼ attach: clients connected, protocol-level readiness, baseline recorded
//!                           Fixture ──clean()──▶ baseline again (as often as needed, between tests)
//!                              │      ──isolate()─▶ a private namespace for one test (optional)
//!                              ▼
//!                            drop ──▶ container removed (per-test scope), or kept for the next test
//!                                     (shared scopes) until the process or the test run ends
//! ```
//!
//! A [`FixtureDefinition`] describes the fixture (image, configuration) and knows how to turn a
//! started container into a [`Fixture`]: [`FixtureDefinition::attach`] runs once per process for
//! each container, also when a process attaches to a container another process of the same test
//! run started (the per-run scope), so it must not assume a fresh container; it records the
//! baseline the first time it sees one.
//!
//! [`Fixture::clean`] returns the service to its baseline: through the service's own protocol for
//! the native fixtures (TRUNCATE, FLUSHALL, vhost recreate), or by restoring a `docker commit`
//! snapshot for any image ([`SnapshotFixture`](crate::SnapshotFixture)). It must leave the
//! container reachable at the same address, so connection strings a test holds stay valid; it
//! returns an error naming the fixture when the baseline cannot be restored, and the fixture is
//! then unusable until replaced (shared scopes replace it on next use).
//!
//! [`Isolation`] is optional: a fixture that can give each parallel test its own namespace in one
//! shared container (a database, a db index, a vhost) hands out a guard that releases and resets
//! the namespace when dropped.
//!
//! Scopes: start a definition yourself for one test ([`FixtureDefinition::start`]), or share it
//! with [`Shared`](crate::Shared) per process or per test run.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use crate::container::Container;
use crate::definition::ContainerDefinition;
use crate::error::Result;
use crate::session::Session;

/// A started service in a container, which can be returned to its baseline.
pub trait Fixture: Send + Sync + 'static {
    /// What the fixture is, for messages (`postgres`, `redis`, a plugin's id).
    fn kind(&self) -> &str;

    /// The container the service runs in (for exec, logs, files, snapshots).
    fn container(&self) -> &Container;

    /// Returns the service to its baseline. The container stays the same (same name, alias and
    /// host ports). Errors name the fixture and what could not be reset.
    fn clean(&self) -> impl Future<Output = Result<()>> + Send;

    /// How a client connects to the service from the host.
    fn connection(&self) -> ConnectionInfo;

    /// Whether the service is known to be exactly as the last [`clean`](Self::clean) of this
    /// handle left it, by a check much cheaper than a clean; `Ok(false)` when it cannot tell.
    /// [`Shared::fresh`](crate::Shared::fresh) skips the clean when this says `true`, so it must
    /// never say `true` for a service some test changed (a false `false` only costs a clean). The
    /// default cannot tell.
    fn unchanged_since_clean(&self) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(Ok(false))
    }
}

/// Per-test isolation inside one shared container.
pub trait Isolation: Fixture {
    /// What a test gets: a guard that exposes its namespace and releases (and resets) it on drop.
    type Isolated: Send + 'static;

    /// Checks out a private namespace for one test.
    fn isolate(&self) -> impl Future<Output = Result<Self::Isolated>> + Send;
}

/// Describes a fixture and turns a started container into one.
pub trait FixtureDefinition: Clone + Send + Sync + 'static {
    /// The fixture this definition makes.
    type Fixture: Fixture;

    /// Identifies the configuration: two definitions with the same key are interchangeable, so a
    /// per-run shared fixture started by one process is found by the others through it.
    fn key(&self) -> String;

    /// The container to start, with the waits that say it is up.
    fn container_definition(&self) -> ContainerDefinition;

    /// Wraps a started container: connect clients, check readiness through the protocol, record
    /// the baseline if the container has none yet. Called once per process per container. For a
    /// container shared per run, another process may still be starting it (or recording its
    /// baseline) when this process attaches: wait for readiness here, under a deadline, and guard
    /// the baseline with a lock the service offers (an advisory lock, a key) or a file lock.
    fn attach(&self, container: Container) -> impl Future<Output = Result<Self::Fixture>> + Send;

    /// Finds the fixture this test run shares ([`Shared::per_run`](crate::Shared::per_run)), or
    /// starts it when no process of the run has: called once per process. The default shares one
    /// container, found by its labels (the run id and a hash of [`key`](Self::key)) and created
    /// under a cross-process file lock, then [`attach`](Self::attach)es it. A fixture of several
    /// containers (a [`StackFixture`](crate::StackFixture)) overrides this.
    fn share_per_run(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<Self::Fixture>> + Send {
        crate::shared::share_container_per_run(self.clone(), session.clone())
    }

    /// Starts a fixture for one test in the global session; it is removed when dropped.
    fn start(&self) -> impl Future<Output = Result<Self::Fixture>> + Send {
        async move {
            let session = Session::global().await?;
            self.start_in(&session).await
        }
    }

    /// Starts a fixture in `session`.
    fn start_in(&self, session: &Session) -> impl Future<Output = Result<Self::Fixture>> + Send {
        let session = session.clone();
        async move {
            let container = self.container_definition().start_in(&session).await?;
            self.attach(container).await
        }
    }
}

/// How to reach a service: its parts, and a URL. `Display` and `Debug` redact the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// URL scheme (`postgres`, `redis`, `amqp`, `http`).
    pub scheme: String,
    /// Host (from the host's point of view).
    pub host: String,
    /// Port on that host.
    pub port: u16,
    /// User name, if any.
    pub user: Option<String>,
    password: Option<String>,
    /// Path (a database name, a vhost, a db index), without the leading `/`.
    pub path: Option<String>,
    /// Query parameters.
    pub params: BTreeMap<String, String>,
}

impl ConnectionInfo {
    /// A connection to `scheme://host:port`.
    pub fn new(scheme: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        ConnectionInfo {
            scheme: scheme.into(),
            host: host.into(),
            port,
            user: None,
            password: None,
            path: None,
            params: BTreeMap::new(),
        }
    }

    /// Sets the user and password.
    pub fn with_credentials(mut self, user: impl Into<String>, password: Option<String>) -> Self {
        self.user = Some(user.into());
        self.password = password;
        self
    }

    /// Sets the path.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Adds a query parameter.
    pub fn with_param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// The password (kept out of `Display` and `Debug`).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The full URL, password included: hand it to a client, don't print it.
    pub fn url(&self) -> String {
        self.render(false)
    }

    /// The URL with the password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        self.render(true)
    }

    fn render(&self, redact: bool) -> String {
        let mut url = format!("{}://", self.scheme);
        if let Some(user) = &self.user {
            url.push_str(&encode(user));
            if let Some(pw) = &self.password {
                url.push(':');
                url.push_str(&if redact {
                    "***".to_string()
                } else {
                    encode(pw)
                });
            }
            url.push('@');
        }
        if self.host.contains(':') {
            url.push_str(&format!("[{}]:{}", self.host, self.port));
        } else {
            url.push_str(&format!("{}:{}", self.host, self.port));
        }
        if let Some(path) = &self.path {
            url.push('/');
            url.push_str(&encode(path));
        }
        if !self.params.is_empty() {
            url.push('?');
            let pairs: Vec<String> = self
                .params
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            url.push_str(&pairs.join("&"));
        }
        url
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_url())
    }
}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionInfo({})", self.redacted_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_and_redact() {
        let c = ConnectionInfo::new("postgres", "127.0.0.1", 5432)
            .with_credentials("app", Some("p@ss word".into()))
            .with_path("my db")
            .with_param("sslmode", "disable");
        assert_eq!(
            c.url(),
            "postgres://app:p%40ss%20word@127.0.0.1:5432/my%20db?sslmode=disable"
        );
        assert_eq!(
            c.to_string(),
            "postgres://app:***@127.0.0.1:5432/my%20db?sslmode=disable"
        );
        assert!(!format!("{c:?}").contains("p@ss"));
        assert_eq!(
            ConnectionInfo::new("redis", "::1", 6379).url(),
            "redis://[::1]:6379"
        );
    }
}
