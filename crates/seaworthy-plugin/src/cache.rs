//! The on-disk cache of compiled components.
//!
//! Compiling a component takes a noticeable time (a hundred milliseconds or more); loading a
//! precompiled one takes well under a millisecond. The cache keeps the compiled artifact under
//! a key made of the engine's compatibility hash (wasmtime version, compiler settings, CPU
//! features) and the sha256 of the wasm bytes, so a changed plugin or a different host never
//! loads a stale artifact. Each write goes to a temporary file of its own (process id and a
//! counter) and is renamed into place, so a reader never sees half a file, even while two loads
//! in one process store the same component.
//!
//! A compiled artifact is native code that runs outside the sandbox, so the cache is a trust
//! boundary. Only the user says where it is (`SEAWORTHY_PLUGIN_CACHE`, the host builder, else
//! `$XDG_CACHE_HOME/seaworthy/plugins` or `~/.cache/seaworthy/plugins`; never a project's
//! `seaworthy.toml`), and only artifacts a host of this user wrote are deserialized: each is
//! stored with an HMAC-SHA256 over its cache key and its bytes, under a secret key the host
//! keeps outside the cache (`$XDG_CONFIG_HOME/seaworthy/plugin-cache.key`, else
//! `~/.config/seaworthy/plugin-cache.key`, created with mode 0600). An artifact whose tag does not
//! verify (planted, copied from another plugin's key, changed) is ignored and recompiled.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where compiled components are kept, or nowhere.
#[derive(Clone)]
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
    /// The secret the artifacts' tags are keyed with.
    secret: [u8; 32],
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileCache")
            .field("dir", &self.dir)
            .finish()
    }
}

/// What a cache entry starts with, before its tag and the artifact.
const MAGIC: &[u8; 8] = b"SWCC\0\0\0\x01";
/// The length of the tag (HMAC-SHA256).
const TAG: usize = 32;
/// The largest entry read.
const MAX_ENTRY: u64 = 1 << 30;

/// HMAC-SHA256 (RFC 2104) of `parts`, concatenated, under `key`.
fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares two tags in time independent of where they differ.
fn same_tag(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The file holding this user's cache secret.
fn secret_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("seaworthy").join("plugin-cache.key"))
}

/// 32 bytes from the system's random source.
fn random_secret() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
    Ok(secret)
}

/// This user's cache secret: read from [`secret_path`], created there on first use. Without a
/// place to keep it, a secret of this process only (the disk cache then serves this process).
fn user_secret() -> [u8; 32] {
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    *SECRET.get_or_init(|| {
        let fresh = random_secret().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no random source; the compile cache is keyed by the process id and time");
            let mut hasher = Sha256::new();
            hasher.update(std::process::id().to_le_bytes());
            hasher.update(format!("{:?}", std::time::SystemTime::now()).as_bytes());
            hasher.finalize().into()
        });
        let Some(path) = secret_path() else {
            return fresh;
        };
        match load_or_create_secret(&path, &fresh) {
            Ok(secret) => secret,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot keep the compile cache's secret; cached components are trusted by this process only");
                fresh
            }
        }
    })
}

