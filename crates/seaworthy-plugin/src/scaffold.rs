//! `seaworthy plugin new`: a plugin crate that builds with
//! `cargo build --release --target wasm32-wasip2` out of the box and works as a fixture.
//!
//! The crate is standalone (its own `[workspace]`, the WIT package copied into `wit/`), so it
//! builds wherever it is created. Its code is a complete plugin for a service with a line
//! protocol over TCP — memcached as shipped (`version` for readiness, `flush_all` for `clean()`)
//! — with the places to change for another service marked. Its unit tests (`cargo test`) check
//! the protocol helpers on the host.

use std::path::{Path, PathBuf};

use crate::error::{PluginError, Result};
use crate::manifest::MANIFEST_FILE;

/// The newest WIT version this host runs (the last of [`crate::SUPPORTED_WIT_VERSIONS`], which a
/// test checks), as a literal: it names the folder under `wit/` the scaffold's files are
/// embedded from.
macro_rules! newest_wit {
    () => {
        "0.1.1"
    };
}

/// The files of the WIT folder of [`WIT_VERSION`].
macro_rules! wit_file {
    ($file:literal) => {
        (
            $file,
            include_str!(concat!("../../../wit/", newest_wit!(), "/", $file)),
        )
    };
}

/// The WIT version a new plugin targets: the newest this host supports.
pub const WIT_VERSION: &str = newest_wit!();

/// The WIT files of [`WIT_VERSION`], embedded so a scaffold does not need this repository.
const WIT_FILES: &[(&str, &str)] = &[
    wit_file!("fixture.wit"),
    wit_file!("host.wit"),
    wit_file!("types.wit"),
];

const CARGO_TOML: &str = r#"[package]
name = "__NAME__"
version = "0.1.0"
edition = "2021"
description = "Seaworthy fixture plugin: __NAME__."
publish = false

[lib]
crate-type = ["cdylib"]   # a component with exports, not a program

[dependencies]
wit-bindgen = { version = "0.57", default-features = false, features = ["macros", "realloc"] }

# A crate of its own, even inside another cargo workspace: plugins build for wasm32-wasip2.
[workspace]

# Small components load faster; the host compiles each once and caches the result.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
debug = false
panic = "abort"
"#;

const MANIFEST: &str = r#"# The plugin's manifest: Seaworthy reads it before compiling the component.
id = "__ID__"
version = "0.1.0"
# The seaworthy:fixture WIT version in wit/.
wit = "__WIT__"
description = "__ID__: a TCP service, cleaned over its own protocol"
# The component, relative to this file (`seaworthy plugin push` also finds cargo's output).
wasm = "plugin.wasm"

[capabilities]
# Container ports the plugin connects to; users grant each ([plugins.grants.__ID__] tcp = [11211]).
tcp = [11211]
"#;

const LIB_RS: &str = r#"//! __ID__: a Seaworthy fixture plugin.
//!
//! As generated, it runs memcached and talks to it over TCP: `version` tells that it is ready,
//! `flush_all` puts it back to its baseline. For another service, change the places marked
//! `CHANGE:` (and the port in seaworthy-plugin.toml).
//!
//! Configuration (all optional):
//!
//! | key     | default          | meaning              |
//! |---------|------------------|----------------------|
//! | `image` | `memcached:1.6`  | the image to run     |

wit_bindgen::generate!({ world: "fixture-plugin", path: "wit" });

use exports::seaworthy::fixture::fixture::Guest;
use seaworthy::fixture::host::{self, Level};
use seaworthy::fixture::types::{
    Config, ConnectionInfo, ContainerSpec, FixtureError, Isolated, PluginMetadata, Wait,
};

// CHANGE: the service's image, port and commands.
const DEFAULT_IMAGE: &str = "memcached:1.6";
const PORT: u16 = 11211;
const READY_COMMAND: &str = "version\r\n";
const READY_ANSWER: &str = "VERSION";
const CLEAN_COMMAND: &str = "flush_all\r\n";
const CLEAN_ANSWER: &str = "OK";
/// How long one exchange with the service may take.
const TIMEOUT_MS: u32 = 5_000;

