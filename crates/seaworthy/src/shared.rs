//! Shared fixtures: one container for many tests, per process or per test run (see [`Shared`]).

use std::fs::File;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::container::Container;
use crate::error::{Error, Result};
use crate::fixture::{
    ContainerFixtureDefinition, Fixture, FixtureDefinition, FixtureError, Isolation,
};
use crate::runtime::on_runtime;
use crate::session::{ResourceKind, Session, LABEL_FIXTURE, LABEL_OWNER, LABEL_SESSION, OWNER_RUN};
use crate::stack_fixture::RunningStack;

/// How long a hand-out waits for other tests' holds.
const HOLD_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a process waits for a run's container that another process is starting or restoring.
const STARTING_TIMEOUT: Duration = Duration::from_secs(60);

/// How many log lines a failed test's report shows for each fixture it used.
const FAILURE_LOG_LINES: usize = 20;

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
    /// Known to be at the baseline: just started, with no holder since.
    at_baseline: AtomicBool,
    /// A holder failed: the next `fresh()` cleans whatever the fixture says.
    tainted: AtomicBool,
    /// Kept for inspection after a failure: the next hand-out starts a new fixture.
    retired: AtomicBool,
}

/// A fixture shared by the tests of a process or of a whole run. Declare it in a `static`.
///
/// Declare the fixture once, and take it in each test with the hand-out that says what the test
/// does with it. The safe default is [`Shared::fresh`]: the fixture for this test alone, at its
/// baseline *when the test starts*, whatever the test before it did (failed, panicked, returned
/// an error, or forgot to clean):
///
/// ```no_run
/// use seaworthy::{Shared, SnapshotFixture, ContainerDefinition, Wait, Fixture};
///
/// fn cache() -> SnapshotFixture {
///     SnapshotFixture::new(
///         ContainerDefinition::new("seaworthy-test/busybox")
///             .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
///             .with_wait(Wait::log("ready")),
///     )
/// }
/// static CACHE: Shared<SnapshotFixture> = Shared::per_process(cache);
///
/// #[tokio::test]
/// async fn uses_the_cache() -> seaworthy::Result<()> {
///     let cache = CACHE.fresh().await?;       // started on first use; at its baseline, ours alone
///     cache.container().exec(["touch", "/tmp/x"]).await?;
///     assert!(cache.container().file_exists("/tmp/x").await?);
///     Ok(())                                  // nothing to call: the next hand-out cleans
/// }
/// ```
///
/// `#[seaworthy::test]` does the same from a parameter: `async fn t(cache: &GenericFixture)`.
///
/// # The hand-outs
///
/// | hand-out | the test gets | others meanwhile | state at hand-out |
/// | --- | --- | --- | --- |
/// | [`fresh()`](Shared::fresh) | the whole fixture, alone | wait | the baseline: cleaned unless nothing changed since the last clean |
/// | [`isolated()`](Shared::isolated) | a namespace of its own ([`Isolation`]) | run in parallel, in other namespaces; `fresh`/`exclusive` wait | an empty namespace cloned from the baseline |
/// | [`exclusive()`](Shared::exclusive) | the whole fixture, alone | wait | as the last holder left it |
/// | [`get()`](Shared::get) | the whole fixture, shared | run in parallel on the same state | as the last holders left it |
///
/// A hand-out counts as a change unless the fixture can tell otherwise
/// ([`Fixture::unchanged_since_clean`]; PostgreSQL can, from its write-ahead log, so a hand-out
/// after a test that wrote nothing costs one query instead of a clean). A holder that panicked,
/// or whose test failed under `#[seaworthy::test]` (an error returned too), always counts as a
/// change, and its failure output names the fixture, its container and the container's last log
/// lines. With `SEAWORTHY_KEEP_ON_FAILURE=1` the failed test's container is kept as it was left
/// (renamed `…-kept-…`, listed on stderr, left alone by the reaper; `seaworthy gc --include-kept`
/// removes it; a stack is kept whole, every member) and the next test gets a new one.
///
/// # What a test holding `get()` may do
///
/// [`Shared::get`] hands the same state to every test that holds it at the same time: such tests
/// may **read** the baseline, and write only what no other test reads or counts (rows, keys,
/// queues, files under names of their own). They must not call [`Fixture::clean`] (it would wipe
/// what the others are doing: it is for a holder alone), change server-wide settings, or assert
/// on totals (row counts, `DBSIZE`, queue lists) that other tests change too. Nothing cleans up
/// after them: a `fresh()` hand-out later does. A test that needs more takes `fresh()` (alone,
/// at the baseline) or `isolated()` (a namespace of its own, in parallel).
///
/// # Scopes
///
/// * [`Shared::per_process`]: started on first use, removed when the process exits (normally,
///   after a failing test, or on SIGINT/SIGTERM; after SIGKILL the reaper removes it). Under
///   `cargo test` that is one container per test binary.
/// * [`Shared::per_run`]: one container for every process of the test run (nextest runs each test
///   in a process of its own). It is found, created and replaced only under a cross-process file
///   lock; a container another process is still starting (or restoring) is waited for, one that
///   exited is replaced. The hand-outs hold across processes too: `fresh()` and `exclusive()` wait
///   for the holders of every process of the run. It belongs to no process: the reaper removes it
///   once the test runner process is gone.
///
/// Before handing out a guard, the container is checked (one inspect; `fresh()` skips it when the
/// fixture has just answered through its protocol: it said it is unchanged, or its clean
/// succeeded): a container that died or was removed behind Seaworthy's back is replaced, and a
/// line on stderr says so. Every hand-out
/// waits at most 10 minutes for the holders before it fails and says which fixture it waited for.
pub struct Shared<D: FixtureDefinition> {
    make: fn() -> D,
    scope: Scope,
    slot: Mutex<Option<Arc<Slot<D::Fixture>>>>,
    gate: OnceLock<Arc<RwLock<()>>>,
    /// The hash of the definition's key, and whether it is reused: computed once (a definition
    /// may read files for them), for the holds across processes.
    identity: OnceLock<(String, bool)>,
}

