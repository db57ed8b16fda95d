//! Building a directory of plugins (a cargo workspace or a single crate) and laying the results
//! out as plugin directories the host can load, so tests and benches work from a fresh clone.
//!
//! ```no_run
//! # fn demo() -> seaworthy_plugin::Result<()> {
//! // plugins/<name>/{Cargo.toml, seaworthy-plugin.toml, src/lib.rs} → target/seaworthy-plugins/<id>/
//! let built = seaworthy_plugin::workspace::build("plugins", "target")?;
//! for plugin in &built {
//!     println!("{} → {}", plugin.id, plugin.dir.display());
//! }
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{PluginError, Result};
use crate::manifest::{Manifest, MANIFEST_FILE};

/// The cargo target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// A plugin built and laid out for loading.
#[derive(Debug, Clone)]
pub struct BuiltPlugin {
    /// Its manifest id.
    pub id: String,
    /// The plugin directory (manifest and component), ready for a host's search path.
    pub dir: PathBuf,
    /// The crate it was built from.
    pub source: PathBuf,
}

/// Every plugin crate under `source`: a directory (at most two levels down) holding both a
/// `Cargo.toml` with a `[package]` and a `seaworthy-plugin.toml`.
pub fn plugin_crates(source: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut visit = vec![(source.to_path_buf(), 0)];
    while let Some((dir, depth)) = visit.pop() {
        if dir.join(MANIFEST_FILE).is_file() && dir.join("Cargo.toml").is_file() {
            found.push(dir.clone());
        }
        if depth < 2 {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let path = e.path();
                    let name = e.file_name();
                    if path.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.')
                    {
                        visit.push((path, depth + 1));
                    }
                }
            }
        }
    }
    found.sort();
    found
}

/// The package name in a crate's `Cargo.toml`.
fn package_name(crate_dir: &Path) -> Result<String> {
    let path = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| PluginError::io("read", &path, e))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| PluginError::Manifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| PluginError::Manifest {
            path,
            reason: "no [package] name".into(),
        })
}

/// Builds the plugins under `source` with
/// `cargo build --release --target wasm32-wasip2 --target-dir <target>/plugins` (one cargo
/// call, an incremental target directory of its own), then lays each out as
/// `<target>/seaworthy-plugins/<id>/` with its manifest and component. Cargo's output goes to
/// this process's stderr; a failed build returns an error with its exit status.
pub fn build(source: impl AsRef<Path>, target: impl AsRef<Path>) -> Result<Vec<BuiltPlugin>> {
    let source = source.as_ref();
    let target = target.as_ref();
    let crates = plugin_crates(source);
    let cargo_target = target.join("plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest_path = source.join("Cargo.toml");
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(&manifest_path)
        .arg("--target-dir")
        .arg(&cargo_target)
        // Flags meant for the host build (coverage, sanitizers) don't apply to wasm.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    for dir in &crates {
        command.arg("-p").arg(package_name(dir)?);
    }
    let status = command
        .status()
        .map_err(|e| PluginError::io("run cargo to build the plugins in", source, e))?;
    if !status.success() {
        return Err(PluginError::io(
            "build the plugins in",
            source,
            std::io::Error::other(format!(
                "cargo build --target {TARGET} failed ({status}); is the target installed? (rustup target add {TARGET})"
            )),
        ));
    }
    let out = target.join("seaworthy-plugins");
    let mut built = Vec::new();
    for dir in crates {
        let manifest = Manifest::from_file(&dir.join(MANIFEST_FILE))?;
        let wasm_name = format!("{}.wasm", package_name(&dir)?.replace('-', "_"));
        let wasm = cargo_target.join(TARGET).join("release").join(&wasm_name);
        let plugin_dir = out.join(&manifest.id);
        std::fs::create_dir_all(&plugin_dir)
            .map_err(|e| PluginError::io("create", &plugin_dir, e))?;
        copy_if_changed(&dir.join(MANIFEST_FILE), &plugin_dir.join(MANIFEST_FILE))?;
        copy_if_changed(&wasm, &plugin_dir.join(&manifest.wasm))?;
        built.push(BuiltPlugin {
            id: manifest.id,
            dir: plugin_dir,
            source: dir,
        });
    }
    Ok(built)
}

/// Copies `from` to `to` unless `to` already has the same bytes (keeps timestamps stable).
fn copy_if_changed(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).map_err(|e| PluginError::io("read", from, e))?;
    if std::fs::read(to).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let tmp = to.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, to))
        .map_err(|e| PluginError::io("write", to, e))
}
