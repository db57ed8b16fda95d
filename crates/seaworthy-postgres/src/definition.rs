//! [`Postgres`]: the definition of a PostgreSQL fixture, with its builders.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use seaworthy::kit::key_hash;
use seaworthy::wait::CheckTarget;
use seaworthy::{ConnectionInfo, ContainerDefinition, ContainerFixtureDefinition, Exec, Wait};
use tokio_postgres::Client;

use crate::connect;
use crate::error::{BoxError, Result};
use crate::fixture::PostgresFixture;

/// The port PostgreSQL listens on inside the container.
pub const PORT: u16 = 5432;
/// Where the official image keeps its data (a `VOLUME`).
pub const DATA_DIR: &str = "/var/lib/postgresql/data";
/// The longest database name accepted: the names derived from it (`<db>_baseline`,
/// `<db>_pool_<id>`, `<db>_iso_<key>`) must fit PostgreSQL's 63-byte identifiers.
pub const MAX_DATABASE_NAME: usize = 40;

/// The server's command line with durability off, as a fixture runs it by default (before its
/// own [`with_setting`](Postgres::with_setting)s): `fsync`, `synchronous_commit` and
/// `full_page_writes` off. For a plain container of the image that should run as the fixture
/// does (`ContainerDefinition::with_cmd(DURABILITY_OFF)`).
pub const DURABILITY_OFF: [&str; 7] = [
    "postgres",
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
];

/// What an init closure gets: a connection to the fixture's database, and where it is (for
/// tools that want a URL, such as a migration runner).
pub struct InitContext {
    /// A client connected to the database as the superuser.
    pub client: Client,
    /// The database's connection details (the URL includes the password).
    pub connection: ConnectionInfo,
}

/// One step that builds the baseline.
pub(crate) type InitStep = seaworthy::kit::InitStep<InitContext>;

/// A PostgreSQL fixture: the official `postgres` image (`postgres:16` by default), configured
/// through its environment contract (`POSTGRES_USER`, `POSTGRES_PASSWORD`, `POSTGRES_DB`), made
/// fast for tests, and brought to a *baseline* once — the state [`clean`](seaworthy::Fixture::clean)
/// returns to and [isolated databases](PostgresFixture::isolated_database) start from.
///
/// Defaults: user `postgres`, password `postgres`, database `test`, durability off
/// (`fsync`, `synchronous_commit` and `full_page_writes` off: a crash may lose data, a test
/// doesn't care), data in the image's volume, a pool of 4 pre-cloned databases for isolation.
///
/// Ready means the server answers `SELECT 1` over TCP as the configured user (the image prints
/// its "ready to accept connections" line twice on first start, once for a temporary
/// socket-only server, so a log line alone is not enough).
///
/// ```no_run
/// use seaworthy::{Fixture, FixtureDefinition};
/// use seaworthy_postgres::Postgres;
///
/// # async fn demo() -> seaworthy_postgres::Result<()> {
/// let pg = Postgres::default()
///     .with_init_sql("CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL)")
///     .start()
///     .await?;
/// let client = pg.client().await?;
/// client.execute("INSERT INTO users (name) VALUES ('ada')", &[]).await.unwrap();
/// pg.clean().await?; // the users table is empty again, its id sequence restarted
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Postgres {
    /// The container, as customised ([`Postgres::with_container`]): image, startup timeout...
    pub(crate) container: ContainerDefinition,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) database: String,
    pub(crate) init: Vec<InitStep>,
    pub(crate) durable: bool,
    pub(crate) tmpfs: bool,
    pub(crate) settings: Vec<(String, String)>,
    pub(crate) pool_size: usize,
    /// The baseline cache setting (see `cache.rs`).
    pub(crate) cache: seaworthy::baseline_cache::BaselineCache,
}

impl Default for Postgres {
    fn default() -> Self {
        Postgres::new()
    }
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("image", &self.container.image())
            .field("user", &self.user)
            .field("password", &"***")
            .field("database", &self.database)
            .field("init_steps", &self.init.len())
            .field("durable", &self.durable)
            .field("tmpfs", &self.tmpfs)
            .field("settings", &self.settings)
            .finish()
    }
}

