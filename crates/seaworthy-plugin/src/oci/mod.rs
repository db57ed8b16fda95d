//! Plugins published to, and installed from, OCI registries — the ones that already hold the
//! project's images (Docker Hub, GHCR, a company registry, `docker-registry` on localhost).
//!
//! * [`push`] uploads a plugin directory (its `seaworthy-plugin.toml` and component) as an OCI
//!   artifact in the wasm OCI layout ([`artifact`]): the blobs, then the manifest under a tag.
//! * [`install`] resolves a [`Reference`] to a manifest digest — the one pinned in
//!   `seaworthy.lock` ([`lock`]) when there is one, else what the tag names now (and pins it) —
//!   fetches what the local store lacks, checks the sha256 of every byte against the digest
//!   that names it (and against the lockfile), and lays the plugin out as a directory a
//!   [`PluginHost`](crate::PluginHost) loads. A pinned plugin whose blobs are in the store
//!   installs without the registry.
//! * [`PluginHost::load`](crate::PluginHost::load) takes a reference wherever it takes a plugin
//!   id, so a test can name `"registry.example.com/acme/kv:0.1"` and use it as a fixture.
//!
//! Registries on `localhost`, `127.0.0.0/8` or `[::1]` are spoken to over plain HTTP; others over
//! HTTPS unless listed with [`OciConfig::insecure`] (or `SEAWORTHY_INSECURE_REGISTRIES`,
//! comma-separated). Credentials: see [`auth`].
//!
//! ```no_run
//! use seaworthy_plugin::oci::{self, OciConfig};
//! # async fn demo() -> seaworthy_plugin::Result<()> {
//! let config = OciConfig::from_environment();
//! let pushed = oci::push("target/seaworthy-plugins/kv".as_ref(), "registry.example.com/acme/kv:0.1", &config).await?;
//! let installed = oci::install("registry.example.com/acme/kv:0.1", &config).await?;
//! assert_eq!(installed.manifest_digest, pushed.manifest_digest);
//! println!("{}", installed.dir.display()); // load it with PluginHost::load_from
//! # Ok(()) }
//! ```

pub mod artifact;
pub mod auth;
mod client;
pub mod lock;
pub mod reference;
pub mod search;
mod store;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

pub use artifact::{
    Descriptor, ImageManifest, IMAGE_MANIFEST_MEDIA_TYPE, PLUGIN_MANIFEST_MEDIA_TYPE,
    WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
};
pub use auth::Credentials;
pub use lock::{LockedPlugin, Lockfile, LOCKFILE};
pub use reference::Reference;

use crate::error::{PluginError, Result};
use crate::host_api::clip;
use crate::manifest::{Manifest, MANIFEST_FILE};
use artifact::{ComponentInfo, WasmConfig, TITLE};
use client::RegistryClient;
use store::{digest_of, Cached, Store};

/// The largest component accepted from a registry.
const MAX_COMPONENT: usize = 256 << 20;
/// The largest config or plugin manifest accepted from a registry.
pub(crate) const MAX_SMALL_BLOB: usize = 1 << 20;
/// The largest OCI manifest read from the store (as the registry client accepts).
const MAX_MANIFEST_BLOB: u64 = 4 << 20;
/// The default deadline of one registry request.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Where and how plugins are pushed and installed.
#[derive(Debug, Clone)]
pub struct OciConfig {
    /// The local store of fetched blobs and installed plugins.
    pub cache_dir: PathBuf,
    /// The lockfile, or none (nothing is pinned or written).
    pub lockfile: Option<PathBuf>,
    /// Registries (`host[:port]`) to speak plain HTTP to, besides loopback ones.
    pub insecure: Vec<String>,
    /// Credentials to use for every registry, before the environment and the Docker config.
    pub credentials: Option<Credentials>,
    /// The Docker config file to read credentials from (default: `$DOCKER_CONFIG/config.json`,
    /// else `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
    /// The deadline of each registry request.
    pub timeout: Duration,
    /// Refuse references the lockfile does not pin (for CI: `SEAWORTHY_LOCKED=1`).
    pub locked: bool,
    /// Resolve tags again and move their pins (`seaworthy plugin install --update`).
    pub update: bool,
}

