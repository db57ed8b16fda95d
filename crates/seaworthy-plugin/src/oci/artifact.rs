//! The OCI artifact a plugin travels as, following the CNCF TAG Runtime "wasm OCI artifact"
//! layout that wasm-pkg-tools (`wkg`), oci-wasm, Spin and wasmCloud use: an OCI image manifest
//! whose config has media type `application/vnd.wasm.config.v0+json` (architecture `wasm`, os
//! `wasip2`, the layer digests and the component's imports and exports) and whose component is
//! a layer of media type `application/wasm`. Seaworthy adds its plugin manifest as a second layer
//! of media type [`PLUGIN_MANIFEST_MEDIA_TYPE`]; wasm tools that only look for the
//! `application/wasm` layer still find the component.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The manifest's media type: an OCI image manifest.
pub const IMAGE_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config's media type in the wasm OCI artifact layout.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The component layer's media type.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The media type of the layer holding `seaworthy-plugin.toml`.
pub const PLUGIN_MANIFEST_MEDIA_TYPE: &str = "application/vnd.seaworthy.plugin.manifest.v1+toml";

/// The annotation holding a layer's file name.
pub(crate) const TITLE: &str = "org.opencontainers.image.title";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the content is.
    pub media_type: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Annotations (the file name, for layers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest (the fields Seaworthy reads and writes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`IMAGE_MANIFEST_MEDIA_TYPE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers: the component, then the plugin manifest.
    pub layers: Vec<Descriptor>,
    /// Annotations (plugin id, version, description).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// The single layer of `media_type`, or why there is not exactly one.
    pub fn layer(&self, media_type: &str) -> Result<&Descriptor, String> {
        let mut found = self.layers.iter().filter(|l| l.media_type == media_type);
        match (found.next(), found.next()) {
            (Some(layer), None) => Ok(layer),
            (None, _) => Err(format!(
                "the artifact has no layer of media type {media_type}"
            )),
            (Some(_), Some(_)) => Err(format!(
                "the artifact has more than one layer of media type {media_type}"
            )),
        }
    }
}

/// The config blob of the wasm OCI layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WasmConfig {
    pub(crate) created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) author: Option<String>,
    pub(crate) architecture: String,
    pub(crate) os: String,
    pub(crate) layer_digests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) component: Option<ComponentInfo>,
}

/// What the config says about the component.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ComponentInfo {
    pub(crate) exports: Vec<String>,
    pub(crate) imports: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}

/// `seconds` since the Unix epoch as an RFC 3339 UTC timestamp.
pub(crate) fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian), by 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn finds_single_layers() {
        let layer = |t: &str| Descriptor {
            media_type: t.into(),
            digest: "sha256:x".into(),
            size: 1,
            annotations: BTreeMap::new(),
        };
        let m = ImageManifest {
            schema_version: 2,
            media_type: None,
            config: layer(WASM_CONFIG_MEDIA_TYPE),
            layers: vec![layer(WASM_LAYER_MEDIA_TYPE), layer(WASM_LAYER_MEDIA_TYPE)],
            annotations: BTreeMap::new(),
        };
        assert!(m
            .layer(WASM_LAYER_MEDIA_TYPE)
            .unwrap_err()
            .contains("more than one"));
        assert!(m
            .layer(PLUGIN_MANIFEST_MEDIA_TYPE)
            .unwrap_err()
            .contains("no layer"));
    }
}
