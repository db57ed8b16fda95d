//! `SEAWORTHY_KEEP_ON_FAILURE=1` with a fixture shared per run (each test in a process of its own,
//! as nextest runs them) and with a stack: the failed test's container is kept as it was left,
//! labelled, named in the failure output; the next test gets a new one; and `seaworthy gc
//! --include-kept` (the library's `gc::collect` with `include_kept`) removes what was kept.
//! Each case runs ignored tests of this file in child processes and reads what they printed.

mod common;

use std::process::Output;

use seaworthy::gc::{collect, list_labelled, remove_run_files, GcOptions};
use seaworthy::session::{LABEL_MANAGED, LABEL_SESSION};
use seaworthy::{
    ConnectionInfo, Container, ContainerDefinition, ContainerFixtureDefinition, Fixture,
    GenericFixture, RunningStack, Session, Shared, SnapshotFixture, StackFixture, Wait,
};

fn run_files() -> SnapshotFixture {
    SnapshotFixture::new(
        ContainerDefinition::new(common::BUSYBOX)
            .with_cmd(["sh", "-c", "echo keep-per-run; exec sleep 3600"])
            .with_wait(Wait::log("^keep-per-run$")),
    )
}

static RUN_FILES: Shared<SnapshotFixture> = Shared::per_run(run_files);

#[seaworthy::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_run_fails(run_files: &GenericFixture) {
    common::dirty_and_fail(run_files.container(), "/tmp/left-by-the-failed-test", "x").await;
}

#[seaworthy::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_run_passes(run_files: &GenericFixture) -> anyhow::Result<()> {
    let c = run_files.container();
    anyhow::ensure!(
        !c.file_exists("/tmp/left-by-the-failed-test").await?,
        "the kept, dirty container was handed out"
    );
    println!("ID={}", c.id());
    Ok(())
}

/// A fixture cleaned in place (the same container before and after a clean), as the native
/// fixtures are: what a process that attached to the run's container before it was kept would
/// clean if it were handed out again.
#[derive(Clone)]
struct Scratch;

struct ScratchFixture(Container);

impl Fixture for ScratchFixture {
    type Error = seaworthy::Error;

    fn kind(&self) -> &str {
        "scratch"
    }
    fn container(&self) -> &Container {
        &self.0
    }
    async fn clean(&self) -> seaworthy::Result<()> {
        self.0.exec(["sh", "-c", "rm -rf /tmp/*"]).await?;
        Ok(())
    }
    fn connection(&self) -> ConnectionInfo {
        ConnectionInfo::new("tcp", self.0.host(), 0)
    }
}

impl ContainerFixtureDefinition for Scratch {
    type Fixture = ScratchFixture;
    fn key(&self) -> String {
        "keep-on-failure-scratch".into()
    }
    fn container_definition(&self) -> ContainerDefinition {
        ContainerDefinition::new(common::BUSYBOX)
            .with_cmd(["sh", "-c", "echo keep-scratch; exec sleep 3600"])
            .with_wait(Wait::log("^keep-scratch$"))
    }
    async fn attach(&self, container: Container) -> seaworthy::Result<ScratchFixture> {
        Ok(ScratchFixture(container))
    }
}

static SCRATCH: Shared<Scratch> = Shared::per_run(|| Scratch);

#[seaworthy::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_scratch_fails(scratch: &ScratchFixture) {
    common::dirty_and_fail(scratch.container(), "/tmp/left-by-the-failed-test", "x").await;
}

/// A process of the run that holds the fixture before another process's test fails with it, and
/// takes it again afterwards (when the file `SW_GO` names exists).
#[tokio::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_run_holder() {
    let first = SCRATCH.fresh().await.unwrap();
    println!("ID={}", first.container().id());
    drop(first);
    let go = std::path::PathBuf::from(std::env::var("SW_GO").unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !go.exists() {
        assert!(std::time::Instant::now() < deadline, "never told to go on");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let second = SCRATCH.fresh().await.unwrap();
    let c = second.container();
    assert!(!c.file_exists("/tmp/left-by-the-failed-test").await.unwrap());
    println!("ID={}", c.id());
}

fn web_and_client() -> StackFixture {
    common::web_and_client("keepstack")
}

static STACK: Shared<StackFixture> = Shared::per_process(web_and_client);

#[seaworthy::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_stack_1_fails(stack: &RunningStack) {
    common::dirty_and_fail(stack.container(), "/www/v", "dirty\n").await;
}

