//! What `#[seaworthy::test]` does when a test fails, and on a machine without an engine: each
//! case runs an ignored test of this file in a child process and reads what it printed.

mod common;

use seaworthy::{
    Container, ContainerDefinition, Fixture, GenericFixture, Shared, SnapshotFixture, Wait,
};

fn talker() -> ContainerDefinition {
    ContainerDefinition::new(common::BUSYBOX)
        .with_cmd([
            "sh",
            "-c",
            "echo first-line-of-the-log; echo ready; exec sleep 3600",
        ])
        .with_wait(Wait::log("^ready$"))
}

fn logger() -> SnapshotFixture {
    SnapshotFixture::new(talker())
}

static LOGGER: Shared<SnapshotFixture> = Shared::per_process(logger);

#[seaworthy::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_returns_an_error(logger: &GenericFixture) -> Result<(), String> {
    println!("ID={}", logger.container().id());
    Err("deliberately failing".into())
}

#[seaworthy::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_keep_1_fails(logger: &GenericFixture) {
    common::dirty_and_fail(logger.container(), "/tmp/left-by-the-failed-test", "x").await;
}

#[seaworthy::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_keep_2_gets_a_new_one(logger: &GenericFixture) {
    let c = logger.container();
    assert!(!c.file_exists("/tmp/left-by-the-failed-test").await.unwrap());
    println!("ID={}", c.id());
}

#[seaworthy::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child_without_engine(talker: &Container) {
    println!("the body ran with {}", talker.name());
}

#[tokio::test]
async fn a_failed_test_names_its_fixture_container_and_log_tail() {
    let (output, text) = common::run_ignored_tests(
        "child_returns_an_error",
        &[],
        &["SEAWORTHY_KEEP_ON_FAILURE"],
    );
    assert_eq!(output.status.code(), Some(101), "{text}");
    let id = &common::ids_in(&text)[0];
    assert!(
        text.contains("the test failed using the busybox fixture, container"),
        "{text}"
    );
    assert!(text.contains("first-line-of-the-log"), "{text}");
    assert!(text.contains("deliberately failing"), "{text}");
    let session = seaworthy::Session::global().await.unwrap();
    assert!(
        !common::container_exists(&session, id).await,
        "not kept without the variable"
    );
}

#[tokio::test]
async fn keep_on_failure_keeps_the_failed_state_and_the_next_test_gets_a_new_fixture() {
    let (output, text) =
        common::run_ignored_tests("child_keep_", &[("SEAWORTHY_KEEP_ON_FAILURE", "1")], &[]);
    let ids = common::ids_in(&text);
    assert_eq!(ids.len(), 2, "{text}");
    assert_ne!(
        ids[0], ids[1],
        "the second test got the kept fixture:\n{text}"
    );
    assert_eq!(output.status.code(), Some(101), "{text}");
    assert!(text.contains("1 passed; 1 failed"), "{text}");
    assert!(text.contains("-kept-"), "{text}");
    let session = seaworthy::Session::global().await.unwrap();
    let docker = session.engine().docker();
    let kept = docker.inspect_container(&ids[0], None).await;
    // Remove it before asserting: the test made it.
    let _ = docker
        .remove_container(
            &ids[0],
            Some(
                seaworthy::bollard::query_parameters::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                },
            ),
        )
        .await;
    let kept = kept.expect("the failed test's container was kept");
    assert!(kept.name.unwrap_or_default().contains("-kept-"));
    assert_eq!(kept.state.and_then(|s| s.running), Some(true));
    assert!(
        !common::container_exists(&session, &ids[1]).await,
        "the second one is removed"
    );
}

const CLOSED: &str = "unix:///nonexistent/seaworthy-closed.sock";

#[test]
fn without_an_engine_a_test_fails_by_default_and_says_so() {
    let (output, text) = common::run_ignored_tests(
        "child_without_engine",
        &[("DOCKER_HOST", CLOSED)],
        &["CI", "SEAWORTHY_SKIP_WITHOUT_ENGINE"],
    );
    assert_eq!(output.status.code(), Some(101), "{text}");
    // The engine's own error says what was tried (the message belongs to the engine module).
    assert!(
        text.contains(CLOSED.trim_start_matches("unix://")),
        "{text}"
    );
    assert!(
        text.contains("SEAWORTHY_SKIP_WITHOUT_ENGINE=1 skips"),
        "{text}"
    );
    assert!(!text.contains("the body ran"), "{text}");
}

#[test]
fn without_an_engine_the_opt_in_skips_and_counts_the_skips_at_exit() {
    let (output, text) = common::run_ignored_tests(
        "child_without_engine",
        &[
            ("DOCKER_HOST", CLOSED),
            ("SEAWORTHY_SKIP_WITHOUT_ENGINE", "1"),
        ],
        &["CI"],
    );
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("seaworthy: SKIPPED test_attribute::child_without_engine: no Docker engine"),
        "{text}"
    );
    assert!(
        text.contains(
            "seaworthy: 1 test SKIPPED, not run, because no Docker engine could be reached"
        ),
        "{text}"
    );
    assert!(!text.contains("the body ran"), "{text}");
}

#[test]
fn without_an_engine_on_ci_the_opt_in_is_ignored() {
    let (output, text) = common::run_ignored_tests(
        "child_without_engine",
        &[
            ("DOCKER_HOST", CLOSED),
            ("SEAWORTHY_SKIP_WITHOUT_ENGINE", "1"),
            ("CI", "true"),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(101), "{text}");
    assert!(text.contains("ignored because CI is set"), "{text}");
    assert!(!text.contains("SKIPPED"), "{text}");
}