impl Default for OciConfig {
    fn default() -> Self {
        OciConfig {
            cache_dir: store::default_dir(),
            lockfile: None,
            insecure: Vec::new(),
            credentials: None,
            docker_config: None,
            timeout: DEFAULT_TIMEOUT,
            locked: false,
            update: false,
        }
    }
}

impl OciConfig {
    /// The configuration the environment describes: the store in `SEAWORTHY_OCI_CACHE` (else
    /// the user cache), the project's lockfile ([`lock::default_path`]), insecure registries
    /// from `SEAWORTHY_INSECURE_REGISTRIES`, and `SEAWORTHY_LOCKED`.
    pub fn from_environment() -> OciConfig {
        let insecure = std::env::var("SEAWORTHY_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let locked = std::env::var("SEAWORTHY_LOCKED")
            .is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
        OciConfig {
            lockfile: Some(lock::default_path()),
            insecure,
            locked,
            ..OciConfig::default()
        }
    }

    /// Uses `dir` as the local store.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self
    }

    /// Pins in (and reads pins from) `path`.
    pub fn lockfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.lockfile = Some(path.into());
        self
    }

    /// Uses no lockfile.
    pub fn no_lockfile(mut self) -> Self {
        self.lockfile = None;
        self
    }

    /// Speaks plain HTTP to `registry` (`host[:port]`).
    pub fn insecure(mut self, registry: impl Into<String>) -> Self {
        self.insecure.push(registry.into());
        self
    }

    /// Uses `credentials` for every registry.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Reads credentials from this Docker config file.
    pub fn docker_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.docker_config = Some(path.into());
        self
    }

    /// Sets the deadline of each registry request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Refuses references the lockfile does not pin.
    pub fn locked(mut self, locked: bool) -> Self {
        self.locked = locked;
        self
    }

    /// Resolves tags again and moves their pins.
    pub fn update(mut self, update: bool) -> Self {
        self.update = update;
        self
    }

    pub(crate) fn is_insecure(&self, registry: &str) -> bool {
        self.insecure.iter().any(|r| r == registry)
    }
}

/// What [`push`] uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The reference pushed to.
    pub reference: Reference,
    /// The digest of the OCI manifest: `reference@digest` names exactly this upload.
    pub manifest_digest: String,
    /// The digest of the component.
    pub component_digest: String,
    /// The digest of the plugin manifest.
    pub plugin_manifest_digest: String,
    /// The plugin's manifest.
    pub manifest: Manifest,
}

/// Where an installed plugin's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallSource {
    /// Everything was in the local store (no request was made).
    Cache,
    /// Some or all of it was fetched from the registry.
    Registry,
}

/// What happened to the lockfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockChange {
    /// The reference was pinned and the pin was used.
    Pinned,
    /// The reference was not pinned; it is now.
    Added,
    /// The pin moved to what the tag names now (`update`).
    Updated,
    /// No lockfile is in use, or the reference names a digest itself.
    None,
}

/// What [`install`] installed.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The reference asked for.
    pub reference: Reference,
    /// The digest of the OCI manifest it resolved to.
    pub manifest_digest: String,
    /// The digest of the component.
    pub component_digest: String,
    /// The digest of the plugin manifest.
    pub plugin_manifest_digest: String,
    /// The plugin directory (manifest and component), ready for
    /// [`PluginHost::load_from`](crate::PluginHost::load_from).
    pub dir: PathBuf,
    /// The plugin's manifest.
    pub manifest: Manifest,
    /// Where the bytes came from.
    pub source: InstallSource,
    /// What happened to the lockfile.
    pub lock: LockChange,
}

/// The component file of the plugin in `dir`: `wasm` if given, else the manifest's `wasm` next
/// to it, else (for a crate directory) what `cargo build --release --target wasm32-wasip2` made.
pub fn find_component(dir: &Path, manifest: &Manifest, wasm: Option<&Path>) -> Result<PathBuf> {
    if let Some(w) = wasm {
        return Ok(w.to_path_buf());
    }
    let beside = dir.join(&manifest.wasm);
    if beside.is_file() {
        return Ok(beside);
    }
    let cargo = dir.join("Cargo.toml");
    let package = std::fs::read_to_string(&cargo)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("package")?.get("name")?.as_str().map(str::to_string));
    if let Some(package) = package {
        let file = format!("{}.wasm", package.replace('-', "_"));
        let mut targets = vec![dir.join("target")];
        if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
            targets.insert(0, PathBuf::from(t));
        }
        for target in targets {
            let built = target
                .join(crate::workspace::TARGET)
                .join("release")
                .join(&file);
            if built.is_file() {
                return Ok(built);
            }
        }
    }
    Err(PluginError::io(
        "find the component of the plugin in",
        dir,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no {} there, and no cargo build output (run `cargo build --release --target {}`, or pass the .wasm)",
                manifest.wasm.display(),
                crate::workspace::TARGET
            ),
        ),
    ))
}

