//! [`RedisFixture`]: a started Redis, its clients, inspection helpers and `clean()`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;
use seaworthy::{ConnectionInfo, Container, Fixture, Isolation};

use crate::baseline::{answer, first_error, is_unsettable, Baseline};
use crate::definition::{Redis, REDIS_PORT};
use crate::error::{Error, Result};
use crate::info::RedisInfo;
use crate::isolation::{scan_keys, IsolatedRedis, Pool};

/// A running Redis: the container, a connection, and the baseline [`clean`](Fixture::clean)
/// returns to.
///
/// Its clients' connection tasks run on Seaworthy's runtime, so one fixture serves tests that
/// each run on their own runtime (every `#[tokio::test]` does), for example from a
/// [`Shared`](seaworthy::Shared) static.
pub struct RedisFixture {
    definition: Redis,
    container: Container,
    info: ConnectionInfo,
    client: redis::Client,
    manager: ConnectionManager,
    baseline: Arc<Baseline>,
    pool: Arc<Pool>,
}

impl fmt::Debug for RedisFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFixture")
            .field("container", &self.container.name())
            .field("connection", &self.info)
            .field("version", &self.baseline.version)
            .finish()
    }
}

impl RedisFixture {
    /// Connects to the Redis in `container` and records (or reads) its baseline.
    pub(crate) async fn attach(definition: Redis, container: Container) -> Result<RedisFixture> {
        let name = container.name().to_string();
        let port = container.host_port(REDIS_PORT)?;
        let mut info = ConnectionInfo::new("redis", container.host(), port).with_path("0");
        if let Some(password) = definition.password() {
            info = info.with_credentials("default", Some(password.to_string()));
        }
        let client =
            redis::Client::open(info.url()).map_err(|e| Error::redis(&name, "open a client", e))?;
        let manager = connect(client.clone())
            .await
            .map_err(|e| Error::redis(&name, "connect", e))?;
        let baseline = Baseline::load_or_record(&container, &definition, &client, &manager).await?;
        let baseline = Arc::new(baseline);
        tracing::debug!(container = %name, version = %baseline.version, seed_keys = baseline.seed.len(), "attached to Redis");
        let pool = Arc::new(Pool::new(
            name,
            info.clone(),
            manager.clone(),
            baseline.databases(),
            &baseline.seeded_databases(),
        ));
        let fixture = RedisFixture {
            definition,
            container,
            info,
            client,
            manager,
            baseline,
            pool,
        };
        if fixture.definition.from_cache {
            // What the cached RDB file does not hold (configuration and users the init steps
            // set, the seed's time to live as it was recorded) is put back before hand-out.
            fixture.reset().await?;
        }
        Ok(fixture)
    }

    /// The definition this fixture was started from.
    pub fn definition(&self) -> &Redis {
        &self.definition
    }

    /// A client for this server (database 0), to open connections of your own.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The fixture's connection to database 0: shared (clone it freely), reconnecting after a
    /// dropped connection. Its connection task runs on Seaworthy's runtime.
    pub fn connection_manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// A new connection to database `db`, its task on Seaworthy's runtime.
    pub async fn connection_manager_for(&self, db: u32) -> Result<ConnectionManager> {
        let client = redis::Client::open(self.info.clone().with_path(db.to_string()).url())
            .map_err(|e| self.error(format!("open a client for database {db}"), e))?;
        connect(client)
            .await
            .map_err(|e| self.error(format!("connect to database {db}"), e))
    }

    /// The keys of database `db` matching `pattern` (glob-style: `*`, `user:*`), sorted. Uses
    /// `SCAN`, which does not block the server as `KEYS` does.
    pub async fn keys(&self, pattern: &str, db: u32) -> Result<Vec<String>> {
        let manager = if db == 0 {
            self.manager.clone()
        } else {
            self.connection_manager_for(db).await?
        };
        scan_keys(manager, pattern.to_string())
            .await
            .map_err(|e| self.error(format!("SCAN database {db} for {pattern:?}"), e))
    }

    /// The server's `INFO` (the default sections: server, clients, memory, stats, keyspace...).
    pub async fn info(&self) -> Result<RedisInfo> {
        let text: String = self.query("INFO", redis::cmd("INFO")).await?;
        Ok(RedisInfo::parse(&text))
    }

