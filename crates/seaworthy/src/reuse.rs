//! Reuse across runs (opt-in): a fixture shared per run ([`Shared::per_run`](crate::Shared::per_run))
//! whose container outlives the run, so the next `cargo test` finds it and skips the start.
//!
//! Turned on per definition ([`ContainerDefinition::with_reuse`](crate::ContainerDefinition::with_reuse),
//! e.g. `Postgres::with_reuse`) or for every definition that does not say with
//! `SEAWORTHY_REUSE=on`; `SEAWORTHY_REUSE=off` turns it off for a run whatever the definitions
//! say. Off by default: a reused container keeps running between runs.
//!
//! # Safety
//!
//! * **Never across keys.** The container is labelled with a SHA-256 of the whole definition
//!   (the fixture's [key](crate::ContainerFixtureDefinition::key) and the container's:
//!   image, environment, command, mounts, init steps...). A run only takes a container with
//!   its own definition's key, and only when the image the container runs is still the image
//!   the definition names (a rebuilt or re-pulled image starts a new one).
//! * **Checked alive.** A container that is not running, or whose fixture does not attach (its
//!   server does not answer), is refused, removed and replaced; a log line says why. One kept
//!   for inspection after a failed test (`SEAWORTHY_KEEP_ON_FAILURE`) is passed over.
//! * **Cleaned before its first hand-out.** Whatever the last run left (a failed test, a
//!   test that did not clean), the first process of a run that finds it cleans it
//!   ([`Fixture::clean`](crate::Fixture::clean)) before any test gets it (the other processes
//!   of the run take it as their run uses it: a state file names the run that took it last); a
//!   container whose clean fails is replaced.
//! * **One user at a time.** Finding, creating and replacing happen under a file lock per key
//!   (in [`state_dir`](crate::gc::state_dir)); the holds that let the tests of a run share it
//!   are per key as well (not per run), so two runs at once take turns on it as the processes
//!   of one run do.
//! * **Labelled.** `io.seaworthy.managed=true`, owner, session and runner `reuse` (no process
//!   or run owns it: the exit path, the reaper and the dead-process sweep leave it alone),
//!   `io.seaworthy.reuse.key`, and the fixture's hash (`io.seaworthy.fixture`); named
//!   `seaworthy-reuse-<hash>`. It is on the engine's default bridge, not on a run's network
//!   (which ends with the run): reach it through its published ports.
//!
//! # Removal
//!
//! [`collect`] removes reused containers idle (no run took them) for longer than
//! `SEAWORTHY_REUSE_IDLE` (`[reuse] idle` in `seaworthy.toml`; `90s`, `30m`, `12h`, `2d`; 24
//! hours by default), and the least recently used beyond `SEAWORTHY_REUSE_MAX` (`[reuse] max`;
//! no cap by default). `seaworthy gc` runs it (and so does the sweep each process starts with);
//! `seaworthy gc --all` removes them all; `seaworthy cache ls` lists them. A container is never
//! removed while a run finds, checks or creates it (the lock), and a run's first use of it
//! counts as a use: keep the idle time longer than a run.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bollard::query_parameters::ListContainersOptions;
use sha2::{Digest, Sha256};

