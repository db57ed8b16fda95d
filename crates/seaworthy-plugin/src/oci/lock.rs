//! `seaworthy.lock`: the plugins a project uses, pinned by digest.
//!
//! ```toml
//! # Written by Seaworthy: fixture plugins pinned by digest. Commit this file.
//! version = 1
//!
//! [[plugin]]
//! reference = "registry.example.com/acme/kv:0.1"
//! manifest = "sha256:…"          # the OCI manifest the reference resolved to
//! component = "sha256:…"         # its wasm layer
//! plugin-manifest = "sha256:…"   # its seaworthy-plugin.toml layer
//! ```
//!
//! An install of a locked reference fetches the pinned manifest by digest (so a moved tag changes
//! nothing) and refuses layers other than the pinned ones.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::reference::is_sha256_digest;
use crate::error::{PluginError, Result};

/// The lockfile's name.
pub const LOCKFILE: &str = "seaworthy.lock";

/// The format version this host writes and reads.
const FORMAT: u32 = 1;

/// One pinned plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedPlugin {
    /// The reference as the project names it (`registry/namespace/name:tag`).
    pub reference: String,
    /// The digest of the OCI manifest it resolved to.
    pub manifest: String,
    /// The digest of the component (the `application/wasm` layer).
    pub component: String,
    /// The digest of the plugin manifest (the `seaworthy-plugin.toml` layer).
    pub plugin_manifest: String,
    /// The digest of the artifact's config blob (absent in lockfiles written before it was
    /// pinned; written on the next install).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// The contents of `seaworthy.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// The format version (1).
    #[serde(default = "format")]
    pub version: u32,
    /// The pinned plugins, sorted by reference.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<LockedPlugin>,
}

fn format() -> u32 {
    FORMAT
}

impl Default for Lockfile {
    fn default() -> Self {
        Lockfile {
            version: FORMAT,
            plugins: Vec::new(),
        }
    }
}

impl Lockfile {
    /// Reads `path`; a missing file is an empty lockfile.
    pub fn load(path: &Path) -> Result<Lockfile> {
        let text =
            match crate::files::read_regular_text(path, crate::files::MAX_MANIFEST_BYTES * 16) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Lockfile::default())
                }
                Err(e) => return Err(PluginError::io("read lockfile", path, e)),
            };
        let invalid = |reason: String| PluginError::Lockfile {
            path: path.to_path_buf(),
            reason,
        };
        let lock: Lockfile =
            toml::from_str(&text).map_err(|e| invalid(e.to_string().trim().to_string()))?;
        if lock.version != FORMAT {
            return Err(invalid(format!(
                "format version {} is not one this Seaworthy reads ({FORMAT})",
                lock.version
            )));
        }
        for p in &lock.plugins {
            for (field, digest) in [
                ("manifest", &p.manifest),
                ("component", &p.component),
                ("plugin-manifest", &p.plugin_manifest),
            ]
            .into_iter()
            .chain(p.config.as_ref().map(|c| ("config", c)))
            {
                if !is_sha256_digest(digest) {
                    return Err(invalid(format!(
                        "{}: {field} = {digest:?} is not a sha256 digest",
                        p.reference
                    )));
                }
            }
        }
        Ok(lock)
    }

    /// Writes the lockfile to `path` (to a temporary file, then renamed).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut lock = self.clone();
        lock.plugins.sort_by(|a, b| a.reference.cmp(&b.reference));
        let body = toml::to_string(&lock).map_err(|e| PluginError::Lockfile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let text = format!(
            "# Written by Seaworthy: fixture plugins pinned by digest. Commit this file.\n\
             # `seaworthy plugin install REF` adds a plugin; `--update` moves a pin to what the tag names now.\n{body}"
        );
        let tmp = path.with_extension(format!("lock.tmp{}", std::process::id()));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                PluginError::io("write lockfile", path, e)
            })
    }

    /// The entry for `reference`.
    pub fn get(&self, reference: &str) -> Option<&LockedPlugin> {
        self.plugins.iter().find(|p| p.reference == reference)
    }

    /// Adds or replaces the entry for `entry.reference`.
    pub fn set(&mut self, entry: LockedPlugin) {
        match self
            .plugins
            .iter_mut()
            .find(|p| p.reference == entry.reference)
        {
            Some(old) => *old = entry,
            None => self.plugins.push(entry),
        }
    }
}

/// The lockfile a project uses: `SEAWORTHY_LOCKFILE`, else `seaworthy.lock` next to the
/// project's `seaworthy.toml` (the one `SEAWORTHY_CONFIG` names, or the first in the current
/// directory or above), else `seaworthy.lock` in the current directory.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SEAWORTHY_LOCKFILE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let config = std::env::var_os("SEAWORTHY_CONFIG")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_dir().ok().and_then(|d| {
                d.ancestors()
                    .map(|a| a.join("seaworthy.toml"))
                    .find(|p| p.is_file())
            })
        });
    match config.as_deref().and_then(Path::parent) {
        Some(dir) => dir.join(LOCKFILE),
        None => PathBuf::from(LOCKFILE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_digests() {
        let dir = std::env::temp_dir().join(format!("seaworthy-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(LOCKFILE);
        assert_eq!(Lockfile::load(&path).unwrap(), Lockfile::default());
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let mut lock = Lockfile::default();
        lock.set(LockedPlugin {
            reference: "r.example/ns/kv:1".into(),
            manifest: d('a'),
            component: d('b'),
            plugin_manifest: d('c'),
            config: Some(d('e')),
        });
        lock.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("[[plugin]]"), "{text}");
        assert!(text.contains("plugin-manifest = "), "{text}");
        assert!(text.contains("config = "), "{text}");
        assert_eq!(Lockfile::load(&path).unwrap(), lock);

        std::fs::write(&path, text.replace(&d('e'), "sha256:../../etc/passwd")).unwrap();
        let e = Lockfile::load(&path).unwrap_err().to_string();
        assert!(e.contains("config"), "{e}");
        std::fs::write(&path, text.replace(&d('b'), "sha256:zz")).unwrap();
        let e = Lockfile::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("r.example/ns/kv:1") && e.contains("component"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
