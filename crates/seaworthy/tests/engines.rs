//! The same smoke set on every kind of endpoint: the shared engine's Unix socket, the TLS engine
//! (reached with explicit material, with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, and through a Docker
//! context), and the shared engine over SSH (`docker system dial-stdio` behind sshd on
//! 127.0.0.2:22, with a generated key). Each run starts a container with a log wait, execs in it, reads file metadata,
//! snapshots and restores it, starts a two-member stack, and checks that nothing of its session
//! is left on that engine afterwards.
//!
//! The TLS engine is started by `bash .ci/engines start` (which `.ci/run` runs): a second
//! dockerd on tcp://127.0.0.1:2376 with --tlsverify, client material in
//! /var/lib/seaworthy-ci/tls/client; and sshd with the key /var/lib/seaworthy-ci/ssh/id_ed25519.
//! `SEAWORTHY_TEST_TLS_HOST`, `SEAWORTHY_TEST_TLS_CERTS`, `SEAWORTHY_TEST_SSH_HOST` and
//! `SEAWORTHY_TEST_SSH_KEY` point the tests elsewhere.

#[path = "support/context_store.rs"]
mod context_store;

use std::collections::HashMap;
use std::path::PathBuf;

use seaworthy::bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, ListVolumesOptions,
};
use seaworthy::engine::{Discovery, Source};
use seaworthy::{
    ContainerDefinition, DependsOn, Engine, Exec, FileKind, Session, StackDefinition, StackMember,
    Wait,
};

use seaworthy_testkit::endpoint_missing;

const BUSYBOX: &str = "seaworthy-test/busybox";

fn tls_host() -> String {
    std::env::var("SEAWORTHY_TEST_TLS_HOST").unwrap_or_else(|_| "tcp://127.0.0.1:2376".into())
}

/// The client's TLS material; a clear failure when the TLS engine was never set up.
fn tls_certs() -> PathBuf {
    let dir = std::env::var("SEAWORTHY_TEST_TLS_CERTS")
        .unwrap_or_else(|_| "/var/lib/seaworthy-ci/tls/client".into());
    let dir = PathBuf::from(dir);
    if !dir.join("key.pem").is_file() {
        endpoint_missing(
            &format!("the TLS engine at {}", tls_host()),
            format!("no client material in {}", dir.display()),
        );
    }
    dir
}

/// A busybox container that runs `setup`, prints `ready` (its wait), then runs `then`.
fn busybox(setup: &str, then: &str) -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", &format!("{setup} && echo ready && exec {then}")])
        .with_wait(Wait::log("^ready$"))
}

/// Runs the smoke set in a session of its own on `engine`, tears it down, and checks that the
/// engine has nothing of that session left.
async fn smoke(engine: Engine) {
    let session = Session::with_engine(engine);
    let endpoint = session.engine().endpoint().to_string();

    let c = busybox("mkdir -p /data && echo first > /data/state", "sleep 3600")
        .start_in(&session)
        .await
        .unwrap_or_else(|e| panic!("start on {endpoint}: {e}"));
    let out = c.exec(Exec::new(["cat", "/data/state"])).await.unwrap();
    assert_eq!(out.stdout_text(), "first\n");
    let meta = c.file_metadata("/data/state").await.unwrap();
    assert_eq!(meta.kind, FileKind::File);
    assert_eq!(meta.size, 6);
    assert_eq!(meta.mode, 0o644);

    let snapshot = c.snapshot("smoke").await.unwrap();
    c.exec(Exec::new(["sh", "-c", "echo second > /data/state"]))
        .await
        .unwrap();
    c.restore(&snapshot).await.unwrap();
    let out = c.exec(Exec::new(["cat", "/data/state"])).await.unwrap();
    assert_eq!(out.stdout_text(), "first\n", "restored on {endpoint}");

    let stack = StackDefinition::new("smoke")
        .with_container(
            "api",
            busybox(
                "mkdir /www && echo pong > /www/ping",
                "httpd -f -p 8080 -h /www",
            ),
        )
        .with_member(
            StackMember::new(
                "app",
                busybox("wget -q -O /fetched http://api:8080/ping", "sleep 3600"),
            )
            .depends_on("api", DependsOn::Ready),
        )
        .start_in(&session)
        .await
        .unwrap_or_else(|e| panic!("stack on {endpoint}: {e}"));
    let fetched = stack
        .container("app")
        .unwrap()
        .exec(Exec::new(["cat", "/fetched"]))
        .await
        .unwrap();
    assert_eq!(fetched.stdout_text(), "pong\n");

    drop(stack);
    drop(c);
    drop(snapshot);
    let errors = session.teardown().await;
    assert!(errors.is_empty(), "teardown on {endpoint}: {errors:?}");
    let left = leftovers(&session).await;
    assert!(left.is_empty(), "left on {endpoint}: {left:?}");
}

