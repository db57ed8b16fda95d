//! Isolation: a database per test, cloned from the baseline, in one shared container.
//!
//! MariaDB has no template databases: a clone is `CREATE DATABASE`, each table created from its
//! recorded definition and filled from the baseline's shadow copy, then the views, routines,
//! triggers and events — tens of milliseconds for a few tables, one round trip. So clones are
//! made ahead of time: a pool of databases named `<db>_iso_<id>` is kept at the definition's
//! pool size by a background task (one process at a time per container, under a named lock),
//! listed in `<db>_baseline.seaworthy_pool`. A checkout takes one with a `SELECT ... FOR
//! UPDATE SKIP LOCKED` in a stored procedure (one round trip; two processes never get the same
//! one) and records it, with the process's owner token, in `seaworthy_checkout`; it falls back
//! to cloning on the spot when the pool is empty.
//!
//! Each process holds a named lock `seaworthy-owner:<token>` on a connection of its own for as
//! long as it lives: a refill drops the checked-out databases whose owner's lock is free (a
//! test process that died before it dropped its databases). Dropping the guard drops the
//! database in the background; with `SEAWORTHY_KEEP_ON_FAILURE=1`, a guard dropped by a failing
//! (panicking) test keeps its database, and says where it is.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use seaworthy::kit::{Lease, NamespacePool};
use seaworthy::{ConnectionInfo, Shared};

use crate::definition::MariaDb;
use crate::error::{Error, Result};
use crate::fixture::{Inner, Slot};
use crate::sql::{column, ident, like_prefix, literal, qualified};

/// The owner of databases a kept (failed) test left: never reclaimed.
const KEPT: &str = "kept";

/// The per-process side of the pool.
pub(crate) struct Pool {
    /// Takes databases out of the pool (and clones when the pool is empty).
    checkout: Slot,
    /// Refills the pool and drops released databases.
    background: Slot,
    /// This process's owner token, and the connection holding its lock once taken.
    token: String,
    owner: tokio::sync::Mutex<Option<Conn>>,
    /// Databases this process has checked out and not released.
    live: Mutex<HashSet<String>>,
}

