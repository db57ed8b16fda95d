//! [`MariaDb`]: the definition of a MariaDB fixture, with its builders.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use mysql_async::Conn;
use seaworthy::kit::key_hash;
use seaworthy::wait::CheckTarget;
use seaworthy::{ConnectionInfo, ContainerDefinition, ContainerFixtureDefinition, Wait};

use crate::connect;
use crate::error::{BoxError, Result};
use crate::fixture::MariaDbFixture;

/// The port MariaDB listens on inside the container.
pub const PORT: u16 = 3306;
/// Where the official image keeps its data (a `VOLUME`).
pub const DATA_DIR: &str = "/var/lib/mysql";
/// Where the official image looks for init scripts (`*.sql`, `*.sql.gz`, `*.sh`), run once when
/// the data directory is initialised, before the fixture records its baseline.
pub const INIT_DIR: &str = "/docker-entrypoint-initdb.d";
/// The longest database name accepted: the names derived from it (`<db>_baseline`,
/// `<db>_iso_<id>`) must fit MariaDB's 64-character identifiers.
pub const MAX_DATABASE_NAME: usize = 48;
/// The databases the server keeps for itself.
pub(crate) const SYSTEM_DATABASES: &[&str] =
    &["mysql", "information_schema", "performance_schema", "sys"];

/// What an init closure gets: a connection to the fixture's database as root, and where it is
/// (for tools that want a URL, such as a migration runner).
pub struct InitContext {
    /// A connection to the database as root.
    pub conn: Conn,
    /// The database's connection details (the URL includes the password).
    pub connection: ConnectionInfo,
}

/// One step that builds the baseline.
pub(crate) type InitStep = seaworthy::kit::InitStep<InitContext>;

/// A MariaDB fixture: the official `mariadb` image (`mariadb:11.4` by default; MySQL-compatible
/// images with the same contract work too), configured through its environment contract
/// (`MARIADB_ROOT_PASSWORD`, `MARIADB_DATABASE`, `MARIADB_USER`, `MARIADB_PASSWORD`; init
/// scripts mounted in [`INIT_DIR`]), made fast for tests, and brought to a *baseline* once — the
/// state [`clean`](MariaDbFixture::clean_with_report) returns to and
/// [isolated databases](MariaDbFixture::isolated_database) start from.
///
/// Defaults: root's password `mariadb`, database `test`, durability off
/// (`innodb_flush_log_at_trx_commit=0`, no doublewrite buffer: a crash may lose the last second
/// of commits, a test doesn't care), a small InnoDB buffer pool (32 MiB) and redo log (16 MiB) so
/// the server initialises and starts quickly, data on a tmpfs (MariaDB has no switch that stops
/// the file syncs of DDL — `ALTER TABLE`, `CREATE TABLE` — which on a disk under load cost tens
/// of milliseconds each: a clean that resets AUTO_INCREMENT counters runs DDL), a pool of 4
/// pre-cloned databases for isolation.
///
/// Ready means the server answers `SELECT 1` over TCP as root (the image's first-start
/// initialisation runs a temporary server that prints the same "ready for connections" line
/// without listening on TCP, so a log line alone is not enough).
///
/// ```no_run
/// use mysql_async::prelude::Queryable;
/// use seaworthy::{Fixture, FixtureDefinition};
/// use seaworthy_mariadb::MariaDb;
///
/// # async fn demo() -> anyhow::Result<()> {
/// let db = MariaDb::default()
///     .with_init_sql("CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT NOT NULL)")
///     .start()
///     .await?;
/// let mut conn = db.conn().await?;
/// conn.query_drop("INSERT INTO users (name) VALUES ('ada')").await?;
/// db.clean().await?; // the users table is empty again, its AUTO_INCREMENT back at 1
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MariaDb {
    pub(crate) container: ContainerDefinition,
    pub(crate) root_password: String,
    pub(crate) database: String,
    pub(crate) user: Option<(String, String)>,
    pub(crate) init: Vec<InitStep>,
    pub(crate) durable: bool,
    pub(crate) tmpfs: bool,
    pub(crate) settings: Vec<(String, String)>,
    pub(crate) pool_size: usize,
}

impl Default for MariaDb {
    fn default() -> Self {
        MariaDb::new()
    }
}

