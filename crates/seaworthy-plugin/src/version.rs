//! Which versions of the `seaworthy:fixture` WIT package this host implements, and how a
//! component's version is read before it is compiled.
//!
//! Each released version has its folder under `wit/`. The releases of one semver track share a
//! host module (`v0_1` runs 0.1.0 and 0.1.1, which only adds): wasmtime resolves a 0.1.0 name
//! by its 0.1.1 definition. The newest module holds the host logic; a later incompatible track's
//! module would forward to it, converting its types, so the logic is written once.

use std::collections::BTreeSet;
use std::fmt;

/// The WIT package every plugin targets.
pub const WIT_PACKAGE: &str = "seaworthy:fixture";

/// The WIT versions this host can run, oldest first.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["0.1.0", "0.1.1"];

/// A WIT version this host implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WitVersion {
    /// `seaworthy:fixture@0.1.0`.
    V0_1_0,
    /// `seaworthy:fixture@0.1.1`: 0.1.0 and `container-log-since`.
    V0_1_1,
}

impl WitVersion {
    /// The version `text` names, if this host implements it.
    pub fn parse(text: &str) -> Option<WitVersion> {
        match text {
            "0.1.0" => Some(WitVersion::V0_1_0),
            "0.1.1" => Some(WitVersion::V0_1_1),
            _ => None,
        }
    }

    /// The version as text.
    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1_0 => "0.1.0",
            WitVersion::V0_1_1 => "0.1.1",
        }
    }
}

impl fmt::Display for WitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The supported versions joined for messages: `0.1.0, 0.1.1`.
pub(crate) fn supported_list() -> String {
    SUPPORTED_WIT_VERSIONS.join(", ")
}

/// The names of a component's top-level imports and exports (`wasi:io/streams@0.2.6`,
/// `seaworthy:fixture/fixture@0.1.0`...), read from its binary without compiling it. Errors say
/// why the bytes are not a component.
pub(crate) fn component_names(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    use wasmtime::wasmparser::{Parser, Payload};
    if !Parser::is_component(bytes) {
        return Err(if Parser::is_core_wasm(bytes) {
            "it is a core wasm module, not a component (build for wasm32-wasip2)".to_string()
        } else {
            "it is not a wasm component".to_string()
        });
    }
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    // Only the outermost component's sections: nested components have imports of their own.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("invalid wasm: {e}"))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    let import = import.map_err(|e| format!("invalid import: {e}"))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    let export = export.map_err(|e| format!("invalid export: {e}"))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

/// The versions of `seaworthy:fixture` that a component's imports and exports name, read from
/// its binary without compiling it. Errors say why the bytes are not a component.
pub(crate) fn component_wit_versions(bytes: &[u8]) -> Result<BTreeSet<String>, String> {
    let (imports, exports) = component_names(bytes)?;
    Ok(imports
        .iter()
        .chain(&exports)
        .filter_map(|name| {
            name.strip_prefix(WIT_PACKAGE)?
                .strip_prefix('/')?
                .split_once('@')
                .map(|(_, version)| version.to_string())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_its_versions() {
        for v in SUPPORTED_WIT_VERSIONS {
            assert_eq!(WitVersion::parse(v).map(WitVersion::as_str), Some(*v));
        }
        assert_eq!(WitVersion::parse("0.2.0"), None);
    }

    #[test]
    fn refuses_what_is_not_a_component() {
        assert!(component_wit_versions(b"hello")
            .unwrap_err()
            .contains("not a wasm component"));
        let core = b"\0asm\x01\0\0\0";
        assert!(component_wit_versions(core)
            .unwrap_err()
            .contains("core wasm module"));
    }
}
