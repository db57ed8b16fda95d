//! The engine restarted mid-suite: work in flight ends with an error instead of hanging, calls
//! while the engine is down fail at once and name what they were for, and once the engine is
//! back the next container and the next shared fixture work.
//!
//! The test runs its own private `dockerd` ([`PrivateEngine`]: own socket, data and exec roots,
//! no default bridge, no firewall rules), loads the busybox test image into it from the
//! machine's engine, and stops and starts that engine, never the machine's own. It needs root
//! and a `dockerd` binary; when it cannot have them it fails and says why (`SEAWORTHY_CI=1`, as
//! `.ci/run` sets, or a plain run). `SEAWORTHY_SKIP_ENGINE_RESTART=1` turns that failure into a
//! printed skip for a developer's machine without root, and is refused under CI.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use seaworthy::bollard::query_parameters::{
    ImportImageOptions, ListContainersOptions, LogsOptions,
};
use seaworthy::{ContainerDefinition, Engine, Error, Exec, Fixture, Session, Shared, Wait};
use seaworthy_compare::private_engine::PrivateEngine;
use seaworthy_compare::{leaks, Sleeper, BUSYBOX};

/// How long in-flight work may take to notice that the engine went away (the engine gives its
/// containers `SHUTDOWN_TIMEOUT_SECS` to stop, then stops itself).
const NOTICE: Duration = Duration::from_secs(30);
/// The command of the container whose wait is in flight (found by it on the engine).
const WAITING_SCRIPT: &str = "echo up; exec sleep 3601";

/// Prints a line straight to the process's stderr, past the test harness's capture: the CI log
/// shows what happened in a passing run too.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

fn sleeper() -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
        .with_wait(Wait::log("^ready$"))
}

/// The private engine, or why this test cannot run here: a failure, unless a developer opted
/// out outside CI.
fn private_engine() -> anyhow::Result<Option<PrivateEngine>> {
    match PrivateEngine::start(Duration::from_secs(60)) {
        Ok(engine) => Ok(Some(engine)),
        Err(why) => {
            let ci = std::env::var_os("SEAWORTHY_CI").is_some();
            let opted_out = std::env::var("SEAWORTHY_SKIP_ENGINE_RESTART").is_ok_and(|v| v == "1");
            if opted_out && !ci {
                say!("SKIPPED (SEAWORTHY_SKIP_ENGINE_RESTART=1): the engine restart test cannot run here: {why}");
                return Ok(None);
            }
            anyhow::bail!(
                "the engine restart test cannot run here: {why}\n\
                 It needs root and a dockerd binary; outside CI, SEAWORTHY_SKIP_ENGINE_RESTART=1 skips it."
            )
        }
    }
}

/// Copies `image` from the machine's engine to `to` (`docker save | docker load`).
async fn copy_image(from: &Engine, to: &Engine, image: &str) -> anyhow::Result<()> {
    let mut tar = Vec::new();
    let mut export = from.docker().export_image(image);
    while let Some(chunk) = export.next().await {
        tar.extend_from_slice(&chunk.with_context(|| format!("export {image}"))?);
    }
    let mut load = to.docker().import_image(
        ImportImageOptions {
            quiet: true,
            ..Default::default()
        },
        seaworthy::bollard::body_full(tar.into()),
        None,
    );
    while let Some(progress) = load.next().await {
        progress.with_context(|| format!("load {image} into the private engine"))?;
    }
    Ok(())
}

