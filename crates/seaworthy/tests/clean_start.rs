//! Tests start clean by construction: a test that dirties a shared fixture and then fails hands
//! nothing to the next one, in either order, with threads (`cargo test`) or processes (`cargo
//! nextest run`: the fixtures are shared per run). Also how `fresh()` decides to clean, and the
//! kinds of parameter `#[seaworthy::test]` provides.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use seaworthy::{
    Container, ContainerDefinition, ContainerFixtureDefinition, Exec, Fixture, GenericFixture,
    RunningStack, Shared, SnapshotFixture, StackFixture,
};

fn files() -> SnapshotFixture {
    SnapshotFixture::new(common::sleeper())
}

static FILES: Shared<SnapshotFixture> = Shared::per_run(files);

async fn dirty_files(files: &GenericFixture) {
    let c = files.container();
    c.write_file("/tmp/dirt", "x", 0o644).await.unwrap();
    assert!(c.file_exists("/tmp/dirt").await.unwrap());
}

async fn assert_files_baseline(files: &GenericFixture) -> anyhow::Result<()> {
    let c = files.container();
    anyhow::ensure!(!c.file_exists("/tmp/dirt").await?, "/tmp/dirt survived");
    let out = c.exec(["ls", "/tmp"]).await?;
    anyhow::ensure!(out.stdout_text().trim().is_empty(), "/tmp: {out:?}");
    Ok(())
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn snapshot_1_dirties_then_panics(files: &GenericFixture) {
    dirty_files(files).await;
    panic!("deliberately, after dirtying the fixture");
}

#[seaworthy::test]
async fn snapshot_2_starts_at_the_baseline(files: &GenericFixture) -> anyhow::Result<()> {
    assert_files_baseline(files).await
}

#[seaworthy::test]
async fn snapshot_3_starts_at_the_baseline(files: &GenericFixture) -> anyhow::Result<()> {
    assert_files_baseline(files).await
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn snapshot_4_dirties_then_panics(files: &GenericFixture) {
    dirty_files(files).await;
    panic!("deliberately, after dirtying the fixture");
}

fn web_and_client() -> StackFixture {
    common::web_and_client("cleanstart")
}

static STACK: Shared<StackFixture> = Shared::per_run(web_and_client);

async fn dirty_stack(stack: &RunningStack) {
    stack
        .container()
        .write_file("/www/v", "dirty\n", 0o644)
        .await
        .unwrap();
    let client = stack.stack().container("client").unwrap();
    client.write_file("/tmp/dirt", "x", 0o644).await.unwrap();
}

async fn assert_stack_baseline(stack: &RunningStack) -> anyhow::Result<()> {
    let client = stack.stack().container("client")?;
    let out = client
        .exec(Exec::new(["wget", "-q", "-O", "-", "http://web/v"]))
        .await?;
    anyhow::ensure!(out.stdout_text() == "base\n", "web serves {out:?}");
    anyhow::ensure!(
        !client.file_exists("/tmp/dirt").await?,
        "client kept /tmp/dirt"
    );
    Ok(())
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn stack_1_dirties_then_panics(stack: &RunningStack) {
    dirty_stack(stack).await;
    panic!("deliberately, after dirtying the stack");
}

#[seaworthy::test]
async fn stack_2_starts_at_the_baseline(stack: &RunningStack) -> anyhow::Result<()> {
    assert_stack_baseline(stack).await
}

#[seaworthy::test]
async fn stack_3_starts_at_the_baseline(stack: &RunningStack) -> anyhow::Result<()> {
    assert_stack_baseline(stack).await
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn stack_4_dirties_then_panics(stack: &RunningStack) {
    dirty_stack(stack).await;
    panic!("deliberately, after dirtying the stack");
}

/// A container for one test, from a function named like the parameter.
fn web() -> ContainerDefinition {
    common::web_server("pong")
}

#[seaworthy::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_parameter_is_started_from_its_function(web: &Container) -> anyhow::Result<()> {
    let body = web.http(80)?.get("/ping").send().await?.text().await?;
    assert_eq!(body.trim(), "pong");
    assert!(tokio::runtime::Handle::current().metrics().num_workers() == 2);
    Ok(())
}

/// A fixture that always says it is unchanged and counts its cleans: what `fresh()` decides.
#[derive(Clone)]
struct Counting(Arc<AtomicUsize>);

struct CountingFixture {
    inner: GenericFixture,
    cleans: Arc<AtomicUsize>,
}

impl Fixture for CountingFixture {
    type Error = seaworthy::Error;

    fn kind(&self) -> &str {
        "counting"
    }
    fn container(&self) -> &Container {
        self.inner.container()
    }
    async fn clean(&self) -> seaworthy::Result<()> {
        self.cleans.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn connection(&self) -> seaworthy::ConnectionInfo {
        self.inner.connection()
    }
    async fn unchanged_since_clean(&self) -> seaworthy::Result<bool> {
        Ok(true)
    }
}

impl ContainerFixtureDefinition for Counting {
    type Fixture = CountingFixture;
    fn key(&self) -> String {
        "counting".into()
    }
    fn container_definition(&self) -> ContainerDefinition {
        common::sleeper()
    }
    async fn attach(&self, container: Container) -> seaworthy::Result<CountingFixture> {
        Ok(CountingFixture {
            inner: files().attach(container).await?,
            cleans: self.0.clone(),
        })
    }
}

fn counting() -> Counting {
    // One counter for the one fixture of the test below.
    static COUNTER: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();
    Counting(
        COUNTER
            .get_or_init(|| Arc::new(AtomicUsize::new(0)))
            .clone(),
    )
}

#[tokio::test]
async fn fresh_cleans_unless_nothing_changed_and_always_after_a_failure() {
    static COUNTED: Shared<Counting> = Shared::per_process(counting);
    let cleans = || counting().0.load(Ordering::SeqCst);

    let first = COUNTED.fresh().await.unwrap();
    assert_eq!(cleans(), 0, "just started: at the baseline already");
    let id = first.container().id();
    drop(first);
    let second = COUNTED.fresh().await.unwrap();
    assert_eq!(cleans(), 0, "the fixture says nothing changed");
    second.mark_failed();
    drop(second);
    let third = COUNTED.fresh().await.unwrap();
    assert_eq!(cleans(), 1, "a holder that failed counts as a change");
    drop(third);
    let panicked = tokio::spawn(async {
        let _held = COUNTED.fresh().await.unwrap();
        panic!("deliberately, holding the fixture");
    })
    .await;
    assert!(panicked.is_err());
    assert_eq!(cleans(), 1);
    let fourth = COUNTED.fresh().await.unwrap();
    assert_eq!(cleans(), 2, "a holder that panicked counts as a change");
    assert_eq!(fourth.container().id(), id, "the same container all along");
}

/// A test configured out takes its runner with it (this one names a fixture that does not exist).
#[seaworthy::test]
#[cfg(any())]
async fn configured_out(nowhere: &GenericFixture) {
    let _ = nowhere;
}