#[seaworthy::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_stack_2_passes(stack: &RunningStack) -> anyhow::Result<()> {
    let page = stack.container().read_file("/www/v").await?;
    anyhow::ensure!(page == b"base\n", "the kept, dirty stack was handed out");
    println!("ID={}", stack.container().id());
    Ok(())
}

/// Runs the ignored tests matching `filter` in a child process of the run `run`.
fn run_child(filter: &str, run: &str) -> (Output, String) {
    common::run_ignored_tests(
        filter,
        &[
            ("SEAWORTHY_KEEP_ON_FAILURE", "1"),
            ("SEAWORTHY_SESSION", run),
        ],
        &["CI"],
    )
}

/// Whether the file `path` exists in the container `id`.
fn file_in(id: &str, path: &str) -> bool {
    std::process::Command::new("docker")
        .args(["exec", id, "test", "-f", path])
        .status()
        .is_ok_and(|s| s.success())
}

fn run_id(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos:08x}{what}")
}

/// The kept container `id`: running, labelled as Seaworthy's, renamed `…-kept-…`, and named in
/// the failed test's output.
async fn assert_kept(session: &Session, id: &str, text: &str) {
    let kept = session
        .engine()
        .docker()
        .inspect_container(id, None)
        .await
        .unwrap_or_else(|e| panic!("the failed test's container {id} was not kept: {e}\n{text}"));
    let name = kept.name.unwrap_or_default();
    let name = name.trim_start_matches('/');
    assert!(name.contains("-kept-"), "{name}");
    assert_eq!(kept.state.and_then(|s| s.running), Some(true), "{name}");
    let labels = kept.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(
        labels.get(LABEL_MANAGED).map(String::as_str),
        Some("true"),
        "{labels:?}"
    );
    assert!(
        text.contains("the test failed using the"),
        "no failure report:\n{text}"
    );
    assert!(
        text.contains("keeping the") && text.contains(name),
        "the output does not name the kept container {name}:\n{text}"
    );
}

/// Removes the run's resources as `seaworthy gc --session <run> --all --include-kept` does, after
/// checking that without `--include-kept` the kept container `kept` is left alone.
async fn gc_run(session: &Session, run: &str, kept: &str) {
    let options = GcOptions {
        session: Some(run.to_string()),
        all: true,
        ..Default::default()
    };
    let report = collect(session.engine(), options.clone()).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        common::container_exists(session, kept).await,
        "gc without --include-kept removed the kept container"
    );
    let report = collect(
        session.engine(),
        GcOptions {
            include_kept: true,
            ..options
        },
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        report.removed.iter().any(|r| r.id == kept),
        "{:?}",
        report.removed
    );
    let left = list_labelled(session.engine(), &[(LABEL_SESSION, run)])
        .await
        .unwrap();
    assert!(left.is_empty(), "left after gc: {left:?}");
    remove_run_files(run);
}