/// Everything managed on the session's engine whose name is of the session's namespace.
async fn leftovers(session: &Session) -> Vec<String> {
    let docker = session.engine().docker();
    // The session's names start with its namespace and a dash (another session of this
    // process may have a namespace that starts with this one's); Podman qualifies image names.
    let prefix = format!("{}-", session.namespace());
    let owned = |name: &str| {
        name.trim_start_matches('/')
            .rsplit('/')
            .next()
            .is_some_and(|last| last.starts_with(&prefix))
    };
    let filters = HashMap::from([(
        "label".to_string(),
        vec!["io.seaworthy.managed=true".to_string()],
    )]);
    let mut left = Vec::new();
    // Podman's list can fail while another test's container is being removed ("no such
    // container"): ask again.
    let mut attempts = 0;
    let containers = loop {
        attempts += 1;
        match docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
        {
            Ok(list) => break list,
            Err(e) if attempts < 5 => {
                eprintln!("listing containers failed ({e}); asking again");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("list containers: {e}"),
        }
    };
    for c in containers {
        let names = c.names.unwrap_or_default();
        if names.iter().any(|n| owned(n)) {
            left.push(format!("container {names:?}"));
        }
    }
    for n in docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .unwrap()
    {
        let name = n.name.unwrap_or_default();
        if owned(&name) {
            left.push(format!("network {name}"));
        }
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .unwrap();
    for v in volumes.volumes.unwrap_or_default() {
        if owned(&v.name) {
            left.push(format!("volume {}", v.name));
        }
    }
    for i in docker
        .list_images(Some(ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .unwrap()
    {
        if i.repo_tags.iter().any(|t| owned(t)) {
            left.push(format!("image {:?}", i.repo_tags));
        }
    }
    left
}

/// The engine `fut` connects to; an endpoint that does not answer fails the test naming it and
/// saying how to start it.
async fn on_runtime<F>(fut: F) -> Engine
where
    F: std::future::Future<Output = seaworthy::Result<Engine>> + Send + 'static,
{
    match seaworthy::runtime::run(fut).await {
        Ok(engine) => engine,
        Err(e) if e.is_engine_unavailable() => endpoint_missing("a test endpoint", e),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn unix_socket() {
    let engine = on_runtime(Engine::connect_to("unix:///var/run/docker.sock")).await;
    smoke(engine).await;
}

#[tokio::test]
async fn tls_with_explicit_material() {
    let certs = tls_certs();
    let engine =
        on_runtime(async move { Engine::connect_with_tls(&tls_host(), &certs).await }).await;
    assert_eq!(engine.tls_dir(), Some(tls_certs().as_path()));
    assert_eq!(engine.host(), "127.0.0.1");
    smoke(engine).await;
}

#[tokio::test]
async fn tls_from_docker_tls_verify_and_docker_cert_path() {
    let certs = tls_certs();
    let discovery = Discovery::new()
        .var("DOCKER_HOST", Some(&tls_host()))
        .unwrap()
        .var("DOCKER_TLS_VERIFY", Some("1"))
        .unwrap()
        .var("DOCKER_CERT_PATH", Some(certs.to_str().unwrap()))
        .unwrap();
    let engine = on_runtime(async move { discovery.connect().await }).await;
    assert_eq!(engine.source(), &Source::DockerHost);
    smoke(engine).await;
}

#[tokio::test]
async fn tls_through_a_docker_context() {
    let config = std::env::temp_dir().join(format!("sw-engines-ctx-{}", std::process::id()));
    let tls_dir = context_store::store_context(&config, "ci-tls", &tls_host(), Some(&tls_certs()));
    std::fs::write(
        config.join("config.json"),
        r#"{"currentContext": "ci-tls"}"#,
    )
    .unwrap();
    let discovery = Discovery::new()
        .var("DOCKER_CONFIG", Some(config.to_str().unwrap()))
        .unwrap();
    let engine = on_runtime(async move { discovery.connect().await }).await;
    assert!(
        matches!(engine.source(), Source::Context { name, .. } if name == "ci-tls"),
        "{:?}",
        engine.source()
    );
    assert_eq!(engine.tls_dir(), Some(tls_dir.as_path()));
    smoke(engine).await;
    std::fs::remove_dir_all(&config).unwrap();
}

/// The SSH endpoint's key; a clear failure when the endpoint was never set up.
fn ssh_key() -> PathBuf {
    let key = PathBuf::from(
        std::env::var("SEAWORTHY_TEST_SSH_KEY")
            .unwrap_or_else(|_| "/var/lib/seaworthy-ci/ssh/id_ed25519".into()),
    );
    if !key.is_file() {
        endpoint_missing(
            &format!("the SSH endpoint {}", ssh_host()),
            format!("no key at {}", key.display()),
        );
    }
    key
}

fn ssh_host() -> String {
    std::env::var("SEAWORTHY_TEST_SSH_HOST").unwrap_or_else(|_| "ssh://root@127.0.0.2".into())
}

#[tokio::test]
async fn ssh_with_a_key() {
    let key = ssh_key();
    let engine =
        on_runtime(async move { Engine::connect_with_ssh_key(&ssh_host(), &key).await }).await;
    assert_eq!(engine.endpoint(), ssh_host());
    assert_eq!(engine.host(), "127.0.0.2");
    smoke(engine).await;
}

#[tokio::test]
async fn ssh_from_docker_host_and_seaworthy_ssh_key() {
    let discovery = Discovery::new()
        .var("DOCKER_HOST", Some(&ssh_host()))
        .unwrap()
        .var("SEAWORTHY_SSH_KEY", Some(ssh_key().to_str().unwrap()))
        .unwrap();
    let engine = on_runtime(async move { discovery.connect().await }).await;
    assert_eq!(engine.source(), &Source::DockerHost);
    engine.docker().ping().await.unwrap();
}

fn podman_socket() -> String {
    let socket = std::env::var("SEAWORTHY_TEST_PODMAN_SOCKET")
        .unwrap_or_else(|_| "/run/podman/podman.sock".into());
    if !std::path::Path::new(&socket).exists() {
        endpoint_missing("Podman's API service", format!("no socket at {socket}"));
    }
    socket
}

#[tokio::test]
async fn podman() {
    let endpoint = format!("unix://{}", podman_socket());
    let engine = on_runtime(async move { Engine::connect_to(&endpoint).await }).await;
    assert!(engine.is_podman().await);
    smoke(engine).await;
}

/// Podman runs healthchecks from systemd timers, and this machine has no systemd: the health
/// wait runs the check itself there.
#[tokio::test]
async fn podman_health_waits_hold_without_systemd() {
    let endpoint = format!("unix://{}", podman_socket());
    let engine = on_runtime(async move { Engine::connect_to(&endpoint).await }).await;
    let session = Session::with_engine(engine);
    let started = std::time::Instant::now();
    let c = ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "sleep 1; touch /tmp/healthy; exec sleep 3600"])
        .with_healthcheck(
            seaworthy::Healthcheck::shell("test -f /tmp/healthy")
                .interval(std::time::Duration::from_millis(200)),
        )
        .with_wait(Wait::healthy())
        .with_startup_timeout(std::time::Duration::from_secs(30))
        .start_in(&session)
        .await
        .unwrap();
    assert!(c.file_exists("/tmp/healthy").await.unwrap());
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    drop(c);
    let errors = session.teardown().await;
    assert!(errors.is_empty(), "{errors:?}");
    let left = leftovers(&session).await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn docker_is_not_taken_for_podman() {
    let engine = on_runtime(Engine::connect_to("unix:///var/run/docker.sock")).await;
    assert!(!engine.is_podman().await);
}

/// Run as a child process by `the_reaper_cleans_the_tls_engine_after_a_killed_test`: starts a
/// container on the TLS engine, prints its id, and dies without any cleanup.
#[tokio::test]
#[ignore = "run as a child process by the_reaper_cleans_the_tls_engine_after_a_killed_test"]
async fn child_killed_on_the_tls_engine() {
    if std::env::var("SEAWORTHY_ENGINES_CHILD").is_err() {
        return;
    }
    let certs = tls_certs();
    let engine =
        on_runtime(async move { Engine::connect_with_tls(&tls_host(), &certs).await }).await;
    let session = Session::with_engine(engine);
    let c = busybox("true", "sleep 3600")
        .start_in(&session)
        .await
        .unwrap();
    println!("CONTAINER {}", c.id());
    std::process::abort();
}

#[tokio::test]
async fn the_reaper_cleans_the_tls_engine_after_a_killed_test() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_killed_on_the_tls_engine",
            "--ignored",
            "--nocapture",
        ])
        .env("SEAWORTHY_ENGINES_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CONTAINER "))
        .unwrap_or_else(|| {
            panic!(
                "the child started nothing:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_string();
    assert!(!out.status.success(), "the child was meant to abort");
    // The reaper (a process of its own, given only the endpoint and its TLS environment)
    // removes the container of the dead process.
    let certs = tls_certs();
    let engine =
        on_runtime(async move { Engine::connect_with_tls(&tls_host(), &certs).await }).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match engine.docker().inspect_container(&id, None).await {
            Err(seaworthy::bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }) => break,
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await
            }
            other => panic!("container {id} of the killed test is still there: {other:?}"),
        }
    }
}

#[tokio::test]
async fn tls_without_a_client_certificate_is_refused_with_the_file_named() {
    let empty = std::env::temp_dir().join(format!("sw-engines-nocert-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::copy(tls_certs().join("ca.pem"), empty.join("ca.pem")).unwrap();
    let err = Engine::connect_with_tls(&tls_host(), &empty)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{} is missing", empty.join("cert.pem").display())),
        "{err}"
    );
    std::fs::remove_dir_all(&empty).unwrap();
}

/// The variable that marks the ssh processes of `child_using_the_ssh_endpoint` (they inherit
/// the environment of the process that starts them).
const SSH_CHILD_MARKER: &str = "SEAWORTHY_TEST_SSH_CHILD_MARKER";

/// What a test process using the SSH endpoint may hold when it exits: an engine kept for the
/// whole process (as a static fixture keeps one), whose connections are open.
static SSH_ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();

/// Run as a child process by `no_ssh_process_outlives_the_test_process_that_used_it`: keeps an
/// engine reached over SSH in a static, opens several connections to it on Seaworthy's shared
/// runtime (never dropped), says `CONNECTED`, and returns when its standard input closes, the
/// engine and its connections still open.
#[tokio::test]
#[ignore = "run as a child process by no_ssh_process_outlives_the_test_process_that_used_it"]
async fn child_using_the_ssh_endpoint() {
    if std::env::var("SEAWORTHY_ENGINES_CHILD").is_err() {
        return;
    }
    let key = ssh_key();
    seaworthy::runtime::run(async move {
        let engine = Engine::connect_with_ssh_key(&ssh_host(), &key)
            .await
            .unwrap();
        let docker = SSH_ENGINE.get_or_init(|| engine).docker();
        // Requests at the same time: one connection each.
        let (ping, version, containers) = tokio::join!(
            docker.ping(),
            docker.version(),
            docker.list_containers(None::<ListContainersOptions>)
        );
        ping.unwrap();
        version.unwrap();
        containers.unwrap();
    })
    .await;
    println!("CONNECTED");
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {}
}

/// The ssh processes (`comm` ssh) whose environment carries `SSH_CHILD_MARKER=marker`, with
/// their command lines.
fn marked_ssh_processes(marker: &str) -> Vec<String> {
    let wanted = format!("{SSH_CHILD_MARKER}={marker}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        // A process may end while it is read.
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() != "ssh" {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ
            .split(|b| *b == 0)
            .any(|var| var == wanted.as_bytes())
        {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!("{pid}: {}", cmdline.trim()));
        }
    }
    found
}

/// Nothing Seaworthy starts may outlive the process that started it: a test process that used
/// the SSH endpoint and exits with its engine and connections still open (held in a static)
/// leaves no ssh process behind (formerly an `ssh -M … ControlPersist=yes` master per
/// connection stayed).
#[test]
fn no_ssh_process_outlives_the_test_process_that_used_it() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    ssh_key();
    let marker = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_using_the_ssh_endpoint",
            "--ignored",
            "--nocapture",
        ])
        .env("SEAWORTHY_ENGINES_CHILD", "1")
        .env(SSH_CHILD_MARKER, &marker)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tell, told) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "CONNECTED" {
                let _ = tell.send(());
            }
        }
    });
    if told.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("the child did not connect to {} within 60 s", ssh_host());
    }
    let running = marked_ssh_processes(&marker);
    assert!(
        !running.is_empty(),
        "the child connected but no ssh process of it was found: the check would see nothing"
    );
    // The child's test returns and the process exits, its engine still held.
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not exit within 30 s of its standard input closing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the child failed: {status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = marked_ssh_processes(&marker);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "10 s after the test process exited, its ssh processes still run (it had {}):\n{}",
            running.len(),
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Podman differences README's "Where is my engine?" lists, and their workarounds: no
/// `NET_RAW` by default (ping needs `with_capability("NET_RAW")`), and `with_tmpfs` for a
/// size-limited scratch filesystem.
#[tokio::test]
async fn podman_differences_have_the_documented_workarounds() {
    let endpoint = format!("unix://{}", podman_socket());
    let engine = on_runtime(async move { Engine::connect_to(&endpoint).await }).await;
    let session = Session::with_engine(engine);
    let ping = Exec::new(["ping", "-c", "1", "-W", "2", "127.0.0.1"]);
    let plain = busybox("true", "sleep 3600")
        .start_in(&session)
        .await
        .unwrap();
    let out = plain.exec(ping.clone()).await.unwrap();
    assert!(!out.success(), "ping worked without NET_RAW on Podman");
    let raw = busybox("true", "sleep 3600")
        .with_capability("NET_RAW")
        .with_tmpfs("/sized", Some(1024 * 1024))
        .start_in(&session)
        .await
        .unwrap();
    let out = raw.exec(ping).await.unwrap();
    assert!(out.success(), "{}", out.stderr_text());
    let out = raw
        .exec(Exec::shell(
            "mount | grep ' /sized ' | cut -d' ' -f5; df -k /sized | tail -1 | awk '{print $2}'",
        ))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "tmpfs\n1024\n", "{}", out.stderr_text());
    drop(plain);
    drop(raw);
    let errors = session.teardown().await;
    assert!(errors.is_empty(), "{errors:?}");
    let left = leftovers(&session).await;
    assert!(left.is_empty(), "{left:?}");
}

