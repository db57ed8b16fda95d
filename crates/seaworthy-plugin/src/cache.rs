//! The on-disk cache of compiled components.
//!
//! Compiling a component takes a noticeable time (a hundred milliseconds or more); loading a
//! precompiled one takes well under a millisecond. The cache keeps the compiled artifact under
//! a key made of the engine's compatibility hash (wasmtime version, compiler settings, CPU
//! features) and the component's own hash (BLAKE3 of the wasm bytes), so a changed plugin or a
//! different host never loads a stale artifact. Each write goes to a temporary file of its own
//! (process id and a counter) and is renamed into place, so a reader never sees half a file,
//! even while two loads in one process store the same component.
//!
//! A compiled artifact is native code that runs outside the sandbox, so the cache is a trust
//! boundary. Only the user says where it is (`SEAWORTHY_PLUGIN_CACHE`, the host builder, else
//! `$XDG_CACHE_HOME/seaworthy/plugins` or `~/.cache/seaworthy/plugins`; never a project's
//! `seaworthy.toml`), and only artifacts a host of this user wrote are deserialized: each is
//! stored with a tag, BLAKE3 in its keyed mode (a MAC) over its cache key and its bytes, under a
//! secret key the host keeps outside the cache (`$XDG_CONFIG_HOME/seaworthy/plugin-cache.key`,
//! else `~/.config/seaworthy/plugin-cache.key`, created with mode 0600). An artifact whose tag
//! does not verify (planted, copied from another plugin's key, changed, or an entry of an older
//! format) is ignored and recompiled. The tag is checked on every load from disk, over the bytes
//! read (no record of earlier checks is trusted): keyed BLAKE3 runs at several GB/s, about 40 µs
//! for a 250 KB artifact, where HMAC-SHA256 took about 140 µs. Those bytes are then loaded
//! either from the verified file itself, mapped through the still-open file, when nobody but
//! this user (or root) can change that file (this user owns it and neither its group nor
//! others may write it: wasmtime then maps the file instead of copying the artifact into new
//! memory, as a load did before the tag existed), or else from the bytes read.
//!
//! Reading and hashing a whole artifact on every load costs about a tenth of a millisecond, a
//! third of a load. So once an entry has verified, and its last change is old enough (see
//! [`SETTLED`]), the host also records the file's identity beside it (`<key>.stat`: device,
//! inode, size, modification and change times, with a tag keyed like the entry's). A later
//! load that finds the same file, unchanged by those marks, owned by this user and writable by
//! nobody else, maps it without reading it, as git trusts its index. Any change to the file
//! moves its change time (which no user can set) and replacing it changes its inode, so the
//! record no longer matches and the whole artifact is checked again. A record is never made of
//! a file another user could change, and a copied or planted record does not verify.

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

/// What a cache entry ends with, after the artifact and its tag. The artifact comes first, so
/// the entry's file maps as the artifact (wasmtime reads the object from the start of the file;
/// the 40 bytes after it are not part of it). Version 3: keyed-BLAKE3 tag at the end (version 1
/// entries, HMAC-SHA256 in front, and version 2, keyed BLAKE3 in front, do not verify and are
/// recompiled).
const MAGIC: &[u8; 8] = b"SWCC\0\0\0\x03";
/// The length of the tag.
const TAG: usize = blake3::OUT_LEN;
/// The bytes after the artifact: the tag and the magic.
const TRAILER: usize = TAG + MAGIC.len();
/// The largest entry read.
const MAX_ENTRY: u64 = 1 << 30;
/// What an identity record (`<key>.stat`) starts with, version 1.
const STAT_MAGIC: &[u8; 8] = b"SWCS\0\0\0\x01";
/// The identity fields of a record: device, inode, size, and the modification and change times
/// (seconds and nanoseconds), eight bytes each.
const IDENTITY: usize = 7 * 8;
/// The length of an identity record: magic, identity, tag.
const STAT_LEN: usize = STAT_MAGIC.len() + IDENTITY + TAG;
/// How long ago an entry must have last changed before its identity is recorded. File times
/// move in clock ticks, so a change made within the same tick as the record would keep the
/// times the record recognises; an entry that has not changed for this long cannot share the
/// tick of the next change.
const SETTLED: std::time::Duration = std::time::Duration::from_secs(1);