/// The value of `key` in the configuration (the last one wins).
fn setting<'a>(config: &'a [(String, String)], key: &str) -> Option<&'a str> {
    config.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The first complete line of `bytes`, without its line ending.
fn first_line(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|b| *b == b'\n')?;
    Some(String::from_utf8_lossy(&bytes[..end]).trim_end_matches('\r').to_string())
}

/// Sends `command` over a new connection and returns the first line of the answer.
fn ask(command: &str) -> Result<String, FixtureError> {
    let stream = host::tcp_connect(PORT, TIMEOUT_MS).map_err(FixtureError::Host)?;
    stream.send(command.as_bytes()).map_err(FixtureError::Host)?;
    let mut answer = Vec::new();
    loop {
        if let Some(line) = first_line(&answer) {
            return Ok(line);
        }
        let chunk = stream.receive(4096, TIMEOUT_MS).map_err(FixtureError::Host)?;
        if chunk.is_empty() {
            return Err(FixtureError::Failed(format!(
                "the service closed the connection after {command:?}"
            )));
        }
        answer.extend_from_slice(&chunk);
    }
}

struct Plugin;

impl Guest for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            id: "__ID__".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "__ID__: a TCP service, cleaned over its own protocol".into(),
        }
    }

    fn definition(config: Config) -> Result<ContainerSpec, FixtureError> {
        let image = setting(&config, "image").unwrap_or(DEFAULT_IMAGE);
        if image.trim().is_empty() {
            return Err(FixtureError::InvalidConfig("`image` must not be empty".into()));
        }
        Ok(ContainerSpec {
            image: image.into(),
            env: vec![],
            cmd: None,
            entrypoint: None,
            user: None,
            ports: vec![PORT],            // published on a free host port
            mounts: vec![],
            waits: vec![Wait::Tcp(PORT)], // the host waits for these before calling ready()
            startup_timeout_ms: None,
        })
    }

    fn ready(_config: Config) -> Result<bool, FixtureError> {
        // false = "not yet": the host asks again until the startup deadline.
        Ok(ask(READY_COMMAND).is_ok_and(|line| line.starts_with(READY_ANSWER)))
    }

    fn clean(_config: Config) -> Result<(), FixtureError> {
        let answer = ask(CLEAN_COMMAND)?;
        if answer == CLEAN_ANSWER {
            host::log(Level::Debug, "cleaned");
            Ok(())
        } else {
            Err(FixtureError::Failed(format!(
                "{CLEAN_COMMAND:?} answered {answer:?}, not {CLEAN_ANSWER:?}"
            )))
        }
    }

    fn connection(_config: Config) -> Option<ConnectionInfo> {
        Some(ConnectionInfo {
            scheme: "memcached".into(), // CHANGE: the URL scheme clients use
            port: PORT,
            user: None,
            password: None,
            path: None,
            params: vec![],
        })
    }

    // No per-test namespaces. A service with databases or key prefixes can hand out slots.
    fn isolation_slots(_config: Config) -> u32 {
        0
    }

    fn isolate(_config: Config, _slot: u32) -> Result<Isolated, FixtureError> {
        Err(FixtureError::Failed("__ID__ has no per-test namespaces".into()))
    }

    fn release(_config: Config, _slot: u32) -> Result<(), FixtureError> {
        Ok(())
    }
}

export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_complete_line() {
        assert_eq!(first_line(b"VERSION 1.6.21\r\n"), Some("VERSION 1.6.21".into()));
        assert_eq!(first_line(b"OK\r\nEND\r\n"), Some("OK".into()));
        assert_eq!(first_line(b"VERSI"), None);
    }

    #[test]
    fn the_last_setting_wins() {
        let config = vec![
            ("image".to_string(), "a".to_string()),
            ("image".to_string(), "b".to_string()),
        ];
        assert_eq!(setting(&config, "image"), Some("b"));
        assert_eq!(setting(&config, "port"), None);
    }
}
"#;

const README: &str = r#"# __ID__

A Seaworthy fixture plugin, made with `seaworthy plugin new __ID__`. It targets
`seaworthy:fixture@__WIT__` (the WIT files in `wit/`, and the `wit` key of
`seaworthy-plugin.toml`, which must name the same version): a Seaworthy that runs __WIT__ loads it,
an older one refuses it and names the versions it runs.

