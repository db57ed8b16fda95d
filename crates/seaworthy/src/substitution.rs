//! Image substitution: run a stand-in wherever a definition names an image.
//!
//! Fixtures default to the official images (`postgres:16`, `redis:7`...). Where those can't be
//! pulled — an air-gapped CI, a mirror, a locally built equivalent — a map replaces them without
//! touching the tests. Two sources, the first that names the image wins:
//!
//! 1. `SEAWORTHY_IMAGE_MAP`: `postgres=seaworthy-test/postgres,redis:7=mirror.local/redis:7`.
//! 2. The `[images]` table of a `seaworthy.toml` file: the one named by `SEAWORTHY_CONFIG`, else
//!    the first found in the current directory or its ancestors.
//!
//! ```toml
//! [images]
//! postgres = "seaworthy-test/postgres"
//! "rabbitmq:3-management" = "seaworthy-test/rabbitmq"
//! ```
//!
//! A key with a tag matches only that tag; a key without a tag matches the repository with any tag.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::reference::ImageRef;

/// The image that replaces `image`, if a map names it.
pub fn substitute(image: &str) -> Result<Option<String>> {
    let wanted = match ImageRef::parse(image) {
        Ok(r) => r,
        Err(_) => return Ok(None),
    };
    if let Ok(map) = std::env::var("SEAWORTHY_IMAGE_MAP") {
        let pairs: Vec<(String, String)> = map
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| {
                        Error::invalid(
                            "SEAWORTHY_IMAGE_MAP entry",
                            pair,
                            "expected IMAGE=SUBSTITUTE",
                        )
                    })
            })
            .collect::<Result<_>>()?;
        if let Some(found) = lookup(&pairs, image, &wanted) {
            return Ok(Some(found));
        }
    }
    let file = config_file()?;
    Ok(file.and_then(|pairs| lookup(pairs, image, &wanted)))
}

fn lookup(pairs: &[(String, String)], image: &str, wanted: &ImageRef) -> Option<String> {
    // An exact key first, then a key that names the repository without a tag.
    pairs
        .iter()
        .find(|(k, _)| {
            k == image || ImageRef::parse(k).is_ok_and(|r| r == *wanted && k.contains(':'))
        })
        .or_else(|| {
            pairs.iter().find(|(k, _)| {
                !k.contains(':')
                    && !k.contains('@')
                    && ImageRef::parse(k).is_ok_and(|r| r.name() == wanted.name())
            })
        })
        .map(|(_, v)| v.clone())
}

/// The `[images]` table of the config file, read once.
fn config_file() -> Result<Option<&'static [(String, String)]>> {
    type Loaded = std::result::Result<Option<Vec<(String, String)>>, String>;
    static CONFIG: OnceLock<Loaded> = OnceLock::new();
    let loaded = CONFIG.get_or_init(|| {
        let path = match std::env::var_os("SEAWORTHY_CONFIG") {
            Some(p) => Some(PathBuf::from(p)),
            None => std::env::current_dir().ok().and_then(|d| find_upward(&d)),
        };
        match path {
            None => Ok(None),
            Some(path) => read_images(&path).map(Some).map_err(|e| e.to_string()),
        }
    });
    match loaded {
        Ok(Some(pairs)) => Ok(Some(pairs.as_slice())),
        Ok(None) => Ok(None),
        Err(e) => Err(Error::invalid("config file", "seaworthy.toml", e.clone())),
    }
}

/// The string `key` of table `[table]` in the config file (`SEAWORTHY_CONFIG`, else the first
/// `seaworthy.toml` in the current directory or its ancestors), if set.
pub(crate) fn config_setting(table: &str, key: &str) -> Result<Option<String>> {
    let path = match std::env::var_os("SEAWORTHY_CONFIG") {
        Some(p) => Some(PathBuf::from(p)),
        None => std::env::current_dir().ok().and_then(|d| find_upward(&d)),
    };
    let Some(path) = path else {
        return Ok(None);
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(format!("read {shown}"), e))?;
    let value: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::invalid("config file", &shown, e.to_string()))?;
    match value.get(table).and_then(|t| t.get(key)) {
        None => Ok(None),
        Some(v) => v.as_str().map(|s| Some(s.to_string())).ok_or_else(|| {
            Error::invalid(
                "config file",
                &shown,
                format!("{table}.{key} must be a string"),
            )
        }),
    }
}

/// The first `seaworthy.toml` in `dir` or its ancestors.
pub(crate) fn find_upward(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join("seaworthy.toml"))
        .find(|p| p.is_file())
}

/// Reads the `[images]` table of a `seaworthy.toml`.
pub fn read_images(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    let value: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        Error::invalid("config file", &path.display().to_string(), e.to_string())
    })?;
    let Some(images) = value.get("images") else {
        return Ok(Vec::new());
    };
    let table = images.as_table().ok_or_else(|| {
        Error::invalid(
            "config file",
            &path.display().to_string(),
            "[images] must be a table of IMAGE = \"SUBSTITUTE\"",
        )
    })?;
    table
        .iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|v| (k.clone(), v.to_string()))
                .ok_or_else(|| {
                    Error::invalid(
                        "config file",
                        &path.display().to_string(),
                        format!("images.{k} must be a string"),
                    )
                })
        })
        .collect()
}

/// An on/off environment switch (`SEAWORTHY_BASELINE_CACHE`, `SEAWORTHY_REUSE`): `Some(true)`
/// for on, `Some(false)` for off, `None` when unset or neither.
pub(crate) fn env_switch(name: &str) -> Option<bool> {
    let value = std::env::var(name).ok()?;
    match value.trim().to_ascii_lowercase().as_str() {
        "off" | "0" | "false" | "no" => Some(false),
        "on" | "1" | "true" | "yes" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_and_without_tags() {
        let pairs = vec![
            (
                "postgres".to_string(),
                "seaworthy-test/postgres".to_string(),
            ),
            ("redis:7".to_string(), "mirror/redis:7".to_string()),
        ];
        let look = |i: &str| lookup(&pairs, i, &ImageRef::parse(i).unwrap());
        assert_eq!(
            look("postgres:16").as_deref(),
            Some("seaworthy-test/postgres")
        );
        assert_eq!(look("postgres").as_deref(), Some("seaworthy-test/postgres"));
        assert_eq!(look("redis:7").as_deref(), Some("mirror/redis:7"));
        assert_eq!(look("redis:6"), None);
        assert_eq!(look("mysql"), None);
    }

    #[test]
    fn reads_the_images_table() {
        let path = std::env::temp_dir().join(format!("sw-config-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[images]\npostgres = \"local/pg\"\n\"rabbitmq:3-management\" = \"local/rmq\"\n",
        )
        .unwrap();
        let pairs = read_images(&path).unwrap();
        assert_eq!(pairs.len(), 2);
        std::fs::write(&path, "[images]\npostgres = 3\n").unwrap();
        assert!(read_images(&path)
            .unwrap_err()
            .to_string()
            .contains("images.postgres must be a string"));
        std::fs::remove_file(&path).unwrap();
    }
}
