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

use bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, ListVolumesOptions,
};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::identity::{host_name, process_alive};
use crate::session::{
    remove_now, ResourceKind, LABEL_HOST, LABEL_MANAGED, LABEL_OWNER, LABEL_RUNNER, LABEL_SESSION,
    OWNER_CACHE, OWNER_REUSE, OWNER_RUN,
};
use crate::state::kept_ids;

pub use crate::state::{remove_run_files, state_dir};

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

/// The containers, running or not, that carry every label of `labels` (each `key=value`);
/// `what` says what was being listed in the error (`list reused containers`).
pub(crate) async fn containers_labelled(
    engine: &Engine,
    labels: Vec<String>,
    what: &str,
) -> Result<Vec<bollard::models::ContainerSummary>> {
    engine
        .docker()
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_string(), labels)])),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker(what, e))
}

/// Lists every resource carrying all `labels` (`key=value`), in teardown order.
pub async fn list_labelled(
    engine: &Engine,
    labels: &[(&str, &str)],
) -> Result<Vec<LabelledResource>> {
    let docker = engine.docker();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let filter = HashMap::from([("label".to_string(), labels.clone())]);
    let mut out = Vec::new();
    let containers = containers_labelled(engine, labels, "list labelled containers").await?;
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
    let host = host_name();
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
        // Cached baselines and reused containers belong to no process: `seaworthy cache prune`
        // removes the former, the idle time and cap of reuse (below) the latter.
        let cached = label(LABEL_OWNER) == OWNER_CACHE || label(LABEL_OWNER) == OWNER_REUSE;
        // A reused container kept for inspection is out of use: `--include-kept` removes it.
        let reused_kept = label(LABEL_OWNER) == OWNER_REUSE && is_kept;
        let dead = reused_kept
            || !unowned
                && !cached
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
    if !options.all && options.session.is_none() {
        match crate::session::reused::collect(engine, &Default::default()).await {
            Ok((removed, errors)) => {
                report.kept = report.kept.saturating_sub(removed.len());
                report
                    .removed
                    .extend(removed.into_iter().map(|r| LabelledResource {
                        kind: ResourceKind::Container,
                        id: r.id,
                        name: r.name,
                        labels: r.labels,
                    }));
                report.errors.extend(errors);
            }
            Err(e) => report.errors.push(e),
        }
    }
    Ok(report)
}
