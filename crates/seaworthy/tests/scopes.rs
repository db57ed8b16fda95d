//! Shared fixtures across tests and processes, and cleanup whatever ends the process.
//!
//! The cross-process tests re-run this test binary as a child (`--exact child_… --ignored`) with
//! `SW_CHILD` saying what the child should do; the child prints `ID=<container id>` once its
//! fixture is up.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{container_exists, read_ids, sleeper};
use seaworthy::gc::list_labelled;
use seaworthy::session::{LABEL_FIXTURE, LABEL_OWNER, LABEL_SESSION};
use seaworthy::{ContainerDefinition, Fixture, Session, Shared, SnapshotFixture, Wait};

fn busybox_fixture() -> SnapshotFixture {
    SnapshotFixture::new(sleeper())
}

static PER_PROCESS: Shared<SnapshotFixture> = Shared::per_process(busybox_fixture);
static PER_RUN: Shared<SnapshotFixture> = Shared::per_run(busybox_fixture);

/// The child side: does what `SW_CHILD` says. Ignored in normal runs.
#[tokio::test]
#[ignore = "run as a child process by the tests of this file"]
async fn child() {
    let Ok(mode) = std::env::var("SW_CHILD") else {
        return;
    };
    match mode.as_str() {
        "per_process" | "panic" | "wait_for_signal" => {
            let fixture = PER_PROCESS.get().await.unwrap();
            println!("ID={}", fixture.container().id());
            if mode == "panic" {
                panic!("a failing test holding a shared fixture");
            }
            if mode == "wait_for_signal" {
                tokio::time::sleep(Duration::from_secs(120)).await;
            }
        }
        "per_run" => {
            let fixture = PER_RUN.get().await.unwrap();
            println!("ID={}", fixture.container().id());
        }
        "per_run_clean" => {
            // The baseline was taken by another process of the run, which has exited since.
            let fixture = PER_RUN.get().await.unwrap();
            let container = fixture.container();
            let before = container.id();
            container
                .write_file("/tmp/dirty", "x", 0o644)
                .await
                .unwrap();
            fixture.clean().await.unwrap();
            assert!(!container.file_exists("/tmp/dirty").await.unwrap());
            println!("ID={before} {}", container.id());
        }
        "killed" => {
            let fixture = PER_RUN.get().await.unwrap();
            let own = sleeper().start().await.unwrap();
            let net = seaworthy::NetworkDefinition::new("killed")
                .create()
                .await
                .unwrap();
            let vol = seaworthy::VolumeDefinition::new("killed")
                .create()
                .await
                .unwrap();
            println!(
                "ID={} {} {} {}",
                fixture.container().id(),
                own.id(),
                net.id(),
                vol.name()
            );
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        "own_only" => {
            let own = sleeper().start().await.unwrap();
            println!("ID={}", own.id());
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        other => panic!("unknown SW_CHILD mode {other}"),
    }
}

fn child_command(mode: &str) -> Command {
    common::child_command("child", mode)
}

#[tokio::test]
async fn shared_per_process_is_removed_when_the_process_exits_normally() {
    let session = Session::global().await.unwrap();
    let mut child = child_command("per_process").spawn().unwrap();
    let ids = read_ids(&mut child);
    assert!(child.wait().unwrap().success());
    // Removed by the exit hook before the process ended, not later by the reaper.
    assert!(!container_exists(&session, &ids[0]).await);
}

#[tokio::test]
async fn shared_per_process_is_removed_after_a_failing_test() {
    let session = Session::global().await.unwrap();
    let mut child = child_command("panic").spawn().unwrap();
    let ids = read_ids(&mut child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(101), "the child test should fail");
    assert!(!container_exists(&session, &ids[0]).await);
}

#[tokio::test]
async fn shared_per_process_is_removed_after_sigterm() {
    let session = Session::global().await.unwrap();
    let mut child = child_command("wait_for_signal").spawn().unwrap();
    let ids = read_ids(&mut child);
    assert!(container_exists(&session, &ids[0]).await);
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(!container_exists(&session, &ids[0]).await);
}

#[tokio::test]
async fn shared_per_run_is_started_once_by_four_processes_and_cleaned_by_a_fifth() {
    let session = Session::global().await.unwrap();
    let run = format!("{:08x}sharedrun", rand_u32());
    let mut children: Vec<Child> = (0..4)
        .map(|_| {
            child_command("per_run")
                .env("SEAWORTHY_SESSION", &run)
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = children.iter_mut().map(|c| read_ids(c).remove(0)).collect();
    for c in &mut children {
        assert!(c.wait().unwrap().success());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    // A fifth process, once the others are gone, cleans it back to the baseline they recorded.
    let mut cleaner = child_command("per_run_clean")
        .env("SEAWORTHY_SESSION", &run)
        .spawn()
        .unwrap();
    let cleaned = read_ids(&mut cleaner);
    assert!(cleaner.wait().unwrap().success());
    assert_eq!(cleaned[0], ids[0]);
    let found = list_labelled(
        session.engine(),
        &[(LABEL_SESSION, &run), (LABEL_OWNER, "run")],
    )
    .await
    .unwrap();
    let containers: Vec<_> = found
        .iter()
        .filter(|r| r.kind == seaworthy::ResourceKind::Container)
        .collect();
    assert_eq!(containers.len(), 1, "{found:?}");
    assert!(containers[0].labels.contains_key(LABEL_FIXTURE));
    assert_eq!(
        containers[0].id, cleaned[1],
        "the restored container is the run's"
    );
    // The run (this test plays the runner) is over: remove what it shared.
    let mut report = seaworthy::gc::GcReport::default();
    seaworthy::gc::remove_all(session.engine(), found, &mut report).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    seaworthy::gc::remove_run_files(&run);
}

#[tokio::test]
async fn sigkill_leaves_nothing_of_the_session_15s_after_death() {
    let session = Session::global().await.unwrap();
    let run = format!("{:08x}killedrun", rand_u32());
    // A shell plays the test runner, so the run ends when it is killed too.
    let exe = std::env::current_exe().unwrap();
    let mut runner = Command::new("sh")
        .args([
            "-c",
            "\"$0\" --exact child --ignored --nocapture --test-threads=1 & echo PID=$!; wait",
        ])
        .arg(&exe)
        .env("SW_CHILD", "killed")
        .env("SEAWORTHY_SESSION", &run)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = runner.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut test_pid = None;
    let mut ids = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        // The shell's echo may land after libtest's "test child ... " on the same line.
        if let Some((_, pid)) = line.split_once("PID=") {
            test_pid = Some(pid.trim().parse::<i32>().unwrap());
            continue;
        }
        if let Some(rest) = line.split_once("ID=").map(|(_, ids)| ids) {
            ids = rest
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>();
            break;
        }
    }
    assert_eq!(ids.len(), 4, "the child did not report its resources");
    let labelled = list_labelled(session.engine(), &[(LABEL_SESSION, &run)])
        .await
        .unwrap();
    assert!(labelled.len() >= 4, "{labelled:?}");
    // SAFETY: killing our own child processes.
    unsafe {
        libc::kill(test_pid.unwrap(), libc::SIGKILL);
        libc::kill(runner.id() as i32, libc::SIGKILL);
    }
    let died = Instant::now();
    let _ = runner.wait();
    loop {
        let left = list_labelled(session.engine(), &[(LABEL_SESSION, &run)])
            .await
            .unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            died.elapsed() < Duration::from_secs(15),
            "still there 15 s after SIGKILL: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "everything of the killed session was removed {:?} after SIGKILL",
        died.elapsed()
    );
}

/// A Unix socket that forwards to the engine's, for as long as it lives: a way to make the
/// engine unreachable for one process without stopping it.
struct EngineForwarder {
    path: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl EngineForwarder {
    fn start(path: &std::path::Path) -> EngineForwarder {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let task = tokio::spawn(async move {
            // Dropped with the task: every forwarded connection ends with it.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut engine) =
                        tokio::net::UnixStream::connect("/var/run/docker.sock").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut engine).await;
                    }
                });
            }
        });
        EngineForwarder {
            path: path.to_path_buf(),
            task,
        }
    }
}