impl Postgres {
    /// The default definition (see the type's documentation).
    pub fn new() -> Self {
        Postgres {
            container: ContainerDefinition::new("postgres:16")
                .with_startup_timeout(Duration::from_secs(60)),
            user: "postgres".into(),
            password: "postgres".into(),
            database: "test".into(),
            init: Vec::new(),
            durable: false,
            tmpfs: false,
            settings: Vec::new(),
            pool_size: 4,
            cache: seaworthy::baseline_cache::BaselineCache::from_env(),
        }
    }

    /// Customises the container, as any [`ContainerDefinition`]: another image with the official
    /// image's contract (`postgres:15-alpine`, a mirror; image substitution applies to it as
    /// well), the startup timeout (how long start, readiness and the baseline may take together,
    /// 60 s by default), labels, extra environment variables, mounts, networks and aliases,
    /// resource limits...
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use seaworthy_postgres::Postgres;
    /// let pg = Postgres::default().with_container(|c| {
    ///     c.with_image("postgres:15-alpine")
    ///         .with_startup_timeout(Duration::from_secs(120))
    ///         .with_label("team", "billing")
    ///         .with_env("TZ", "Europe/Paris")
    ///         .with_memory_limit(512 << 20)
    /// });
    /// assert_eq!(pg.image(), "postgres:15-alpine");
    /// ```
    ///
    /// The fixture adds its own configuration over it when it starts: its environment
    /// (`POSTGRES_USER`, `POSTGRES_PASSWORD`, `POSTGRES_DB`), the server's command line, port
    /// 5432 and its readiness check (after a wait of yours, when you set one). The whole
    /// customisation is part of the definition's [key](seaworthy::FixtureDefinition::key).
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