/// The tag of `artifact` stored under `key`: BLAKE3 keyed with `secret` (a MAC) over the key's
/// length, the key and the artifact.
fn tag(secret: &[u8; 32], key: &str, artifact: &[u8]) -> blake3::Hash {
    let mut mac = blake3::Hasher::new_keyed(secret);
    mac.update(&(key.len() as u64).to_le_bytes());
    mac.update(key.as_bytes());
    mac.update(artifact);
    mac.finalize()
}

/// The identity of an open entry, as its record stores it.
fn identity(metadata: &std::fs::Metadata) -> [u8; IDENTITY] {
    use std::os::unix::fs::MetadataExt;
    let fields = [
        metadata.dev(),
        metadata.ino(),
        metadata.size(),
        metadata.mtime() as u64,
        metadata.mtime_nsec() as u64,
        metadata.ctime() as u64,
        metadata.ctime_nsec() as u64,
    ];
    let mut bytes = [0u8; IDENTITY];
    for (chunk, field) in bytes.chunks_exact_mut(8).zip(fields) {
        chunk.copy_from_slice(&field.to_le_bytes());
    }
    bytes
}

/// The tag of an identity record of the entry `key`: BLAKE3 keyed with `secret`, over a
/// domain of its own (so neither can stand for the other), the key and the identity.
fn identity_tag(secret: &[u8; 32], key: &str, identity: &[u8; IDENTITY]) -> blake3::Hash {
    let mut mac = blake3::Hasher::new_keyed(secret);
    mac.update(b"seaworthy compile cache: identity record\0");
    mac.update(&(key.len() as u64).to_le_bytes());
    mac.update(key.as_bytes());
    mac.update(identity);
    mac.finalize()
}

