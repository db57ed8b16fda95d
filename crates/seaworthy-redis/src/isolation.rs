//! Per-test isolation: a database index per test, handed out from a pool (the kit's
//! [`NamespacePool`]: release on drop on Seaworthy's runtime, keep-on-failure).
//!
//! Database 0 is left to tests that use the whole fixture; databases 1 to N-1 (N is `databases`,
//! 16 by default) are handed out, one per [`IsolatedRedis`] guard. A guard's database is empty
//! when it is handed out, and flushed when the guard drops, before it goes back to the pool.
//! Databases the definition's init steps put keys in hold baseline keys and are not handed out.
//!
//! * In one process, when every database is taken, [`isolate`](seaworthy::Isolation::isolate)
//!   **waits** (up to 10 minutes) for a guard to drop: a database is a complete namespace (`FLUSHDB`, `KEYS *` and
//!   `DBSIZE` stay inside it), which a key prefix is not, so tests never silently get less
//!   isolation than they asked for. Hold one guard per test and at most 15 tests wait on nothing.
//! * Under cargo-nextest (each test in a process of its own, several processes sharing one
//!   container through [`Shared::per_run`](seaworthy::Shared::per_run)), a test takes the
//!   database `1 + NEXTEST_TEST_GLOBAL_SLOT`, which no other running test has. When the slot is
//!   beyond the last database (more than N-1 tests running at once), or this process already
//!   holds that database, the guard gets a **key prefix** in database 0 instead
//!   (`sw:slot3:0:`, see [`IsolatedRedis::prefix`] and [`IsolatedRedis::key`]), whose keys are
//!   deleted when it drops.
//! * Without nextest, processes that share a container through
//!   [`Shared::per_run`](seaworthy::Shared::per_run) (under `cargo test`, test binaries run one
//!   after another) each hand out databases from a pool of their own; a database is flushed
//!   whenever a process first hands it out, so keys an earlier process left do not show.
//! * With `SEAWORTHY_KEEP_ON_FAILURE=1`, a guard dropped by a failing (panicking) test keeps its
//!   database (or prefix) as the test left it, out of use by later tests, and says where it is.
//!
//! # What is isolated, and what is not
//!
//! A database isolates **keys** only: what a test writes, reads, scans, counts (`DBSIZE`) or
//! flushes (`FLUSHDB`) on its own connection stays in its database, and keyspace notifications
//! name it. A prefix namespace isolates less: only keys carrying the prefix, and `KEYS *`,
//! `DBSIZE` and `FLUSHDB` see (and empty) all of database 0.
//!
//! Everything else is **server-wide**, shared by every namespace of the container at once:
//!
//! * Lua scripts (`SCRIPT LOAD`, `EVALSHA`'s cache, `SCRIPT FLUSH`) and functions (`FUNCTION
//!   LOAD`, `FCALL`, `FUNCTION FLUSH`): two tests loading a library of the same name collide.
//! * Pub/sub: channels are not per database, so a message published by one test reaches the
//!   subscribers of another on the same channel name. Give channels names of the test's own.
//! * `CONFIG SET`, `ACL SETUSER`/`DELUSER`, `CLIENT PAUSE`, `CLIENT KILL`, `SWAPDB`,
//!   `FLUSHALL`, `SELECT` of another database, `MOVE`/`COPY ... DB`: they reach every other test.
//! * Statistics (`INFO`), memory and eviction limits, the slow log, `CLIENT LIST`.
//!
//! Dropping a guard only empties its namespace (`FLUSHDB`, or deleting the prefixed keys). A test
//! that changes server-wide state should not isolate: it takes the fixture alone with
//! [`Shared::fresh`](seaworthy::Shared::fresh) (a `&RedisFixture` parameter of
//! `#[seaworthy::test]`), and the next hand-out's [`clean`](seaworthy::Fixture::clean) resets
//! the rest: every database, scripts, functions, pub/sub clients, configuration and users. Take
//! namespaces with [`Shared::isolated`](seaworthy::Shared::isolated): its guard keeps the server
//! held, so no such test cleans under an isolated one.

use std::fmt;
use std::sync::Arc;

use redis::aio::ConnectionManager;
use seaworthy::kit::{Lease, NamespacePool};
use seaworthy::ConnectionInfo;

use crate::error::{Error, Result};

/// A database handed out to tests, with the connection that last used it (already flushed).
struct Database {
    db: u32,
    manager: Option<ConnectionManager>,
    info: ConnectionInfo,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.db, self.info)
    }
}

