wit_bindgen::generate!({ world: "fixture-plugin", path: "wit" });

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host::{self, TcpStream};
use seaworthy::fixture::types::*;

struct Kv;

const PORT: u16 = 6379;

/// Sends `command` (one line) and returns the first line of the answer.
fn ask(command: &[u8]) -> Result<String, FixtureError> {
    let stream: TcpStream = host::tcp_connect(PORT, 2_000).map_err(FixtureError::Host)?;
    stream.send(command).map_err(FixtureError::Host)?;
    let mut answer = Vec::new();
    while !answer.ends_with(b"\n") {
        let chunk = stream.receive(1024, 2_000).map_err(FixtureError::Host)?;
        if chunk.is_empty() {
            break; // closed
        }
        answer.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&answer).trim().to_string())
}

impl Guest for Kv {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "kv".into(),
            version: "0.1.0".into(),
            description: "a key-value store, flushed over TCP".into(),
        }
    }

    fn definition(config: Config) -> Result<ContainerSpec, FixtureError> {
        let image = config
            .iter()
            .find(|(k, _)| k == "image")
            .map_or("redis:7", |(_, v)| v.as_str());
        Ok(ContainerSpec {
            image: image.into(),
            env: vec![],
            cmd: None,
            entrypoint: None,
            user: None,
            ports: vec![PORT], // published on a random host port
            mounts: vec![],
            waits: vec![Wait::Tcp(PORT)], // the host waits for these first
            startup_timeout_ms: None,
        })
    }

    fn ready(_config: Config) -> Result<bool, FixtureError> {
        // false = "not yet": the host asks again every 50 ms until the startup deadline.
        Ok(ask(b"PING\r\n").is_ok_and(|answer| answer == "+PONG"))
    }

    fn clean(_config: Config) -> Result<(), FixtureError> {
        match ask(b"FLUSHALL\r\n")?.as_str() {
            "+OK" => Ok(()),
            other => Err(FixtureError::Failed(format!("FLUSHALL answered {other:?}"))),
        }
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        Some(ConnectionInfo {
            scheme: "redis".into(),
            port: PORT,
            user: None,
            password: None,
            path: None,
            params: vec![],
        })
    }

    fn isolation_slots(_config: Config) -> u32 {
        0 // no per-test namespaces
    }

    fn isolate(_config: Config, _slot: u32) -> Result<Isolated, FixtureError> {
        Err(FixtureError::Failed("kv has no per-test namespaces".into()))
    }

    fn release(_config: Config, _slot: u32) -> Result<(), FixtureError> {
        Ok(())
    }
}

export!(Kv);
