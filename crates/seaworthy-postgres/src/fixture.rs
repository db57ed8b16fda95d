//! [`PostgresFixture`]: a started PostgreSQL with its baseline, connection helpers and inspection.

use std::sync::Arc;
use std::time::Instant;

use seaworthy::kit::NamespacePool;
use seaworthy::{ConnectionInfo, Container, Fixture, Isolation};
use tokio_postgres::Client;

use crate::baseline::{self, Meta, Names};
use crate::clean::{CleanPath, CleanReport};
use crate::connect;
use crate::definition::{Postgres, PORT};
use crate::error::{Error, Result};
use crate::inspect::{self, Extension, Table};
use crate::isolation::{IsolatedDatabase, Pool};

/// A connection the fixture keeps for itself, re-opened when it was closed (by a clean that
/// re-created the database, a test that terminated it, a container restart).
pub(crate) struct Slot {
    database: String,
    /// Run on every new connection (creates the session's helper functions).
    setup: Option<String>,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl Slot {
    pub(crate) fn new(database: &str, setup: Option<String>) -> Slot {
        Slot {
            database: database.to_string(),
            setup,
            client: tokio::sync::Mutex::new(None),
        }
    }

    /// The open connection, or a new one.
    pub(crate) async fn get(&self, inner: &Inner) -> Result<Arc<Client>> {
        self.get_or_adopt(inner, None).await
    }

    /// Makes `client` (connected to the slot's database), or a new connection when it is
    /// `None`, the slot's connection, prepared by the setup.
    pub(crate) async fn prepare(&self, inner: &Inner, client: Option<Client>) -> Result<()> {
        self.get_or_adopt(inner, client).await.map(|_| ())
    }

    async fn get_or_adopt(&self, inner: &Inner, adopt: Option<Client>) -> Result<Arc<Client>> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            if !client.is_closed() {
                return Ok(client.clone());
            }
        }
        let client = match adopt {
            Some(client) => client,
            None => {
                let config = inner.config_for(&self.database)?;
                connect::connect(&config).await.map_err(|e| {
                    Error::query(
                        &inner.label,
                        format!("connect to database {}", self.database),
                        e,
                    )
                })?
            }
        };
        if let Some(setup) = &self.setup {
            client.batch_execute(setup).await.map_err(|e| {
                Error::query(
                    &inner.label,
                    format!("prepare a session on database {}", self.database),
                    e,
                )
            })?;
        }
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Forgets the connection (the next [`get`](Self::get) opens a new one).
    pub(crate) async fn reset(&self) {
        *self.client.lock().await = None;
    }
}

/// What a fixture and its isolated databases share.
pub(crate) struct Inner {
    pub(crate) container: Container,
    pub(crate) def: Postgres,
    pub(crate) names: Names,
    /// `container (database db)`, for messages.
    pub(crate) label: String,
    pub(crate) meta: Meta,
    /// Connected to the fixture's database; holds the clean function.
    pub(crate) work: Slot,
    /// Connected to `postgres`: creates and drops databases and roles.
    pub(crate) maint: Slot,
    pub(crate) clean_lock: tokio::sync::Mutex<()>,
    pub(crate) pool: Pool,
    /// The server's write position and client count right after this handle's last clean
    /// through the `Fixture` contract (see `unchanged_since_clean`).
    pub(crate) clean_mark: std::sync::Mutex<Option<String>>,
}

impl Inner {
    pub(crate) fn config_for(&self, database: &str) -> Result<tokio_postgres::Config> {
        let port = self.container.host_port(PORT)?;
        Ok(connect::config(
            self.container.host(),
            port,
            &self.def.user,
            &self.def.password,
            database,
        ))
    }

    pub(crate) fn connection_for(&self, database: &str) -> Result<ConnectionInfo> {
        let port = self.container.host_port(PORT)?;
        Ok(ConnectionInfo::new("postgres", self.container.host(), port)
            .with_credentials(&self.def.user, Some(self.def.password.clone()))
            .with_path(database))
    }

    pub(crate) async fn client_for(&self, database: &str) -> Result<Client> {
        let config = self.config_for(database)?;
        connect::connect(&config)
            .await
            .map_err(|e| Error::query(&self.label, format!("connect to database {database}"), e))
    }
}

/// A started PostgreSQL, at its baseline. Made by [`start`](seaworthy::FixtureDefinition::start), or shared with
/// [`seaworthy::Shared`].
///
/// * Connection helpers: [`connection`](Self::connection) (password redacted when printed),
///   [`url`](Self::url), [`config`](Self::config), [`client`](Self::client).
/// * Inspection: [`list_databases`](Self::list_databases), [`list_schemas`](Self::list_schemas),
///   [`list_tables`](Self::list_tables), [`list_roles`](Self::list_roles),
///   [`list_extensions`](Self::list_extensions).
/// * Back to the baseline: [`clean`](Self::clean); a private copy of it per test:
///   [`isolated_database`](Self::isolated_database).
///
/// Cheap to clone: clones share the container and the fixture's connections.
#[derive(Clone)]
pub struct PostgresFixture {
    pub(crate) inner: Arc<Inner>,
    /// Isolated databases (see `isolation.rs`).
    databases: NamespacePool<String, Error>,
}

