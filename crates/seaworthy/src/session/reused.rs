//! The lower half of [reuse across runs](crate::reuse): the switches, the labels of a reused
//! container, its state files (last use), and the listing and removal `seaworthy gc` runs. It sits
//! in the session layer so that the container's start path and the sweep can use it; the
//! public items are re-exported at [`crate::reuse`], their one public path.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::session::{
    ResourceKind, LABEL_FIXTURE, LABEL_HOST, LABEL_MANAGED, LABEL_OWNER, LABEL_RUNNER,
    LABEL_SESSION, OWNER_REUSE,
};

/// `on` reuses the run-shared fixtures of definitions that do not say; `off` reuses none.
pub const ENV_REUSE: &str = "SEAWORTHY_REUSE";
/// How long a reused container may stay unused before `seaworthy gc` removes it.
pub const ENV_REUSE_IDLE: &str = "SEAWORTHY_REUSE_IDLE";
/// How many reused containers `seaworthy gc` keeps at most (the most recently used).
pub const ENV_REUSE_MAX: &str = "SEAWORTHY_REUSE_MAX";
/// Label: the SHA-256 of the definition a reused container was created from.
pub const LABEL_REUSE_KEY: &str = "io.seaworthy.reuse.key";
/// The idle time after which `seaworthy gc` removes a reused container, unless configured.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(24 * 3600);

/// Whether reuse is on for a definition whose own setting is `setting`.
pub(crate) fn active(setting: Option<bool>) -> bool {
    match crate::substitution::env_switch(ENV_REUSE) {
        Some(false) => false,
        env => setting.or(env).unwrap_or(false),
    }
}

/// The labels of a reused container: managed, and owned by no process nor run.
pub(crate) fn labels() -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_OWNER.to_string(), OWNER_REUSE.to_string()),
        (LABEL_SESSION.to_string(), OWNER_REUSE.to_string()),
        (LABEL_RUNNER.to_string(), OWNER_REUSE.to_string()),
        (LABEL_HOST.to_string(), crate::identity::host_name()),
    ])
}

/// The name of the state files of the reused fixture hashed `hash` (lock, holds, last use).
pub(crate) fn file_base(hash: &str) -> String {
    format!("reuse-{hash}")
}

// ---------------------------------------------------------------------------------------------
// Last use and removal.

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn used_file(hash: &str) -> std::path::PathBuf {
    crate::state::state_dir().join(format!("{}.used", file_base(hash)))
}

/// Records that a run took the reused fixture hashed `hash` now.
pub(crate) fn touch_used(hash: &str) {
    let _ = std::fs::write(used_file(hash), unix_now().to_string());
}

