//! Registry credentials for pulls, found as the Docker CLI finds them.
//!
//! Two configurations are read, the first that has credentials for the registry wins:
//! `DOCKER_AUTH_CONFIG` (the JSON of a `config.json`, as CI systems provide it), then the Docker
//! config file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`). In each: the
//! registry's `credHelpers` entry, then its `auths` entry (`auth` is base64 of `user:password`),
//! then the `credsStore` helper. A helper runs as `docker-credential-<name> get`, given the
//! registry on stdin, as the Docker CLI runs it. Docker Hub is `https://index.docker.io/v1/`.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::engine::docker_config::{AuthEntry, ConfigDir, ConfigFile};
use crate::error::{Error, Result};

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(15);

/// The key under which the Docker CLI keeps Docker Hub's credentials.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// Credentials for one registry and where they were found (never the secret itself).
#[derive(Clone)]
pub(crate) struct RegistryAuth {
    pub credentials: DockerCredentials,
    pub source: String,
}

/// The registry host of an image (`None`: Docker Hub) as the Docker CLI names it.
fn server_of(registry: Option<&str>) -> String {
    match registry {
        None | Some("docker.io" | "index.docker.io" | "registry-1.docker.io") => {
            DOCKER_HUB.to_string()
        }
        Some(host) => host.to_string(),
    }
}

/// The host part of an `auths` or `credHelpers` key (`https://host:5000/v1/` → `host:5000`).
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn same_registry(key: &str, server: &str) -> bool {
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    let (k, s) = (key_host(key), key_host(server));
    k == s || (hub(k) && hub(s))
}

