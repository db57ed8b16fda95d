//! Faults: what a user sees when things break under a test. Containers killed or removed behind
//! the library's back, waits on containers that exit at once, fixed host ports already taken,
//! disks full. Each error must say what failed and name the container, port or path; nothing may
//! be left behind.
//!
//! (The engine restarting mid-suite is in `engine_restart.rs`, a test binary of its own.)

use std::time::{Duration, Instant};

use seaworthy::bollard::models::VolumeCreateRequest;
use seaworthy::bollard::query_parameters::{RemoveContainerOptions, RemoveVolumeOptions};
use seaworthy::{
    ContainerDefinition, Error, Exec, Fixture, Healthcheck, MountSource, MountSpec, Session,
    Shared, Wait,
};
use seaworthy_compare::{leaks, Sleeper, BUSYBOX};

/// A busybox that prints `ready` and sleeps.
fn sleeper() -> ContainerDefinition {
    ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
        .with_wait(Wait::log("^ready$"))
}

/// `docker kill NAME`, as a person or another tool would: straight to the engine.
async fn kill_behind_the_back(session: &Session, name: &str) {
    let (session, name) = (session.clone(), name.to_string());
    seaworthy::runtime::run(async move {
        session
            .engine()
            .docker()
            .kill_container(&name, None)
            .await
            .expect("docker kill");
    })
    .await;
}