fn last_used(hash: &str) -> Option<i64> {
    std::fs::read_to_string(used_file(hash))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A reused container, as listed by [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReusedContainer {
    /// The container id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The image it runs.
    pub image: String,
    /// Its definition's reuse key.
    pub key: String,
    /// Its fixture's hash (`io.seaworthy.fixture`).
    pub hash: String,
    /// Its state (`running`, `exited`...).
    pub state: String,
    /// When it was created (seconds since the Unix epoch).
    pub created: i64,
    /// When a run last took it, on this machine (seconds since the Unix epoch), if known.
    pub last_used: Option<i64>,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

impl ReusedContainer {
    /// Seconds since a run last took it (or since it was created).
    pub fn idle_secs(&self, now: i64) -> i64 {
        now - self.last_used.unwrap_or(self.created).max(self.created)
    }
}

/// Lists the reused containers of this host (those carrying every label of `labels`, when
/// given), most recently used first.
pub async fn list(engine: &Engine, labels: &[(&str, &str)]) -> Result<Vec<ReusedContainer>> {
    let mut filter = vec![
        format!("{LABEL_MANAGED}=true"),
        format!("{LABEL_OWNER}={OWNER_REUSE}"),
        format!("{LABEL_HOST}={}", crate::identity::host_name()),
    ];
    filter.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
    let found = crate::gc::containers_labelled(engine, filter, "list reused containers").await?;
    let now = unix_now();
    let mut out: Vec<ReusedContainer> = found
        .into_iter()
        .map(|c| {
            let labels = c.labels.clone().unwrap_or_default();
            let hash = labels.get(LABEL_FIXTURE).cloned().unwrap_or_default();
            ReusedContainer {
                id: c.id.clone().unwrap_or_default(),
                name: c
                    .names
                    .iter()
                    .flatten()
                    .next()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                image: c.image.clone().unwrap_or_default(),
                key: labels.get(LABEL_REUSE_KEY).cloned().unwrap_or_default(),
                last_used: last_used(&hash),
                hash,
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                created: c.created.unwrap_or(0),
                labels,
            }
        })
        .collect();
    // Ties (uses within one second) go to the newer container.
    out.sort_by_key(|c| (c.idle_secs(now), std::cmp::Reverse(c.created)));
    Ok(out)
}

/// What [`collect`] removes.
#[derive(Debug, Clone, Default)]
pub struct ReuseGcOptions {
    /// Remove those idle for this long (`None`: as configured, see [`configured_idle`]).
    pub idle: Option<Duration>,
    /// Keep at most this many (`None`: as configured, see [`configured_max`]).
    pub max_count: Option<usize>,
    /// Remove them all.
    pub all: bool,
    /// Only those carrying every one of these labels (`key`, `value`).
    pub labels: Vec<(String, String)>,
}

/// The idle time after which reused containers are removed: `SEAWORTHY_REUSE_IDLE`, else
/// `[reuse] idle` of `seaworthy.toml`, else [`DEFAULT_IDLE`]. A value that is not a duration is
/// an error naming it.
pub fn configured_idle() -> Result<Duration> {
    match setting(ENV_REUSE_IDLE, "idle")? {
        Some(value) => parse_duration(&value).ok_or_else(|| {
            Error::invalid(
                "reuse idle time",
                &value,
                "must be a number of seconds, or a number followed by s, m, h or d",
            )
        }),
        None => Ok(DEFAULT_IDLE),
    }
}

/// The most reused containers kept: `SEAWORTHY_REUSE_MAX`, else `[reuse] max` of
/// `seaworthy.toml`, else no cap.
pub fn configured_max() -> Result<Option<usize>> {
    match setting(ENV_REUSE_MAX, "max")? {
        Some(value) => value.trim().parse().map(Some).map_err(|_| {
            Error::invalid("reuse cap", &value, "must be a whole number of containers")
        }),
        None => Ok(None),
    }
}

fn setting(env: &str, key: &str) -> Result<Option<String>> {
    match std::env::var(env) {
        Ok(value) if !value.trim().is_empty() => Ok(Some(value)),
        _ => crate::substitution::config_setting("reuse", key),
    }
}

/// `90`, `90s`, `30m`, `12h`, `2d`.
fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, "s"),
    };
    let number: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    Some(Duration::from_secs(number.checked_mul(seconds)?))
}

/// Removes reused containers per `options`: those idle too long, those beyond the cap (least
/// recently used first), or all; never one a run is finding or creating. Returns those removed and the
/// errors of those that could not be.
pub async fn collect(
    engine: &Engine,
    options: &ReuseGcOptions,
) -> Result<(Vec<ReusedContainer>, Vec<Error>)> {
    let idle = match options.idle {
        Some(idle) => idle,
        None => configured_idle()?,
    };
    let max = match options.max_count {
        Some(max) => Some(max),
        None => configured_max()?,
    };
    let labels: Vec<(&str, &str)> = options
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let now = unix_now();
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    // Kept for inspection: `seaworthy gc --include-kept` removes those (or `all`).
    let kept = crate::state::kept_ids();
    let listed = list(engine, &labels)
        .await?
        .into_iter()
        .filter(|c| options.all || !kept.iter().any(|k| c.id.starts_with(k.as_str())));
    for (index, reused) in listed.enumerate() {
        let doomed = options.all
            || reused.idle_secs(now) >= idle.as_secs() as i64
            || max.is_some_and(|max| index >= max);
        if !doomed {
            continue;
        }
        // Not while a run finds, checks or creates it.
        let Some(_lock) = try_lock(&format!("{}.lock", file_base(&reused.hash))) else {
            continue;
        };
        match crate::session::remove_now(engine, ResourceKind::Container, &reused.id, &reused.name)
            .await
        {
            Ok(()) => {
                tracing::info!(container = %reused.name, idle_secs = reused.idle_secs(now), "reused fixture removed");
                crate::state::remove_baseline_copies(&reused.id);
                for suffix in ["used", "run", "tainted", "retired"] {
                    let _ = std::fs::remove_file(
                        crate::state::state_dir()
                            .join(format!("{}.{suffix}", file_base(&reused.hash))),
                    );
                }
                removed.push(reused);
            }
            Err(e) => errors.push(e),
        }
    }
    Ok((removed, errors))
}

/// An exclusive lock on the state file `name`, if nobody holds it.
fn try_lock(name: &str) -> Option<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(crate::state::state_dir().join(name))
        .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration(" 12h "), Some(Duration::from_secs(43200)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172800)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        for bad in ["", "h", "1w", "-1", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
