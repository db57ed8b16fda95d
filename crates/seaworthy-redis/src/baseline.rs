//! The baseline a Redis fixture returns to, and the commands that return to it.
//!
//! Recorded once per container, when a process first attaches to it, after the definition's init
//! steps: the server's version, its whole configuration (`CONFIG GET *`), its users (`ACL LIST`),
//! and what the init steps stored: every key (`DUMP`, with the time to live it had left) and the
//! functions (`FUNCTION DUMP`). It is kept in a file inside the
//! container, so a process attaching later to a container shared by the whole test run (whose
//! configuration a test may already have changed) restores the same baseline as the first.

use std::collections::{BTreeMap, BTreeSet};

use redis::aio::ConnectionManager;
use redis::{RedisResult, Value};
use seaworthy::Container;

use crate::definition::Redis;
use crate::error::{Error, Result};
use crate::info::RedisInfo;

/// Where the baseline is kept inside the container.
pub(crate) const BASELINE_PATH: &str = "/tmp/seaworthy-redis-baseline.json";

/// What `clean()` restores, besides emptying every database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Baseline {
    /// `redis_version`.
    pub(crate) version: String,
    /// `CONFIG GET *`.
    pub(crate) config: BTreeMap<String, String>,
    /// `ACL LIST` (empty before Redis 6, which has no ACLs).
    pub(crate) acl: Vec<String>,
    /// The keys the init steps left, restored by `clean()` after `FLUSHALL`.
    #[serde(default)]
    pub(crate) seed: Vec<SeedKey>,
    /// `FUNCTION DUMP` when the init steps loaded functions.
    #[serde(default, with = "hex_bytes_opt")]
    pub(crate) functions: Option<Vec<u8>>,
}

/// One key of the seed: where it is, its `DUMP` payload, and its time to live.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SeedKey {
    /// The database.
    pub(crate) db: u32,
    /// The key (binary safe).
    #[serde(with = "hex_bytes")]
    pub(crate) key: Vec<u8>,
    /// The time to live it had left when recorded, in milliseconds; 0 for none (`RESTORE`'s).
    pub(crate) ttl_ms: u64,
    /// Its `DUMP` payload.
    #[serde(with = "hex_bytes")]
    pub(crate) payload: Vec<u8>,
}

/// Binary data as a hex string in the baseline file.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn encode(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
        if !text.len().is_multiple_of(2) {
            return None;
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect()
    }

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).ok_or_else(|| serde::de::Error::custom("not a hex string"))
    }
}

/// An optional [`hex_bytes`] value.
mod hex_bytes_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => s.serialize_some(&super::hex_bytes::encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => super::hex_bytes::decode(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("not a hex string")),
            None => Ok(None),
        }
    }
}

impl Baseline {
    /// The number of databases (`databases`, 16 unless configured).
    pub(crate) fn databases(&self) -> u32 {
        self.config
            .get("databases")
            .and_then(|d| d.parse().ok())
            .unwrap_or(16)
    }

