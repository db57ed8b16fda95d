//! The engine's healthcheck reporting healthy: the current state, then the engine's events from
//! the moment that look describes (so a transition in between is replayed, not lost); on Podman,
//! which runs no healthcheck without systemd, the check is also run by exec.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;

use super::{Checking, Condition, Impossible, Wait};
use crate::container::{inspect_here, Inner};

struct Healthy;

impl Wait {
    /// The healthcheck reports healthy.
    pub fn healthy() -> Wait {
        Wait::on(Healthy)
    }
}

impl Condition for Healthy {
    fn check<'a>(&'a self, inner: &'a Arc<Inner>) -> Checking<'a> {
        Box::pin(check_healthy(inner))
    }
}

impl fmt::Display for Healthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("healthcheck healthy")
    }
}

async fn check_healthy(inner: &Inner) -> Result<(), Impossible> {
    let info = inspect_here(inner)
        .await
        .map_err(|e| Impossible(format!("because {e}")))?;
    let configured = info.config.and_then(|c| c.healthcheck);
    let state = info.state.unwrap_or_default();
    let health = state.health.unwrap_or_default();
    match health.status {
        Some(bollard::models::HealthStatusEnum::HEALTHY) => return Ok(()),
        None
        | Some(bollard::models::HealthStatusEnum::NONE)
        | Some(bollard::models::HealthStatusEnum::EMPTY) => {
            return Err(Impossible(
                "because the container has no healthcheck (set one with with_healthcheck)".into(),
            ))
        }
        _ => {}
    }
    // The engine sends the events request only when the stream is first polled, after the
    // look above: a transition in between would be lost. The stream therefore starts at the
    // moment the look describes, in the engine's clock: the end of the last check it lists (a
    // later transition comes from a later check, and its event is recorded after that check
    // ended), or the start of the run before any check ended. The engine replays the events
    // recorded since then, and goes on with the new ones.
    let parse = |t: &Option<String>| t.as_deref().and_then(crate::logs::parse_timestamp);
    // A check's end is a string or a date, depending on the features bollard is built with (a
    // dependency of the user's may enable `time`); its serialised form is the engine's string.
    let end_of = |check: &bollard::models::HealthcheckResult| {
        serde_json::to_value(check)
            .ok()?
            .get("End")?
            .as_str()
            .and_then(crate::logs::parse_timestamp)
    };
    let since = health
        .log
        .iter()
        .flatten()
        .filter_map(end_of)
        .chain(parse(&state.started_at))
        .max()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()));
    let events = async {
        let mut events = inner.docker().events(Some(EventsOptions {
            since,
            filters: Some(std::collections::HashMap::from([
                ("container".to_string(), vec![inner.name.clone()]),
                ("event".to_string(), vec!["health_status".to_string()]),
            ])),
            ..Default::default()
        }));
        while let Some(event) = events.next().await {
            match event {
                Ok(e) if e.action.as_deref() == Some("health_status: healthy") => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(Impossible(format!("because the event stream failed: {e}"))),
            }
        }
        Err(Impossible("because the event stream ended".into()))
    };
    // Podman runs healthchecks from systemd timers: where there is no systemd, none runs and
    // the status never changes. On Podman, Seaworthy also runs the container's check itself
    // (exec); whichever says healthy first ends the wait.
    match configured {
        Some(check) if inner.session.engine().is_podman().await => {
            tokio::select! {
                done = events => done,
                done = run_healthcheck_here(inner, check) => done,
            }
        }
        _ => events.await,
    }
}

/// Runs the container's healthcheck `check` by exec until it succeeds: every `interval`, at
/// most every second (a readiness wait need not be as patient as the engine's schedule).
async fn run_healthcheck_here(
    inner: &Inner,
    check: bollard::models::HealthConfig,
) -> Result<(), Impossible> {
    let test = check.test.unwrap_or_default();
    let argv: Vec<String> = match test.first().map(String::as_str) {
        Some("CMD-SHELL") => vec!["sh".into(), "-c".into(), test[1..].join(" ")],
        Some("CMD") => test[1..].to_vec(),
        _ => return std::future::pending().await,
    };
    let interval = check
        .interval
        .filter(|ns| *ns > 0)
        .map(|ns| Duration::from_nanos(ns.unsigned_abs()))
        .unwrap_or(Duration::from_secs(1))
        .min(Duration::from_secs(1));
    let id = inner.id();
    loop {
        let run = crate::exec::exec_here(
            inner.docker(),
            &id,
            &inner.name,
            crate::exec::Exec::new(argv.clone()),
        );
        if let Ok(out) = run.await {
            if out.exit_code == 0 {
                return Ok(());
            }
        }
        tokio::time::sleep(interval).await;
    }
}
