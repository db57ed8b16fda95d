//! One compose service read into a [`StackMember`]: its image or build, container settings,
//! environment, mounts, networks and dependencies.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_norway::Value;

use super::compose_fields::{
    absolute, boolean, command, depends_on, healthcheck, key_text, list, options, pairs, port,
    service_networks, strings, text, tmpfs, unsupported, Known,
};
use super::compose_text::{parse_duration, parse_env_file, parse_size};
use super::StackMember;
use crate::build::ImageBuild;
use crate::definition::ContainerDefinition;
use crate::image::PullPolicy;
use crate::network::VolumeDefinition;
use crate::spec::{MountSource, MountSpec};
use crate::wait::Wait;

/// What a service's `volumes` entry mounts.
pub(crate) enum Mount {
    Bind(PathBuf, String, bool),
    Volume(String, String, bool),
    Anonymous(String),
    Tmpfs(String, Option<i64>),
}

/// Where a compose file's relative paths and `.env` variables come from.
pub(crate) struct Files {
    /// The compose file's directory, absolute.
    pub(crate) base_dir: PathBuf,
    /// Variables of the `.env` file next to the compose file.
    pub(crate) dotenv: HashMap<String, String>,
}

impl Files {
    /// The value of variable `name`: the process environment first, then the `.env` file.
    pub(crate) fn lookup(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
    }