/// Whether only this user (or root) can change the file: this user owns it and neither its
/// group nor others may write it.
fn only_mine(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    metadata.uid() == me && metadata.mode() & 0o022 == 0
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

/// Feeds `Hash` output into BLAKE3, so the key is stable across processes (unlike
/// `DefaultHasher`, whose output is not promised to stay the same).
struct KeyHasher(blake3::Hasher);

impl Hasher for KeyHasher {
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

/// The component's own hash, part of its cache key: BLAKE3 of its wasm bytes, in hex (several
/// times faster than sha256, and computed on every load).
pub(crate) fn component_digest(wasm: &[u8]) -> String {
    blake3::hash(wasm).to_hex().to_string()
}

/// A cache entry whose tag verified: the bytes read and the file they were read from, still
/// open. It derefs to the artifact (the entry before its trailer).
pub(crate) struct Verified {
    file: std::fs::File,
    entry: Vec<u8>,
}

impl std::ops::Deref for Verified {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.entry[..self.entry.len() - TRAILER]
    }
}

impl Verified {
    /// The component, mapped from the verified file itself (no copy of the artifact), when
    /// that file cannot have changed since it was read: this user owns it and neither its
    /// group nor others may write it (so only this user or root could change it, and the
    /// cache's own writes never change a file in place: they rename a new one over it), and
    /// it has the size that was read. The open file is mapped again through
    /// `/proc/self/fd`, so a rename over the entry's path since does not matter. `None` when
    /// any of this does not hold: the caller loads the verified bytes instead.
    #[cfg(target_os = "linux")]
    fn mapped(&self, engine: &Engine) -> Option<Component> {
        let metadata = self.file.metadata().ok()?;
        if !only_mine(&metadata) || metadata.len() != self.entry.len() as u64 {
            return None;
        }
        // SAFETY: the file is the one whose bytes verified (same open file, unchanged as
        // checked above); see `CompileCache::get`.
        unsafe { map_open(engine, &self.file) }
    }

    #[cfg(not(target_os = "linux"))]
    fn mapped(&self, _engine: &Engine) -> Option<Component> {
        None
    }
}

/// Maps the open file as a compiled component, through `/proc/self/fd` (so a rename over the
/// entry's path since it was opened does not matter).
///
/// # Safety
/// The file must hold an artifact `Component::serialize` wrote for this engine's configuration
/// (wasmtime still checks its header and version), and nobody may change it while it is mapped.
#[cfg(target_os = "linux")]
unsafe fn map_open(engine: &Engine, file: &std::fs::File) -> Option<Component> {
    use std::os::fd::AsRawFd;
    let reopened = format!("/proc/self/fd/{}", file.as_raw_fd());
    // SAFETY: as the caller promises.
    match unsafe { Component::deserialize_file(engine, &reopened) } {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::debug!(error = %e, "cannot map a verified cache entry; loading its bytes");
            None
        }
    }
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

    /// The cache key of the component whose [`component_digest`] is `digest`, for `engine`.
    pub(crate) fn key(engine: &Engine, digest: &str) -> String {
        let mut hasher = KeyHasher(blake3::Hasher::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.0.update(digest.as_bytes());
        hasher.0.finalize().to_hex().to_string()
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{key}.cwasm")))
    }

    fn stat_path(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{key}.stat")))
    }

    /// The entry stored under `key`, opened and mapped without reading it, when its identity
    /// record verifies and matches the open file: the same file, unchanged since a host holding
    /// this user's secret checked its whole artifact, and changeable by nobody but this user.
    #[cfg(target_os = "linux")]
    fn recognised(&self, engine: &Engine, key: &str) -> Option<Component> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path(key)?;
        // Non-blocking, so a FIFO put in the entry's place cannot hold the open.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .ok()?;
        let metadata = file.metadata().ok()?;
        if !metadata.is_file() || !only_mine(&metadata) {
            return None;
        }
        let record = crate::files::read_regular(&self.stat_path(key)?, STAT_LEN as u64).ok()?;
        let identity = identity(&metadata);
        let (magic, rest) = record.split_first_chunk::<8>()?;
        let (recorded, stored) = rest.split_first_chunk::<IDENTITY>()?;
        let stored = <[u8; TAG]>::try_from(stored).ok()?;
        // `blake3::Hash`'s equality is constant-time.
        if magic != STAT_MAGIC
            || recorded != &identity
            || identity_tag(&self.secret, key, &identity) != stored
        {
            tracing::debug!(path = %path.display(), "the entry's identity record does not match; checking the whole artifact");
            return None;
        }
        // SAFETY: the record was made by a host holding this user's secret after the whole
        // artifact of this very file (same device and inode) verified under this key, and the
        // file has not changed since (same size, modification and change times; the change time
        // moves on any change and cannot be set back by a user); only this user can change it.
        unsafe { map_open(engine, &file) }
    }

    #[cfg(not(target_os = "linux"))]
    fn recognised(&self, _engine: &Engine, _key: &str) -> Option<Component> {
        None
    }

    /// Records the identity of the entry `key`, whose whole artifact has just verified through
    /// `file`, if only this user can change it and its last change is [`SETTLED`]. Failures
    /// are logged: the next load checks the whole artifact again.
    fn record(&self, key: &str, file: &std::fs::File) {
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.stat_path(key)) else {
            return;
        };
        let Ok(metadata) = file.metadata() else {
            return;
        };
        let changed = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                u64::try_from(std::os::unix::fs::MetadataExt::ctime(&metadata)).unwrap_or(0),
                u32::try_from(std::os::unix::fs::MetadataExt::ctime_nsec(&metadata)).unwrap_or(0),
            );
        let settled = std::time::SystemTime::now()
            .duration_since(changed)
            .is_ok_and(|age| age >= SETTLED);
        if !settled || !only_mine(&metadata) {
            return;
        }
        let identity = identity(&metadata);
        let mut record = Vec::with_capacity(STAT_LEN);
        record.extend_from_slice(STAT_MAGIC);
        record.extend_from_slice(&identity);
        record.extend_from_slice(identity_tag(&self.secret, key, &identity).as_bytes());
        let tmp = dir.join(temp_name(&format!("{key}.stat")));
        if let Err(e) = write_new(&tmp, &record).and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!(path = %path.display(), error = %e, "could not record a cache entry's identity");
        }
    }

    /// The artifact stored under `key`, if its tag verifies: it was written by a host holding
    /// this user's secret, for this key.
    fn verified(&self, key: &str) -> Option<Verified> {
        let path = self.path(key)?;
        let (file, entry) = match crate::files::read_regular_open(&path, MAX_ENTRY) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable cache entry");
                return None;
            }
        };
        // `blake3::Hash`'s equality is constant-time.
        let artifact = entry.len().saturating_sub(TRAILER);
        let verified = entry.len() > TRAILER
            && entry.ends_with(MAGIC)
            && <[u8; TAG]>::try_from(&entry[artifact..artifact + TAG])
                .is_ok_and(|stored| tag(&self.secret, key, &entry[..artifact]) == stored);
        if !verified {
            tracing::warn!(path = %path.display(), "ignoring a cache entry this host did not write (its tag does not verify); recompiling");
            return None;
        }
        Some(Verified { file, entry })
    }

    /// The compiled component stored under `key`, if there is one this engine can load.
    pub(crate) fn get(&self, engine: &Engine, key: &str) -> Option<Component> {
        self.get_how(engine, key).map(|(component, _)| component)
    }

    /// [`get`](Self::get), and how the entry was loaded.
    fn get_how(&self, engine: &Engine, key: &str) -> Option<(Component, How)> {
        let path = self.path(key)?;
        if let Some(component) = self.recognised(engine, key) {
            return Some((component, How::Recognised));
        }
        let artifact = self.verified(key)?;
        if let Some(component) = artifact.mapped(engine) {
            self.record(key, &artifact.file);
            return Some((component, How::Mapped));
        }
        // SAFETY: the bytes carry a tag made with this user's secret over this key (the
        // component's hash and the engine's compatibility hash) and these bytes, so they are what
        // `put` stored from `Component::serialize` of this engine configuration; wasmtime
        // still checks the header and version.
        match unsafe { Component::deserialize(engine, &*artifact) } {
            Ok(component) => Some((component, How::Read)),
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
        let mut entry = Vec::with_capacity(serialized.len() + TRAILER);
        entry.extend_from_slice(serialized);
        entry.extend_from_slice(tag(&self.secret, key, serialized).as_bytes());
        entry.extend_from_slice(MAGIC);
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| write_new(&tmp, &entry))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), error = %e, "could not cache a compiled component");
        }
    }
}

