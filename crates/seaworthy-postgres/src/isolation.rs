//! Isolation: a database per test, cloned from the baseline template, in one shared container.
//!
//! Cloning a database takes tens of milliseconds, so clones are made ahead of time: a pool of
//! databases named `<db>_pool_<id>` is kept at the definition's pool size by a background task
//! (one at a time per container, across processes, under an advisory lock). A checkout renames
//! a pool database to the test's own name in one round trip (a rename is atomic: two processes
//! never get the same one), and falls back to cloning on the spot when the pool is empty.
//!
//! Names: `<db>_iso_s<slot>_<id>` under nextest (keyed by `NEXTEST_TEST_GLOBAL_SLOT`: a test
//! process that ended before its database was dropped leaves it to the next test of the same
//! slot, which drops it), else `<db>_iso_<pid>_<n>`. Dropping the guard drops the database in the
//! background; with `SEAWORTHY_KEEP_ON_FAILURE=1`, a guard dropped by a failing (panicking) test
//! keeps its database, and says where it is.
//!
//! What is isolated and what is not: see [`IsolatedDatabase`] (this module is private; the
//! public docs are there).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use seaworthy::kit::{Lease, NamespacePool};
use seaworthy::{ConnectionInfo, Shared};
use tokio_postgres::Client;

use crate::baseline::{self, ident, literal};
use crate::definition::Postgres;
use crate::error::{Error, Result};
use crate::fixture::{Inner, Slot};
use crate::inspect::{self, Extension, Table};

const CHECKOUT_FUNCTION: &str = "
CREATE OR REPLACE FUNCTION pg_temp.seaworthy_checkout(prefix text, target text) RETURNS boolean
LANGUAGE plpgsql AS $seaworthy$
DECLARE
  candidate text;
BEGIN
  FOR candidate IN SELECT datname FROM pg_database WHERE starts_with(datname, prefix) ORDER BY oid LOOP
    BEGIN
      EXECUTE format('ALTER DATABASE %I RENAME TO %I', candidate, target);
      RETURN true;
    EXCEPTION WHEN OTHERS THEN
      -- Taken by another session meanwhile: try the next one.
      NULL;
    END;
  END LOOP;
  RETURN false;
END
$seaworthy$";

/// The per-process side of the pool: the fixture's own connections and what this process
/// checked out.
pub(crate) struct Pool {
    /// Connected to `postgres`; renames pool databases (and clones when the pool is empty).
    checkout: Slot,
    /// Connected to `postgres`; refills the pool and drops released databases.
    background: Slot,
    /// Databases this process has checked out and not released.
    live: Mutex<HashSet<String>>,
}

