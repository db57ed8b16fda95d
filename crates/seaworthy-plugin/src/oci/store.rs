//! The local content-addressed store of installed plugins.
//!
//! ```text
//! <root>/blobs/sha256/<hex>          every blob and manifest fetched, named by its digest
//! <root>/plugins/sha256-<hex>/       an installed plugin (manifest digest): its
//!                                    seaworthy-plugin.toml and component, ready to load
//! ```
//!
//! Blobs are checked against their name whenever they are read, so a corrupted file is never
//! used. The root is `SEAWORTHY_OCI_CACHE`, else `$XDG_CACHE_HOME/seaworthy/oci`, else
//! `~/.cache/seaworthy/oci`.

use std::path::{Path, PathBuf};

use crate::cache::sha256_hex;
use crate::error::{PluginError, Result};

/// The default store directory.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SEAWORTHY_OCI_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("seaworthy").join("oci")
}

/// The sha256 digest of `bytes`, `sha256:<hex>`.
pub(crate) fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// What reading a blob from the store found.
pub(crate) enum Cached {
    /// Not in the store.
    Missing,
    /// In the store, and its bytes match its digest.
    Valid(Vec<u8>),
    /// In the store, with bytes of another digest (the file was changed or corrupted).
    Corrupt {
        /// The digest of the bytes found.
        actual: String,
    },
}

/// A store rooted at a directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
}

impl Store {
    pub(crate) fn new(root: PathBuf) -> Store {
        Store { root }
    }

    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs").join("sha256").join(hex)
    }

    /// The directory an artifact with manifest `digest` is installed in.
    pub(crate) fn plugin_dir(&self, digest: &str) -> PathBuf {
        self.root.join("plugins").join(digest.replace(':', "-"))
    }

    /// Blob `digest`, checked: only a well-formed digest names a file, and only a regular file
    /// of at most `limit` bytes is read.
    pub(crate) fn get(&self, digest: &str, limit: u64) -> Cached {
        if !super::reference::is_sha256_digest(digest) {
            return Cached::Missing;
        }
        match crate::files::read_regular(&self.blob_path(digest), limit) {
            Err(_) => Cached::Missing,
            Ok(bytes) => {
                let actual = digest_of(&bytes);
                if actual == digest {
                    Cached::Valid(bytes)
                } else {
                    Cached::Corrupt { actual }
                }
            }
        }
    }

    /// Stores `bytes` (whose digest the caller checked) as blob `digest`.
    pub(crate) fn put(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        if !super::reference::is_sha256_digest(digest) {
            return Err(PluginError::Artifact {
                reference: "-".into(),
                reason: format!("{digest:?} is not a sha256 digest; not stored"),
            });
        }
        write_atomic(&self.blob_path(digest), bytes)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, creating the directory, and
/// leaves an identical file alone.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| PluginError::io("create", dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            PluginError::io("write", path, e)
        })
}