impl std::fmt::Debug for PostgresFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresFixture")
            .field("container", &self.inner.container.name())
            .field("database", &self.inner.names.database)
            .field("connection", &self.connection())
            .finish()
    }
}

impl PostgresFixture {
    /// Wraps a started container: connects (retrying until the server answers, within the
    /// definition's startup timeout), makes sure the baseline exists, and prepares the clean.
    /// One connection (to the fixture's database) when the baseline is recorded already: it
    /// reads the record and becomes the connection that holds the clean function.
    pub(crate) async fn attach(def: Postgres, container: Container) -> Result<PostgresFixture> {
        def.validate()?;
        let names = Names::new(&def.database);
        let label = format!("{} (database {})", container.name(), def.database);
        let deadline = Instant::now() + def.container.startup_timeout();
        let port = container.host_port(PORT)?;
        let config = connect::config(
            container.host(),
            port,
            &def.user,
            &def.password,
            &names.database,
        );
        let first = connect::connect_until(&config, deadline)
            .await
            .map_err(|e| Error::query(&label, "connect", e))?;
        let ensured = baseline::ensure(&container, &first, &def, &names, &label).await?;
        // Building the baseline closed the sessions of the fixture's database, this one too.
        let first = if ensured.built { None } else { Some(first) };
        // A clean function from the record was checked when it was recorded (on this server):
        // its body is not checked again.
        let setup = if ensured.stored {
            format!(
                "SET check_function_bodies = off; {}; RESET check_function_bodies",
                ensured.clean_sql
            )
        } else {
            ensured.clean_sql
        };
        tracing::debug!(fixture = %label, stored = ensured.stored, built = ensured.built, "postgres fixture attached");
        let inner = Arc::new(Inner {
            work: Slot::new(&names.database, Some(setup)),
            maint: Slot::new("postgres", None),
            pool: Pool::new(),
            clean_lock: tokio::sync::Mutex::new(()),
            clean_mark: std::sync::Mutex::new(None),
            container,
            def,
            names,
            label,
            meta: ensured.meta,
        });
        // Compiles the clean function now, so a problem shows at start rather than at first clean.
        inner.work.prepare(&inner, first).await?;
        Ok(PostgresFixture {
            databases: crate::isolation::databases(&inner),
            inner,
        })
    }

    /// The container PostgreSQL runs in.
    pub fn container(&self) -> &Container {
        &self.inner.container
    }

    /// The database tests use.
    pub fn database(&self) -> &str {
        &self.inner.names.database
    }

    /// The template database holding the baseline (`<db>_baseline`).
    pub fn template_database(&self) -> &str {
        &self.inner.names.template
    }

    /// The superuser's name.
    pub fn user(&self) -> &str {
        &self.inner.def.user
    }

    /// How to reach the database from the host; prints with the password redacted.
    pub fn connection(&self) -> ConnectionInfo {
        self.inner
            .connection_for(&self.inner.names.database)
            .unwrap_or_else(|_| ConnectionInfo::new("postgres", self.inner.container.host(), 0))
    }

    /// `postgres://user:password@host:port/db`: hand it to a client, don't print it.
    pub fn url(&self) -> String {
        self.connection().url()
    }

    /// A tokio-postgres configuration for the database.
    pub fn config(&self) -> Result<tokio_postgres::Config> {
        self.inner.config_for(&self.inner.names.database)
    }

    /// A new client connected to the database as the superuser, its connection task running on
    /// Seaworthy's runtime (so it works from any test's runtime). [`clean`](Self::clean) closes
    /// every session of the database: connect again after it.
    pub async fn client(&self) -> Result<Client> {
        self.inner.client_for(&self.inner.names.database).await
    }

    /// The databases of the server, without PostgreSQL's templates and Seaworthy's own (the
    /// baseline template, the pool, isolated databases).
    pub async fn list_databases(&self) -> Result<Vec<String>> {
        let client = self.inner.work.get(&self.inner).await?;
        let all = inspect::databases(&client)
            .await
            .map_err(|e| Error::query(&self.inner.label, "list databases", e))?;
        Ok(all
            .into_iter()
            .filter(|d| !self.inner.names.is_internal(d))
            .collect())
    }

    /// The schemas of the database, without the system's (`pg_catalog`, `information_schema`,
    /// `pg_toast`, temporary schemas).
    pub async fn list_schemas(&self) -> Result<Vec<String>> {
        let client = self.inner.work.get(&self.inner).await?;
        inspect::schemas(&client)
            .await
            .map_err(|e| Error::query(&self.inner.label, "list schemas", e))
    }

