//! The fields of a compose service, one parser each, and the YAML value helpers they share.
//!
//! Every function returns `Err(reason)`; the caller prefixes the service and key, so a reason reads
//! well after `service "web": ports: `.

use std::collections::HashSet;

use serde_norway::Value;

use super::compose_text::{parse_duration, parse_size, split_words};
use super::{DependsOn, DEFAULT_NETWORK};
use crate::definition::Healthcheck;
use crate::spec::{PortSpec, Protocol};

/// Names the file declares, for checking references before anything is created.
pub(crate) struct Known {
    pub(crate) services: HashSet<String>,
    pub(crate) networks: HashSet<String>,
    pub(crate) volumes: HashSet<String>,
}

/// The reason given for a key Seaworthy does not import.
pub(crate) fn unsupported(key: &str) -> String {
    format!("key {key:?} is not supported by Seaworthy's compose import")
}

/// A mapping key as text (non-scalar keys in their debug form, for messages).
pub(crate) fn key_text(key: &Value) -> String {
    text(key).unwrap_or_else(|_| format!("{key:?}"))
}

/// A scalar as text (numbers and booleans too: `user: 1000`, `POSTGRES_PORT: 5432`).
pub(crate) fn text(value: &Value) -> std::result::Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Tagged(t) => text(&t.value),
        _ => Err("expected a string".into()),
    }
}

/// `true` or `false`.
pub(crate) fn boolean(value: &Value) -> std::result::Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        _ => Err("expected true or false".into()),
    }
}

/// A list; null is empty.
pub(crate) fn list(value: &Value) -> std::result::Result<&[Value], String> {
    match value {
        Value::Sequence(items) => Ok(items),
        Value::Null => Ok(&[]),
        _ => Err("expected a list".into()),
    }
}

/// A string or a list of strings.
pub(crate) fn strings(value: &Value) -> std::result::Result<Vec<String>, String> {
    match value {
        Value::Sequence(items) => items.iter().map(text).collect(),
        Value::Null => Ok(Vec::new()),
        v => Ok(vec![text(v)?]),
    }
}

/// A mapping's entries (keys as text); null is empty.
pub(crate) fn options(value: &Value) -> std::result::Result<Vec<(String, &Value)>, String> {
    match value {
        Value::Mapping(m) => Ok(m.iter().map(|(k, v)| (key_text(k), v)).collect()),
        Value::Null => Ok(Vec::new()),
        _ => Err("expected a mapping".into()),
    }
}

/// `KEY: value` mappings or `KEY=value` lists (`environment`, `labels`, `args`); a key without a
/// value gives `None`.
pub(crate) fn pairs(value: &Value) -> std::result::Result<Vec<(String, Option<String>)>, String> {
    match value {
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| Ok((key_text(k), if v.is_null() { None } else { Some(text(v)?) })))
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let entry = text(item)?;
                Ok(match entry.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (entry, None),
                })
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err("expected a mapping or a list of KEY=value".into()),
    }
}

/// `command` or `entrypoint`: a string split into words, or a list.
pub(crate) fn command(value: &Value) -> std::result::Result<Vec<String>, String> {
    match value {
        Value::Sequence(items) => items.iter().map(text).collect(),
        Value::Null => Ok(Vec::new()),
        v => split_words(&text(v)?),
    }
}

/// `target` when it is an absolute path.
pub(crate) fn absolute(target: &str) -> std::result::Result<&str, String> {
    if target.starts_with('/') {
        Ok(target)
    } else {
        Err(format!("the target {target:?} must be an absolute path"))
    }
}

/// One `ports` entry: `80`, `"8080:80"`, `"127.0.0.1::80/udp"`, or the long syntax.
pub(crate) fn port(entry: &Value) -> std::result::Result<PortSpec, String> {
    let Value::Mapping(m) = entry else {
        let spec = text(entry)?;
        if spec.contains('-') {
            return Err(format!("{spec:?}: port ranges are not supported"));
        }
        return PortSpec::parse(&spec).map_err(|e| e.to_string());
    };
    let mut port = PortSpec::tcp(0);
    for (key, value) in m {
        match key_text(key).as_str() {
            "target" => {
                port.container_port = text(value)?
                    .parse()
                    .map_err(|_| "target must be a port number")?
            }
            "published" => {
                let p = text(value)?;
                if p.contains('-') {
                    return Err(format!("published {p:?}: port ranges are not supported"));
                }
                port.host_port = Some(
                    p.parse()
                        .map_err(|_| format!("published {p:?} is not a port number"))?,
                );
            }
            "host_ip" => port.host_ip = Some(text(value)?),
            "protocol" => {
                port.protocol = match text(value)?.as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    other => {
                        return Err(format!(
                            "protocol {other:?} is not supported (use tcp or udp)"
                        ))
                    }
                }
            }
            // Swarm's routing mesh does not exist on one engine: both publish on this host.
            "mode" => match text(value)?.as_str() {
                "host" | "ingress" => {}
                other => return Err(format!("mode {other:?} is not supported (use host)")),
            },
            other => return Err(unsupported(other)),
        }
    }
    if port.container_port == 0 {
        return Err("a port entry needs a target".into());
    }
    Ok(port)
}

