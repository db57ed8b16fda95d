//! `docker commit` snapshots with volume data, restore keeping name, alias and host port.

mod common;

use std::time::Duration;

use common::{sleeper, BUSYBOX};
use seaworthy::{
    Consistency, ContainerDefinition, Exec, Fixture, FixtureDefinition, MountSource, MountSpec,
    SnapshotFixture, SnapshotOptions, Wait,
};

fn postgres() -> ContainerDefinition {
    ContainerDefinition::new("seaworthy-test/postgres")
        .with_env("POSTGRES_PASSWORD", "secret")
        .with_port(5432)
        // Not "the ready line twice": that holds on the first start only (the temporary server of
        // initdb logs it too), not when a restored container starts on existing data. TCP on 5432
        // accepts only once the final server listens.
        .with_wait(Wait::tcp(5432))
        .with_startup_timeout(Duration::from_secs(90))
}

/// Runs `sql`; while PostgreSQL is still recovering (it listens on 5432 before it accepts
/// queries, so the TCP wait can pass first after a restore of a crash-consistent snapshot),
/// tries again, for up to 60 s.
async fn psql(c: &seaworthy::Container, sql: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = c
            .exec(
                Exec::new(["psql", "-U", "postgres", "-tA", "-c", sql]).env("PGPASSWORD", "secret"),
            )
            .await
            .unwrap();
        // Not yet (or not on every socket): still starting, or the Unix socket, which the
        // server creates after its TCP one, is not there yet.
        let err = out.stderr_text();
        if !out.success()
            && (err.contains("the database system is starting up")
                || err.contains("could not connect to server")
                || err.contains("connection to server on socket"))
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert!(out.success(), "{sql}: {}", out.stderr_text());
        return out.stdout_text().trim().to_string();
    }
}

#[tokio::test]
async fn a_snapshot_restores_the_data_in_the_images_volume() {
    let pg = postgres().start().await.unwrap();
    // The image declares VOLUME /var/lib/postgresql/data: commit alone would not capture it.
    let mounts = pg.inspect().await.unwrap().mounts.unwrap();
    assert!(mounts
        .iter()
        .any(|m| m.destination.as_deref() == Some("/var/lib/postgresql/data")));
    psql(
        &pg,
        "CREATE TABLE t (v int); INSERT INTO t SELECT generate_series(1, 1000)",
    )
    .await;
    let port = pg.host_port(5432).unwrap();
    let snapshot = pg.snapshot("thousand-rows").await.unwrap();
    assert_eq!(snapshot.volumes.len(), 1);
    assert!(
        snapshot.volumes[0].bytes > 1_000_000,
        "{:?}",
        snapshot.volumes
    );
    psql(&pg, "DELETE FROM t; CREATE TABLE later (x int)").await;
    assert_eq!(psql(&pg, "SELECT count(*) FROM t").await, "0");
    let old_id = pg.id();
    pg.restore(&snapshot).await.unwrap();
    assert_ne!(pg.id(), old_id, "a restore makes a new container");
    assert_eq!(pg.host_port(5432).unwrap(), port, "the host port is kept");
    assert_eq!(psql(&pg, "SELECT count(*) FROM t").await, "1000");
    assert_eq!(psql(&pg, "SELECT to_regclass('later') IS NULL").await, "t");
}

/// PostgreSQL as tests run it, durability off, with its WAL writer slowed from 200 ms to 10 s: an
/// acknowledged commit then stays in memory long enough for every snapshot taken right after it
/// to miss it, unless the snapshot flush (`CHECKPOINT`) writes it out first.
fn postgres_durability_off() -> ContainerDefinition {
    seaworthy_testkit::postgres::durability_off(postgres(), &["wal_writer_delay=10000"])
}

#[tokio::test]
async fn a_snapshot_right_after_a_load_and_checkpoint_restores_every_row() {
    let pg = postgres_durability_off().start().await.unwrap();
    // One `psql -c`, one transaction: its CHECKPOINT runs before its commit, whose WAL the server
    // still holds in memory when psql returns (synchronous_commit=off).
    psql(
        &pg,
        "CREATE TABLE rows (id bigint PRIMARY KEY, payload text); \
         INSERT INTO rows SELECT g, md5(g::text) FROM generate_series(1, 10000) g; CHECKPOINT",
    )
    .await;
    let snapshot = pg.snapshot("loaded").await.unwrap();
    let damage = "DELETE FROM rows WHERE id <= 1000; CREATE TABLE scratch (id int)";
    let check =
        "SELECT count(*) || ' rows, scratch gone: ' || (to_regclass('scratch') IS NULL) FROM rows";
    psql(&pg, damage).await;
    pg.restore(&snapshot).await.unwrap();
    assert_eq!(
        psql(&pg, check).await,
        "10000 rows, scratch gone: true",
        "after a restore"
    );
    pg.enable_standby(&snapshot).await.unwrap();
    pg.wait_for_standby().await.unwrap();
    psql(&pg, damage).await;
    pg.restore(&snapshot).await.unwrap();
    assert_eq!(
        psql(&pg, check).await,
        "10000 rows, scratch gone: true",
        "after a swap to the standby"
    );
}

