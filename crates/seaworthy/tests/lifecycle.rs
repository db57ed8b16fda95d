//! Definitions, handles and teardown against the real engine.

mod common;

use std::time::Duration;

use common::{container_exists, sleeper, web_server, BUSYBOX};
use seaworthy::{
    ContainerDefinition, Exec, Healthcheck, NetworkDefinition, ResourceKind, Session,
    VolumeDefinition, Wait,
};

#[tokio::test]
async fn container_is_labelled_named_and_configured() {
    let session = Session::global().await.unwrap();
    let c = sleeper()
        .with_name("configured")
        .with_env("GREETING", "hello world")
        .with_user("nobody")
        .with_workdir("/tmp")
        .with_label("team", "core")
        .with_memory_limit(64 * 1024 * 1024)
        .with_pids_limit(50)
        .with_cpu_limit(0.5)
        .start()
        .await
        .unwrap();
    assert!(c.name().starts_with(session.namespace()), "{}", c.name());
    assert!(c.name().ends_with("-configured"));
    assert_eq!(c.alias(), Some("configured"));
    let info = c.inspect().await.unwrap();
    let config = info.config.unwrap();
    let labels = config.labels.unwrap();
    assert_eq!(labels["io.seaworthy.managed"], "true");
    assert_eq!(labels["io.seaworthy.session"], session.run_id());
    assert_eq!(labels["team"], "core");
    assert!(config
        .env
        .unwrap()
        .contains(&"GREETING=hello world".to_string()));
    let host = info.host_config.unwrap();
    assert_eq!(host.memory, Some(64 * 1024 * 1024));
    assert_eq!(host.pids_limit, Some(50));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    let out = c
        .exec(Exec::shell("id -un; pwd; echo $GREETING"))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "nobody\n/tmp\nhello world\n");
}

#[tokio::test]
async fn entrypoint_and_cmd_replace_the_images() {
    let c = ContainerDefinition::new(BUSYBOX)
        .with_entrypoint(["/bin/echo", "from-entrypoint"])
        .with_cmd(["and-cmd"])
        .with_wait(Wait::exit_code(0))
        .start()
        .await
        .unwrap();
    assert_eq!(c.logs().await.unwrap().stdout(), "from-entrypoint and-cmd");
}

#[tokio::test]
async fn ports_are_random_by_default_and_fixed_when_asked() {
    let fixed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = ContainerDefinition::new(BUSYBOX)
        .with_cmd([
            "sh",
            "-c",
            "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www",
        ])
        .with_port(8080)
        .with_port_spec(&format!("127.0.0.1:{fixed}:9090"))
        .with_wait(Wait::http(8080, "/index.html"))
        .start()
        .await
        .unwrap();
    let random = c.host_port(8080).unwrap();
    assert_ne!(random, 8080);
    assert_eq!(c.host_port(9090).unwrap(), fixed);
    let body = c
        .http(8080)
        .unwrap()
        .get("index.html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "hi\n");
    let err = c.host_port(1234).unwrap_err().to_string();
    assert!(
        err.contains("port 1234/tcp is not published") && err.contains(c.name()),
        "{err}"
    );
}

#[tokio::test]
async fn a_taken_fixed_port_is_a_clear_error_and_leaves_nothing() {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let session = Session::global().await.unwrap();
    let err = sleeper()
        .with_name("port-taken")
        .with_port_spec(&format!("{port}:80"))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("start container") && err.contains(&port.to_string()),
        "{err}"
    );
    let name = session.scoped_name("port-taken");
    assert!(
        !container_exists(&session, &name).await,
        "{name} still exists"
    );
    drop(listener);
}

