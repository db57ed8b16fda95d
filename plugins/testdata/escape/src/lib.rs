//! Test plugin `escape`: tries to leave the sandbox through WASI, which the host links with an
//! empty context (no preopened directories, no environment, no socket address allowed).
//!
//! Each attempt is one line of a report, `- <attempt>: <outcome>`, the outcome being
//! `failed: <error>`, `empty`, or `GOT <what>` when something got through. The report is the
//! error of `definition` (with config `when` = `definition`, before any container exists) and of
//! `clean`, so a test reads it in the error message. The attempts: environment variables and
//! arguments; reading `/etc/passwd` and the file named by config `file`; listing `/`, `.` and
//! `/var/run`; writing `/tmp`; the Docker socket through `std::fs` (`std::os::unix::net` does
//! not exist on wasm32-wasip2); TCP connections to the addresses in config `tcp`
//! (comma-separated) and to Docker's TCP ports; a TCP listener; a UDP datagram to config `udp`;
//! and a DNS lookup.
//!
//! With config `try` = `silent-tcp`, `clean` instead connects through the host (capability
//! `tcp` 7000) to the container's busybox `nc`, which accepts and never answers, and waits for
//! an answer as long as the host lets it.

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "../../../wit/0.1.0",
});

#[macro_use]
#[path = "../../common.rs"]
mod common;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host;
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, PluginMetadata, Wait,
};

/// The port of the container's silent server.
const PORT: u16 = 7000;

struct Plugin;

fn get<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `failed: <error>`, `empty` when `got` finds nothing in the result, else `GOT <what>`.
fn outcome<T>(result: io::Result<T>, got: impl FnOnce(T) -> Option<String>) -> String {
    match result.map(got) {
        Err(e) => format!("failed: {e}"),
        Ok(None) => "empty".into(),
        Ok(Some(what)) => format!("GOT {what}"),
    }
}

fn listed(dir: &str) -> io::Result<Vec<String>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect()
}

fn address(text: &str) -> io::Result<SocketAddr> {
    text.parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{text:?}: {e}")))
}

/// Every attempt, with what came of it.
fn attempts(config: &Config) -> Vec<(String, String)> {
    let mut report = Vec::new();
    let mut attempt = |what: String, outcome: String| report.push((what, outcome));

    let vars: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    attempt(
        "environment variables".into(),
        outcome(Ok(vars), |v| (!v.is_empty()).then(|| v.join(","))),
    );
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    attempt(
        "arguments".into(),
        outcome(Ok(args), |a| (!a.is_empty()).then(|| a.join(" "))),
    );

    let mut files = vec!["/etc/passwd".to_string(), "/proc/self/environ".into()];
    files.extend(get(config, "file").map(str::to_string));
    for file in files {
        attempt(
            format!("read {file}"),
            outcome(std::fs::read_to_string(&file), |text| {
                Some(format!("{} bytes: {text:?}", text.len()))
            }),
        );
    }
    for dir in ["/", ".", "/var/run"] {
        attempt(
            format!("list {dir}"),
            outcome(listed(dir), |names| {
                (!names.is_empty()).then(|| names.join(","))
            }),
        );
    }
    attempt(
        "write /tmp/seaworthy-escape".into(),
        outcome(std::fs::write("/tmp/seaworthy-escape", b"escaped"), |()| {
            Some("wrote it".into())
        }),
    );
    for socket in ["/var/run/docker.sock", "/run/docker.sock"] {
        attempt(
            format!("stat {socket}"),
            outcome(std::fs::metadata(socket), |m| {
                Some(format!("{:?}", m.file_type()))
            }),
        );
        attempt(
            format!("open {socket}"),
            outcome(std::fs::File::open(socket), |_| Some("opened".into())),
        );
    }

    let mut targets: Vec<String> = get(config, "tcp")
        .into_iter()
        .flat_map(|t| t.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    targets.extend(["127.0.0.1:2375".to_string(), "127.0.0.1:2376".into()]);
    for target in targets {
        let connected = address(&target)
            .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)));
        attempt(
            format!("tcp connect {target}"),
            outcome(connected, |s| {
                Some(format!("connected from {:?}", s.local_addr()))
            }),
        );
    }
    attempt(
        "tcp listen 0.0.0.0:0".into(),
        outcome(TcpListener::bind("0.0.0.0:0"), |l| {
            Some(format!("listening on {:?}", l.local_addr()))
        }),
    );
    if let Some(target) = get(config, "udp") {
        let sent = address(target).and_then(|a| {
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            socket.send_to(b"escaped", a)
        });
        attempt(
            format!("udp send to {target}"),
            outcome(sent, |n| Some(format!("sent {n} bytes"))),
        );
    }
    attempt(
        "resolve localhost".into(),
        outcome(("localhost", 80).to_socket_addrs(), |found| {
            let found: Vec<String> = found.map(|a| a.to_string()).collect();
            (!found.is_empty()).then(|| found.join(","))
        }),
    );
    report
}

/// The attempts as the text of an error.
fn report(config: &Config) -> FixtureError {
    let lines: Vec<String> = attempts(config)
        .into_iter()
        .map(|(what, outcome)| format!("- {what}: {outcome}"))
        .collect();
    FixtureError::Failed(format!("sandbox report:\n{}", lines.join("\n")))
}

/// Waits on the silent server for as long as the host allows.
fn silent_tcp() -> FixtureError {
    let stream = match host::tcp_connect(PORT, 5_000) {
        Ok(stream) => stream,
        Err(e) => return FixtureError::Host(e),
    };
    // Asks for about 50 days: the host caps every host call at its own timeout.
    match stream.receive(64, u32::MAX) {
        Ok(bytes) => FixtureError::Failed(format!(
            "the silent server answered with {} bytes",
            bytes.len()
        )),
        Err(e) => FixtureError::Host(e),
    }
}

impl Guest for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "escape".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "tries to reach the host through WASI; waits on a silent port".into(),
        }
    }

    fn definition(config: Config) -> Result<ContainerSpec, FixtureError> {
        if get(&config, "when") == Some("definition") {
            return Err(report(&config));
        }
        // busybox `nc` accepts every connection and runs `sleep` on it: nothing is ever sent.
        let cmd = ["nc", "-ll", "-p", "7000", "-e", "sleep", "3600"];
        Ok(ContainerSpec {
            image: "busybox:1.36".into(),
            env: Vec::new(),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            entrypoint: None,
            user: None,
            ports: vec![PORT],
            mounts: Vec::new(),
            waits: vec![Wait::Tcp(PORT)],
            startup_timeout_ms: Some(30_000),
        })
    }

    fn ready(_config: Config) -> Result<bool, FixtureError> {
        Ok(true)
    }

    fn clean(config: Config) -> Result<(), FixtureError> {
        match get(&config, "try") {
            Some("silent-tcp") => Err(silent_tcp()),
            _ => Err(report(&config)),
        }
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        None
    }

    no_isolation!();
}

export!(Plugin);
