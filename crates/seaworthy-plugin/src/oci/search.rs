//! `seaworthy plugin search REGISTRY [TERM]`: the plugins a registry holds, read from its
//! catalogue (`GET /v2/_catalog`), each repository's tags (`GET /v2/<name>/tags/list`) and each
//! tag's manifest annotations (what [`push`](super::push) writes: the plugin id, version,
//! description, WIT version and capabilities). Repositories that hold no plugin (images, other
//! artifacts) are left out. A plugin pushed before the capabilities annotation existed has its
//! capabilities read from its plugin manifest layer (a few hundred bytes).

use std::collections::BTreeMap;
use std::path::Path;

use super::artifact::{ImageManifest, PLUGIN_MANIFEST_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE};
use super::client::RegistryClient;
use super::{OciConfig, Reference, MAX_SMALL_BLOB};
use crate::error::{PluginError, Result};
use crate::manifest::Manifest;

/// The manifest annotation listing a plugin's capabilities (`exec, tcp port 11211`).
pub const CAPABILITIES_ANNOTATION: &str = "io.seaworthy.plugin.capabilities";
/// The manifest annotation naming the WIT version a plugin targets.
pub const WIT_ANNOTATION: &str = "io.seaworthy.plugin.wit";
/// How many repositories and tags one answer of the registry may list.
const PAGE: usize = 1000;

/// One tag of a plugin in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundVersion {
    /// The tag (`0.1`, `latest`).
    pub tag: String,
    /// The plugin's version (its manifest's `version`).
    pub version: String,
    /// The WIT version it targets (`0.1.0`).
    pub wit: String,
    /// What it asks the host for (`exec`, `tcp port 11211`); empty when it needs nothing.
    pub capabilities: Vec<String>,
    /// Its description.
    pub description: String,
}

/// A repository of a registry holding a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPlugin {
    /// `REGISTRY/REPOSITORY`: add `:TAG` for an install reference.
    pub reference: String,
    /// The plugin's id (its manifest's `id`).
    pub id: String,
    /// Its tags, oldest version first (`0.2` before `0.10`, numbers before words).
    pub versions: Vec<FoundVersion>,
}

impl FoundPlugin {
    /// The newest tag (the last one listed).
    pub fn latest(&self) -> Option<&FoundVersion> {
        self.versions.last()
    }
}

#[derive(serde::Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Tags {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// Whether `term` (case-insensitive) is in the plugin's reference, id or a description.
fn matches(plugin: &FoundPlugin, term: &str) -> bool {
    let term = term.to_lowercase();
    plugin.reference.to_lowercase().contains(&term)
        || plugin.id.to_lowercase().contains(&term)
        || plugin
            .versions
            .iter()
            .any(|v| v.description.to_lowercase().contains(&term))
}

/// Lists the plugins `registry` (`host[:port]`) holds, those whose reference, id or
/// description contains `term` when one is given, sorted by reference. An unreachable registry,
/// or one that does not serve its catalogue, is an error naming it.
pub async fn search(
    registry: &str,
    term: Option<&str>,
    config: &OciConfig,
) -> Result<Vec<FoundPlugin>> {
    let registry = registry.trim_end_matches('/');
    if registry.is_empty() || registry.contains('/') || registry.contains('@') {
        return Err(PluginError::Reference {
            reference: registry.to_string(),
            reason: "a search takes a registry, host[:port] (no repository)".into(),
        });
    }
    // A client of the registry (its catalogue is not in a repository: the name is a stand-in).
    let catalog_client = RegistryClient::new(
        &Reference::parse(&format!("{registry}/catalog"))?,
        config,
        false,
    )?;
    let action = format!("list the repositories of {registry} (GET /v2/_catalog)");
    let body = catalog_client
        .get_registry_json(&format!("_catalog?n={PAGE}"), &action)
        .await?;
    let catalog: Catalog = serde_json::from_slice(&body).map_err(|e| PluginError::Registry {
        registry: registry.to_string(),
        action: action.clone(),
        reason: format!("an unreadable catalogue: {e}"),
    })?;
    let mut found = Vec::new();
    for repository in catalog.repositories {
        let reference = Reference::parse(&format!("{registry}/{repository}"))?;
        let client = RegistryClient::new(&reference, config, false)?;
        if let Some(plugin) = plugin_of(&client, registry, &repository).await? {
            if term.is_none_or(|t| matches(&plugin, t)) {
                found.push(plugin);
            }
        }
    }
    found.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(found)
}

