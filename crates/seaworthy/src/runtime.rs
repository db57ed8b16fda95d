//! Seaworthy's own runtime, which carries every engine call; fixtures run their clients' tasks on
//! it.
//!
//! Each `#[tokio::test]` runs its own Tokio runtime, and a handle may outlive the runtime that made
//! it (a fixture in a `static`, a container dropped while a test unwinds). So every engine call runs
//! on this small runtime owned by the library (two worker threads): public async methods spawn
//! their work here and await the join handle, which works from any runtime, and `Drop` hands work
//! to it without blocking.

use std::future::Future;
use std::sync::OnceLock;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The library's runtime: two worker threads that carry every engine call.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("seaworthy")
            .enable_all()
            .build()
            .expect("the Seaworthy runtime could not start (out of threads?)")
    })
}

/// Spawns `fut` on Seaworthy's own runtime. Fixtures start their clients' connection tasks here,
/// so the clients keep working whichever runtime (each `#[tokio::test]` has its own) uses them.
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(fut)
}

/// Runs `fut` on Seaworthy's own runtime and waits for it, from any runtime.
pub async fn run<F, T>(fut: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    on_runtime(fut).await
}

/// Runs `fut` on the library's runtime and waits for it from any runtime (or none).
pub(crate) async fn on_runtime<F, T>(fut: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    match runtime().spawn(fut).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("Seaworthy's runtime stopped while a call was running: {e}"),
    }
}
