//! Snapshots through `docker commit`, with the data of volumes and tmpfs mounts, which commit alone
//! does not capture.
//!
//! [`Container::snapshot`] commits the container to an image and archives the contents of each of
//! its volumes and tmpfs mounts (the official postgres image keeps its data in a VOLUME: without
//! this, a snapshot of it would hold no data). [`Container::restore`] replaces the container with a
//! new one created from that image, with the archived data put back before it starts, and keeps what
//! a test holds on to: the same engine name, the same network aliases and the same host ports, so
//! connection strings stay valid. The handle stays the same too; only [`Container::id`] changes.
//! The container replaced steps aside (renamed, killed) while the new one is created and filled,
//! and is removed in the background once the new one is ready (until then the session tracks it,
//! so the exit path or the reaper removes it if the process goes first).
//!
//! # Consistency
//!
//! * [`Consistency::Paused`] (the default): the container is paused while it is committed and
//!   its volumes are read, so the snapshot is *crash-consistent*: what a power cut at that instant
//!   would leave. Fast (the process keeps its memory, nothing restarts); right for databases that
//!   recover from a crash (PostgreSQL, Redis with AOF/RDB), and for anything idle. What a service
//!   acknowledged but holds only in memory is not in it: PostgreSQL with `synchronous_commit=off`
//!   writes a commit's WAL up to 600 ms after the commit returns, so a snapshot taken right after a
//!   load restores without it (the loaded table is missing). Declare a command that writes it out
//!   with [`ContainerDefinition::with_snapshot_flush`](crate::ContainerDefinition::with_snapshot_flush)
//!   (PostgreSQL: `CHECKPOINT`): it runs right before every paused snapshot.
//! * [`Consistency::Stopped`]: the container is stopped (its stop signal, a clean shutdown), then
//!   committed, then brought back by a restore from the new snapshot. Slower, but the data is
//!   exactly what a clean shutdown writes: use it for services that don't recover from a crash, or
//!   to keep replay (WAL recovery) out of every restore.
//!
//! A restored container's volumes are fresh anonymous volumes holding the snapshot's data (a named
//! volume shared with another container is not rewritten behind that container's back); tmpfs
//! mounts come back as anonymous volumes too, since a tmpfs cannot be filled before start. The
//! engine's archive API does not see inside a tmpfs, so a tmpfs is read with `tar` run in the
//! container just before the pause (or stop): images with a tmpfs need `tar` to be snapshotted.
//!
//! The restored container starts on existing data and must pass the definition's waits again: a
//! wait that only holds on a first start (the official postgres image logs its ready line twice
//! then, once later) does not; prefer protocol, TCP or HTTP waits for containers you restore.
//!
//! Snapshot images carry the session's labels and are removed with the session, unless taken with
//! [`SnapshotOptions::keep`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use bollard::models::ContainerConfig;
use bollard::query_parameters::{
    CommitContainerOptions, DownloadFromContainerOptions, KillContainerOptions,
    RenameContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::container::{inspect_here, Container, Inner};
use crate::definition::ContainerDefinition;
use crate::error::{status_of, Error, Result};
use crate::files::CopySource;
use crate::runtime::on_runtime;
use crate::session::ResourceKind;
use crate::spec::{MountSource, PortSpec, Protocol};

/// How a snapshot is made consistent: paused (crash-consistent) or stopped (clean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Consistency {
    /// Paused while committed: crash-consistent, fast.
    #[default]
    Paused,
    /// Stopped (clean shutdown), committed, then restored.
    Stopped,
}

/// Options of [`Container::snapshot_with`].
#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    /// How the snapshot is made consistent.
    pub consistency: Consistency,
    /// Keep the snapshot image after the session (it is not labelled for removal).
    pub keep: bool,
}

