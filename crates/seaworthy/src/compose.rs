//! docker-compose files imported as [`StackDefinition`]s: the document level (YAML, `${VAR}`
//! interpolation, top-level sections). One service becomes a member in `stack::compose_service`;
//! its fields are parsed in `stack::compose_fields`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use crate::error::{Error, Result};
use crate::network::{NetworkDefinition, VolumeDefinition};
use crate::stack::compose_fields::{boolean, key_text, options, pairs, text, unsupported, Known};
use crate::stack::compose_service::Files;
use crate::stack::compose_text::{interpolate, parse_env_file};
use crate::stack::StackDefinition;

impl StackDefinition {
    /// Reads the compose file at `path` into a stack whose members are its services and whose
    /// networks and volumes are its top-level ones; no compose CLI is involved. Relative paths in
    /// it (binds, `env_file`, `build`) are relative to its directory.
    ///
    /// What is imported:
    ///
    /// - top level: `services`, `networks` (`driver`, `internal`, `labels`), `volumes` (`driver`,
    ///   `driver_opts`, `labels`), `name` (the stack's name; else the directory's name, as compose does);
    ///   `version` and `x-*` extensions are ignored. `${VAR}` interpolation (with `:-`, `-`, `:?`,
    ///   `?`, `:+`, `+`, and `$$` for a literal `$`) reads the process environment, then the
    ///   `.env` file next to the compose file. YAML anchors and `<<` merge keys work.
    /// - services: `image`; `build` (a context path, or `context`, `dockerfile`,
    ///   `dockerfile_inline`, `args`, `target`, `labels`, `network`: built with
    ///   [`ImageBuild`](crate::ImageBuild) at start, tagged `image` when both are given);
    ///   `command` and `entrypoint` (a list, or a string split into words as a shell would);
    ///   `environment` (map or list; a key without a value comes from the process environment);
    ///   `env_file` (paths, or `path` + `required`); `ports`; `volumes` (named, bind, anonymous,
    ///   tmpfs); `tmpfs`; `networks` (list, or map with `aliases`); `network_mode`
    ///   (`service:NAME` makes a sidecar; `host`, `none`, `bridge`); `depends_on` (list, or map
    ///   with `condition`: `service_started`, `service_healthy`,
    ///   `service_completed_successfully`); `healthcheck` (`test`, `interval`, `timeout`,
    ///   `retries`, `start_period`, `disable`; durations like `1m30s`); `labels`; `user`;
    ///   `working_dir`; `hostname`; `init`; `privileged`; `cap_add`; `stop_signal`;
    ///   `stop_grace_period`; `pull_policy`; `restart: "no"`. Ports and volumes take the short and
    ///   the long syntax.
    ///
    /// A service with a healthcheck is ready ([`DependsOn::Ready`](crate::DependsOn::Ready)) once
    /// healthy; healthcheck fields left out take Seaworthy's test-friendly defaults (a check every
    /// 500 ms) rather than the engine's 30 s. Services join the stack's `default` network unless
    /// they name networks, and reach each other by service name on each network they join.
    ///
    /// Errors name the file; a YAML syntax error names the line; a key that is not imported names
    /// the key and the service: nothing is silently dropped. Unknown references and dependency
    /// cycles are found here, before anything is created.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use seaworthy::StackDefinition;
    /// let stack = StackDefinition::from_compose_file("tests/compose/app/compose.yaml")?
    ///     .start()
    ///     .await?;
    /// let web = stack.container("web")?;
    /// let status = web.http(80)?.get("/health").send().await?.status();
    /// assert!(status.is_success());
    /// stack.remove().await?;
    /// # Ok(()) }
    /// ```
    pub fn from_compose_file(path: impl AsRef<Path>) -> Result<StackDefinition> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read compose file {}", path.display()), e))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Loader::new(path.display().to_string(), &dir)?.load(&text)
    }

    /// Reads compose YAML `yaml` into a stack; relative paths in it are relative to `base_dir`
    /// (whose name is also the default stack name). See
    /// [`from_compose_file`](Self::from_compose_file).
    pub fn from_compose_yaml(yaml: &str, base_dir: impl AsRef<Path>) -> Result<StackDefinition> {
        Loader::new("(inline compose YAML)".into(), base_dir.as_ref())?.load(yaml)
    }
}