    /// One section of `INFO` (`server`, `keyspace`, `commandstats`, `everything`...).
    pub async fn info_section(&self, section: &str) -> Result<RedisInfo> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg(section);
        let text: String = self.query(&format!("INFO {section}"), cmd).await?;
        Ok(RedisInfo::parse(&text))
    }

    /// The configuration parameters matching `pattern` (`CONFIG GET`; `*` for all).
    pub async fn config(&self, pattern: &str) -> Result<BTreeMap<String, String>> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg(pattern);
        self.query(&format!("CONFIG GET {pattern}"), cmd).await
    }

    /// The configuration [`clean`](Fixture::clean) restores (`CONFIG GET *` when the container
    /// was first attached).
    pub fn baseline_config(&self) -> &BTreeMap<String, String> {
        &self.baseline.config
    }

    /// The server version (`7.0.15`).
    pub fn version(&self) -> &str {
        &self.baseline.version
    }

    /// The number of databases; isolation hands out all but database 0.
    pub fn databases(&self) -> u32 {
        self.baseline.databases()
    }

    /// How many databases isolation could hand out right now.
    pub fn free_isolated_databases(&self) -> usize {
        self.pool.free_count()
    }

    /// Sends `cmd` on the fixture's connection, from Seaworthy's runtime.
    async fn query<T>(&self, action: &str, cmd: redis::Cmd) -> Result<T>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        let mut conn = self.manager.clone();
        seaworthy::runtime::run(async move { cmd.query_async::<T>(&mut conn).await })
            .await
            .map_err(|e| self.error(action, e))
    }

    fn error(&self, action: impl Into<String>, e: redis::RedisError) -> Error {
        Error::redis(self.container.name(), action, e)
    }

    /// Restores the baseline in two round trips (see [`Fixture::clean`] on this type).
    async fn reset(&self) -> Result<()> {
        let baseline = self.baseline.clone();
        let mut conn = self.manager.clone();
        let container = self.container.name().to_string();
        seaworthy::runtime::run(async move {
            let b = &baseline;
            // One round trip: unblock, drop subscribers, empty, forget scripts and functions,
            // and read what the configuration and the users are now.
            let mut steps: Vec<&str> = Vec::new();
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            if b.has_client_unpause() {
                pipe.cmd("CLIENT").arg("UNPAUSE");
                steps.push("CLIENT UNPAUSE");
            }
            pipe.cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub");
            steps.push("CLIENT KILL TYPE pubsub");
            pipe.cmd("FLUSHALL");
            steps.push("FLUSHALL");
            pipe.cmd("SCRIPT").arg("FLUSH");
            steps.push("SCRIPT FLUSH");
            if b.has_functions() {
                pipe.cmd("FUNCTION").arg("FLUSH");
                steps.push("FUNCTION FLUSH");
            }
            if let Some(functions) = &b.functions {
                pipe.cmd("FUNCTION").arg("RESTORE").arg(functions.as_slice());
                steps.push("FUNCTION RESTORE (the baseline's functions)");
            }
            // The seed, in the same round trip: RESTORE of every key, database by database,
            // back on database 0 at the end (the connection is shared).
            let seed_steps = steps.len();
            let mut db = 0;
            for key in &b.seed {
                if key.db != db {
                    pipe.cmd("SELECT").arg(key.db);
                    steps.push("SELECT");
                    db = key.db;
                }
                pipe.cmd("RESTORE").arg(key.key.as_slice()).arg(key.ttl_ms).arg(key.payload.as_slice());
                steps.push("RESTORE");
            }
            if db != 0 {
                pipe.cmd("SELECT").arg(0);
                steps.push("SELECT");
            }
            pipe.cmd("CONFIG").arg("GET").arg("*");
            steps.push("CONFIG GET *");
            if b.has_acl() {
                pipe.cmd("ACL").arg("LIST");
                steps.push("ACL LIST");
            }
            let mut answers: Vec<Value> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| {
                    let mut action = steps[..seed_steps].join(", ");
                    if !b.seed.is_empty() {
                        action.push_str(&format!(", RESTORE of {} seed keys", b.seed.len()));
                    }
                    Error::redis(&container, action, e)
                })?;
            if let Some((i, e)) = first_error(&answers) {
                let step = steps.get(i).copied().unwrap_or("clean");
                let action = if i >= seed_steps && step == "RESTORE" {
                    let key = b.seed.get(restore_index(&steps[seed_steps..i]));
                    let key = key.map(|k| format!("RESTORE of the seed key {:?} (db {})", String::from_utf8_lossy(&k.key), k.db));
                    key.unwrap_or_else(|| step.to_string())
                } else {
                    step.to_string()
                };
                return Err(Error::redis(&container, action, e));
            }
            let acl: Vec<String> = if b.has_acl() {
                let list = answers.pop().unwrap_or(Value::Nil);
                answer(list).map_err(|e| Error::redis(&container, "read ACL LIST", e))?
            } else {
                Vec::new()
            };
            let config: BTreeMap<String, String> = answer(answers.pop().unwrap_or(Value::Nil))
                .map_err(|e| Error::redis(&container, "read CONFIG GET *", e))?;

            // The second round trip, only when the test changed configuration or users.
            let config_changes = b.config_changes(&config);
            let acl_changes = if b.has_acl() { b.acl_changes(&acl) } else { Vec::new() };
            if config_changes.is_empty() && acl_changes.is_empty() {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for (key, value) in &config_changes {
                pipe.cmd("CONFIG").arg("SET").arg(key).arg(value);
            }
            for cmd in &acl_changes {
                pipe.add_command(cmd.clone());
            }
            let answers: Vec<Value> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| Error::redis(&container, "restore the configuration and users", e))?;
            for (i, value) in answers.into_iter().enumerate() {
                let Value::ServerError(e) = value else {
                    continue;
                };
                let e: redis::RedisError = e.into();
                match config_changes.get(i) {
                    Some((key, _)) if is_unsettable(&e) => {
                        tracing::debug!(container = %container, key, "configuration parameter cannot be set at run time; left as is");
                    }
                    Some((key, value)) => {
                        return Err(Error::redis(&container, format!("restore configuration {key} = {value:?}"), e));
                    }
                    None => return Err(Error::redis(&container, "restore the baseline users (ACL SETUSER/DELUSER)", e)),
                }
            }
            Ok(())
        })
        .await
    }
}