/// The credentials for the registry of an image (`None`: Docker Hub), if any configuration
/// has some.
pub(crate) async fn for_registry(registry: Option<&str>) -> Result<Option<RegistryAuth>> {
    let server = server_of(registry);
    if let Some(json) = std::env::var("DOCKER_AUTH_CONFIG")
        .ok()
        .filter(|j| !j.trim().is_empty())
    {
        let config: ConfigFile = serde_json::from_str(&json).map_err(|e| {
            Error::invalid(
                "DOCKER_AUTH_CONFIG",
                "(its JSON)",
                format!("not a Docker config: {e}"),
            )
        })?;
        if let Some(found) = lookup(&config, &server, "DOCKER_AUTH_CONFIG").await? {
            return Ok(Some(found));
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let docker_config = std::env::var("DOCKER_CONFIG").ok();
    let Some(dir) = ConfigDir::locate(docker_config.as_deref(), home.as_deref()) else {
        return Ok(None);
    };
    let config = dir.read_config()?;
    lookup(&config, &server, &dir.config_path().display().to_string()).await
}

async fn lookup(config: &ConfigFile, server: &str, origin: &str) -> Result<Option<RegistryAuth>> {
    if let Some((_, helper)) = config
        .cred_helpers
        .iter()
        .find(|(k, _)| same_registry(k, server))
    {
        return run_helper(helper, server, &format!("credHelpers in {origin}")).await;
    }
    if let Some((key, entry)) = config
        .auths
        .iter()
        .find(|(k, e)| same_registry(k, server) && has_secret(e))
    {
        return from_entry(entry, server)
            .map(|credentials| {
                Some(RegistryAuth {
                    credentials,
                    source: format!("auths[\"{key}\"] in {origin}"),
                })
            })
            .map_err(|reason| Error::invalid("Docker config", origin, reason));
    }
    match &config.creds_store {
        Some(store) if !store.is_empty() => {
            run_helper(store, server, &format!("credsStore in {origin}")).await
        }
        _ => Ok(None),
    }
}

fn has_secret(e: &AuthEntry) -> bool {
    e.auth.as_deref().is_some_and(|a| !a.is_empty())
        || e.password.as_deref().is_some_and(|p| !p.is_empty())
        || e.identity_token.as_deref().is_some_and(|t| !t.is_empty())
}

fn from_entry(entry: &AuthEntry, server: &str) -> std::result::Result<DockerCredentials, String> {
    let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("the auth of {server} is not base64: {e}"))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| format!("the auth of {server} is not UTF-8 text"))?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| format!("the auth of {server} is not base64 of user:password"))?;
        username = Some(user.to_string());
        password = Some(pass.to_string());
    }
    Ok(DockerCredentials {
        username,
        password,
        identitytoken: entry.identity_token.clone().filter(|t| !t.is_empty()),
        serveraddress: Some(server.to_string()),
        ..Default::default()
    })
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<helper> get` for `server`.
async fn run_helper(helper: &str, server: &str, origin: &str) -> Result<Option<RegistryAuth>> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| Error::Image {
        image: server.to_string(),
        reason: format!("credential helper {program} (from {origin}): {reason}"),
    };
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e} (is it installed and on PATH?)")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .await
            .map_err(|e| fail(format!("cannot write to it: {e}")))?;
    }
    let out = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| fail(format!("no answer within {HELPER_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The helpers' protocol: "credentials not found" means none, not a failure.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let parsed: HelperOutput = serde_json::from_str(&stdout)
        .map_err(|e| fail(format!("its output is not the helpers' JSON: {e}")))?;
    let credentials = if parsed.username == "<token>" {
        DockerCredentials {
            identitytoken: Some(parsed.secret),
            serveraddress: Some(server.to_string()),
            ..Default::default()
        }
    } else {
        DockerCredentials {
            username: Some(parsed.username),
            password: Some(parsed.secret),
            serveraddress: Some(server.to_string()),
            ..Default::default()
        }
    };
    Ok(Some(RegistryAuth {
        credentials,
        source: origin.to_string(),
    }))
}

/// What to say when a pull from `registry` failed with `detail`: a hint for a registry that
/// refused access, naming where credentials were (or would have been) taken from.
pub(crate) fn hint(registry: Option<&str>, detail: &str, auth: Option<&RegistryAuth>) -> String {
    let lower = detail.to_lowercase();
    let refused = [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "denied",
        "forbidden",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if !refused {
        return String::new();
    }
    let server = server_of(registry);
    let name = key_host(&server);
    match auth {
        Some(auth) => format!(
            " (the registry {name} refused the credentials from {}: check them, or log in \
             again with `docker login {name}`)",
            auth.source
        ),
        None => format!(
            " (the registry {name} wants credentials and none were found for it: run `docker \
             login {name}`, which stores them in ~/.docker/config.json (DOCKER_CONFIG moves it) \
             where Seaworthy reads auths, credHelpers and credsStore, or set DOCKER_AUTH_CONFIG)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_keys_match_as_the_docker_cli_matches_them() {
        assert!(same_registry("https://index.docker.io/v1/", DOCKER_HUB));
        assert!(same_registry("docker.io", DOCKER_HUB));
        assert!(same_registry("https://127.0.0.1:5443", "127.0.0.1:5443"));
        assert!(same_registry("127.0.0.1:5443/v2/", "127.0.0.1:5443"));
        assert!(!same_registry("127.0.0.1:5444", "127.0.0.1:5443"));
        assert_eq!(server_of(None), DOCKER_HUB);
        assert_eq!(server_of(Some("ghcr.io")), "ghcr.io");
    }

    #[tokio::test]
    async fn auths_entries_are_decoded_and_helpers_come_first() {
        let config: ConfigFile = serde_json::from_str(
            r#"{"auths": {"https://reg.example:5000": {"auth": "dXNlcjpwQHNzOndvcmQ="},
                          "empty.example": {}},
                "credHelpers": {"helped.example": "seaworthy-test-none"}}"#,
        )
        .unwrap();
        let found = lookup(&config, "reg.example:5000", "test")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.credentials.username.as_deref(), Some("user"));
        assert_eq!(found.credentials.password.as_deref(), Some("p@ss:word"));
        assert!(
            found.source.contains("reg.example:5000"),
            "{}",
            found.source
        );
        assert!(lookup(&config, "empty.example", "test")
            .await
            .unwrap()
            .is_none());
        let err = lookup(&config, "helped.example", "test")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("docker-credential-seaworthy-test-none"),
            "{err}"
        );
        assert!(err.contains("is it installed"), "{err}");
    }
}
