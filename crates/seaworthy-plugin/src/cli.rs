//! The logic of `seaworthy plugin list|inspect|check`, as functions that take parsed arguments
//! and return a report (printed with `Display`), so the binary only parses and prints.
//!
//! * `list`: every plugin on the search path, its WIT version (and whether this host supports
//!   it) and the capabilities it declares. Reads manifests only.
//! * `inspect`: one plugin's manifest, component file, sha256, the WIT versions its component
//!   names (read from the binary, without compiling) and what is or isn't granted.
//! * `inspect` and `check` also take an OCI reference (`registry/namespace/name:tag`), installed
//!   first (see [`crate::oci`]).
//! * `check`: loads the plugin like a test would (manifest, WIT version, grants, compile or
//!   cache, link), asks it for its metadata, and reports; any refusal is the error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{PluginError, Result};
use crate::grants::Grants;
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::plugin::{LoadOutcome, PluginHost, PluginMetadata};
use crate::version::{self, WitVersion};

/// Arguments of `seaworthy plugin list`.
#[derive(Debug, Clone, Default)]
pub struct ListArgs {
    /// Directories searched before `SEAWORTHY_PLUGIN_PATH` and `seaworthy.toml`'s path.
    pub dirs: Vec<PathBuf>,
}

/// Arguments of `seaworthy plugin inspect`.
#[derive(Debug, Clone, Default)]
pub struct InspectArgs {
    /// A plugin id (found on the search path), or a plugin directory or manifest file.
    pub plugin: String,
    /// Extra directories to search.
    pub dirs: Vec<PathBuf>,
}

/// Arguments of `seaworthy plugin check`.
#[derive(Debug, Clone, Default)]
pub struct CheckArgs {
    /// A plugin id (found on the search path), or a plugin directory or manifest file.
    pub plugin: String,
    /// Extra directories to search.
    pub dirs: Vec<PathBuf>,
    /// Extra grants: `exec`, `tcp:PORT`, `http:PORT` (added to `seaworthy.toml`'s).
    pub grants: Vec<String>,
}

/// Parses a grant given on the command line: `exec`, `tcp:PORT` or `http:PORT`.
pub fn parse_grant(text: &str) -> std::result::Result<Grants, String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{p:?} is not a port number"))
    };
    match text.split_once(':') {
        None if text == "exec" => Ok(Grants::new().exec()),
        Some(("tcp", p)) => Ok(Grants::new().tcp(port(p)?)),
        Some(("http", p)) => Ok(Grants::new().http(port(p)?)),
        _ => Err(format!(
            "unknown grant {text:?} (expected exec, tcp:PORT or http:PORT)"
        )),
    }
}

fn host(dirs: &[PathBuf], extra: Option<(&str, Grants)>) -> Result<PluginHost> {
    let mut builder = PluginHost::builder();
    for d in dirs {
        builder = builder.search_dir(d);
    }
    builder = builder.from_environment()?;
    if let Some((id, grants)) = extra {
        builder = builder.grant(id, grants);
    }
    builder.build()
}

/// The manifest file of `plugin`: a path if one exists there, an OCI reference (installed
/// through the lockfile and the local store), else an id on the search path.
fn locate(host: &PluginHost, plugin: &str) -> Result<PathBuf> {
    let path = Path::new(plugin);
    if !path.exists() && crate::oci::Reference::looks_like(plugin) {
        let installed = crate::oci::install_blocking(plugin, host.oci_config())?;
        return Ok(installed.dir.join(MANIFEST_FILE));
    }
    // Whatever is there is handed on (reading it refuses what is not a regular file, naming it).
    if path.exists() && !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if path.join(MANIFEST_FILE).exists() {
        return Ok(path.join(MANIFEST_FILE));
    }
    host.find(plugin)
}

/// One line of `list`.
#[derive(Debug, Clone)]
pub struct ListEntry {
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// The manifest, or why it is unusable.
    pub manifest: std::result::Result<Manifest, String>,
}

/// What `list` found.
#[derive(Debug, Clone)]
pub struct ListReport {
    /// The directories searched.
    pub search_path: Vec<PathBuf>,
    /// The plugins, in search order.
    pub entries: Vec<ListEntry>,
}

/// `seaworthy plugin list`.
pub fn list(args: &ListArgs) -> Result<ListReport> {
    let host = host(&args.dirs, None)?;
    let entries = host
        .discover()
        .into_iter()
        .map(|d| ListEntry {
            manifest_path: d.manifest_path,
            manifest: d.manifest.map_err(|e| e.to_string()),
        })
        .collect();
    Ok(ListReport {
        search_path: host.search_path().to_vec(),
        entries,
    })
}

impl fmt::Display for ListReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            let searched: Vec<String> = self
                .search_path
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            return writeln!(
                f,
                "no plugins found (searched: {}; set SEAWORTHY_PLUGIN_PATH or [plugins] path in seaworthy.toml)",
                if searched.is_empty() { "nothing".to_string() } else { searched.join(", ") }
            );
        }
        writeln!(
            f,
            "{:<16} {:<10} {:<20} {:<32} PATH",
            "ID", "VERSION", "WIT", "CAPABILITIES"
        )?;
        for e in &self.entries {
            match &e.manifest {
                Ok(m) => {
                    let wit = if WitVersion::parse(&m.wit).is_some() {
                        m.wit.clone()
                    } else {
                        format!("{} (unsupported)", m.wit)
                    };
                    writeln!(
                        f,
                        "{:<16} {:<10} {:<20} {:<32} {}",
                        m.id,
                        m.version,
                        wit,
                        m.capabilities.to_string(),
                        e.manifest_path.display()
                    )?;
                }
                Err(problem) => writeln!(f, "{:<16} {problem}", "(invalid)")?,
            }
        }
        Ok(())
    }
}