/// Waits (at most 30 s) until `check` holds; fails naming `what`.
async fn until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await? {
        anyhow::ensure!(Instant::now() < deadline, "{what} within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Whether a running container of `engine` runs [`WAITING_SCRIPT`] and has printed its line:
/// its start is in the wait phase, following the log for a line that never comes.
async fn wait_in_flight(engine: &Engine) -> anyhow::Result<bool> {
    let docker = engine.docker();
    let running = docker
        .list_containers(Some(ListContainersOptions::default()))
        .await?;
    for c in running {
        if !c.command.as_deref().unwrap_or("").contains("sleep 3601") {
            continue;
        }
        let id = c.id.unwrap_or_default();
        let mut logs = docker.logs(
            &id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        while let Some(chunk) = logs.next().await {
            if chunk?.to_string().contains("up") {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether an exec of `sleep 60` runs in the container `id`.
async fn exec_in_flight(engine: &Engine, id: &str) -> anyhow::Result<bool> {
    let docker = engine.docker();
    let info = docker.inspect_container(id, None).await?;
    for exec in info.exec_ids.unwrap_or_default() {
        let exec = docker.inspect_exec(&exec).await?;
        let argv = exec
            .process_config
            .and_then(|p| p.arguments)
            .unwrap_or_default();
        if exec.running == Some(true) && argv.iter().any(|a| a == "60") {
            return Ok(true);
        }
    }
    Ok(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn after_an_engine_restart_errors_are_clear_nothing_hangs_and_the_next_fixture_works(
) -> anyhow::Result<()> {
    let machine = Engine::connect().await?;
    let Some(mut engine) = tokio::task::block_in_place(private_engine)? else {
        return Ok(());
    };
    say!(
        "private engine (pid {:?}) at {}",
        engine.pid(),
        PrivateEngine::ENDPOINT
    );
    // Everything of this test binary (the global session, shared fixtures) uses the private
    // engine. No reaper: the private engine and all it holds are removed when the test ends.
    std::env::set_var("DOCKER_HOST", PrivateEngine::ENDPOINT);
    std::env::set_var("SEAWORTHY_REAPER", "off");
    let private = Engine::connect_to(PrivateEngine::ENDPOINT).await?;
    copy_image(&machine, &private, &format!("{BUSYBOX}:latest")).await?;

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
                .with_cmd(["sh", "-c", WAITING_SCRIPT])
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
    // Both are really under way before the engine goes.
    until("the wait's container runs and printed its line", || {
        wait_in_flight(&private)
    })
    .await?;
    let id = c.id();
    until("the exec runs", || exec_in_flight(&private, &id)).await?;

    let stopped_in = tokio::task::block_in_place(|| engine.stop(Duration::from_secs(90)))?;
    say!("the private engine stopped in {stopped_in:?}");

    // In-flight work ends with an error once the engine is gone, well before its own deadlines.
    let (took, result) = tokio::time::timeout(NOTICE, waiting).await??;
    let err = result.expect_err("the wait cannot hold without an engine");
    say!("in-flight wait failed after {took:?}: {err}");
    match &err {
        // The engine stopped the container first: the wait names the container and the
        // condition, and says the log ended.
        Error::Wait { .. } => {
            let text = err.to_string();
            assert!(
                text.contains("never printed") && text.contains("the log ended"),
                "names the condition and why it cannot hold: {text}"
            );
        }
        // Or the engine went before the wait learned how the container ended.
        other => assert!(other.is_engine_unavailable(), "{other:?}"),
    }
    let (took, result) = tokio::time::timeout(NOTICE, execing).await??;
    match result {
        Err(err) => {
            say!("in-flight exec failed after {took:?}: {err}");
            assert!(err.is_engine_unavailable(), "{err:?}");
            assert!(
                err.to_string().contains(&name),
                "names the container: {err}"
            );
        }
        // The engine killed the container, and the exec with it, before it went away: the exec
        // ends with the signal's exit code, not a hang.
        Ok(out) => {
            say!(
                "in-flight exec ended after {took:?} with code {}",
                out.exit_code
            );
            assert!(
                out.exit_code == 137 || out.exit_code == 143,
                "killed by SIGKILL or SIGTERM: {}",
                out.exit_code
            );
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
    say!("exec while down: {err}");
    let asked = Instant::now();
    let err = sleeper().start_in(&session).await.unwrap_err();
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert!(err.is_engine_unavailable(), "{err:?}");
    let err = err.to_string();
    assert!(err.contains(BUSYBOX), "names the image: {err}");
    say!("start while down: {err}");

    let started_in = tokio::task::block_in_place(|| engine.restart(Duration::from_secs(60)))?;
    say!(
        "the private engine (pid {:?}) answers again after {started_in:?}",
        engine.pid()
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
    // Stops the private engine and removes its directories.
    tokio::task::block_in_place(|| drop(engine));
    Ok(())
}
