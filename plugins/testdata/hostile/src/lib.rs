//! Test plugin `hostile`: what a publisher who means harm would try, one attack per
//! configuration (key `attack`; key `when` = `definition` or `clean`, the default, says which
//! call attacks where it matters). Each attack reports what it got as its error, so a test can
//! check what reached the plugin.
//!
//! * `denied-loop`: makes `count` denied host calls (TCP to an undeclared port), then fails
//!   with an error text of `error-bytes` bytes.
//! * `big-error`: fails with an error text of `error-bytes` bytes.
//! * `redirect`: its container answers HTTP on port 80 with `307` to `location` (say, a
//!   loopback address of the host); it reports the status, `location` header and body it got.
//! * `exec-flood`: runs `cat /dev/zero` in its container.
//! * `log-flood`: logs `count` lines.
//! * `log-tail`: its container writes `count` log lines then `last-line`; it asks for the
//!   last line only and reports what it got.
//! * `never-ready`: asks for a startup timeout of `u32::MAX` ms and is never ready.
//! * `huge-spec`: a container spec publishing every port, with a wait on each.
//! * anything else: a quiet plugin (used with components changed by the tests).

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "../../../wit/0.1.0",
});

#[macro_use]
#[path = "../../common.rs"]
mod common;

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host::{self, ExecRequest, HostError, HttpRequest, Level};
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, LogWait, PluginMetadata, Wait,
};

struct Plugin;

fn get<'a>(config: &'a Config, key: &str, default: &'a str) -> &'a str {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map_or(default, |(_, v)| v.as_str())
}

fn number(config: &Config, key: &str, default: u64) -> u64 {
    get(config, key, "").parse().unwrap_or(default)
}

fn attack(config: &Config) -> &str {
    get(config, "attack", "none")
}

fn spec(config: &Config) -> ContainerSpec {
    let mut spec = ContainerSpec {
        image: "busybox".into(),
        env: Vec::new(),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        entrypoint: None,
        user: None,
        ports: Vec::new(),
        mounts: Vec::new(),
        waits: Vec::new(),
        startup_timeout_ms: None,
    };
    match attack(config) {
        "redirect" => {
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\\r\\nLocation: {}\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n",
                get(config, "location", "http://127.0.0.1:1/")
            );
            spec.cmd = Some(vec![
                "sh".into(),
                "-c".into(),
                format!("while true; do printf '{answer}' | nc -l -p 80; done"),
            ]);
            spec.ports = vec![80];
            spec.waits = vec![Wait::Tcp(80)];
        }
        "log-tail" => {
            let count = number(config, "count", 20_000);
            spec.cmd = Some(vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "i=0; while [ $i -lt {count} ]; do echo \"flood line $i\"; i=$((i+1)); done; echo last-line; exec sleep 3600"
                ),
            ]);
            spec.waits = vec![Wait::Log(LogWait {
                pattern: "last-line".into(),
                times: 1,
            })];
        }
        "never-ready" => spec.startup_timeout_ms = Some(u32::MAX),
        "huge-spec" => {
            // Every port, and a wait on each: quadratic work for a host that checks each wait's
            // port against the list.
            spec.ports = (1..=u16::MAX).collect();
            spec.waits = spec.ports.iter().map(|p| Wait::Tcp(*p)).collect();
        }
        _ => {}
    }
    spec
}

fn text_of(config: &Config) -> String {
    "x".repeat(number(config, "error-bytes", 64) as usize)
}

fn run(config: &Config) -> Result<(), FixtureError> {
    match attack(config) {
        "denied-loop" => {
            for _ in 0..number(config, "count", 1_000_000) {
                let _ = host::tcp_connect(9, 1);
            }
            Err(FixtureError::Failed(text_of(config)))
        }
        "big-error" => Err(FixtureError::Failed(text_of(config))),
        "redirect" => {
            // The container's `nc` serves one connection at a time: retry while it restarts.
            let mut tries = 0;
            let answer = loop {
                let answer = host::http(&HttpRequest {
                    method: "GET".into(),
                    port: 80,
                    path: "/".into(),
                    headers: Vec::new(),
                    body: Vec::new(),
                    timeout_ms: Some(5_000),
                });
                match answer {
                    Err(HostError::Io(_)) if tries < 50 => {
                        tries += 1;
                        host::sleep(100);
                    }
                    other => break other.map_err(FixtureError::Host)?,
                }
            };
            let location = answer
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.clone());
            Err(FixtureError::Failed(format!(
                "got status {} location {:?} body {:?}",
                answer.status,
                location,
                String::from_utf8_lossy(&answer.body)
            )))
        }
        "exec-flood" => {
            let out = host::exec(&ExecRequest {
                argv: vec!["cat".into(), "/dev/zero".into()],
                env: Vec::new(),
                user: None,
                workdir: None,
                stdin: None,
                timeout_ms: Some(20_000),
            })
            .map_err(FixtureError::Host)?;
            Err(FixtureError::Failed(format!(
                "got {} bytes of output",
                out.stdout.len()
            )))
        }
        "log-flood" => {
            for i in 0..number(config, "count", 1_000_000) {
                host::log(Level::Warn, &format!("flood {i}"));
            }
            Ok(())
        }
        "log-tail" => {
            let lines = host::container_logs(Some(1)).map_err(FixtureError::Host)?;
            let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
            Err(FixtureError::Failed(format!("got lines {texts:?}")))
        }
        _ => Ok(()),
    }
}

impl Guest for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "attacks the host, one attack per configuration".into(),
        }
    }

    fn definition(config: Config) -> Result<ContainerSpec, FixtureError> {
        if get(&config, "when", "clean") == "definition" {
            run(&config)?;
        }
        Ok(spec(&config))
    }

    fn ready(config: Config) -> Result<bool, FixtureError> {
        Ok(attack(&config) != "never-ready")
    }

    fn clean(config: Config) -> Result<(), FixtureError> {
        run(&config)
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        None
    }

    no_isolation!();
}

export!(Plugin);