fn descriptor(media_type: &str, bytes: &[u8], title: Option<&str>) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: digest_of(bytes),
        size: bytes.len() as u64,
        annotations: title
            .map(|t| BTreeMap::from([(TITLE.to_string(), t.to_string())]))
            .unwrap_or_default(),
    }
}

/// Pushes the plugin in `dir` (a plugin directory, or a plugin crate after
/// `cargo build --release --target wasm32-wasip2`) to `reference`. The component must be a
/// `seaworthy:fixture` component of the WIT version its manifest names.
pub async fn push(dir: &Path, reference: &str, config: &OciConfig) -> Result<Pushed> {
    push_component(dir, None, reference, config).await
}

/// [`push`], with the component file given (`wasm`) instead of found.
pub async fn push_component(
    dir: &Path,
    wasm: Option<&Path>,
    reference: &str,
    config: &OciConfig,
) -> Result<Pushed> {
    let reference = Reference::parse(reference)?;
    let Some(tag) = reference.tag().map(str::to_string) else {
        return Err(PluginError::Reference {
            reference: reference.to_string(),
            reason: "a push needs a tag (registry/namespace/name:tag)".into(),
        });
    };
    let manifest_path = if dir.is_file() {
        dir.to_path_buf()
    } else {
        dir.join(MANIFEST_FILE)
    };
    let dir = manifest_path.parent().unwrap_or(Path::new("."));
    let toml_bytes = crate::files::read_regular(&manifest_path, crate::files::MAX_MANIFEST_BYTES)
        .map_err(|e| PluginError::io("read", &manifest_path, e))?;
    let manifest = Manifest::parse(&String::from_utf8_lossy(&toml_bytes), &manifest_path)?;
    plain_file_name(&manifest, &reference)?;
    let wasm_path = find_component(dir, &manifest, wasm)?;
    let wasm_bytes = crate::files::read_regular(&wasm_path, crate::files::MAX_COMPONENT_BYTES)
        .map_err(|e| PluginError::io("read", &wasm_path, e))?;
    let invalid = |reason: String| PluginError::InvalidComponent {
        plugin: manifest.id.clone(),
        path: wasm_path.clone(),
        reason,
    };
    let (imports, exports) = crate::version::component_names(&wasm_bytes).map_err(invalid)?;
    let versions = crate::version::component_wit_versions(&wasm_bytes).map_err(invalid)?;
    if !versions.contains(&manifest.wit) || versions.len() != 1 {
        return Err(invalid(format!(
            "its manifest says {}@{} but the component names {}",
            crate::version::WIT_PACKAGE,
            manifest.wit,
            if versions.is_empty() {
                "no version of it".to_string()
            } else {
                versions.into_iter().collect::<Vec<_>>().join(", ")
            }
        )));
    }

    let wasm_layer = descriptor(
        WASM_LAYER_MEDIA_TYPE,
        &wasm_bytes,
        Some(&manifest.wasm.to_string_lossy()),
    );
    let toml_layer = descriptor(PLUGIN_MANIFEST_MEDIA_TYPE, &toml_bytes, Some(MANIFEST_FILE));
    let created = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    let wasm_config = WasmConfig {
        created: artifact::rfc3339(created),
        author: None,
        architecture: "wasm".into(),
        os: "wasip2".into(),
        layer_digests: vec![wasm_layer.digest.clone(), toml_layer.digest.clone()],
        component: Some(ComponentInfo {
            exports,
            imports,
            target: None,
        }),
    };
    let config_bytes = serde_json::to_vec(&wasm_config).expect("the config serializes");
    let image = ImageManifest {
        schema_version: 2,
        media_type: Some(IMAGE_MANIFEST_MEDIA_TYPE.into()),
        config: descriptor(WASM_CONFIG_MEDIA_TYPE, &config_bytes, None),
        layers: vec![wasm_layer.clone(), toml_layer.clone()],
        annotations: BTreeMap::from([
            (
                "org.opencontainers.image.title".to_string(),
                manifest.id.clone(),
            ),
            (
                "org.opencontainers.image.version".to_string(),
                manifest.version.clone(),
            ),
            (
                "org.opencontainers.image.description".to_string(),
                manifest.description.clone(),
            ),
            ("io.seaworthy.plugin.wit".to_string(), manifest.wit.clone()),
            (
                search::CAPABILITIES_ANNOTATION.to_string(),
                manifest.capabilities.describe().join(", "),
            ),
        ]),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&image).expect("the manifest serializes");
    let manifest_digest = digest_of(&manifest_bytes);

    let client = RegistryClient::new(&reference, config, true)?;
    client.put_blob(&image.config.digest, &config_bytes).await?;
    client.put_blob(&wasm_layer.digest, &wasm_bytes).await?;
    client.put_blob(&toml_layer.digest, &toml_bytes).await?;
    let answered = client
        .put_manifest(&tag, IMAGE_MANIFEST_MEDIA_TYPE, &manifest_bytes)
        .await?;
    if let Some(answered) = answered.filter(|d| d != &manifest_digest) {
        return Err(PluginError::Integrity {
            reference: reference.to_string(),
            what: "the manifest the registry stored".into(),
            expected: manifest_digest,
            actual: answered,
        });
    }
    // What was pushed is already verified: keep it in the store so installing it here is free.
    let store = Store::new(config.cache_dir.clone());
    for (digest, bytes) in [
        (&manifest_digest, &manifest_bytes),
        (&image.config.digest, &config_bytes),
        (&wasm_layer.digest, &wasm_bytes),
        (&toml_layer.digest, &toml_bytes),
    ] {
        if let Err(e) = store.put(digest, bytes) {
            tracing::warn!(error = %e, "could not keep a pushed blob in the local store");
        }
    }
    Ok(Pushed {
        reference,
        manifest_digest,
        component_digest: wasm_layer.digest,
        plugin_manifest_digest: toml_layer.digest,
        manifest,
    })
}