/// How a cache entry was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// Mapped without reading it: its identity record matched.
    Recognised,
    /// Read and verified whole, then mapped from the file.
    Mapped,
    /// Read and verified whole, and loaded from the bytes read.
    Read,
}

/// Writes `bytes` to the new file `path`, mode 0644 whatever the umask adds (a umask of 002
/// would make it group-writable, and a group-writable entry is read, never mapped).
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)?
        .write_all(bytes)
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
                        match cache.verified("key").as_deref() {
                            Some(bytes) if artifacts.iter().any(|a| a == bytes) => {}
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
        assert!(artifacts.contains(&cache.verified("key").unwrap().to_vec()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_tag_is_keyed_blake3_over_the_key_and_the_artifact() {
        let secret = [9u8; 32];
        let mut message = 1u64.to_le_bytes().to_vec();
        message.extend_from_slice(b"k");
        message.extend_from_slice(b"artifact");
        assert_eq!(
            tag(&secret, "k", b"artifact"),
            blake3::keyed_hash(&secret, &message)
        );
        // The key's length is part of the message: moving a byte between key and artifact
        // changes the tag.
        assert_ne!(
            tag(&secret, "ka", b"rtifact"),
            tag(&secret, "k", b"artifact")
        );
        assert_ne!(
            tag(&[8; 32], "k", b"artifact"),
            tag(&secret, "k", b"artifact")
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
        assert!(cache.verified("b").is_none());
        // Written with another secret (another user, or planted): refused.
        CompileCache::with_secret(dir.clone(), [2; 32]).put("c", b"planted");
        assert!(cache.verified("c").is_none());
        // A raw artifact without a tag: refused.
        std::fs::write(dir.join("d.cwasm"), b"raw native code").unwrap();
        assert!(cache.verified("d").is_none());
        // The same entry marked as an older format: refused; as it was,
        // trusted again.
        let good = std::fs::read(dir.join("a.cwasm")).unwrap();
        let mut older = good.clone();
        *older.last_mut().unwrap() = 2;
        std::fs::write(dir.join("a.cwasm"), older).unwrap();
        assert!(cache.verified("a").is_none());
        std::fs::write(dir.join("a.cwasm"), good).unwrap();
        assert!(cache.verified("a").is_some());
        // One changed byte of the artifact: refused.
        let mut bytes = std::fs::read(dir.join("a.cwasm")).unwrap();
        bytes[0] ^= 1;
        std::fs::write(dir.join("a.cwasm"), bytes).unwrap();
        assert!(cache.verified("a").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_verified_entry_is_mapped_only_when_nobody_else_can_change_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sw-cache-map-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = CompileCache::with_secret(dir.clone(), [5; 32]);
        let engine = crate::engine::engine().unwrap();
        // The smallest component: its preamble alone.
        let component = Component::new(engine, b"\0asm\x0d\0\x01\0").unwrap();
        cache.put("k", &component.serialize().unwrap());
        let entry = dir.join("k.cwasm");
        let (_, how) = cache.get_how(engine, "k").expect("the entry loads");
        assert_eq!(
            how,
            How::Mapped,
            "a file only this user can change is mapped"
        );
        // Writable by its group: the verified bytes are loaded instead of the file.
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o664)).unwrap();
        let (_, how) = cache.get_how(engine, "k").expect("the entry loads");
        assert_eq!(how, How::Read, "a group-writable file is not mapped");
        // Changed after it was written: neither.
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut bytes = std::fs::read(&entry).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&entry, bytes).unwrap();
        assert!(cache.get_how(engine, "k").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_identity_record_spares_the_read_only_while_the_file_is_the_one_that_verified() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sw-cache-stat-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = CompileCache::with_secret(dir.clone(), [6; 32]);
        let engine = crate::engine::engine().unwrap();
        let component = Component::new(engine, b"\0asm\x0d\0\x01\0").unwrap();
        let serialized = component.serialize().unwrap();
        let (entry, record) = (dir.join("k.cwasm"), dir.join("k.stat"));
        let load = |cache: &CompileCache| cache.get_how(engine, "k").map(|(_, how)| how);

        // Just written: no record yet (a change in the same clock tick would go unseen).
        cache.put("k", &serialized);
        assert_eq!(load(&cache), Some(How::Mapped));
        assert!(
            !record.exists(),
            "a record of an entry that changed a moment ago"
        );
        // Settled: the next whole check records it, and the load after is spared the read.
        std::thread::sleep(SETTLED + std::time::Duration::from_millis(100));
        assert_eq!(load(&cache), Some(How::Mapped));
        assert!(record.exists());
        assert_eq!(load(&cache), Some(How::Recognised));

        // Another secret (a record copied from another user, or planted): the whole check.
        let stranger = CompileCache::with_secret(dir.clone(), [7; 32]);
        assert_eq!(load(&stranger), None, "nor does the entry verify for it");
        // The record of another key: refused.
        std::fs::copy(&record, dir.join("other.stat")).unwrap();
        std::fs::copy(&entry, dir.join("other.cwasm")).unwrap();
        assert_eq!(cache.get_how(engine, "other").map(|(_, how)| how), None);
        // Writable by its group: neither recognised nor mapped.
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert_eq!(load(&cache), Some(How::Read));
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o644)).unwrap();
        // Changing the permissions moved the change time: checked whole until settled again.
        assert_eq!(load(&cache), Some(How::Mapped));
        // Changed in place (same inode and size): the record no longer matches, and the
        // changed artifact does not verify.
        let mut bytes = std::fs::read(&entry).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&entry, &bytes).unwrap();
        assert_eq!(load(&cache), None);
        // Replaced by the same bytes under a new inode: checked whole again.
        bytes[100] ^= 1;
        std::fs::remove_file(&entry).unwrap();
        std::fs::write(&entry, &bytes).unwrap();
        assert_eq!(load(&cache), Some(How::Mapped));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
