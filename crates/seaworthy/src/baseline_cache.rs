//! Cached baselines: a fixture's state right after its initialisation, kept in an image so later
//! runs start from it instead of initialising again.
//!
//! Within a run a fixture returns to its baseline in milliseconds; across runs it starts from
//! nothing (PostgreSQL: `initdb`, start, every migration, the seed data). With the cache on, the
//! first start builds the baseline as usual and then keeps it:
//!
//! 1. the container is **stopped** (its stop signal: a clean shutdown, so a start from the image
//!    needs no crash recovery) and must exit with code 0;
//! 2. the directories that hold the state ([`CachedBaseline::state_dirs`], e.g. PostgreSQL's data
//!    directory, a `VOLUME` that `docker commit` leaves out) are archived through the engine's
//!    archive API;
//! 3. the container is committed, and an image is **built** on top of that commit with the
//!    archives added at their place (the engine copies an image's content into a fresh volume
//!    when a container is created, so the data is there before the service starts);
//! 4. only that last step labels the image `io.seaworthy.cache.complete=true` with its key: an
//!    image appears on the engine only when its build finished, so a build that fails or is killed
//!    leaves nothing a later run trusts (the commit in between carries the dying process's owner
//!    label, which the reaper and `seaworthy gc` remove).
//!
//! The next start with the same key creates the container from that image and skips the
//! initialisation (the fixture finds its baseline already recorded). One file lock per key (in
//! [`state_dir`](crate::gc::state_dir)) makes concurrent processes and runs build one image: the
//! others wait, then use it.
//!
//! # The key
//!
//! A SHA-256 over three parts, each also recorded (abbreviated) in the image's labels so a log line
//! can say which part changed when a new image is built:
//!
//! * `image`: the id of the image the definition starts from (after image substitution), so a
//!   re-pulled or rebuilt `postgres:16` builds a new baseline;
//! * `definition`: the whole definition ([`FixtureDefinition::key`](crate::FixtureDefinition::key) and
//!   [`ContainerDefinition::key`](crate::ContainerDefinition::key): environment, command,
//!   settings, mounts, limits...);
//! * `init`: the content of every init step, and of every file or directory an init step reads
//!   ([`CachedBaseline::hash_init`], [`BaselineCache::with_input`]): a migration file changed in
//!   place builds a new image.
//!
//! # Turning it on and off
//!
//! Off unless asked: per definition with [`BaselineCache::on`] (each native fixture has a
//! `with_baseline_cache`), or for every definition that does not say with
//! `SEAWORTHY_BASELINE_CACHE=on`. `SEAWORTHY_BASELINE_CACHE=off` bypasses the cache for one run,
//! whatever the definitions say. Images are grouped in namespaces
//! (`SEAWORTHY_BASELINE_CACHE_NAMESPACE`, [`BaselineCache::with_namespace`]; `default`), which
//! `seaworthy cache ls|rm|prune` take as a filter.
//!
//! Cached images carry `io.seaworthy.managed=true` and `io.seaworthy.owner=cache`: the reaper
//! and the dead-process sweep of `seaworthy gc` leave them alone; `seaworthy cache prune` (or
//! `seaworthy gc --cache-max-count/--cache-max-size`) removes them, least recently used first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bollard::models::ContainerConfig;
use bollard::query_parameters::{
    BuildImageOptions, CommitContainerOptions, DownloadFromContainerOptions, ListImagesOptions,
    RemoveImageOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::fixture::{ContainerFixtureDefinition, Fixture};
use crate::runtime::on_runtime;
use crate::session::{
    Session, LABEL_HOST, LABEL_MANAGED, LABEL_OWNER, LABEL_RUNNER, LABEL_SESSION, OWNER_CACHE,
};
use crate::spec::MountSource;

/// Label: the cache key of a cached baseline image (64 hex digits).
pub const LABEL_KEY: &str = "io.seaworthy.cache.key";
/// Label: the namespace the image belongs to.
pub const LABEL_NAMESPACE: &str = "io.seaworthy.cache.namespace";
/// Label: `true` on an image whose build finished (the only images a run uses).
pub const LABEL_COMPLETE: &str = "io.seaworthy.cache.complete";
/// Label: the kind of fixture (`postgres`, `redis`...).
pub const LABEL_KIND: &str = "io.seaworthy.cache.kind";
/// Label: what the fixture is, independently of the key (`postgres test@postgres`): images of
/// one identity with different keys are successive versions of one baseline.
pub const LABEL_IDENTITY: &str = "io.seaworthy.cache.identity";
/// Label: the image the baseline was built from, as `reference@id`.
pub const LABEL_BUILT_FROM: &str = "io.seaworthy.cache.built-from";
/// Label: the key's parts, abbreviated (`image=…,definition=…,init=…`).
pub const LABEL_PARTS: &str = "io.seaworthy.cache.parts";
/// `on` turns the cache on for definitions that do not say, `off` bypasses it for this run.
pub const ENV_CACHE: &str = "SEAWORTHY_BASELINE_CACHE";
/// The namespace of definitions that do not set one.
pub const ENV_NAMESPACE: &str = "SEAWORTHY_BASELINE_CACHE_NAMESPACE";
/// The namespace used when none is set.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The repository of cached images' tags (`seaworthy-cache/<namespace>:<key prefix>`).
pub const REPOSITORY: &str = "seaworthy-cache";

/// A definition's baseline cache setting: on, off or as the environment says, the namespace, and
/// the files its init steps read (hashed into the key).
///
/// ```
/// use seaworthy::baseline_cache::BaselineCache;
/// let cache = BaselineCache::on()
///     .with_namespace("billing")
///     .with_input("tests/fixtures/seed.csv");
/// assert_eq!(cache.inputs().len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaselineCache {
    enabled: Option<bool>,
    namespace: Option<String>,
    inputs: Vec<PathBuf>,
}

