//! Snapshots of each kind against the test images; the files are committed under
//! `snapshots/seaworthy-insta/` at the workspace root.
//!
//! `INSTA_UPDATE=always cargo test -p seaworthy-insta` rewrites them (or `cargo insta review`);
//! under `CI=true` a missing or different snapshot fails.

use std::time::{Duration, Instant};

use seaworthy::{ContainerDefinition, Exec, Healthcheck, Wait};
use seaworthy_insta::insta;
use seaworthy_insta::{
    assert_dir_snapshot, assert_exec_snapshot, assert_http_snapshot, assert_metadata_snapshot,
    assert_process_snapshot, assert_response_snapshot,
};

const BUSYBOX: &str = "seaworthy-test/busybox";
const SCRATCH: &str = "seaworthy-test/scratch";
const NGINX: &str = "seaworthy-test/nginx";

fn sleeper() -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
        .with_wait(Wait::log("^ready$"))
}

#[tokio::test]
async fn busybox_metadata() {
    let c = sleeper()
        .with_name("meta")
        .with_env("APP_MODE", "test")
        .with_label("org.example.role", "fixture")
        .with_port(8080)
        .with_tmpfs("/scratch", Some(1 << 20))
        .with_healthcheck(Healthcheck::cmd(["true"]).interval(Duration::from_secs(1)))
        .start()
        .await
        .unwrap();
    // Named: the engine name keeps its given part; id, host port, address, session are redacted.
    assert_metadata_snapshot!(c);
}

#[tokio::test]
async fn created_scratch_container_metadata() {
    // Never started, no name: the generated name is redacted as a whole.
    let c = ContainerDefinition::new(SCRATCH).create().await.unwrap();
    assert_metadata_snapshot!(c);
}

#[tokio::test]
async fn extra_redactions_apply_after_the_defaults() {
    let c = sleeper()
        .with_name("extra")
        .with_env("APP_VERSION", "1.2.3-build.4711")
        .start()
        .await
        .unwrap();
    // Settings of your own (here a filter) are bound around the assertions.
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"build\.\d+", "build.[n]");
    let _bound = settings.bind_to_scope();
    assert_metadata_snapshot!(c, { ".env.APP_VERSION" => "[version]", ".cmd" => "[cmd]" });
    assert_exec_snapshot!(c, Exec::shell("echo $APP_VERSION"));
}

#[tokio::test]
async fn exec_output() {
    let c = sleeper().start().await.unwrap();
    // Unnamed: the host name is the short id, redacted wherever it appears.
    assert_exec_snapshot!(
        c,
        Exec::shell("echo to stdout; echo to stderr >&2; echo host=$(hostname); exit 3")
    );
    assert_exec_snapshot!(c, ["cat", "/etc/passwd"]);
}

#[tokio::test]
async fn process_tree() {
    let c = ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "sleep 3601 & sleep 3602 & echo ready; wait"])
        .with_wait(Wait::log("^ready$"))
        .start()
        .await
        .unwrap();
    // The children may still be between fork and exec right after "ready".
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tree = c.process_tree().await.unwrap();
        if tree.children.len() == 2
            && tree
                .children
                .iter()
                .all(|child| child.process.args.starts_with("sleep"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "children not started: {tree:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_process_snapshot!(c);
}

#[tokio::test]
async fn dir_listing() {
    let c = sleeper()
        .with_file("/srv/data/config.yaml", "key: value\n", 0o640)
        .with_file("/srv/data/bin/run.sh", "#!/bin/sh\necho run\n", 0o755)
        .start()
        .await
        .unwrap();
    let setup = c
        .exec(Exec::shell(
            "ln -s bin/run.sh /srv/data/run && mkdir -m 1777 /srv/data/tmp \
             && chown 65534:65534 /srv/data/config.yaml",
        ))
        .await
        .unwrap();
    assert!(setup.success(), "{setup:?}");
    assert_dir_snapshot!(c, "/srv/data");
}

#[tokio::test]
async fn nginx_http_responses() {
    let web = ContainerDefinition::new(NGINX)
        .with_name("web")
        .with_port(80)
        .with_wait(Wait::http(80, "/health"))
        .start()
        .await
        .unwrap();
    // All headers: date, last-modified and etag are redacted.
    assert_http_snapshot!(web, 80, "/");
    // Selected headers only.
    assert_http_snapshot!(web, 80, "/health", headers = ["content-type"]);
    let missing = web
        .http(80)
        .unwrap()
        .get("/no-such-page")
        .send()
        .await
        .unwrap();
    assert_response_snapshot!(missing, headers = ["content-type", "server"]);
    assert_metadata_snapshot!(web);
}

/// The guard of the whole suite: with `CI=true` and no snapshot on disk, an assertion fails and
/// nothing is written. The test runs another test of this binary in a child process whose
/// snapshot directory is empty.
#[test]
fn a_missing_snapshot_fails_under_ci() {
    if std::env::var_os("SEAWORTHY_INSTA_CHILD").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("seaworthy-insta-ci-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "exec_output", "--test-threads", "1"])
        .env("CI", "true")
        .env("SEAWORTHY_INSTA_CHILD", "1")
        .env("SEAWORTHY_SNAPSHOT_DIR", &dir)
        .env_remove("INSTA_UPDATE")
        .env_remove("INSTA_FORCE_PASS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let written: Vec<_> = walk(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!output.status.success(), "the child passed:\n{text}");
    assert!(text.contains("1 failed"), "{text}");
    assert!(written.is_empty(), "CI must write nothing: {written:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