#[tokio::test]
async fn mounts_volumes_binds_and_tmpfs() {
    let dir = std::env::temp_dir().join(format!("seaworthy-bind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("from-host.txt"), "host data\n").unwrap();
    let volume = VolumeDefinition::new("shared-data").create().await.unwrap();
    let writer = ContainerDefinition::new(BUSYBOX)
        .with_cmd([
            "sh",
            "-c",
            "echo written > /data/file && echo session > /sv/file",
        ])
        .with_volume(&volume, "/data", false)
        .with_mount("scratchvol:/sv")
        .with_wait(Wait::exit_code(0))
        .start()
        .await
        .unwrap();
    writer.remove().await.unwrap();
    let reader = sleeper()
        .with_volume(&volume, "/data", true)
        .with_mount("scratchvol:/sv:ro")
        .with_mount(&format!("{}:/host:ro", dir.display()))
        .with_tmpfs("/fast", Some(1024 * 1024))
        .start()
        .await
        .unwrap();
    let out = reader
        .exec(Exec::shell(
            "cat /data/file /sv/file /host/from-host.txt; touch /data/x 2>/dev/null || echo read-only; mount | grep ' /fast ' | cut -d' ' -f5",
        ))
        .await
        .unwrap();
    assert_eq!(
        out.stdout_text(),
        "written\nsession\nhost data\nread-only\ntmpfs\n"
    );
    reader.remove().await.unwrap();
    volume.remove().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn containers_on_the_session_network_reach_each_other_by_name() {
    let server = web_server("pong").with_name("pong").start().await.unwrap();
    let client = sleeper().with_name("ping").start().await.unwrap();
    let out = client
        .exec(Exec::new(["wget", "-q", "-O", "-", "http://pong/ping"]))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "pong\n", "stderr: {}", out.stderr_text());
    // And back, by the other name.
    let out = server
        .exec(Exec::new(["ping", "-c", "1", "-W", "2", "ping"]))
        .await
        .unwrap();
    assert!(out.success(), "{}", out.stderr_text());
}

#[tokio::test]
async fn volume_driver_options_reach_the_engine() {
    // The local driver mounting a 1 MiB tmpfs: the container sees the filesystem and its size.
    let volume = VolumeDefinition::new("sized")
        .driver("local")
        .driver_opt("type", "tmpfs")
        .driver_opt("device", "tmpfs")
        .driver_opt("o", "size=1m")
        .create()
        .await
        .unwrap();
    let c = sleeper()
        .with_volume(&volume, "/sized", false)
        .start()
        .await
        .unwrap();
    let out = c
        .exec(Exec::shell(
            "mount | grep ' /sized ' | cut -d' ' -f5; df -k /sized | tail -1 | awk '{print $2}'",
        ))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "tmpfs\n1024\n", "{}", out.stderr_text());
    c.remove().await.unwrap();
    volume.remove().await.unwrap();
}

/// The networks a container is attached to, by engine name.
async fn networks_of(c: &seaworthy::Container) -> Vec<String> {
    let mut names: Vec<String> = c
        .inspect()
        .await
        .unwrap()
        .network_settings
        .and_then(|n| n.networks)
        .map(|n| n.into_keys().collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn unnamed_containers_join_the_session_network_once_a_named_one_exists() {
    let session = common::own_session().await;
    let network = session.namespace().to_string();
    // Alone, an unnamed container starts on the engine's default bridge, and no session
    // network is created for it.
    let early = sleeper().start_in(&session).await.unwrap();
    assert_eq!(networks_of(&early).await, vec!["bridge".to_string()]);
    let docker = session.engine().docker();
    assert!(docker.inspect_network(&network, None).await.is_err());
    assert_eq!(session.live_count(ResourceKind::Network), 0);
    // A named container creates the session network; the earlier one joins it, and each
    // reaches the other by name.
    let named = sleeper()
        .with_name("named")
        .start_in(&session)
        .await
        .unwrap();
    assert_eq!(networks_of(&named).await, vec![network.clone()]);
    assert_eq!(
        networks_of(&early).await,
        vec!["bridge".to_string(), network.clone()]
    );
    let out = early
        .exec(Exec::new(["ping", "-c", "1", "-W", "2", "named"]))
        .await
        .unwrap();
    assert!(out.success(), "{}{}", out.stdout_text(), out.stderr_text());
    let out = named
        .exec(Exec::new(["ping", "-c", "1", "-W", "2", early.name()]))
        .await
        .unwrap();
    assert!(out.success(), "{}{}", out.stdout_text(), out.stderr_text());
    // Unnamed containers started from then on are on it at once.
    let late = sleeper().start_in(&session).await.unwrap();
    assert_eq!(networks_of(&late).await, vec![network.clone()]);
    let out = late
        .exec(Exec::new(["ping", "-c", "1", "-W", "2", "named"]))
        .await
        .unwrap();
    assert!(out.success(), "{}{}", out.stdout_text(), out.stderr_text());
    let errors = session.teardown().await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(docker.inspect_network(&network, None).await.is_err());
}

#[tokio::test]
async fn on_session_network_puts_an_unnamed_container_there_at_once() {
    let session = common::own_session().await;
    let server = web_server("pong")
        .on_session_network()
        .start_in(&session)
        .await
        .unwrap();
    assert_eq!(
        networks_of(&server).await,
        vec![session.namespace().to_string()]
    );
    let client = sleeper().start_in(&session).await.unwrap();
    let url = format!("http://{}/ping", server.name());
    let out = client
        .exec(Exec::new(["wget", "-q", "-O", "-", &url]))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "pong\n", "stderr: {}", out.stderr_text());
    let errors = session.teardown().await;
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test]
async fn user_networks_with_aliases() {
    let net = NetworkDefinition::new("backend").create().await.unwrap();
    let db = sleeper()
        .without_session_network()
        .with_network(&net, ["database"])
        .start()
        .await
        .unwrap();
    let app = sleeper().with_network(&net, ["app"]).start().await.unwrap();
    let out = app
        .exec(Exec::new(["ping", "-c", "1", "-W", "2", "database"]))
        .await
        .unwrap();
    assert!(out.success(), "{}{}", out.stdout_text(), out.stderr_text());
    let networks = db
        .inspect()
        .await
        .unwrap()
        .network_settings
        .unwrap()
        .networks
        .unwrap();
    assert_eq!(networks.keys().collect::<Vec<_>>(), vec![net.name()]);
    app.remove().await.unwrap();
    db.remove().await.unwrap();
    net.remove().await.unwrap();
}

#[tokio::test]
async fn healthcheck_is_configured_and_awaited() {
    let c = ContainerDefinition::new(BUSYBOX)
        .with_cmd(["sh", "-c", "sleep 1; touch /tmp/healthy; exec sleep 3600"])
        .with_healthcheck(
            Healthcheck::shell("test -f /tmp/healthy").interval(Duration::from_millis(200)),
        )
        .with_wait(Wait::healthy())
        .start()
        .await
        .unwrap();
    let health = c.inspect().await.unwrap().state.unwrap().health.unwrap();
    assert_eq!(
        health.status,
        Some(seaworthy::bollard::models::HealthStatusEnum::HEALTHY)
    );
}

#[tokio::test]
async fn files_are_copied_in_before_and_after_start() {
    let dir = std::env::temp_dir().join(format!("seaworthy-copy-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/inner.txt"), "inner\n").unwrap();
    let c = ContainerDefinition::new(BUSYBOX)
        .with_file("/etc/app/config.ini", "key=value\n", 0o600)
        .with_copy(&dir, "/opt/tree")
        .with_cmd([
            "sh",
            "-c",
            "cat /etc/app/config.ini /opt/tree/sub/inner.txt; exec sleep 3600",
        ])
        .with_wait(Wait::log("^inner$"))
        .start()
        .await
        .unwrap();
    assert_eq!(c.logs().await.unwrap().stdout(), "key=value\ninner");
    let meta = c.file_metadata("/etc/app/config.ini").await.unwrap();
    assert_eq!(meta.mode, 0o600);
    c.write_file("/late/added.txt", "late\n", 0o644)
        .await
        .unwrap();
    assert_eq!(c.read_file_text("/late/added.txt").await.unwrap(), "late\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn stop_start_and_remove() {
    let session = Session::global().await.unwrap();
    let c = sleeper().start().await.unwrap();
    assert!(c.is_running().await.unwrap());
    c.stop(Duration::from_secs(1)).await.unwrap();
    assert!(!c.is_running().await.unwrap());
    c.start().await.unwrap();
    assert!(c.is_running().await.unwrap());
    let id = c.id().to_string();
    c.remove().await.unwrap();
    assert!(!container_exists(&session, &id).await);
}

/// A wait that runs out of startup time removes the container it created and started. Under load
/// the create alone may use up a short startup timeout (a create timeout, whose container is
/// removed in the background): then it is tried again with more time, until the failure is the
/// wait's. Every attempt, whichever step it failed at, must leave nothing behind.
#[tokio::test]
async fn a_failed_wait_removes_the_half_started_container() {
    let session = Session::global().await.unwrap();
    let mut failures = Vec::new();
    for (attempt, millis) in [800, 4_000, 15_000].into_iter().enumerate() {
        let short = format!("never-ready-{attempt}");
        let err = ContainerDefinition::new(BUSYBOX)
            .with_name(&short)
            .with_cmd(["sh", "-c", "echo starting; exec sleep 3600"])
            .with_wait(Wait::log("never printed"))
            .with_startup_timeout(Duration::from_millis(millis))
            .start()
            .await
            .unwrap_err();
        let name = session.scoped_name(&short);
        if let seaworthy::Error::Wait { .. } = &err {
            // Removed before the error came back.
            assert!(
                !container_exists(&session, &name).await,
                "{name} still exists after {err}"
            );
            return;
        }
        assert!(
            matches!(err, seaworthy::Error::Timeout { .. }),
            "neither the wait's nor the create's timeout: {err}"
        );
        // An abandoned create's container goes in the background.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while container_exists(&session, &name).await {
            assert!(
                std::time::Instant::now() < deadline,
                "{name} still exists 30s after {err}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        failures.push(err.to_string());
    }
    panic!("the wait never got to fail: {failures:#?}");
}

#[tokio::test]
async fn a_missing_image_names_the_image() {
    let err = ContainerDefinition::new("seaworthy-test/does-not-exist:1")
        .with_pull_policy(seaworthy::PullPolicy::Never)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("seaworthy-test/does-not-exist:1"), "{err}");
    let err = ContainerDefinition::new("Bad Image")
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"Bad Image\""), "{err}");
    let err = sleeper()
        .with_mount("data:relative")
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data:relative") && err.contains("absolute"),
        "{err}"
    );
}