impl BaselineCache {
    /// As the environment says (`SEAWORTHY_BASELINE_CACHE=on`), off otherwise.
    pub fn from_env() -> Self {
        BaselineCache::default()
    }

    /// On for this definition (unless `SEAWORTHY_BASELINE_CACHE=off` bypasses it for the run).
    pub fn on() -> Self {
        BaselineCache {
            enabled: Some(true),
            ..Default::default()
        }
    }

    /// Off for this definition.
    pub fn off() -> Self {
        BaselineCache {
            enabled: Some(false),
            ..Default::default()
        }
    }

    /// Keeps this definition's images in `namespace` (lower-case letters, digits, `.`, `_`, `-`;
    /// at most 64 bytes) instead of `SEAWORTHY_BASELINE_CACHE_NAMESPACE` or `default`.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Adds a file or directory an init step reads (a migrations directory, a CSV it loads): its
    /// content (every file below a directory, with its relative path) goes into the key.
    pub fn with_input(mut self, path: impl Into<PathBuf>) -> Self {
        self.inputs.push(path.into());
        self
    }

    /// The files and directories added with [`with_input`](Self::with_input).
    pub fn inputs(&self) -> &[PathBuf] {
        &self.inputs
    }

    /// This setting, with the inputs of `earlier` added after its own: what a fixture's
    /// `with_baseline_cache` sets, so that the inputs its other builders added to the setting it
    /// replaces (a seed file, a migrations directory) stay in the key.
    ///
    /// ```
    /// use seaworthy::baseline_cache::BaselineCache;
    /// let earlier = BaselineCache::from_env().with_input("migrations");
    /// let cache = BaselineCache::on()
    ///     .with_input("seed.csv")
    ///     .keeping_inputs_of(&earlier);
    /// let inputs: Vec<_> = cache.inputs().iter().map(|p| p.to_str().unwrap()).collect();
    /// assert_eq!(inputs, ["seed.csv", "migrations"]);
    /// ```
    pub fn keeping_inputs_of(self, earlier: &BaselineCache) -> Self {
        earlier
            .inputs
            .iter()
            .cloned()
            .fold(self, BaselineCache::with_input)
    }

    /// Whether the cache is used for this definition in this run.
    pub fn is_active(&self) -> bool {
        match crate::substitution::env_switch(ENV_CACHE) {
            Some(false) => false,
            env => self.enabled.or(env).unwrap_or(false),
        }
    }

    /// The namespace in effect, checked.
    pub fn namespace(&self) -> Result<String> {
        let namespace = self
            .namespace
            .clone()
            .or_else(|| std::env::var(ENV_NAMESPACE).ok().filter(|n| !n.is_empty()))
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        check_namespace(&namespace)?;
        Ok(namespace)
    }
}

