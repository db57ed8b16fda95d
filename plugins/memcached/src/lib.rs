//! A Seaworthy fixture plugin for memcached.
//!
//! Configuration (all optional):
//!
//! | key          | default          | meaning                                  |
//! |--------------|------------------|------------------------------------------|
//! | `image`      | `memcached:1.6`  | image to run (image substitution applies) |
//! | `memory-mb`  | `64`             | item memory, `memcached -m`              |
//! | `threads`    | `2`              | worker threads, `memcached -t`           |
//!
//! Readiness: the `version` command answers. Clean: `flush_all` answers `OK`. Both over one
//! TCP connection that the plugin keeps between calls and re-opens when the server dropped it.

use std::cell::RefCell;

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "../../wit/0.1.0",
});

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host::{self, Level, TcpStream};
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, HostError, Isolated, PluginMetadata, Wait,
};

/// memcached's port.
const PORT: u16 = 11211;
/// How long one protocol exchange may take.
const TIMEOUT_MS: u32 = 5_000;

struct Memcached;

thread_local! {
    /// The connection kept between calls (a plugin instance is single-threaded).
    static CONNECTION: RefCell<Option<TcpStream>> = const { RefCell::new(None) };
}

fn get<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn number(
    config: &Config,
    key: &str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, FixtureError> {
    match get(config, key) {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(FixtureError::InvalidConfig(format!(
                "`{key}` must be a whole number from {} to {}, not {v:?}",
                range.start(),
                range.end()
            ))),
        },
    }
}

/// Sends `command` and reads until a line that ends the answer: one for which `done` is true.
fn exchange_once(
    stream: &TcpStream,
    command: &[u8],
    done: fn(&str) -> bool,
) -> Result<String, HostError> {
    stream.send(command)?;
    let mut answer = Vec::new();
    loop {
        let chunk = stream.receive(4096, TIMEOUT_MS)?;
        if chunk.is_empty() {
            return Err(HostError::Closed);
        }
        answer.extend_from_slice(&chunk);
        if answer.ends_with(b"\r\n") {
            let text = String::from_utf8_lossy(&answer).into_owned();
            if text.lines().last().is_some_and(done) {
                return Ok(text);
            }
        }
    }
}

/// One exchange over the kept connection; a connection the server closed is re-opened once.
fn exchange(command: &[u8], done: fn(&str) -> bool) -> Result<String, FixtureError> {
    CONNECTION.with(|cell| {
        let mut slot = cell.borrow_mut();
        let reused = slot.is_some();
        if slot.is_none() {
            *slot = Some(host::tcp_connect(PORT, TIMEOUT_MS)?);
        }
        let stream = slot
            .as_ref()
            .ok_or(FixtureError::Failed("no connection".into()))?;
        match exchange_once(stream, command, done) {
            Ok(text) => Ok(text),
            Err(HostError::Closed | HostError::Io(_)) if reused => {
                host::log(
                    Level::Debug,
                    "memcached closed the kept connection; reconnecting",
                );
                let fresh = host::tcp_connect(PORT, TIMEOUT_MS)?;
                let text = exchange_once(&fresh, command, done);
                *slot = Some(fresh);
                Ok(text?)
            }
            Err(e) => {
                *slot = None;
                Err(FixtureError::Host(e))
            }
        }
    })
}

impl From<HostError> for FixtureError {
    fn from(e: HostError) -> Self {
        FixtureError::Host(e)
    }
}

impl Guest for Memcached {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "memcached".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "memcached, cleaned with flush_all over its own protocol".into(),
        }
    }

    fn definition(config: Config) -> Result<ContainerSpec, FixtureError> {
        for (key, _) in &config {
            if !["image", "memory-mb", "threads"].contains(&key.as_str()) {
                return Err(FixtureError::InvalidConfig(format!(
                    "unknown key `{key}` (known: image, memory-mb, threads)"
                )));
            }
        }
        let memory = number(&config, "memory-mb", 64, 1..=65_536)?;
        let threads = number(&config, "threads", 2, 1..=64)?;
        Ok(ContainerSpec {
            image: get(&config, "image").unwrap_or("memcached:1.6").into(),
            env: Vec::new(),
            cmd: Some(vec![
                "memcached".into(),
                "-m".into(),
                memory.to_string(),
                "-t".into(),
                threads.to_string(),
            ]),
            entrypoint: None,
            user: None,
            ports: vec![PORT],
            mounts: Vec::new(),
            waits: vec![Wait::Tcp(PORT)],
            startup_timeout_ms: None,
        })
    }

    fn ready(_config: Config) -> Result<bool, FixtureError> {
        match exchange(b"version\r\n", |line| {
            line.starts_with("VERSION") || line.starts_with("ERROR")
        }) {
            Ok(answer) if answer.starts_with("VERSION ") => Ok(true),
            Ok(answer) => Err(FixtureError::NotReady(format!(
                "`version` answered {:?}",
                answer.trim_end()
            ))),
            // Not accepting yet: the host asks again.
            Err(FixtureError::Host(HostError::Closed | HostError::Io(_))) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn clean(_config: Config) -> Result<(), FixtureError> {
        let answer = exchange(b"flush_all\r\n", |line| {
            line == "OK" || line.contains("ERROR")
        })?;
        if answer == "OK\r\n" {
            Ok(())
        } else {
            Err(FixtureError::Failed(format!(
                "`flush_all` answered {:?}",
                answer.trim_end()
            )))
        }
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        Some(ConnectionInfo {
            scheme: "memcached".into(),
            port: PORT,
            user: None,
            password: None,
            path: None,
            params: Vec::new(),
        })
    }

    fn isolation_slots(_config: Config) -> u32 {
        0
    }

    fn isolate(_config: Config, _slot: u32) -> Result<Isolated, FixtureError> {
        Err(FixtureError::Failed(
            "memcached has no namespaces to isolate tests in".into(),
        ))
    }

    fn release(_config: Config, _slot: u32) -> Result<(), FixtureError> {
        Ok(())
    }
}

export!(Memcached);