/// Reads one compose document.
struct Loader {
    /// The file's name, for messages.
    source: String,
    files: Files,
}

impl Loader {
    fn new(source: String, base_dir: &Path) -> Result<Loader> {
        let base_dir = if base_dir.is_absolute() {
            base_dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| Error::io("find the current directory", e))?
                .join(base_dir)
        };
        let mut loader = Loader {
            source,
            files: Files {
                base_dir,
                dotenv: HashMap::new(),
            },
        };
        let dotenv = loader.files.base_dir.join(".env");
        if dotenv.is_file() {
            let text = std::fs::read_to_string(&dotenv)
                .map_err(|e| Error::io(format!("read {}", dotenv.display()), e))?;
            let entries = parse_env_file(&text)
                .map_err(|r| loader.err(format!("{}: {r}", dotenv.display())))?;
            loader.files.dotenv = entries
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect();
        }
        Ok(loader)
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::invalid("compose file", &self.source, reason)
    }

    fn yaml_error(&self, e: serde_norway::Error) -> Error {
        match e.location() {
            Some(at) => self.err(format!(
                "YAML syntax error at line {}, column {}: {e}",
                at.line(),
                at.column()
            )),
            None => self.err(format!("YAML error: {e}")),
        }
    }

    fn load(&self, yaml: &str) -> Result<StackDefinition> {
        let mut doc: Value = serde_norway::from_str(yaml).map_err(|e| self.yaml_error(e))?;
        doc.apply_merge().map_err(|e| self.yaml_error(e))?;
        let mut unset = Vec::new();
        self.interpolate(&mut doc, "", &mut unset)?;
        unset.sort();
        unset.dedup();
        if !unset.is_empty() {
            tracing::warn!(file = %self.source, variables = ?unset, "compose file: unset variables replaced by empty strings");
        }
        let Value::Mapping(top) = doc else {
            return Err(self.err("the document must be a mapping with a services key"));
        };
        let (mut services, mut networks, mut volumes, mut name) = (None, None, None, None);
        for (key, value) in &top {
            match key_text(key).as_str() {
                "services" => services = Some(value),
                "networks" => networks = Some(value),
                "volumes" => volumes = Some(value),
                "name" => name = Some(text(value).map_err(|r| self.err(format!("name: {r}")))?),
                "version" => {}
                k if k.starts_with("x-") => {}
                other => {
                    return Err(self.err(format!(
                        "top-level key {other:?} is not supported by Seaworthy's compose import"
                    )))
                }
            }
        }
        let name = name.unwrap_or_else(|| self.default_name());
        let mut stack = StackDefinition::new(name);
        for (net, cfg) in entries(networks, "networks").map_err(|r| self.err(r))? {
            stack = stack.with_network(self.network(&net, cfg)?);
        }
        for (vol, cfg) in entries(volumes, "volumes").map_err(|r| self.err(r))? {
            stack = stack.with_volume(self.volume(&vol, cfg)?);
        }
        let services = entries(services, "services").map_err(|r| self.err(r))?;
        if services.is_empty() {
            return Err(self.err("it has no services"));
        }
        let known = Known {
            services: services.iter().map(|(s, _)| s.clone()).collect(),
            networks: stack
                .networks
                .iter()
                .map(|n| n.name().to_string())
                .collect(),
            volumes: stack.volumes.iter().map(|v| v.name().to_string()).collect(),
        };
        for (service, cfg) in &services {
            let (member, anonymous) = self
                .files
                .service(service, cfg, &known)
                .map_err(|r| self.err(format!("service {service:?}: {r}")))?;
            stack = stack.with_member(member);
            for volume in anonymous {
                stack = stack.with_volume(volume);
            }
        }
        // Cycles, names: checked now, so a bad file fails before anything is created.
        match stack.validate() {
            Err(Error::Invalid { reason, .. }) => Err(self.err(reason)),
            Err(e) => Err(e),
            Ok(()) => Ok(stack),
        }
    }

    /// Compose's default project name: the directory's name, lower case, without other characters
    /// than letters, digits, `_` and `-`.
    fn default_name(&self) -> String {
        let dir = self
            .files
            .base_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let name: String = dir
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        let name = name.trim_start_matches(['_', '-']).to_string();
        if name.is_empty() {
            "compose".into()
        } else {
            name
        }
    }

    fn interpolate(&self, value: &mut Value, path: &str, unset: &mut Vec<String>) -> Result<()> {
        match value {
            Value::String(s) => {
                *s = interpolate(s, &|n| self.files.lookup(n), unset)
                    .map_err(|r| self.err(format!("{path}: {r}")))?;
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.interpolate(item, &format!("{path}[{i}]"), unset)?;
                }
            }
            Value::Mapping(map) => {
                for (k, v) in map.iter_mut() {
                    let key = key_text(k);
                    let path = if path.is_empty() {
                        key
                    } else {
                        format!("{path}.{key}")
                    };
                    self.interpolate(v, &path, unset)?;
                }
            }
            Value::Tagged(tagged) => self.interpolate(&mut tagged.value, path, unset)?,
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }

    fn network(&self, name: &str, cfg: &Value) -> Result<NetworkDefinition> {
        let at = |r: String| self.err(format!("network {name:?}: {r}"));
        let mut def = NetworkDefinition::new(name);
        for (key, value) in options(cfg).map_err(at)? {
            def = match key.as_str() {
                "driver" => def.driver(text(value).map_err(|r| at(format!("driver: {r}")))?),
                "internal" => {
                    def.internal(boolean(value).map_err(|r| at(format!("internal: {r}")))?)
                }
                "labels" => with_labels(def, value, |d, k, v| d.label(k, v)).map_err(at)?,
                "external" | "name" => return Err(at(not_namespaced(&key, "networks"))),
                other => return Err(at(unsupported(other))),
            };
        }
        Ok(def)
    }

    fn volume(&self, name: &str, cfg: &Value) -> Result<VolumeDefinition> {
        let at = |r: String| self.err(format!("volume {name:?}: {r}"));
        let mut def = VolumeDefinition::new(name);
        for (key, value) in options(cfg).map_err(at)? {
            def = match key.as_str() {
                "driver" => def.driver(text(value).map_err(|r| at(format!("driver: {r}")))?),
                "driver_opts" => {
                    for (k, v) in pairs(value).map_err(|r| at(format!("driver_opts: {r}")))? {
                        def = def.driver_opt(k, v.unwrap_or_default());
                    }
                    def
                }
                "labels" => with_labels(def, value, |d, k, v| d.label(k, v)).map_err(at)?,
                "external" | "name" => return Err(at(not_namespaced(&key, "volumes"))),
                other => return Err(at(unsupported(other))),
            };
        }
        Ok(def)
    }
}