fn load_or_create_secret(path: &Path, fresh: &[u8; 32]) -> std::io::Result<[u8; 32]> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let read = |path: &Path| -> std::io::Result<[u8; 32]> {
        let bytes = crate::files::read_regular(path, 64)?;
        let hex = String::from_utf8_lossy(&bytes);
        let mut secret = [0u8; 32];
        hex::decode_to_slice(hex.trim(), &mut secret).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not a key: {e}"))
        })?;
        Ok(secret)
    };
    if path.exists() {
        return read(path);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(hex::encode(fresh).as_bytes())?;
            Ok(*fresh)
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e),
    }
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
        let secret = if dir.is_some() {
            user_secret()
        } else {
            [0; 32]
        };
        CompileCache { dir, secret }
    }

    /// A cache in `dir` whose tags are keyed with `secret` (tests).
    #[cfg(test)]
    fn with_secret(dir: PathBuf, secret: [u8; 32]) -> CompileCache {
        CompileCache {
            dir: Some(dir),
            secret,
        }
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

    /// The artifact stored under `key`, if its tag verifies: it was written by a host holding
    /// this user's secret, for this key.
    fn verified(&self, key: &str) -> Option<Vec<u8>> {
        let path = self.path(key)?;
        let entry = match crate::files::read_regular(&path, MAX_ENTRY) {
            Ok(entry) => entry,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable cache entry");
                return None;
            }
        };
        let verified = entry.len() > MAGIC.len() + TAG
            && entry.starts_with(MAGIC)
            && same_tag(
                &entry[MAGIC.len()..MAGIC.len() + TAG],
                &hmac(&self.secret, &[key.as_bytes(), &entry[MAGIC.len() + TAG..]]),
            );
        if !verified {
            tracing::warn!(path = %path.display(), "ignoring a cache entry this host did not write (its tag does not verify); recompiling");
            return None;
        }
        let mut entry = entry;
        entry.drain(..MAGIC.len() + TAG);
        Some(entry)
    }

    /// The compiled component stored under `key`, if there is one this engine can load.
    pub(crate) fn get(&self, engine: &Engine, key: &str) -> Option<Component> {
        let path = self.path(key)?;
        let artifact = self.verified(key)?;
        // SAFETY: the bytes carry a tag made with this user's secret over this key (the
        // wasm's sha256 and the engine's compatibility hash) and these bytes, so they are what
        // `put` stored from `Component::serialize` of this engine configuration; wasmtime
        // still checks the header and version.
        match unsafe { Component::deserialize(engine, &artifact) } {
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
        let tag = hmac(&self.secret, &[key.as_bytes(), serialized]);
        let mut entry = Vec::with_capacity(MAGIC.len() + TAG + serialized.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(&tag);
        entry.extend_from_slice(serialized);
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, &entry))
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
        let cache = CompileCache::with_secret(dir.clone(), [7; 32]);
        let entry = dir.join("key.cwasm");
        // Each writer's bytes are different, so a mix or a truncation shows.
        let artifacts: Vec<Vec<u8>> = (1..=4u8).map(|i| vec![i; 1 << 20]).collect();
        let writing = std::sync::atomic::AtomicBool::new(true);
        let torn = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut torn = Vec::new();
                while writing.load(Ordering::Relaxed) {
                    if std::fs::read(&entry).is_ok() {
                        match cache.verified("key") {
                            Some(bytes) if artifacts.contains(&bytes) => {}
                            Some(bytes) => torn.push(bytes.len()),
                            None => torn.push(0),
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
        assert!(artifacts.contains(&cache.verified("key").unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2 uses a 4-byte key; with the key zero-padded to 32 bytes the
        // HMAC is the same (keys shorter than the block are zero-padded).
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex::encode(hmac(&key, &[b"what do ya want ", b"for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn an_entry_is_trusted_only_under_its_own_key_and_secret() {
        let dir = std::env::temp_dir().join(format!("sw-cache-tag-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = CompileCache::with_secret(dir.clone(), [1; 32]);
        cache.put("a", b"artifact of a");
        assert_eq!(cache.verified("a").as_deref(), Some(&b"artifact of a"[..]));
        // Copied under another plugin's key: refused.
        std::fs::copy(dir.join("a.cwasm"), dir.join("b.cwasm")).unwrap();
        assert_eq!(cache.verified("b"), None);
        // Written with another secret (another user, or planted): refused.
        CompileCache::with_secret(dir.clone(), [2; 32]).put("c", b"planted");
        assert_eq!(cache.verified("c"), None);
        // A raw artifact without a tag: refused.
        std::fs::write(dir.join("d.cwasm"), b"raw native code").unwrap();
        assert_eq!(cache.verified("d"), None);
        // One changed byte: refused.
        let mut bytes = std::fs::read(dir.join("a.cwasm")).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(dir.join("a.cwasm"), bytes).unwrap();
        assert_eq!(cache.verified("a"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
