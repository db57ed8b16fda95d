//! [`MariaDbFixture`]: a started MariaDB at its baseline.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use mysql_async::{Conn, Opts};
use seaworthy::kit::NamespacePool;
use seaworthy::{ConnectionInfo, Container, Fixture, Isolation};

use crate::baseline::{self, Meta, Names};
use crate::connect;
use crate::definition::{MariaDb, PORT, SYSTEM_DATABASES};
use crate::error::{Error, Result};
use crate::isolation::{IsolatedDatabase, Pool};
use crate::sql::{column, literal};

/// Connections the fixture keeps for itself, to one database: taken for a job and put back
/// after it (a connection that failed is not put back; the next take opens a new one).
pub(crate) struct Slot {
    database: String,
    idle: Mutex<Vec<Conn>>,
}

impl Slot {
    pub(crate) fn new(database: &str) -> Slot {
        Slot {
            database: database.to_string(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection, or a new one.
    pub(crate) async fn take(&self, inner: &Inner) -> Result<Conn> {
        let idle = self.idle().pop();
        if let Some(conn) = idle {
            if !conn.is_disconnected() {
                return Ok(conn);
            }
        }
        inner.conn_to(&self.database).await
    }

    /// Puts a connection back for the next job.
    pub(crate) fn put(&self, conn: Conn) {
        if !conn.is_disconnected() {
            self.idle().push(conn);
        }
    }
}

/// What a fixture and its isolated databases share.
pub(crate) struct Inner {
    pub(crate) container: Container,
    pub(crate) def: MariaDb,
    pub(crate) names: Names,
    /// `container (database db)`, for messages.
    pub(crate) label: String,
    pub(crate) meta: Meta,
    /// Connected to the baseline database, where the procedures live.
    pub(crate) work: Slot,
    pub(crate) clean_lock: tokio::sync::Mutex<()>,
    pub(crate) pool: Pool,
}

impl Inner {
    pub(crate) fn opts_for(&self, database: &str) -> Result<Opts> {
        let port = self.container.host_port(PORT)?;
        Ok(connect::opts(
            self.container.host(),
            port,
            "root",
            &self.def.root_password,
            database,
        ))
    }

    pub(crate) fn connection_for(&self, database: &str) -> Result<ConnectionInfo> {
        let port = self.container.host_port(PORT)?;
        Ok(ConnectionInfo::new("mysql", self.container.host(), port)
            .with_credentials("root", Some(self.def.root_password.clone()))
            .with_path(database))
    }

    pub(crate) async fn conn_to(&self, database: &str) -> Result<Conn> {
        let opts = self.opts_for(database)?;
        connect::connect(&opts)
            .await
            .map_err(|e| Error::query(&self.label, format!("connect to database {database}"), e))
    }

    /// The first column of a query's rows, on a connection of the work slot.
    pub(crate) async fn column(&self, action: &str, sql: &str) -> Result<Vec<String>> {
        let mut conn = self.work.take(self).await?;
        let rows = column(&mut conn, sql)
            .await
            .map_err(|e| Error::query(&self.label, action, e))?;
        self.work.put(conn);
        Ok(rows)
    }
}

/// A started MariaDB, at its baseline. Made by [`FixtureDefinition::start`](seaworthy::FixtureDefinition::start), or shared with
/// [`seaworthy::Shared`].
///
/// * Connection helpers: [`connection`](Self::connection) (password redacted when printed),
///   [`url`](Self::url), [`opts`](Self::opts), [`conn`](Self::conn).
/// * Inspection: [`list_databases`](Self::list_databases), [`list_tables`](Self::list_tables),
///   [`list_users`](Self::list_users).
/// * Back to the baseline: [`clean_with_report`](Self::clean_with_report); a private copy of it per test:
///   [`isolated_database`](Self::isolated_database).
///
/// Cheap to clone: clones share the container and the fixture's connections.
#[derive(Clone)]
pub struct MariaDbFixture {
    pub(crate) inner: Arc<Inner>,
    /// Isolated databases (see `isolation.rs`).
    databases: NamespacePool<String, Error>,
}

impl std::fmt::Debug for MariaDbFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MariaDbFixture")
            .field("container", &self.inner.container.name())
            .field("database", &self.inner.names.database)
            .field("connection", &self.connection())
            .finish()
    }
}

impl MariaDbFixture {
    /// Wraps a started container: connects (retrying until the server answers, within the
    /// definition's startup timeout) and makes sure the baseline exists.
    pub(crate) async fn attach(def: MariaDb, container: Container) -> Result<MariaDbFixture> {
        def.validate()?;
        let names = Names::new(&def.database);
        let label = format!("{} (database {})", container.name(), def.database);
        let deadline = Instant::now() + def.container.startup_timeout();
        let host = container.host().to_string();
        let port = container.host_port(PORT)?;
        let opts = connect::opts(&host, port, "root", &def.root_password, "");
        let mut conn = connect::connect_until(&opts, deadline)
            .await
            .map_err(|e| Error::query(&label, "connect", e))?;
        let meta = {
            let (def, names, label, host) =
                (def.clone(), names.clone(), label.clone(), host.clone());
            seaworthy::runtime::run(async move {
                let meta = baseline::ensure(&mut conn, &def, &names, &label, &host, port).await;
                let _ = conn.disconnect().await;
                meta
            })
            .await?
        };
        tracing::debug!(fixture = %label, tables = meta.tables.len(), "mariadb fixture attached");
        let inner = Arc::new(Inner {
            work: Slot::new(&names.baseline),
            pool: Pool::new(&names.baseline),
            clean_lock: tokio::sync::Mutex::new(()),
            container,
            def,
            names,
            label,
            meta,
        });
        Ok(MariaDbFixture {
            databases: crate::isolation::databases(&inner),
            inner,
        })
    }