impl Drop for EngineForwarder {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

// Multi-threaded: the forwarder keeps serving while this test blocks reading the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_waits_for_an_engine_that_is_unreachable_when_its_owner_dies() {
    let session = Session::global().await.unwrap();
    let run = format!("{:08x}unreachable", rand_u32());
    let socket = std::env::temp_dir().join(format!("{run}.sock"));
    let forwarder = EngineForwarder::start(&socket);
    let mut child = child_command("own_only")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("SEAWORTHY_SESSION", &run)
        .spawn()
        .unwrap();
    let id = read_ids(&mut child).remove(0);
    assert!(container_exists(&session, &id).await);
    // The engine becomes unreachable for the child and its reaper; then the child dies.
    drop(forwarder);
    child.kill().unwrap();
    let _ = child.wait();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still_there = container_exists(&session, &id).await;
    // The engine answers again: the reaper, still trying, removes the container.
    let _forwarder = EngineForwarder::start(&socket);
    let back = Instant::now();
    let mut gone = false;
    while back.elapsed() < Duration::from_secs(15) {
        if !container_exists(&session, &id).await {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !gone {
        let _ = session
            .engine()
            .docker()
            .remove_container(
                &id,
                Some(
                    seaworthy::bollard::query_parameters::RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    },
                ),
            )
            .await;
    }
    // The reaper goes on with the run's networks and volumes after the container: the endpoint
    // stays up until it has finished, or it would be left retrying against a dead socket.
    let endpoint = format!("SEAWORTHY_REAPER_ENDPOINT=unix://{}", socket.display());
    let reaper_done = wait_until_no_process_has(&endpoint, Duration::from_secs(30));
    assert!(
        still_there,
        "the container went while the engine was unreachable"
    );
    assert!(
        gone,
        "the reaper did not remove the container within 15 s of the engine answering again"
    );
    assert!(
        reaper_done,
        "the reaper did not finish within 30 s of the engine answering again"
    );
    eprintln!(
        "removed {:?} after the engine answered again",
        back.elapsed()
    );
}

/// Waits up to `patience` until no process has `entry` in its environment; false if one still
/// does.
fn wait_until_no_process_has(entry: &str, patience: Duration) -> bool {
    let started = Instant::now();
    loop {
        let running = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("environ")).ok())
            .any(|env| env.split(|b| *b == 0).any(|kv| kv == entry.as_bytes()));
        if !running {
            return true;
        }
        if started.elapsed() > patience {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn a_container_removed_behind_the_librarys_back_is_replaced_on_next_use() {
    static FIXTURE: Shared<SnapshotFixture> = Shared::per_process(busybox_fixture);
    let session = Session::global().await.unwrap();
    let first = FIXTURE.get().await.unwrap().container().id();
    session
        .engine()
        .docker()
        .remove_container(
            &first,
            Some(
                seaworthy::bollard::query_parameters::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap();
    let fixture = FIXTURE.get().await.unwrap();
    let second = fixture.container().id();
    assert_ne!(first, second);
    assert!(fixture.container().is_running().await.unwrap());
    // And the same container again while it lives.
    assert_eq!(FIXTURE.get().await.unwrap().container().id(), second);
}

#[tokio::test]
async fn exclusive_waits_for_shared_holders() {
    static FIXTURE: Shared<SnapshotFixture> = Shared::per_process(busybox_fixture);
    let a = FIXTURE.get().await.unwrap();
    let b = FIXTURE.get().await.unwrap();
    assert_eq!(a.container().id(), b.container().id());
    let waiting = tokio::spawn(async {
        let guard = FIXTURE.exclusive().await.unwrap();
        guard.container().id()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "exclusive() must wait while shared guards are held"
    );
    drop(a);
    drop(b);
    let id = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(!id.is_empty());
}

#[tokio::test]
async fn a_per_process_fixture_is_cleaned_between_tests() {
    static FIXTURE: Shared<SnapshotFixture> = Shared::per_process(busybox_fixture);
    let fixture = FIXTURE.exclusive().await.unwrap();
    let c = fixture.container();
    c.write_file("/tmp/left-by-a-test", "x", 0o644)
        .await
        .unwrap();
    fixture.clean().await.unwrap();
    assert!(!c.file_exists("/tmp/left-by-a-test").await.unwrap());
    assert!(c.is_running().await.unwrap());
}

#[test]
fn seaworthy_gc_keeps_what_live_processes_own() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let session = Session::global().await.unwrap();
        let c = ContainerDefinition::new(common::BUSYBOX)
            .with_cmd(["sleep", "3600"])
            .with_wait(Wait::running_for(Duration::from_millis(10)))
            .start()
            .await
            .unwrap();
        let report = seaworthy::gc::collect(session.engine(), Default::default())
            .await
            .unwrap();
        assert!(
            report.removed.iter().all(|r| r.id != c.id()),
            "gc removed a live process's container"
        );
        assert!(container_exists(&session, &c.id()).await);
    });
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ std::process::id()
}