/// A key the SSH endpoint does not accept: the error names the endpoint and gives what ssh
/// said, instead of an HTTP client's "connection closed".
#[tokio::test]
async fn ssh_with_a_key_the_host_refuses_says_why() {
    ssh_key();
    let dir = std::env::temp_dir().join(format!("sw-engines-badkey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let err = Engine::connect_with_ssh_key(&ssh_host(), &key)
        .await
        .unwrap_err()
        .to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(err.contains(&ssh_host()), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
}

/// Runs this test binary as a reaper (what `spawn_reaper` starts) whose owner is long gone and
/// whose engine is `endpoint`, `gone_after` seconds of silence allowed; its stderr (the reaper's
/// log) is piped.
fn reaper_for(endpoint: &str, gone_after: u64) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .env("SEAWORTHY_REAPER", "1")
        .env("SEAWORTHY_REAPER_ENDPOINT", endpoint)
        .env("SEAWORTHY_REAPER_RUN", "sw-reaper-test")
        // A pid beyond any pid_max: the owner is not alive.
        .env("SEAWORTHY_REAPER_OWNER", "999999999:1")
        .env("SEAWORTHY_REAPER_RUNNER", "999999999:1")
        .env("SEAWORTHY_REAPER_GONE_AFTER", gone_after.to_string())
        .env_remove("SEAWORTHY_REAPER_PATIENCE")
        .env_remove("DOCKER_TLS_VERIFY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// An engine stopped for good (its socket gone, or its TCP port refusing connections, as when
/// the TLS engine is stopped after its tests): the reaper gives up within the silence it allows,
/// not after its whole patience (ten minutes), and says so in one line naming the endpoint.
#[test]
fn the_reaper_gives_up_on_a_vanished_endpoint_quickly() {
    let socket = std::env::temp_dir().join(format!("sw-vanished-{}.sock", std::process::id()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("tcp://{}", listener.local_addr().unwrap());
    drop(listener);
    for endpoint in [format!("unix://{}", socket.display()), refused] {
        let started = std::time::Instant::now();
        let out = reaper_for(&endpoint, 2).wait_with_output().unwrap();
        let elapsed = started.elapsed();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{endpoint}: {log}");
        assert!(
            elapsed < std::time::Duration::from_secs(20),
            "{endpoint}: gave up after {elapsed:?}: {log}"
        );
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 1, "{endpoint}: one line, not {log}");
        assert!(
            lines[0].contains(&format!("nothing answers at {endpoint}"))
                && lines[0].contains("seaworthy gc"),
            "{endpoint}: {log}"
        );
    }
}

/// An engine that answers, but with errors (busy, or failing for a while), is tried again for
/// the reaper's whole patience, backing off, a line per attempt: well past the silence allowed
/// to a vanished endpoint, it is still at it.
#[test]
fn the_reaper_keeps_trying_an_engine_that_answers() {
    use std::io::{BufRead, BufReader, Read, Write};
    let socket = std::env::temp_dir().join(format!("sw-busy-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            // Read the request's head, then answer as an engine does when it cannot serve.
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let body = r#"{"message":"the engine is busy"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let mut reaper = reaper_for(&format!("unix://{}", socket.display()), 1);
    std::thread::sleep(std::time::Duration::from_secs(6));
    let still_running = reaper.try_wait().unwrap().is_none();
    let _ = reaper.kill();
    let _ = reaper.wait();
    let mut log = String::new();
    reaper
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = std::fs::remove_file(&socket);
    assert!(
        still_running,
        "the reaper gave up on an engine that answers: {log}"
    );
    let attempts = log.lines().filter(|l| l.contains("trying again")).count();
    assert!(
        attempts >= 3 && log.contains("the engine is busy"),
        "a line per attempt, naming the engine's answer: {log}"
    );
}