    /// The container MariaDB runs in.
    pub fn container(&self) -> &Container {
        &self.inner.container
    }

    /// The database tests use.
    pub fn database(&self) -> &str {
        &self.inner.names.database
    }

    /// The database holding the baseline's shadow copies and the clean procedure
    /// (`<db>_baseline`).
    pub fn baseline_database(&self) -> &str {
        &self.inner.names.baseline
    }

    /// How to reach the database from the host as root; prints with the password redacted.
    pub fn connection(&self) -> ConnectionInfo {
        self.inner
            .connection_for(&self.inner.names.database)
            .unwrap_or_else(|_| ConnectionInfo::new("mysql", self.inner.container.host(), 0))
    }

    /// `mysql://root:password@host:port/db`: hand it to a client, don't print it.
    pub fn url(&self) -> String {
        self.connection().url()
    }

    /// mysql_async options for the database, as root, over TCP: `mysql_async::Pool::new(opts)`
    /// for a pool of your own.
    pub fn opts(&self) -> Result<Opts> {
        self.inner.opts_for(&self.inner.names.database)
    }

    /// A new connection to the database as root (opened on Seaworthy's runtime, so it works
    /// from any test's runtime). [`clean_with_report`](Self::clean_with_report) ends every other session of the
    /// database: connect again after it.
    pub async fn conn(&self) -> Result<Conn> {
        self.inner.conn_to(&self.inner.names.database).await
    }

    /// The databases of the server, without the system's (`mysql`, `information_schema`,
    /// `performance_schema`, `sys`) and Seaworthy's own (the baseline, isolated databases).
    pub async fn list_databases(&self) -> Result<Vec<String>> {
        let all = self
            .inner
            .column(
                "list databases",
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
            )
            .await?;
        Ok(all
            .into_iter()
            .filter(|d| {
                !self.inner.names.is_internal(d)
                    && !SYSTEM_DATABASES.contains(&d.to_ascii_lowercase().as_str())
            })
            .collect())
    }

    /// The tables of the database (base tables: not views or sequences), by name.
    pub async fn list_tables(&self) -> Result<Vec<String>> {
        list_tables(&self.inner, &self.inner.names.database).await
    }

    /// The accounts of the server as `user@host`, without MariaDB's own (`mariadb.sys`...).
    pub async fn list_users(&self) -> Result<Vec<String>> {
        self.inner
            .column(
                "list users",
                "SELECT CONCAT(User, '@', Host) FROM mysql.user \
                 WHERE User NOT IN ('mariadb.sys', 'mysql.sys', 'mysql.session', 'mysql.infoschema') \
                 ORDER BY User, Host",
            )
            .await
    }

    /// A database of its own for one test, cloned from the baseline: see [`IsolatedDatabase`].
    pub async fn isolated_database(&self) -> Result<IsolatedDatabase> {
        let (inner, databases) = (self.inner.clone(), self.databases.clone());
        seaworthy::runtime::run(async move { crate::isolation::checkout(&inner, &databases).await })
            .await
    }
}

/// The base tables of `database`.
pub(crate) async fn list_tables(inner: &Inner, database: &str) -> Result<Vec<String>> {
    inner
        .column(
            &format!("list the tables of {database}"),
            &format!(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} \
                 AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
                literal(database)
            ),
        )
        .await
}

impl Fixture for MariaDbFixture {
    type Error = Error;

    fn kind(&self) -> &str {
        "mariadb"
    }

    fn container(&self) -> &Container {
        &self.inner.container
    }

    /// Returns the database (and the server's users and databases) to the baseline: see
    /// [`clean_with_report`](MariaDbFixture::clean_with_report), which also says what it did.
    async fn clean(&self) -> Result<()> {
        self.clean_with_report().await.map(|_| ())
    }

    fn connection(&self) -> ConnectionInfo {
        MariaDbFixture::connection(self)
    }
}

impl Isolation for MariaDbFixture {
    type Isolated = IsolatedDatabase;

    fn isolate(&self) -> impl std::future::Future<Output = Result<IsolatedDatabase>> + Send {
        let this = self.clone();
        async move { this.isolated_database().await }
    }
}