impl<D: FixtureDefinition> Shared<D> {
    /// Shared by the tests of this process; `make` describes the fixture.
    pub const fn per_process(make: fn() -> D) -> Self {
        Shared {
            make,
            scope: Scope::Process,
            slot: Mutex::const_new(None),
            gate: OnceLock::new(),
            identity: OnceLock::new(),
        }
    }

    /// Shared by every process of the test run.
    pub const fn per_run(make: fn() -> D) -> Self {
        Shared {
            make,
            scope: Scope::Run,
            slot: Mutex::const_new(None),
            gate: OnceLock::new(),
            identity: OnceLock::new(),
        }
    }

    /// The scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The fixture for this test alone, at its baseline: waits for the other holders to finish,
    /// then cleans it unless it is known to be unchanged since its last clean (just started, or
    /// [`Fixture::unchanged_since_clean`] says so, and no holder since has failed). What the
    /// test leaves behind is cleaned by the next `fresh()`, so nothing has to be called at the
    /// end of the test, and a test that fails never hands its state to the next one.
    ///
    /// A fixture whose clean fails is replaced by a new one (per process), or the error is
    /// returned (per run: the run's container is shared with other processes).
    pub async fn fresh(&self) -> Result<ExclusiveGuard<D::Fixture>> {
        let hold = self.hold(true).await?;
        let run_taint = hold.take_run_taint();
        if let Some(slot) = self.current_slot().await {
            // A fixture that answers through its protocol is alive, so when it says it is
            // unchanged, or when its clean succeeds, the inspect of `live_slot` is not needed.
            let tainted = run_taint || slot.tainted.load(Ordering::SeqCst);
            if !tainted && slot.fixture.unchanged_since_clean().await.unwrap_or(false) {
                slot.at_baseline.store(false, Ordering::SeqCst);
                return Ok(ExclusiveGuard {
                    held: Held::new(slot, hold),
                });
            }
            if (tainted || !slot.at_baseline.load(Ordering::SeqCst))
                && slot.fixture.clean().await.is_ok()
            {
                slot.tainted.store(false, Ordering::SeqCst);
                slot.at_baseline.store(false, Ordering::SeqCst);
                return Ok(ExclusiveGuard {
                    held: Held::new(slot, hold),
                });
            }
            // The clean failed: the checked path below tells a dead container (replaced) from a
            // live fixture that cannot be cleaned (replaced per process, an error per run).
        }
        let mut slot = self.live_slot().await?;
        let tainted = slot.tainted.swap(false, Ordering::SeqCst) | run_taint;
        // Just started, or cleaned as it was found (a reused fixture taken over from an earlier
        // run): no second clean.
        let unchanged = !tainted
            && (slot.at_baseline.load(Ordering::SeqCst)
                || slot.fixture.unchanged_since_clean().await.unwrap_or(false));
        if !unchanged {
            if let Err(e) = slot.fixture.clean().await {
                if self.scope == Scope::Run {
                    return Err(e.into());
                }
                eprintln!(
                    "seaworthy: cleaning the shared {} fixture (container {}) failed: {e}; starting a new one",
                    slot.fixture.kind(),
                    slot.fixture.container().name()
                );
                slot.retired.store(true, Ordering::SeqCst);
                slot = self.live_slot().await?;
            }
        }
        slot.at_baseline.store(false, Ordering::SeqCst);
        Ok(ExclusiveGuard {
            held: Held::new(slot, hold),
        })
    }