/// The data of one volume or tmpfs mount, archived at snapshot time.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VolumeData {
    /// The mount point in the container.
    pub target: String,
    /// The tar archive of its contents on the host.
    pub archive: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A container's file system, configuration and volume data at one moment.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// The snapshot's name as given.
    pub name: String,
    /// The committed image's id.
    pub image_id: String,
    /// The committed image's tag (`sw-<run>-<process>-snapshot:<name>`).
    pub image: String,
    /// The container it was taken from.
    pub source: String,
    /// The archived volume and tmpfs data.
    pub volumes: Vec<VolumeData>,
    /// How it was made consistent.
    pub consistency: Consistency,
    /// Whether the image outlives the session.
    pub kept: bool,
}

impl Snapshot {
    /// Writes the snapshot's description to `path` (JSON), so another process can restore it.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::io("encode a snapshot", std::io::Error::other(e)))?;
        std::fs::write(path, json).map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    /// Reads a snapshot description written by [`Snapshot::save`].
    pub fn load(path: &std::path::Path) -> Result<Snapshot> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::io(
                format!("decode {}", path.display()),
                std::io::Error::other(e),
            )
        })
    }
}

impl Snapshot {
    /// Removes the snapshot's image (in the background, once no container uses it) and its
    /// volume data: a fixture's baseline when the fixture goes. Kept snapshots stay.
    pub(crate) fn discard(&self, session: &crate::session::Session) {
        if self.kept {
            return;
        }
        session.remove_in_background(
            ResourceKind::Image,
            self.image_id.clone(),
            self.image.clone(),
        );
        if let Some(dir) = self.volumes.first().and_then(|v| v.archive.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The baseline of a container shared by the run: taken by the first process under a file lock,
/// read by the others.
pub(crate) async fn run_baseline(
    container: &Container,
    options: SnapshotOptions,
) -> Result<Snapshot> {
    let json = run_baseline_file(container.name());
    let lock =
        crate::state::lock_file(format!("baseline-{}.lock", container.name()), "baseline").await?;
    // A description left by an earlier run of the same session id names an image that run's
    // reaper removed: take the baseline again.
    let recorded = match Snapshot::load(&json) {
        Ok(snapshot) => {
            let inner = container.inner.clone();
            let image = snapshot.image_id.clone();
            let present =
                on_runtime(async move { inner.docker().inspect_image(&image).await.is_ok() }).await;
            present.then_some(snapshot)
        }
        Err(_) => None,
    };
    let result = match recorded {
        Some(snapshot) => Ok(snapshot),
        None => {
            let snapshot = container.snapshot_with("baseline", options).await?;
            snapshot.save(&json)?;
            Ok(snapshot)
        }
    };
    drop(lock);
    result
}

/// Where the run's baseline of the run-shared container `name` is described.
fn run_baseline_file(name: &str) -> PathBuf {
    crate::state::state_dir().join(format!("baseline-{name}.json"))
}

/// Forgets the recorded baseline of the run-shared container `name` (it is being replaced).
pub(crate) fn forget_run_baseline(name: &str) {
    let _ = std::fs::remove_file(run_baseline_file(name));
}

impl Container {
    /// Takes a crash-consistent snapshot named `name` (see [`Consistency::Paused`]).
    pub async fn snapshot(&self, name: &str) -> Result<Snapshot> {
        self.snapshot_with(name, SnapshotOptions::default()).await
    }

    /// Takes a snapshot with `options`.
    pub async fn snapshot_with(&self, name: &str, options: SnapshotOptions) -> Result<Snapshot> {
        let inner = self.inner.clone();
        let name = name.to_string();
        on_runtime(async move {
            let started = Instant::now();
            let snapshot = match options.consistency {
                Consistency::Paused => snapshot_paused(&inner, &name, options.keep).await?,
                Consistency::Stopped => {
                    // A tmpfs is gone once the container stops: read it first.
                    let tmpfs = capture_tmpfs(&inner).await?;
                    inner
                        .docker()
                        .stop_container(&inner.name, None::<bollard::query_parameters::StopContainerOptions>)
                        .await
                        .map_err(|e| Error::docker(format!("stop container {} for a snapshot", inner.name), e))?;
                    let mut snapshot = capture(&inner, &name, options.keep, false, tmpfs).await?;
                    snapshot.consistency = Consistency::Stopped;
                    // Bring it back from the snapshot, which pins name, aliases and host ports.
                    restore_here(&inner, &snapshot).await?;
                    snapshot
                }
            };
            tracing::debug!(container = %inner.name, snapshot = %name, elapsed = ?started.elapsed(), "snapshot taken");
            Ok(snapshot)
        })
        .await
    }

    /// Replaces the container with one made from `snapshot`, keeping its name, network aliases and
    /// host ports, and waits until it is ready again (the definition's waits).
    ///
    /// With a [standby](crate::standby) of this snapshot ready, the restore is a swap.
    pub async fn restore(&self, snapshot: &Snapshot) -> Result<()> {
        let inner = self.inner.clone();
        let snapshot = snapshot.clone();
        on_runtime(async move {
            if crate::standby::try_swap(&inner, &snapshot).await? {
                return Ok(());
            }
            restore_here(&inner, &snapshot).await?;
            let standby = inner
                .standby
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(state) = standby {
                let ports = inner
                    .ports
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                state.follow(inner.session.engine().host(), &ports);
            }
            Ok(())
        })
        .await
    }
}

async fn snapshot_paused(inner: &Inner, name: &str, keep: bool) -> Result<Snapshot> {
    let docker = inner.docker();
    let id = inner.name.clone();
    flush(inner).await?;
    let tmpfs = capture_tmpfs(inner).await?;
    docker
        .pause_container(&id)
        .await
        .map_err(|e| Error::docker(format!("pause container {} for a snapshot", inner.name), e))?;
    let result = capture(inner, name, keep, false, tmpfs).await;
    let unpaused = docker.unpause_container(&id).await.map_err(|e| {
        Error::docker(
            format!("unpause container {} after a snapshot", inner.name),
            e,
        )
    });
    let snapshot = result?;
    unpaused?;
    Ok(snapshot)
}

/// Runs the definition's snapshot flush (see
/// [`ContainerDefinition::with_snapshot_flush`](crate::ContainerDefinition::with_snapshot_flush)):
/// the service writes out what it holds only in memory, before the pause.
async fn flush(inner: &Inner) -> Result<()> {
    let Some(exec) = inner.definition.snapshot_flush.clone() else {
        return Ok(());
    };
    let line = exec.command_line();
    let out = crate::exec::exec_timed(inner, exec)
        .await
        .map_err(|e| Error::Container {
            container: inner.name.clone(),
            reason: format!("the snapshot flush `{line}` failed: {e}"),
        })?;
    if !out.success() {
        return Err(Error::Container {
            container: inner.name.clone(),
            reason: format!(
                "the snapshot flush `{line}` exited with {}: {}",
                out.exit_code,
                out.stderr_text().trim()
            ),
        });
    }
    Ok(())
}

/// The contents of the container's tmpfs mounts, as tar archives made by `tar` inside the container
/// (the engine's archive API sees the directory under a tmpfs, not the tmpfs), read while it runs.
async fn capture_tmpfs(inner: &Inner) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for m in &inner.definition.mounts {
        if !matches!(m.source, MountSource::Tmpfs { .. }) {
            continue;
        }
        let (parent, base) = match m.target.rsplit_once('/') {
            Some(("", b)) => ("/".to_string(), b.to_string()),
            Some((p, b)) => (p.to_string(), b.to_string()),
            None => ("/".to_string(), m.target.clone()),
        };
        let exec = crate::exec::Exec::new(["tar", "-cf", "-", "-C", &parent, &base]);
        let result = crate::exec::exec_here(inner.docker(), &inner.name, &inner.name, exec).await?;
        if !result.success() {
            return Err(Error::Container {
                container: inner.name.clone(),
                reason: format!(
                    "cannot snapshot the tmpfs at {}: reading it needs `tar` in the image ({})",
                    m.target,
                    result.stderr_text().trim()
                ),
            });
        }
        out.push((m.target.clone(), result.stdout));
    }
    Ok(out)
}

/// Commits the container and archives its volumes, and stores the tmpfs archives read before (the
/// container is paused or stopped by the caller).
async fn capture(
    inner: &Inner,
    name: &str,
    keep: bool,
    pause: bool,
    tmpfs: Vec<(String, Vec<u8>)>,
) -> Result<Snapshot> {
    let docker = inner.docker();
    let info = inspect_here(inner).await?;
    let targets: Vec<String> = info
        .mounts
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.typ.as_deref() == Some("volume"))
        .filter_map(|m| m.destination)
        .filter(|d| !tmpfs.iter().any(|(t, _)| t == d))
        .collect();
    let session = &inner.session;
    // A snapshot of a container shared by the run belongs to the run, like the container: its
    // image (which carries the container's run labels) and data outlive this process, for the
    // other processes of the run to restore, and the reaper removes them when the run is over.
    let run_owned = inner.definition.run_scoped && !keep;
    let namespace = if run_owned {
        format!("{}-shared", session.run_namespace())
    } else {
        session.namespace().to_string()
    };
    let repo = format!("{namespace}-snapshot");
    let tag = sanitize_tag(name);
    let image = format!("{repo}:{tag}");
    // Kept snapshots' data lives on; the others' is removed with the session (by namespace).
    let prefix = if keep { "kept-" } else { "" };
    let dir = crate::state::snapshot_dir().join(format!(
        "{prefix}{namespace}-{tag}-{:08x}",
        rand::random::<u32>()
    ));
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let mut volumes = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let archive = dir.join(format!("{i}.tar"));
        let bytes = download_to(inner, target, &archive).await?;
        volumes.push(VolumeData {
            target: target.clone(),
            archive,
            bytes,
        });
    }
    for (i, (target, data)) in tmpfs.into_iter().enumerate() {
        let archive = dir.join(format!("tmpfs-{i}.tar"));
        tokio::fs::write(&archive, &data)
            .await
            .map_err(|e| Error::io(format!("write {}", archive.display()), e))?;
        volumes.push(VolumeData {
            target,
            archive,
            bytes: data.len() as u64,
        });
    }
    let changes = if keep {
        // A kept snapshot must not be taken for the session's leftovers.
        Some("LABEL io.seaworthy.managed=false".to_string())
    } else {
        None
    };
    let committed = docker
        .commit_container(
            CommitContainerOptions {
                container: Some(inner.name.clone()),
                repo: Some(repo),
                tag: Some(tag),
                pause,
                changes,
                ..Default::default()
            },
            ContainerConfig::default(),
        )
        .await
        .map_err(|e| {
            Error::docker(
                format!("commit container {} as snapshot {name}", inner.name),
                e,
            )
        })?;
    let image_id = crate::engine::image_id(committed.id);
    if !keep && !run_owned {
        session.track(ResourceKind::Image, &image_id, &image);
    }
    Ok(Snapshot {
        name: name.to_string(),
        image_id,
        image,
        source: inner.name.clone(),
        volumes,
        consistency: Consistency::Paused,
        kept: keep,
    })
}

