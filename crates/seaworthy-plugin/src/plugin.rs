//! [`PluginHost`]: finds plugins, checks them, compiles (or loads from the cache) and links them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use crate::cache::{self, CompileCache};
use crate::error::{PluginError, Result};
use crate::grants::{Grants, PluginsConfig};
use crate::host_api::clip;
use crate::instance::{Call, HostState, Reply, Runner, MAX_METADATA_TEXT};
use crate::limits::Limits;
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::oci::{OciConfig, Reference};
use crate::v0_1;
use crate::version::{self, WitVersion};

/// How a plugin's compiled code was obtained when it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOutcome {
    /// Compiled from the wasm (and written to the cache, if there is one).
    Compiled,
    /// Loaded from the on-disk cache of compiled components.
    DiskCache,
    /// Already loaded by this host.
    Memory,
}

/// The component, ready to instantiate, for each WIT version.
pub(crate) enum Pre {
    /// Every 0.1 release (0.1.0 and 0.1.1), through the 0.1.1 bindings.
    V0_1(v0_1::FixturePluginPre<HostState>),
}

/// An instance's exports, for each WIT version.
pub(crate) enum Exports {
    /// Every 0.1 release.
    V0_1(v0_1::FixturePlugin),
}

impl Pre {
    pub(crate) async fn instantiate(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Exports> {
        match self {
            Pre::V0_1(pre) => Ok(Exports::V0_1(pre.instantiate_async(store).await?)),
        }
    }
}

/// The linker for 0.1 components (0.1.0 and 0.1.1: wasmtime resolves a 0.1.0 import by its
/// 0.1.1 definition): the host interface and WASI with an empty context (std needs its
/// imports; without preopens, sockets or environment it reaches nothing).
fn linker_v0_1(engine: &Engine) -> Result<&'static Linker<HostState>> {
    static LINKER: OnceLock<std::result::Result<Linker<HostState>, String>> = OnceLock::new();
    LINKER
        .get_or_init(|| {
            let mut linker = Linker::new(engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
            v0_1::FixturePlugin::add_to_linker::<
                HostState,
                wasmtime::component::HasSelf<HostState>,
            >(&mut linker, |s| s)
            .map_err(|e| e.to_string())?;
            Ok(linker)
        })
        .as_ref()
        .map_err(|reason| PluginError::Engine {
            plugin: "-".into(),
            action: "link the host interface",
            reason: reason.clone(),
        })
}

pub(crate) struct LoadedPlugin {
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) wasm_path: PathBuf,
    /// The component's bytes, kept for [`Plugin::wasm_sha256`] (computed when first asked: a
    /// load from the cache needs only the faster [`cache::component_digest`]).
    pub(crate) wasm: Vec<u8>,
    pub(crate) wasm_sha256: OnceLock<String>,
    /// [`cache::component_digest`] of the component.
    pub(crate) digest: String,
    pub(crate) version: WitVersion,
    pub(crate) engine: Engine,
    pub(crate) pre: Pre,
    pub(crate) outcome: LoadOutcome,
    pub(crate) limits: Limits,
    pub(crate) grants: Grants,
}

/// What a plugin says about itself when asked (the `metadata` export).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginMetadata {
    /// Its id.
    pub id: String,
    /// Its version.
    pub version: String,
    /// What it provides.
    pub description: String,
}

/// A loaded plugin: manifest checked, capabilities granted, component compiled and linked.
/// Cheap to clone. Make fixture definitions from it with [`Plugin::fixture`].
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<LoadedPlugin>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.inner.manifest.id)
            .field("version", &self.inner.manifest.version)
            .field("wit", &self.inner.version)
            .field("wasm", &self.inner.wasm_path)
            .finish()
    }
}

