//! The engine restarted mid-suite: work in flight ends with an error instead of hanging, calls
//! while the engine is down fail at once and name what they were for, and once the engine is
//! back the next container and the next shared fixture work.
//!
//! Restarting the engine stops every container on it, so this test is alone in its test binary
//! (cargo runs test binaries one after another). It only runs as root against the local engine
//! and prints why it skips otherwise. If it fails while the engine is down, it starts it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use seaworthy::{ContainerDefinition, Exec, Fixture, Session, Shared, Wait};
use seaworthy_compare::local_engine::{self, LocalEngine};
use seaworthy_compare::{leaks, Sleeper, BUSYBOX};

/// How long in-flight work may take to notice that the engine went away.
const NOTICE: Duration = Duration::from_secs(20);

fn sleeper() -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
        .with_wait(Wait::log("^ready$"))
}

/// Starts the engine again when dropped while it is down (a failed assertion must not leave the
/// machine without an engine).
struct EngineBack(LocalEngine);

impl Drop for EngineBack {
    fn drop(&mut self) {
        if local_engine::ping(std::path::Path::new(local_engine::SOCKET)).is_err() {
            if let Err(e) = self.0.start(Duration::from_secs(60)) {
                eprintln!("could not start the engine again: {e}");
            }
        }
    }
}

async fn stop(engine: &EngineBack) -> anyhow::Result<Duration> {
    let engine = engine.0.clone();
    Ok(tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(90))).await??)
}

async fn start(engine: &mut EngineBack) -> anyhow::Result<Duration> {
    let mut restarted = engine.0.clone();
    let (restarted, took) = tokio::task::spawn_blocking(move || {
        let took = restarted.start(Duration::from_secs(60));
        (restarted, took)
    })
    .await?;
    engine.0 = restarted;
    Ok(took?)
}

#[tokio::test(flavor = "multi_thread")]
async fn after_an_engine_restart_errors_are_clear_nothing_hangs_and_the_next_fixture_works(
) -> anyhow::Result<()> {
    let engine = match LocalEngine::find() {
        Ok(engine) => engine,
        Err(why) => {
            eprintln!("skipping the engine restart test: {why}");
            return Ok(());
        }
    };
    let global = Session::global().await?;
    let session = leaks::isolated_session().await?;
    let shared: Shared<Sleeper> = Shared::per_process(Sleeper::default);
    let first_shared = {
        let fixture = shared.get().await?;
        fixture.touch("before-restart").await?;
        fixture.container().name().to_string()
    };
    let c = Arc::new(sleeper().start_in(&session).await?);
    let name = c.name().to_string();

    // Work in flight when the engine goes down: a wait that could take 90 s, an exec of 60 s.
    let waiting = tokio::spawn({
        let session = session.clone();
        async move {
            let started = Instant::now();
            let result = ContainerDefinition::new(BUSYBOX)
                .with_cmd(["sh", "-c", "echo up; exec sleep 3600"])
                .with_wait(Wait::log("^never printed$"))
                .with_startup_timeout(Duration::from_secs(90))
                .start_in(&session)
                .await;
            (started.elapsed(), result.map(drop))
        }
    });
    let execing = tokio::spawn({
        let c = c.clone();
        async move {
            let started = Instant::now();
            let result = c
                .exec(Exec::new(["sleep", "60"]).timeout(Duration::from_secs(90)))
                .await;
            (started.elapsed(), result)
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut engine = EngineBack(engine);
    let stopped_in = stop(&engine).await?;
    eprintln!(
        "the engine (pid {}) stopped in {stopped_in:?}",
        engine.0.pid()
    );

    // In-flight work ends with an error once the engine is gone, well before its own deadlines.
    let (took, result) = tokio::time::timeout(NOTICE, waiting).await??;
    let err = result.expect_err("the wait cannot hold without an engine");
    eprintln!("in-flight wait failed after {took:?}: {err}");
    let (took, result) = tokio::time::timeout(NOTICE, execing).await??;
    match result {
        Err(err) => {
            let err = err.to_string();
            eprintln!("in-flight exec failed after {took:?}: {err}");
            assert!(err.contains(&name), "names the container: {err}");
        }
        // Killed with its container before the engine went away: an exit code, not a hang.
        Ok(out) => {
            eprintln!(
                "in-flight exec ended after {took:?} with code {}",
                out.exit_code
            );
            assert!(!out.success());
        }
    }

    // While the engine is down, calls fail at once and say what they were for.
    let asked = Instant::now();
    let err = c.exec(Exec::new(["true"])).await.unwrap_err();
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert!(err.is_engine_unavailable(), "{err:?}");
    let err = err.to_string();
    assert!(err.contains(&name), "names the container: {err}");
    assert!(err.contains("is dockerd running?"), "says why: {err}");
    eprintln!("exec while down: {err}");
    let asked = Instant::now();
    let err = sleeper().start_in(&session).await.unwrap_err();
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert!(err.is_engine_unavailable(), "{err:?}");
    let err = err.to_string();
    assert!(err.contains(BUSYBOX) || err.contains("container"), "{err}");
    eprintln!("start while down: {err}");

    let started_in = start(&mut engine).await?;
    eprintln!(
        "the engine (pid {}) answers again after {started_in:?}",
        engine.0.pid()
    );

    // The old container was stopped with the engine: a clear error, no hang.
    let err = c.exec(Exec::new(["true"])).await.unwrap_err().to_string();
    assert!(
        err.contains(&name) && err.contains("is not running"),
        "{err}"
    );
    // The next container of the same session works.
    let next = sleeper().start_in(&session).await?;
    assert!(next.exec(Exec::new(["true"])).await?.success());
    // The shared fixture notices its container died and replaces it.
    let second_shared = {
        let fixture = shared.get().await?;
        assert_ne!(fixture.container().name(), first_shared);
        assert!(fixture.scratch().await?.is_empty());
        fixture.touch("after-restart").await?;
        fixture.clean().await?;
        fixture.container().name().to_string()
    };

    drop(next);
    drop(c);
    drop(shared);
    if let Err(left) = leaks::close_session(&session).await {
        panic!("{left}");
    }
    assert!(leaks::removals_done(&global, Duration::from_secs(60)).await);
    for shared_name in [first_shared, second_shared] {
        assert!(
            !leaks::container_exists(&global, &shared_name).await?,
            "{shared_name} was left behind"
        );
    }
    drop(engine);
    Ok(())
}