    /// `(major, minor)` of the server version.
    pub(crate) fn version(&self) -> (u32, u32) {
        let mut parts = self.version.split('.').map(|p| p.parse().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    pub(crate) fn has_acl(&self) -> bool {
        self.version() >= (6, 0)
    }

    pub(crate) fn has_functions(&self) -> bool {
        self.version() >= (7, 0)
    }

    pub(crate) fn has_client_unpause(&self) -> bool {
        self.version() >= (6, 2)
    }

    /// The databases that hold seed keys (isolation hands out the others).
    pub(crate) fn seeded_databases(&self) -> BTreeSet<u32> {
        self.seed.iter().map(|k| k.db).collect()
    }

    /// The container's baseline: the one kept in it, or built by the definition's init steps
    /// (unless the container starts from a cached image, which holds their result), recorded
    /// now and kept there (the kit's [`Baseline`](seaworthy::kit::Baseline), under the run's
    /// lock: the init steps run once per container).
    pub(crate) async fn load_or_record(
        container: &Container,
        definition: &Redis,
        client: &redis::Client,
        manager: &ConnectionManager,
    ) -> Result<Baseline> {
        let name = container.name();
        // Boxed: the init steps' future type stays out of the fixture's start future (whose
        // `Send` check would otherwise overflow the compiler's query depth).
        let record = move || -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Baseline>> + Send + '_>> {
            Box::pin(async move {
                if !definition.from_cache {
                    crate::init::run(definition, name, client, manager).await?;
                }
                Baseline::record(name, client, manager).await
            })
        };
        seaworthy::kit::Baseline::new(BASELINE_PATH)
            .load_or_record(container, record)
            .await
    }

    /// Reads version, configuration, users, keys and functions from the server.
    async fn record(
        container: &str,
        client: &redis::Client,
        manager: &ConnectionManager,
    ) -> Result<Baseline> {
        let mut conn = manager.clone();
        let (info, config, acl, keyspace): (String, BTreeMap<String, String>, Value, String) =
            seaworthy::runtime::run(async move {
                redis::pipe()
                    .ignore_errors()
                    .cmd("INFO")
                    .arg("server")
                    .cmd("CONFIG")
                    .arg("GET")
                    .arg("*")
                    .cmd("ACL")
                    .arg("LIST")
                    .cmd("INFO")
                    .arg("keyspace")
                    .query_async(&mut conn)
                    .await
            })
            .await
            .map_err(|e| {
                Error::redis(
                    container,
                    "record the baseline (INFO, CONFIG GET *, ACL LIST)",
                    e,
                )
            })?;
        let version = RedisInfo::parse(&info)
            .version()
            .map(str::to_string)
            .ok_or_else(|| Error::fixture(container, "INFO server has no redis_version"))?;
        // Before Redis 6 `ACL` is an unknown command: no users to restore.
        let acl = match acl {
            Value::ServerError(_) => Vec::new(),
            other => redis::from_redis_value(other)
                .map_err(|e| Error::redis(container, "read ACL LIST", e.into()))?,
        };
        let mut baseline = Baseline {
            version,
            config,
            acl,
            seed: Vec::new(),
            functions: None,
        };
        let dbs = keyspace_databases(&keyspace);
        if !dbs.is_empty() || baseline.has_functions() {
            let has_functions = baseline.has_functions();
            let client = client.clone();
            let (seed, functions) = seaworthy::runtime::run(async move {
                let mut conn = client.get_multiplexed_async_connection().await?;
                let seed = dump_keys(&mut conn, &dbs).await?;
                let functions = if has_functions {
                    dump_functions(&mut conn).await?
                } else {
                    None
                };
                Ok::<_, redis::RedisError>((seed, functions))
            })
            .await
            .map_err(|e| Error::redis(container, "record the seed (SCAN, DUMP, PTTL)", e))?;
            baseline.seed = seed;
            baseline.functions = functions;
        }
        Ok(baseline)
    }

    /// The commands that restore the configuration: one `CONFIG SET` per parameter whose value
    /// differs from the baseline (parameters the baseline lacks, such as a module's, are left).
    pub(crate) fn config_changes(
        &self,
        current: &BTreeMap<String, String>,
    ) -> Vec<(String, String)> {
        self.config
            .iter()
            .filter(|(k, v)| current.get(*k).is_some_and(|now| now != *v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The commands that restore the users: `ACL DELUSER` for users the baseline lacks, `ACL
    /// SETUSER name reset <rules>` for baseline users that changed or were deleted.
    pub(crate) fn acl_changes(&self, current: &[String]) -> Vec<redis::Cmd> {
        let now: BTreeSet<&str> = current.iter().map(String::as_str).collect();
        let baseline_users: BTreeSet<&str> = self.acl.iter().filter_map(|l| acl_user(l)).collect();
        let mut cmds = Vec::new();
        let extra: Vec<&str> = current
            .iter()
            .filter_map(|l| acl_user(l))
            .filter(|u| !baseline_users.contains(u))
            .collect();
        if !extra.is_empty() {
            let mut del = redis::cmd("ACL");
            del.arg("DELUSER").arg(extra);
            cmds.push(del);
        }
        for line in self.acl.iter().filter(|l| !now.contains(l.as_str())) {
            let tokens = acl_tokens(line);
            if let Some(user) = tokens.get(1) {
                let mut set = redis::cmd("ACL");
                set.arg("SETUSER").arg(user).arg("reset").arg(&tokens[2..]);
                cmds.push(set);
            }
        }
        cmds
    }
}

/// The databases `INFO keyspace` lists (those with keys): `db3:keys=1,expires=0,...`.
fn keyspace_databases(info: &str) -> Vec<u32> {
    info.lines()
        .filter_map(|line| line.strip_prefix("db")?.split_once(':')?.0.parse().ok())
        .collect()
}

/// Every key of `dbs`: `DUMP` and `PTTL` of each, pipelined per batch of `SCAN`. Leaves the
/// connection on database 0.
async fn dump_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    dbs: &[u32],
) -> RedisResult<Vec<SeedKey>> {
    let mut seed = Vec::new();
    for &db in dbs {
        redis::cmd("SELECT").arg(db).query_async::<()>(conn).await?;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(conn)
                .await?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("DUMP").arg(key).cmd("PTTL").arg(key);
                }
                let answers: Vec<(Option<Vec<u8>>, i64)> = {
                    let flat: Vec<Value> = pipe.query_async(conn).await?;
                    flat.chunks(2)
                        .map(|pair| {
                            Ok((
                                redis::from_redis_value(pair[0].clone())?,
                                redis::from_redis_value(pair[1].clone())?,
                            ))
                        })
                        .collect::<RedisResult<_>>()?
                };
                for (key, (payload, ttl)) in keys.into_iter().zip(answers) {
                    // A key that expired between SCAN and DUMP is not part of the seed.
                    if let Some(payload) = payload {
                        let ttl_ms = if ttl > 0 { ttl as u64 } else { 0 };
                        seed.push(SeedKey {
                            db,
                            key,
                            ttl_ms,
                            payload,
                        });
                    }
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    redis::cmd("SELECT").arg(0).query_async::<()>(conn).await?;
    Ok(seed)
}

/// `FUNCTION DUMP` when functions are loaded.
async fn dump_functions(
    conn: &mut redis::aio::MultiplexedConnection,
) -> RedisResult<Option<Vec<u8>>> {
    let libraries: Vec<Value> = redis::cmd("FUNCTION").arg("LIST").query_async(conn).await?;
    if libraries.is_empty() {
        return Ok(None);
    }
    let payload: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query_async(conn).await?;
    Ok(Some(payload))
}

/// The user an `ACL LIST` line describes (`user NAME rules...`).
fn acl_user(line: &str) -> Option<&str> {
    let mut parts = line.split(' ');
    (parts.next() == Some("user")).then_some(())?;
    parts.next()
}

/// Splits an `ACL LIST` line into words, keeping each `(selector ...)` in one piece.
fn acl_tokens(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in line.chars() {
        match c {
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ' ' if depth == 0 => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Whether a failed `CONFIG SET` failed because the parameter cannot be set at run time
/// (`can't set immutable config`, `can't set protected config`): such a parameter cannot have
/// been changed by a test either, so there is nothing to restore.
pub(crate) fn is_unsettable(error: &redis::RedisError) -> bool {
    let text = error.to_string();
    text.contains("immutable") || text.contains("protected config")
}

/// Turns the per-command answers of an `ignore_errors` pipeline into the first error, if any.
pub(crate) fn first_error(answers: &[Value]) -> Option<(usize, redis::RedisError)> {
    answers.iter().enumerate().find_map(|(i, v)| match v {
        Value::ServerError(e) => Some((i, e.clone().into())),
        _ => None,
    })
}

/// Reads an answer of an `ignore_errors` pipeline as `T`.
pub(crate) fn answer<T: redis::FromRedisValue>(value: Value) -> RedisResult<T> {
    if let Value::ServerError(e) = value {
        return Err(e.into());
    }
    redis::from_redis_value(value).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> Baseline {
        Baseline {
            version: "7.0.15".into(),
            config: BTreeMap::from([
                ("databases".into(), "16".into()),
                ("hz".into(), "10".into()),
                ("maxmemory-policy".into(), "noeviction".into()),
            ]),
            acl: vec!["user default on nopass ~* &* +@all".into()],
            seed: Vec::new(),
            functions: None,
        }
    }

    #[test]
    fn seed_payloads_round_trip_through_the_baseline_file() {
        let mut b = baseline();
        b.seed.push(SeedKey {
            db: 3,
            key: b"user:\x00".to_vec(),
            ttl_ms: 1500,
            payload: vec![0, 255, 16, 7],
        });
        b.functions = Some(vec![1, 2, 3]);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Baseline>(&json).unwrap(), b);
        assert_eq!(b.seeded_databases().into_iter().collect::<Vec<_>>(), [3]);
        // A baseline file written before seeds existed still reads.
        let old = r#"{"version":"7.0.0","config":{},"acl":[]}"#;
        assert!(serde_json::from_str::<Baseline>(old)
            .unwrap()
            .seed
            .is_empty());
        assert_eq!(
            keyspace_databases("# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\ndb12:keys=1"),
            [0, 12]
        );
    }

    #[test]
    fn versions_decide_what_the_server_can_reset() {
        let mut b = baseline();
        assert_eq!(b.databases(), 16);
        assert!(b.has_acl() && b.has_functions() && b.has_client_unpause());
        b.version = "6.0.9".into();
        assert!(b.has_acl() && !b.has_functions() && !b.has_client_unpause());
        b.version = "5.0.14".into();
        assert!(!b.has_acl());
    }

    #[test]
    fn only_changed_parameters_are_set_again() {
        let b = baseline();
        let mut now = b.config.clone();
        assert!(b.config_changes(&now).is_empty());
        now.insert("hz".into(), "100".into());
        now.insert("some-module-param".into(), "x".into());
        assert_eq!(
            b.config_changes(&now),
            vec![("hz".to_string(), "10".to_string())]
        );
    }

    #[test]
    fn users_are_deleted_and_restored() {
        let b = baseline();
        assert!(b.acl_changes(&b.acl).is_empty());
        let now = vec![
            "user alice on #abc ~app:* resetchannels -@all +get (~other* +set)".to_string(),
            "user default on #123 ~* &* +@all".to_string(),
        ];
        let cmds: Vec<Vec<u8>> = b
            .acl_changes(&now)
            .iter()
            .map(|c| c.get_packed_command())
            .collect();
        assert_eq!(cmds.len(), 2);
        let del = String::from_utf8_lossy(&cmds[0]);
        assert!(del.contains("DELUSER") && del.contains("alice") && !del.contains("default"));
        let set = String::from_utf8_lossy(&cmds[1]);
        assert!(set.contains("SETUSER") && set.contains("reset") && set.contains("nopass"));
    }

    #[test]
    fn selectors_stay_in_one_token() {
        assert_eq!(
            acl_tokens("user bob on (~a* +get) -@all"),
            vec!["user", "bob", "on", "(~a* +get)", "-@all"]
        );
        assert_eq!(acl_user("user bob on"), Some("bob"));
        assert_eq!(acl_user("nonsense"), None);
    }
}
