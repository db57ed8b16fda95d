//! What the engine holds, or held, for a test process: to assert that a call created containers,
//! or that it created none (not even one it removed again before returning).

use std::collections::HashMap;
use std::time::SystemTime;

use futures_util::StreamExt;
use seaworthy::bollard::query_parameters::{EventsOptions, ListContainersOptions};
use seaworthy::session::{LABEL_MANAGED, LABEL_OWNER};
use seaworthy::Session;

/// The names of the containers (running or not) labelled as Seaworthy's, owned by `session`'s
/// process and carrying every label of `labels` (`key=value` each), sorted.
pub async fn owned_containers(session: &Session, labels: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut filter = vec![
        format!("{LABEL_MANAGED}=true"),
        format!("{LABEL_OWNER}={}", session.owner()),
    ];
    filter.extend(labels.iter().map(|l| l.to_string()));
    let listed = session
        .engine()
        .docker()
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_string(), filter)])),
            ..Default::default()
        }))
        .await?;
    let mut names: Vec<String> = listed
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    names.sort();
    Ok(names)
}

/// The names of the containers the engine created since `since` (to the second) that carry the
/// label `label` (`key=value`), from the engine's event log: a container created and removed
/// again in between counts too.
pub async fn created_containers(
    session: &Session,
    label: &str,
    since: SystemTime,
) -> anyhow::Result<Vec<String>> {
    let seconds = |t: SystemTime| -> anyhow::Result<String> {
        Ok(t.duration_since(SystemTime::UNIX_EPOCH)?
            .as_secs()
            .to_string())
    };
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        ("event".to_string(), vec!["create".to_string()]),
        ("label".to_string(), vec![label.to_string()]),
    ]);
    // `until` one second ahead: the engine's clock, in whole seconds, may trail ours.
    let until = SystemTime::now() + std::time::Duration::from_secs(1);
    let mut events = session.engine().docker().events(Some(EventsOptions {
        since: Some(seconds(since)?),
        until: Some(seconds(until)?),
        filters: Some(filters),
    }));
    let mut names = Vec::new();
    while let Some(event) = events.next().await {
        let event = event?;
        let attributes = event.actor.and_then(|a| a.attributes).unwrap_or_default();
        names.push(attributes.get("name").cloned().unwrap_or_default());
    }
    Ok(names)
}

/// A label `io.seaworthy.test.NAME=<this process's id>` (as `key=value`) for the containers of one
/// test: [`created_containers`] and [`owned_containers`] then see those alone, whatever other
/// tests of the process create meanwhile.
pub fn test_label(name: &str) -> String {
    format!("io.seaworthy.test.{name}={}", std::process::id())
}

/// Asserts that the container `container` carries the label `label` (`key=value`) and the
/// environment entry `env` (`KEY=value`), as the engine reports them.
pub async fn assert_label_and_env(
    container: &seaworthy::Container,
    label: &str,
    env: &str,
) -> anyhow::Result<()> {
    let config = container.inspect().await?.config.unwrap_or_default();
    let (key, value) = label.split_once('=').unwrap_or((label, ""));
    let labels = config.labels.unwrap_or_default();
    anyhow::ensure!(
        labels.get(key).map(String::as_str) == Some(value),
        "container {} lacks the label {label}: {labels:?}",
        container.name()
    );
    let envs = config.env.unwrap_or_default();
    anyhow::ensure!(
        envs.iter().any(|e| e == env),
        "container {} lacks the environment entry {env}: {envs:?}",
        container.name()
    );
    Ok(())
}

/// Asserts that `err` is an [`Error::Invalid`](seaworthy::Error::Invalid) refusing `input` as a
/// `kind`.
pub fn assert_invalid(err: &seaworthy::Error, kind: &str, input: &str) {
    assert!(
        matches!(err, seaworthy::Error::Invalid { kind: k, input: i, .. } if *k == kind && i == input),
        "expected an invalid {kind} {input:?}, got: {err}"
    );
}

/// Asserts that `err` is an [`Error::Fixture`](seaworthy::Error::Fixture) of the fixture kind
/// `fixture` in `container`, and returns its source as the fixture crate's error `E`.
pub fn fixture_source<'e, E: std::error::Error + 'static>(
    err: &'e seaworthy::Error,
    fixture: &str,
    container: &str,
) -> &'e E {
    let seaworthy::Error::Fixture {
        fixture: f,
        container: c,
        source,
        ..
    } = err
    else {
        panic!("expected Error::Fixture, got {err:?}");
    };
    assert_eq!((f.as_str(), c.as_str()), (fixture, container), "{err}");
    source
        .downcast_ref::<E>()
        .unwrap_or_else(|| panic!("the source of {err:?} is not the fixture's own error"))
}
