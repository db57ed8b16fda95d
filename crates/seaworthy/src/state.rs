//! Seaworthy's state directory (`SEAWORTHY_STATE_DIR`, else `$TMPDIR/seaworthy`): the cross-process
//! lock files, the list of resources kept for debugging, the recorded baselines and the data of
//! snapshots, and their removal once a run is over.

use std::path::PathBuf;

use crate::error::{Error, Result};

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
    if let Ok(entries) = std::fs::read_dir(snapshot_dir()) {
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

pub(crate) fn kept_ids() -> Vec<String> {
    std::fs::read_to_string(state_dir().join("kept"))
        .map(|s| {
            s.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Where snapshots keep the archived contents of their volumes and tmpfs mounts.
pub(crate) fn snapshot_dir() -> PathBuf {
    let dir = state_dir().join("snapshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The start of the names of the host copies of container `id`'s baseline records (see
/// `kit::Baseline::load_or_revise_stamped`).
fn baseline_copy_prefix(id: &str) -> String {
    format!(
        "baseline-copy-{:016x}-",
        crate::identity::fnv1a(id.as_bytes())
    )
}

/// The host copy of the baseline record at `path` in container `id`.
pub(crate) fn baseline_copy_file(id: &str, path: &str) -> PathBuf {
    state_dir().join(format!(
        "{}{:016x}.json",
        baseline_copy_prefix(id),
        crate::identity::fnv1a(path.as_bytes())
    ))
}

/// Removes the host copies of the baseline records of container `id` (removed, or refused).
pub(crate) fn remove_baseline_copies(id: &str) {
    let prefix = baseline_copy_prefix(id);
    if let Ok(entries) = std::fs::read_dir(state_dir()) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
