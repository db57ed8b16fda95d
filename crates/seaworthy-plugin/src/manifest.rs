//! The plugin manifest, `seaworthy-plugin.toml`, next to the component.
//!
//! ```toml
//! id = "memcached"            # stable identifier: lowercase letters, digits, `-`, `_`
//! version = "0.1.0"           # the plugin's own version
//! wit = "0.1.0"               # the seaworthy:fixture WIT version it was built against
//! description = "memcached, cleaned with flush_all"
//! wasm = "plugin.wasm"        # the component, relative to this file (this is the default)
//!
//! [capabilities]              # what it needs; the user must grant each (see `Grants`)
//! tcp = [11211]               # container ports it connects to
//! http = []                   # container ports it sends HTTP requests to
//! exec = false                # whether it runs commands in its container
//! ```
//!
//! The host reads the manifest first and refuses a plugin whose WIT version it does not support,
//! or which asks for more than it is granted, before reading or compiling the component.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{PluginError, Result};
use crate::grants::Grants;

/// The file name of a manifest.
pub const MANIFEST_FILE: &str = "seaworthy-plugin.toml";

/// What a plugin says about itself, read from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable identifier, used to find the plugin and to grant it capabilities.
    pub id: String,
    /// The plugin's own version.
    pub version: String,
    /// The `seaworthy:fixture` WIT package version the component targets (`0.1.0`).
    pub wit: String,
    /// One line saying what the fixture provides.
    #[serde(default)]
    pub description: String,
    /// The component file, relative to the manifest.
    #[serde(default = "default_wasm")]
    pub wasm: PathBuf,
    /// The capabilities the plugin needs.
    #[serde(default)]
    pub capabilities: Capabilities,
}

fn default_wasm() -> PathBuf {
    PathBuf::from("plugin.wasm")
}

/// Host capabilities a plugin declares (in its manifest) or a user grants (as [`Grants`]).
/// Logging, sleeping and reading its own container's logs need no capability.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Container TCP ports the plugin may connect to.
    #[serde(default)]
    pub tcp: BTreeSet<u16>,
    /// Container ports the plugin may send HTTP requests to.
    #[serde(default)]
    pub http: BTreeSet<u16>,
    /// Whether the plugin may run commands in its container.
    #[serde(default)]
    pub exec: bool,
}

impl Capabilities {
    /// Each capability as text: `exec`, `tcp port 11211`, `http port 80`.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.exec {
            out.push("exec".to_string());
        }
        out.extend(self.tcp.iter().map(|p| format!("tcp port {p}")));
        out.extend(self.http.iter().map(|p| format!("http port {p}")));
        out
    }

    /// The capabilities in `self` that `grants` does not cover.
    pub fn not_granted(&self, grants: &Grants) -> Vec<String> {
        let mut out = Vec::new();
        if self.exec && !grants.exec {
            out.push("exec".to_string());
        }
        out.extend(
            self.tcp
                .difference(&grants.tcp)
                .map(|p| format!("tcp port {p}")),
        );
        out.extend(
            self.http
                .difference(&grants.http)
                .map(|p| format!("http port {p}")),
        );
        out
    }

    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        !self.exec && self.tcp.is_empty() && self.http.is_empty()
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = self.describe();
        if all.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&all.join(", "))
        }
    }
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn from_file(path: &Path) -> Result<Manifest> {
        let text = crate::files::read_regular_text(path, crate::files::MAX_MANIFEST_BYTES)
            .map_err(|e| PluginError::io("read plugin manifest", path, e))?;
        Manifest::parse(&text, path)
    }

    /// Parses and validates manifest `text`; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let invalid = |reason: String| PluginError::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim().to_string()))?;
        let id_ok = !manifest.id.is_empty()
            && manifest.id.len() <= 64
            && manifest
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(invalid(format!(
                "`id` {:?} must be 1 to 64 lowercase letters, digits, `-` or `_`",
                manifest.id
            )));
        }
        if manifest.version.trim().is_empty() {
            return Err(invalid("`version` is empty".into()));
        }
        if !is_version(&manifest.wit) {
            return Err(invalid(format!(
                "`wit` {:?} is not a version like \"0.1.0\"",
                manifest.wit
            )));
        }
        if manifest.wasm.is_absolute()
            || manifest
                .wasm
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(invalid(format!(
                "`wasm` {:?} must be a path inside the plugin's directory",
                manifest.wasm
            )));
        }
        if manifest.capabilities.tcp.contains(&0) || manifest.capabilities.http.contains(&0) {
            return Err(invalid("port 0 is not a port".into()));
        }
        Ok(manifest)
    }
}

/// `MAJOR.MINOR.PATCH` with numbers only.
pub(crate) fn is_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, Path::new("seaworthy-plugin.toml"))
    }

    #[test]
    fn parses_a_full_manifest() {
        let m = parse(
            r#"
            id = "memcached"
            version = "0.1.0"
            wit = "0.1.0"
            description = "memcached"
            [capabilities]
            tcp = [11211]
            exec = true
            "#,
        )
        .unwrap();
        assert_eq!(m.id, "memcached");
        assert_eq!(m.wasm, PathBuf::from("plugin.wasm"));
        assert_eq!(m.capabilities.describe(), ["exec", "tcp port 11211"]);
        assert_eq!(m.capabilities.to_string(), "exec, tcp port 11211");
    }

    #[test]
    fn refuses_bad_manifests_naming_the_problem() {
        let bad = |text: &str, needle: &str| {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        };
        bad(
            r#"id = "Mem Cached"
version = "1"
wit = "0.1.0""#,
            "`id`",
        );
        bad(
            r#"id = "m"
version = "1"
wit = "latest""#,
            "`wit`",
        );
        bad(
            r#"id = "m"
version = "1"
wit = "0.1.0"
wasm = "../../etc/passwd""#,
            "`wasm`",
        );
        bad(
            r#"id = "m"
version = "1"
wit = "0.1.0"
network = true"#,
            "unknown field",
        );
        bad(
            r#"id = "m"
version = "1"
wit = "0.1.0"
[capabilities]
docker = true"#,
            "unknown field",
        );
    }

    #[test]
    fn lists_what_is_not_granted() {
        let caps = Capabilities {
            tcp: [11211, 22].into(),
            http: [80].into(),
            exec: true,
        };
        let grants = Grants::new().tcp(11211).http(80);
        assert_eq!(caps.not_granted(&grants), ["exec", "tcp port 22"]);
        assert!(caps
            .not_granted(&grants.exec())
            .contains(&"tcp port 22".to_string()));
    }
}
