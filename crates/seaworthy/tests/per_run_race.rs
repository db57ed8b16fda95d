//! A fixture shared per run, asked for by processes started a little apart, as cargo-nextest
//! starts them: every process must get the one container, and none may remove a container that
//! another process is still starting.

mod common;

use std::process::Child;
use std::time::Duration;

use common::{child_command, read_ids};
use seaworthy::gc::list_labelled;
use seaworthy::session::{LABEL_OWNER, LABEL_SESSION};
use seaworthy::{ContainerDefinition, Fixture, Session, Shared, SnapshotFixture, Wait};

/// Slow to start (as a real service is): the window between create and ready is wide.
fn slow_starter() -> SnapshotFixture {
    SnapshotFixture::new(
        ContainerDefinition::new(common::BUSYBOX)
            .with_cmd(["sh", "-c", "sleep 0.4; echo ready; exec sleep 3600"])
            .with_wait(Wait::log("^ready$")),
    )
}

static SLOW: Shared<SnapshotFixture> = Shared::per_run(slow_starter);

#[tokio::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child() {
    if std::env::var("SW_CHILD").is_err() {
        return;
    }
    let fixture = SLOW.get().await.unwrap();
    let container = fixture.container();
    assert!(container.is_running().await.unwrap());
    let out = container.exec(["echo", "alive"]).await.unwrap();
    assert_eq!(out.stdout_text().trim(), "alive");
    println!("ID={}", container.id());
}

#[tokio::test]
async fn processes_started_apart_share_one_container_and_kill_none() {
    // Before the fix, staggers of 25-40 ms killed the container of the first process (exit
    // code 137) in most rounds; each round is a test run of its own.
    for stagger in [20, 30, 45] {
        one_round(Duration::from_millis(stagger)).await;
    }
}

async fn one_round(stagger: Duration) {
    let session = Session::global().await.unwrap();
    let run = format!("{:08x}staggered", rand_u32());
    let mut children: Vec<Child> = Vec::new();
    for _ in 0..6 {
        children.push(
            child_command("child", "staggered")
                .env("SEAWORTHY_SESSION", &run)
                .spawn()
                .unwrap(),
        );
        // nextest starts its processes one after another, a few tens of milliseconds apart.
        std::thread::sleep(stagger);
    }
    let mut ids = Vec::new();
    let mut failures = Vec::new();
    for (n, child) in children.iter_mut().enumerate() {
        let id = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_ids(child)));
        let status = child.wait().unwrap();
        match id {
            Ok(id) if status.success() => ids.push(id[0].clone()),
            Ok(_) => failures.push(format!("process {n} failed: {status}")),
            Err(e) => failures.push(format!(
                "process {n} failed: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            )),
        }
    }
    let found = list_labelled(
        session.engine(),
        &[(LABEL_SESSION, &run), (LABEL_OWNER, "run")],
    )
    .await
    .unwrap();
    let containers = found
        .iter()
        .filter(|r| r.kind == seaworthy::ResourceKind::Container)
        .count();
    let mut report = seaworthy::gc::GcReport::default();
    seaworthy::gc::remove_all(session.engine(), found, &mut report).await;
    seaworthy::gc::remove_run_files(&run);
    assert!(
        failures.is_empty(),
        "processes {stagger:?} apart: {}",
        failures.join("\n")
    );
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(containers, 1, "the run made more than one container");
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ std::process::id()
}
