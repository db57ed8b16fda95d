//! Tests run at once, each on a thread and runtime of its own, as `#[tokio::test]`s are.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

/// Runs `test(id)` for each id of `ids` at once, each on a thread and a current-thread runtime
/// of its own (as `#[tokio::test]`s run), and returns what each returned, in the order of `ids`.
/// Every thread is joined before any failure is reported, so that one test's failure shows as
/// itself, not as the others' timeouts; then it panics naming each test that failed or
/// panicked. To hold what they take at the same time, give the tests a barrier of `ids.len()`.
pub fn run_on_threads<I, T, F, Fut>(ids: impl IntoIterator<Item = I>, test: F) -> Vec<T>
where
    I: Debug + Clone + Send + 'static,
    T: Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let test = Arc::new(test);
    let threads: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let test = Arc::clone(&test);
            let thread_id = id.clone();
            let thread = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(test(thread_id))
            });
            (id, thread)
        })
        .collect();
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for (id, thread) in threads {
        match thread.join() {
            Ok(Ok(value)) => results.push(value),
            Ok(Err(e)) => failures.push(format!("test {id:?}: {e:#}")),
            Err(_) => failures.push(format!("test {id:?}: its thread panicked")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    results
}
