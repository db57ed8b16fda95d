//! Exec, logs, processes, files and HTTP against the real engine.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{sleeper, BUSYBOX, NGINX, SCRATCH};
use futures_util::StreamExt;
use seaworthy::{ContainerDefinition, Exec, FileKind, LogOptions, LogStream, Wait};

#[tokio::test]
async fn exec_with_a_terminal_merges_stderr_into_stdout() {
    let c = sleeper().start().await.unwrap();
    let script = "echo out; echo err >&2; [ -t 1 ] && echo terminal; exit 3";
    let plain = c.exec(Exec::shell(script)).await.unwrap();
    assert_eq!(
        (plain.exit_code, plain.stdout_text(), plain.stderr_text()),
        (3, "out\n".to_string(), "err\n".to_string())
    );
    let tty = c.exec(Exec::shell(script).tty(true)).await.unwrap();
    assert_eq!(
        (tty.exit_code, tty.stdout_text(), tty.stderr_text()),
        (3, "out\r\nerr\r\nterminal\r\n".to_string(), String::new())
    );
}

#[tokio::test]
async fn exec_reports_exit_code_output_env_user_and_workdir() {
    let c = sleeper().start().await.unwrap();
    let out = c
        .exec(
            Exec::shell("echo out; echo err >&2; echo $A; id -u; pwd; exit 7")
                .env("A", "from-env")
                .user("65534")
                .workdir("/tmp"),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 7);
    assert_eq!(out.stdout_text(), "out\nfrom-env\n65534\n/tmp\n");
    assert_eq!(out.stderr_text(), "err\n");
    let out = c.exec(Exec::new(["cat"]).stdin("piped\n")).await.unwrap();
    assert_eq!(out.stdout_text(), "piped\n");
    // The engine reports a command it cannot start with code 126 (20.10) or 127, and says why.
    let out = c.exec(["no-such-binary"]).await.unwrap();
    assert!(matches!(out.exit_code, 126 | 127), "{out:?}");
    let why = out.stdout_text() + &out.stderr_text();
    assert!(
        why.contains("no-such-binary") && why.contains("not found"),
        "{why}"
    );
}

#[tokio::test]
async fn exec_exit_is_seen_without_a_polling_interval() {
    let c = sleeper().start().await.unwrap();
    c.exec(["true"]).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        assert!(c.exec(["true"]).await.unwrap().success());
        times.push(t.elapsed());
    }
    times.sort();
    // A 500 ms poll would put every exec at >= 500 ms.
    assert!(
        times[2] < Duration::from_millis(400),
        "median exec {:?}",
        times[2]
    );
}

#[tokio::test]
async fn exec_timeout_names_the_command() {
    let c = sleeper().start().await.unwrap();
    let err = c
        .exec(Exec::new(["sleep", "30"]).timeout(Duration::from_millis(300)))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("exec `sleep 30`") && err.contains(c.name()) && err.contains("300ms"),
        "{err}"
    );
}

#[tokio::test]
async fn logs_split_streams_follow_and_since() {
    let c = ContainerDefinition::new(BUSYBOX)
        .with_cmd([
            "sh",
            "-c",
            "echo one; echo two >&2; echo ready; while true; do sleep 0.2; echo tick; done",
        ])
        .with_wait(Wait::log("^ready$"))
        .start()
        .await
        .unwrap();
    let logs = c.logs().await.unwrap();
    assert!(
        logs.stdout().starts_with("one\nready"),
        "{:?}",
        logs.stdout()
    );
    assert_eq!(logs.stderr(), "two");
    let stderr_only = c.log_stream(LogOptions {
        only: Some(LogStream::Stderr),
        ..Default::default()
    });
    let lines: Vec<_> = stderr_only.collect().await;
    assert_eq!(lines.len(), 1);
    let mut follow = c.log_stream(LogOptions {
        follow: true,
        since: Some(SystemTime::now() + Duration::from_secs(1)),
        ..Default::default()
    });
    let first = tokio::time::timeout(Duration::from_secs(5), follow.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.text, "tick");
    assert_eq!(first.stream, LogStream::Stdout);
    let second = tokio::time::timeout(Duration::from_secs(5), follow.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.text, "tick");
}

/// An engine log timestamp (`2024-05-01T12:34:56.123456789Z`) as a time.
fn engine_time(stamp: &str) -> SystemTime {
    let n = |range: std::ops::Range<usize>| stamp[range].parse::<i64>().unwrap();
    let (year, month, day) = (n(0..4), n(5..7), n(8..10));
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + day - 719_469;
    let seconds = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    let fraction = stamp[20..stamp.len() - 1].to_string();
    let nanos: u32 = format!("{fraction:0<9}").parse().unwrap();
    SystemTime::UNIX_EPOCH + Duration::new(seconds as u64, nanos)
}