    /// Sets the superuser's name (`POSTGRES_USER`).
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Sets the superuser's password (`POSTGRES_PASSWORD`).
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = password.into();
        self
    }

    /// Sets the database tests use (`POSTGRES_DB`), at most [`MAX_DATABASE_NAME`] bytes.
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// Adds SQL (one or more statements) that builds the baseline: migrations, seed data. Init
    /// steps run once per container, in the order given, before the baseline is recorded; every
    /// [`clean`](seaworthy::Fixture::clean) returns to the state they left, and every isolated
    /// database starts from it.
    pub fn with_init_sql(mut self, sql: impl Into<String>) -> Self {
        self.init.push(InitStep::Sql(sql.into()));
        self
    }

    /// Adds a step of your own to the baseline (run a migration tool, load a dump...). The
    /// closure gets an [`InitContext`] and runs once per container, in order with the SQL steps;
    /// `?` works on any error type (it returns [`BoxError`]).
    /// `name` identifies the step in messages and in the definition's [key](seaworthy::FixtureDefinition::key):
    /// rename it when the step changes, so a per-run container built by the old step is not reused.
    ///
    /// ```no_run
    /// # use seaworthy_postgres::Postgres;
    /// let pg = Postgres::default().with_init("seed users", |ctx| async move {
    ///     for name in ["ada", "grace"] {
    ///         ctx.client.execute("INSERT INTO users (name) VALUES ($1)", &[&name]).await?;
    ///     }
    ///     Ok(())
    /// });
    /// ```
    pub fn with_init<F, Fut>(mut self, name: impl Into<String>, step: F) -> Self
    where
        F: Fn(InitContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.init.push(InitStep::closure(name, step));
        self
    }

    /// `false` (the default) turns off what makes PostgreSQL crash-safe and slow to write:
    /// `fsync`, `synchronous_commit` and `full_page_writes`. `true` keeps the server's defaults.
    pub fn with_durability(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Keeps the data directory on a tmpfs instead of the image's volume: faster writes, nothing
    /// on disk, but a restarted container starts from an empty cluster (the baseline is
    /// re-created by the next attach).
    pub fn with_data_on_tmpfs(mut self, tmpfs: bool) -> Self {
        self.tmpfs = tmpfs;
        self
    }

    /// Sets a server setting at start (`postgres -c name=value`): `max_connections`,
    /// `log_statement`...
    pub fn with_setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// How many databases cloned from the baseline are kept ready for
    /// [`isolated_database`](PostgresFixture::isolated_database) (default 4; 0 clones on demand).
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// The image as configured (before substitution).
    pub fn image(&self) -> &str {
        self.container.image()
    }

    /// The superuser's name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database tests use.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Checks the definition; every start runs this before anything is created. The error
    /// ([`seaworthy::Error::Invalid`], inside [`Error::Seaworthy`](crate::Error::Seaworthy)) names the field and the value at fault: an empty or too long user
    /// name, an empty password, a database name that is empty, longer than
    /// [`MAX_DATABASE_NAME`] bytes or one PostgreSQL keeps for itself, a NUL byte in a name, a
    /// setting name that is not a PostgreSQL parameter name.
    pub fn validate(&self) -> Result<()> {
        let invalid = |kind: &'static str, input: &str, reason: &str| {
            Err(seaworthy::Error::invalid(kind, input, reason).into())
        };
        // PostgreSQL truncates identifiers to 63 bytes; a role name longer than that is not the
        // role the fixture would connect as.
        if self.user.is_empty() || self.user.len() > 63 {
            return invalid("postgres user", &self.user, "must have 1 to 63 bytes");
        }
        if self.password.is_empty() {
            return invalid(
                "postgres password",
                "",
                "is empty (the image refuses to initialise without one)",
            );
        }
        if self.password.contains('\0') {
            return invalid(
                "postgres password",
                "***",
                "contains a NUL byte, which PostgreSQL cannot store",
            );
        }
        if self.database.is_empty() || self.database.len() > MAX_DATABASE_NAME {
            return invalid(
                "postgres database name",
                &self.database,
                &format!("must have 1 to {MAX_DATABASE_NAME} bytes"),
            );
        }
        if matches!(
            self.database.as_str(),
            "postgres" | "template0" | "template1"
        ) {
            return invalid(
                "postgres database name",
                &self.database,
                "cannot be the fixture's database: clean() re-creates it",
            );
        }
        for (kind, name) in [
            ("postgres user", &self.user),
            ("postgres database name", &self.database),
        ] {
            if name.contains('\0') {
                return invalid(kind, name, "contains a NUL byte");
            }
        }
        for (name, _) in &self.settings {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !valid {
                return invalid(
                    "postgres setting name",
                    name,
                    "is not a parameter name (letters, digits, `_` and `.`)",
                );
            }
        }
        Ok(())
    }

    /// The server's command line: `postgres` and the `-c` settings.
    fn command(&self) -> Vec<String> {
        let base: &[&str] = if self.durable {
            &["postgres"]
        } else {
            &DURABILITY_OFF
        };
        let mut cmd: Vec<String> = base.iter().map(|a| a.to_string()).collect();
        for (name, value) in &self.settings {
            cmd.push("-c".into());
            cmd.push(format!("{name}={value}"));
        }
        cmd
    }

    /// The connection details from a readiness check's point of view.
    fn ready_check(&self) -> Wait {
        let (user, password, database) = (
            self.user.clone(),
            self.password.clone(),
            self.database.clone(),
        );
        let description = format!("PostgreSQL answering SELECT 1 as {user} on database {database}");
        Wait::custom(description, move |target: CheckTarget| {
            let config = target
                .ports
                .get(&PORT)
                .map(|port| connect::config(&target.host, *port, &user, &password, &database));
            async move {
                let Some(config) = config else {
                    return Err(seaworthy::Error::Container {
                        container: target.name,
                        reason: format!("port {PORT} is not published"),
                    });
                };
                match connect::probe(&config).await {
                    connect::Probe::Ready => Ok(true),
                    connect::Probe::NotYet => Ok(false),
                    connect::Probe::Refused(message) => Err(seaworthy::Error::Container {
                        container: target.name,
                        reason: format!(
                            "PostgreSQL refused the fixture's credentials: {message} (a data directory initialised with another password?)"
                        ),
                    }),
                }
            }
        })
    }
}

impl ContainerFixtureDefinition for Postgres {
    type Fixture = PostgresFixture;

