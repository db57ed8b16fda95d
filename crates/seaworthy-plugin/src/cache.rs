//! The on-disk cache of compiled components.
//!
//! Compiling a component takes a noticeable time (a hundred milliseconds or more); loading a
//! precompiled one takes well under a millisecond. The cache keeps the compiled artifact under
//! a key made of the engine's compatibility hash (wasmtime version, compiler settings, CPU
//! features) and the sha256 of the wasm bytes, so a changed plugin or a different host never
//! loads a stale artifact. Each write goes to a temporary file of its own (process id and a
//! counter) and is renamed into place, so a reader never sees half a file, even while two loads
//! in one process store the same component. Only artifacts this host wrote are ever
//! deserialized: the directory is the user's own cache (`SEAWORTHY_PLUGIN_CACHE`,
//! `[plugins] cache`, else `$XDG_CACHE_HOME/seaworthy/plugins` or `~/.cache/seaworthy/plugins`).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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

/// A temporary file name for one write of the entry `key`: unique to this process (its id) and
/// to this write within it (a counter), so no two writers ever share one.
fn temp_name(key: &str) -> String {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let write = WRITES.fetch_add(1, Ordering::Relaxed);
    format!(".{key}.{}.{write}.tmp", std::process::id())
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
    /// load compiles again. Concurrent stores (other threads, other processes) each write a
    /// temporary file of their own and rename it into place, so the entry is always one whole
    /// artifact.
    pub(crate) fn put(&self, key: &str, serialized: &[u8]) {
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.path(key)) else {
            return;
        };
        let tmp = dir.join(temp_name(key));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, serialized))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), error = %e, "could not cache a compiled component");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_differ_per_write() {
        assert_ne!(temp_name("k"), temp_name("k"));
        assert!(temp_name("k").starts_with(&format!(".k.{}.", std::process::id())));
    }

    #[test]
    fn concurrent_stores_of_one_key_never_show_a_partial_artifact() {
        let dir = std::env::temp_dir().join(format!("sw-cache-put-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = CompileCache::new(Some(dir.clone()));
        let entry = dir.join("key.cwasm");
        // Each writer's bytes are different, so a mix or a truncation shows.
        let artifacts: Vec<Vec<u8>> = (1..=4u8).map(|i| vec![i; 1 << 20]).collect();
        let writing = std::sync::atomic::AtomicBool::new(true);
        let torn = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut torn = Vec::new();
                while writing.load(Ordering::Relaxed) {
                    if let Ok(bytes) = std::fs::read(&entry) {
                        if !artifacts.contains(&bytes) {
                            torn.push(bytes.len());
                        }
                    }
                }
                torn
            });
            let writers: Vec<_> = artifacts
                .iter()
                .map(|artifact| {
                    let cache = &cache;
                    scope.spawn(move || {
                        for _ in 0..50 {
                            cache.put("key", artifact);
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
            writing.store(false, Ordering::Relaxed);
            reader.join().unwrap()
        });
        assert!(
            torn.is_empty(),
            "a reader saw partial entries of {torn:?} bytes"
        );
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["key.cwasm"], "temporary files were left behind");
        assert!(artifacts.contains(&std::fs::read(&entry).unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