impl Pool {
    pub(crate) fn new(baseline: &str) -> Pool {
        Pool {
            checkout: Slot::new(baseline),
            background: Slot::new(baseline),
            token: format!("{:016x}", rand::random::<u64>()),
            owner: tokio::sync::Mutex::new(None),
            live: Mutex::new(HashSet::new()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes this process's owner lock, once (again when its connection was lost).
async fn hold_owner_lock(inner: &Inner) -> Result<()> {
    let mut owner = inner.pool.owner.lock().await;
    if owner.as_ref().is_some_and(|c| !c.is_disconnected()) {
        return Ok(());
    }
    let mut conn = inner.conn_to(&inner.names.baseline).await?;
    let got: Option<Option<i64>> = conn
        .query_first(format!(
            "SELECT GET_LOCK({}, 10)",
            literal(&format!("seaworthy-owner:{}", inner.pool.token))
        ))
        .await
        .map_err(|e| Error::query(&inner.label, "take the pool's owner lock", e))?;
    if got.flatten() != Some(1) {
        return Err(Error::fixture(
            &inner.label,
            "the pool's owner lock of this process is held by another session",
        ));
    }
    *owner = Some(conn);
    Ok(())
}

/// A new name for a clone.
fn new_name(inner: &Inner) -> String {
    format!("{}{:08x}", inner.names.iso_prefix, rand::random::<u32>())
}

/// Clones the baseline into a new database `name`, in one round trip.
pub(crate) async fn create_clone(inner: &Inner, conn: &mut Conn, name: &str) -> Result<()> {
    let sql = format!(
        "CREATE DATABASE {};\n{}",
        ident(name),
        inner.meta.clone_sql(&inner.names, name)
    );
    if let Err(e) = conn.query_drop(sql).await {
        let _ = conn
            .query_drop(format!(
                "SET foreign_key_checks = 1; USE {}; DROP DATABASE IF EXISTS {}",
                ident(&inner.names.baseline),
                ident(name)
            ))
            .await;
        return Err(Error::query(
            &inner.label,
            format!("clone the baseline into {name}"),
            e,
        ));
    }
    Ok(())
}

/// The fixture's isolated databases, in the kit's pool: each serves one test (a released one is
/// dropped, a kept one recorded as kept); a checkout takes one of the clones made ahead of time
/// (listed in the server, so every process of the run shares them) or clones one on the spot,
/// and the pool is topped up in the background.
pub(crate) fn databases(inner: &Arc<Inner>) -> NamespacePool<String, Error> {
    let refill = (inner.def.pool_size > 0)
        .then_some(|inner: Arc<Inner>| async move { refill(&inner).await });
    NamespacePool::for_server(
        "mariadb database",
        inner.clone(),
        |inner, name: String| async move { release(&inner, &name).await },
        |inner, _| async move { take(&inner).await },
        |inner, name: String| async move { keep(&inner, &name).await },
        refill,
    )
}

/// Takes a database for one test: one of the pool's (one round trip), else a clone made on the
/// spot.
async fn take(inner: &Arc<Inner>) -> Result<String> {
    hold_owner_lock(inner).await?;
    let mut conn = inner.pool.checkout.take(inner).await?;
    let taken: Option<String> = if inner.def.pool_size > 0 {
        conn.query_first::<Option<String>, _>(format!(
            "CALL {}({})",
            qualified(&inner.names.baseline, "seaworthy_checkout_one"),
            literal(&inner.pool.token)
        ))
        .await
        .map_err(|e| Error::query(&inner.label, "check out a database from the pool", e))?
        .flatten()
    } else {
        None
    };
    let name = match taken {
        Some(name) => name,
        None => {
            let name = new_name(inner);
            tracing::debug!(fixture = %inner.label, database = %name, "pool empty; cloning the baseline on the spot");
            create_clone(inner, &mut conn, &name).await?;
            conn.query_drop(format!(
                "INSERT INTO {} (name, owner) VALUES ({}, {})",
                qualified(&inner.names.baseline, "seaworthy_checkout"),
                literal(&name),
                literal(&inner.pool.token)
            ))
            .await
            .map_err(|e| Error::query(&inner.label, format!("record the checkout of {name}"), e))?;
            name
        }
    };
    inner.pool.checkout.put(conn);
    inner.pool.live().insert(name.clone());
    Ok(name)
}

/// Checks out a database for one test.
pub(crate) async fn checkout(
    inner: &Arc<Inner>,
    databases: &NamespacePool<String, Error>,
) -> Result<IsolatedDatabase> {
    Ok(IsolatedDatabase {
        lease: databases.checkout().await?,
        inner: inner.clone(),
    })
}

/// Drops the databases of dead owners, then clones the baseline until the pool holds
/// `pool_size` databases; one process at a time (the others return at once).
async fn refill(inner: &Inner) -> Result<()> {
    let mut conn = inner.pool.background.take(inner).await?;
    let lock = literal(&format!("seaworthy-pool:{}", inner.names.database));
    let got: Option<Option<i64>> = conn
        .query_first(format!("SELECT GET_LOCK({lock}, 0)"))
        .await
        .map_err(|e| Error::query(&inner.label, "take the pool lock", e))?;
    if got.flatten() != Some(1) {
        inner.pool.background.put(conn);
        return Ok(());
    }
    let result = refill_locked(inner, &mut conn).await;
    let _ = conn.query_drop(format!("DO RELEASE_LOCK({lock})")).await;
    inner.pool.background.put(conn);
    result
}

async fn refill_locked(inner: &Inner, conn: &mut Conn) -> Result<()> {
    let bl = &inner.names.baseline;
    let pool = qualified(bl, "seaworthy_pool");
    let checkout = qualified(bl, "seaworthy_checkout");
    let q = |action: &str, e| Error::query(&inner.label, action.to_string(), e);
    // Databases of owners that are gone, and strays (a clone a dead process left half-made).
    let orphans = column(
        conn,
        &format!(
            "SELECT name FROM {checkout} WHERE owner <> {} AND IS_FREE_LOCK(CONCAT('seaworthy-owner:', owner)) = 1 \
             UNION SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE {} \
             AND SCHEMA_NAME NOT IN (SELECT name FROM {pool}) AND SCHEMA_NAME NOT IN (SELECT name FROM {checkout})",
            literal(KEPT),
            like_prefix(&inner.names.iso_prefix)
        ),
    )
    .await
    .map_err(|e| q("list the databases of ended processes", e))?;
    for name in orphans {
        tracing::debug!(database = %name, "dropping an isolated database an ended process left");
        drop_database(inner, conn, &name).await?;
    }
    loop {
        let count: Option<i64> = conn
            .query_first(format!("SELECT COUNT(*) FROM {pool}"))
            .await
            .map_err(|e| q("count the pool's databases", e))?;
        if count.unwrap_or(0) >= inner.def.pool_size as i64 {
            return Ok(());
        }
        let name = new_name(inner);
        create_clone(inner, conn, &name).await?;
        conn.query_drop(format!(
            "INSERT INTO {pool} (name) VALUES ({})",
            literal(&name)
        ))
        .await
        .map_err(|e| q("add a database to the pool", e))?;
    }
}

/// Ends the sessions using `name`, drops it and forgets its checkout.
async fn drop_database(inner: &Inner, conn: &mut Conn, name: &str) -> Result<()> {
    let sessions = column(
        conn,
        &format!(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = {} AND ID <> CONNECTION_ID()",
            literal(name)
        ),
    )
    .await
    .map_err(|e| Error::query(&inner.label, format!("list the sessions of {name}"), e))?;
    for id in sessions {
        // Gone meanwhile (1094) is fine.
        let _ = conn.query_drop(format!("KILL CONNECTION {id}")).await;
    }
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {}; DELETE FROM {} WHERE name = {}",
        ident(name),
        qualified(&inner.names.baseline, "seaworthy_checkout"),
        literal(name)
    ))
    .await
    .map_err(|e| Error::query(&inner.label, format!("drop isolated database {name}"), e))
}

/// A failed test's database, kept (`SEAWORTHY_KEEP_ON_FAILURE`): its checkout is marked kept, so
/// no refill drops it.
async fn keep(inner: &Inner, name: &str) -> Result<()> {
    inner.pool.live().remove(name);
    if let Ok(connection) = inner.connection_for(name) {
        eprintln!("seaworthy: the kept database {name} is at {connection}");
    }
    let mut conn = inner.pool.background.take(inner).await?;
    conn.query_drop(format!(
        "UPDATE {} SET owner = {} WHERE name = {}",
        qualified(&inner.names.baseline, "seaworthy_checkout"),
        literal(KEPT),
        literal(name)
    ))
    .await
    .map_err(|e| Error::query(&inner.label, format!("keep database {name}"), e))?;
    inner.pool.background.put(conn);
    Ok(())
}

async fn release(inner: &Inner, name: &str) -> Result<()> {
    let mut conn = inner.pool.background.take(inner).await?;
    let result = drop_database(inner, &mut conn, name).await;
    if result.is_ok() {
        inner.pool.background.put(conn);
    }
    inner.pool.live().remove(name);
    result
}

/// A database of one test's own, cloned from the baseline of a shared MariaDB: tests running in
/// parallel each get one, and never see each other's rows or objects. Dropping the guard drops
/// the database, in the background.
///
/// # What is isolated, and what is not
///
/// Everything that lives in a database is the test's own: tables and rows, AUTO_INCREMENT
/// counters, views, sequences, routines, triggers and events.
///
/// What lives in the **server** is shared by every isolated database at once: users and their
/// grants (`CREATE USER`, `GRANT`), other databases, global variables (`SET GLOBAL`), named
/// locks (`GET_LOCK`). A test that changes them takes the fixture alone
/// ([`Shared::fresh`], a `&MariaDbFixture` parameter of `#[seaworthy::test]`), and the next
/// hand-out's [`clean`](crate::MariaDbFixture::clean_with_report) restores users, grants and databases.
///
/// ```no_run
/// use mysql_async::prelude::Queryable;
/// use seaworthy::Shared;
/// use seaworthy_mariadb::{MariaDb, SharedMariaDb};
///
/// fn mariadb() -> MariaDb {
///     MariaDb::default().with_init_sql("CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT)")
/// }
/// static DB: Shared<MariaDb> = Shared::per_process(mariadb);
///
/// #[tokio::test]
/// async fn inserts_a_user() -> anyhow::Result<()> {
///     let db = DB.isolated_database().await?; // a few milliseconds: pre-cloned
///     let mut conn = db.conn().await?;
///     conn.query_drop("INSERT INTO users (name) VALUES ('ada')").await?;
///     Ok(())
/// }
/// ```
pub struct IsolatedDatabase {
    /// The database's name, checked out of the fixture's pool: dropping it drops the database.
    lease: Lease<String, Error>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for IsolatedDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatedDatabase")
            .field("name", &self.name())
            .field("connection", &self.connection())
            .finish()
    }
}

impl IsolatedDatabase {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.lease
    }

