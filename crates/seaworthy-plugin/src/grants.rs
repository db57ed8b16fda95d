//! What the user allows a plugin to do, and where that is written down.
//!
//! A capability works only when the plugin declares it in its manifest *and* the user grants
//! it. Grants come from the API ([`Grants`], passed to
//! [`PluginHostBuilder::grant`](crate::PluginHostBuilder::grant)) or from the `[plugins]`
//! table of `seaworthy.toml` (the file named by `SEAWORTHY_CONFIG`, else the first found in the
//! current directory or its ancestors):
//!
//! ```toml
//! [plugins]
//! path = ["target/seaworthy-plugins"]   # searched after SEAWORTHY_PLUGIN_PATH
//!
//! [plugins.grants.memcached]
//! tcp = [11211]
//!
//! [plugins.grants.redis]
//! exec = true
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{PluginError, Result};

/// Capabilities a user grants one plugin. Build with [`Grants::new`] and the builder methods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Container TCP ports the plugin may connect to.
    #[serde(default)]
    pub tcp: BTreeSet<u16>,
    /// Container ports the plugin may send HTTP requests to.
    #[serde(default)]
    pub http: BTreeSet<u16>,
    /// Whether the plugin may run commands in its container.
    #[serde(default)]
    pub exec: bool,
}

impl Grants {
    /// Grants nothing.
    pub fn new() -> Grants {
        Grants::default()
    }

    /// Also grants TCP connections to container `port`.
    pub fn tcp(mut self, port: u16) -> Grants {
        self.tcp.insert(port);
        self
    }

    /// Also grants HTTP requests to container `port`.
    pub fn http(mut self, port: u16) -> Grants {
        self.http.insert(port);
        self
    }

    /// Also grants running commands in the container.
    pub fn exec(mut self) -> Grants {
        self.exec = true;
        self
    }

    /// The union of `self` and `other`.
    pub fn merged(mut self, other: &Grants) -> Grants {
        self.tcp.extend(&other.tcp);
        self.http.extend(&other.http);
        self.exec |= other.exec;
        self
    }
}

/// The `[plugins]` table of `seaworthy.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directories to search for plugins, relative to the config file.
    #[serde(default)]
    pub path: Vec<PathBuf>,
    /// Ignored by [`PluginHostBuilder::from_environment`](crate::PluginHostBuilder::from_environment):
    /// the compile cache holds native code, so only the user places it
    /// (`SEAWORTHY_PLUGIN_CACHE` or the host builder). Read so that older files still parse.
    #[serde(default)]
    pub cache: Option<PathBuf>,
    /// Grants per plugin id.
    #[serde(default)]
    pub grants: BTreeMap<String, Grants>,
}

impl PluginsConfig {
    /// Reads the `[plugins]` table of the config file, if there is a file: the one named by
    /// `SEAWORTHY_CONFIG`, else the first `seaworthy.toml` in the current directory or above.
    pub fn load() -> Result<(PluginsConfig, Option<PathBuf>)> {
        let path = match std::env::var_os("SEAWORTHY_CONFIG") {
            Some(p) => Some(PathBuf::from(p)),
            None => std::env::current_dir().ok().and_then(|d| {
                d.ancestors()
                    .map(|a| a.join("seaworthy.toml"))
                    .find(|p| p.is_file())
            }),
        };
        match path {
            None => Ok((PluginsConfig::default(), None)),
            Some(path) => Ok((PluginsConfig::from_file(&path)?, Some(path))),
        }
    }

    /// Reads the `[plugins]` table of `path`; paths in it are made relative to its directory.
    pub fn from_file(path: &Path) -> Result<PluginsConfig> {
        let text = crate::files::read_regular_text(path, crate::files::MAX_MANIFEST_BYTES)
            .map_err(|e| PluginError::io("read config file", path, e))?;
        let invalid = |reason: String| PluginError::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| invalid(e.to_string().trim().to_string()))?;
        let Some(plugins) = table.get("plugins") else {
            return Ok(PluginsConfig::default());
        };
        let mut config: PluginsConfig =
            plugins.clone().try_into().map_err(|e: toml::de::Error| {
                invalid(format!("[plugins]: {}", e.to_string().trim()))
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in &mut config.path {
            *p = base.join(&*p);
        }
        if let Some(cache) = &mut config.cache {
            *cache = base.join(&*cache);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_plugins_table() {
        let dir = std::env::temp_dir().join(format!("sw-grants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("seaworthy.toml");
        std::fs::write(
            &file,
            "[images]\nredis = \"x\"\n[plugins]\npath = [\"plugins\"]\n[plugins.grants.memcached]\ntcp = [11211]\n",
        )
        .unwrap();
        let config = PluginsConfig::from_file(&file).unwrap();
        assert_eq!(config.path, [dir.join("plugins")]);
        assert_eq!(config.grants["memcached"], Grants::new().tcp(11211));
        std::fs::write(&file, "[plugins.grants.memcached]\nsocket = true\n").unwrap();
        let e = PluginsConfig::from_file(&file).unwrap_err().to_string();
        assert!(e.contains("socket"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