#[tokio::test]
async fn per_run_a_failed_test_keeps_its_container_and_the_next_process_gets_a_new_one() {
    let session = Session::global().await.unwrap();
    let run = run_id("keeprun");
    let (failed, failed_text) = run_child("child_run_fails", &run);
    let (passed, passed_text) = run_child("child_run_passes", &run);
    let (kept, next) = (common::ids_in(&failed_text), common::ids_in(&passed_text));
    // Whatever is asserted below, the run's containers go.
    let cleanup = async {
        if let Some(kept) = kept.first() {
            gc_run(&session, &run, kept).await;
        }
    };
    let checks = async {
        assert_eq!(failed.status.code(), Some(101), "{failed_text}");
        assert_eq!(passed.status.code(), Some(0), "{passed_text}");
        assert_eq!(kept.len(), 1, "{failed_text}");
        assert_eq!(next.len(), 1, "{passed_text}");
        assert_ne!(kept[0], next[0], "the next process got the kept container");
        assert_kept(&session, &kept[0], &failed_text).await;
    };
    let checked = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(checks)).await;
    cleanup.await;
    if let Err(panic) = checked {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn a_stack_kept_after_a_failure_stays_whole_and_the_next_test_gets_a_new_one() {
    let session = Session::global().await.unwrap();
    let run = run_id("keepstack");
    let (output, text) = run_child("child_stack_", &run);
    let ids = common::ids_in(&text);
    let cleanup = async {
        if let Some(kept) = ids.first() {
            gc_run(&session, &run, kept).await;
        }
    };
    let checks = async {
        assert_eq!(output.status.code(), Some(101), "{text}");
        assert!(text.contains("1 passed; 1 failed"), "{text}");
        assert_eq!(ids.len(), 2, "{text}");
        assert_ne!(ids[0], ids[1], "the second test got the kept stack");
        assert_kept(&session, &ids[0], &text).await;
        // The whole stack is kept, not only its primary member: the client is still there.
        let members = list_labelled(session.engine(), &[(LABEL_SESSION, &run)])
            .await
            .unwrap();
        let containers = members
            .iter()
            .filter(|r| r.kind == seaworthy::ResourceKind::Container)
            .count();
        assert_eq!(containers, 2, "the kept stack lost members: {members:?}");
    };
    let checked = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(checks)).await;
    cleanup.await;
    if let Err(panic) = checked {
        std::panic::resume_unwind(panic);
    }
}

/// A process that attached to the run's container before another process's test failed with it
/// (and kept it) never hands it out again nor cleans it: the kept container is renamed, so that
/// process's next hand-out finds its container gone and takes a new one.
#[tokio::test]
async fn per_run_a_container_kept_by_another_process_is_never_handed_out_or_cleaned_again() {
    use std::io::{BufRead, BufReader};
    let session = Session::global().await.unwrap();
    let run = run_id("keepheld");
    let go = std::env::temp_dir().join(format!("{run}.go"));
    let mut holder = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_run_holder", "--ignored", "--nocapture"])
        .env("SEAWORTHY_SESSION", &run)
        .env("SW_GO", &go)
        .env_remove("CI")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = holder.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next_id = || -> Option<String> {
        while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(120)) {
            if let Some((_, id)) = line.split_once("ID=") {
                return Some(id.trim().to_string());
            }
        }
        None
    };
    let held = next_id();
    let (failed, text) = run_child("child_scratch_fails", &run);
    std::fs::write(&go, "").unwrap();
    let again = next_id();
    let holder_ok = holder.wait().unwrap().success();
    let _ = std::fs::remove_file(&go);
    let kept = common::ids_in(&text);
    let cleanup = async {
        if let Some(kept) = kept.first() {
            gc_run(&session, &run, kept).await;
        }
    };
    let checks = async {
        let held = held.expect("the holder printed no ID");
        assert_eq!(failed.status.code(), Some(101), "{text}");
        assert_eq!(
            kept.as_slice(),
            std::slice::from_ref(&held),
            "the failed test used another container:\n{text}"
        );
        assert!(holder_ok, "the holder failed");
        let again = again.expect("the holder printed no second ID");
        assert_ne!(
            again, held,
            "the holder got the container kept by the other process"
        );
        assert_kept(&session, &held, &text).await;
        assert!(
            file_in(&held, "/tmp/left-by-the-failed-test"),
            "the kept container was cleaned"
        );
    };
    let checked = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(checks)).await;
    cleanup.await;
    if let Err(panic) = checked {
        std::panic::resume_unwind(panic);
    }
}