use crate::container::Container;
use crate::definition::SessionNetwork;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::fixture::{ContainerFixtureDefinition, Fixture, FixtureError};
use crate::session::{
    ResourceKind, Session, LABEL_FIXTURE, LABEL_HOST, LABEL_MANAGED, LABEL_OWNER, LABEL_RUNNER,
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
    match crate::baseline_cache::env_switch(ENV_REUSE) {
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

/// The reuse key of `definition` (64 hex digits).
fn reuse_key<D: ContainerFixtureDefinition>(definition: &D) -> String {
    let mut hasher = Sha256::new();
    for part in [
        "seaworthy-reuse/v1".to_string(),
        ContainerFixtureDefinition::key(definition),
        definition.container_definition().key(),
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The name of the state files of the reused fixture hashed `hash` (lock, holds, last use).
pub(crate) fn file_base(hash: &str) -> String {
    format!("reuse-{hash}")
}

/// Finds the reused container of `definition` and cleans it, or creates it: what
/// [`share_per_run`](crate::FixtureDefinition::share_per_run) does for a definition that
/// [reuses](crate::ContainerDefinition::reuses).
pub(crate) async fn share<D: ContainerFixtureDefinition>(
    definition: D,
    session: Session,
    hash: String,
) -> std::result::Result<D::Fixture, FixtureError<D>> {
    let key = reuse_key(&definition);
    let mut container_def = definition
        .container_definition()
        .with_label(LABEL_FIXTURE, hash.clone())
        .with_label(LABEL_REUSE_KEY, key.clone());
    container_def.run_scoped = true;
    container_def.reused = true;
    container_def.session_network = SessionNetwork::Never;
    container_def.engine_name = Some(format!("seaworthy-reuse-{hash}"));
    let kind = std::any::type_name::<D>();
    let lock =
        crate::state::lock_file(format!("{}.lock", file_base(&hash)), "reused-fixture").await?;
    touch_used(&hash);
    // The run that took the container last: another process of this run may be using it now,
    // so only the first process of a run cleans it (under the lock).
    let taken_by = crate::state::state_dir().join(format!("{}.run", file_base(&hash)));
    let ours = std::fs::read_to_string(&taken_by).is_ok_and(|run| run == session.run_id());
    if let Some((id, name)) = find(&session, &key, &container_def).await? {
        match take_over(&definition, &session, &id, &container_def, !ours).await {
            Ok(fixture) => {
                let _ = std::fs::write(&taken_by, session.run_id());
                let what = if ours {
                    "reused fixture found, alive (this run's already)"
                } else {
                    "reused fixture found, alive and cleaned"
                };
                tracing::info!(fixture = kind, container = %name, key = %&key[..16], "{what}");
                drop(lock);
                return Ok(fixture);
            }
            Err(why) => {
                tracing::info!(fixture = kind, container = %name, "reused fixture refused: {why}; replacing it");
                eprintln!(
                    "seaworthy: the reused fixture {name} is refused ({why}); starting a new one"
                );
                crate::session::remove_now(session.engine(), ResourceKind::Container, &id, &name)
                    .await?;
            }
        }
    }
    let result = async {
        let container = container_def.start_in(&session).await?;
        definition.attach(container).await
    }
    .await;
    if let Ok(fixture) = &result {
        let _ = std::fs::write(&taken_by, session.run_id());
        tracing::info!(fixture = kind, container = %fixture.container().name(), key = %&key[..16], "reused fixture created (it outlives the run)");
    }
    drop(lock);
    result
}

/// Attaches to the found container and, with `clean`, cleans it; the reason when it cannot be
/// used.
async fn take_over<D: ContainerFixtureDefinition>(
    definition: &D,
    session: &Session,
    id: &str,
    container_def: &crate::ContainerDefinition,
    clean: bool,
) -> std::result::Result<D::Fixture, String> {
    let container = Container::attach(session, id, container_def.clone())
        .await
        .map_err(|e| format!("it cannot be inspected: {e}"))?;
    let fixture = definition
        .attach(container)
        .await
        .map_err(|e| format!("its fixture does not attach: {e}"))?;
    if clean {
        fixture
            .clean()
            .await
            .map_err(|e| format!("its clean failed: {e}"))?;
    }
    Ok(fixture)
}

/// The container created for `key`, when it is running and runs the image the definition
/// names now; one that is not is removed (with a log line saying why).
async fn find(
    session: &Session,
    key: &str,
    def: &crate::ContainerDefinition,
) -> Result<Option<(String, String)>> {
    let engine = session.engine();
    let filters = HashMap::from([(
        "label".to_string(),
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_OWNER}={OWNER_REUSE}"),
            format!("{LABEL_REUSE_KEY}={key}"),
        ],
    )]);
    let found = engine
        .docker()
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("list reused containers", e))?;
    let mut usable = None;
    // A container kept for inspection after a failed test (SEAWORTHY_KEEP_ON_FAILURE) is out of
    // use, as its run left it.
    let kept = crate::state::kept_ids();
    for c in found {
        let id = c.id.clone().unwrap_or_default();
        if kept.iter().any(|k| id.starts_with(k.as_str())) {
            continue;
        }
        let name = c
            .names
            .iter()
            .flatten()
            .next()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_else(|| id.clone());
        let running = matches!(
            c.state,
            Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
        );
        let why = if usable.is_some() {
            Some("another container has the same key".to_string())
        } else if !running {
            Some(format!(
                "it is not running ({})",
                c.state.map(|s| s.to_string()).unwrap_or_default()
            ))
        } else {
            match current_image_id(session, def).await {
                Some(image) if c.image_id.as_deref() == Some(image.as_str()) => None,
                Some(_) => Some("its image changed since it was created".to_string()),
                None => Some("its image cannot be inspected".to_string()),
            }
        };
        match why {
            None => usable = Some((id, name)),
            Some(why) => {
                tracing::info!(container = %name, "reused fixture refused: {why}; removing it");
                eprintln!("seaworthy: the reused fixture {name} is refused ({why}); removing it");
                crate::session::remove_now(engine, ResourceKind::Container, &id, &name).await?;
            }
        }
    }
    Ok(usable)
}

/// The id of the image `def` names (after substitution), if the engine has it.
async fn current_image_id(session: &Session, def: &crate::ContainerDefinition) -> Option<String> {
    let mut image = def.image.clone();
    if let Ok(Some(substitute)) = crate::substitution::substitute(&image) {
        image = substitute;
    }
    let reference = crate::reference::ImageRef::parse(&image).ok()?.to_string();
    session
        .engine()
        .docker()
        .inspect_image(&reference)
        .await
        .ok()?
        .id
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
fn touch_used(hash: &str) {
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
    let found = engine
        .docker()
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_string(), filter)])),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("list reused containers", e))?;
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