/// What `inspect` found.
#[derive(Debug, Clone)]
pub struct InspectReport {
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// The component file.
    pub wasm_path: PathBuf,
    /// Its size in bytes.
    pub wasm_bytes: usize,
    /// Its sha256.
    pub wasm_sha256: String,
    /// The `seaworthy:fixture` versions its imports and exports name, or why it could not be read.
    pub component_wit: std::result::Result<Vec<String>, String>,
    /// Whether this host implements the manifest's WIT version.
    pub supported: bool,
    /// What the user granted it.
    pub granted: Grants,
    /// What it declares and is not granted.
    pub not_granted: Vec<String>,
}

/// `seaworthy plugin inspect`.
pub fn inspect(args: &InspectArgs) -> Result<InspectReport> {
    let host = host(&args.dirs, None)?;
    let manifest_path = locate(&host, &args.plugin)?;
    let manifest = Manifest::from_file(&manifest_path)?;
    let wasm_path = manifest_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&manifest.wasm);
    let bytes = crate::files::read_regular(&wasm_path, crate::files::MAX_COMPONENT_BYTES)
        .map_err(|e| PluginError::io("read plugin component", &wasm_path, e))?;
    let granted = host.grants_for(&manifest.id);
    Ok(InspectReport {
        component_wit: version::component_wit_versions(&bytes).map(|v| v.into_iter().collect()),
        supported: WitVersion::parse(&manifest.wit).is_some(),
        not_granted: manifest.capabilities.not_granted(&granted),
        wasm_bytes: bytes.len(),
        wasm_sha256: crate::cache::sha256_hex(&bytes),
        granted,
        wasm_path,
        manifest_path,
        manifest,
    })
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        writeln!(f, "id:            {}", m.id)?;
        writeln!(f, "version:       {}", m.version)?;
        writeln!(f, "description:   {}", m.description)?;
        writeln!(
            f,
            "wit:           {}@{} ({})",
            version::WIT_PACKAGE,
            m.wit,
            if self.supported {
                "supported".to_string()
            } else {
                format!(
                    "unsupported; this host supports {}",
                    version::supported_list()
                )
            }
        )?;
        match &self.component_wit {
            Ok(v) => writeln!(
                f,
                "component wit: {}",
                if v.is_empty() {
                    "none".into()
                } else {
                    v.join(", ")
                }
            )?,
            Err(e) => writeln!(f, "component wit: unreadable: {e}")?,
        }
        writeln!(f, "manifest:      {}", self.manifest_path.display())?;
        writeln!(
            f,
            "component:     {} ({} bytes)",
            self.wasm_path.display(),
            self.wasm_bytes
        )?;
        writeln!(f, "sha256:        {}", self.wasm_sha256)?;
        writeln!(f, "capabilities:  {}", m.capabilities)?;
        if self.not_granted.is_empty() {
            writeln!(f, "grants:        all granted")
        } else {
            writeln!(
                f,
                "grants:        NOT granted: {}",
                self.not_granted.join(", ")
            )
        }
    }
}

/// What `check` found: the plugin loads and answers.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The manifest.
    pub manifest: Manifest,
    /// What the plugin answered to `metadata`.
    pub metadata: PluginMetadata,
    /// How its compiled code was obtained.
    pub outcome: LoadOutcome,
    /// How long loading took, in milliseconds.
    pub load_ms: f64,
}

/// `seaworthy plugin check`: every check a test run would make, and a call into the plugin.
pub fn check(args: &CheckArgs) -> Result<CheckReport> {
    let mut extra = Grants::new();
    for g in &args.grants {
        let parsed = parse_grant(g).map_err(|reason| PluginError::Manifest {
            path: PathBuf::from("--grant"),
            reason,
        })?;
        extra = extra.merged(&parsed);
    }
    let probe = host(&args.dirs, None)?;
    let manifest_path = locate(&probe, &args.plugin)?;
    let (manifest, _) = probe.checked_manifest(&manifest_path)?;
    let host = host(&args.dirs, Some((&manifest.id, extra)))?;
    let started = Instant::now();
    let plugin = host.load_from(&manifest_path)?;
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let metadata = plugin.metadata()?;
    if metadata.id != manifest.id {
        return Err(PluginError::Failed {
            plugin: manifest.id.clone(),
            call: "metadata",
            message: format!(
                "it says its id is {:?}, its manifest says {:?}",
                metadata.id, manifest.id
            ),
        });
    }
    Ok(CheckReport {
        manifest,
        metadata,
        outcome: plugin.load_outcome(),
        load_ms,
    })
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        writeln!(f, "ok: plugin `{}` {} loads and answers", m.id, m.version)?;
        writeln!(f, "  wit:          {}@{}", version::WIT_PACKAGE, m.wit)?;
        writeln!(f, "  capabilities: {} (granted)", m.capabilities)?;
        writeln!(
            f,
            "  loaded:       {:.1} ms ({})",
            self.load_ms,
            match self.outcome {
                LoadOutcome::Compiled => "compiled, now cached",
                LoadOutcome::DiskCache => "from the compile cache",
                LoadOutcome::Memory => "already loaded",
            }
        )?;
        writeln!(
            f,
            "  metadata:     {} {}: {}",
            self.metadata.id, self.metadata.version, self.metadata.description
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grants() {
        assert_eq!(parse_grant("exec").unwrap(), Grants::new().exec());
        assert_eq!(parse_grant("tcp:11211").unwrap(), Grants::new().tcp(11211));
        assert_eq!(parse_grant("http:80").unwrap(), Grants::new().http(80));
        assert!(parse_grant("tcp:0").is_err());
        assert!(parse_grant("docker").unwrap_err().contains("unknown grant"));
    }
}