/// Refuses a namespace that cannot be part of an image tag.
pub fn check_namespace(namespace: &str) -> Result<()> {
    let valid = !namespace.is_empty()
        && namespace.len() <= 64
        && namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && namespace.as_bytes()[0].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            "baseline cache namespace",
            namespace,
            "must be 1 to 64 lower-case letters, digits, `.`, `_` or `-`, starting with a letter or digit",
        ))
    }
}

/// The digest of a definition's init steps: their content and the files they read.
#[derive(Default)]
pub struct InitDigest {
    hasher: Sha256,
}

impl InitDigest {
    /// Adds one init step: a name and its content (SQL text, a command line...).
    pub fn add(&mut self, name: &str, content: &[u8]) {
        for part in [name.as_bytes(), content] {
            self.hasher.update((part.len() as u64).to_le_bytes());
            self.hasher.update(part);
        }
    }

    /// Adds a file, or every file below a directory (in name order, with its path relative to
    /// `path`). A path that cannot be read is an error naming it.
    pub fn add_path(&mut self, path: &Path) -> Result<()> {
        let read_error =
            |p: &Path, e| Error::io(format!("read {} (a baseline cache input)", p.display()), e);
        let meta = std::fs::metadata(path).map_err(|e| read_error(path, e))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            collect_files(path, path, &mut files).map_err(|e| read_error(path, e))?;
            files.sort();
            self.add("dir", path.to_string_lossy().as_bytes());
            for relative in files {
                let full = path.join(&relative);
                let content = std::fs::read(&full).map_err(|e| read_error(&full, e))?;
                self.add(&relative.to_string_lossy(), &content);
            }
        } else {
            let content = std::fs::read(path).map_err(|e| read_error(path, e))?;
            self.add(&path.to_string_lossy(), &content);
        }
        Ok(())
    }

    /// The digest (64 hex digits).
    pub fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if std::fs::metadata(&path)?.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_path_buf());
        }
    }
    Ok(())
}

/// A fixture definition whose baseline can be cached in an image.
pub trait CachedBaseline: ContainerFixtureDefinition {
    /// The definition's cache setting.
    fn baseline_cache(&self) -> &BaselineCache;

    /// The kind of fixture, for labels and messages (`postgres`).
    fn cache_kind(&self) -> &'static str;

    /// What the fixture is independently of its content (the database and user...), so that a
    /// new key for the same identity is reported as the old baseline being invalidated.
    fn cache_identity(&self) -> String;

    /// Adds the content of every init step, and of the files they read, to `digest`.
    fn hash_init(&self, digest: &mut InitDigest) -> Result<()>;

    /// The directories inside the container that hold what the init steps built (volumes
    /// included; a tmpfs cannot be cached).
    fn state_dirs(&self) -> Vec<String>;

    /// This definition, started from the cached image `image` (its init steps already done). It
    /// must not be cached again: turn its cache off.
    fn with_cached_image(&self, image: &str) -> Self;

    /// Whether every volume the container has (the image's `VOLUME`s and the definition's own
    /// volumes) is archived into the cached image too, beside the
    /// [`state_dirs`](Self::state_dirs): for fixtures that cannot know where their service keeps
    /// its state (a plugin fixture's service). `false` by default: only the state directories
    /// are kept from volumes.
    fn caches_every_volume(&self) -> bool {
        false
    }
}

/// The key of a cached baseline, with its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// The key (64 hex digits).
    pub key: String,
    /// The digest of the base image's id.
    pub image: String,
    /// The digest of the definition.
    pub definition: String,
    /// The digest of the init steps and the files they read.
    pub init: String,
}

