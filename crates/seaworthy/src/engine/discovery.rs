//! Finding the engine: the places Seaworthy looks, in order, and what it found at each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::docker_config::ConfigDir;
use super::{Engine, Source, Transport};
use crate::error::{Error, Result, Tried};

/// How long a candidate endpoint may take to answer a ping during discovery.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variables discovery reads.
const VARS: [&str; 9] = [
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "SEAWORTHY_CONFIG",
    "XDG_RUNTIME_DIR",
    "HOME",
    "SEAWORTHY_SSH_KEY",
];

/// The search for an engine, in this order (the first place that names one decides):
///
/// 1. `DOCKER_HOST` (`unix://`, `tcp://`, `http://`, `https://`; TLS when `DOCKER_TLS_VERIFY`
///    is set, with `ca.pem`, `cert.pem` and `key.pem` from `DOCKER_CERT_PATH`, else `~/.docker`).
/// 2. The Docker context named by `DOCKER_CONTEXT`, else the `currentContext` of the Docker
///    config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): its endpoint and TLS
///    material from the context store. The context `default` selects nothing.
/// 3. The `[engine]` table of `seaworthy.toml` (the file named by `SEAWORTHY_CONFIG`, else the
///    first in the current directory or its ancestors): `host = "tcp://…"`, and
///    `cert_path = "dir"` (relative to the file) for TLS.
/// 4. The known sockets, each pinged, the first that answers wins: the standard
///    `/var/run/docker.sock`; rootless Docker's `$XDG_RUNTIME_DIR/docker.sock`; Docker Desktop's
///    `~/.docker/run/docker.sock` and `~/.docker/desktop/docker.sock`; Colima's, Rancher
///    Desktop's and OrbStack's under the home directory; Podman's rootful
///    `/run/podman/podman.sock` and rootless `$XDG_RUNTIME_DIR/podman/podman.sock`.
///
/// An engine named in places 1–3 is the one used: when it does not answer, discovery fails
/// rather than run the tests on some other engine. When nothing answers, the error
/// ([`Error::EngineNotFound`]) lists every place looked at and why each gave no engine.
///
/// [`Discovery::from_env`] reads the process's environment; the builder methods replace parts
/// of it (tests use them with temporary homes and runtime directories).
#[derive(Debug, Clone)]
pub struct Discovery {
    vars: HashMap<&'static str, String>,
    system_root: PathBuf,
    search_from: Option<PathBuf>,
    uid: u32,
    probe_timeout: Duration,
}

/// A place that names an endpoint.
struct Candidate {
    place: String,
    source: Source,
    transport: std::result::Result<Transport, String>,
}

impl Default for Discovery {
    /// [`Discovery::new`]: an empty environment.
    fn default() -> Self {
        Discovery::new()
    }
}