    /// How to reach it from the host as root; prints with the password redacted.
    pub fn connection(&self) -> ConnectionInfo {
        self.inner
            .connection_for(self.name())
            .unwrap_or_else(|_| ConnectionInfo::new("mysql", self.inner.container.host(), 0))
    }

    /// `mysql://root:password@host:port/name`: hand it to a client, don't print it.
    pub fn url(&self) -> String {
        self.connection().url()
    }

    /// mysql_async options for the database.
    pub fn opts(&self) -> Result<Opts> {
        self.inner.opts_for(self.name())
    }

    /// A new connection to the database as root.
    pub async fn conn(&self) -> Result<Conn> {
        self.inner.conn_to(self.name()).await
    }

    /// The base tables of the database.
    pub async fn list_tables(&self) -> Result<Vec<String>> {
        crate::fixture::list_tables(&self.inner, self.name()).await
    }

    /// Drops the database now (ending its sessions) and waits for it to be gone.
    pub async fn release(self) -> Result<()> {
        self.lease.release().await
    }
}

/// Isolated databases straight from a shared fixture: `DB.isolated_database().await?`. The
/// guard keeps the shared fixture held (like [`Shared::get`]) until it is dropped.
pub trait SharedMariaDb {
    /// Starts the shared MariaDB if needed and checks out a database for one test.
    fn isolated_database(
        &self,
    ) -> impl std::future::Future<Output = Result<IsolatedDatabase>> + Send;
}

impl SharedMariaDb for Shared<MariaDb> {
    async fn isolated_database(&self) -> Result<IsolatedDatabase> {
        let guard = self.get().await?;
        let mut db = guard.isolated_database().await?;
        db.lease.hold_until_released(guard);
        Ok(db)
    }
}