/// The manifest's `wasm` must be a plain file name: it is where the installed component is
/// written.
fn plain_file_name(manifest: &Manifest, reference: &Reference) -> Result<()> {
    let mut parts = manifest.wasm.components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) => Ok(()),
        _ => Err(PluginError::Artifact {
            reference: reference.to_string(),
            reason: format!(
                "its manifest's wasm = {:?} is not a plain file name (published plugins keep the component next to the manifest)",
                manifest.wasm
            ),
        }),
    }
}

/// Fetches and checks blobs for one install.
struct Fetcher<'a> {
    reference: &'a Reference,
    config: &'a OciConfig,
    store: Store,
    client: Option<RegistryClient>,
    fetched: bool,
}

impl Fetcher<'_> {
    fn client(&mut self) -> Result<&RegistryClient> {
        if self.client.is_none() {
            self.client = Some(RegistryClient::new(self.reference, self.config, false)?);
        }
        self.fetched = true;
        Ok(self.client.as_ref().expect("just set"))
    }

    fn integrity(&self, what: String, expected: &str, actual: String) -> PluginError {
        PluginError::Integrity {
            reference: self.reference.to_string(),
            what,
            expected: expected.to_string(),
            actual,
        }
    }

    /// Blob `digest` from the store, else from the registry; checked either way.
    async fn blob(&mut self, what: &str, descriptor: &Descriptor, limit: usize) -> Result<Vec<u8>> {
        let digest = &descriptor.digest;
        let corrupt = match self.store.get(digest, limit as u64) {
            Cached::Valid(bytes) => return Ok(bytes),
            Cached::Missing => None,
            Cached::Corrupt { actual } => {
                tracing::warn!(reference = %self.reference, %digest, %actual, "a cached blob is corrupt; fetching it again");
                Some(actual)
            }
        };
        if descriptor.size > limit as u64 {
            return Err(PluginError::Artifact {
                reference: self.reference.to_string(),
                reason: format!(
                    "{what} is {} bytes, more than the {limit} accepted",
                    descriptor.size
                ),
            });
        }
        // Never more than the descriptor's size is read: the body is cut off past it.
        let expected = descriptor.size as usize;
        let bytes = match self.client()?.get_blob(digest, expected).await {
            Ok(b) => b,
            Err(e) => {
                return Err(match corrupt {
                    // Offline with a corrupted cache: the corruption is the news.
                    Some(actual) => self.integrity(
                        format!(
                            "{what} in the local store ({})",
                            self.store.blob_path(digest).display()
                        ),
                        digest,
                        actual,
                    ),
                    None => e,
                });
            }
        };
        let actual = digest_of(&bytes);
        if &actual != digest {
            return Err(self.integrity(
                format!("{what} served by {}", self.reference.registry()),
                digest,
                actual,
            ));
        }
        if bytes.len() as u64 != descriptor.size {
            return Err(PluginError::Artifact {
                reference: self.reference.to_string(),
                reason: format!(
                    "{what} is {} bytes but its descriptor says {}",
                    bytes.len(),
                    descriptor.size
                ),
            });
        }
        self.store.put(digest, &bytes)?;
        Ok(bytes)
    }

    /// The manifest `digest`, from the store or the registry, checked.
    async fn manifest_by_digest(&mut self, digest: &str, pinned_by: &str) -> Result<Vec<u8>> {
        match self.store.get(digest, MAX_MANIFEST_BLOB) {
            Cached::Valid(bytes) => return Ok(bytes),
            Cached::Corrupt { actual } => {
                tracing::warn!(reference = %self.reference, %digest, %actual, "a cached manifest is corrupt; fetching it again")
            }
            Cached::Missing => {}
        }
        let fetched = self.client()?.get_manifest(digest).await?;
        let actual = digest_of(&fetched.bytes);
        if actual != digest {
            return Err(self.integrity(
                format!(
                    "the OCI manifest served by {} (pinned by {pinned_by})",
                    self.reference.registry()
                ),
                digest,
                actual,
            ));
        }
        self.store.put(digest, &fetched.bytes)?;
        Ok(fetched.bytes)
    }

    /// What the tag names now: the manifest and its digest.
    async fn manifest_by_tag(&mut self) -> Result<(Vec<u8>, String)> {
        let tag = self.reference.manifest_reference().to_string();
        let fetched = self.client()?.get_manifest(&tag).await?;
        let digest = digest_of(&fetched.bytes);
        if let Some(header) = fetched.header_digest.filter(|h| h != &digest) {
            return Err(self.integrity(
                format!(
                    "the OCI manifest served by {} (its Docker-Content-Digest header)",
                    self.reference.registry()
                ),
                &header,
                digest,
            ));
        }
        self.store.put(&digest, &fetched.bytes)?;
        Ok((fetched.bytes, digest))
    }
}

