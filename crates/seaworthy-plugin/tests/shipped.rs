//! The shipped plugins against their real containers: started, made ready, written to,
//! cleaned, and verified clean — and used like native fixtures (per test, shared per process).

mod common;

use seaworthy::{Exec, Fixture, FixtureDefinition, Isolation, Shared};
use seaworthy_plugin::{PluginFixtureDefinition, LABEL_PLUGIN};

fn memcached_definition() -> PluginFixtureDefinition {
    common::host()
        .load("memcached")
        .expect("the memcached plugin loads")
        .fixture([("memory-mb", "16")])
        .expect("a memcached definition")
}

static SHARED_MEMCACHED: Shared<PluginFixtureDefinition> =
    Shared::per_process(memcached_definition);
static RUN_MEMCACHED: Shared<PluginFixtureDefinition> = Shared::per_run(memcached_definition);

#[tokio::test]
async fn memcached_plugin_cleans_its_real_container() {
    let fixture = memcached_definition()
        .start()
        .await
        .expect("memcached starts and is ready");
    assert_eq!(fixture.kind(), "memcached");
    let connection = fixture.connection();
    assert_eq!(connection.scheme, "memcached");
    assert_eq!(
        connection.port,
        fixture.container().host_port(11211).unwrap()
    );
    let address = format!("{}:{}", connection.host, connection.port);
    let labels = common::labels(fixture.container()).await;
    assert_eq!(
        labels.get(LABEL_PLUGIN).map(String::as_str),
        Some("memcached")
    );
    assert_eq!(
        labels.get("io.seaworthy.managed").map(String::as_str),
        Some("true")
    );

    let stored = common::memcached(&address, "set greeting 0 0 5\r\nhello\r\n", |l| {
        l == "STORED"
    })
    .await;
    assert_eq!(stored, "STORED\r\n");
    let got = common::memcached(&address, "get greeting\r\n", |l| l == "END").await;
    assert!(got.contains("hello"), "{got:?}");

    fixture.clean().await.expect("the plugin's clean");
    let got = common::memcached(&address, "get greeting\r\n", |l| l == "END").await;
    assert_eq!(got, "END\r\n", "the key survived clean()");
    // Clean twice in a row (the plugin keeps its connection), and the cache still takes writes.
    fixture.clean().await.expect("a second clean");
    let stored = common::memcached(&address, "set after 0 0 1\r\nx\r\n", |l| l == "STORED").await;
    assert_eq!(stored, "STORED\r\n");
    let got = common::memcached(&address, "get after\r\n", |l| l == "END").await;
    assert!(
        got.contains("VALUE after"),
        "a write after clean() was lost: {got:?}"
    );
    assert!(fixture.check_ready().await.unwrap());
}

#[tokio::test]
async fn memcached_plugin_is_shared_per_process_like_a_native_fixture() {
    for round in 0..2 {
        let fixture = SHARED_MEMCACHED.get().await.expect("the shared fixture");
        let address = fixture.container().address(11211).unwrap();
        let got = common::memcached(&address, "get shared\r\n", |l| l == "END").await;
        assert_eq!(
            got, "END\r\n",
            "round {round} saw the previous round's data"
        );
        common::memcached(&address, "set shared 0 0 1\r\n1\r\n", |l| l == "STORED").await;
        fixture.clean().await.expect("clean between tests");
    }
    let first = SHARED_MEMCACHED.get().await.unwrap().container().id();
    let second = SHARED_MEMCACHED.get().await.unwrap().container().id();
    assert_eq!(first, second, "per-process sharing reuses the container");
}