#[test]
fn a_panicking_test_still_removes_its_container() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (session, id) = rt.block_on(async {
        let session = Session::global().await.unwrap();
        let c = sleeper().start().await.unwrap();
        (session, c.id().to_string())
    });
    // The container handle was dropped at the end of the block; now a test body that panics while
    // holding one:
    let handle = std::thread::spawn(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let c = sleeper().start().await.unwrap();
            let id = c.id().to_string();
            std::fs::write(
                std::env::temp_dir().join(format!("sw-panic-{}", std::process::id())),
                &id,
            )
            .unwrap();
            panic!("test failure while holding {id}");
        })
    });
    assert!(handle.join().is_err());
    let marker = std::env::temp_dir().join(format!("sw-panic-{}", std::process::id()));
    let panicked_id = std::fs::read_to_string(&marker).unwrap();
    std::fs::remove_file(&marker).unwrap();
    assert!(session.wait_for_background_removals(Duration::from_secs(30)));
    rt.block_on(async {
        assert!(!container_exists(&session, &id).await);
        assert!(!container_exists(&session, &panicked_id).await);
    });
}

#[tokio::test]
async fn teardown_removes_containers_then_networks_then_volumes() {
    let session = common::own_session().await;
    let net = NetworkDefinition::new("td")
        .create_in(&session)
        .await
        .unwrap();
    let vol = VolumeDefinition::new("td")
        .create_in(&session)
        .await
        .unwrap();
    let c = sleeper()
        .with_network(&net, ["member"])
        .with_volume(&vol, "/v", false)
        .start_in(&session)
        .await
        .unwrap();
    let (cid, nid, vname) = (
        c.id().to_string(),
        net.id().to_string(),
        vol.name().to_string(),
    );
    // Keep the handles from removing anything themselves: teardown must do it all, in order.
    std::mem::forget(c);
    std::mem::forget(net);
    std::mem::forget(vol);
    let errors = session.teardown().await;
    assert!(errors.is_empty(), "{errors:?}");
    let docker = session.engine().docker();
    assert!(!container_exists(&session, &cid).await);
    assert!(docker.inspect_network(&nid, None).await.is_err());
    assert!(docker.inspect_volume(&vname).await.is_err());
    for kind in [
        ResourceKind::Container,
        ResourceKind::Network,
        ResourceKind::Volume,
    ] {
        assert_eq!(session.live_count(kind), 0, "{kind:?}");
    }
}