fn sanitize_tag(name: &str) -> String {
    let t: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let t = t.trim_start_matches(['.', '-']).to_string();
    if t.is_empty() {
        "snapshot".into()
    } else {
        t.chars().take(120).collect()
    }
}

async fn download_to(inner: &Inner, path: &str, file: &std::path::Path) -> Result<u64> {
    let mut stream = inner.docker().download_from_container(
        &inner.name,
        Some(DownloadFromContainerOptions {
            path: path.to_string(),
        }),
    );
    let mut out = tokio::fs::File::create(file)
        .await
        .map_err(|e| Error::io(format!("create {}", file.display()), e))?;
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| Error::docker(format!("archive {path} of container {}", inner.name), e))?;
        bytes += chunk.len() as u64;
        out.write_all(&chunk)
            .await
            .map_err(|e| Error::io(format!("write {}", file.display()), e))?;
    }
    out.flush()
        .await
        .map_err(|e| Error::io(format!("write {}", file.display()), e))?;
    Ok(bytes)
}

impl Snapshot {
    /// `base` made to start from this snapshot: its image, and each archived volume or tmpfs a
    /// fresh anonymous volume that the start path fills with the archive before the container
    /// starts (its copies: the definition's own files are in the image already).
    pub(crate) fn definition_over(&self, base: &ContainerDefinition) -> ContainerDefinition {
        let mut def = base.clone();
        def.image = self.image_id.clone();
        def.copies = self
            .volumes
            .iter()
            .map(|v| {
                let parent = match v.target.rsplit_once('/') {
                    Some(("", _)) | None => "/".to_string(),
                    Some((p, _)) => p.to_string(),
                };
                (parent, CopySource::Archive(v.archive.clone()))
            })
            .collect();
        for m in &mut def.mounts {
            if self.volumes.iter().any(|v| v.target == m.target) {
                m.source = MountSource::Anonymous;
                m.read_only = false;
            }
        }
        def
    }
}