impl Plugin {
    /// The manifest's id.
    pub fn id(&self) -> &str {
        &self.inner.manifest.id
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The WIT version the component targets.
    pub fn wit_version(&self) -> WitVersion {
        self.inner.version
    }

    /// Whether loading compiled the component or found it compiled.
    pub fn load_outcome(&self) -> LoadOutcome {
        self.inner.outcome
    }

    /// The component file.
    pub fn wasm_path(&self) -> &Path {
        &self.inner.wasm_path
    }

    /// The sha256 of the component, in hex.
    pub fn wasm_sha256(&self) -> &str {
        self.inner
            .wasm_sha256
            .get_or_init(|| cache::sha256_hex(&self.inner.wasm))
    }

    /// The component's own hash (BLAKE3 of its bytes, in hex): what its compile-cache key and
    /// its fixtures' keys are made of.
    pub(crate) fn component_digest(&self) -> &str {
        &self.inner.digest
    }

    /// What the user granted it (a superset of what its manifest declares).
    pub fn grants(&self) -> &Grants {
        &self.inner.grants
    }

    /// The limits its calls run under (fixtures can override them).
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Asks the plugin for its metadata (runs its code, in a fresh instance, without a
    /// container). Blocks the calling thread for the duration of the call.
    pub fn metadata(&self) -> Result<PluginMetadata> {
        let runner = Runner::new(self.inner.clone(), None, self.inner.limits.clone());
        match block_on(runner.call(Call::Metadata, &Vec::new()))? {
            Reply::Metadata(m) => Ok(PluginMetadata {
                id: clip(&m.id, MAX_METADATA_TEXT),
                version: clip(&m.version, MAX_METADATA_TEXT),
                description: clip(&m.description, MAX_METADATA_TEXT),
            }),
            _ => Err(runner.mismatch(Call::Metadata)),
        }
    }
}

/// Runs `fut` to completion on a private single-threaded runtime in a scoped thread, so a
/// synchronous caller inside any async runtime can wait for a plugin call without stalling it.
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(fut))
        });
        match handle.join() {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => panic!("cannot start a runtime for a plugin call (out of threads?): {e}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A plugin found on the search path (its manifest may be invalid).
#[derive(Debug)]
pub struct Discovered {
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// The manifest, or why it could not be read.
    pub manifest: Result<Manifest>,
}

struct HostInner {
    engine: Engine,
    cache: CompileCache,
    search_path: Vec<PathBuf>,
    grants: BTreeMap<String, Grants>,
    limits: Limits,
    oci: OciConfig,
    loaded: Mutex<HashMap<String, Component>>,
}

/// Finds, checks, compiles and links plugins. Cheap to clone.
///
/// ```no_run
/// use seaworthy_plugin::{Grants, PluginHost};
/// # fn demo() -> seaworthy_plugin::Result<()> {
/// let host = PluginHost::builder()
///     .search_dir("target/seaworthy-plugins")
///     .grant("memcached", Grants::new().tcp(11211))
///     .build()?;
/// let memcached = host.load("memcached")?.fixture([("memory-mb", "32")])?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<HostInner>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("search_path", &self.inner.search_path)
            .field("cache", &self.inner.cache.dir())
            .field("grants", &self.inner.grants)
            .finish()
    }
}

/// Configures a [`PluginHost`].
#[derive(Debug, Clone, Default)]
pub struct PluginHostBuilder {
    search_path: Vec<PathBuf>,
    grants: BTreeMap<String, Grants>,
    limits: Limits,
    cache_dir: Option<Option<PathBuf>>,
    oci: Option<OciConfig>,
}