impl CacheKey {
    fn parts_label(&self) -> String {
        format!(
            "image={},definition={},init={}",
            &self.image[..12],
            &self.definition[..12],
            &self.init[..12]
        )
    }
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// Computes the key of `def` starting from the image whose id is `image_id`.
pub fn cache_key<D: CachedBaseline>(def: &D, image_id: &str) -> Result<CacheKey> {
    let mut init = InitDigest::default();
    def.hash_init(&mut init)?;
    for input in def.baseline_cache().inputs() {
        init.add_path(input)?;
    }
    let init = init.finish();
    let image = sha256_hex(&[image_id.as_bytes()]);
    let definition = sha256_hex(&[
        ContainerFixtureDefinition::key(def).as_bytes(),
        def.container_definition().key().as_bytes(),
    ]);
    let key = sha256_hex(&[
        b"seaworthy-baseline-cache/v1",
        def.cache_kind().as_bytes(),
        image.as_bytes(),
        definition.as_bytes(),
        init.as_bytes(),
    ]);
    Ok(CacheKey {
        key,
        image,
        definition,
        init,
    })
}

/// The definition to start: `def` itself when the cache is off for it, else the same definition
/// started from its cached baseline image, which is built first (under a lock per key) when no
/// complete image has its key. Logs (`tracing`, info) whether a cached baseline was used or built,
/// and why an earlier one no longer applies.
pub async fn prepare<D: CachedBaseline>(def: &D, session: &Session) -> Result<D> {
    if !def.baseline_cache().is_active() {
        return Ok(def.clone());
    }
    let def = def.clone();
    let session = session.clone();
    on_runtime(async move { prepare_here(&def, &session).await }).await
}

async fn prepare_here<D: CachedBaseline>(def: &D, session: &Session) -> Result<D> {
    let namespace = def.baseline_cache().namespace()?;
    let container = def.container_definition();
    container.validate()?;
    let kind = def.cache_kind();
    let identity = def.cache_identity();
    let state_dirs = def.state_dirs();
    if let Some(dir) = state_dirs.iter().find(|dir| on_tmpfs(&container, dir)) {
        tracing::info!(
            fixture = kind,
            %identity,
            "cached baseline not used: {dir} is on a tmpfs, whose content an image cannot carry"
        );
        return Ok(def.clone());
    }
    let deadline = Instant::now() + container.startup_timeout;
    let (reference, image_id) = base_image(session, &container, deadline).await?;
    let key = cache_key(def, &image_id)?;
    let engine = session.engine();
    if let Some(found) = find_complete(engine, &namespace, &key.key).await? {
        tracing::info!(fixture = kind, %identity, image = %found, key = %&key.key[..16], "cached baseline used");
        touch_used(&key.key);
        return Ok(def.with_cached_image(&found));
    }
    // One build per key: the others wait for it, under the startup timeout (the build takes
    // about one start more than a start).
    let wait = container.startup_timeout * 3;
    let lock = tokio::time::timeout(
        wait,
        crate::state::lock_file(format!("cache-{}.lock", &key.key[..32]), "baseline cache"),
    )
    .await
    .map_err(|_| Error::Timeout {
        action: format!(
            "the baseline cache lock of {identity} (another process building the same baseline)"
        ),
        timeout: wait,
    })??;
    if let Some(found) = find_complete(engine, &namespace, &key.key).await? {
        tracing::info!(fixture = kind, %identity, image = %found, key = %&key.key[..16], "cached baseline used (built by another process)");
        touch_used(&key.key);
        return Ok(def.with_cached_image(&found));
    }
    explain_invalidation(engine, &namespace, kind, &identity, &key).await;
    let started = Instant::now();
    let built = build(def, session, &namespace, &key, &reference, &image_id).await?;
    drop(lock);
    touch_used(&key.key);
    tracing::info!(fixture = kind, %identity, image = %built, key = %&key.key[..16], elapsed = ?started.elapsed(), "cached baseline built");
    Ok(def.with_cached_image(&built))
}

/// Whether `dir` is on one of the definition's tmpfs mounts.
fn on_tmpfs(container: &crate::ContainerDefinition, dir: &str) -> bool {
    container
        .mounts
        .iter()
        .any(|m| matches!(m.source, MountSource::Tmpfs { .. }) && is_below(dir, &m.target))
}

/// Whether the path `dir` is `mount` or below it.
fn is_below(dir: &str, mount: &str) -> bool {
    let (dir, mount) = (dir.trim_end_matches('/'), mount.trim_end_matches('/'));
    dir == mount || mount.is_empty() || dir.starts_with(&format!("{mount}/"))
}

/// The image the definition starts from (substituted, pulled if needed): its reference and id.
async fn base_image(
    session: &Session,
    container: &crate::ContainerDefinition,
    deadline: Instant,
) -> Result<(String, String)> {
    let mut name = container.image.clone();
    if let Some(substitute) = crate::substitution::substitute(&name)? {
        name = substitute;
    }
    let image = crate::reference::ImageRef::parse(&name)?;
    crate::image::ensure_image_until(
        session,
        &image,
        container.pull,
        container.platform.as_deref(),
        deadline,
        container.startup_timeout,
    )
    .await?;
    let reference = image.to_string();
    let info = session
        .engine()
        .docker()
        .inspect_image(&reference)
        .await
        .map_err(|e| Error::docker(format!("inspect image {reference}"), e))?;
    let id = info.id.ok_or_else(|| Error::Image {
        image: reference.clone(),
        reason: "the engine reported no id for it".into(),
    })?;
    Ok((reference, id))
}

fn label_filter(labels: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        labels
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.to_string()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect(),
    )])
}