/// The databases a fixture hands out, and the key prefixes in database 0 (under nextest, past
/// the last database), both in the kit's pools.
pub(crate) struct Pool {
    pub(crate) container: String,
    pub(crate) info: ConnectionInfo,
    /// The fixture's own connection (database 0), for prefix namespaces.
    pub(crate) default_manager: ConnectionManager,
    /// Databases 1 to N-1: flushed when given back, the connection kept with them.
    databases: NamespacePool<Database, Error>,
    /// `sw:slot<N>:<n>:`: made for one test, their keys deleted when given back.
    prefixes: NamespacePool<String, Error>,
}

impl Pool {
    pub(crate) fn new(
        container: String,
        info: ConnectionInfo,
        default_manager: ConnectionManager,
        databases: u32,
        seeded: &std::collections::BTreeSet<u32>,
    ) -> Pool {
        let pool = NamespacePool::new("Redis database", flushed);
        // A database the init steps filled holds baseline keys: never handed out (and flushed).
        for db in (1..databases).filter(|db| !seeded.contains(db)) {
            pool.add(Database {
                db,
                manager: None,
                info: info.clone().with_path(db.to_string()),
            });
        }
        let delete = {
            let (manager, container) = (default_manager.clone(), container.clone());
            move |prefix: String| {
                let (manager, container) = (manager.clone(), container.clone());
                async move {
                    delete_prefixed(manager, prefix.clone())
                        .await
                        .map_err(|e| {
                            Error::redis(
                                &container,
                                format!("delete the keys under prefix {prefix}"),
                                e,
                            )
                        })?;
                    Ok(prefix)
                }
            }
        };
        let base = format!("sw:slot{}:", nextest_slot().unwrap_or_default());
        let leftovers = delete.clone();
        let prefixes = NamespacePool::single_use("Redis key prefix in database 0", move |prefix| {
            let deleted = delete(prefix);
            async move { deleted.await.map(drop) }
        })
        // Numbered, so that no prefix handed out by this process starts with another; keys a
        // test that ran in the same slot before left under it are deleted first.
        .with_make(move |n| leftovers(format!("{base}{n}:")));
        Pool {
            container,
            info,
            default_manager,
            databases: pool,
            prefixes,
        }
    }

    /// Checks out a namespace: the slot's database under nextest (a key prefix when that is
    /// taken or beyond the last database), else any free database (waiting for one if none is
    /// free).
    pub(crate) async fn checkout(self: &Arc<Self>) -> Result<IsolatedRedis> {
        if let Some(slot) = nextest_slot() {
            let wanted = u32::try_from(slot).ok().and_then(|s| s.checked_add(1));
            let taken = wanted.and_then(|db| self.databases.take_free(|d| d.db == db));
            return match taken {
                Some(lease) => self.hand_out(lease).await,
                None => self.prefixed().await,
            };
        }
        let lease = self.databases.checkout().await?;
        self.hand_out(lease).await
    }

    /// A guard for a database: a connection is opened (and the database flushed, in case a
    /// test of another process left keys there) unless one is kept from the last test.
    async fn hand_out(
        self: &Arc<Self>,
        mut lease: Lease<Database, Error>,
    ) -> Result<IsolatedRedis> {
        let manager = match &lease.manager {
            Some(manager) => manager.clone(),
            // A failure gives the database back as it was (the lease drops).
            None => {
                let manager = self.connect(lease.db).await?;
                lease.manager = Some(manager.clone());
                manager
            }
        };
        Ok(IsolatedRedis {
            pool: self.clone(),
            db: lease.db,
            prefix: String::new(),
            manager,
            info: lease.info.clone(),
            _namespace: Namespace::Database(lease),
        })
    }

    async fn connect(&self, db: u32) -> Result<ConnectionManager> {
        let client = redis::Client::open(self.info.clone().with_path(db.to_string()).url())
            .map_err(|e| {
                Error::redis(
                    &self.container,
                    format!("open a client for database {db}"),
                    e,
                )
            })?;
        seaworthy::runtime::run(async move {
            let mut manager = ConnectionManager::new(client).await?;
            redis::cmd("FLUSHDB")
                .query_async::<()>(&mut manager)
                .await?;
            Ok(manager)
        })
        .await
        .map_err(|e| {
            Error::redis(
                &self.container,
                format!("connect to database {db} and flush it"),
                e,
            )
        })
    }

    async fn prefixed(self: &Arc<Self>) -> Result<IsolatedRedis> {
        let lease = self.prefixes.checkout().await?;
        Ok(IsolatedRedis {
            pool: self.clone(),
            db: 0,
            info: self.info.clone().with_path("0"),
            prefix: lease.clone(),
            manager: self.default_manager.clone(),
            _namespace: Namespace::Prefix(lease),
        })
    }

    /// How many databases are free now.
    pub(crate) fn free_count(&self) -> usize {
        self.databases.free_count()
    }
}

