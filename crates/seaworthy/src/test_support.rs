//! What `#[seaworthy::test]` expands to calls: the runtime, the hand-outs by parameter kind,
//! failure handling and the policy for machines without an engine. Not a public API.

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::io::Write;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use futures_util::FutureExt;

use crate::container::Container;
use crate::definition::ContainerDefinition;
use crate::error::{Error, Result};
use crate::fixture::{Fixture, FixtureDefinition, Isolation};
use crate::identity::keep_on_failure;
use crate::shared::{failure_report, ExclusiveGuard, Isolated, Shared};

/// The opt-in that turns "cannot reach the engine" into a skip (ignored when `CI` is set).
pub const SKIP_WITHOUT_ENGINE: &str = "SEAWORTHY_SKIP_WITHOUT_ENGINE";

/// The runtime a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Flavor {
    /// One thread (the default, as `#[tokio::test]`).
    CurrentThread,
    /// A multi-threaded runtime with this many workers.
    MultiThread(usize),
}

/// Runs the test's future on a runtime of `flavor`.
pub fn run<R>(flavor: Flavor, test: impl Future<Output = R>) -> R {
    let mut builder = match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread(threads) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(threads);
            b
        }
    };
    match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(test),
        Err(e) => panic!("seaworthy::test: cannot start the test's Tokio runtime: {e}"),
    }
}

/// A test's result: `()` or `Result<(), E>` with `E: Debug`.
#[diagnostic::on_unimplemented(
    message = "a #[seaworthy::test] returns `()` or `Result<(), E>` where `E: Debug`, not `{Self}`",
    label = "write `-> anyhow::Result<()>`, `-> seaworthy::Result<()>` or no return type"
)]
pub trait TestResult {
    /// Whether the test failed.
    fn is_failure(&self) -> bool;
    /// The value a skipped test returns.
    fn skipped() -> Self;
}

impl TestResult for () {
    fn is_failure(&self) -> bool {
        false
    }
    fn skipped() -> Self {}
}

impl<E: Debug> TestResult for std::result::Result<(), E> {
    fn is_failure(&self) -> bool {
        self.is_err()
    }
    fn skipped() -> Self {
        Ok(())
    }
}

/// The body's outcome: its result, or the panic it raised.
pub type Outcome<R> = std::result::Result<R, Box<dyn Any + Send>>;

/// Runs the body, catching a panic so the fixtures it used can be reported before they go.
pub async fn catch<R>(body: impl Future<Output = R>) -> Outcome<R> {
    AssertUnwindSafe(body).catch_unwind().await
}

/// Whether the body panicked or returned a failure.
pub fn failed<R: TestResult>(outcome: &Outcome<R>) -> bool {
    match outcome {
        Ok(result) => result.is_failure(),
        Err(_) => true,
    }
}

/// Returns the body's result, or raises its panic again.
pub fn finish<R>(outcome: Outcome<R>) -> R {
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A shared fixture, declared once in a `static`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a shared fixture #[seaworthy::test] can hand out",
    label = "declare it as `static NAME: seaworthy::Shared<Definition> = seaworthy::Shared::per_process(definition);`"
)]
pub trait Source {
    /// The fixture it hands out.
    type Fixture: Fixture;
    /// The fixture at its baseline, for one test alone.
    fn fresh(&self) -> impl Future<Output = Result<ExclusiveGuard<Self::Fixture>>>;
    /// A namespace of one test's own.
    fn isolated(&self) -> impl Future<Output = Result<Isolated<Self::Fixture>>>
    where
        Self::Fixture: Isolation;
}

impl<D: FixtureDefinition> Source for Shared<D> {
    type Fixture = D::Fixture;
    fn fresh(&self) -> impl Future<Output = Result<ExclusiveGuard<D::Fixture>>> {
        Shared::fresh(self)
    }
    fn isolated(&self) -> impl Future<Output = Result<Isolated<D::Fixture>>>
    where
        D::Fixture: Isolation,
    {
        Shared::isolated(self)
    }
}

/// What a parameter's name resolves to when no `static` of that name is in scope: the attribute
/// denies its use at compile time (its note says what to write); if lints are capped, the test
/// fails with the same words.
pub struct Undeclared<F> {
    message: &'static str,
    fixture: PhantomData<fn() -> F>,
}

impl<F> Undeclared<F> {
    /// A stand-in whose hand-outs fail with `message`.
    pub const fn new(message: &'static str) -> Self {
        Undeclared {
            message,
            fixture: PhantomData,
        }
    }

