//! Helpers shared by the core crate's integration tests.
#![allow(dead_code)]

use seaworthy::{ContainerDefinition, Session, StackDefinition, StackFixture, Wait};

/// The busybox test image (built by `cargo xtask images`).
pub const BUSYBOX: &str = "seaworthy-test/busybox";
/// The shell-less FROM-scratch test image.
pub const SCRATCH: &str = "seaworthy-test/scratch";
/// The nginx test image.
pub const NGINX: &str = "seaworthy-test/nginx";

/// A busybox container that prints `ready` and then sleeps.
pub fn sleeper() -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
        .with_wait(Wait::log("^ready$"))
}

/// A busybox web server on port 80 (published) that answers `body` at `/ping`, ready once it does.
pub fn web_server(body: &str) -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd([
            "sh".to_string(),
            "-c".to_string(),
            format!("mkdir /www && echo {body} > /www/ping && exec httpd -f -p 80 -h /www"),
        ])
        .with_port(80)
        .with_wait(Wait::http(80, "/ping"))
}

/// A session of the test's own (its own namespace, network and teardown) on the engine the
/// global session found: `DOCKER_HOST`, a Docker context or the local socket, as for any test.
pub async fn own_session() -> Session {
    Session::with_engine(Session::global().await.unwrap().engine().clone())
}

/// Whether the engine still knows a container by id.
pub async fn container_exists(session: &Session, id: &str) -> bool {
    match session.engine().docker().inspect_container(id, None).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => false,
        Err(e) => panic!("inspect {id}: {e}"),
    }
}

/// Installs a tracing subscriber once (RUST_LOG selects what is shown).
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// This test binary run again as a child process that runs only the ignored test `test` (a path
/// like `child` or `module::child`), with `SW_CHILD=mode` saying what it should do; its stdout
/// and stderr are piped.
pub fn child_command(test: &str, mode: &str) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SW_CHILD", mode)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// Reads a child's stdout until its `ID=` line and returns the words after `ID=`; panics with the
/// child's stderr when it ends without one.
pub fn read_ids(child: &mut std::process::Child) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read};
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        // libtest prints "test child ... " before the child's own output, on the same line.
        if let Some(ids) = line.split_once("ID=").map(|(_, ids)| ids) {
            let ids = ids.split_whitespace().map(str::to_string).collect();
            // Keep draining in the background so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return ids;
        }
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    panic!("the child printed no ID line; stderr:\n{err}");
}

/// A stack fixture named `name`: `web` (busybox httpd serving `/www/v`, `base` at the baseline;
/// the primary member) and `client` (a busybox that sleeps, to fetch `http://web/v`).
pub fn web_and_client(name: &str) -> StackFixture {
    StackFixture::new(
        StackDefinition::new(name)
            .with_container(
                "web",
                ContainerDefinition::new(BUSYBOX)
                    .with_cmd([
                        "sh",
                        "-c",
                        "mkdir -p /www && echo base > /www/v && exec httpd -f -p 80 -h /www",
                    ])
                    .with_port(80)
                    .with_wait(Wait::http(80, "/v")),
            )
            .with_container("client", sleeper()),
        "web",
    )
}