/// The plugin in `repository`, or `None` when none of its tags is one.
async fn plugin_of(
    client: &RegistryClient,
    registry: &str,
    repository: &str,
) -> Result<Option<FoundPlugin>> {
    let action = format!("list the tags of {registry}/{repository}");
    let body = client
        .get_registry_json(&format!("{repository}/tags/list?n={PAGE}"), &action)
        .await?;
    let tags: Tags = serde_json::from_slice(&body).map_err(|e| PluginError::Registry {
        registry: registry.to_string(),
        action,
        reason: format!("an unreadable tag list: {e}"),
    })?;
    let mut id = None;
    let mut versions = Vec::new();
    for tag in tags.tags.unwrap_or_default() {
        let fetched = client.get_manifest(&tag).await?;
        let Ok(image) = serde_json::from_slice::<ImageManifest>(&fetched.bytes) else {
            continue; // an index or another kind of manifest: not a plugin
        };
        if image.config.media_type != WASM_CONFIG_MEDIA_TYPE {
            continue;
        }
        let Some(wit) = image.annotations.get(WIT_ANNOTATION).cloned() else {
            continue; // a wasm artifact, not a Seaworthy plugin
        };
        let annotation = |key: &str| image.annotations.get(key).cloned().unwrap_or_default();
        let capabilities = match image.annotations.get(CAPABILITIES_ANNOTATION) {
            Some(list) => split_list(list),
            None => capabilities_from_layer(client, &image, registry, repository).await?,
        };
        id.get_or_insert_with(|| annotation("org.opencontainers.image.title"));
        versions.push(FoundVersion {
            version: annotation("org.opencontainers.image.version"),
            description: annotation("org.opencontainers.image.description"),
            wit,
            capabilities,
            tag,
        });
    }
    // Registries list tags in an order of their own: oldest version first, numbers compared
    // as numbers.
    versions.sort_by_key(|v| tag_order(&v.tag));
    Ok(id.map(|id| FoundPlugin {
        reference: format!("{registry}/{repository}"),
        id,
        versions,
    }))
}

/// A tag's sort key: its dot-separated parts, numbers before words, numbers as numbers.
fn tag_order(tag: &str) -> Vec<(u64, String)> {
    tag.split(['.', '-'])
        .map(|part| match part.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u64::MAX, part.to_string()),
        })
        .collect()
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The capabilities in a plugin's manifest layer (for artifacts pushed without the annotation).
async fn capabilities_from_layer(
    client: &RegistryClient,
    image: &ImageManifest,
    registry: &str,
    repository: &str,
) -> Result<Vec<String>> {
    let Ok(layer) = image.layer(PLUGIN_MANIFEST_MEDIA_TYPE) else {
        return Ok(Vec::new());
    };
    let bytes = client.get_blob(&layer.digest, MAX_SMALL_BLOB).await?;
    let path = Path::new("seaworthy-plugin.toml");
    let manifest = Manifest::parse(&String::from_utf8_lossy(&bytes), path).map_err(|e| {
        PluginError::Registry {
            registry: registry.to_string(),
            action: format!("read the plugin manifest of {registry}/{repository}"),
            reason: e.to_string(),
        }
    })?;
    Ok(manifest.capabilities.describe())
}

/// The plugins as a table: reference, versions (tags), WIT versions, capabilities, description.
pub fn table(plugins: &[FoundPlugin]) -> String {
    let mut rows = vec![[
        "PLUGIN".to_string(),
        "VERSIONS".to_string(),
        "WIT".to_string(),
        "CAPABILITIES".to_string(),
        "DESCRIPTION".to_string(),
    ]];
    for plugin in plugins {
        let versions = plugin
            .versions
            .iter()
            .map(|v| {
                if v.tag == v.version {
                    v.tag.clone()
                } else {
                    format!("{} ({})", v.tag, v.version)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let wit: BTreeMap<&str, ()> = plugin
            .versions
            .iter()
            .map(|v| (v.wit.as_str(), ()))
            .collect();
        let latest = plugin.latest();
        rows.push([
            plugin.reference.clone(),
            versions,
            wit.keys().copied().collect::<Vec<_>>().join(", "),
            latest
                .map(|v| {
                    if v.capabilities.is_empty() {
                        "-".to_string()
                    } else {
                        v.capabilities.join(", ")
                    }
                })
                .unwrap_or_default(),
            latest.map(|v| v.description.clone()).unwrap_or_default(),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < 4 {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(description: &str) -> FoundPlugin {
        FoundPlugin {
            reference: "127.0.0.1:5000/seaworthy/memcached".into(),
            id: "memcached".into(),
            versions: vec![FoundVersion {
                tag: "0.1".into(),
                version: "0.1.0".into(),
                wit: "0.1.0".into(),
                capabilities: vec!["tcp port 11211".into()],
                description: description.into(),
            }],
        }
    }

    #[test]
    fn terms_match_reference_id_and_description() {
        let p = plugin("A memcached fixture: flush_all");
        assert!(matches(&p, "MEMCACHED"));
        assert!(matches(&p, "flush"));
        assert!(!matches(&p, "postgres"));
    }

    #[test]
    fn the_table_lists_versions_wit_and_capabilities() {
        let out = table(&[plugin("cache")]);
        let line = out.lines().nth(1).unwrap();
        assert!(
            line.contains("0.1 (0.1.0)") && line.contains("tcp port 11211"),
            "{out}"
        );
        assert_eq!(split_list("exec, tcp port 1,"), ["exec", "tcp port 1"]);
        let mut tags = vec!["0.10", "latest", "0.2", "0.1"];
        tags.sort_by_key(|t| tag_order(t));
        assert_eq!(tags, ["0.1", "0.2", "0.10", "latest"]);
    }
}