```sh
cargo test                                          # the protocol helpers, on the host
cargo build --release --target wasm32-wasip2        # the component
cp target/wasm32-wasip2/release/__LIB__.wasm plugin.wasm
seaworthy plugin check . --grant tcp:11211          # loads it as a test would

seaworthy plugin push . registry.example.com/you/__ID__:0.1.0
seaworthy plugin install registry.example.com/you/__ID__:0.1.0   # pins it in seaworthy.lock
```

In tests:

```rust
let kv = seaworthy_plugin::PluginFixtureDefinition::load("registry.example.com/you/__ID__:0.1.0", [("image", "memcached:1.6")])?;
```

with the port granted in the project's `seaworthy.toml`:

```toml
[plugins.grants.__ID__]
tcp = [11211]
```
"#;

const GITIGNORE: &str = "/target\n/plugin.wasm\nCargo.lock\n";

/// What [`new_plugin`] created.
#[derive(Debug, Clone)]
pub struct Scaffolded {
    /// The crate directory.
    pub dir: PathBuf,
    /// The plugin id (also the crate name).
    pub id: String,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
}

/// Whether `name` can be a plugin id and a crate name: lowercase letters, digits, `-` and `_`,
/// starting with a letter.
fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.len() <= 64
}

/// Creates a plugin crate named `name` in `dir` (which must not exist, or be empty).
pub fn new_plugin(dir: &Path, name: &str) -> Result<Scaffolded> {
    if !valid_name(name) {
        return Err(PluginError::Manifest {
            path: dir.join(MANIFEST_FILE),
            reason: format!(
                "{name:?} cannot be a plugin id: use lowercase letters, digits, `-` and `_`, starting with a letter"
            ),
        });
    }
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(PluginError::io(
            "create a plugin crate in",
            dir,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the directory exists and is not empty",
            ),
        ));
    }
    let fill = |template: &str| {
        template
            .replace("__NAME__", name)
            .replace("__ID__", name)
            .replace("__LIB__", &name.replace('-', "_"))
            .replace("__WIT__", WIT_VERSION)
    };
    let mut files: Vec<(PathBuf, String)> = vec![
        ("Cargo.toml".into(), fill(CARGO_TOML)),
        (MANIFEST_FILE.into(), fill(MANIFEST)),
        ("src/lib.rs".into(), fill(LIB_RS)),
        ("README.md".into(), fill(README)),
        (".gitignore".into(), GITIGNORE.into()),
    ];
    for (file, text) in WIT_FILES {
        files.push((Path::new("wit").join(file), (*text).to_string()));
    }
    for (file, text) in &files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| PluginError::io("create", parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| PluginError::io("write", &path, e))?;
    }
    Ok(Scaffolded {
        dir: dir.to_path_buf(),
        id: name.to_string(),
        files: files.into_iter().map(|(f, _)| f).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_crate_and_refuses_bad_names_and_full_directories() {
        let dir = std::env::temp_dir().join(format!("seaworthy-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let made = new_plugin(&dir, "kv-store").unwrap();
        let manifest =
            crate::Manifest::from_file(&dir.join(MANIFEST_FILE)).expect("a valid manifest");
        assert_eq!(manifest.id, "kv-store");
        assert_eq!(manifest.wit, WIT_VERSION);
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(
            readme.contains(&format!("seaworthy:fixture@{WIT_VERSION}")),
            "{readme}"
        );
        assert!(made.files.contains(&PathBuf::from("wit/types.wit")));
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("fn clean(") && !lib.contains("__ID__"));
        assert!(new_plugin(&dir, "again").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        for bad in ["Kv", "kv/x", "", "1kv"] {
            assert!(new_plugin(&dir, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_plugin_targets_the_newest_wit_this_host_runs() {
        assert_eq!(
            crate::SUPPORTED_WIT_VERSIONS.last(),
            Some(&WIT_VERSION),
            "WIT_VERSION must be the newest supported version"
        );
        let package = format!("package seaworthy:fixture@{WIT_VERSION};");
        for (file, text) in WIT_FILES {
            assert!(text.starts_with(&package), "wit/{file} is not {package}");
        }
    }
}
