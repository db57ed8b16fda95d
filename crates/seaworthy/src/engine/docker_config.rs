//! The Docker CLI's configuration directory: `config.json` (current context, registry
//! credentials) and the context store (`contexts/meta`, `contexts/tls`).
//!
//! The directory is `DOCKER_CONFIG` when set, else `~/.docker`. A context named `NAME` keeps its
//! metadata in `contexts/meta/<sha256(NAME)>/meta.json` and its TLS material (`ca.pem`,
//! `cert.pem`, `key.pem`) in `contexts/tls/<sha256(NAME)>/docker/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The parts of `config.json` Seaworthy reads.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConfigFile {
    /// The context `docker context use` selected.
    #[serde(rename = "currentContext", default)]
    pub current_context: Option<String>,
    /// Registry credentials stored in the file, per registry.
    #[serde(default)]
    pub auths: HashMap<String, AuthEntry>,
    /// The credential helper for every registry (`docker-credential-<name>`).
    #[serde(rename = "credsStore", default)]
    pub creds_store: Option<String>,
    /// Credential helpers per registry.
    #[serde(rename = "credHelpers", default)]
    pub cred_helpers: HashMap<String, String>,
}

/// One entry of `auths`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct AuthEntry {
    /// `base64(user:password)`.
    #[serde(default)]
    pub auth: Option<String>,
    /// A user name stored apart from `auth`.
    #[serde(default)]
    pub username: Option<String>,
    /// A password stored apart from `auth`.
    #[serde(default)]
    pub password: Option<String>,
    /// An OAuth refresh token (`docker login` against some registries).
    #[serde(rename = "identitytoken", default)]
    pub identity_token: Option<String>,
}

/// A Docker configuration directory.
#[derive(Debug, Clone)]
pub(crate) struct ConfigDir {
    pub dir: PathBuf,
}

/// One context of the store: where its engine is and the directory of its TLS material.
#[derive(Debug, Clone)]
pub(crate) struct ContextEndpoint {
    pub host: String,
    pub tls_dir: Option<PathBuf>,
    pub skip_tls_verify: bool,
}

#[derive(Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: HashMap<String, EndpointMeta>,
}

#[derive(Deserialize)]
struct EndpointMeta {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

impl ConfigDir {
    /// `DOCKER_CONFIG`, else `<home>/.docker`; `None` without either.
    pub fn locate(docker_config: Option<&str>, home: Option<&Path>) -> Option<ConfigDir> {
        match docker_config.filter(|d| !d.is_empty()) {
            Some(dir) => Some(ConfigDir { dir: dir.into() }),
            None => home.map(|h| ConfigDir {
                dir: h.join(".docker"),
            }),
        }
    }

    /// The path of `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `config.json`, or an empty configuration when there is none.
    pub fn read_config(&self) -> Result<ConfigFile> {
        let path = self.config_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_str(&text).map_err(|e| {
            Error::invalid(
                "Docker config file",
                &path.display().to_string(),
                e.to_string(),
            )
        })
    }

    /// The engine endpoint of context `name`, from the context store.
    pub fn context(&self, name: &str) -> Result<ContextEndpoint> {
        let id = hex::encode(Sha256::digest(name.as_bytes()));
        let meta_path = self.dir.join("contexts/meta").join(&id).join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| {
            Error::invalid(
                "Docker context",
                name,
                format!(
                    "no such context: cannot read {} ({e}); `docker context ls` lists the \
                     contexts",
                    meta_path.display()
                ),
            )
        })?;
        let meta: ContextMeta = serde_json::from_str(&text).map_err(|e| {
            Error::invalid(
                "Docker context",
                name,
                format!("{}: {e}", meta_path.display()),
            )
        })?;
        let docker = meta.endpoints.get("docker").ok_or_else(|| {
            Error::invalid(
                "Docker context",
                name,
                format!("{} has no docker endpoint", meta_path.display()),
            )
        })?;
        let host = docker
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Error::invalid(
                    "Docker context",
                    name,
                    format!("{}: the docker endpoint has no Host", meta_path.display()),
                )
            })?;
        let tls_dir = self.dir.join("contexts/tls").join(&id).join("docker");
        Ok(ContextEndpoint {
            host,
            tls_dir: tls_dir.is_dir().then_some(tls_dir),
            skip_tls_verify: docker.skip_tls_verify,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_context_and_its_tls_material() {
        let dir = std::env::temp_dir().join(format!("sw-ctx-unit-{}", std::process::id()));
        let id = hex::encode(Sha256::digest(b"remote"));
        std::fs::create_dir_all(dir.join("contexts/meta").join(&id)).unwrap();
        std::fs::create_dir_all(dir.join("contexts/tls").join(&id).join("docker")).unwrap();
        std::fs::write(
            dir.join("contexts/meta").join(&id).join("meta.json"),
            r#"{"Name":"remote","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://10.0.0.5:2376","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        let config = ConfigDir { dir: dir.clone() };
        let ctx = config.context("remote").unwrap();
        assert_eq!(ctx.host, "tcp://10.0.0.5:2376");
        assert_eq!(
            ctx.tls_dir.unwrap(),
            dir.join("contexts/tls").join(&id).join("docker")
        );
        let missing = config.context("nope").unwrap_err().to_string();
        assert!(missing.contains("no such context"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