    /// A namespace of this test's own in the shared fixture ([`Isolation::isolate`]: a
    /// database, a db index, a vhost), for tests that run in parallel. The guard keeps the
    /// fixture held as long as it lives, so no [`fresh`](Self::fresh) or
    /// [`exclusive`](Self::exclusive) holder (which may clean the whole server) runs meanwhile;
    /// dropping it releases the namespace, then the hold.
    pub async fn isolated(&self) -> Result<Isolated<D::Fixture>>
    where
        D::Fixture: Isolation,
    {
        let guard = self.get().await?;
        let namespace = guard.isolate().await.map_err(Into::into)?;
        Ok(Isolated {
            namespace: Some(namespace),
            guard,
        })
    }

    /// The fixture, started on first use (or replaced if its container is gone), for a test that
    /// shares it with others at the same time, in whatever state they leave it: see the
    /// [type's documentation](Shared) for what such a test may do. Prefer
    /// [`fresh`](Self::fresh) or [`isolated`](Self::isolated).
    pub async fn get(&self) -> Result<SharedGuard<D::Fixture>> {
        let hold = self.hold(false).await?;
        let slot = self.live_slot().await?;
        slot.at_baseline.store(false, Ordering::SeqCst);
        Ok(SharedGuard {
            held: Held::new(slot, hold),
        })
    }

    /// The fixture for a test that needs it alone: waits for the other holders to finish, and
    /// hands it out as they left it (without cleaning it: [`fresh`](Self::fresh) does).
    pub async fn exclusive(&self) -> Result<ExclusiveGuard<D::Fixture>> {
        let hold = self.hold(true).await?;
        let slot = self.live_slot().await?;
        slot.at_baseline.store(false, Ordering::SeqCst);
        Ok(ExclusiveGuard {
            held: Held::new(slot, hold),
        })
    }

    /// Waits for a hold: in this process, and for a fixture shared per run, across the run's
    /// processes too.
    async fn hold(&self, exclusive: bool) -> Result<Hold> {
        let gate = self.gate.get_or_init(|| Arc::new(RwLock::new(()))).clone();
        let what = || {
            format!(
                "wait for the shared fixture {} to be free (another test holds it)",
                std::any::type_name::<D>()
            )
        };
        let local = on_runtime(async move {
            tokio::time::timeout(HOLD_TIMEOUT, async move {
                if exclusive {
                    LocalHold::Exclusive(gate.write_owned().await)
                } else {
                    LocalHold::Shared(gate.read_owned().await)
                }
            })
            .await
        })
        .await
        .map_err(|_| Error::Timeout {
            action: what(),
            timeout: HOLD_TIMEOUT,
        })?;
        let run = match self.scope {
            Scope::Process => None,
            Scope::Run => {
                let session = Session::global().await?;
                let (hash, reuses) = self.identity.get_or_init(|| {
                    let definition = (self.make)();
                    (key_hash(&definition.key()), definition.reuses())
                });
                // A reused fixture outlives the run: the runs that use it take turns.
                let base = if *reuses {
                    crate::reuse::file_base(hash)
                } else {
                    run_file_base(&session, hash)
                };
                Some(RunHold::take(&base, exclusive, what()).await?)
            }
        };
        Ok(Hold { _local: local, run })
    }