#[tokio::test]
async fn logs_since_are_precise_to_the_nanosecond() {
    let c = ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "echo one; sleep 0.2; echo two; exec sleep 3600"])
        .with_wait(Wait::log("^two$"))
        .start()
        .await
        .unwrap();
    // The engine's own time of the first line.
    let mut stamped = c.session().engine().docker().logs(
        c.name(),
        Some(seaworthy::bollard::query_parameters::LogsOptions {
            stdout: true,
            timestamps: true,
            ..Default::default()
        }),
    );
    let first = stamped.next().await.unwrap().unwrap().to_string();
    let (stamp, text) = first.split_once(' ').unwrap();
    assert_eq!(text.trim_end(), "one");
    let one = engine_time(stamp);
    // Just after it, within the same second: only the later line.
    let lines: Vec<String> = c
        .log_stream(LogOptions {
            since: Some(one + Duration::from_nanos(1)),
            ..Default::default()
        })
        .map(|l| l.unwrap().text)
        .collect()
        .await;
    assert_eq!(lines, ["two"]);
    // At it: both.
    let lines: Vec<String> = c
        .log_stream(LogOptions {
            since: Some(one),
            ..Default::default()
        })
        .map(|l| l.unwrap().text)
        .collect()
        .await;
    assert_eq!(lines, ["one", "two"]);
}

#[tokio::test]
async fn process_tree_without_ps_in_the_image() {
    let c = ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "sleep 3600 & sleep 3601 & echo ready; wait"])
        .with_wait(Wait::log("^ready$"))
        .start()
        .await
        .unwrap();
    assert!(c.exec(["rm", "/bin/ps"]).await.unwrap().success());
    assert!(!c.file_exists("/bin/ps").await.unwrap());
    let tree = c.process_tree().await.unwrap();
    assert!(
        tree.process.args.starts_with("sh -c sleep 3600 &"),
        "{}",
        tree.render()
    );
    let mut children: Vec<_> = tree
        .children
        .iter()
        .map(|c| c.process.args.clone())
        .collect();
    children.sort();
    assert_eq!(children, ["sleep 3600", "sleep 3601"], "{}", tree.render());
    assert_eq!(tree.depth(), 2);
    assert!(tree
        .children
        .iter()
        .all(|c| c.process.ppid == tree.process.pid));
}

#[tokio::test]
async fn process_users_are_named_by_the_containers_own_accounts() {
    // uid 4321 exists in this container only: the host has no name for it.
    let c = ContainerDefinition::new(BUSYBOX)
        .with_file(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\ntester:x:4321:4321::/:/bin/sh\n",
            0o644,
        )
        .with_user("4321")
        .with_cmd(["sh", "-c", "sleep 3600 & echo ready; wait"])
        .with_wait(Wait::log("^ready$"))
        .start()
        .await
        .unwrap();
    let processes = c.processes().await.unwrap();
    assert_eq!(processes.len(), 2, "{processes:?}");
    for p in &processes {
        assert_eq!((p.uid, p.user.as_str()), (4321, "tester"), "{p:?}");
    }
    // An exec as root shows as root, by the container's name for uid 0.
    let execing = c.exec(Exec::new(["sleep", "2"]).user("0"));
    let listing = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.processes().await.unwrap()
    };
    let (_, processes) = tokio::join!(execing, listing);
    let sleeper = processes
        .iter()
        .find(|p| p.args == "sleep 2")
        .unwrap_or_else(|| panic!("{processes:?}"));
    assert_eq!((sleeper.uid, sleeper.user.as_str()), (0, "root"));
}

#[tokio::test]
async fn scratch_image_processes_and_file_metadata() {
    let c = ContainerDefinition::new(SCRATCH)
        .with_wait(Wait::log("pause: ready"))
        .start()
        .await
        .unwrap();
    assert!(!c.file_exists("/bin").await.unwrap());
    let tree = c.process_tree().await.unwrap();
    assert_eq!(tree.process.args, "/pause");
    assert_eq!(tree.len(), 2, "{}", tree.render());
    let config = c.file_metadata("/etc/seaworthy/config.txt").await.unwrap();
    assert_eq!(
        (
            config.kind,
            config.mode,
            config.uid,
            config.gid,
            config.size
        ),
        (FileKind::File, 0o640, 1000, 1000, 10)
    );
    assert_eq!(config.mode_string(), "-rw-r-----");
    let link = c.file_metadata("/etc/seaworthy/link").await.unwrap();
    assert_eq!(link.kind, FileKind::Symlink);
    assert_eq!(link.link_target.as_deref(), Some("config.txt"));
    assert_eq!(
        c.read_file_text("/etc/seaworthy/link").await.unwrap(),
        "answer=42\n"
    );
    let data = c.file_metadata("/data").await.unwrap();
    assert_eq!(
        (data.kind, data.mode_string().as_str(), data.uid),
        (FileKind::Directory, "drwxr-xr-x", 1000)
    );
    let names: Vec<_> = c
        .list_dir("/etc/seaworthy")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["config.txt", "link"]);
    let err = c.read_file("/nope").await.unwrap_err().to_string();
    assert!(
        err.contains("no such file or directory: /nope") && err.contains(c.name()),
        "{err}"
    );
    let err = c.read_file("/data").await.unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");
}

