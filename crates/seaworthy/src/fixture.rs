//! The fixture contract: a service in a container that tests can share, because it can be put
//! back to its baseline state between them.
//!
//! # The traits
//!
//! * [`FixtureDefinition`] describes a fixture and starts it: for one test
//!   ([`start`](FixtureDefinition::start), [`start_in`](FixtureDefinition::start_in)) or once
//!   for every process of a test run ([`share_per_run`](FixtureDefinition::share_per_run)). A
//!   fixture of several containers (a [`StackFixture`](crate::StackFixture)) implements it
//!   directly.
//! * [`ContainerFixtureDefinition`] is the helper for the common case, a fixture of one
//!   container: say which container to start and how to take a started one over
//!   ([`attach`](ContainerFixtureDefinition::attach)), and a blanket implementation makes it a
//!   [`FixtureDefinition`] (validation, start, per-run sharing under the run's lock).
//! * [`Fixture`] is the started fixture: [`clean`](Fixture::clean) returns it to its baseline.
//! * [`Isolation`] (optional) hands out a namespace of its own to each of several tests running
//!   in parallel in one container.
//!
//! Each fixture has an error type of its own ([`Fixture::Error`]: `seaworthy_postgres::Error`,
//! `seaworthy_redis::Error`...), returned by every method of these traits for that fixture, so
//! callers branch on its variants. It converts into [`crate::Error`] keeping its source chain
//! (the fixture crates make it [`Error::Fixture`](crate::Error::Fixture) with the fixture's error
//! as its source; a core error stays itself), which is what [`Shared`](crate::Shared) returns.
//!
//! # Lifecycle
//!
//! ```text
//! FixtureDefinition ──validate──▶ nothing created yet: a bad definition is an Error::Invalid
//!        │ start / start_in / share_per_run
//!        ▼ container created, started, ready (the definition's waits)
//!        │ attach: clients connected, protocol-level readiness, baseline loaded or recorded
//!        ▼
//!     Fixture ──clean()──▶ baseline again (as often as needed, between tests)
//!        │    ──isolate()─▶ a private namespace for one test (optional)
//!        ▼
//!      drop ──▶ container removed (per-test scope), or kept for the next test (shared scopes)
//!               until the process or the test run ends
//! ```
//!
//! Scopes: start a definition yourself for one test ([`FixtureDefinition::start`]), or share it
//! with [`Shared`](crate::Shared) per process or per test run. A new native fixture is usually
//! built on the [`kit`](crate::kit): the baseline kept in the container and a pool of
//! namespaces, written once in the core.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use crate::container::Container;
use crate::definition::ContainerDefinition;
use crate::session::Session;

/// The error type of the fixture `D` defines (its [`Fixture::Error`]).
pub type FixtureError<D> = <<D as FixtureDefinition>::Fixture as Fixture>::Error;

/// A started service in a container, which can be returned to its baseline.
///
/// # Contract
///
/// * **Who calls it.** Tests, through the handle a definition's `start` returned, or through
///   the guards of [`Shared`](crate::Shared): [`Shared::fresh`](crate::Shared::fresh) calls
///   [`unchanged_since_clean`](Self::unchanged_since_clean) and then, unless it said `true`,
///   [`clean`](Self::clean), holding the fixture alone (no other test of the run holds it
///   meanwhile, in any process).
/// * **Concurrency.** The handle is shared by reference between the tasks of the tests holding
///   it (`Sync`): [`kind`](Self::kind), [`container`](Self::container),
///   [`connection`](Self::connection) and [`Isolation::isolate`] may be called from many tasks at
///   once. `clean` and `unchanged_since_clean` are called by the one task holding the fixture
///   alone; an implementation must still serialise two `clean`s of the same handle (a test may
///   call it itself) and must not deadlock if one runs while namespaces are checked out.
/// * **Namespaces.** [`Shared`](crate::Shared) never calls `clean` while a namespace handed out
///   by [`Isolation::isolate`] is checked out (an [`Isolated`](crate::Isolated) guard keeps a
///   shared hold, `fresh()` waits for an exclusive one). Called by hand meanwhile, a clean restores
///   server-wide state in any case (roles, configuration, users); whether it also empties live
///   namespaces is the fixture's to say in its `clean` docs (Redis's `FLUSHALL` and RabbitMQ's
///   virtual-host deletion do, PostgreSQL's isolated databases are left to their guards).
/// * **State after an `Err`.** The fixture is unusable until replaced: nothing says how far the
///   clean went. [`Shared`](crate::Shared) replaces a per-process fixture whose clean failed
///   and returns the error for a per-run one. Every method may be called again after an `Err`
///   (it returns an error again or succeeds); none may panic or hang: every wait has a deadline.
/// * **Runtime.** Futures may be polled on any Tokio runtime (each `#[tokio::test]` has its own,
///   and dies with its test): background work (connection tasks, a `Drop` that releases
///   something) runs on Seaworthy's own runtime ([`crate::runtime::spawn`]).
pub trait Fixture: Send + Sync + 'static {
    /// The fixture's error. It converts into [`crate::Error`] keeping its source chain, and a
    /// core error converts into it (so `?` works both ways).
    type Error: std::error::Error + From<crate::Error> + Into<crate::Error> + Send + Sync + 'static;

    /// What the fixture is, for messages (`postgres`, `redis`, a plugin's id).
    fn kind(&self) -> &str;

    /// The container the service runs in (for exec, logs, files, snapshots).
    fn container(&self) -> &Container;

    /// Returns the service to its baseline: the state [`FixtureDefinition::start`] handed out.
    /// The container stays the same (same name, alias and host ports), so connection strings a
    /// test holds stay valid (its open connections may be closed). Errors name the fixture and
    /// what could not be reset. Meant for a holder alone (see the trait's contract).
    fn clean(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// How a client connects to the service from the host.
    fn connection(&self) -> ConnectionInfo;

    /// Whether the service is known to be exactly as the last [`clean`](Self::clean) of this
    /// handle left it, by a check much cheaper than a clean; `Ok(false)` when it cannot tell.
    /// [`Shared::fresh`](crate::Shared::fresh) skips the clean when this says `true`, so it must
    /// never say `true` for a service some test changed (a false `false` only costs a clean). The
    /// default cannot tell.
    fn unchanged_since_clean(&self) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        std::future::ready(Ok(false))
    }
}