    /// The fixture in use, if there is one (not checked).
    async fn current_slot(&self) -> Option<Arc<Slot<D::Fixture>>> {
        self.slot
            .lock()
            .await
            .as_ref()
            .filter(|slot| !slot.retired.load(Ordering::SeqCst))
            .cloned()
    }

    async fn live_slot(&self) -> Result<Arc<Slot<D::Fixture>>> {
        let mut slot = self.slot.lock().await;
        if let Some(current) = slot.as_ref() {
            if current.retired.load(Ordering::SeqCst) {
                *slot = None;
            }
        }
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
            Scope::Process => definition.start().await.map_err(Into::into)?,
            Scope::Run => {
                let session = Session::global().await?;
                definition
                    .share_per_run(&session)
                    .await
                    .map_err(Into::into)?
            }
        };
        let fresh = Arc::new(Slot {
            fixture,
            // Per run, another process may have used it already.
            at_baseline: AtomicBool::new(self.scope == Scope::Process),
            tainted: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        });
        *slot = Some(fresh.clone());
        Ok(fresh)
    }
}

/// A hold in this process.
enum LocalHold {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

/// A hold on a fixture: in this process, and across the run's processes for a per-run fixture.
struct Hold {
    _local: LocalHold,
    run: Option<RunHold>,
}

impl Hold {
    /// Whether a holder in another process of the run failed since the last `fresh()`; forgets it.
    fn take_run_taint(&self) -> bool {
        self.run.as_ref().is_some_and(RunHold::take_taint)
    }
}

/// A hold across the processes of the run: a shared or exclusive lock on the fixture's hold file.
struct RunHold {
    _file: File,
    /// Present while a holder's failure has not been cleaned up.
    taint: std::path::PathBuf,
    /// The ids of the run's containers kept for inspection, one a line.
    retired: std::path::PathBuf,
}

impl RunHold {
    async fn take(base: &str, exclusive: bool, what: String) -> Result<RunHold> {
        let dir = crate::gc::state_dir();
        let path = dir.join(format!("{base}.hold"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        let file = on_runtime(async move {
            let deadline = Instant::now() + HOLD_TIMEOUT;
            let mut pause = Duration::from_millis(1);
            loop {
                let taken = if exclusive {
                    file.try_lock()
                } else {
                    file.try_lock_shared()
                };
                match taken {
                    Ok(()) => return Ok(file),
                    Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(20));
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(Error::Timeout {
                            action: format!("{what} in another process of the run"),
                            timeout: HOLD_TIMEOUT,
                        })
                    }
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(Error::io(format!("lock {}", path.display()), e))
                    }
                }
            }
        })
        .await?;
        Ok(RunHold {
            _file: file,
            taint: dir.join(format!("{base}.tainted")),
            retired: dir.join(format!("{base}.retired")),
        })
    }

    fn take_taint(&self) -> bool {
        std::fs::remove_file(&self.taint).is_ok()
    }

    fn set_taint(&self) {
        let _ = File::create(&self.taint);
    }

    fn retire(&self, id: &str) {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.retired)
        {
            let _ = writeln!(f, "{id}");
        }
    }
}

/// The start of the names of the state files of the run's fixture hashed `hash` (removed with
/// the run's files by [`crate::gc::remove_run_files`]).
fn run_file_base(session: &Session, hash: &str) -> String {
    format!("run-{}-{hash}", session.run_id())
}

/// What every guard has: the fixture and the hold on it.
struct Held<F: Fixture> {
    slot: Arc<Slot<F>>,
    hold: Hold,
    failed: AtomicBool,
}

impl<F: Fixture> Held<F> {
    fn new(slot: Arc<Slot<F>>, hold: Hold) -> Self {
        Held {
            slot,
            hold,
            failed: AtomicBool::new(false),
        }
    }

