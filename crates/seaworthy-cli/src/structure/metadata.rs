//! `metadataTest`, answered from the image's configuration alone: no container.

use std::time::Instant;

use seaworthy::bollard::models::ImageConfig;

use super::env::parse_env_entries;
use super::report::{Kind, TestResult};
use super::spec::{EnvVar, MetadataTest};

/// One result per check of `test`, named after what it checks (`env var PATH`, `exposed port 80`).
pub fn check(
    file: &str,
    file_index: usize,
    test: &MetadataTest,
    config: &ImageConfig,
) -> Vec<TestResult> {
    let started = Instant::now();
    let env = parse_env_entries(config.env.as_deref().unwrap_or_default());
    let labels: Vec<(String, String)> = config
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let exposed = config.exposed_ports.clone().unwrap_or_default();
    let volumes = config.volumes.clone().unwrap_or_default();
    let mut checks: Vec<(String, Vec<String>)> = Vec::new();

    for var in &test.env_vars {
        checks.push((
            format!("env var {}", var.key),
            key_value(&env, var, "environment variable"),
        ));
    }
    for var in &test.unbound_env_vars {
        let errors = match env.iter().find(|(k, _)| *k == var.key) {
            Some((_, v)) => vec![format!(
                "environment variable {} is set (to {v:?}) but should not be",
                var.key
            )],
            None => vec![],
        };
        checks.push((format!("unbound env var {}", var.key), errors));
    }
    for label in &test.labels {
        checks.push((
            format!("label {}", label.key),
            key_value(&labels, label, "label"),
        ));
    }
    for port in &test.exposed_ports {
        let errors = if is_exposed(&exposed, port) {
            vec![]
        } else {
            vec![format!(
                "port {port} is not exposed (exposed: {})",
                list(&exposed)
            )]
        };
        checks.push((format!("exposed port {port}"), errors));
    }
    for port in &test.unexposed_ports {
        let errors = if is_exposed(&exposed, port) {
            vec![format!("port {port} is exposed but should not be")]
        } else {
            vec![]
        };
        checks.push((format!("unexposed port {port}"), errors));
    }
    if let Some(expected) = &test.entrypoint {
        let actual = config.entrypoint.clone().unwrap_or_default();
        checks.push((
            "entrypoint".into(),
            same_list("entrypoint", expected, &actual),
        ));
    }
    if let Some(expected) = &test.cmd {
        let actual = config.cmd.clone().unwrap_or_default();
        checks.push(("cmd".into(), same_list("cmd", expected, &actual)));
    }
    // An empty workdir or user is not checked, as in container-structure-test.
    if let Some(expected) = test.workdir.as_ref().filter(|w| !w.is_empty()) {
        let actual = config.working_dir.clone().unwrap_or_default();
        checks.push(("workdir".into(), same_text("workdir", expected, &actual)));
    }
    if let Some(expected) = test.user.as_ref().filter(|u| !u.is_empty()) {
        let actual = config.user.clone().unwrap_or_default();
        checks.push(("user".into(), same_text("user", expected, &actual)));
    }
    for volume in &test.volumes {
        let errors = if volumes.iter().any(|v| v == volume) {
            vec![]
        } else {
            vec![format!(
                "volume {volume} is not declared (volumes: {})",
                list(&volumes)
            )]
        };
        checks.push((format!("volume {volume}"), errors));
    }
    for volume in &test.unmounted_volumes {
        let errors = if volumes.iter().any(|v| v == volume) {
            vec![format!("volume {volume} is declared but should not be")]
        } else {
            vec![]
        };
        checks.push((format!("unmounted volume {volume}"), errors));
    }

    let elapsed = started.elapsed();
    checks
        .into_iter()
        .enumerate()
        .map(|(i, (name, errors))| {
            TestResult::new(
                file,
                (file_index, Kind::Metadata, i, 0),
                name,
                elapsed,
                errors,
            )
        })
        .collect()
}

fn key_value(pairs: &[(String, String)], expected: &EnvVar, what: &str) -> Vec<String> {
    let Some((_, actual)) = pairs.iter().rev().find(|(k, _)| *k == expected.key) else {
        return vec![format!("{what} {} is not set", expected.key)];
    };
    if expected.accepts(actual) {
        vec![]
    } else if expected.is_regex {
        vec![format!(
            "{what} {} is {actual:?}, which does not match /{}/",
            expected.key,
            super::spec::one_line(&expected.value)
        )]
    } else {
        vec![format!(
            "{what} {} is {actual:?}, expected {:?}",
            expected.key, expected.value
        )]
    }
}

/// A port number alone (`80`) matches that port under any protocol, as container-structure-test
/// compares numbers only (its docker driver keeps `Port()` of each exposed `80/tcp`); with a
/// protocol (`53/udp`, an extension: container-structure-test never matches that spelling), the
/// number and the protocol must both match.
pub fn is_exposed(exposed: &[String], port: &str) -> bool {
    if port.contains('/') {
        return exposed.iter().any(|p| p == port);
    }
    exposed
        .iter()
        .any(|p| p.split_once('/').map_or(p.as_str(), |(number, _)| number) == port)
}

fn same_list(what: &str, expected: &[String], actual: &[String]) -> Vec<String> {
    if expected == actual {
        vec![]
    } else {
        vec![format!("{what} is {actual:?}, expected {expected:?}")]
    }
}

fn same_text(what: &str, expected: &str, actual: &str) -> Vec<String> {
    if expected == actual {
        vec![]
    } else {
        vec![format!("{what} is {actual:?}, expected {expected:?}")]
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
