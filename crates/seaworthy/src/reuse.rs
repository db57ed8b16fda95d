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
//!   ([`Fixture::clean`]) before any test gets it (the other processes
//!   of the run take it as their run uses it: a state file names the run that took it last); a
//!   container whose clean fails is replaced.
//! * **A changed baseline is noticed.** A later run reads the fixture's baseline record from a
//!   copy kept on the host ([`Baseline::load_or_revise_stamped`](crate::kit::Baseline::load_or_revise_stamped))
//!   only while the server reports the state the copy was taken from (PostgreSQL: its start
//!   time and its template database's version); a restarted container, a baseline recorded
//!   again or a damaged copy reads the container's record.
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

use sha2::{Digest, Sha256};

use crate::container::Container;
use crate::definition::SessionNetwork;
use crate::error::Result;
use crate::fixture::{ContainerFixtureDefinition, Fixture, FixtureError};
use crate::session::{
    ResourceKind, Session, LABEL_FIXTURE, LABEL_MANAGED, LABEL_OWNER, OWNER_REUSE,
};

pub use crate::session::reused::{
    collect, configured_idle, configured_max, list, ReuseGcOptions, ReusedContainer, DEFAULT_IDLE,
    ENV_REUSE, ENV_REUSE_IDLE, ENV_REUSE_MAX, LABEL_REUSE_KEY,
};
pub(crate) use crate::session::reused::{file_base, touch_used};

/// The reuse key of `definition`, whose container definition is `container` (64 hex digits).
fn reuse_key<D: ContainerFixtureDefinition>(
    definition: &D,
    container: &crate::ContainerDefinition,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        "seaworthy-reuse/v1".to_string(),
        ContainerFixtureDefinition::key(definition),
        container.key(),
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Finds the reused container of `definition` (whose container definition is `container`) and
/// cleans it, or creates it: what [`share_per_run`](crate::FixtureDefinition::share_per_run)
/// does for a definition that [reuses](crate::ContainerDefinition::reuses).
pub(crate) async fn share<D: ContainerFixtureDefinition>(
    definition: D,
    container: crate::ContainerDefinition,
    session: Session,
    hash: String,
) -> std::result::Result<D::Fixture, FixtureError<D>> {
    let key = reuse_key(&definition, &container);
    let mut container_def = container
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
                crate::state::remove_baseline_copies(&id);
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
    let labels = vec![
        format!("{LABEL_MANAGED}=true"),
        format!("{LABEL_OWNER}={OWNER_REUSE}"),
        format!("{LABEL_REUSE_KEY}={key}"),
    ];
    // The image's id is asked for beside the list (one wait for both).
    let (found, current_image) = tokio::join!(
        crate::gc::containers_labelled(engine, labels, "list reused containers"),
        current_image_id(session, def)
    );
    let found = found?;
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
            match &current_image {
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
                crate::state::remove_baseline_copies(&id);
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
