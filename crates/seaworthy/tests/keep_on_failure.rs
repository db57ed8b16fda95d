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
    ContainerDefinition, Fixture, GenericFixture, RunningStack, Session, Shared, SnapshotFixture,
    StackFixture, Wait,
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
    let c = run_files.container();
    c.write_file("/tmp/left-by-the-failed-test", "x", 0o644)
        .await
        .unwrap();
    println!("ID={}", c.id());
    panic!("deliberately failing");
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

fn web_and_client() -> StackFixture {
    common::web_and_client("keepstack")
}

static STACK: Shared<StackFixture> = Shared::per_process(web_and_client);

#[seaworthy::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_stack_1_fails(stack: &RunningStack) {
    stack
        .container()
        .write_file("/www/v", "dirty\n", 0o644)
        .await
        .unwrap();
    println!("ID={}", stack.container().id());
    panic!("deliberately failing");
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
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([filter, "--ignored", "--test-threads=1", "--nocapture"])
        .env("SEAWORTHY_KEEP_ON_FAILURE", "1")
        .env("SEAWORTHY_SESSION", run)
        .env_remove("CI")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

fn ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once("ID=").map(|(_, id)| id.trim().to_string()))
        .collect()
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
    let (kept, next) = (ids(&failed_text), ids(&passed_text));
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
    let ids = ids(&text);
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