#[tokio::test]
async fn a_failing_snapshot_flush_fails_the_snapshot_and_leaves_the_container_running() {
    let c = sleeper()
        .with_snapshot_flush(Exec::shell("echo cannot flush >&2; exit 3"))
        .start()
        .await
        .unwrap();
    let err = c.snapshot("unflushed").await.unwrap_err().to_string();
    assert!(
        err.contains(c.name())
            && err.contains("snapshot flush `sh -c echo cannot flush >&2; exit 3` exited with 3")
            && err.ends_with("cannot flush"),
        "{err}"
    );
    let state = c.inspect().await.unwrap().state.unwrap();
    assert_eq!(
        (state.running, state.paused),
        (Some(true), Some(false)),
        "running, not paused"
    );
}

#[tokio::test]
async fn restore_keeps_the_name_alias_and_host_port() {
    let web = ContainerDefinition::new(BUSYBOX)
        .with_name("snapweb")
        .with_cmd([
            "sh",
            "-c",
            "mkdir -p /www && echo v1 > /www/v && exec httpd -f -p 80 -h /www",
        ])
        .with_port(80)
        .with_wait(Wait::http(80, "/v"))
        .start()
        .await
        .unwrap();
    let client = sleeper().start().await.unwrap();
    let (name, port) = (web.name().to_string(), web.host_port(80).unwrap());
    let snapshot = web.snapshot("v1").await.unwrap();
    web.write_file("/www/v", "v2\n", 0o644).await.unwrap();
    let wget = || Exec::new(["wget", "-q", "-O", "-", "http://snapweb/v"]);
    assert_eq!(client.exec(wget()).await.unwrap().stdout_text(), "v2\n");
    web.restore(&snapshot).await.unwrap();
    assert_eq!(web.name(), name);
    assert_eq!(web.host_port(80).unwrap(), port);
    let info = web.inspect().await.unwrap();
    assert_eq!(info.name.unwrap().trim_start_matches('/'), name);
    // Reached by its alias from another container, and on the same host port from the host.
    assert_eq!(client.exec(wget()).await.unwrap().stdout_text(), "v1\n");
    let body = reqwest_get(&format!("http://127.0.0.1:{port}/v")).await;
    assert_eq!(body, "v1\n");
    // The container it replaced stepped aside and is removed in the background: gone once the
    // session's background removals are done.
    let session = web.session().clone();
    let settled = tokio::task::spawn_blocking(move || {
        session.wait_for_background_removals(Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert!(settled, "background removals still running after 60 s");
    let left = web
        .session()
        .engine()
        .docker()
        .list_containers(Some(
            seaworthy::bollard::query_parameters::ListContainersOptions {
                all: true,
                filters: Some(std::collections::HashMap::from([(
                    "name".to_string(),
                    vec![format!("{name}-retired")],
                )])),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert!(left.is_empty(), "the replaced container is left: {left:?}");
}

async fn reqwest_get(url: &str) -> String {
    seaworthy::reqwest::get(url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn tmpfs_and_named_volume_data_are_part_of_the_snapshot() {
    let c = sleeper()
        .with_tmpfs("/fast", None)
        .with_mount("snapdata:/data")
        .start()
        .await
        .unwrap();
    c.exec(Exec::shell(
        "echo in-tmpfs > /fast/f && echo in-volume > /data/f",
    ))
    .await
    .unwrap();
    let snapshot = c.snapshot("both").await.unwrap();
    assert_eq!(snapshot.volumes.len(), 2, "{:?}", snapshot.volumes);
    c.exec(Exec::shell("rm /fast/f /data/f && echo junk > /data/junk"))
        .await
        .unwrap();
    c.restore(&snapshot).await.unwrap();
    let out = c
        .exec(Exec::shell("cat /fast/f /data/f; ls /data"))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "in-tmpfs\nin-volume\nf\n");
}

#[tokio::test]
async fn a_stopped_snapshot_shuts_down_cleanly_and_comes_back() {
    let c = sleeper().with_port(80).start().await.unwrap();
    let port = c.host_port(80).unwrap();
    c.write_file("/state", "before\n", 0o644).await.unwrap();
    let snapshot = c
        .snapshot_with(
            "clean-shutdown",
            SnapshotOptions {
                consistency: Consistency::Stopped,
                keep: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(snapshot.consistency, Consistency::Stopped);
    assert!(c.is_running().await.unwrap(), "back up after the snapshot");
    assert_eq!(c.host_port(80).unwrap(), port);
    assert_eq!(c.read_file_text("/state").await.unwrap(), "before\n");
}

#[tokio::test]
async fn snapshot_images_are_labelled_and_removed_with_the_session() {
    let session = common::own_session().await;
    let c = sleeper().start_in(&session).await.unwrap();
    let snapshot = c.snapshot("labelled").await.unwrap();
    let docker = session.engine().docker();
    let image = docker.inspect_image(&snapshot.image_id).await.unwrap();
    let labels = image.config.unwrap().labels.unwrap();
    assert_eq!(labels["io.seaworthy.managed"], "true");
    assert_eq!(labels["io.seaworthy.session"], session.run_id());
    assert!(snapshot.volumes.iter().all(|v| v.archive.exists()));
    drop(c);
    assert!(session.teardown().await.is_empty());
    assert!(
        docker.inspect_image(&snapshot.image_id).await.is_err(),
        "the snapshot image outlived its session"
    );
}

#[tokio::test]
async fn a_generic_fixture_is_cleaned_by_restoring_its_baseline() {
    let fixture = SnapshotFixture::new(sleeper().with_mount_spec(MountSpec {
        source: MountSource::Anonymous,
        target: "/var/data".into(),
        read_only: false,
    }))
    .start()
    .await
    .unwrap();
    let c = fixture.container();
    c.exec(Exec::shell(
        "echo dirty > /var/data/x && echo dirty > /root-file",
    ))
    .await
    .unwrap();
    fixture.clean().await.unwrap();
    assert!(!c.file_exists("/var/data/x").await.unwrap());
    assert!(!c.file_exists("/root-file").await.unwrap());
    assert_eq!(fixture.kind(), "busybox");
}

#[tokio::test]
async fn a_warm_standby_makes_restore_a_swap_keeping_port_alias_and_data() {
    let web = ContainerDefinition::new(BUSYBOX)
        .with_name("standbyweb")
        .with_cmd([
            "sh",
            "-c",
            "mkdir -p /www && echo base > /www/v && exec httpd -f -p 80 -h /www",
        ])
        .with_port(80)
        .with_wait(Wait::http(80, "/v"))
        .start()
        .await
        .unwrap();
    let client = sleeper().start().await.unwrap();
    let snapshot = web.snapshot("base").await.unwrap();
    web.enable_standby(&snapshot).await.unwrap();
    let port = web.host_port(80).unwrap();
    web.wait_for_standby().await.unwrap();
    for round in 0..2 {
        web.write_file("/www/v", format!("dirty {round}\n"), 0o644)
            .await
            .unwrap();
        assert_eq!(
            reqwest_get(&format!("http://127.0.0.1:{port}/v")).await,
            format!("dirty {round}\n")
        );
        let before = web.id();
        web.restore(&snapshot).await.unwrap();
        assert_ne!(web.id(), before, "the standby took over");
        assert_eq!(web.host_port(80).unwrap(), port, "the proxy's port stays");
        assert_eq!(
            reqwest_get(&format!("http://127.0.0.1:{port}/v")).await,
            "base\n"
        );
        let out = client
            .exec(Exec::new(["wget", "-q", "-O", "-", "http://standbyweb/v"]))
            .await
            .unwrap();
        assert_eq!(
            out.stdout_text(),
            "base\n",
            "the alias moved to the standby: {}",
            out.stderr_text()
        );
        assert_eq!(
            web.inspect()
                .await
                .unwrap()
                .name
                .unwrap()
                .trim_start_matches('/'),
            web.name()
        );
        web.wait_for_standby().await.unwrap();
    }
}

#[tokio::test]
async fn a_snapshot_fixture_with_standby_cleans_by_swapping() {
    let fixture = SnapshotFixture::new(sleeper().with_port(80))
        .with_standby(true)
        .start()
        .await
        .unwrap();
    let c = fixture.container();
    c.wait_for_standby().await.unwrap();
    let port = c.host_port(80).unwrap();
    c.write_file("/tmp/dirty", "x", 0o644).await.unwrap();
    fixture.clean().await.unwrap();
    assert!(!c.file_exists("/tmp/dirty").await.unwrap());
    assert_eq!(c.host_port(80).unwrap(), port);
}