impl PluginHostBuilder {
    /// Adds a directory to search: it holds plugin directories (each with a
    /// `seaworthy-plugin.toml`), or is one.
    pub fn search_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.search_path.push(dir.into());
        self
    }

    /// Grants `grants` to the plugin `id` (added to what was already granted).
    pub fn grant(mut self, id: impl Into<String>, grants: Grants) -> Self {
        let entry = self.grants.entry(id.into()).or_default();
        *entry = std::mem::take(entry).merged(&grants);
        self
    }

    /// Sets the default limits of plugin calls.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Caches compiled components in `dir`.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(Some(dir.into()));
        self
    }

    /// How plugins named by an OCI reference are installed: the local store, the lockfile,
    /// credentials (default: [`OciConfig::from_environment`] with
    /// [`from_environment`](Self::from_environment), else [`OciConfig::default`], which pins
    /// nothing).
    pub fn oci(mut self, config: OciConfig) -> Self {
        self.oci = Some(config);
        self
    }

    /// Compiles every time (no on-disk cache).
    pub fn no_cache(mut self) -> Self {
        self.cache_dir = Some(None);
        self
    }

    /// Adds what the environment says: the directories of `SEAWORTHY_PLUGIN_PATH` (separated
    /// like `PATH`), then the `[plugins]` table of `seaworthy.toml` (search path, grants).
    ///
    /// The compile cache is not taken from `seaworthy.toml`: a compiled artifact is native code,
    /// so only the user says where it is kept (`SEAWORTHY_PLUGIN_CACHE`, or
    /// [`cache_dir`](Self::cache_dir)); a `[plugins] cache` key is ignored with a warning.
    pub fn from_environment(mut self) -> Result<Self> {
        if let Some(path) = std::env::var_os("SEAWORTHY_PLUGIN_PATH") {
            self.search_path
                .extend(std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()));
        }
        let (config, file) = PluginsConfig::load()?;
        self.search_path.extend(config.path);
        for (id, grants) in config.grants {
            self = self.grant(id, grants);
        }
        if let Some(dir) = config.cache {
            tracing::warn!(
                config = ?file,
                cache = %dir.display(),
                "ignoring `[plugins] cache` of the project's config: the compile cache holds native code, so only SEAWORTHY_PLUGIN_CACHE or the host builder may place it"
            );
        }
        if self.oci.is_none() {
            self.oci = Some(OciConfig::from_environment());
        }
        Ok(self)
    }

    /// Builds the host (starting the process-wide wasm engine on first use).
    pub fn build(self) -> Result<PluginHost> {
        let engine = crate::engine::engine()?.clone();
        let cache = CompileCache::new(self.cache_dir.unwrap_or_else(cache::default_dir));
        Ok(PluginHost {
            inner: Arc::new(HostInner {
                engine,
                cache,
                search_path: self.search_path,
                grants: self.grants,
                limits: self.limits,
                oci: self.oci.unwrap_or_default(),
                loaded: Mutex::new(HashMap::new()),
            }),
        })
    }
}

impl PluginHost {
    /// A builder with nothing on the search path, nothing granted and the default cache.
    pub fn builder() -> PluginHostBuilder {
        PluginHostBuilder::default()
    }

    /// A host configured from the environment (see [`PluginHostBuilder::from_environment`]).
    pub fn from_environment() -> Result<PluginHost> {
        PluginHost::builder().from_environment()?.build()
    }

    /// The process-wide host configured from the environment, created on first use.
    pub fn global() -> Result<PluginHost> {
        static GLOBAL: OnceLock<PluginHost> = OnceLock::new();
        if let Some(host) = GLOBAL.get() {
            return Ok(host.clone());
        }
        let host = PluginHost::from_environment()?;
        Ok(GLOBAL.get_or_init(|| host).clone())
    }

    /// The directories searched, in order.
    pub fn search_path(&self) -> &[PathBuf] {
        &self.inner.search_path
    }