    /// Service `name`: its member, and the stack volumes its anonymous volumes need. `known`
    /// holds the file's services, networks and volumes, for checking references.
    pub(crate) fn service(
        &self,
        name: &str,
        cfg: &Value,
        known: &Known,
    ) -> std::result::Result<(StackMember, Vec<VolumeDefinition>), String> {
        let cfg = match cfg {
            Value::Mapping(m) => m,
            _ => return Err("expected a mapping of keys such as image and command".into()),
        };
        let image = cfg
            .get("image")
            .map(text)
            .transpose()
            .map_err(|r| format!("image: {r}"))?;
        let build = cfg
            .get("build")
            .map(|b| self.build(b))
            .transpose()
            .map_err(|r| format!("build: {r}"))?;
        let mut def = match (&image, &build) {
            (Some(image), _) => ContainerDefinition::new(image.clone()),
            (None, Some(_)) => {
                ContainerDefinition::new(format!("seaworthy-build/{}", name.to_lowercase()))
            }
            (None, None) => return Err("it has neither image nor build".into()),
        };
        let mut member_build = build.map(|b| match &image {
            Some(image) => b.with_tag(image.clone()),
            None => b,
        });
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set_env = |k: String, v: String| match env.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        };
        // env_file first: environment overrides it.
        if let Some(files) = cfg.get("env_file") {
            for (k, v) in self
                .env_files(files)
                .map_err(|r| format!("env_file: {r}"))?
            {
                set_env(k, v);
            }
        }
        let mut deps = Vec::new();
        let mut networks = Vec::new();
        let mut mounts = Vec::new();
        let mut network_of = None;
        let mut has_network_mode = false;
        for (key, value) in cfg {
            let key = key_text(key);
            let at = |r: String| format!("{key}: {r}");
            match key.as_str() {
                "image" | "build" | "env_file" => {}
                "command" => def = def.with_cmd(command(value).map_err(at)?),
                "entrypoint" => def = def.with_entrypoint(command(value).map_err(at)?),
                "environment" => {
                    for (k, v) in pairs(value).map_err(at)? {
                        match v.or_else(|| std::env::var(&k).ok()) {
                            Some(v) => set_env(k, v),
                            None => tracing::debug!(service = name, variable = %k, "compose: environment variable without a value is unset here; not passed"),
                        }
                    }
                }
                "ports" => {
                    for entry in list(value).map_err(at)? {
                        def = def.with_port(port(entry).map_err(at)?);
                    }
                }
                "volumes" => {
                    for entry in list(value).map_err(at)? {
                        mounts.push(self.mount(entry, known).map_err(at)?);
                    }
                }
                "tmpfs" => {
                    for entry in strings(value).map_err(at)? {
                        let (target, size) = tmpfs(&entry).map_err(at)?;
                        mounts.push(Mount::Tmpfs(target, size));
                    }
                }
                "networks" => networks = service_networks(value, known).map_err(at)?,
                "network_mode" => {
                    has_network_mode = true;
                    let mode = text(value).map_err(at)?;
                    match mode.split_once(':') {
                        Some(("service", host)) if known.services.contains(host) => network_of = Some(host.to_string()),
                        Some(("service", host)) => return Err(at(format!("it names an unknown service {host:?}"))),
                        None if ["host", "none", "bridge"].contains(&mode.as_str()) => def = def.with_network_mode(mode),
                        _ => return Err(at(format!("{mode:?} is not supported (use service:NAME, host, none or bridge)"))),
                    }
                }
                "depends_on" => deps = depends_on(value, known).map_err(at)?,
                "healthcheck" => {
                    let (check, ready) = healthcheck(value).map_err(at)?;
                    def = def.with_healthcheck(check);
                    if ready {
                        def = def.with_wait(Wait::healthy());
                    }
                }
                "labels" => {
                    for (k, v) in pairs(value).map_err(at)? {
                        def = def.with_label(k, v.unwrap_or_default());
                    }
                }
                "user" => def = def.with_user(text(value).map_err(at)?),
                "working_dir" => def = def.with_workdir(text(value).map_err(at)?),
                "hostname" => def = def.with_hostname(text(value).map_err(at)?),
                "init" => def = def.with_init(boolean(value).map_err(at)?),
                "privileged" => def = def.with_privileged(boolean(value).map_err(at)?),
                "cap_add" => {
                    for cap in strings(value).map_err(at)? {
                        def = def.with_capability(cap);
                    }
                }
                "stop_signal" => def = def.with_stop_signal(text(value).map_err(at)?),
                "stop_grace_period" => def = def.with_stop_timeout(parse_duration(&text(value).map_err(at)?).map_err(at)?),
                "pull_policy" => {
                    def = def.with_pull_policy(match text(value).map_err(at)?.as_str() {
                        "always" => PullPolicy::Always,
                        "never" => PullPolicy::Never,
                        "missing" | "if_not_present" => PullPolicy::Missing,
                        other => return Err(at(format!("{other:?} is not supported (use always, never or missing)"))),
                    })
                }
                "restart" => match text(value).map_err(at)?.as_str() {
                    "no" => {}
                    other => return Err(at(format!("{other:?} is not supported: a test stack never restarts members (use \"no\")"))),
                },
                "container_name" => return Err(format!("key \"container_name\" is not supported: Seaworthy names containers per test session (others reach this one as {name:?})")),
                "expose" => return Err("key \"expose\" is not supported: members of a stack reach each other's ports without it (use ports to publish one to the host)".into()),
                k if k.starts_with("x-") => {}
                other => return Err(unsupported(other)),
            }
        }
        if has_network_mode && !networks.is_empty() {
            return Err("network_mode and networks cannot be used together".into());
        }
        for (k, v) in env {
            def = def.with_env(k, v);
        }
        let mut anonymous = Vec::new();
        let mut uses = Vec::new();
        for mount in mounts {
            match mount {
                Mount::Bind(path, target, read_only) => {
                    def = def.with_mount_spec(MountSpec {
                        source: MountSource::Bind(path),
                        target,
                        read_only,
                    })
                }
                Mount::Tmpfs(target, size) => def = def.with_tmpfs(target, size),
                Mount::Volume(volume, target, read_only) => uses.push((volume, target, read_only)),
                Mount::Anonymous(target) => {
                    let volume = format!("{name}-anonymous-{}", anonymous.len() + 1);
                    anonymous.push(VolumeDefinition::new(volume.clone()));
                    uses.push((volume, target, false));
                }
            }
        }
        let mut member = StackMember::new(name, def);
        if let Some(build) = member_build.take() {
            member = member.with_build(build);
        }
        for (volume, target, read_only) in uses {
            member = member.with_volume(volume, target, read_only);
        }
        for (network, aliases) in networks {
            member = member.with_network(network, aliases);
        }
        for (dep, condition) in deps {
            member = member.depends_on(dep, condition);
        }
        if let Some(host) = network_of {
            member = member.with_network_of(host);
        }
        Ok((member, anonymous))
    }

    /// A path of the file, absolute, with `.` and `..` resolved (without following links).
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        let joined = match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => self.base_dir.join(p),
        };
        let mut clean = PathBuf::new();
        for part in joined.components() {
            match part {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    clean.pop();
                }
                other => clean.push(other),
            }
        }
        clean
    }

    /// The variables of `env_file`'s files, in order.
    fn env_files(&self, value: &Value) -> std::result::Result<Vec<(String, String)>, String> {
        let items = match value {
            Value::Sequence(items) => items.iter().collect(),
            other => vec![other],
        };
        let mut out = Vec::new();
        for item in items {
            let (file, required) = match item {
                Value::Mapping(m) => {
                    let mut file = None;
                    let mut required = true;
                    for (k, v) in m {
                        match key_text(k).as_str() {
                            "path" => file = Some(text(v)?),
                            "required" => required = boolean(v)?,
                            other => return Err(unsupported(other)),
                        }
                    }
                    (file.ok_or("an entry needs a path")?, required)
                }
                v => (text(v)?, true),
            };
            let path = self.path(&file);
            let contents = match std::fs::read_to_string(&path) {
                Ok(c) => c,
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            };
            for (k, v) in
                parse_env_file(&contents).map_err(|r| format!("{}: {r}", path.display()))?
            {
                if let Some(v) = v.or_else(|| self.lookup(&k)) {
                    out.push((k, v));
                }
            }
        }
        Ok(out)
    }

    /// The `build` key: a context path, or a mapping.
    fn build(&self, value: &Value) -> std::result::Result<ImageBuild, String> {
        let Value::Mapping(m) = value else {
            return Ok(ImageBuild::new(self.path(&text(value)?)));
        };
        let context = m
            .get("context")
            .map(text)
            .transpose()?
            .unwrap_or_else(|| ".".into());
        let mut build = ImageBuild::new(self.path(&context));
        for (key, value) in m {
            let key = key_text(key);
            let at = |r: String| format!("{key}: {r}");
            build = match key.as_str() {
                "context" => build,
                "dockerfile" => build.with_dockerfile(text(value).map_err(at)?),
                "dockerfile_inline" => build.with_dockerfile_contents(text(value).map_err(at)?),
                "target" => build.with_target(text(value).map_err(at)?),
                "network" => build.with_network_mode(text(value).map_err(at)?),
                "args" => {
                    for (k, v) in pairs(value).map_err(at)? {
                        if let Some(v) = v.or_else(|| self.lookup(&k)) {
                            build = build.with_build_arg(k, v);
                        }
                    }
                    build
                }
                "labels" => {
                    for (k, v) in pairs(value).map_err(at)? {
                        build = build.with_label(k, v.unwrap_or_default());
                    }
                    build
                }
                other => return Err(unsupported(other)),
            };
        }
        Ok(build)
    }

    /// One entry of `volumes`, short or long syntax.
    fn mount(&self, entry: &Value, known: &Known) -> std::result::Result<Mount, String> {
        let named = |volume: &str| {
            if known.volumes.contains(volume) {
                Ok(volume.to_string())
            } else {
                Err(format!(
                    "volume {volume:?} is not declared under the top-level volumes key"
                ))
            }
        };
        let Value::Mapping(m) = entry else {
            let spec = text(entry)?;
            let parts: Vec<&str> = spec.split(':').collect();
            let (source, target, mode) = match parts.as_slice() {
                [target] => return absolute(target).map(|t| Mount::Anonymous(t.to_string())),
                [s, t] => (*s, absolute(t)?, ""),
                [s, t, m] => (*s, absolute(t)?, *m),
                _ => return Err(format!("{spec:?} is not SOURCE:TARGET[:MODE]")),
            };
            let mut read_only = false;
            for option in mode.split(',').filter(|o| !o.is_empty()) {
                match option {
                    "ro" => read_only = true,
                    "rw" => read_only = false,
                    other => {
                        return Err(format!(
                            "mode {other:?} in {spec:?} is not supported (use ro or rw)"
                        ))
                    }
                }
            }
            let target = target.to_string();
            return if source.starts_with(['/', '.', '~']) {
                Ok(Mount::Bind(self.path(source), target, read_only))
            } else {
                Ok(Mount::Volume(named(source)?, target, read_only))
            };
        };
        let (mut typ, mut source, mut target, mut read_only, mut size) =
            (None, None, None, false, None);
        for (key, value) in m {
            let key = key_text(key);
            match key.as_str() {
                "type" => typ = Some(text(value)?),
                "source" => source = Some(text(value)?),
                "target" => target = Some(absolute(&text(value)?)?.to_string()),
                "read_only" => read_only = boolean(value)?,
                "bind" => {
                    for (k, v) in options(value)? {
                        match k.as_str() {
                            // The engine needs the path to exist either way.
                            "create_host_path" => {
                                boolean(v)?;
                            }
                            other => return Err(format!("bind: {}", unsupported(other))),
                        }
                    }
                }
                "tmpfs" => {
                    for (k, v) in options(value)? {
                        match k.as_str() {
                            "size" => {
                                size = Some(match v {
                                    Value::Number(n) => n
                                        .as_i64()
                                        .ok_or("tmpfs: size must be a whole number of bytes")?,
                                    v => parse_size(&text(v)?)?,
                                })
                            }
                            other => return Err(format!("tmpfs: {}", unsupported(other))),
                        }
                    }
                }
                other => return Err(unsupported(other)),
            }
        }
        let target = target.ok_or("a volume entry needs a target")?;
        match (typ.as_deref().unwrap_or("volume"), source) {
            ("volume", Some(s)) => Ok(Mount::Volume(named(&s)?, target, read_only)),
            ("volume", None) => Ok(Mount::Anonymous(target)),
            ("bind", Some(s)) => Ok(Mount::Bind(self.path(&s), target, read_only)),
            ("bind", None) => Err("a bind mount needs a source".into()),
            ("tmpfs", _) => Ok(Mount::Tmpfs(target, size)),
            (other, _) => Err(format!(
                "type {other:?} is not supported (use volume, bind or tmpfs)"
            )),
        }
    }
}