#[tokio::test]
async fn a_directory_copied_into_a_running_container_keeps_contents_and_modes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("seaworthy-copy-dir-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::write(dir.join("settings.conf"), "mode=late\n").unwrap();
    std::fs::set_permissions(
        dir.join("settings.conf"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::write(
        dir.join("bin/hello"),
        "#!/bin/sh\necho hello from the copy\n",
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("bin/hello"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let c = sleeper().start().await.unwrap();
    c.copy_into(&dir, "/opt/late").await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let out = c
        .exec(Exec::shell(
            "cat /opt/late/settings.conf && /opt/late/bin/hello && test -d /opt/late/empty && echo dir",
        ))
        .await
        .unwrap();
    assert_eq!(
        out.stdout_text(),
        "mode=late\nhello from the copy\ndir\n",
        "{}",
        out.stderr_text()
    );
    assert_eq!(
        c.file_metadata("/opt/late/settings.conf")
            .await
            .unwrap()
            .mode,
        0o640
    );
    assert_eq!(
        c.file_metadata("/opt/late/bin/hello").await.unwrap().mode,
        0o755
    );
    let names: Vec<String> = c
        .list_dir("/opt/late")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["bin", "empty", "settings.conf"]);
    c.remove().await.unwrap();
}

#[tokio::test]
async fn an_alias_on_the_session_network_reaches_the_container() {
    let session = common::own_session().await;
    let server = web_server("aliased")
        .with_alias("api")
        .start_in(&session)
        .await
        .unwrap();
    assert_eq!(
        networks_of(&server).await,
        vec![session.namespace().to_string()]
    );
    let client = sleeper().start_in(&session).await.unwrap();
    let out = client
        .exec(Exec::new(["wget", "-q", "-O", "-", "http://api/ping"]))
        .await
        .unwrap();
    assert_eq!(
        out.stdout_text(),
        "aliased\n",
        "stderr: {}",
        out.stderr_text()
    );
    let errors = session.teardown().await;
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test]
async fn an_internal_network_is_internal_and_its_members_reach_each_other() {
    let net = NetworkDefinition::new("internal")
        .internal(true)
        .create()
        .await
        .unwrap();
    let info = Session::global()
        .await
        .unwrap()
        .engine()
        .docker()
        .inspect_network(
            net.id(),
            None::<seaworthy::bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .unwrap();
    assert_eq!(info.internal, Some(true));
    assert_eq!(
        info.labels.unwrap_or_default().get("io.seaworthy.managed"),
        Some(&"true".to_string())
    );
    let a = sleeper()
        .without_session_network()
        .with_network(&net, ["inner-a"])
        .start()
        .await
        .unwrap();
    let b = sleeper()
        .without_session_network()
        .with_network(&net, ["inner-b"])
        .start()
        .await
        .unwrap();
    for (from, to) in [
        (&a, "inner-b"),
        (&b, "inner-a"),
        (&a, b.name()),
        (&b, a.name()),
    ] {
        let out = from
            .exec(Exec::new(["ping", "-c", "1", "-W", "2", to]))
            .await
            .unwrap();
        assert!(
            out.success(),
            "{to}: {}{}",
            out.stdout_text(),
            out.stderr_text()
        );
    }
    a.remove().await.unwrap();
    b.remove().await.unwrap();
    net.remove().await.unwrap();
}

#[tokio::test]
async fn each_process_and_session_of_a_run_has_its_own_namespace() {
    let own = Session::global().await.unwrap();
    let run = own.run_id().to_string();
    let prefix = format!("sw-{}-", &run[..8.min(run.len())]);
    // Derived from the process, not drawn at random.
    let token = own.namespace().strip_prefix(&prefix).unwrap().to_string();
    assert!(
        token.starts_with(&format!("{:x}", std::process::id())),
        "{token}"
    );
    let other = Session::connect_to(own.engine().endpoint()).await.unwrap();
    assert_ne!(own.namespace(), other.namespace());
    // No namespace is another's prefix (teardown and gc select by `NAMESPACE-`).
    assert!(!other
        .namespace()
        .starts_with(&format!("{}-", own.namespace())));
    let mut child = common::child_command("namespace_of_a_child", "namespace")
        .env("SEAWORTHY_SESSION", &run)
        .env("SEAWORTHY_REAPER", "off")
        .spawn()
        .unwrap();
    let child_pid = child.id();
    let ids = common::read_ids(&mut child);
    assert!(child.wait().unwrap().success());
    let child_namespace = &ids[0];
    assert!(child_namespace.starts_with(&prefix), "{child_namespace}");
    assert_ne!(child_namespace, own.namespace());
    assert!(
        child_namespace[prefix.len()..].starts_with(&format!("{child_pid:x}")),
        "{child_namespace}"
    );
    assert!(other.teardown().await.is_empty());
}

/// The child side of `each_process_and_session_of_a_run_has_its_own_namespace`.
#[tokio::test]
#[ignore = "run as a child process by the tests of this file"]
async fn namespace_of_a_child() {
    if std::env::var("SW_CHILD").as_deref() != Ok("namespace") {
        return;
    }
    let session = Session::global().await.unwrap();
    println!("ID={}", session.namespace());
}