impl fmt::Debug for MariaDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MariaDb")
            .field("image", &self.container.image())
            .field("root_password", &"***")
            .field("database", &self.database)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("init_steps", &self.init.len())
            .field("durable", &self.durable)
            .field("tmpfs", &self.tmpfs)
            .field("settings", &self.settings)
            .finish()
    }
}

impl MariaDb {
    /// The default definition (see the type's documentation).
    pub fn new() -> Self {
        MariaDb {
            container: ContainerDefinition::new("mariadb:11.4")
                .with_startup_timeout(Duration::from_secs(90)),
            root_password: "mariadb".into(),
            database: "test".into(),
            user: None,
            init: Vec::new(),
            durable: false,
            tmpfs: true,
            settings: Vec::new(),
            pool_size: 4,
        }
    }

    /// Customises the container, as any [`ContainerDefinition`]: another image with the official
    /// image's contract (`mariadb:10.11`, a mirror; image substitution applies to it as well), the
    /// startup timeout (how long start, readiness and the baseline may take together, 90 s by
    /// default), labels, environment, mounts (init scripts in [`INIT_DIR`]), networks, limits...
    ///
    /// ```
    /// # use seaworthy_mariadb::MariaDb;
    /// let db = MariaDb::default().with_container(|c| {
    ///     c.with_image("mariadb:10.11").with_env("TZ", "Europe/Paris").with_label("team", "billing")
    /// });
    /// assert_eq!(db.image(), "mariadb:10.11");
    /// ```
    ///
    /// The fixture adds its own configuration over it when it starts: its environment
    /// (`MARIADB_ROOT_PASSWORD`, `MARIADB_DATABASE`, `MARIADB_USER`, `MARIADB_PASSWORD`), the
    /// server's options, port 3306 and its readiness check. The whole customisation is part of
    /// the definition's [key](ContainerFixtureDefinition::key).
    pub fn with_container(
        mut self,
        customise: impl FnOnce(ContainerDefinition) -> ContainerDefinition,
    ) -> Self {
        self.container = customise(self.container);
        self
    }

    /// The container as customised with [`with_container`](Self::with_container), before the
    /// fixture adds its own configuration.
    pub fn container(&self) -> &ContainerDefinition {
        &self.container
    }

    /// Sets root's password (`MARIADB_ROOT_PASSWORD`); the fixture connects as root.
    pub fn with_root_password(mut self, password: impl Into<String>) -> Self {
        self.root_password = password.into();
        self
    }

    /// Sets the database tests use (`MARIADB_DATABASE`), at most [`MAX_DATABASE_NAME`] bytes.
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// Creates an application user at initialisation (`MARIADB_USER`, `MARIADB_PASSWORD`) with
    /// every privilege on the database. It is part of the baseline.
    pub fn with_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Adds SQL (one or more statements, `;`-separated) that builds the baseline: migrations,
    /// seed data. Init steps run once per container, in the order given, against the fixture's
    /// database, before the baseline is recorded; every [`clean`](MariaDbFixture::clean_with_report) returns
    /// to the state they left, and every isolated database starts from it. (Scripts mounted in
    /// [`INIT_DIR`] run before them, at the image's initialisation.)
    pub fn with_init_sql(mut self, sql: impl Into<String>) -> Self {
        self.init.push(InitStep::Sql(sql.into()));
        self
    }

    /// Adds a step of your own to the baseline (run a migration tool, load a dump...). The
    /// closure gets an [`InitContext`] and runs once per container, in order with the SQL steps.
    /// `name` identifies the step in messages and in the definition's
    /// [key](ContainerFixtureDefinition::key): rename it when the step changes.
    ///
    /// ```no_run
    /// # use seaworthy_mariadb::MariaDb;
    /// use mysql_async::prelude::Queryable;
    /// let db = MariaDb::default().with_init("seed users", |mut ctx| async move {
    ///     for name in ["ada", "grace"] {
    ///         ctx.conn.exec_drop("INSERT INTO users (name) VALUES (?)", (name,)).await?;
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

