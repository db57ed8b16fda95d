//! `seaworthy gc` removes what dead processes left and keeps what live ones own.

use std::process::Command;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn labelled_container(owner: &str, host: &str) -> String {
    docker(&[
        "create",
        "--label",
        "io.seaworthy.managed=true",
        "--label",
        &format!("io.seaworthy.owner={owner}"),
        "--label",
        &format!("io.seaworthy.host={host}"),
        "--label",
        "io.seaworthy.session=gc-test",
        "seaworthy-test/busybox",
        "sleep",
        "600",
    ])
}

fn exists(id: &str) -> bool {
    Command::new("docker")
        .args(["inspect", id])
        .output()
        .expect("docker CLI")
        .status
        .success()
}

#[test]
fn gc_removes_resources_of_dead_processes_only() {
    let host = seaworthy::session::host_name();
    let me = std::process::id();
    let start = seaworthy::session::process_start_time(me).expect("own start time");
    // A pid that cannot be running with that start time.
    let dead = labelled_container("4194303:1", &host);
    let alive = labelled_container(&format!("{me}:{start}"), &host);
    let elsewhere = labelled_container("4194303:1", "another-host");
    // Limited to this test's session: other test processes may be running on this engine.
    let gc = |extra: &[&str]| {
        let mut args = vec!["gc", "--session", "gc-test"];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_seaworthy"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = gc(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("removed container"), "{stdout}");
    assert!(!exists(&dead), "the dead process's container survived gc");
    assert!(exists(&alive), "gc removed a live process's container");
    assert!(exists(&elsewhere), "gc judged another host's process");
    // --all takes what live processes of this host own; other hosts need --other-hosts.
    let out = gc(&["--all"]);
    assert!(out.status.success());
    assert!(!exists(&alive));
    assert!(exists(&elsewhere));
    let out = gc(&["--all", "--other-hosts"]);
    assert!(out.status.success());
    assert!(!exists(&elsewhere));
}