/// Per-test isolation inside one shared container: a namespace of its own (a database, a db
/// index, a virtual host) for each of several tests running in parallel.
///
/// # Contract
///
/// [`isolate`](Self::isolate) is called concurrently, from the tasks of every test that holds
/// the fixture with [`Shared::isolated`](crate::Shared::isolated) (a shared hold: `clean` does
/// not run meanwhile). Each call hands out a namespace no other live guard has, at the baseline.
/// Dropping the guard releases the namespace and resets it for the next test, on Seaworthy's
/// runtime (the test's runtime may be shutting down); a test that failed under
/// `SEAWORTHY_KEEP_ON_FAILURE=1` keeps its namespace as it left it (the guard is forgotten, not
/// dropped). After an `Err` nothing was checked out. The [`kit`](crate::kit)'s
/// [`NamespacePool`](crate::kit::NamespacePool) does all of this for a fixture.
pub trait Isolation: Fixture {
    /// What a test gets: a guard that exposes its namespace and releases (and resets) it on drop.
    type Isolated: Send + 'static;

    /// Checks out a private namespace for one test.
    fn isolate(&self) -> impl Future<Output = Result<Self::Isolated, Self::Error>> + Send;
}

/// Describes a fixture and starts it. A fixture of one container implements
/// [`ContainerFixtureDefinition`] instead and gets this trait from its blanket implementation.
///
/// # Contract
///
/// * **Who calls it.** Tests ([`start`](Self::start), [`start_in`](Self::start_in)), and
///   [`Shared`](crate::Shared) on first use and whenever it replaces a dead or failed fixture:
///   `start` for a per-process scope, [`share_per_run`](Self::share_per_run) once per process
///   for a per-run scope. `#[seaworthy::test]` goes through `Shared`.
/// * **Concurrency.** A definition is a value (`Clone`), cloned freely. `Shared` starts one
///   fixture at a time per static; two statics, or two tests starting a definition themselves,
///   start theirs concurrently, in one process or in several (one test run under nextest).
/// * **Validation first.** [`validate`](Self::validate) runs before anything is created, and
///   every start refuses an invalid definition with an error naming the field at fault
///   ([`crate::Error::Invalid`] inside the fixture's error) without touching the engine.
/// * **State after an `Err`.** What a failed start created is removed with its session (at the
///   latest when the process exits); nothing is left running for a later start to trip over. A
///   later start starts afresh.
/// * **The key.** Two definitions with the same [`key`](Self::key) are interchangeable: a per-run
///   fixture started by one process is found by the others through a hash of it.
pub trait FixtureDefinition: Clone + Send + Sync + 'static {
    /// The fixture this definition makes.
    type Fixture: Fixture;

    /// Identifies the configuration: everything that makes two started fixtures differ (image,
    /// settings, init steps) and nothing else (no random names), so a per-run shared fixture
    /// started by one process is found by the others through it. Never put a secret in it as is:
    /// hash it ([`crate::kit::key_hash`]).
    fn key(&self) -> String;

    /// Checks the definition without creating anything; every start calls it first. The default
    /// accepts everything.
    fn validate(&self) -> Result<(), FixtureError<Self>> {
        Ok(())
    }

    /// Starts a fixture in `session`; it is removed when dropped (with the session at the latest).
    fn start_in(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<Self::Fixture, FixtureError<Self>>> + Send;

    /// Starts a fixture for one test in the global session; it is removed when dropped.
    fn start(&self) -> impl Future<Output = Result<Self::Fixture, FixtureError<Self>>> + Send {
        async move {
            self.validate()?;
            let session = Session::global().await?;
            self.start_in(&session).await
        }
    }

    /// Finds the fixture this test run shares ([`Shared::per_run`](crate::Shared::per_run)), or
    /// starts it when no process of the run has: called once per process. It must find or
    /// create under a cross-process lock (the run's lock on a hash of the key), so that two
    /// processes never both start it, and a process never takes over what another is still
    /// starting.
    fn share_per_run(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<Self::Fixture, FixtureError<Self>>> + Send;

    /// Whether the fixture [`share_per_run`](Self::share_per_run) hands out outlives the run, to
    /// be [reused](crate::reuse) by the next one: the tests of every run then take turns on it
    /// (holds per key, not per run). The default: no; a [`ContainerFixtureDefinition`] says what
    /// its container's [`reuses`](crate::ContainerDefinition::reuses) says.
    fn reuses(&self) -> bool {
        false
    }
}

/// A fixture of one container: which container to start, and how to take a started one over.
/// The blanket implementation makes every such definition a [`FixtureDefinition`]: validation
/// (the container definition's own, with whatever the fixture refused through
/// [`ContainerDefinition::refused_by`]), start, and per-run sharing (one container found by its
/// labels — the run id and a hash of the key — and created under the run's cross-process lock).
///
/// ```
/// use seaworthy::{
///     ConnectionInfo, Container, ContainerDefinition, ContainerFixtureDefinition, Fixture, Wait,
/// };
///
/// #[derive(Clone)]
/// struct Echo;
///
/// struct EchoFixture(Container);
///
/// impl Fixture for EchoFixture {
///     type Error = seaworthy::Error;
///     fn kind(&self) -> &str { "echo" }
///     fn container(&self) -> &Container { &self.0 }
///     async fn clean(&self) -> seaworthy::Result<()> {
///         self.0.exec(["sh", "-c", "rm -rf /tmp/echo/*"]).await?;
///         Ok(())
///     }
///     fn connection(&self) -> ConnectionInfo {
///         ConnectionInfo::new("tcp", self.0.host(), 0)
///     }
/// }
///
/// impl ContainerFixtureDefinition for Echo {
///     type Fixture = EchoFixture;
///     fn key(&self) -> String { "echo/v1".into() }
///     fn container_definition(&self) -> ContainerDefinition {
///         ContainerDefinition::new("seaworthy-test/busybox")
///             .with_cmd(["sh", "-c", "mkdir -p /tmp/echo; echo ready; exec sleep 3600"])
///             .with_wait(Wait::log("ready"))
///     }
///     async fn attach(&self, container: Container) -> seaworthy::Result<EchoFixture> {
///         Ok(EchoFixture(container))
///     }
/// }
/// ```
///
/// # Contract
///
/// [`attach`](Self::attach) runs once per process for each container, also when a process
/// attaches to a container another process of the same test run started (the per-run scope), so
/// it must not assume a fresh container: it loads the baseline the container holds, or records
/// it the first time (the [`kit`](crate::kit)'s [`Baseline`](crate::kit::Baseline) does this
/// under the run's lock). For a container shared per run, another process may still be
/// recording the baseline when this one attaches: wait for readiness under a deadline. After an
/// `Err` the container is removed with its session, or by the next per-run start (a container
/// that does not attach is not reused by this process).
pub trait ContainerFixtureDefinition: Clone + Send + Sync + 'static {
    /// The fixture this definition makes.
    type Fixture: Fixture;

    /// Identifies the configuration (see [`FixtureDefinition::key`]).
    fn key(&self) -> String;

    /// The container to start, with the waits that say it is up. A definition the fixture finds
    /// invalid is returned [`refused_by`](ContainerDefinition::refused_by) its error, so it is
    /// refused before anything is created, however it is started.
    fn container_definition(&self) -> ContainerDefinition;

    /// Wraps a started container: connect clients, check readiness through the protocol, load or
    /// record the baseline. Called once per process per container, from the task that starts it.
    fn attach(
        &self,
        container: Container,
    ) -> impl Future<Output = Result<Self::Fixture, <Self::Fixture as Fixture>::Error>> + Send;

    /// The definition that [`start_in`](FixtureDefinition::start_in) and
    /// [`share_per_run`](FixtureDefinition::share_per_run) actually start: this one (the
    /// default), or the same fixture started from a prepared image, such as its cached baseline
    /// ([`baseline_cache::prepare`](crate::baseline_cache::prepare)).
    fn prepare(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<Self, <Self::Fixture as Fixture>::Error>> + Send {
        let _ = session;
        std::future::ready(Ok(self.clone()))
    }
}

impl<T: ContainerFixtureDefinition> FixtureDefinition for T {
    type Fixture = T::Fixture;

    fn key(&self) -> String {
        ContainerFixtureDefinition::key(self)
    }

    fn validate(&self) -> Result<(), FixtureError<Self>> {
        Ok(self.container_definition().validate()?)
    }

    fn reuses(&self) -> bool {
        self.container_definition().reuses()
    }

    async fn start_in(&self, session: &Session) -> Result<T::Fixture, FixtureError<Self>> {
        let definition = self.prepare(session).await?;
        let container = definition.container_definition().start_in(session).await?;
        definition.attach(container).await
    }

    fn share_per_run(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<T::Fixture, FixtureError<Self>>> + Send {
        let session = session.clone();
        async move {
            let definition = self.prepare(&session).await?;
            crate::shared::share_container_per_run(definition, session).await
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