    /// `false` (the default) makes commits cheap: `innodb_flush_log_at_trx_commit=0` and no
    /// doublewrite buffer. `true` keeps the server's durable defaults.
    pub fn with_durability(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// `true` (the default) keeps the data directory on a tmpfs; `false` keeps it in the image's
    /// volume (on disk: DDL, and so a clean that resets AUTO_INCREMENT counters, is slower; the
    /// data survives a restart of the container).
    pub fn with_data_on_tmpfs(mut self, tmpfs: bool) -> Self {
        self.tmpfs = tmpfs;
        self
    }

    /// Sets a server option at start (`--name=value`, after the fixture's own, so it wins):
    /// `max_connections`, `innodb_buffer_pool_size`, `sql_mode`...
    pub fn with_setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// How many databases cloned from the baseline are kept ready for
    /// [`isolated_database`](MariaDbFixture::isolated_database) (default 4; 0 clones on demand).
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// The image as configured (before substitution).
    pub fn image(&self) -> &str {
        self.container.image()
    }

    /// The database tests use.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Checks the definition; every start runs this before anything is created. The error
    /// ([`seaworthy::Error::Invalid`], inside [`Error::Seaworthy`](crate::Error::Seaworthy))
    /// names the field and the value at fault: an empty root password, a database name that is
    /// empty, longer than [`MAX_DATABASE_NAME`] bytes, one the server keeps for itself or with a
    /// character MariaDB cannot use in a database name (`/`, `\`, `.`, a NUL, a trailing space),
    /// an application user named `root` or with an empty name or password, a setting name that
    /// is not an option name.
    pub fn validate(&self) -> Result<()> {
        let invalid = |kind: &'static str, input: &str, reason: &str| {
            Err(seaworthy::Error::invalid(kind, input, reason).into())
        };
        if self.root_password.is_empty() {
            return invalid(
                "mariadb root password",
                "",
                "is empty (the image refuses to initialise without one)",
            );
        }
        let db = &self.database;
        if db.is_empty() || db.len() > MAX_DATABASE_NAME {
            return invalid(
                "mariadb database name",
                db,
                &format!("must have 1 to {MAX_DATABASE_NAME} bytes"),
            );
        }
        if SYSTEM_DATABASES.contains(&db.to_ascii_lowercase().as_str()) {
            return invalid(
                "mariadb database name",
                db,
                "is one the server keeps for itself",
            );
        }
        if db.contains(['/', '\\', '.', '\0']) || db.ends_with(' ') {
            return invalid(
                "mariadb database name",
                db,
                "contains a character MariaDB refuses in a database name (/, \\, ., NUL, a trailing space)",
            );
        }
        if let Some((user, password)) = &self.user {
            if user.is_empty() || user.len() > 80 || user.contains('\0') {
                return invalid("mariadb user", user, "must have 1 to 80 bytes and no NUL");
            }
            if user == "root" {
                return invalid(
                    "mariadb user",
                    user,
                    "root exists already: set its password with with_root_password",
                );
            }
            if password.is_empty() {
                return invalid(
                    "mariadb user password",
                    "",
                    "is empty (the image refuses a user without one)",
                );
            }
        }
        for (name, _) in &self.settings {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return invalid(
                    "mariadb setting name",
                    name,
                    "is not an option name (letters, digits, `_` and `-`)",
                );
            }
        }
        Ok(())
    }

    /// The server's options: the fast defaults, then the settings given.
    pub(crate) fn command(&self) -> Vec<String> {
        let mut settings: Vec<(String, String)> = vec![
            ("innodb_buffer_pool_size".into(), "32M".into()),
            ("innodb_log_file_size".into(), "16M".into()),
            ("innodb_buffer_pool_load_at_startup".into(), "0".into()),
            ("innodb_buffer_pool_dump_at_shutdown".into(), "0".into()),
        ];
        if !self.durable {
            settings.push(("innodb_flush_log_at_trx_commit".into(), "0".into()));
            settings.push(("innodb_doublewrite".into(), "0".into()));
        }
        settings.extend(self.settings.iter().cloned());
        settings
            .into_iter()
            .map(|(name, value)| format!("--{}={value}", name.replace('_', "-")))
            .collect()
    }

    /// The readiness check: `SELECT 1` over TCP as root.
    fn ready_check(&self) -> Wait {
        let password = self.root_password.clone();
        Wait::custom(
            "MariaDB answering SELECT 1 as root over TCP",
            move |target: CheckTarget| {
                let opts = target
                    .ports
                    .get(&PORT)
                    .map(|port| connect::opts(&target.host, *port, "root", &password, ""));
                async move {
                    let Some(opts) = opts else {
                        return Err(seaworthy::Error::Container {
                            container: target.name,
                            reason: format!("port {PORT} is not published"),
                        });
                    };
                    match connect::probe(&opts).await {
                    connect::Probe::Ready => Ok(true),
                    connect::Probe::NotYet => Ok(false),
                    connect::Probe::Refused(message) => Err(seaworthy::Error::Container {
                        container: target.name,
                        reason: format!(
                            "MariaDB refused the fixture's credentials: {message} (a data directory initialised with another root password?)"
                        ),
                    }),
                }
                }
            },
        )
    }
}