impl Discovery {
    /// The search as the process's environment, home directory and current directory define it.
    pub fn from_env() -> Discovery {
        let vars = VARS
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v)))
            .collect();
        Discovery {
            vars,
            system_root: PathBuf::from("/"),
            search_from: std::env::current_dir().ok(),
            // SAFETY: getuid cannot fail and has no preconditions.
            uid: unsafe { libc::getuid() },
            probe_timeout: PROBE_TIMEOUT,
        }
    }

    /// The search in an empty environment: no variables set, no `seaworthy.toml` looked for,
    /// the system sockets under `/`. Add what a test needs with [`var`](Self::var).
    pub fn new() -> Discovery {
        Discovery {
            vars: HashMap::new(),
            search_from: None,
            ..Discovery::from_env()
        }
    }

    /// Sets (`Some`) or unsets (`None`) one of the variables discovery reads: `DOCKER_HOST`,
    /// `DOCKER_CONTEXT`, `DOCKER_CONFIG`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`,
    /// `SEAWORTHY_CONFIG`, `XDG_RUNTIME_DIR`, `HOME` or `SEAWORTHY_SSH_KEY`. Another name is
    /// refused.
    pub fn var(mut self, name: &str, value: Option<&str>) -> Result<Discovery> {
        let key = VARS.iter().find(|k| **k == name).ok_or_else(|| {
            Error::invalid(
                "discovery variable",
                name,
                format!("discovery reads only {}", VARS.join(", ")),
            )
        })?;
        match value {
            Some(v) => self.vars.insert(key, v.to_string()),
            None => self.vars.remove(key),
        };
        Ok(self)
    }

    /// Looks for the system-wide sockets (`/var/run/docker.sock`, `/run/podman/podman.sock`,
    /// `/run/user/UID/…`) under `root` instead of `/`.
    pub fn system_root(mut self, root: impl Into<PathBuf>) -> Discovery {
        self.system_root = root.into();
        self
    }

    /// Looks for `seaworthy.toml` in `dir` and its ancestors (default: the current directory);
    /// `None` looks nowhere (`SEAWORTHY_CONFIG` still names a file).
    pub fn config_search_from(mut self, dir: Option<PathBuf>) -> Discovery {
        self.search_from = dir;
        self
    }

    /// How long each candidate may take to answer (default 30 s; a socket nobody listens on
    /// fails at once).
    pub fn probe_timeout(mut self, timeout: Duration) -> Discovery {
        self.probe_timeout = timeout;
        self
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from)
    }

    fn system_path(&self, absolute: &str) -> PathBuf {
        self.system_root.join(absolute.trim_start_matches('/'))
    }

    fn runtime_dir(&self) -> PathBuf {
        match self.get("XDG_RUNTIME_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => self.system_path(&format!("/run/user/{}", self.uid)),
        }
    }

    /// Connects to the first engine found, in the documented order.
    pub async fn connect(&self) -> Result<Engine> {
        let mut tried = Vec::new();
        // Places 1-3: the first that names an engine decides.
        for configured in [self.docker_host(), self.context(), self.config_file()] {
            match configured {
                Ok(Some(candidate)) => {
                    let place = candidate.place.clone();
                    return match self.probe(candidate).await {
                        Ok(engine) => Ok(engine),
                        Err(failed) => {
                            tried.push(failed);
                            Err(Error::EngineNotFound {
                                tried,
                                configured: Some(place),
                            })
                        }
                    };
                }
                Ok(None) => {}
                Err(skipped) => tried.push(skipped),
            }
        }
        for candidate in self.known_sockets() {
            let Ok(Transport::Unix(path)) = &candidate.transport else {
                continue;
            };
            if !Path::new(path).exists() {
                tried.push(Tried {
                    place: candidate.place,
                    endpoint: Some(format!("unix://{path}")),
                    outcome: "no such socket".into(),
                });
                continue;
            }
            match self.probe(candidate).await {
                Ok(engine) => return Ok(engine),
                Err(failed) => tried.push(failed),
            }
        }
        Err(Error::EngineNotFound {
            tried,
            configured: None,
        })
    }

    /// Connects to `candidate`'s endpoint within the probe timeout.
    async fn probe(&self, candidate: Candidate) -> std::result::Result<Engine, Tried> {
        let transport = match candidate.transport {
            Ok(t) => t,
            Err(why) => {
                return Err(Tried {
                    place: candidate.place,
                    endpoint: None,
                    outcome: why,
                })
            }
        };
        let endpoint = transport.endpoint();
        let fail = |outcome: String| Tried {
            place: candidate.place.clone(),
            endpoint: Some(endpoint.clone()),
            outcome,
        };
        let timeout = self.probe_timeout;
        match tokio::time::timeout(timeout, Engine::open(transport, candidate.source)).await {
            Ok(Ok(engine)) => Ok(engine),
            Ok(Err(e)) => Err(fail(root_cause(&e))),
            Err(_) => Err(fail(format!("no answer within {timeout:?}"))),
        }
    }

    /// Place 1: `DOCKER_HOST`.
    fn docker_host(&self) -> std::result::Result<Option<Candidate>, Tried> {
        let Some(host) = self.get("DOCKER_HOST") else {
            return Err(unset("DOCKER_HOST", "not set"));
        };
        let tls = self.get("DOCKER_TLS_VERIFY").map(|_| self.env_cert_dir());
        Ok(Some(Candidate {
            place: "DOCKER_HOST".into(),
            source: Source::DockerHost,
            transport: Transport::parse(host, tls.flatten(), self.ssh_key()),
        }))
    }

    /// The key for `ssh://` endpoints, `SEAWORTHY_SSH_KEY`.
    fn ssh_key(&self) -> Option<PathBuf> {
        self.get(super::SSH_KEY_VAR).map(PathBuf::from)
    }

    /// The TLS directory of `DOCKER_CERT_PATH`, else `~/.docker`.
    fn env_cert_dir(&self) -> Option<PathBuf> {
        self.get("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| self.home().map(|h| h.join(".docker")))
    }

    fn config_dir(&self) -> Option<ConfigDir> {
        ConfigDir::locate(self.get("DOCKER_CONFIG"), self.home().as_deref())
    }

    /// Place 2: the Docker context.
    fn context(&self) -> std::result::Result<Option<Candidate>, Tried> {
        const PLACE: &str = "Docker context";
        let config = self.config_dir();
        let (name, selected_by) = match self.get("DOCKER_CONTEXT") {
            Some(name) => (name.to_string(), "DOCKER_CONTEXT".to_string()),
            None => {
                let Some(config) = &config else {
                    return Err(unset(
                        PLACE,
                        "none selected (no DOCKER_CONTEXT, no home directory)",
                    ));
                };
                let file = config
                    .read_config()
                    .map_err(|e| unset(PLACE, &e.to_string()))?;
                match file.current_context.filter(|c| !c.is_empty()) {
                    Some(name) => (
                        name,
                        format!("currentContext in {}", config.config_path().display()),
                    ),
                    None => {
                        return Err(unset(
                            PLACE,
                            &format!(
                                "none selected (no DOCKER_CONTEXT, no currentContext in {})",
                                config.config_path().display()
                            ),
                        ))
                    }
                }
            }
        };
        if name == "default" {
            return Err(unset(
                PLACE,
                &format!("\"default\" (selected by {selected_by}) names no engine of its own"),
            ));
        }
        let place = format!("Docker context \"{name}\" (selected by {selected_by})");
        let transport = match &config {
            None => Err("no Docker config directory (no DOCKER_CONFIG, no home directory)".into()),
            Some(config) => match config.context(&name) {
                Err(e) => Err(e.to_string()),
                Ok(ctx) if ctx.skip_tls_verify => Err(format!(
                    "the context skips TLS verification (SkipTLSVerify), which Seaworthy does \
                     not support; give it the engine's CA instead ({})",
                    ctx.host
                )),
                Ok(ctx) => Transport::parse(&ctx.host, ctx.tls_dir, self.ssh_key()),
            },
        };
        Ok(Some(Candidate {
            place,
            source: Source::Context { name, selected_by },
            transport,
        }))
    }

    /// Place 3: `[engine]` in `seaworthy.toml`.
    fn config_file(&self) -> std::result::Result<Option<Candidate>, Tried> {
        const PLACE: &str = "seaworthy.toml [engine]";
        let path = match self.get("SEAWORTHY_CONFIG") {
            Some(p) => PathBuf::from(p),
            None => match self
                .search_from
                .as_deref()
                .and_then(crate::substitution::find_upward)
            {
                Some(p) => p,
                None => return Err(unset(PLACE, "no seaworthy.toml found")),
            },
        };
        let shown = path.display().to_string();
        let engine = match read_engine_table(&path) {
            Ok(Some(e)) => e,
            Ok(None) => return Err(unset(PLACE, &format!("{shown} has no [engine] host"))),
            Err(e) => return Err(unset(PLACE, &e.to_string())),
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = engine.cert_path.map(|p| base.join(p));
        Ok(Some(Candidate {
            place: format!("[engine] host in {shown}"),
            source: Source::ConfigFile { path },
            transport: Transport::parse(&engine.host, tls, self.ssh_key()),
        }))
    }

    /// Place 4: the known sockets, in order.
    fn known_sockets(&self) -> Vec<Candidate> {
        let runtime = self.runtime_dir();
        let mut sockets = vec![
            (
                "the standard socket",
                self.system_path("/var/run/docker.sock"),
            ),
            ("rootless Docker", runtime.join("docker.sock")),
        ];
        if let Some(home) = self.home() {
            sockets.extend([
                ("Docker Desktop", home.join(".docker/run/docker.sock")),
                ("Docker Desktop", home.join(".docker/desktop/docker.sock")),
                ("Colima", home.join(".colima/default/docker.sock")),
                ("Rancher Desktop", home.join(".rd/docker.sock")),
                ("OrbStack", home.join(".orbstack/run/docker.sock")),
            ]);
        }
        sockets.extend([
            (
                "Podman (rootful)",
                self.system_path("/run/podman/podman.sock"),
            ),
            ("Podman (rootless)", runtime.join("podman/podman.sock")),
        ]);
        sockets
            .into_iter()
            .map(|(what, path)| Candidate {
                place: what.to_string(),
                source: Source::KnownSocket { what },
                transport: Ok(Transport::Unix(path.display().to_string())),
            })
            .collect()
    }
}

fn unset(place: &str, why: &str) -> Tried {
    Tried {
        place: place.to_string(),
        endpoint: None,
        outcome: why.to_string(),
    }
}

/// An error and its causes on one line, without repeats.
fn root_cause(e: &Error) -> String {
    let text = match e {
        Error::EngineUnavailable { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    let mut cause = std::error::Error::source(e);
    if matches!(e, Error::EngineUnavailable { .. }) {
        cause = cause.and_then(std::error::Error::source);
    }
    crate::error::with_causes(text, cause)
}

/// The `[engine]` table of a `seaworthy.toml`.
struct EngineTable {
    host: String,
    cert_path: Option<String>,
}

fn read_engine_table(path: &Path) -> Result<Option<EngineTable>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("read {shown}"), e))?;
    let value: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::invalid("config file", &shown, e.to_string()))?;
    let Some(engine) = value.get("engine") else {
        return Ok(None);
    };
    let bad = |what: &str| Error::invalid("config file", &shown, what.to_string());
    let table = engine
        .as_table()
        .ok_or_else(|| bad("[engine] must be a table (host = \"tcp://…\", cert_path = \"dir\")"))?;
    for key in table.keys() {
        if key != "host" && key != "cert_path" {
            return Err(bad(&format!(
                "engine.{key} is not a setting (the [engine] table takes host and cert_path)"
            )));
        }
    }
    let string = |key: &str| -> Result<Option<String>> {
        match table.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| bad(&format!("engine.{key} must be a string"))),
        }
    };
    let Some(host) = string("host")? else {
        return Ok(None);
    };
    Ok(Some(EngineTable {
        host,
        cert_path: string("cert_path")?,
    }))
}