impl Pool {
    pub(crate) fn new() -> Pool {
        Pool {
            checkout: Slot::new("postgres", Some(CHECKOUT_FUNCTION.to_string())),
            background: Slot::new("postgres", None),
            live: Mutex::new(HashSet::new()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `NEXTEST_TEST_GLOBAL_SLOT`, when running under nextest.
fn nextest_slot() -> Option<u32> {
    std::env::var("NEXTEST_TEST_GLOBAL_SLOT").ok()?.parse().ok()
}

/// The fixture's isolated databases, in the kit's pool: each serves one test (a released one is
/// dropped); a checkout takes one of the databases cloned ahead of time (kept in the server, so
/// every process of the run shares them) or clones one on the spot, and the pool is topped up
/// in the background.
pub(crate) fn databases(inner: &Arc<Inner>) -> NamespacePool<String, Error> {
    let refill = (inner.def.pool_size > 0)
        .then_some(|inner: Arc<Inner>| async move { refill(&inner).await });
    NamespacePool::for_server(
        "postgres database",
        inner.clone(),
        |inner, name: String| async move { release(&inner, &name).await },
        |inner, n| async move { take(&inner, n).await },
        |inner, name: String| async move {
            inner.pool.live().remove(&name);
            if let Ok(connection) = inner.connection_for(&name) {
                eprintln!("seaworthy: the kept database {name} is at {connection}");
            }
            Ok(())
        },
        refill,
    )
}

/// Takes a database for one test (the `n`th of this process): renames a pool database to the
/// test's own name in one round trip, else clones the baseline on the spot.
async fn take(inner: &Arc<Inner>, n: u64) -> Result<String> {
    let names = &inner.names;
    let slot = nextest_slot();
    let name = match slot {
        Some(slot) => format!("{}s{slot}_{:04x}", names.iso_prefix, rand::random::<u16>()),
        None => format!("{}{}_{n}", names.iso_prefix, std::process::id()),
    };
    let client = inner.pool.checkout.get(inner).await?;
    let taken = if inner.def.pool_size > 0 {
        let sql = format!(
            "SELECT pg_temp.seaworthy_checkout({}, {})",
            literal(&names.pool_prefix),
            literal(&name)
        );
        baseline::single_text(&client, &sql).await.map_err(|e| {
            Error::query(
                &inner.label,
                format!("check out database {name} from the pool"),
                e,
            )
        })? == "t"
    } else {
        false
    };
    if !taken {
        tracing::debug!(fixture = %inner.label, database = %name, "pool empty; cloning the baseline on the spot");
        baseline::create_database_from(&client, &name, &names.template, names, &inner.label)
            .await?;
    }
    inner.pool.live().insert(name.clone());
    if let Some(slot) = slot {
        reclaim_slot_in_background(inner, slot);
    }
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

/// Clones the baseline until the pool holds `pool_size` databases; only one process at a time
/// (the others return at once).
async fn refill(inner: &Inner) -> Result<()> {
    let names = &inner.names;
    let client = inner.pool.background.get(inner).await?;
    let key = format!("seaworthy-pool:{}", names.database);
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])
        .await
        .map_err(|e| Error::query(&inner.label, "take the pool lock", e))?
        .get(0);
    if !locked {
        return Ok(());
    }
    let result = async {
        loop {
            let count: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)",
                    &[&names.pool_prefix],
                )
                .await
                .map_err(|e| Error::query(&inner.label, "count the pool's databases", e))?
                .get(0);
            if count >= inner.def.pool_size as i64 {
                return Ok(());
            }
            let name = format!("{}{:08x}", names.pool_prefix, rand::random::<u32>());
            baseline::create_database_from(&client, &name, &names.template, names, &inner.label)
                .await?;
        }
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&key])
        .await;
    result
}

/// Under nextest: drops the databases an earlier test of this slot left behind.
fn reclaim_slot_in_background(inner: &Arc<Inner>, slot: u32) {
    let inner = inner.clone();
    seaworthy::runtime::spawn(async move {
        let prefix = format!("{}s{slot}_", inner.names.iso_prefix);
        let result = async {
            let client = inner.pool.background.get(&inner).await?;
            let found: Vec<String> = client
                .query("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)", &[&prefix])
                .await
                .map_err(|e| Error::query(&inner.label, "list the databases of this test slot", e))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for name in found {
                if !inner.pool.live().contains(&name) {
                    tracing::debug!(database = %name, "dropping a database left by an earlier test of this slot");
                    drop_database(&inner, &client, &name).await?;
                }
            }
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "reclaiming the databases of an earlier test failed");
        }
    });
}

async fn drop_database(inner: &Inner, client: &Client, name: &str) -> Result<()> {
    baseline::close_sessions(client, name, &inner.label).await?;
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            ident(name)
        ))
        .await
        .map_err(|e| Error::query(&inner.label, format!("drop isolated database {name}"), e))
}

async fn release(inner: &Inner, name: &str) -> Result<()> {
    let client = inner.pool.background.get(inner).await?;
    let result = drop_database(inner, &client, name).await;
    inner.pool.live().remove(name);
    result
}