/// `def` (a network or a volume) with the labels of its `labels` entry, each given to `label`.
fn with_labels<D>(
    mut def: D,
    value: &Value,
    label: impl Fn(D, String, String) -> D,
) -> std::result::Result<D, String> {
    for (k, v) in pairs(value).map_err(|r| format!("labels: {r}"))? {
        def = label(def, k, v.unwrap_or_default());
    }
    Ok(def)
}

/// Why a network's or a volume's `key` that names a resource of its own (`external`, `name`)
/// is refused: a stack creates its own, namespaced `what` (`networks`, `volumes`).
fn not_namespaced(key: &str, what: &str) -> String {
    format!("key {key:?} is not supported: a stack creates its own, namespaced {what}")
}

/// The entries of a top-level section (`services`, `networks`, `volumes`).
fn entries<'a>(
    section: Option<&'a Value>,
    what: &str,
) -> std::result::Result<Vec<(String, &'a Value)>, String> {
    match section {
        None => Ok(Vec::new()),
        Some(v) => options(v).map_err(|r| format!("{what}: {r}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MountSource;
    use crate::stack::DependsOn;
    use crate::wait::Wait;

    fn load(yaml: &str) -> Result<StackDefinition> {
        StackDefinition::from_compose_yaml(yaml, "/tmp/My_Project")
    }

    fn reason(yaml: &str) -> String {
        load(yaml).unwrap_err().to_string()
    }

    #[test]
    fn imports_services_networks_and_volumes() {
        std::env::set_var("SEAWORTHY_COMPOSE_UNIT_TAG", "7");
        let stack = load(
            r#"
x-common: &common
  labels: { team: core }
services:
  db:
    <<: *common
    image: "postgres:${SEAWORTHY_COMPOSE_UNIT_TAG}"
    environment: [POSTGRES_PASSWORD=secret, "PORT=5432"]
    healthcheck:
      test: pg_isready -h 127.0.0.1
      interval: 1m30s
      retries: 5
    volumes: ["data:/var/lib/postgresql/data", "/scratch"]
    networks: { back: { aliases: [database] } }
  web:
    image: nginx
    command: nginx -g 'daemon off;'
    entrypoint: ["/docker-entrypoint.sh"]
    ports: ["80", { target: 443, published: "8443" }]
    volumes:
      - ./conf:/etc/nginx/conf.d:ro
      - { type: tmpfs, target: /cache, tmpfs: { size: 1m } }
    tmpfs: /run:size=64k
    depends_on: { db: { condition: service_healthy } }
    user: "1000"
    working_dir: /srv
  log:
    image: busybox
    network_mode: service:web
    depends_on: [web]
networks: { back: }
volumes: { data: { labels: [kind=db] } }
"#,
        )
        .unwrap();
        assert_eq!(stack.name(), "my_project");
        let db = stack.member("db").unwrap();
        assert_eq!(db.definition().image(), "postgres:7");
        let d = db.definition();
        assert_eq!(d.labels["team"], "core");
        assert!(d.env.contains(&("PORT".into(), "5432".into())));
        let h = d.healthcheck.as_ref().unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "pg_isready -h 127.0.0.1"]);
        assert_eq!((h.interval.as_secs(), h.retries), (90, 5));
        assert_eq!(
            d.wait.as_ref().map(Wait::to_string).as_deref(),
            Some("healthcheck healthy")
        );
        assert_eq!(
            db.networks,
            [("back".to_string(), vec!["database".to_string()])]
        );
        assert_eq!(db.volumes.len(), 2);
        assert!(stack.volumes.iter().any(|v| v.name() == "db-anonymous-1"));
        let web = stack.member("web").unwrap();
        let w = web.definition();
        assert_eq!(w.cmd.as_deref().unwrap(), ["nginx", "-g", "daemon off;"]);
        assert_eq!(w.ports[1].host_port, Some(8443));
        assert_eq!(
            w.mounts[0].source,
            MountSource::Bind("/tmp/My_Project/conf".into())
        );
        assert!(w.mounts[0].read_only);
        assert_eq!(
            w.mounts[2].source,
            MountSource::Tmpfs {
                size_bytes: Some(65536)
            }
        );
        assert_eq!(web.depends_on, [("db".to_string(), DependsOn::Healthy)]);
        assert_eq!(w.user.as_deref(), Some("1000"));
        let log = stack.member("log").unwrap();
        assert_eq!(log.network_of.as_deref(), Some("web"));
    }

    #[test]
    fn refuses_what_it_does_not_import() {
        let e = reason("services: { web: { image: nginx, deploy: { replicas: 2 } } }");
        assert!(
            e.contains("service \"web\"") && e.contains("key \"deploy\""),
            "{e}"
        );
        let e = reason("services: { web: { image: nginx } }\nsecrets: {}");
        assert!(e.contains("top-level key \"secrets\""), "{e}");
        let e = reason("services: { web: { image: nginx, volumes: [\"x:/y:z\"] } }");
        assert!(
            e.contains("service \"web\"") && e.contains("mode \"z\""),
            "{e}"
        );
        let e = reason("services: { web: { image: nginx, restart: always } }");
        assert!(e.contains("restart") && e.contains("never restarts"), "{e}");
    }

    #[test]
    fn checks_references_before_anything_runs() {
        let e = reason("services: { a: { image: x, depends_on: [b] } }");
        assert!(
            e.contains("service \"a\"") && e.contains("unknown service \"b\""),
            "{e}"
        );
        let e = reason("services: { a: { image: x, volumes: [\"v:/v\"] } }");
        assert!(e.contains("volume \"v\" is not declared"), "{e}");
        let e = reason("services: { a: { image: x, networks: [n] } }");
        assert!(e.contains("network \"n\" is not declared"), "{e}");
        let e = reason(
            "services: { a: { image: x, depends_on: [b] }, b: { image: x, depends_on: [a] } }",
        );
        assert!(e.contains("cycle: a -> b -> a"), "{e}");
    }

    #[test]
    fn yaml_errors_name_the_line() {
        let e = reason("services:\n  web:\n    image: nginx\n   bad: [\n");
        assert!(e.contains("line 4"), "{e}");
    }
}
