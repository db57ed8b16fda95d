//! Shared fixtures: one container for many tests, per process or per test run.
//!
//! ```no_run
//! use seaworthy::{Shared, SnapshotFixture, ContainerDefinition, Wait, Fixture};
//!
//! fn cache() -> SnapshotFixture {
//!     SnapshotFixture::new(
//!         ContainerDefinition::new("seaworthy-test/busybox")
//!             .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
//!             .with_wait(Wait::log("ready")),
//!     )
//! }
//! static CACHE: Shared<SnapshotFixture> = Shared::per_process(cache);
//!
//! #[tokio::test]
//! async fn uses_the_cache() -> seaworthy::Result<()> {
//!     let cache = CACHE.get().await?;          // started on first use, then reused
//!     cache.container().exec(["touch", "/tmp/x"]).await?;
//!     cache.clean().await?;                    // back to the baseline for the next test
//!     Ok(())
//! }
//! ```
//!
//! * [`Shared::per_process`]: started on first use, removed when the process exits (normally,
//!   after a failing test, or on SIGINT/SIGTERM; after SIGKILL the reaper removes it). Under
//!   `cargo test` that is one container per test binary.
//! * [`Shared::per_run`]: one container for every process of the test run (nextest runs each test
//!   in a process of its own). The first process to ask creates it under a cross-process file lock;
//!   the others find it by its labels (run id and the definition's [`key`](crate::FixtureDefinition::key)).
//!   It belongs to no process: the reaper removes it once the test runner process is gone.
//!
//! [`Shared::get`] hands out a guard that many tests may hold at once; [`Shared::exclusive`] waits
//! until no other test holds one and keeps the others out while it lives (for tests that need the
//! whole container, e.g. to clean it). Before handing out a guard, the container is checked (one
//! inspect): a container that died or was removed behind Seaworthy's back is replaced, and a line
//! on stderr says so.

use std::ops::Deref;
use std::sync::Arc;

use bollard::query_parameters::ListContainersOptions;
use tokio::sync::{Mutex, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::container::Container;
use crate::error::{Error, Result};
use crate::fixture::{Fixture, FixtureDefinition};
use crate::session::{on_runtime, Session, LABEL_FIXTURE, LABEL_OWNER, LABEL_SESSION, OWNER_RUN};

/// How widely a shared fixture is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One container per test process.
    Process,
    /// One container per test run, across processes.
    Run,
}

struct Slot<F> {
    fixture: F,
    gate: Arc<RwLock<()>>,
}

/// A fixture shared by the tests of a process or of a whole run. Declare it in a `static`.
pub struct Shared<D: FixtureDefinition> {
    make: fn() -> D,
    scope: Scope,
    slot: Mutex<Option<Arc<Slot<D::Fixture>>>>,
}

impl<D: FixtureDefinition> Shared<D> {
    /// Shared by the tests of this process; `make` describes the fixture.
    pub const fn per_process(make: fn() -> D) -> Self {
        Shared {
            make,
            scope: Scope::Process,
            slot: Mutex::const_new(None),
        }
    }

    /// Shared by every process of the test run.
    pub const fn per_run(make: fn() -> D) -> Self {
        Shared {
            make,
            scope: Scope::Run,
            slot: Mutex::const_new(None),
        }
    }

    /// The scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The fixture, started on first use (or replaced if its container is gone), for a test that
    /// shares it with others.
    pub async fn get(&self) -> Result<SharedGuard<D::Fixture>> {
        let slot = self.live_slot().await?;
        let lock = slot.gate.clone().read_owned().await;
        Ok(SharedGuard { slot, _lock: lock })
    }

    /// The fixture for a test that needs it alone: waits for the other holders to finish.
    pub async fn exclusive(&self) -> Result<ExclusiveGuard<D::Fixture>> {
        let slot = self.live_slot().await?;
        let lock = slot.gate.clone().write_owned().await;
        Ok(ExclusiveGuard { slot, _lock: lock })
    }

