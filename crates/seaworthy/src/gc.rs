//! Removing what dead test processes left behind: the reaper and `seaworthy gc`.
//!
//! Every resource carries the labels of [`session`](crate::session): its owner process
//! (`pid:start-time`, or `run` for resources shared by the whole run), the test runner process, and
//! the host. A process that exits normally, panics or gets SIGINT/SIGTERM removes its own
//! resources at exit. For SIGKILL (and crashes) each process starts a **reaper**: the same
//! executable re-executed in a process group of its own (`SEAWORTHY_REAPER=1`, caught by a
//! constructor before `main`), which watches its owner. When the owner is gone it removes the
//! owner's resources (containers, then networks, volumes, images) within about a second; then, if
//! resources shared by the run exist, it waits for the runner process to be gone and removes those.
//!
//! [`collect`] does the same sweep for every session on the engine at once: the `seaworthy gc`
//! command, and a background sweep when a session starts. Resources of live processes, of other
//! hosts, and containers kept for debugging (`SEAWORTHY_KEEP_ON_FAILURE`, [`Container::keep`](crate::Container::keep))
//! are left alone unless asked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, ListVolumesOptions,
};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::session::{
    process_alive, remove_now, ResourceKind, LABEL_HOST, LABEL_MANAGED, LABEL_OWNER, LABEL_RUNNER,
    LABEL_SESSION, OWNER_RUN,
};

/// A labelled resource found on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledResource {
    /// Its kind.
    pub kind: ResourceKind,
    /// Engine id (or name, for volumes).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

/// What a sweep removed and kept.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Resources removed.
    pub removed: Vec<LabelledResource>,
    /// Resources left because their owner (or runner) is alive, they belong to another host, or
    /// they were kept for debugging.
    pub kept: usize,
    /// Removals that failed.
    pub errors: Vec<Error>,
}

/// Which resources [`collect`] removes.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Only resources of this test run (the value of `io.seaworthy.session`).
    pub session: Option<String>,
    /// Remove resources of live processes too (everything labelled managed on this host).
    pub all: bool,
    /// Remove containers kept for debugging too.
    pub include_kept: bool,
    /// Judge resources of other hosts as well (their processes cannot be checked: with `all` only).
    pub other_hosts: bool,
}

