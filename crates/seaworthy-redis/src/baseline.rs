//! The baseline a Redis fixture returns to, and the commands that return to it.
//!
//! Recorded once per container, when a process first attaches to it: the server's version, its
//! whole configuration (`CONFIG GET *`) and its users (`ACL LIST`). It is kept in a file inside the
//! container, so a process attaching later to a container shared by the whole test run (whose
//! configuration a test may already have changed) restores the same baseline as the first.

use std::collections::{BTreeMap, BTreeSet};

use redis::aio::ConnectionManager;
use redis::{RedisResult, Value};
use seaworthy::Container;

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

    /// The container's baseline: the one kept in it, or recorded now and kept there (the
    /// kit's [`Baseline`](seaworthy::kit::Baseline), under the run's lock).
    pub(crate) async fn load_or_record(
        container: &Container,
        manager: &ConnectionManager,
    ) -> Result<Baseline> {
        seaworthy::kit::Baseline::new(BASELINE_PATH)
            .load_or_record(container, || Baseline::record(container.name(), manager))
            .await
    }

    /// Reads version, configuration and users from the server.
    async fn record(container: &str, manager: &ConnectionManager) -> Result<Baseline> {
        let mut conn = manager.clone();
        let (info, config, acl): (String, BTreeMap<String, String>, Value) =
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
        Ok(Baseline {
            version,
            config,
            acl,
        })
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
        }
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