    /// The tables of the database (ordinary and partitioned), without the system's.
    pub async fn list_tables(&self) -> Result<Vec<Table>> {
        let client = self.inner.work.get(&self.inner).await?;
        inspect::tables(&client)
            .await
            .map_err(|e| Error::query(&self.inner.label, "list tables", e))
    }

    /// The roles (users and groups) of the server, without the predefined `pg_*` roles.
    pub async fn list_roles(&self) -> Result<Vec<String>> {
        let client = self.inner.work.get(&self.inner).await?;
        inspect::roles(&client)
            .await
            .map_err(|e| Error::query(&self.inner.label, "list roles", e))
    }

    /// The extensions installed in the database (`plpgsql` is always there).
    pub async fn list_extensions(&self) -> Result<Vec<Extension>> {
        let client = self.inner.work.get(&self.inner).await?;
        inspect::extensions(&client)
            .await
            .map_err(|e| Error::query(&self.inner.label, "list extensions", e))
    }

    /// A database of its own for one test, cloned from the baseline: see [`IsolatedDatabase`].
    pub async fn isolated_database(&self) -> Result<IsolatedDatabase> {
        crate::isolation::checkout(&self.inner, &self.databases).await
    }
}

impl Fixture for PostgresFixture {
    type Error = Error;

    fn kind(&self) -> &str {
        "postgres"
    }

    fn container(&self) -> &Container {
        &self.inner.container
    }

    /// Returns the database (and the cluster-wide state tests can change) to the baseline: see
    /// [`clean_with_report`](PostgresFixture::clean_with_report), which also says what it did.
    async fn clean(&self) -> Result<()> {
        self.clean_with_report().await.map(|_| ())
    }

    /// Unchanged when the server has written nothing to its write-ahead log since the last clean
    /// (every change a test can make to rows, sequences, objects, roles or databases is logged:
    /// the fixture has no unlogged tables of its own) and no more client sessions are busy, in a
    /// transaction or holding an advisory lock (a session a test left like that is a change: it
    /// may hold locks; an idle one holds nothing another session sees, and it is left alone). One
    /// query. A write by anything else (another process of the run, autovacuum) only makes the
    /// next hand-out clean.
    fn unchanged_since_clean(&self) -> impl std::future::Future<Output = Result<bool>> + Send {
        let this = self.clone();
        async move {
            let Some(expected) = this.mark().clone() else {
                return Ok(false);
            };
            Ok(this.read_mark().await? == expected)
        }
    }

    fn connection(&self) -> ConnectionInfo {
        PostgresFixture::connection(self)
    }
}

impl PostgresFixture {
    /// Returns the database (and the cluster-wide state tests can change) to the baseline: the
    /// state right after the init steps. Other sessions of the database are closed first, open
    /// transactions included (so a connection a test left behind never blocks it; connect again
    /// afterwards). The report says which path it took: only data ([`CleanPath::Data`], a few
    /// milliseconds), objects created by the test dropped ([`CleanPath::Objects`]), or the database
    /// re-created from its template ([`CleanPath::Database`]).
    ///
    /// Concurrent calls on one fixture run one after the other. Isolated databases are not
    /// touched (they are dropped when their guard is), but roles are cluster-wide: a role a test
    /// created in its isolated database is dropped here too.
    pub async fn clean_with_report(&self) -> Result<CleanReport> {
        *self.mark() = None;
        // The write position is read in the same round trip, queued right behind the clean
        // function on the fixture's connection, so it is read after the clean committed. A
        // clean that went further than the data (or reconnected, or restored seed rows in a
        // round trip of their own) reads it again after. A mark read too early is never wrong
        // the unsafe way: the clean's own writes move the write position past it, so the next
        // check says "changed" and only costs a clean.
        let (report, early) = tokio::join!(self.clean_to_baseline(), self.read_mark());
        let (report, restored) = report?;
        let mark = match early {
            Ok(mark) if report.path == CleanPath::Data && !report.cluster_restored && !restored => {
                mark
            }
            _ => self.read_mark().await?,
        };
        *self.mark() = Some(mark);
        Ok(report)
    }

    fn mark(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.inner
            .clean_mark
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The server's write-ahead log position and the number of other client sessions that are
    /// not idle or hold an advisory lock, as one string.
    async fn read_mark(&self) -> Result<String> {
        let inner = &self.inner;
        let client = inner.work.get(inner).await?;
        crate::baseline::single_text(
            &client,
            "SELECT pg_current_wal_insert_lsn()::text || ' ' || (SELECT count(*) \
             FROM pg_stat_activity a WHERE a.backend_type = 'client backend' \
             AND a.pid <> pg_backend_pid() AND (a.state IS DISTINCT FROM 'idle' \
             OR EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory')))::text",
        )
        .await
        .map_err(|e| Error::query(&inner.label, "read the write position", e))
    }
}

impl Isolation for PostgresFixture {
    type Isolated = IsolatedDatabase;

    fn isolate(&self) -> impl std::future::Future<Output = Result<IsolatedDatabase>> + Send {
        let this = self.clone();
        async move { this.isolated_database().await }
    }
}