impl ContainerFixtureDefinition for MariaDb {
    type Fixture = MariaDbFixture;

    fn key(&self) -> String {
        format!(
            "mariadb/v1|{}|{}|{}|{:?}|durable={}|tmpfs={}|{:?}|{}|container={}",
            self.container.image(),
            key_hash(&self.root_password),
            self.database,
            self.user
                .as_ref()
                .map(|(u, p)| format!("{u}:{}", key_hash(p))),
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
            .with_env("MARIADB_ROOT_PASSWORD", &self.root_password)
            .with_env("MARIADB_DATABASE", &self.database)
            .with_port(PORT)
            .with_cmd(self.command());
        if let Some((user, password)) = &self.user {
            def = def
                .with_env("MARIADB_USER", user)
                .with_env("MARIADB_PASSWORD", password);
        }
        def = match self.validate() {
            Ok(()) => def.and_wait(self.ready_check()),
            Err(e) => def.refused_by(Err(e.into())),
        };
        if self.tmpfs {
            def = def.with_tmpfs(DATA_DIR, None);
        }
        def
    }

    fn attach(
        &self,
        container: seaworthy::Container,
    ) -> impl Future<Output = Result<MariaDbFixture>> + Send {
        MariaDbFixture::attach(self.clone(), container)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_turns_durability_off_by_default() {
        let cmd = MariaDb::default()
            .with_setting("max_connections", "200")
            .command();
        assert!(cmd.contains(&"--innodb-flush-log-at-trx-commit=0".to_string()));
        assert_eq!(
            cmd.last().map(String::as_str),
            Some("--max-connections=200")
        );
        let durable = MariaDb::default().with_durability(true).command();
        assert!(!durable.iter().any(|a| a.contains("flush-log")));
    }

    #[test]
    fn keys_follow_the_configuration() {
        let a = MariaDb::default().with_init_sql("CREATE TABLE a (id int)");
        let b = MariaDb::default().with_init_sql("CREATE TABLE b (id int)");
        assert_ne!(a.key(), b.key());
        assert_eq!(a.key(), a.clone().key());
        assert!(!a
            .clone()
            .with_root_password("s3cret")
            .key()
            .contains("s3cret"));
    }

    #[test]
    fn invalid_definitions_are_refused() {
        let kind_of = |db: MariaDb| match db.validate() {
            Err(crate::Error::Seaworthy(seaworthy::Error::Invalid { kind, input, .. })) => {
                (kind, input)
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            kind_of(MariaDb::default().with_database("mysql")),
            ("mariadb database name", "mysql".to_string())
        );
        assert_eq!(
            kind_of(MariaDb::default().with_database("x".repeat(49))).0,
            "mariadb database name"
        );
        assert_eq!(
            kind_of(MariaDb::default().with_database("a.b")).0,
            "mariadb database name"
        );
        assert_eq!(
            kind_of(MariaDb::default().with_root_password("")).0,
            "mariadb root password"
        );
        assert_eq!(
            kind_of(MariaDb::default().with_user("root", "x")).0,
            "mariadb user"
        );
        assert_eq!(
            kind_of(MariaDb::default().with_setting("max connections", "1")),
            ("mariadb setting name", "max connections".to_string())
        );
        assert!(MariaDb::default().validate().is_ok());
        let err = MariaDb::default()
            .with_database("mysql")
            .container_definition()
            .validate()
            .unwrap_err();
        assert!(
            matches!(
                &err,
                seaworthy::Error::Invalid {
                    kind: "mariadb database name",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            !format!("{:?}", MariaDb::default().with_root_password("hunter2")).contains("hunter2")
        );
    }
}