    /// The holder's test failed: the fixture counts as changed, the failure output names it, and
    /// with `SEAWORTHY_KEEP_ON_FAILURE=1` (and `keep`) its container is kept and taken out of use.
    fn fail(&self, keep: bool) {
        if self.failed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.slot.tainted.store(true, Ordering::SeqCst);
        if let Some(run) = &self.hold.run {
            run.set_taint();
        }
        eprintln!(
            "{}",
            failure_report(self.slot.fixture.kind(), self.slot.fixture.container())
        );
        if keep && crate::session::keep_on_failure() {
            self.retire();
        }
    }

    /// Takes the fixture out of use, keeping its container as it is for inspection.
    fn retire(&self) {
        if self.slot.retired.swap(true, Ordering::SeqCst) {
            return;
        }
        // A stack is kept whole: every member, so the failed state can be inspected as it ran.
        let fixture: &dyn std::any::Any = &self.slot.fixture;
        let containers: Vec<&Container> = match fixture.downcast_ref::<RunningStack>() {
            Some(stack) => stack.stack().containers().map(|(_, c)| c).collect(),
            None => vec![self.slot.fixture.container()],
        };
        let names: Vec<String> = containers
            .into_iter()
            .map(|container| {
                let id = container.id();
                let name = keep_container(container);
                if let Some(run) = &self.hold.run {
                    run.retire(&id);
                }
                name
            })
            .collect();
        // The fixture is never dropped: its containers (and what they hold) stay as they are.
        std::mem::forget(self.slot.clone());
        eprintln!(
            "seaworthy: keeping the {} fixture's container{} {} as the failed test left {} (SEAWORTHY_KEEP_ON_FAILURE); the next test gets a new one; `seaworthy gc --include-kept` removes {}",
            self.slot.fixture.kind(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            if names.len() == 1 { "it" } else { "them" },
            if names.len() == 1 { "it" } else { "them" },
        );
    }
}

/// Keeps `container` as it is for inspection: renamed `…-kept-…`, no longer removed at exit or by
/// the reaper (`seaworthy gc --include-kept` removes it); returns its name.
fn keep_container(container: &Container) -> String {
    let id = container.id();
    let kept_name = format!("{}-kept-{}", container.name(), &key_hash(&id)[..6]);
    let docker = container.session().engine().docker().clone();
    let (renamed_id, new_name) = (id.clone(), kept_name.clone());
    let renamed = block_on_runtime(
        async move {
            docker
                .rename_container(
                    &renamed_id,
                    bollard::query_parameters::RenameContainerOptions { name: new_name },
                )
                .await
        },
        Duration::from_secs(10),
    );
    let session = container.session();
    session.untrack(ResourceKind::Container, &id);
    crate::state::record_kept(&id);
    // What it runs on is kept with it: its networks and its image (a snapshot's, after a
    // restore) are not removed under it at exit, and gc without `--include-kept` leaves them.
    let docker = session.engine().docker().clone();
    let inspected_id = id.clone();
    let used = block_on_runtime(
        async move { docker.inspect_container(&inspected_id, None).await },
        Duration::from_secs(10),
    );
    if let Some(Ok(info)) = used {
        let networks = info
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default();
        for network in networks.values().filter_map(|n| n.network_id.clone()) {
            session.untrack(ResourceKind::Network, &network);
            crate::state::record_kept(&network);
        }
        if let Some(image) = info.image {
            session.untrack(ResourceKind::Image, &image);
            crate::state::record_kept(&image);
        }
    }
    match renamed {
        Some(Ok(())) => kept_name,
        _ => container.name().to_string(),
    }
}

impl<F: Fixture> Drop for Held<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.fail(true);
        }
    }
}

/// Runs `fut` on Seaworthy's runtime and waits up to `timeout` for it, from synchronous code
/// (a guard dropped while its test panics); `None` if it did not finish.
fn block_on_runtime<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
    timeout: Duration,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    crate::runtime::spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv_timeout(timeout).ok()
}