    fn error(&self) -> Error {
        Error::Invalid {
            kind: "#[seaworthy::test] parameter",
            input: std::any::type_name::<F>().to_string(),
            reason: self.message.to_string(),
        }
    }
}

impl<F: Fixture> Source for Undeclared<F> {
    type Fixture = F;
    async fn fresh(&self) -> Result<ExclusiveGuard<F>> {
        Err(self.error())
    }
    async fn isolated(&self) -> Result<Isolated<F>>
    where
        F: Isolation,
    {
        Err(self.error())
    }
}

/// `name: &F`: the fixture at its baseline, for this test alone.
pub async fn fresh<S: Source>(source: &S) -> Result<ExclusiveGuard<S::Fixture>> {
    source.fresh().await
}

/// `name: &Isolated<F>`: a namespace of the test's own.
pub async fn isolated<S: Source>(source: &S) -> Result<Isolated<S::Fixture>>
where
    S::Fixture: Isolation,
{
    source.isolated().await
}

/// `name: &Container`: a container started from `fn name() -> ContainerDefinition`.
pub async fn container(definition: ContainerDefinition) -> Result<TestContainer> {
    Ok(TestContainer(Some(definition.start().await?)))
}

/// A container started for one test.
pub struct TestContainer(Option<Container>);

impl std::ops::Deref for TestContainer {
    type Target = Container;
    fn deref(&self) -> &Container {
        self.0
            .as_ref()
            .expect("the container lives until the test is over")
    }
}

/// What a failed test does with what it was given.
pub trait Used {
    /// The test failed: report it (and keep it, with `SEAWORTHY_KEEP_ON_FAILURE=1`).
    fn fail(&mut self);
}

impl<F: Fixture> Used for ExclusiveGuard<F> {
    fn fail(&mut self) {
        self.mark_failed();
    }
}

impl<F: Isolation> Used for Isolated<F> {
    fn fail(&mut self) {
        self.mark_failed();
    }
}

impl Used for TestContainer {
    fn fail(&mut self) {
        if let Some(container) = self.0.as_ref() {
            eprintln!("{}", failure_report("container", container));
        }
        if keep_on_failure() {
            if let Some(container) = self.0.take() {
                crate::state::record_kept(&container.id());
                container.keep();
            }
        }
    }
}

/// A hand-out failed before the test ran: the engine cannot be reached (skip or fail, by the
/// policy) or something else went wrong (fail).
pub fn unavailable<R: TestResult>(test: &str, error: Error) -> R {
    if error.is_engine_unavailable() {
        match skip_policy() {
            SkipPolicy::Skip => {
                record_skip(test);
                let error = error.to_string();
                let why = error.lines().next().unwrap_or_default();
                // Straight to the terminal: libtest captures print!, and a skip must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "seaworthy: SKIPPED {test}: no Docker engine ({why}); {SKIP_WITHOUT_ENGINE} is set"
                );
                return R::skipped();
            }
            SkipPolicy::FailOnCi => panic!(
                "{test}: {error}\n({SKIP_WITHOUT_ENGINE} is ignored because CI is set: a CI machine must have an engine)"
            ),
            SkipPolicy::Fail => panic!(
                "{test}: {error}\n(on a machine without Docker, {SKIP_WITHOUT_ENGINE}=1 skips such tests instead)"
            ),
        }
    }
    panic!("{test}: its fixtures could not be provided: {error}")
}

enum SkipPolicy {
    Skip,
    Fail,
    FailOnCi,
}

fn set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn skip_policy() -> SkipPolicy {
    match (set(SKIP_WITHOUT_ENGINE), set("CI")) {
        (true, false) => SkipPolicy::Skip,
        (true, true) => SkipPolicy::FailOnCi,
        (false, _) => SkipPolicy::Fail,
    }
}

static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SKIPS: AtomicUsize = AtomicUsize::new(0);

fn record_skip(test: &str) {
    static SUMMARY: Once = Once::new();
    SKIPPED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(test.to_string());
    SKIPS.fetch_add(1, Ordering::SeqCst);
    SUMMARY.call_once(|| {
        // SAFETY: registering a function without arguments that only writes to stderr.
        unsafe { libc::atexit(print_skip_summary) };
    });
}

extern "C" fn print_skip_summary() {
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let _ = writeln!(
        std::io::stderr(),
        "seaworthy: {} test{} SKIPPED, not run, because no Docker engine could be reached ({SKIP_WITHOUT_ENGINE} is set): {}",
        SKIPS.load(Ordering::SeqCst),
        if skipped.len() == 1 { "" } else { "s" },
        skipped.join(", ")
    );
}
