//! A Seaworthy fixture plugin for Redis that talks to the server only through `redis-cli` run
//! inside the container (the `exec` capability): no network capability is needed.
//!
//! Configuration (all optional):
//!
//! | key         | default   | meaning                                                |
//! |-------------|-----------|--------------------------------------------------------|
//! | `image`     | `redis:7` | image to run (image substitution applies)              |
//! | `databases` | `16`      | number of databases; 1.. are handed out by `isolate`   |
//! | `password`  | none      | `requirepass`, also put in the connection URL          |
//!
//! Readiness: `redis-cli PING` answers `PONG`. Clean: `FLUSHALL`, `SCRIPT FLUSH`,
//! `FUNCTION FLUSH` and dropping pub/sub clients, in one exec. Isolation: database `slot + 1`
//! per test, flushed on release.

wit_bindgen::generate!({
    world: "fixture-plugin",
    path: "../../wit/0.1.0",
});

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host::{self, ExecRequest};
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, Isolated, LogWait, PluginMetadata, Wait,
};

const PORT: u16 = 6379;

struct Redis;

fn get<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn databases(config: &Config) -> Result<u32, FixtureError> {
    match get(config, "databases") {
        None => Ok(16),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=1024).contains(&n) => Ok(n),
            _ => Err(FixtureError::InvalidConfig(format!(
                "`databases` must be a whole number from 1 to 1024, not {v:?}"
            ))),
        },
    }
}

/// Runs `redis-cli` with `commands` on standard input (one per line) against database `db`,
/// and returns its output lines.
fn redis_cli(config: &Config, db: u32, commands: &str) -> Result<Vec<String>, FixtureError> {
    let mut argv = vec!["redis-cli".to_string(), "-n".into(), db.to_string()];
    let mut env = Vec::new();
    if let Some(password) = get(config, "password") {
        // REDISCLI_AUTH keeps the password off the command line.
        env.push(("REDISCLI_AUTH".to_string(), password.to_string()));
        argv.push("--no-auth-warning".into());
    }
    let output = host::exec(&ExecRequest {
        argv,
        env,
        user: None,
        workdir: None,
        stdin: Some(commands.as_bytes().to_vec()),
        timeout_ms: Some(10_000),
    })
    .map_err(FixtureError::Host)?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.exit_code != 0 {
        return Err(FixtureError::Failed(format!(
            "redis-cli exited with code {}: {}{}",
            output.exit_code,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(stdout.lines().map(|l| l.trim().to_string()).collect())
}

/// Fails unless every answer is `OK` (or an integer, for commands that count).
fn expect_ok(what: &str, answers: &[String], expected: usize) -> Result<(), FixtureError> {
    let bad = answers
        .iter()
        .find(|a| a.as_str() != "OK" && a.parse::<i64>().is_err());
    match bad {
        Some(a) => Err(FixtureError::Failed(format!("{what} answered {a:?}"))),
        None if answers.len() < expected => Err(FixtureError::Failed(format!(
            "{what}: expected {expected} answers, got {answers:?}"
        ))),
        None => Ok(()),
    }
}

fn connection_to(config: &Config, db: u32) -> ConnectionInfo {
    ConnectionInfo {
        scheme: "redis".into(),
        port: PORT,
        user: get(config, "password").map(|_| "default".to_string()),
        password: get(config, "password").map(str::to_string),
        path: Some(db.to_string()),
        params: Vec::new(),
    }
}

impl Guest for Redis {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "redis".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description:
                "Redis, cleaned with FLUSHALL through redis-cli; a database per isolated test"
                    .into(),
        }
    }

    fn definition(config: Config) -> Result<ContainerSpec, FixtureError> {
        for (key, _) in &config {
            if !["image", "databases", "password"].contains(&key.as_str()) {
                return Err(FixtureError::InvalidConfig(format!(
                    "unknown key `{key}` (known: image, databases, password)"
                )));
            }
        }
        let mut cmd = vec![
            "redis-server".to_string(),
            "--databases".into(),
            databases(&config)?.to_string(),
            // Tests need no persistence.
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
        ];
        if let Some(password) = get(&config, "password") {
            if password.is_empty() || password.chars().any(char::is_whitespace) {
                return Err(FixtureError::InvalidConfig(
                    "`password` must be non-empty and without spaces".into(),
                ));
            }
            cmd.extend(["--requirepass".to_string(), password.to_string()]);
        }
        Ok(ContainerSpec {
            image: get(&config, "image").unwrap_or("redis:7").into(),
            env: Vec::new(),
            cmd: Some(cmd),
            entrypoint: None,
            user: None,
            ports: vec![PORT],
            mounts: Vec::new(),
            waits: vec![Wait::Log(LogWait {
                pattern: "Ready to accept connections".into(),
                times: 1,
            })],
            startup_timeout_ms: None,
        })
    }

    fn ready(config: Config) -> Result<bool, FixtureError> {
        match redis_cli(&config, 0, "PING\n") {
            Ok(answers) => Ok(answers.first().is_some_and(|a| a == "PONG")),
            Err(FixtureError::Failed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn clean(config: Config) -> Result<(), FixtureError> {
        let answers = redis_cli(
            &config,
            0,
            "FLUSHALL\nSCRIPT FLUSH\nFUNCTION FLUSH\nCLIENT KILL TYPE pubsub\n",
        )?;
        expect_ok("FLUSHALL, SCRIPT FLUSH, FUNCTION FLUSH", &answers, 4)
    }

    fn connection(config: Config) -> Option<ConnectionInfo> {
        Some(connection_to(&config, 0))
    }

    fn isolation_slots(config: Config) -> u32 {
        databases(&config).map_or(0, |n| n - 1)
    }

    fn isolate(config: Config, slot: u32) -> Result<Isolated, FixtureError> {
        let db = slot + 1;
        if db >= databases(&config)? {
            return Err(FixtureError::Failed(format!("no database for slot {slot}")));
        }
        Ok(Isolated {
            namespace: db.to_string(),
            connection: Some(connection_to(&config, db)),
        })
    }

    fn release(config: Config, slot: u32) -> Result<(), FixtureError> {
        let answers = redis_cli(&config, slot + 1, "FLUSHDB\n")?;
        expect_ok("FLUSHDB", &answers, 1)
    }
}

export!(Redis);