/// What a failed test prints for a fixture it used: its kind, its container and the container's
/// last log lines.
pub(crate) fn failure_report(kind: &str, container: &Container) -> String {
    let inner = container.inner.clone();
    let tail = block_on_runtime(
        async move { crate::wait::log_tail(&inner, FAILURE_LOG_LINES).await },
        Duration::from_secs(6),
    )
    .unwrap_or_else(|| vec!["(the log could not be read within 6 s)".to_string()]);
    format!(
        "seaworthy: the test failed using the {kind} fixture, container {}\n--- last {} log lines of {} ---\n{}",
        container.name(),
        tail.len(),
        container.name(),
        tail.join("\n")
    )
}

/// A shared hold on a fixture ([`Shared::get`]); other tests may hold it at the same time.
pub struct SharedGuard<F: Fixture> {
    held: Held<F>,
}

impl<F: Fixture> SharedGuard<F> {
    /// Says that the test holding this guard failed (a panic says so by itself): the fixture
    /// counts as changed, and the failure output names it with its container's last log lines.
    /// `#[seaworthy::test]` calls it when the test returns an error.
    pub fn mark_failed(&self) {
        self.held.fail(true);
    }
}

impl<F: Fixture> Deref for SharedGuard<F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.held.slot.fixture
    }
}

/// An exclusive hold on a fixture ([`Shared::fresh`], [`Shared::exclusive`]); no other test
/// holds it meanwhile.
pub struct ExclusiveGuard<F: Fixture> {
    held: Held<F>,
}

impl<F: Fixture> ExclusiveGuard<F> {
    /// Says that the test holding this guard failed (a panic says so by itself): the next
    /// [`Shared::fresh`] cleans the fixture whatever it reports, the failure output names it with
    /// its container's last log lines, and with `SEAWORTHY_KEEP_ON_FAILURE=1` its container is
    /// kept as it is and later tests get a new one. `#[seaworthy::test]` calls it when the test
    /// returns an error.
    pub fn mark_failed(&self) {
        self.held.fail(true);
    }
}

impl<F: Fixture> Deref for ExclusiveGuard<F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.held.slot.fixture
    }
}

/// A test's own namespace in a shared fixture ([`Shared::isolated`]); it dereferences to the
/// fixture's [`Isolation::Isolated`] guard (`IsolatedDatabase`, `IsolatedRedis`, ...). While it
/// lives, the fixture is held (as by [`Shared::get`]): nothing cleans the whole server under it.
pub struct Isolated<F: Isolation> {
    // Dropped first: the namespace is released while the hold still keeps cleaners out.
    namespace: Option<F::Isolated>,
    guard: SharedGuard<F>,
}

impl<F: Isolation> Isolated<F> {
    /// The shared fixture the namespace lives in.
    pub fn fixture(&self) -> &F {
        &self.guard
    }

    /// Says that the test failed: the shared fixture counts as changed (the test may have
    /// changed server-wide state), the failure output names it, and with
    /// `SEAWORTHY_KEEP_ON_FAILURE=1` the namespace is kept as the test left it (the fixture stays
    /// in use by the other tests).
    pub fn mark_failed(&self) {
        self.guard.held.fail(false);
    }
}

impl<F: Isolation> Deref for Isolated<F> {
    type Target = F::Isolated;
    fn deref(&self) -> &F::Isolated {
        self.namespace
            .as_ref()
            .expect("the namespace lives as long as its guard")
    }
}

impl<F: Isolation> Drop for Isolated<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.mark_failed();
        }
        if self.guard.held.failed.load(Ordering::SeqCst) && crate::session::keep_on_failure() {
            if let Some(namespace) = self.namespace.take() {
                // Never released: what the test left in it stays for inspection.
                std::mem::forget(namespace);
                eprintln!(
                    "seaworthy: keeping the failed test's namespace in the {} fixture (container {}) as it was left (SEAWORTHY_KEEP_ON_FAILURE)",
                    self.guard.kind(),
                    self.guard.container().name()
                );
            }
        }
    }
}

/// A short, stable hash of a definition key, used in labels, names and lock files.
pub(crate) fn key_hash(key: &str) -> String {
    format!("{:016x}", crate::session::fnv1a(key.as_bytes()))
}