#[tokio::test]
async fn files_of_a_created_but_not_started_container() {
    let c = ContainerDefinition::new(SCRATCH).create().await.unwrap();
    assert!(!c.is_running().await.unwrap());
    assert_eq!(
        c.read_file_text("/etc/seaworthy/config.txt").await.unwrap(),
        "answer=42\n"
    );
}

/// The archive API sees the directory under a tmpfs mount: files there go through `tar` inside the
/// running container, both ways, with metadata, listings and missing files as elsewhere.
#[tokio::test]
async fn files_in_a_tmpfs_mount_are_those_the_container_sees() {
    let c = sleeper()
        .with_tmpfs("/fast", Some(1 << 20))
        .start()
        .await
        .unwrap();
    c.write_file("/fast/sub/a.txt", "from the test", 0o640)
        .await
        .unwrap();
    let seen = c
        .exec(Exec::shell(
            "cat /fast/sub/a.txt; echo; stat -c '%a %u' /fast/sub/a.txt",
        ))
        .await
        .unwrap();
    assert_eq!(seen.stdout_text(), "from the test\n640 0\n", "{seen:?}");
    c.exec(Exec::shell(
        "echo from-inside > /fast/b.txt; ln -s b.txt /fast/link",
    ))
    .await
    .unwrap();
    assert_eq!(
        c.read_file_text("/fast/link").await.unwrap(),
        "from-inside\n"
    );
    let meta = c.file_metadata("/fast/sub/a.txt").await.unwrap();
    assert_eq!(
        (meta.kind, meta.mode, meta.size),
        (FileKind::File, 0o640, 13)
    );
    let names: Vec<_> = c
        .list_dir("/fast")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["b.txt", "link", "sub"]);
    assert!(!c.file_exists("/fast/nope").await.unwrap());
    // A typed error callers branch on, decided from exit statuses (not from tar's message).
    let err = c.read_file("/fast/nope").await.unwrap_err();
    assert!(
        matches!(&err, seaworthy::Error::NotFound { container, path } if path == "/fast/nope" && container == c.name()),
        "{err}"
    );
    let err = err.to_string();
    assert!(
        err.contains("no such file or directory: /fast/nope") && err.contains(c.name()),
        "{err}"
    );
}

/// Without `tar` in the image, or before the tmpfs is mounted, a tmpfs path is refused, naming the
/// container, the path and the mount, instead of succeeding where the container never looks.
#[tokio::test]
async fn tmpfs_paths_that_cannot_be_reached_are_refused_naming_them() {
    let c = ContainerDefinition::new(SCRATCH)
        .with_tmpfs("/fast", None)
        .with_wait(Wait::log("pause: ready"))
        .start()
        .await
        .unwrap();
    for err in [
        c.write_file("/fast/a.txt", "x", 0o644).await.unwrap_err(),
        c.read_file("/fast/a.txt").await.unwrap_err(),
    ] {
        let err = err.to_string();
        assert!(
            err.contains(c.name())
                && err.contains("/fast/a.txt")
                && err.contains("tmpfs mount /fast")
                && err.contains("no `tar`"),
            "{err}"
        );
    }
    let created = sleeper().with_tmpfs("/fast", None).create().await.unwrap();
    let err = created
        .write_file("/fast/a.txt", "x", 0o644)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(created.name()) && err.contains("/fast/a.txt") && err.contains("only while"),
        "{err}"
    );
    // Outside the mount, the archive API still works on a container that is not running.
    created
        .write_file("/elsewhere.txt", "x", 0o644)
        .await
        .unwrap();
}

#[tokio::test]
async fn http_client_bound_to_a_port() {
    let c = ContainerDefinition::new(NGINX)
        .with_port(80)
        .with_wait(Wait::http(80, "/health"))
        .start()
        .await
        .unwrap();
    let http = c.http(80).unwrap();
    assert_eq!(
        http.base_url(),
        format!("http://127.0.0.1:{}", c.host_port(80).unwrap())
    );
    let response = http.get("/").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("nginx"));
    assert_eq!(http.get("missing").send().await.unwrap().status(), 404);
}