/// The id of a complete cached image with `key` in `namespace`.
async fn find_complete(engine: &Engine, namespace: &str, key: &str) -> Result<Option<String>> {
    let images = engine
        .docker()
        .list_images(Some(ListImagesOptions {
            filters: Some(label_filter(&[
                (LABEL_MANAGED, "true"),
                // A commit of a container started from a cached image (a fixture's snapshot)
                // inherits the image's labels; its owner is the container's, never the cache.
                (LABEL_OWNER, OWNER_CACHE),
                (LABEL_NAMESPACE, namespace),
                (LABEL_KEY, key),
                (LABEL_COMPLETE, "true"),
            ])),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("list cached baseline images", e))?;
    Ok(images.into_iter().map(|i| i.id).next())
}

/// Logs why an earlier baseline of the same identity is not used: which parts of its key changed.
async fn explain_invalidation(
    engine: &Engine,
    namespace: &str,
    kind: &str,
    identity: &str,
    key: &CacheKey,
) {
    let Ok(images) = list(engine, Some(namespace)).await else {
        return;
    };
    let previous = images
        .iter()
        .filter(|i| i.complete && i.kind == kind && i.identity == identity)
        .max_by_key(|i| i.created);
    let Some(previous) = previous else {
        tracing::info!(fixture = kind, %identity, key = %&key.key[..16], "no cached baseline yet: building one");
        return;
    };
    let new_parts = key.parts_label();
    let old: HashMap<&str, &str> = previous
        .parts
        .split(',')
        .filter_map(|p| p.split_once('='))
        .collect();
    let changed: Vec<&str> = new_parts
        .split(',')
        .filter_map(|p| p.split_once('='))
        .filter(|(name, value)| old.get(name) != Some(value))
        .map(|(name, _)| match name {
            "image" => "the image changed",
            "definition" => "the definition changed",
            _ => "the init steps or the files they read changed",
        })
        .collect();
    let why = if changed.is_empty() {
        "its key changed".to_string()
    } else {
        changed.join(", ")
    };
    tracing::info!(fixture = kind, %identity, old = %previous.id, "cached baseline invalidated: {why}; building a new one");
}

/// Builds the cached image of `def`: start, init (attach), clean shutdown, archive the state
/// directories, commit, build the image with the archives added; returns its id.
async fn build<D: CachedBaseline>(
    def: &D,
    session: &Session,
    namespace: &str,
    key: &CacheKey,
    reference: &str,
    image_id: &str,
) -> Result<String> {
    let container = def.container_definition().start_in(session).await?;
    let fixture = def.attach(container).await.map_err(Into::into)?;
    let result = build_from(def, &fixture, session, namespace, key, reference, image_id).await;
    drop(fixture);
    result
}

async fn build_from<D: CachedBaseline>(
    def: &D,
    fixture: &D::Fixture,
    session: &Session,
    namespace: &str,
    key: &CacheKey,
    reference: &str,
    image_id: &str,
) -> Result<String> {
    let docker = session.engine().docker();
    let name = fixture.container().name().to_string();
    let stop_timeout = 60;
    docker
        .stop_container(
            &name,
            Some(StopContainerOptions {
                t: Some(stop_timeout),
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| Error::docker(format!("stop container {name} to cache its baseline"), e))?;
    let info = docker
        .inspect_container(&name, None)
        .await
        .map_err(|e| Error::docker(format!("inspect container {name}"), e))?;
    // A state directory outside the container's volumes and mounts is in its writable layer,
    // which the commit keeps as it is: only those on a volume are archived and added.
    let mounted: Vec<String> = info
        .mounts
        .iter()
        .flatten()
        .filter_map(|m| m.destination.clone())
        .collect();
    let volumes: Vec<String> = info
        .mounts
        .iter()
        .flatten()
        .filter(|m| m.typ.as_deref() == Some("volume"))
        .filter_map(|m| m.destination.clone())
        .collect();
    let exit = info.state.and_then(|s| s.exit_code).unwrap_or(-1);
    if exit != 0 {
        return Err(Error::Container {
            container: name,
            reason: format!(
                "did not shut down cleanly after its initialisation (exit code {exit} within {stop_timeout} s of its stop signal): its baseline is not cached"
            ),
        });
    }
    let mut context = tar::Builder::new(Vec::new());
    let mut dockerfile = String::new();
    let mut on_volume: Vec<(String, String)> = Vec::new();
    for dir in def.state_dirs() {
        let parent = parent_dir(&dir)?;
        if mounted.iter().any(|target| is_below(&dir, target)) {
            on_volume.push((dir, parent));
        }
    }
    if def.caches_every_volume() {
        for dir in volumes {
            if on_volume.iter().any(|(kept, _)| is_below(&dir, kept)) {
                continue;
            }
            // A whole volume replaces the state directories below it.
            on_volume.retain(|(kept, _)| !is_below(kept, &dir));
            let parent = parent_dir(&dir)?;
            on_volume.push((dir, parent));
        }
    }
    for (i, (dir, parent)) in on_volume.into_iter().enumerate() {
        let archive = download(docker, &name, &dir).await?;
        let file = format!("state-{i}.tar");
        append(&mut context, &file, &archive)?;
        dockerfile.push_str(&format!("ADD {file} {parent}\n"));
    }
    let committed = docker
        .commit_container(
            CommitContainerOptions {
                container: Some(name.clone()),
                pause: false,
                ..Default::default()
            },
            ContainerConfig::default(),
        )
        .await
        .map_err(|e| Error::docker(format!("commit container {name} for the baseline cache"), e))?;
    let committed = crate::engine::image_id(committed.id);
    let dockerfile = format!("FROM {committed}\n{dockerfile}");
    append(&mut context, "Dockerfile", dockerfile.as_bytes())?;
    let context = context
        .into_inner()
        .map_err(|e| Error::io("write the baseline cache build context", e))?;
    let tag = format!("{REPOSITORY}/{namespace}:{}", &key.key[..32]);
    let labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_OWNER.to_string(), OWNER_CACHE.to_string()),
        (LABEL_SESSION.to_string(), OWNER_CACHE.to_string()),
        (LABEL_RUNNER.to_string(), OWNER_CACHE.to_string()),
        (LABEL_HOST.to_string(), crate::session::host_name()),
        (LABEL_KEY.to_string(), key.key.clone()),
        (LABEL_NAMESPACE.to_string(), namespace.to_string()),
        (LABEL_COMPLETE.to_string(), "true".to_string()),
        (LABEL_KIND.to_string(), def.cache_kind().to_string()),
        (LABEL_IDENTITY.to_string(), def.cache_identity()),
        (
            LABEL_BUILT_FROM.to_string(),
            format!("{reference}@{image_id}"),
        ),
        (LABEL_PARTS.to_string(), key.parts_label()),
    ]);
    let built = build_image(docker, &tag, labels, context).await;
    if let Err(e) = built {
        // The commit is not used by anything: nothing of the failed build stays.
        let _ = docker
            .remove_image(&committed, None::<RemoveImageOptions>, None)
            .await;
        return Err(e);
    }
    // Verified: the tag names a complete image with this key.
    let info = docker
        .inspect_image(&tag)
        .await
        .map_err(|e| Error::docker(format!("inspect the cached baseline {tag}"), e))?;
    let labels = info
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    if labels.get(LABEL_KEY) != Some(&key.key)
        || labels.get(LABEL_COMPLETE).map(String::as_str) != Some("true")
    {
        return Err(Error::Image {
            image: tag,
            reason: "the built baseline image does not carry its key (built concurrently by another engine client?)".into(),
        });
    }
    info.id.ok_or_else(|| Error::Image {
        image: tag,
        reason: "the engine reported no id for the built baseline".into(),
    })
}

/// The directory `dir` (absolute) is in, with a trailing `/`: where its archive is added.
fn parent_dir(dir: &str) -> Result<String> {
    match dir.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => Ok("/".to_string()),
        Some((parent, _)) => Ok(format!("{parent}/")),
        None => Err(Error::invalid(
            "baseline cache state directory",
            dir,
            "must be an absolute path below /",
        )),
    }
}

fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, name, data)
        .map_err(|e| Error::io(format!("add {name} to the baseline cache build context"), e))
}

async fn download(docker: &bollard::Docker, container: &str, path: &str) -> Result<Vec<u8>> {
    let mut stream = docker.download_from_container(
        container,
        Some(DownloadFromContainerOptions {
            path: path.to_string(),
        }),
    );
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| Error::docker(format!("archive {path} of container {container}"), e))?;
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn build_image(
    docker: &bollard::Docker,
    tag: &str,
    labels: HashMap<String, String>,
    context: Vec<u8>,
) -> Result<()> {
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".to_string(),
        t: Some(tag.to_string()),
        labels: Some(labels),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let failed = |reason: String| Error::Build {
        image: tag.to_string(),
        dockerfile: "(the baseline cache's)".to_string(),
        reason,
        log_tail: Vec::new(),
    };
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(message) = info.error_detail.and_then(|d| d.message) {
                    return Err(failed(message));
                }
            }
            Err(e) => return Err(failed(e.to_string())),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Managing the cache: list, remove, prune.

/// A cached baseline image, as listed by [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    /// The image id.
    pub id: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its key.
    pub key: String,
    /// Its namespace.
    pub namespace: String,
    /// The kind of fixture.
    pub kind: String,
    /// What the fixture is ([`CachedBaseline::cache_identity`]).
    pub identity: String,
    /// The image it was built from (`reference@id`).
    pub built_from: String,
    /// The key's parts, abbreviated.
    pub parts: String,
    /// Whether the build finished (only complete images are used).
    pub complete: bool,
    /// When it was built (seconds since the Unix epoch).
    pub created: i64,
    /// When a run last used (or built) it, on this machine (seconds since the Unix epoch), if known.
    pub last_used: Option<i64>,
    /// Its size in bytes (with the layers it shares with its base image).
    pub size: i64,
}