/// A database of one test's own, cloned from the baseline of a shared PostgreSQL: tests running
/// in parallel each get one, and never see each other's rows or objects. Dropping the guard drops
/// the database, in the background.
///
/// # What is isolated, and what is not
///
/// Everything that lives in a database is the test's own: schemas, tables and rows, sequences,
/// types, functions, triggers, extensions, grants on its objects, `LISTEN`/`NOTIFY` channels,
/// advisory locks and `ALTER DATABASE ... SET` settings of its database.
///
/// What lives in the **cluster** is shared by every isolated database of the container at once:
///
/// * Roles (`CREATE ROLE`, `ALTER ROLE`, `GRANT role TO role`), their passwords, attributes,
///   memberships and `ALTER ROLE ... SET` settings: two tests creating a role of the same name
///   collide, and a change to the fixture's superuser reaches every test. Give roles names of
///   the test's own, or hold the fixture alone.
/// * Databases a test creates, and settings of roles for all databases.
/// * The server: `ALTER SYSTEM` and its configuration, tablespaces, replication slots,
///   connection limits (`max_connections`), statistics (`pg_stat_*`).
///
/// Dropping the guard drops the database only: a role the test created stays. A test that
/// changes cluster-wide state should not isolate: it takes the fixture alone with
/// [`Shared::fresh`] (a `&PostgresFixture` parameter of `#[seaworthy::test]`), and the next
/// hand-out's [`clean`](seaworthy::Fixture::clean) resets the rest: roles created after the baseline are dropped and the baseline roles'
/// attributes, passwords, memberships and settings restored, databases created after the
/// baseline dropped (isolated databases are left alone). A role that still owns objects in an
/// isolated database cannot be dropped: clean() then fails and says so. The server's own
/// state (`ALTER SYSTEM`, tablespaces, replication slots) is not restored by clean(): a test
/// that changes it starts a fixture of its own.
///
/// ```no_run
/// use seaworthy::Shared;
/// use seaworthy_postgres::{Postgres, SharedPostgres};
///
/// fn postgres() -> Postgres {
///     Postgres::default().with_init_sql("CREATE TABLE users (id serial PRIMARY KEY, name text)")
/// }
/// static PG: Shared<Postgres> = Shared::per_process(postgres);
///
/// #[tokio::test]
/// async fn inserts_a_user() -> anyhow::Result<()> {
///     let db = PG.isolated_database().await?; // a few milliseconds: pre-cloned
///     let client = db.client().await?;
///     client.execute("INSERT INTO users (name) VALUES ('ada')", &[]).await?;
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

    /// How to reach it from the host; prints with the password redacted.
    pub fn connection(&self) -> ConnectionInfo {
        self.inner
            .connection_for(self.name())
            .unwrap_or_else(|_| ConnectionInfo::new("postgres", self.inner.container.host(), 0))
    }

    /// `postgres://user:password@host:port/name`: hand it to a client, don't print it.
    pub fn url(&self) -> String {
        self.connection().url()
    }

    /// A tokio-postgres configuration for the database.
    pub fn config(&self) -> Result<tokio_postgres::Config> {
        self.inner.config_for(self.name())
    }

    /// A new client connected to the database as the superuser (its connection task runs on
    /// Seaworthy's runtime).
    pub async fn client(&self) -> Result<Client> {
        self.inner.client_for(self.name()).await
    }

    /// The schemas of the database, without the system's.
    pub async fn list_schemas(&self) -> Result<Vec<String>> {
        let client = self.client().await?;
        inspect::schemas(&client).await.map_err(|e| {
            Error::query(
                &self.inner.label,
                format!("list the schemas of {}", self.name()),
                e,
            )
        })
    }

    /// The tables of the database, without the system's.
    pub async fn list_tables(&self) -> Result<Vec<Table>> {
        let client = self.client().await?;
        inspect::tables(&client).await.map_err(|e| {
            Error::query(
                &self.inner.label,
                format!("list the tables of {}", self.name()),
                e,
            )
        })
    }

    /// The extensions installed in the database.
    pub async fn list_extensions(&self) -> Result<Vec<Extension>> {
        let client = self.client().await?;
        inspect::extensions(&client).await.map_err(|e| {
            Error::query(
                &self.inner.label,
                format!("list the extensions of {}", self.name()),
                e,
            )
        })
    }

    /// Drops the database now (closing its sessions) and waits for it to be gone.
    pub async fn release(self) -> Result<()> {
        self.lease.release().await
    }
}

/// Isolated databases straight from a shared fixture: `PG.isolated_database().await?`. The
/// guard keeps the shared fixture held (like [`Shared::get`]) until it is dropped.
pub trait SharedPostgres {
    /// Starts the shared PostgreSQL if needed and checks out a database for one test.
    fn isolated_database(
        &self,
    ) -> impl std::future::Future<Output = Result<IsolatedDatabase>> + Send;
}

impl SharedPostgres for Shared<Postgres> {
    async fn isolated_database(&self) -> Result<IsolatedDatabase> {
        let guard = self.get().await?;
        let mut db = guard.isolated_database().await?;
        db.lease.hold_until_released(guard);
        Ok(db)
    }
}