    fn key(&self) -> String {
        format!(
            "postgres/v2|{}|{}|{}|{}|durable={}|tmpfs={}|{:?}|{}|container={}",
            self.container.image(),
            self.user,
            key_hash(&self.password),
            self.database,
            self.durable,
            self.tmpfs,
            self.settings,
            seaworthy::kit::init_key(&self.init),
            key_hash(&self.container.key())
        )
    }

    fn container_definition(&self) -> ContainerDefinition {
        let mut def = self
            .container
            .clone()
            .with_env("POSTGRES_USER", &self.user)
            .with_env("POSTGRES_PASSWORD", &self.password)
            .with_env("POSTGRES_DB", &self.database)
            .with_port(PORT)
            .with_cmd(self.command());
        // Refused before anything is created, however the definition is started.
        def = match self.validate() {
            Ok(()) => def.and_wait(self.ready_check()),
            Err(e) => def.refused_by(Err(e.into())),
        };
        if self.tmpfs {
            def = def.with_tmpfs(DATA_DIR, None);
        }
        def = crate::cache::for_reuse_and_cache(self, def);
        // With synchronous_commit off, a commit PostgreSQL has acknowledged may still be in its
        // WAL buffers: a paused snapshot would restore without it. A checkpoint right before the
        // snapshot writes it out (unless the customisation declared a flush of its own).
        if !self.durable && def.snapshot_flush().is_none() {
            def = def.with_snapshot_flush(Exec::new([
                "psql",
                "-U",
                &self.user,
                "-d",
                &self.database,
                "-c",
                "CHECKPOINT",
            ]));
        }
        def
    }

    fn attach(
        &self,
        container: seaworthy::Container,
    ) -> impl Future<Output = Result<PostgresFixture>> + Send {
        PostgresFixture::attach(self.clone(), container)
    }

    fn prepare(
        &self,
        session: &seaworthy::Session,
    ) -> impl Future<Output = Result<Postgres>> + Send {
        crate::cache::prepare(self, session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_turns_durability_off_by_default() {
        let cmd = Postgres::default()
            .with_setting("max_connections", "200")
            .command();
        assert_eq!(
            cmd,
            [
                "postgres",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200"
            ]
        );
        assert_eq!(
            Postgres::default().with_durability(true).command(),
            ["postgres"]
        );
    }

    #[test]
    fn keys_follow_the_configuration() {
        let a = Postgres::default().with_init_sql("CREATE TABLE a (id int)");
        let b = Postgres::default().with_init_sql("CREATE TABLE b (id int)");
        assert_ne!(a.key(), b.key());
        assert_eq!(a.key(), a.clone().key());
        assert!(!a.clone().with_password("s3cret").key().contains("s3cret"));
        let named =
            Postgres::default().with_init("seed v1", |_ctx| async { Ok::<(), BoxError>(()) });
        assert!(named.key().contains("fn:seed v1"));
    }

    #[test]
    fn invalid_definitions_are_refused() {
        assert!(Postgres::default()
            .with_database("x".repeat(41))
            .validate()
            .is_err());
        assert!(Postgres::default()
            .with_database("postgres")
            .validate()
            .is_err());
        assert!(Postgres::default().with_password("").validate().is_err());
        assert!(Postgres::default().validate().is_ok());
        let kind_of = |pg: Postgres| match pg.validate() {
            Err(crate::Error::Seaworthy(e)) => match e {
                seaworthy::Error::Invalid { kind, input, .. } => (kind, input),
                e => panic!("{e}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(
            kind_of(Postgres::default().with_database("template1")),
            ("postgres database name", "template1".to_string())
        );
        assert_eq!(
            kind_of(Postgres::default().with_user("")).0,
            "postgres user"
        );
        assert_eq!(
            kind_of(Postgres::default().with_setting("work mem", "1MB")),
            ("postgres setting name", "work mem".to_string())
        );
        // Every way of starting it refuses, through the container definition.
        let err = Postgres::default()
            .with_database("postgres")
            .container_definition()
            .validate()
            .unwrap_err();
        assert!(
            matches!(&err, seaworthy::Error::Invalid { kind: "postgres database name", input, .. } if input == "postgres"),
            "{err}"
        );
        assert!(!format!("{:?}", Postgres::default().with_password("hunter2")).contains("hunter2"));
    }
}