/// `docker rm -f NAME`, straight to the engine.
async fn remove_behind_the_back(session: &Session, name: &str) {
    let (session, name) = (session.clone(), name.to_string());
    seaworthy::runtime::run(async move {
        session
            .engine()
            .docker()
            .remove_container(
                &name,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
            .expect("docker rm -f");
    })
    .await;
}

/// Waits until the engine reports `name` stopped or gone.
async fn wait_until_not_running(session: &Session, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (engine, id) = (session.engine().clone(), name.to_string());
        let running = seaworthy::runtime::run(async move {
            match engine.docker().inspect_container(&id, None).await {
                Ok(info) => info.state.and_then(|s| s.running).unwrap_or(false),
                Err(_) => false,
            }
        })
        .await;
        if !running {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} still runs after being killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_nothing_left(session: &Session) {
    if let Err(left) = leaks::close_session(session).await {
        panic!("{left}");
    }
}

#[tokio::test]
async fn a_container_killed_behind_the_librarys_back_gives_errors_naming_it() -> anyhow::Result<()>
{
    let session = leaks::isolated_session().await?;
    let c = sleeper().start_in(&session).await?;
    let name = c.name().to_string();

    kill_behind_the_back(&session, &name).await;
    wait_until_not_running(&session, &name).await;
    let err = c.exec(Exec::new(["true"])).await.unwrap_err().to_string();
    eprintln!("exec in a killed container: {err}");
    assert!(err.contains(&name), "the error names the container: {err}");
    assert!(err.contains("is not running"), "{err}");
    // Its log stays readable, for the test's failure message.
    assert!(c.logs().await?.contains("ready"));

    remove_behind_the_back(&session, &name).await;
    let err = c.exec(Exec::new(["true"])).await.unwrap_err().to_string();
    eprintln!("exec in a removed container: {err}");
    assert!(err.contains(&name), "{err}");
    assert!(err.to_lowercase().contains("no such container"), "{err}");
    let err = c.logs().await.unwrap_err().to_string();
    assert!(err.contains(&name), "{err}");
    let err = c.inspect().await.unwrap_err().to_string();
    assert!(
        err.contains(&name) && err.contains("no longer exists"),
        "{err}"
    );
    let err = c.read_file("/etc/passwd").await.unwrap_err().to_string();
    assert!(err.contains(&name), "{err}");

    // Dropping a handle whose container is already gone is not an error, and leaves nothing.
    drop(c);
    assert_nothing_left(&session).await;
    Ok(())
}

#[tokio::test]
async fn a_shared_fixture_replaces_a_container_killed_or_removed_behind_its_back(
) -> anyhow::Result<()> {
    let global = Session::global().await?;
    let shared: Shared<Sleeper> = Shared::per_process(Sleeper::default);
    let mut seen = Vec::new();
    {
        let fixture = shared.get().await?;
        fixture.touch("before").await?;
        seen.push(fixture.container().name().to_string());
    }
    for sabotage in ["kill", "rm -f"] {
        let victim = seen.last().cloned().unwrap_or_default();
        match sabotage {
            "kill" => kill_behind_the_back(&global, &victim).await,
            _ => remove_behind_the_back(&global, &victim).await,
        }
        // The next test comes along once the container has died (a kill takes a moment).
        wait_until_not_running(&global, &victim).await;
        let fixture = shared.get().await?;
        let replacement = fixture.container().name().to_string();
        assert_ne!(replacement, victim, "after `docker {sabotage}`");
        assert!(fixture.container().is_running().await?);
        assert!(
            fixture.scratch().await?.is_empty(),
            "a fresh container after `docker {sabotage}`"
        );
        fixture.touch("x").await?;
        fixture.clean().await?;
        assert!(fixture.scratch().await?.is_empty());
        seen.push(replacement);
    }
    drop(shared);
    assert!(leaks::removals_done(&global, Duration::from_secs(60)).await);
    for name in &seen {
        assert!(
            !leaks::container_exists(&global, name).await?,
            "{name} was left behind"
        );
    }
    Ok(())
}

/// A container that writes why it fails, then exits with code 3, waited on with every kind of
/// wait (a failure by deadline would take 120 s).
fn crash_cases() -> Vec<(&'static str, ContainerDefinition)> {
    let crashing = || {
        ContainerDefinition::new(BUSYBOX)
            .with_cmd([
                "sh",
                "-c",
                "echo starting; echo 'fatal: no config' >&2; exit 3",
            ])
            .with_startup_timeout(Duration::from_secs(120))
    };
    vec![
        ("log", crashing().with_wait(Wait::log("^never printed$"))),
        ("tcp", crashing().with_port(80).with_wait(Wait::tcp(80))),
        (
            "http",
            crashing().with_port(80).with_wait(Wait::http(80, "/")),
        ),
        (
            "healthy",
            crashing()
                .with_healthcheck(Healthcheck::shell("false"))
                .with_wait(Wait::healthy()),
        ),
        (
            "running for",
            crashing().with_wait(Wait::running_for(Duration::from_secs(100))),
        ),
        ("exit code", crashing().with_wait(Wait::exit_code(0))),
        (
            "all",
            crashing().with_wait(Wait::all([Wait::log("starting"), Wait::log("^never$")])),
        ),
    ]
}

/// Starts every case concurrently: (kind of wait, time to fail, error).
async fn run_crash_cases(session: &Session) -> Vec<(&'static str, Duration, Error)> {
    let runs = crash_cases().into_iter().map(|(what, def)| {
        let session = session.clone();
        async move {
            let started = Instant::now();
            let err =
                def.start_in(&session).await.err().unwrap_or_else(|| {
                    panic!("{what}: a container that exits cannot become ready")
                });
            (what, started.elapsed(), err)
        }
    });
    futures_util::future::join_all(runs).await
}

#[tokio::test]
async fn waits_on_a_container_that_exits_at_once_fail_fast_naming_it_with_its_log(
) -> anyhow::Result<()> {
    let session = leaks::isolated_session().await?;
    let mut problems = Vec::new();
    for (what, took, err) in run_crash_cases(&session).await {
        let text = err.to_string();
        eprintln!(
            "{what}: failed after {took:.2?}: {}",
            text.lines().next().unwrap_or("")
        );
        if took >= Duration::from_secs(15) {
            problems.push(format!("{what}: took {took:?} to fail"));
        }
        let Error::Wait {
            container,
            why,
            log_tail,
            ..
        } = &err
        else {
            problems.push(format!("{what}: expected a wait error, got {err:?}"));
            continue;
        };
        if !log_tail.iter().any(|l| l.contains("fatal: no config")) {
            problems.push(format!("{what}: the log tail misses the reason: {text}"));
        }
        if !text.contains(container.as_str()) {
            problems.push(format!("{what}: the container is not named: {text}"));
        }
        if !why.contains("exited with code 3") {
            problems.push(format!("{what}: no exit code in {why:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(session.live_count(seaworthy::ResourceKind::Container), 0);
    assert_nothing_left(&session).await;
    Ok(())
}

/// Every wait on a container that exited says so, with its exit code: not "the log ended", nor
/// "port 80 is not published (add with_port(80))" — wrong advice: the port was published, the
/// container exited before the engine bound it.
#[tokio::test]
async fn every_wait_on_a_container_that_exits_at_once_reports_its_exit_code() -> anyhow::Result<()>
{
    let session = leaks::isolated_session().await?;
    let mut problems = Vec::new();
    for (what, _, err) in run_crash_cases(&session).await {
        match &err {
            Error::Wait { why, .. } if why.contains("exited with code 3") => {}
            Error::Wait { why, .. } => problems.push(format!("{what}: {why}")),
            other => problems.push(format!("{what}: {other:?}")),
        }
    }
    assert_nothing_left(&session).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// A TCP port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn a_fixed_host_port_taken_by_another_process_fails_naming_the_port() -> anyhow::Result<()> {
    let session = leaks::isolated_session().await?;
    let taken = std::net::TcpListener::bind("0.0.0.0:0")?;
    let port = taken.local_addr()?.port();
    let err = sleeper()
        .with_port_spec(&format!("{port}:80"))
        .start_in(&session)
        .await
        .expect_err("the port is taken")
        .to_string();
    eprintln!("port taken by a process: {err}");
    assert!(err.contains(&format!(":{port}")), "names the port: {err}");
    assert!(err.contains("address already in use"), "{err}");
    assert!(err.contains("start container"), "says what failed: {err}");
    drop(taken);
    assert_nothing_left(&session).await;
    Ok(())
}

#[tokio::test]
async fn a_fixed_host_port_taken_by_another_container_fails_naming_the_port() -> anyhow::Result<()>
{
    let session = leaks::isolated_session().await?;
    let port = free_port();
    let first = sleeper()
        .with_port_spec(&format!("{port}:80"))
        .start_in(&session)
        .await?;
    let err = sleeper()
        .with_port_spec(&format!("{port}:80"))
        .start_in(&session)
        .await
        .expect_err("the port is taken")
        .to_string();
    eprintln!("port taken by a container: {err}");
    assert!(err.contains(&format!(":{port}")), "names the port: {err}");
    assert!(err.contains("already allocated"), "{err}");
    // The first container is untouched.
    assert_eq!(first.host_port(80)?, port);
    assert!(first.exec(Exec::new(["true"])).await?.success());
    drop(first);
    assert_nothing_left(&session).await;
    Ok(())
}

#[tokio::test]
async fn a_container_filling_its_tmpfs_surfaces_no_space_left_on_device() -> anyhow::Result<()> {
    let session = leaks::isolated_session().await?;
    let c = sleeper()
        .with_tmpfs("/data", Some(64 * 1024))
        .start_in(&session)
        .await?;
    let out = c
        .exec(Exec::new([
            "dd",
            "if=/dev/zero",
            "of=/data/fill",
            "bs=1024",
            "count=1024",
        ]))
        .await?;
    assert!(!out.success());
    assert!(
        out.stderr_text().contains("No space left on device"),
        "{}",
        out.stderr_text()
    );
    drop(c);

    // A service that dies of it: the wait fails with its exit code and the reason in the log.
    let err = ContainerDefinition::new(BUSYBOX)
        .with_tmpfs("/data", Some(64 * 1024))
        .with_cmd([
            "sh",
            "-c",
            "dd if=/dev/zero of=/data/fill bs=1024 count=1024 || exit 28; echo ready; sleep 600",
        ])
        .with_wait(Wait::log("^ready$"))
        .start_in(&session)
        .await
        .expect_err("the disk is full")
        .to_string();
    // The exit code is the reason given, the engine's message is in the error's log tail.
    assert!(err.contains("exited with code 28"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_nothing_left(&session).await;
    Ok(())
}

#[tokio::test]
async fn writing_into_a_full_volume_carries_the_engines_message() -> anyhow::Result<()> {
    let session = leaks::isolated_session().await?;
    // A 64 KiB volume on a tmpfs (the local driver's options; `VolumeDefinition` has no way to
    // pass driver options), labelled like the session's own so a sweep would find it.
    let volume = format!("{}-tiny", session.namespace());
    {
        let (session, volume) = (session.clone(), volume.clone());
        seaworthy::runtime::run(async move {
            session
                .engine()
                .docker()
                .create_volume(VolumeCreateRequest {
                    name: Some(volume),
                    driver: Some("local".into()),
                    driver_opts: Some(
                        [("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=65536")]
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    ),
                    labels: Some(session.labels()),
                    ..Default::default()
                })
                .await
        })
        .await?;
    }
    let c = sleeper()
        .with_mount_spec(MountSpec {
            source: MountSource::ExternalVolume(volume.clone()),
            target: "/vol".into(),
            read_only: false,
        })
        .start_in(&session)
        .await?;
    let err = c
        .write_file("/vol/big.bin", vec![7u8; 256 * 1024], 0o644)
        .await
        .expect_err("the volume is full")
        .to_string();
    eprintln!("write_file into a full volume: {err}");
    assert!(err.contains("no space left on device"), "{err}");
    assert!(err.contains(c.name()), "names the container: {err}");
    assert!(err.contains("/vol/big.bin"), "names the path: {err}");
    c.remove().await?;
    {
        let (session, volume) = (session.clone(), volume.clone());
        seaworthy::runtime::run(async move {
            session
                .engine()
                .docker()
                .remove_volume(&volume, Some(RemoveVolumeOptions { force: true }))
                .await
        })
        .await?;
    }
    assert_nothing_left(&session).await;
    Ok(())
}

/// A user writing into a tmpfs mount expects the container to see the file. The engine's
/// archive API writes *under* the mount, where the container never looks, and reports success.
#[tokio::test]
async fn a_file_written_into_a_tmpfs_mount_is_seen_by_the_container() -> anyhow::Result<()> {
    let session = leaks::isolated_session().await?;
    let c = sleeper()
        .with_tmpfs("/data", Some(64 * 1024))
        .start_in(&session)
        .await?;
    let written = c.write_file("/data/small.txt", "hello", 0o644).await;
    let seen = c.exec(Exec::new(["cat", "/data/small.txt"])).await?;
    drop(c);
    assert_nothing_left(&session).await;
    written?;
    assert_eq!(seen.stdout_text(), "hello", "{}", seen.stderr_text());
    Ok(())
}