/// Which seed key a `RESTORE` is: the number of `RESTORE`s before it.
fn restore_index(steps_before: &[&str]) -> usize {
    steps_before.iter().filter(|s| **s == "RESTORE").count()
}

/// A connection manager whose connection task lives on Seaworthy's runtime.
async fn connect(client: redis::Client) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(30)))
        .set_number_of_retries(3);
    seaworthy::runtime::run(async move { ConnectionManager::new_with_config(client, config).await })
        .await
}

impl Fixture for RedisFixture {
    type Error = crate::Error;

    fn kind(&self) -> &str {
        "redis"
    }

    fn container(&self) -> &Container {
        &self.container
    }

    /// Returns the server to its baseline in two round trips (one when the test changed no
    /// configuration and no user): `CLIENT UNPAUSE` (lifts a `CLIENT PAUSE ... WRITE`; a pause of
    /// all commands holds every client, this one too, until it ends), `CLIENT KILL TYPE pubsub` (subscribers are
    /// disconnected), `FLUSHALL` (every key of every database), `SCRIPT FLUSH`, `FUNCTION FLUSH`
    /// (Redis 7); when the definition has init steps, `FUNCTION RESTORE` of the functions they
    /// loaded and `RESTORE` of every key they left (its value, type and the time to live it had
    /// left when the baseline was recorded), pipelined in the same round trip; then `CONFIG SET` of every parameter that differs from the baseline (those that
    /// cannot be set at run time cannot have changed either) and `ACL DELUSER` / `ACL SETUSER` for
    /// the users the test created, changed or deleted.
    ///
    /// It empties the databases handed out by [`Isolation::isolate`] too: call it from a test that
    /// has the fixture alone ([`Shared::exclusive`](seaworthy::Shared::exclusive)).
    async fn clean(&self) -> Result<()> {
        let started = std::time::Instant::now();
        self.reset().await?;
        tracing::debug!(container = self.container.name(), elapsed = ?started.elapsed(), "redis clean");
        Ok(())
    }

    /// `redis://host:port/0`, with the `default` user and the password when one is set.
    fn connection(&self) -> ConnectionInfo {
        self.info.clone()
    }
}

impl Isolation for RedisFixture {
    type Isolated = IsolatedRedis;

    /// A database of its own for one test (see the [`isolation`](crate::isolation) module).
    async fn isolate(&self) -> Result<IsolatedRedis> {
        self.pool.checkout().await
    }
}