    /// The directory compiled components are cached in, if any.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.cache.dir()
    }

    /// What the user granted plugin `id`.
    pub fn grants_for(&self, id: &str) -> Grants {
        self.inner.grants.get(id).cloned().unwrap_or_default()
    }

    /// The default limits of plugin calls.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Every plugin on the search path, in search order (a directory may hold a plugin, or
    /// plugin directories one level down).
    pub fn discover(&self) -> Vec<Discovered> {
        let mut found = Vec::new();
        for dir in &self.inner.search_path {
            let own = dir.join(MANIFEST_FILE);
            if own.is_file() {
                found.push(own);
                continue;
            }
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut here: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join(MANIFEST_FILE))
                .filter(|p| p.is_file())
                .collect();
            here.sort();
            found.extend(here);
        }
        found
            .into_iter()
            .map(|manifest_path| Discovered {
                manifest: Manifest::from_file(&manifest_path),
                manifest_path,
            })
            .collect()
    }

    /// The manifest file of plugin `id` on the search path. Two plugins with this id (in two
    /// directories of the search path, or two plugin directories of one) are an error naming
    /// both: the one found first would otherwise silently shadow the other, and receive the
    /// grants meant for it.
    pub fn find(&self, id: &str) -> Result<PathBuf> {
        let mut found = self
            .discover()
            .into_iter()
            .filter(|d| d.manifest.as_ref().is_ok_and(|m| m.id == id))
            .map(|d| d.manifest_path);
        let first = found.next();
        if let (Some(first), Some(second)) = (&first, found.next()) {
            return Err(PluginError::Shadowed {
                id: id.to_string(),
                first: first.clone(),
                second,
            });
        }
        first.ok_or_else(|| PluginError::NotFound {
            id: id.to_string(),
            searched: if self.inner.search_path.is_empty() {
                "no directory (the search path is empty)".into()
            } else {
                self.inner
                    .search_path
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }

    /// How this host installs plugins named by reference.
    pub fn oci_config(&self) -> &OciConfig {
        &self.inner.oci
    }

    /// Loads plugin `id` (see [`load_from`](Self::load_from)): found on the search path, or, when
    /// `id` is an OCI reference (`registry.example.com/acme/kv:0.1`), installed through the
    /// lockfile and the local store ([`oci::install`](crate::oci::install), fetching on a miss).
    /// A plugin installed by reference gets the grants of its manifest id, of the reference as
    /// written, and of `registry/repository`.
    pub fn load(&self, id: &str) -> Result<Plugin> {
        if Reference::looks_like(id) {
            let installed = crate::oci::install_blocking(id, &self.inner.oci)?;
            let keys = [
                id.to_string(),
                format!(
                    "{}/{}",
                    installed.reference.registry(),
                    installed.reference.repository()
                ),
            ];
            return self.load_granted(&installed.dir, &keys);
        }
        let manifest = self.find(id)?;
        self.load_from(&manifest)
    }

    /// Loads the plugin whose manifest is `path` (or the `seaworthy-plugin.toml` in directory
    /// `path`). In order, before any code is compiled: the manifest is validated, its WIT
    /// version must be one this host supports, every capability it declares must be granted,
    /// and the component's own imports and exports must name the same WIT version. Then the
    /// compiled component comes from this host's memory, the on-disk cache, or the compiler.
    pub fn load_from(&self, path: &Path) -> Result<Plugin> {
        self.load_granted(path, &[])
    }

    /// [`load_from`](Self::load_from), also granting what is granted to each of `extra_keys`.
    fn load_granted(&self, path: &Path, extra_keys: &[String]) -> Result<Plugin> {
        let (manifest, manifest_path) = self.checked_manifest(path)?;
        let version =
            WitVersion::parse(&manifest.wit).ok_or_else(|| PluginError::UnsupportedWit {
                plugin: manifest.id.clone(),
                found: manifest.wit.clone(),
                declared_in: "its manifest",
                supported: version::supported_list(),
            })?;
        let grants = extra_keys
            .iter()
            .fold(self.grants_for(&manifest.id), |g, key| {
                g.merged(&self.grants_for(key))
            });
        let missing = manifest.capabilities.not_granted(&grants);
        if !missing.is_empty() {
            return Err(PluginError::NotGranted {
                plugin: manifest.id.clone(),
                capability: missing.join(", "),
            });
        }
        let dir = manifest_path.parent().unwrap_or(Path::new("."));
        let wasm_path = dir.join(&manifest.wasm);
        let bytes = crate::files::read_regular(&wasm_path, crate::files::MAX_COMPONENT_BYTES)
            .map_err(|e| PluginError::io("read plugin component", &wasm_path, e))?;
        let invalid = |reason: String| PluginError::InvalidComponent {
            plugin: manifest.id.clone(),
            path: wasm_path.clone(),
            reason,
        };
        let versions = version::component_wit_versions(&bytes).map_err(invalid)?;
        if versions.is_empty() {
            return Err(invalid(format!(
                "it neither imports nor exports {} (was it built with the fixture-plugin world?)",
                version::WIT_PACKAGE
            )));
        }
        for found in &versions {
            if found == &manifest.wit {
                continue;
            }
            return Err(if WitVersion::parse(found).is_none() {
                PluginError::UnsupportedWit {
                    plugin: manifest.id.clone(),
                    found: found.clone(),
                    declared_in: "its component",
                    supported: version::supported_list(),
                }
            } else {
                PluginError::WitMismatch {
                    plugin: manifest.id.clone(),
                    manifest: manifest.wit.clone(),
                    component: found.clone(),
                }
            });
        }
        let digest = cache::component_digest(&bytes);
        let (component, outcome) = self.component(&manifest, &wasm_path, &bytes, &digest)?;
        let pre = match version {
            WitVersion::V0_1_0 | WitVersion::V0_1_1 => {
                let linker = linker_v0_1(&self.inner.engine)?;
                let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
                    invalid(format!("it needs imports this host does not provide: {e}"))
                })?;
                Pre::V0_1(v0_1::FixturePluginPre::new(instance_pre).map_err(|e| {
                    invalid(format!("it does not export the fixture interface: {e}"))
                })?)
            }
        };
        tracing::debug!(plugin = %manifest.id, outcome = ?outcome, "plugin loaded");
        Ok(Plugin {
            inner: Arc::new(LoadedPlugin {
                manifest: Arc::new(manifest),
                wasm_path,
                wasm: bytes,
                wasm_sha256: OnceLock::new(),
                digest,
                version,
                engine: self.inner.engine.clone(),
                pre,
                outcome,
                limits: self.inner.limits.clone(),
                grants,
            }),
        })
    }

    /// Reads and validates a manifest (a file, or the manifest in a directory).
    pub fn checked_manifest(&self, path: &Path) -> Result<(Manifest, PathBuf)> {
        let manifest_path = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else {
            path.to_path_buf()
        };
        Ok((Manifest::from_file(&manifest_path)?, manifest_path))
    }

    fn component(
        &self,
        manifest: &Manifest,
        wasm_path: &Path,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Component, LoadOutcome)> {
        let engine = &self.inner.engine;
        let key = CompileCache::key(engine, digest);
        if let Some(c) = self
            .inner
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok((c.clone(), LoadOutcome::Memory));
        }
        let (component, outcome) = match self.inner.cache.get(engine, &key) {
            Some(c) => (c, LoadOutcome::DiskCache),
            None => {
                let started = std::time::Instant::now();
                let component =
                    Component::new(engine, bytes).map_err(|e| PluginError::InvalidComponent {
                        plugin: manifest.id.clone(),
                        path: wasm_path.to_path_buf(),
                        reason: format!("it does not compile: {e}"),
                    })?;
                tracing::debug!(plugin = %manifest.id, elapsed = ?started.elapsed(), "plugin compiled");
                match component.serialize() {
                    Ok(serialized) => self.inner.cache.put(&key, &serialized),
                    Err(e) => {
                        tracing::warn!(plugin = %manifest.id, error = %e, "cannot serialize a compiled component")
                    }
                }
                (component, LoadOutcome::Compiled)
            }
        };
        self.inner
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, component.clone());
        Ok((component, outcome))
    }
}
