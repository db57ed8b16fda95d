//! Test plugin `probe`: its `clean` exercises every host call against nginx (HTTP and TCP to
//! port 80, exec, logs, sleep, log) and fails naming the first step whose answer is wrong.
//! Config `http-port` (default 80) lets a test aim HTTP at a port that is not granted.

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "../../../wit/0.1.0",
});

#[macro_use]
#[path = "../../common.rs"]
mod common;

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host::{self, ExecRequest, HttpRequest, Level};
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, HttpWait, PluginMetadata, Wait,
};

struct Plugin;

fn failed(step: &str, why: impl std::fmt::Display) -> FixtureError {
    FixtureError::Failed(format!("{step}: {why}"))
}

fn probe(config: &Config) -> Result<(), FixtureError> {
    let port = config
        .iter()
        .rev()
        .find(|(k, _)| k == "http-port")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(80);
    let response = host::http(&HttpRequest {
        method: "GET".into(),
        port,
        path: "/health".into(),
        headers: vec![("accept".into(), "text/plain".into())],
        body: Vec::new(),
        timeout_ms: Some(5_000),
    })
    .map_err(FixtureError::Host)?;
    if response.status != 200 || response.body != b"ok" {
        return Err(failed(
            "http",
            format!(
                "status {} body {:?}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ),
        ));
    }

    let out = host::exec(&ExecRequest {
        argv: vec!["sh".into(), "-c".into(), "cat; echo \"$PROBE\"".into()],
        env: vec![("PROBE".into(), "env-ok".into())],
        user: None,
        workdir: Some("/tmp".into()),
        stdin: Some(b"stdin-ok\n".to_vec()),
        timeout_ms: Some(5_000),
    })
    .map_err(FixtureError::Host)?;
    if out.exit_code != 0 || out.stdout != b"stdin-ok\nenv-ok\n" {
        return Err(failed(
            "exec",
            format!(
                "code {} stdout {:?}",
                out.exit_code,
                String::from_utf8_lossy(&out.stdout)
            ),
        ));
    }

    let stream = host::tcp_connect(80, 2_000).map_err(FixtureError::Host)?;
    stream
        .send(b"GET /health HTTP/1.0\r\n\r\n")
        .map_err(FixtureError::Host)?;
    let mut answer = Vec::new();
    loop {
        let chunk = stream.receive(4096, 2_000).map_err(FixtureError::Host)?;
        if chunk.is_empty() {
            break;
        }
        answer.extend_from_slice(&chunk);
    }
    let answer = String::from_utf8_lossy(&answer);
    if !answer.starts_with("HTTP/1.1 200") || !answer.ends_with("ok") {
        return Err(failed("tcp", format!("answer {answer:?}")));
    }

    let lines = host::container_logs(Some(50)).map_err(FixtureError::Host)?;
    if !lines.iter().any(|l| l.text.contains("GET /health")) {
        return Err(failed(
            "logs",
            format!("no access log line in {} lines", lines.len()),
        ));
    }

    host::sleep(1);
    host::log(Level::Info, "probe: every host call answered");
    Ok(())
}

impl Guest for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "probe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "exercises every host call against nginx".into(),
        }
    }

    fn definition(_config: Config) -> Result<ContainerSpec, FixtureError> {
        Ok(ContainerSpec {
            image: "nginx".into(),
            env: Vec::new(),
            cmd: None,
            entrypoint: None,
            user: None,
            ports: vec![80],
            mounts: Vec::new(),
            waits: vec![Wait::Http(HttpWait {
                port: 80,
                path: "/health".into(),
                status: Some(200),
            })],
            startup_timeout_ms: Some(30_000),
        })
    }

    fn ready(_config: Config) -> Result<bool, FixtureError> {
        Ok(true)
    }

    fn clean(config: Config) -> Result<(), FixtureError> {
        probe(&config)
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        Some(ConnectionInfo {
            scheme: "http".into(),
            port: 80,
            user: None,
            password: None,
            path: None,
            params: Vec::new(),
        })
    }

    no_isolation!();
}

export!(Plugin);