#[tokio::test]
async fn memcached_plugin_refuses_a_bad_configuration_naming_the_key() {
    let error = common::host()
        .load("memcached")
        .unwrap()
        .fixture([("memory-mb", "lots")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("plugin `memcached`"), "{error}");
    assert!(error.contains("memory-mb"), "{error}");
    let error = common::host()
        .load("memcached")
        .unwrap()
        .fixture([("colour", "blue")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown key `colour`"), "{error}");
}

async fn redis_cli(
    fixture: &seaworthy_plugin::PluginFixture,
    db: &str,
    command: &[&str],
) -> String {
    let mut argv = vec!["redis-cli", "-n", db];
    argv.extend_from_slice(command);
    let out = fixture
        .container()
        .exec(Exec::new(argv))
        .await
        .expect("redis-cli");
    assert!(out.success(), "{out:?}");
    out.stdout_text().trim().to_string()
}

#[tokio::test]
async fn redis_plugin_cleans_through_exec_and_isolates_by_database() {
    let definition = common::host()
        .load("redis")
        .unwrap()
        .fixture([("databases", "4")])
        .unwrap();
    let fixture = definition.start().await.expect("redis starts and is ready");
    assert_eq!(fixture.connection().scheme, "redis");
    assert_eq!(fixture.connection().path.as_deref(), Some("0"));

    // Written through the published port, like a client would.
    let address = fixture.container().address(6379).unwrap();
    let answer = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&address).await.unwrap();
        s.write_all(b"SET k v\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(answer, "+OK\r\n");
    redis_cli(&fixture, "2", &["SET", "other", "db"]).await;
    assert_eq!(redis_cli(&fixture, "0", &["DBSIZE"]).await, "1");

    fixture.clean().await.expect("FLUSHALL through the plugin");
    assert_eq!(redis_cli(&fixture, "0", &["DBSIZE"]).await, "0");
    assert_eq!(redis_cli(&fixture, "2", &["DBSIZE"]).await, "0");

    assert_eq!(fixture.isolation_slots(), 3);
    let a = fixture.isolate().await.expect("a database");
    let b = fixture.isolate().await.expect("another database");
    assert_ne!(a.namespace(), b.namespace());
    assert_eq!(a.connection().path.as_deref(), Some(a.namespace()));
    redis_cli(&fixture, a.namespace(), &["SET", "mine", "1"]).await;
    let db = a.namespace().to_string();
    drop(a);
    // Released in the background: the database is flushed before it is handed out again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while redis_cli(&fixture, &db, &["DBSIZE"]).await != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the released database was not flushed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn memcached_plugin_does_not_support_isolation() {
    let fixture = SHARED_MEMCACHED.get().await.unwrap();
    let error = fixture.isolate().await.unwrap_err().to_string();
    assert!(
        error.contains("plugin `memcached` does not support isolation"),
        "{error}"
    );
}

#[tokio::test]
async fn probe_plugin_reaches_every_host_call_of_its_own_container() {
    let fixture = common::host()
        .load("probe")
        .unwrap()
        .fixture(Vec::<(String, String)>::new())
        .unwrap()
        .start()
        .await
        .expect("nginx");
    fixture
        .clean()
        .await
        .expect("every host call answers as documented");
    assert_eq!(fixture.connection().scheme, "http");
}

#[tokio::test]
async fn memcached_plugin_is_shared_per_run_like_a_native_fixture() {
    let fixture = RUN_MEMCACHED.get().await.expect("the per-run fixture");
    let labels = common::labels(fixture.container()).await;
    assert_eq!(
        labels
            .get(seaworthy::session::LABEL_OWNER)
            .map(String::as_str),
        Some("run")
    );
    assert!(labels.contains_key(seaworthy::session::LABEL_FIXTURE));
    let address = fixture.container().address(11211).unwrap();
    common::memcached(&address, "set run 0 0 1\r\n1\r\n", |l| l == "STORED").await;
    fixture.clean().await.expect("clean");
    assert_eq!(
        common::memcached(&address, "get run\r\n", |l| l == "END").await,
        "END\r\n"
    );
    let id = fixture.container().id();
    drop(fixture);
    assert_eq!(
        RUN_MEMCACHED.get().await.unwrap().container().id(),
        id,
        "found again by its labels"
    );
    // This test plays the test runner: the run is over, remove what it shared.
    let session = seaworthy::Session::global().await.unwrap();
    let options = seaworthy::bollard::query_parameters::RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    session
        .engine()
        .docker()
        .remove_container(&id, Some(options))
        .await
        .expect("remove the run's container");
}
