//! Registry credentials and authentication challenges.
//!
//! Credentials are looked up, in order: the ones given in code ([`super::OciConfig::credentials`]),
//! the environment (`SEAWORTHY_REGISTRY_USERNAME` and `SEAWORTHY_REGISTRY_PASSWORD`), then the
//! Docker client's config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): a
//! `credHelpers` entry for the registry, an `auths` entry (`auth` is base64 of `user:password`),
//! then the `credsStore`. Helpers are run as `docker-credential-<name> get`, as Docker does.
//!
//! A registry that wants credentials answers 401 with a `WWW-Authenticate` challenge: `Basic`
//! (send the credentials with each request) or `Bearer` (trade them at the challenge's realm for a
//! token scoped to the repository).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(15);

/// A user name and password (or token) for a registry, and where they came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
    /// Where they were found, for error messages (never the secret itself).
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

impl Credentials {
    /// Credentials given in code.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
            source: "credentials given in code".into(),
        }
    }

    /// The value of a `Basic` `Authorization` header.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The Docker client's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The host part of a Docker config key: keys may be `host`, `https://host` or
/// `https://host/v1/`.
fn key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// The names Docker files a registry's credentials under.
fn same_registry(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    let docker_hub =
        |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    host == registry || (docker_hub(host) && docker_hub(registry))
}

/// Finds credentials for `registry` (`host[:port]`): `explicit` first, then the environment,
/// then the Docker config at `docker_config` (or the default one). Problems with helpers or the
/// config file are logged and skipped: the registry's answer then says what is missing.
pub fn lookup(
    registry: &str,
    explicit: Option<&Credentials>,
    docker_config: Option<&Path>,
) -> Option<Credentials> {
    if let Some(c) = explicit {
        return Some(c.clone());
    }
    if let (Some(username), Some(password)) = (
        std::env::var_os("SEAWORTHY_REGISTRY_USERNAME"),
        std::env::var_os("SEAWORTHY_REGISTRY_PASSWORD"),
    ) {
        return Some(Credentials {
            username: username.to_string_lossy().into_owned(),
            password: password.to_string_lossy().into_owned(),
            source: "SEAWORTHY_REGISTRY_USERNAME/SEAWORTHY_REGISTRY_PASSWORD".into(),
        });
    }
    let path = docker_config
        .map(Path::to_path_buf)
        .or_else(docker_config_path)?;
    from_docker_config(registry, &path)
}

fn from_docker_config(registry: &str, path: &Path) -> Option<Credentials> {
    let text = std::fs::read_to_string(path).ok()?;
    let config: DockerConfig = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable Docker config");
            return None;
        }
    };
    if let Some((key, helper)) = config
        .cred_helpers
        .iter()
        .find(|(k, _)| same_registry(k, registry))
    {
        return run_helper(helper, key);
    }
    for (key, entry) in &config.auths {
        if !same_registry(key, registry) {
            continue;
        }
        let source = format!("{} (auths.{key})", path.display());
        if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            match decoded.as_deref().and_then(|d| d.split_once(':')) {
                Some((username, password)) => {
                    return Some(Credentials {
                        username: username.to_string(),
                        password: password.to_string(),
                        source,
                    })
                }
                None => {
                    tracing::warn!(%source, "ignoring an `auth` that is not base64 of user:password")
                }
            }
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Some(Credentials {
                username: username.clone(),
                password: password.clone(),
                source,
            });
        }
    }
    let store = config.creds_store.as_deref().filter(|s| !s.is_empty())?;
    // The store files credentials under the key `docker login` used; try the usual ones.
    let keys = config
        .auths
        .keys()
        .filter(|k| same_registry(k, registry))
        .cloned()
        .chain([registry.to_string(), format!("https://{registry}")]);
    keys.into_iter().find_map(|key| run_helper(store, &key))
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Runs `docker-credential-<helper> get` with `server` on stdin; `None` when the helper is
/// missing, fails (it has nothing for that server) or does not answer in time.
fn run_helper(helper: &str, server: &str) -> Option<Credentials> {
    let program = format!("docker-credential-{helper}");
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%program, error = %e, "cannot run the Docker credential helper");
            return None;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(%program, "the Docker credential helper did not answer in time");
                return None;
            }
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    if !status.success() {
        tracing::debug!(%program, %server, "the credential helper has no credentials");
        return None;
    }
    let answer: HelperAnswer = serde_json::from_str(&out).ok()?;
    Some(Credentials {
        username: answer.username,
        password: answer.secret,
        source: format!("{program} (for {server})"),
    })
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// Send credentials with `Authorization: Basic`.
    Basic,
    /// Get a token at `realm` (with `service` and `scope`), then send `Authorization: Bearer`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a challenge such as `Bearer realm="https://auth.example/token",service="reg"`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    } else {
        None
    }
}

/// `key="value", key=value` pairs (values may hold commas inside quotes).
fn parse_params(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example.io/token",service="registry.example.io",scope="repository:ns/kv:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example.io/token".into(),
                service: Some("registry.example.io".into()),
                scope: Some("repository:ns/kv:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn reads_auths_from_a_docker_config() {
        let dir = std::env::temp_dir().join(format!("seaworthy-auth-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        let encoded = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:x");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{"https://reg.example:5000/v1/": {{"auth": "{encoded}"}}, "other.example": {{}}}}}}"#
            ),
        )
        .unwrap();
        let c = from_docker_config("reg.example:5000", &path).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cret:x")
        );
        assert!(c.source.contains("config.json"), "{}", c.source);
        assert!(from_docker_config("other.example", &path).is_none());
        assert!(!format!("{c:?}").contains("s3cret"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