/// A released database, flushed (on Seaworthy's runtime: the test's may be ending) and ready
/// for the next test. A flush that fails drops the connection: the next checkout connects
/// afresh and flushes.
async fn flushed(mut database: Database) -> Result<Database> {
    if let Some(manager) = database.manager.take() {
        let mut conn = manager.clone();
        match redis::cmd("FLUSHDB").query_async::<()>(&mut conn).await {
            Ok(()) => database.manager = Some(manager),
            Err(e) => {
                tracing::warn!(db = database.db, error = %e, "could not flush an isolated Redis database")
            }
        }
    }
    Ok(database)
}

/// What a guard holds of the pools: dropping it empties the namespace and gives it back (kept
/// as it is after a failed test, with `SEAWORTHY_KEEP_ON_FAILURE=1`).
enum Namespace {
    Database(#[allow(dead_code)] Lease<Database, Error>),
    Prefix(#[allow(dead_code)] Lease<String, Error>),
}

/// A private namespace in a shared Redis for one test: a database of its own (or, past the last
/// database under nextest, a key prefix; see the [module docs](crate::isolation)). Dropping the
/// guard empties the namespace and returns it to the pool.
///
/// ```no_run
/// use redis::AsyncCommands;
/// use seaworthy::Shared;
/// use seaworthy_redis::Redis;
///
/// static REDIS: Shared<Redis> = Shared::per_process(Redis::new);
///
/// #[tokio::test]
/// async fn counts_visits() -> anyhow::Result<()> {
///     // The guard keeps the server held: no test flushes the whole server while it lives.
///     let redis = REDIS.isolated().await?;
///     let mut conn = redis.connection_manager();
///     let _: () = conn.set(redis.key("visits"), 1).await?;
///     Ok(())
/// }
/// ```
pub struct IsolatedRedis {
    pool: Arc<Pool>,
    db: u32,
    prefix: String,
    manager: ConnectionManager,
    info: ConnectionInfo,
    /// Dropped after the fields above: the namespace goes back to its pool.
    _namespace: Namespace,
}

impl fmt::Debug for IsolatedRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IsolatedRedis")
            .field("container", &self.pool.container)
            .field("db", &self.db)
            .field("prefix", &self.prefix)
            .field("connection", &self.info)
            .finish()
    }
}

impl IsolatedRedis {
    /// The database index this test uses.
    pub fn db(&self) -> u32 {
        self.db
    }

    /// The prefix this test's keys must carry: empty when the test has a database of its own.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the namespace is a whole database (`FLUSHDB`, `KEYS *` and `DBSIZE` stay inside it).
    pub fn has_own_database(&self) -> bool {
        self.prefix.is_empty()
    }

    /// `name` inside this test's namespace (`name` itself when the test has its own database).
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// How to connect to this test's database (`redis://host:port/DB`).
    pub fn connection_info(&self) -> ConnectionInfo {
        self.info.clone()
    }

    /// A connection to this test's database, shared (cheap to clone) and reconnecting.
    pub fn connection_manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// The keys of this namespace matching `pattern` (glob-style, `*` for all), sorted.
    pub async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let pattern = format!("{}{pattern}", escape_glob(&self.prefix));
        scan_keys(self.manager.clone(), pattern).await.map_err(|e| {
            Error::redis(
                &self.pool.container,
                format!("SCAN database {}", self.db),
                e,
            )
        })
    }
}

/// `NEXTEST_TEST_GLOBAL_SLOT`, when running under cargo-nextest.
fn nextest_slot() -> Option<u64> {
    std::env::var("NEXTEST_TEST_GLOBAL_SLOT").ok()?.parse().ok()
}

/// Every key matching `pattern`, by `SCAN` (which, unlike `KEYS`, does not block the server), sorted.
pub(crate) async fn scan_keys(
    manager: ConnectionManager,
    pattern: String,
) -> redis::RedisResult<Vec<String>> {
    seaworthy::runtime::run(async move {
        let mut conn = manager;
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    })
    .await
}

/// Deletes every key under `prefix` (`UNLINK`, in batches).
async fn delete_prefixed(manager: ConnectionManager, prefix: String) -> redis::RedisResult<()> {
    let keys = scan_keys(manager.clone(), format!("{}*", escape_glob(&prefix))).await?;
    if keys.is_empty() {
        return Ok(());
    }
    seaworthy::runtime::run(async move {
        let mut conn = manager;
        for batch in keys.chunks(1000) {
            redis::cmd("UNLINK")
                .arg(batch)
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok(())
    })
    .await
}

/// Escapes the glob characters of a literal prefix.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_of_prefixes_are_escaped() {
        assert_eq!(escape_glob("sw:slot3:"), "sw:slot3:");
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
