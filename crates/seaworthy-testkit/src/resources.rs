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