    async fn live_slot(&self) -> Result<Arc<Slot<D::Fixture>>> {
        let mut slot = self.slot.lock().await;
        if let Some(current) = slot.as_ref() {
            let container = current.fixture.container();
            match container.is_running().await {
                Ok(true) => return Ok(current.clone()),
                Ok(false) | Err(_) => {
                    let why = match container.inspect().await {
                        Ok(info) => format!(
                            "it is {}",
                            info.state
                                .and_then(|s| s.status)
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| "not running".into())
                        ),
                        Err(_) => "it was removed".to_string(),
                    };
                    eprintln!(
                        "seaworthy: the shared {} fixture's container {} is gone ({why}); starting a new one",
                        current.fixture.kind(),
                        container.name()
                    );
                    tracing::warn!(
                        fixture = current.fixture.kind(),
                        container = container.name(),
                        why,
                        "replacing a dead shared fixture"
                    );
                    *slot = None;
                }
            }
        }
        let definition = (self.make)();
        let fixture = match self.scope {
            Scope::Process => definition.start().await?,
            Scope::Run => {
                let session = Session::global().await?;
                definition.share_per_run(&session).await?
            }
        };
        let fresh = Arc::new(Slot {
            fixture,
            gate: Arc::new(RwLock::new(())),
        });
        *slot = Some(fresh.clone());
        Ok(fresh)
    }
}

/// A shared hold on a fixture; other tests may hold it at the same time.
pub struct SharedGuard<F> {
    slot: Arc<Slot<F>>,
    _lock: OwnedRwLockReadGuard<()>,
}

impl<F> Deref for SharedGuard<F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.slot.fixture
    }
}

/// An exclusive hold on a fixture; no other test holds it meanwhile.
pub struct ExclusiveGuard<F> {
    slot: Arc<Slot<F>>,
    _lock: OwnedRwLockWriteGuard<()>,
}

impl<F> Deref for ExclusiveGuard<F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.slot.fixture
    }
}

/// A short, stable hash of a definition key, used in labels, names and lock files.
pub(crate) fn key_hash(key: &str) -> String {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// Finds the run's container for `definition`, or creates it under a cross-process lock: the
/// default [`FixtureDefinition::share_per_run`].
pub(crate) async fn share_container_per_run<D: FixtureDefinition>(
    definition: D,
    session: Session,
) -> Result<D::Fixture> {
    let hash = key_hash(&definition.key());
    // The run's container: labelled with the definition's key, owned by the run, named for it.
    let mut shared_definition = definition
        .container_definition()
        .with_label(LABEL_FIXTURE, hash.clone());
    shared_definition.run_scoped = true;
    if shared_definition.name.is_none() {
        shared_definition.name = Some(format!("shared-{}", &hash[..8]));
    }
    if let Some(id) = find_run_container(&session, &hash).await? {
        let container = Container::attach(&session, &id, shared_definition).await?;
        return definition.attach(container).await;
    }
    let lock = run_lock(&session, &hash).await?;
    let result = async {
        if let Some(id) = find_run_container(&session, &hash).await? {
            let container = Container::attach(&session, &id, shared_definition).await?;
            return definition.attach(container).await;
        }
        let container = shared_definition.start_in(&session).await?;
        definition.attach(container).await
    }
    .await;
    drop(lock);
    result
}

/// The cross-process lock under which a process of the run finds or starts the fixture hashed
/// `hash`.
pub(crate) async fn run_lock(session: &Session, hash: &str) -> Result<std::fs::File> {
    crate::gc::lock_file(
        format!("run-{}-{hash}.lock", session.run_id()),
        "shared-fixture",
    )
    .await
}

/// The id of the running container shared by this run for the definition hashed `hash`; a
/// stopped one is removed so it can be replaced.
async fn find_run_container(session: &Session, hash: &str) -> Result<Option<String>> {
    let session = session.clone();
    let hash = hash.to_string();
    on_runtime(async move {
        let filters = std::collections::HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_SESSION}={}", session.run_id()),
                format!("{LABEL_OWNER}={OWNER_RUN}"),
                format!("{LABEL_FIXTURE}={hash}"),
            ],
        )]);
        let found = session
            .engine()
            .docker()
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| Error::docker("list the run's shared containers", e))?;
        for c in found {
            let id = c.id.unwrap_or_default();
            if c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING) {
                return Ok(Some(id));
            }
            eprintln!(
                "seaworthy: the run's shared container {id:.12} is not running; replacing it"
            );
            if let Some(name) = c.names.iter().flatten().next() {
                crate::snapshot::forget_run_baseline(name.trim_start_matches('/'));
            }
            crate::session::remove_now(
                session.engine(),
                crate::session::ResourceKind::Container,
                &id,
                &id,
            )
            .await?;
        }
        Ok(None)
    })
    .await
}