/// Installs the plugin `reference` names into the local store and returns its directory:
/// the pinned digest if `seaworthy.lock` has one (else what the tag names now, which is then
/// pinned), every byte checked against its digest and the pins. Works without the registry when
/// the pinned blobs are in the store.
pub async fn install(reference: &str, config: &OciConfig) -> Result<Installed> {
    let reference = Reference::parse(reference)?;
    let key = reference.to_string();
    let mut lockfile = match &config.lockfile {
        Some(path) => Some((Lockfile::load(path)?, path.clone())),
        None => None,
    };
    let pin = lockfile
        .as_ref()
        .and_then(|(l, _)| l.get(&key).cloned())
        .filter(|_| !config.update);
    if config.locked && pin.is_none() && reference.digest().is_none() {
        let path = config.lockfile.clone().unwrap_or_else(|| LOCKFILE.into());
        return Err(PluginError::Lockfile {
            path,
            reason: format!(
                "{key} is not pinned and installs are locked (SEAWORTHY_LOCKED); run `seaworthy plugin install {key}` to pin it"
            ),
        });
    }
    let mut fetcher = Fetcher {
        reference: &reference,
        config,
        store: Store::new(config.cache_dir.clone()),
        client: None,
        fetched: false,
    };

    // The manifest: by the reference's own digest, by the pinned digest, or by tag.
    let (manifest_bytes, manifest_digest) = match (reference.digest(), &pin) {
        (Some(digest), pin) => {
            if let Some(p) = pin.as_ref().filter(|p| p.manifest != digest) {
                return Err(fetcher.integrity(
                    format!("the digest in the reference (seaworthy.lock pins {key} to another manifest)"),
                    &p.manifest,
                    digest.to_string(),
                ));
            }
            (
                fetcher.manifest_by_digest(digest, "the reference").await?,
                digest.to_string(),
            )
        }
        (None, Some(p)) => (
            fetcher
                .manifest_by_digest(&p.manifest, "seaworthy.lock")
                .await?,
            p.manifest.clone(),
        ),
        (None, None) => fetcher.manifest_by_tag().await?,
    };
    let not_plugin = |reason: String| PluginError::Artifact {
        reference: key.clone(),
        reason,
    };
    let image: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| not_plugin(format!("its manifest is not an OCI image manifest: {e}")))?;
    if image.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(not_plugin(format!(
            "it is not a wasm artifact: its config has media type {} (expected {WASM_CONFIG_MEDIA_TYPE})",
            image.config.media_type
        )));
    }
    let wasm_layer = image
        .layer(WASM_LAYER_MEDIA_TYPE)
        .map_err(&not_plugin)?
        .clone();
    let toml_layer = image
        .layer(PLUGIN_MANIFEST_MEDIA_TYPE)
        .map_err(|r| {
            not_plugin(format!(
                "{r}: it is a wasm component but not a Seaworthy plugin"
            ))
        })?
        .clone();
    // Every digest is checked for its form before it is used as a path or asked for.
    for (what, descriptor) in [
        ("the config", &image.config),
        ("the component layer", &wasm_layer),
        ("the plugin manifest layer", &toml_layer),
    ] {
        if !reference::is_sha256_digest(&descriptor.digest) {
            return Err(not_plugin(format!(
                "{what} has the digest {:?}, which is not `sha256:` and 64 lowercase hex digits",
                clip(&descriptor.digest, 100)
            )));
        }
    }
    if let Some(p) = &pin {
        for (what, locked, actual) in [
            ("the component", &p.component, &wasm_layer.digest),
            (
                "the plugin manifest",
                &p.plugin_manifest,
                &toml_layer.digest,
            ),
        ]
        .into_iter()
        .chain(
            p.config
                .as_ref()
                .map(|c| ("the config", c, &image.config.digest)),
        ) {
            if locked != actual {
                return Err(fetcher.integrity(
                    format!("{what} named by manifest {manifest_digest} (seaworthy.lock pins it)"),
                    locked,
                    actual.clone(),
                ));
            }
        }
    }
    let toml_bytes = fetcher
        .blob("the plugin manifest", &toml_layer, MAX_SMALL_BLOB)
        .await?;
    let wasm_bytes = fetcher
        .blob("the component", &wasm_layer, MAX_COMPONENT)
        .await?;
    // The config is part of the artifact; keep it, so the store holds the whole of it.
    fetcher
        .blob("the config", &image.config, MAX_SMALL_BLOB)
        .await?;

    let dir = fetcher.store.plugin_dir(&manifest_digest);
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = Manifest::parse(&String::from_utf8_lossy(&toml_bytes), &manifest_path)?;
    plain_file_name(&manifest, &reference)?;
    store::write_atomic(&dir.join(&manifest.wasm), &wasm_bytes)?;
    store::write_atomic(&manifest_path, &toml_bytes)?;

    let source = if fetcher.fetched {
        InstallSource::Registry
    } else {
        InstallSource::Cache
    };
    let lock = match (&mut lockfile, reference.digest()) {
        (Some((lockfile, path)), None) => {
            let entry = LockedPlugin {
                reference: key.clone(),
                manifest: manifest_digest.clone(),
                component: wasm_layer.digest.clone(),
                plugin_manifest: toml_layer.digest.clone(),
                config: Some(image.config.digest.clone()),
            };
            let change = match lockfile.get(&key) {
                _ if pin.is_some() => LockChange::Pinned,
                Some(old) if old == &entry => LockChange::Pinned,
                Some(_) => LockChange::Updated,
                None => LockChange::Added,
            };
            if change != LockChange::Pinned {
                lockfile.set(entry);
                lockfile.save(path)?;
            }
            change
        }
        _ => LockChange::None,
    };
    Ok(Installed {
        reference,
        manifest_digest,
        component_digest: wasm_layer.digest,
        plugin_manifest_digest: toml_layer.digest,
        dir,
        manifest,
        source,
        lock,
    })
}

/// [`install`], for synchronous callers (runs on a private runtime, so it works inside async
/// code too).
pub fn install_blocking(reference: &str, config: &OciConfig) -> Result<Installed> {
    crate::plugin::block_on(install(reference, config))
}