/// Lists every resource carrying all `labels` (`key=value`), in teardown order.
pub async fn list_labelled(
    engine: &Engine,
    labels: &[(&str, &str)],
) -> Result<Vec<LabelledResource>> {
    let docker = engine.docker();
    let filter = HashMap::from([(
        "label".to_string(),
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
    )]);
    let mut out = Vec::new();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filter.clone()),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("list labelled containers", e))?;
    for c in containers {
        out.push(LabelledResource {
            kind: ResourceKind::Container,
            id: c.id.unwrap_or_default(),
            name: c
                .names
                .unwrap_or_default()
                .first()
                .cloned()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            labels: c.labels.unwrap_or_default(),
        });
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filter.clone()),
        }))
        .await
        .map_err(|e| Error::docker("list labelled networks", e))?;
    for n in networks {
        out.push(LabelledResource {
            kind: ResourceKind::Network,
            id: n.id.unwrap_or_default(),
            name: n.name.unwrap_or_default(),
            labels: n.labels.unwrap_or_default(),
        });
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filter.clone()),
        }))
        .await
        .map_err(|e| Error::docker("list labelled volumes", e))?;
    for v in volumes.volumes.unwrap_or_default() {
        out.push(LabelledResource {
            kind: ResourceKind::Volume,
            id: v.name.clone(),
            name: v.name,
            labels: v.labels,
        });
    }
    let images = docker
        .list_images(Some(ListImagesOptions {
            filters: Some(filter),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("list labelled images", e))?;
    for i in images {
        out.push(LabelledResource {
            kind: ResourceKind::Image,
            name: i.repo_tags.first().cloned().unwrap_or_else(|| i.id.clone()),
            id: i.id,
            labels: i.labels,
        });
    }
    Ok(out)
}

/// Removes `resources` in teardown order (containers, networks, volumes, images), each kind in
/// parallel.
pub async fn remove_all(engine: &Engine, resources: Vec<LabelledResource>, report: &mut GcReport) {
    for kind in [
        ResourceKind::Container,
        ResourceKind::Network,
        ResourceKind::Volume,
        ResourceKind::Image,
    ] {
        let of_kind: Vec<_> = resources
            .iter()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect();
        let results = futures_util::future::join_all(of_kind.into_iter().map(|r| async move {
            let result = remove_now(engine, r.kind, &r.id, &r.name).await;
            (r, result)
        }))
        .await;
        for (r, result) in results {
            match result {
                Ok(()) => report.removed.push(r),
                Err(e) => report.errors.push(e),
            }
        }
    }
}

/// Removes the resources of dead test processes (and of finished runs) on `engine`.
pub async fn collect(engine: &Engine, options: GcOptions) -> Result<GcReport> {
    let host = crate::session::host_name();
    let kept = kept_ids();
    let mut report = GcReport::default();
    let mut doomed = Vec::new();
    let mut filter = vec![(LABEL_MANAGED, "true")];
    if let Some(session) = &options.session {
        filter.push((LABEL_SESSION, session.as_str()));
    }
    for r in list_labelled(engine, &filter).await? {
        let label = |k: &str| r.labels.get(k).map(String::as_str).unwrap_or("");
        let same_host = label(LABEL_HOST) == host;
        let is_kept = kept
            .iter()
            .any(|k| r.id.starts_with(k.as_str()) || *k == r.name);
        // Without an owner label, nothing says whose it is: only `all` takes it.
        let unowned = label(LABEL_OWNER).is_empty();
        let dead = !unowned
            && if label(LABEL_OWNER) == OWNER_RUN {
                !process_alive(label(LABEL_RUNNER))
            } else {
                !process_alive(label(LABEL_OWNER))
            };
        let remove = (same_host || options.other_hosts)
            && (options.all || (same_host && dead))
            && (!is_kept || options.include_kept);
        if remove {
            doomed.push(r);
        } else {
            report.kept += 1;
        }
    }
    remove_all(engine, doomed, &mut report).await;
    Ok(report)
}

/// Where Seaworthy keeps its lock files and the list of containers kept for debugging.
pub fn state_dir() -> PathBuf {
    let dir = std::env::var_os("SEAWORTHY_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("seaworthy"));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Removes the files the test run `run` (the value of `io.seaworthy.session`) left in
/// [`state_dir`]: the data of its shared containers' snapshots, their recorded baselines and the
/// run's lock files. For a run that is over: the reaper calls it once the test runner is gone.
pub fn remove_run_files(run: &str) {
    let namespace = format!("sw-{}", &run[..8.min(run.len())]);
    let shared_snapshots = format!("{namespace}-shared-");
    if let Ok(entries) = std::fs::read_dir(crate::snapshot::snapshot_dir()) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&shared_snapshots)
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let baselines = format!("baseline-{namespace}-");
    let locks = format!("run-{run}-");
    if let Ok(entries) = std::fs::read_dir(state_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&baselines) || name.starts_with(&locks) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Takes an exclusive lock on the file `name` in [`state_dir`], waiting for other processes that
/// hold it; the lock is released when the returned file is dropped. `what` names the lock in errors.
pub(crate) async fn lock_file(name: String, what: &str) -> Result<std::fs::File> {
    let path = state_dir().join(name);
    tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| {
        Error::io(
            format!("wait for the {what} lock"),
            std::io::Error::other(e),
        )
    })?
    .map_err(|e| Error::io(format!("take the {what} lock"), e))
}

/// Records that the container `id` is kept for debugging: the reaper and gc leave it alone.
pub(crate) fn record_kept(id: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir().join("kept"))
    {
        let _ = writeln!(f, "{id}");
    }
}

fn kept_ids() -> Vec<String> {
    std::fs::read_to_string(state_dir().join("kept"))
        .map(|s| {
            s.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The reaper process.

const ENV_REAPER: &str = "SEAWORTHY_REAPER";

/// How long a reaper keeps trying to reach the engine and remove what its owner left:
/// `SEAWORTHY_REAPER_PATIENCE` seconds, 10 minutes by default.
fn reaper_patience() -> Duration {
    std::env::var("SEAWORTHY_REAPER_PATIENCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(600))
}

/// Starts this process's reaper (once), unless `SEAWORTHY_REAPER=off` or resources are kept.
pub(crate) fn spawn_reaper(endpoint: &str, run_id: &str, owner: &str, runner: &str) {
    if std::env::var(ENV_REAPER).is_ok_and(|v| v == "off" || v == "0") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(state_dir().join(format!("reaper-{}.log", std::process::id())));
    let mut command = std::process::Command::new(exe);
    command
        .env(ENV_REAPER, "1")
        .env("SEAWORTHY_REAPER_ENDPOINT", endpoint)
        .env("SEAWORTHY_REAPER_RUN", run_id)
        .env("SEAWORTHY_REAPER_OWNER", owner)
        .env("SEAWORTHY_REAPER_RUNNER", runner)
        .envs(crate::engine::connect_env(endpoint))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .process_group(0);
    match log {
        Ok(f) => command.stderr(f),
        Err(_) => command.stderr(std::process::Stdio::null()),
    };
    match command.spawn() {
        Ok(child) => {
            tracing::debug!(pid = child.id(), "started the reaper");
            // Nobody waits for it: it outlives this process. Don't keep a zombie if it ends first.
            std::thread::spawn(move || {
                let mut child = child;
                let _ = child.wait();
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not start the reaper; `seaworthy gc` removes what a killed process leaves")
        }
    }
}

// SAFETY: runs before main; it only reads the environment and returns unless this process was
// started as a reaper, in which case it never returns to main.
#[ctor::ctor(unsafe)]
fn reaper_entry() {
    if std::env::var(ENV_REAPER).is_ok_and(|v| v == "1") {
        let code = run_reaper();
        if code == 0 {
            // Its log (named after the owner's pid) is only worth keeping when something failed.
            let owner = std::env::var("SEAWORTHY_REAPER_OWNER").unwrap_or_default();
            if let Some((pid, _)) = owner.split_once(':') {
                let _ = std::fs::remove_file(state_dir().join(format!("reaper-{pid}.log")));
            }
        }
        std::process::exit(code);
    }
}

fn run_reaper() -> i32 {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let (endpoint, run, owner, runner) = (
        var("SEAWORTHY_REAPER_ENDPOINT"),
        var("SEAWORTHY_REAPER_RUN"),
        var("SEAWORTHY_REAPER_OWNER"),
        var("SEAWORTHY_REAPER_RUNNER"),
    );
    if owner.is_empty() || run.is_empty() {
        return 2;
    }
    while process_alive(&owner) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return 3;
    };
    rt.block_on(async move {
        let started = Instant::now();
        // The engine may be down or restarting right now (a restart is often what killed the
        // tests): keep trying, backing off, for a while.
        let deadline = started + reaper_patience();
        let mut pause = Duration::from_millis(200);
        let mut retry = |what: &str, e: &dyn std::fmt::Display| {
            eprintln!("reaper: {what}: {e}; trying again in {pause:?}");
            let wait = pause;
            pause = (pause * 2).min(Duration::from_secs(2));
            (Instant::now() + wait < deadline).then_some(wait)
        };
        let engine = loop {
            match Engine::connect_to(&endpoint).await {
                Ok(engine) => break engine,
                Err(e) => match retry(&format!("cannot reach {endpoint}"), &e) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return 4,
                },
            }
        };
        let kept = kept_ids();
        let keep = |r: &LabelledResource| kept.iter().any(|k| r.id.starts_with(k.as_str()));
        // What the owner left, listed again after each pass until nothing is left.
        let mut removed = 0;
        loop {
            let failure = match list_labelled(&engine, &[(LABEL_OWNER, &owner)]).await {
                Ok(found) => {
                    let found: Vec<_> = found.into_iter().filter(|r| !keep(r)).collect();
                    if found.is_empty() {
                        break;
                    }
                    let mut report = GcReport::default();
                    remove_all(&engine, found, &mut report).await;
                    removed += report.removed.len();
                    match report.errors.first() {
                        None => continue,
                        Some(e) => e.to_string(),
                    }
                }
                Err(e) => e.to_string(),
            };
            match retry("cannot remove what the owner left", &failure) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return 5,
            }
        }
        eprintln!(
            "reaper: owner {owner} is gone; removed {removed} resources in {:?}",
            started.elapsed(),
        );
        // Resources shared by the run live until the runner is gone.
        loop {
            let shared =
                match list_labelled(&engine, &[(LABEL_SESSION, &run), (LABEL_OWNER, OWNER_RUN)])
                    .await
                {
                    Ok(shared) => shared,
                    Err(e) => {
                        match retry("cannot list the run's shared resources", &e) {
                            Some(wait) => tokio::time::sleep(wait).await,
                            None => return 6,
                        }
                        continue;
                    }
                };
            if shared.is_empty() {
                return 0;
            }
            if !process_alive(&runner) {
                // Everything of the run: shared containers, and whatever else is left.
                let all = match list_labelled(&engine, &[(LABEL_SESSION, &run)]).await {
                    Ok(all) => all,
                    Err(e) => {
                        match retry("cannot list the run's resources", &e) {
                            Some(wait) => tokio::time::sleep(wait).await,
                            None => return 6,
                        }
                        continue;
                    }
                };
                let mut report = GcReport::default();
                remove_all(
                    &engine,
                    all.into_iter().filter(|r| !keep(r)).collect(),
                    &mut report,
                )
                .await;
                eprintln!(
                    "reaper: runner {runner} is gone; removed {} shared resources",
                    report.removed.len()
                );
                if report.errors.is_empty() {
                    remove_run_files(&run);
                    return 0;
                }
                // Listed again on the next pass; what failed is tried again.
                match retry("cannot remove the run's resources", &report.errors[0]) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return 6,
                }
                continue;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}