/// One `tmpfs` entry: `/path` or `/path:size=64m,rw`.
pub(crate) fn tmpfs(entry: &str) -> std::result::Result<(String, Option<i64>), String> {
    let (target, opts) = entry.split_once(':').unwrap_or((entry, ""));
    let mut size = None;
    for option in opts.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("size", s)) => size = Some(parse_size(s)?),
            None if option == "rw" => {}
            _ => {
                return Err(format!(
                    "option {option:?} of {entry:?} is not supported (use size=...)"
                ))
            }
        }
    }
    Ok((absolute(target)?.to_string(), size))
}

/// A service's `networks`: names, or a mapping with `aliases`; each must be declared.
pub(crate) fn service_networks(
    value: &Value,
    known: &Known,
) -> std::result::Result<Vec<(String, Vec<String>)>, String> {
    let check = |n: &str| {
        if n == DEFAULT_NETWORK || known.networks.contains(n) {
            Ok(n.to_string())
        } else {
            Err(format!(
                "network {n:?} is not declared under the top-level networks key"
            ))
        }
    };
    match value {
        Value::Sequence(_) => strings(value)?
            .iter()
            .map(|n| Ok((check(n)?, Vec::new())))
            .collect(),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let network = check(&key_text(k))?;
                let mut aliases = Vec::new();
                for (key, value) in options(v)? {
                    match key.as_str() {
                        "aliases" => aliases = strings(value)?,
                        other => return Err(format!("{network}: {}", unsupported(other))),
                    }
                }
                Ok((network, aliases))
            })
            .collect(),
        _ => Err("expected a list or a mapping of networks".into()),
    }
}

/// A service's `depends_on`: names (started), or a mapping with a `condition`.
pub(crate) fn depends_on(
    value: &Value,
    known: &Known,
) -> std::result::Result<Vec<(String, DependsOn)>, String> {
    let check = |s: String| {
        if known.services.contains(&s) {
            Ok(s)
        } else {
            Err(format!("it names an unknown service {s:?}"))
        }
    };
    match value {
        Value::Sequence(_) => strings(value)?
            .into_iter()
            .map(|s| Ok((check(s)?, DependsOn::Started)))
            .collect(),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let service = check(key_text(k))?;
                let mut condition = DependsOn::Started;
                for (key, value) in options(v)? {
                    match key.as_str() {
                        "condition" => condition = match text(value)?.as_str() {
                            "service_started" => DependsOn::Started,
                            "service_healthy" => DependsOn::Healthy,
                            "service_completed_successfully" => DependsOn::CompletedSuccessfully,
                            other => return Err(format!("{service}: condition {other:?} is not one of service_started, service_healthy, service_completed_successfully")),
                        },
                        "required" if boolean(value)? => {}
                        "restart" if !boolean(value)? => {}
                        "required" | "restart" => return Err(format!("{service}: {key} {} is not supported", !boolean(value)?)),
                        other => return Err(format!("{service}: {}", unsupported(other))),
                    }
                }
                Ok((service, condition))
            })
            .collect(),
        _ => Err("expected a list or a mapping of services".into()),
    }
}

/// The healthcheck, and whether the member should wait for it to be healthy.
pub(crate) fn healthcheck(value: &Value) -> std::result::Result<(Healthcheck, bool), String> {
    let mut check = Healthcheck::none();
    // No test: the image's own test, with the timings given here.
    check.test = Vec::new();
    let mut disabled = false;
    for (key, value) in options(value)? {
        let at = |r: String| format!("{key}: {r}");
        let duration = |v: &Value| parse_duration(&text(v)?);
        match key.as_str() {
            "test" => {
                check.test = match value {
                    Value::Sequence(_) => strings(value).map_err(at)?,
                    v => vec!["CMD-SHELL".into(), text(v).map_err(at)?],
                };
                match check.test.first().map(String::as_str) {
                    Some("CMD" | "CMD-SHELL" | "NONE") => {}
                    _ => return Err(at("a list must start with CMD, CMD-SHELL or NONE".into())),
                }
            }
            "interval" => check.interval = duration(value).map_err(at)?,
            "timeout" => check.timeout = duration(value).map_err(at)?,
            "start_period" => check.start_period = duration(value).map_err(at)?,
            "retries" => {
                check.retries = match value {
                    Value::Number(n) => n.as_u64().and_then(|r| u32::try_from(r).ok()),
                    _ => None,
                }
                .ok_or_else(|| at("expected a whole number".into()))?
            }
            "disable" => disabled = boolean(value).map_err(at)?,
            other => return Err(unsupported(other)),
        }
    }
    if disabled || check.test.first().is_some_and(|t| t == "NONE") {
        return Ok((Healthcheck::none(), false));
    }
    Ok((check, true))
}
