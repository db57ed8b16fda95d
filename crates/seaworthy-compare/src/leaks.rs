//! What a test left on the engine.
//!
//! A test that owns a [`Session`] of its own can tell exactly what it created: the session names
//! everything `<namespace>-…` (its network is named after the namespace itself) and labels it with
//! this process as owner. [`leftovers`] lists what of that is still on the engine;
//! [`close_session`] waits for background removals, tears the session down and fails with a list
//! of whatever survived. Tests that go through the global session (shared fixtures) check the
//! containers they saw by name with [`container_exists`].

use std::time::Duration;

use seaworthy::gc::{list_labelled, LabelledResource};
use seaworthy::session::{LABEL_MANAGED, LABEL_OWNER};
use seaworthy::{Error, Session};

/// How long [`close_session`] waits for removals still running in the background.
const BACKGROUND_REMOVALS: Duration = Duration::from_secs(60);

/// A session of its own for one test, on the global session's engine (and its connections): what
/// it creates is named and owned so that [`leftovers`] finds exactly that.
pub async fn isolated_session() -> seaworthy::Result<Session> {
    let global = Session::global().await?;
    Ok(Session::with_engine(global.engine().clone()))
}

/// The resources labelled `io.seaworthy.managed=true` and owned by this process that belong to
/// `session` (by their names), in teardown order.
pub async fn leftovers(session: &Session) -> seaworthy::Result<Vec<LabelledResource>> {
    let session = session.clone();
    seaworthy::runtime::run(async move {
        let owner = session.owner().to_string();
        let namespace = session.namespace().to_string();
        let prefix = format!("{namespace}-");
        let found = list_labelled(
            session.engine(),
            &[(LABEL_MANAGED, "true"), (LABEL_OWNER, owner.as_str())],
        )
        .await?;
        Ok(found
            .into_iter()
            .filter(|r| r.name == namespace || r.name.starts_with(&prefix))
            .collect())
    })
    .await
}

/// Waits for the session's background removals, tears it down, and returns `Err` naming every
/// resource of the session still on the engine afterwards (or every teardown error).
pub async fn close_session(session: &Session) -> Result<(), String> {
    let drained = removals_done(session, BACKGROUND_REMOVALS).await;
    let errors = session.teardown().await;
    let left = leftovers(session)
        .await
        .map_err(|e| format!("listing what session {} left: {e}", session.namespace()))?;
    if drained && errors.is_empty() && left.is_empty() {
        return Ok(());
    }
    let mut report = Vec::new();
    if !drained {
        report.push(format!(
            "background removals still running after {BACKGROUND_REMOVALS:?}"
        ));
    }
    report.extend(errors.iter().map(|e| format!("teardown error: {e}")));
    report.extend(
        left.iter()
            .map(|r| format!("left behind: {:?} {} ({})", r.kind, r.name, r.id)),
    );
    Err(report.join("\n"))
}

/// Waits (at most `timeout`) until the removals that `session`'s dropped handles started in the
/// background are done; `false` if some are still running.
pub async fn removals_done(session: &Session, timeout: Duration) -> bool {
    let waiting = session.clone();
    // The wait blocks a thread: give it one of the blocking pool's, not an async worker.
    seaworthy::runtime::run(async move {
        tokio::task::spawn_blocking(move || waiting.wait_for_background_removals(timeout))
            .await
            .unwrap_or(false)
    })
    .await
}

/// Whether the engine knows a container by this name or id.
pub async fn container_exists(session: &Session, name: &str) -> seaworthy::Result<bool> {
    let session = session.clone();
    let name = name.to_string();
    seaworthy::runtime::run(async move {
        match session
            .engine()
            .docker()
            .inspect_container(&name, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(seaworthy::bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }) => Ok(false),
            Err(source) => Err(Error::Container {
                container: name,
                reason: format!("inspect failed: {source}"),
            }),
        }
    })
    .await
}