/// Finds the run's container for `definition`, or creates it: the default
/// [`FixtureDefinition::share_per_run`] of a [`ContainerFixtureDefinition`]. Both happen under the run's cross-process lock, which
/// the process that creates the container holds until it is started and attached: a container
/// found without a process holding the lock is never one that is still being created.
pub(crate) async fn share_container_per_run<D: ContainerFixtureDefinition>(
    definition: D,
    session: Session,
) -> std::result::Result<D::Fixture, FixtureError<D>> {
    // Made once (a definition's container may hash files: migrations for a reuse key).
    let container = definition.container_definition();
    container.validate()?;
    let hash = key_hash(&ContainerFixtureDefinition::key(&definition));
    if container.reuses() {
        return crate::reuse::share(definition, container, session, hash).await;
    }
    // The run's container: labelled with the definition's key, owned by the run, named for it.
    let mut shared_definition = container.with_label(LABEL_FIXTURE, hash.clone());
    shared_definition.run_scoped = true;
    if shared_definition.name.is_none() {
        shared_definition.name = Some(format!("shared-{}", &hash[..8]));
    }
    let lock = run_lock(&session, &hash).await?;
    let found = match find_run_container(&session, &hash).await {
        Ok(found) => found,
        Err(e) => {
            drop(lock);
            return Err(e.into());
        }
    };
    if let Some(id) = found {
        // Started and attached by its creator already: attaching needs no lock.
        drop(lock);
        let container = Container::attach(&session, &id, shared_definition).await?;
        return definition.attach(container).await;
    }
    let result = async {
        let container = shared_definition.start_in(&session).await?;
        definition.attach(container).await
    }
    .await;
    drop(lock);
    result
}

/// The cross-process lock under which a process of the run finds, starts or replaces the fixture
/// hashed `hash`.
pub(crate) async fn run_lock(session: &Session, hash: &str) -> Result<std::fs::File> {
    crate::state::lock_file(
        format!("run-{}-{hash}.lock", session.run_id()),
        "shared-fixture",
    )
    .await
}

/// What the engine says of a run's container that is not running.
enum Found {
    /// Running (or paused for a snapshot): use it.
    Usable,
    /// Being created, started or restored (by a `clean()` of another process): wait for it.
    Starting,
    /// Exited, dead, or being removed: replace it.
    Dead(String),
}

fn classify(state: Option<bollard::models::ContainerSummaryStateEnum>) -> Found {
    use bollard::models::ContainerSummaryStateEnum as S;
    match state {
        Some(S::RUNNING) | Some(S::PAUSED) => Found::Usable,
        Some(S::CREATED) | Some(S::RESTARTING) => Found::Starting,
        Some(other) => Found::Dead(other.to_string()),
        None => Found::Dead("in no state the engine names".into()),
    }
}

/// The id of the container shared by this run for the definition hashed `hash`; call it under
/// [`run_lock`]. A container another process is still starting or restoring is waited for (up
/// to a minute); one that exited or died is removed so it can be replaced; one kept for
/// inspection after a failed test is passed over.
async fn find_run_container(session: &Session, hash: &str) -> Result<Option<String>> {
    let session = session.clone();
    let hash = hash.to_string();
    let retired = std::fs::read_to_string(
        crate::gc::state_dir().join(format!("{}.retired", run_file_base(&session, &hash))),
    )
    .unwrap_or_default();
    on_runtime(async move {
        let deadline = Instant::now() + STARTING_TIMEOUT;
        loop {
            let labels = vec![
                format!("{LABEL_SESSION}={}", session.run_id()),
                format!("{LABEL_OWNER}={OWNER_RUN}"),
                format!("{LABEL_FIXTURE}={hash}"),
            ];
            let what = "list the run's shared containers";
            let found = crate::gc::containers_labelled(session.engine(), labels, what).await?;
            let mut starting = false;
            for c in found {
                let id = c.id.clone().unwrap_or_default();
                if retired.lines().any(|line| line == id) {
                    continue;
                }
                let why = match classify(c.state) {
                    Found::Usable => return Ok(Some(id)),
                    Found::Starting if Instant::now() < deadline => {
                        starting = true;
                        continue;
                    }
                    Found::Starting => format!("still not running after {STARTING_TIMEOUT:?}"),
                    Found::Dead(state) => format!("it is {state}"),
                };
                eprintln!(
                    "seaworthy: the run's shared container {id:.12} is gone ({why}); replacing it"
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
            if !starting {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}