/// `port` pinned to the host port it has now (`current`, by container port and protocol); see
/// [`restore_here`].
fn pin_port(port: &PortSpec, current: &HashMap<(u16, Protocol), u16>) -> PortSpec {
    if port.host_port.is_some() {
        return port.clone();
    }
    match current.get(&(port.container_port, port.protocol)) {
        Some(&chosen) => PortSpec {
            host_port: Some(chosen),
            host_ip: port.host_ip.clone().or_else(|| Some("0.0.0.0".into())),
            ..port.clone()
        },
        None => port.clone(),
    }
}

/// Replaces `inner`'s container with one created from `snapshot`.
pub(crate) async fn restore_here(inner: &std::sync::Arc<Inner>, snapshot: &Snapshot) -> Result<()> {
    let started = Instant::now();
    let old_id = inner.id();
    let mut def = snapshot.definition_over(&inner.definition);
    def.engine_name = Some(inner.name.clone());
    // Pin every published port to the host port it has now. A port the engine chose is pinned
    // on IPv4 alone, the address it was reported (and is reached) on: Docker 20.10 chooses the
    // IPv4 and IPv6 ports of a binding apart, so the same number on IPv6 may be another
    // container's, and a start that asks for both is refused ("Bind for :::PORT failed: port is
    // already allocated") for as long as that container lives.
    let current = inner
        .ports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    def.ports = def.ports.iter().map(|p| pin_port(p, &current)).collect();
    // The old container steps aside instead of being removed first: renamed (its name is the
    // new one's) and killed (its host ports are the new one's) while the new one is created and
    // filled with the snapshot's data; it is removed in the background (tracked until then, so
    // the exit path and the reaper remove it if this process goes first). Its removal (the
    // stop, the unmounts and deleting its volumes' data) is off the restore's path.
    let docker = inner.docker();
    let retired = crate::standby::retired_name(&inner.name);
    let stepped_aside = match docker
        .rename_container(
            &old_id,
            RenameContainerOptions {
                name: retired.clone(),
            },
        )
        .await
    {
        Ok(()) => true,
        // Gone already (removed behind Seaworthy's back): nothing to move out of the way.
        Err(e) if status_of(&e) == Some(404) => false,
        Err(e) => {
            return Err(Error::docker(
                format!("rename container {} aside for a restore", inner.name),
                e,
            ))
        }
    };
    inner.session.untrack(ResourceKind::Container, &old_id);
    if stepped_aside {
        inner
            .session
            .track(ResourceKind::Container, &old_id, &retired);
    }
    let kill = async {
        if !stepped_aside {
            return;
        }
        match docker
            .kill_container(&old_id, None::<KillContainerOptions>)
            .await
        {
            // Not running (409) or gone (404): its ports are free.
            Err(e) if !matches!(status_of(&e), Some(404) | Some(409)) => {
                tracing::debug!(container = %retired, error = %e, "restore: killing the old container failed; its removal follows");
            }
            // Gone: nothing holds its ports.
            Err(_) => {}
            // The kill returns once the signal is sent; the engine frees the host ports once it
            // has seen the exit, which on a busy machine can take seconds: wait for it (beside
            // the create), so the start below does not find its ports still held.
            Ok(()) => {
                let mut exited = docker.wait_container(
                    &old_id,
                    Some(WaitContainerOptions {
                        condition: "not-running".into(),
                    }),
                );
                let settle = std::time::Duration::from_secs(30);
                if tokio::time::timeout(settle, exited.next()).await.is_err() {
                    tracing::debug!(container = %retired, "restore: the old container had not stopped 30 s after its kill");
                }
            }
        }
    };
    let wait = def.wait.clone();
    let deadline = Instant::now() + def.startup_timeout;
    let create = Box::pin(crate::container::start::create_here(
        def,
        inner.session.clone(),
    ));
    let ((), fresh) = tokio::join!(kill, create);
    let started_fresh = async {
        let fresh = fresh?;
        let new_id = fresh.inner.id();
        // The fresh handle only carried the creation: `inner` owns the container from here on.
        fresh.disown();
        inner.set_id(new_id);
        tracing::debug!(container = %inner.name, elapsed = ?started.elapsed(), "restore: created with the data in place");
        // The old container's port forwarding (the engine's proxy processes) may take a while to
        // let go of the host ports we pin, longer on a busy machine: retry a start refused with
        // "port is already allocated" for up to 15 seconds, within the startup deadline.
        let give_up = deadline.min(Instant::now() + std::time::Duration::from_secs(15));
        loop {
            match crate::container::start::start_here(inner, wait.as_ref(), deadline).await {
                Err(e)
                    if Instant::now() < give_up
                        && e.to_string().contains("port is already allocated") =>
                {
                    tracing::debug!(container = %inner.name, elapsed = ?started.elapsed(), "restore: a host port is still held, start again");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => break other,
            }
        }
    }
    .await;
    // Once the new container is ready (or failed), so that its start does not share the engine
    // and the disk with the removal.
    if stepped_aside {
        inner
            .session
            .remove_in_background(ResourceKind::Container, old_id, retired);
    }
    started_fresh?;
    tracing::debug!(container = %inner.name, snapshot = %snapshot.name, elapsed = ?started.elapsed(), "restored");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::pin_port;
    use crate::spec::{PortSpec, Protocol};

    #[test]
    fn a_port_the_engine_chose_is_pinned_on_ipv4_and_a_users_port_is_kept() {
        let current = HashMap::from([((5432, Protocol::Tcp), 33913)]);
        let pinned = pin_port(&PortSpec::tcp(5432), &current);
        assert_eq!(pinned.host_port, Some(33913));
        assert_eq!(pinned.host_ip.as_deref(), Some("0.0.0.0"));
        // The user's own address and port stay as they were given.
        let local = PortSpec::parse("127.0.0.1::5432").unwrap();
        assert_eq!(
            pin_port(&local, &current).host_ip.as_deref(),
            Some("127.0.0.1")
        );
        let fixed = PortSpec::parse("8080:5432").unwrap();
        assert_eq!(pin_port(&fixed, &current), fixed);
        // A port with no known host port is left to the engine.
        assert_eq!(pin_port(&PortSpec::tcp(80), &current), PortSpec::tcp(80));
    }
}
