//! The on-disk cache of compiled components.
//!
//! Compiling a component takes a noticeable time (a hundred milliseconds or more); loading a
//! precompiled one takes well under a millisecond. The cache keeps the compiled artifact under
//! a key made of the engine's compatibility hash (wasmtime version, compiler settings, CPU
//! features) and the sha256 of the wasm bytes, so a changed plugin or a different host never
//! loads a stale artifact. Files are written to a temporary name and renamed, so a reader never
//! sees half a file. Only artifacts this host wrote are ever deserialized: the directory is the
//! user's own cache (`SEAWORTHY_PLUGIN_CACHE`, `[plugins] cache`, else
//! `$XDG_CACHE_HOME/seaworthy/plugins` or `~/.cache/seaworthy/plugins`).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where compiled components are kept, or nowhere.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
}

/// Feeds `Hash` output into sha256, so the key is stable across processes (unlike
/// `DefaultHasher`, whose output is not promised to stay the same).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The sha256 of `bytes`, in hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The default cache directory.
pub(crate) fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SEAWORTHY_PLUGIN_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("seaworthy").join("plugins"));
    }
    std::env::var_os("HOME").map(|home| {
        PathBuf::from(home)
            .join(".cache")
            .join("seaworthy")
            .join("plugins")
    })
}

impl CompileCache {
    /// A cache in `dir`, or none.
    pub(crate) fn new(dir: Option<PathBuf>) -> CompileCache {
        CompileCache { dir }
    }

    /// The directory, if caching is on.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The cache key of a component whose wasm hashes to `wasm_sha256`, for `engine`.
    pub(crate) fn key(engine: &Engine, wasm_sha256: &str) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.0.update(wasm_sha256.as_bytes());
        hex::encode(hasher.0.finalize())
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{key}.cwasm")))
    }

    /// The compiled component stored under `key`, if there is one this engine can load.
    pub(crate) fn get(&self, engine: &Engine, key: &str) -> Option<Component> {
        let path = self.path(key)?;
        if !path.is_file() {
            return None;
        }
        // SAFETY: the file was written by `put` below from `Engine::precompile_component` of
        // this same engine configuration (the key includes its compatibility hash), in the
        // user's own cache directory; wasmtime still checks its header and version.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unusable cached component");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a serialized component under `key`. Failures are logged, not fatal: the next
    /// load compiles again.
    pub(crate) fn put(&self, key: &str, serialized: &[u8]) {
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.path(key)) else {
            return;
        };
        let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, serialized))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), error = %e, "could not cache a compiled component");
        }
    }
}