impl CachedImage {
    /// Seconds since the image was last used, or built when no use is recorded.
    pub fn idle_secs(&self, now: i64) -> i64 {
        now - self.last_used.unwrap_or(self.created).max(self.created)
    }
}

/// Lists the cached baseline images on `engine` (of `namespace` only, when given), newest first.
pub async fn list(engine: &Engine, namespace: Option<&str>) -> Result<Vec<CachedImage>> {
    // Owned by the cache: a snapshot of a container started from a cached image carries the
    // image's cache labels too, with the container's owner.
    let mut filter = vec![
        (LABEL_MANAGED, "true"),
        (LABEL_OWNER, OWNER_CACHE),
        (LABEL_KEY, ""),
    ];
    if let Some(namespace) = namespace {
        filter.push((LABEL_NAMESPACE, namespace));
    }
    let images = engine
        .docker()
        .list_images(Some(ListImagesOptions {
            filters: Some(label_filter(&filter)),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("list cached baseline images", e))?;
    let mut out: Vec<CachedImage> = images
        .into_iter()
        .map(|i| {
            let label = |k: &str| i.labels.get(k).cloned().unwrap_or_default();
            let key = label(LABEL_KEY);
            CachedImage {
                last_used: last_used(&key),
                id: i.id.clone(),
                tags: i
                    .repo_tags
                    .iter()
                    .filter(|t| t.as_str() != "<none>:<none>")
                    .cloned()
                    .collect(),
                namespace: label(LABEL_NAMESPACE),
                kind: label(LABEL_KIND),
                identity: label(LABEL_IDENTITY),
                built_from: label(LABEL_BUILT_FROM),
                parts: label(LABEL_PARTS),
                complete: label(LABEL_COMPLETE) == "true",
                created: i.created,
                size: i.size,
                key,
            }
        })
        .collect();
    out.sort_by_key(|i| std::cmp::Reverse(i.created));
    Ok(out)
}

/// Removes the cached image `id` (and the commit below it). An image a container still uses is
/// refused by the engine (the error says so).
pub async fn remove(engine: &Engine, id: &str) -> Result<()> {
    engine
        .docker()
        .remove_image(
            id,
            Some(RemoveImageOptions {
                force: true,
                ..Default::default()
            }),
            None,
        )
        .await
        .map_err(|e| Error::docker(format!("remove cached baseline image {id}"), e))?;
    Ok(())
}

/// What [`prune`] removes.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Keep at most this many images (the most recently used).
    pub max_count: Option<usize>,
    /// Keep at most this many bytes of images (the most recently used first).
    pub max_bytes: Option<u64>,
    /// Remove images not used for this long.
    pub idle: Option<Duration>,
    /// Remove everything (of the namespace).
    pub all: bool,
}

/// Removes cached images per `options` (least recently used first); returns those removed and the
/// errors of those that could not be.
pub async fn prune(
    engine: &Engine,
    options: &PruneOptions,
) -> Result<(Vec<CachedImage>, Vec<Error>)> {
    let now = unix_now();
    let mut images = list(engine, options.namespace.as_deref()).await?;
    // Most recently used first: what the caps keep.
    images.sort_by_key(|i| i.idle_secs(now));
    let mut kept_bytes = 0u64;
    let mut doomed = Vec::new();
    for (index, image) in images.into_iter().enumerate() {
        let idle = options
            .idle
            .is_some_and(|idle| image.idle_secs(now) >= idle.as_secs() as i64);
        let over_count = options.max_count.is_some_and(|max| index >= max);
        let over_size = options
            .max_bytes
            .is_some_and(|max| kept_bytes + image.size.max(0) as u64 > max);
        if options.all || !image.complete || idle || over_count || over_size {
            doomed.push(image);
        } else {
            kept_bytes += image.size.max(0) as u64;
        }
    }
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for image in doomed {
        match remove(engine, &image.id).await {
            Ok(()) => {
                forget_used(&image.key);
                removed.push(image);
            }
            Err(e) => errors.push(e),
        }
    }
    Ok((removed, errors))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn used_file(key: &str) -> Option<PathBuf> {
    let dir = crate::state::state_dir().join("cache-used");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join(key.get(..32)?))
}

/// Records that the image of `key` was used now (its file's modification time).
fn touch_used(key: &str) {
    if let Some(file) = used_file(key) {
        let _ = std::fs::write(file, unix_now().to_string());
    }
}

fn last_used(key: &str) -> Option<i64> {
    std::fs::read_to_string(used_file(key)?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn forget_used(key: &str) {
    if let Some(file) = used_file(key) {
        let _ = std::fs::remove_file(file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_checked() {
        assert!(check_namespace("default").is_ok());
        assert!(check_namespace("ci-1.a_b").is_ok());
        for bad in ["", "Upper", "-lead", "a/b", &"x".repeat(65)] {
            let err = check_namespace(bad).unwrap_err();
            assert!(
                err.to_string().contains("baseline cache namespace"),
                "{err}"
            );
        }
    }

    #[test]
    fn directory_inputs_hash_content_and_names() {
        let dir = std::env::temp_dir().join(format!("sw-cache-input-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("001.sql"), "CREATE TABLE a (id int);").unwrap();
        std::fs::write(dir.join("sub/002.sql"), "CREATE TABLE b (id int);").unwrap();
        let digest = |dir: &Path| {
            let mut d = InitDigest::default();
            d.add_path(dir).unwrap();
            d.finish()
        };
        let first = digest(&dir);
        assert_eq!(first, digest(&dir));
        std::fs::write(dir.join("sub/002.sql"), "CREATE TABLE b (id bigint);").unwrap();
        let changed = digest(&dir);
        assert_ne!(first, changed);
        std::fs::rename(dir.join("001.sql"), dir.join("000.sql")).unwrap();
        assert_ne!(changed, digest(&dir));
        let missing = InitDigest::default().add_path(&dir.join("nope"));
        assert!(missing.unwrap_err().to_string().contains("nope"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
