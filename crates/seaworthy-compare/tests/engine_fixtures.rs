//! `clean()` of each native fixture on each kind of endpoint (the core's `engines` tests run the
//! rest of the smoke set there): the shared engine's Unix socket, the TLS engine, the shared
//! engine over SSH, and Podman's API (all started by `bash .ci/engines start`). Each fixture gets
//! state a test would leave (a Redis key, a PostgreSQL table, a RabbitMQ queue), is cleaned, and
//! must be back to its baseline; then nothing of the session is left on that engine.

use std::path::Path;

use redis::AsyncCommands;
use seaworthy::{Engine, FixtureDefinition, Session};
use seaworthy_postgres::Postgres;
use seaworthy_rabbitmq::RabbitMq;
use seaworthy_redis::Redis;

async fn connect(
    fut: impl std::future::Future<Output = seaworthy::Result<Engine>> + Send + 'static,
) -> Engine {
    seaworthy::runtime::run(fut)
        .await
        .unwrap_or_else(|e| panic!("{e} (bash .ci/engines start sets the endpoints up)"))
}

async fn clean_each_fixture(engine: Engine) -> anyhow::Result<()> {
    let session = Session::with_engine(engine);
    let endpoint = session.engine().endpoint().to_string();

    let redis = Redis::new().start_in(&session).await?;
    let mut conn = redis.connection_manager();
    let _: () = conn.set("left-by-a-test", "1").await?;
    seaworthy::Fixture::clean(&redis).await?;
    assert!(
        redis.keys("*", 0).await?.is_empty(),
        "Redis on {endpoint} kept keys"
    );

    let pg = Postgres::new().start_in(&session).await?;
    pg.client()
        .await?
        .batch_execute("CREATE TABLE left_by_a_test (id int)")
        .await?;
    seaworthy::Fixture::clean(&pg).await?;
    let tables = pg.list_tables().await?;
    assert!(
        tables.iter().all(|t| t.name != "left_by_a_test"),
        "PostgreSQL on {endpoint} kept {tables:?}"
    );

    let rabbit = RabbitMq::new().start_in(&session).await?;
    rabbit
        .management()
        .put(
            "/api/queues/%2F/left-by-a-test",
            &serde_json::json!({"durable": true}),
        )
        .await?;
    assert!(rabbit
        .queues("/")
        .await?
        .iter()
        .any(|q| q.name == "left-by-a-test"));
    seaworthy::Fixture::clean(&rabbit).await?;
    let queues = rabbit.queues("/").await?;
    assert!(
        queues.iter().all(|q| q.name != "left-by-a-test"),
        "RabbitMQ on {endpoint} kept {queues:?}"
    );

    drop((redis, pg, rabbit));
    let errors = session.teardown().await;
    assert!(errors.is_empty(), "teardown on {endpoint}: {errors:?}");
    for kind in [
        seaworthy::ResourceKind::Container,
        seaworthy::ResourceKind::Network,
        seaworthy::ResourceKind::Volume,
        seaworthy::ResourceKind::Image,
    ] {
        assert_eq!(session.live_count(kind), 0, "{kind:?} left on {endpoint}");
    }
    Ok(())
}

#[tokio::test]
async fn unix_socket() -> anyhow::Result<()> {
    clean_each_fixture(connect(Engine::connect_to("unix:///var/run/docker.sock")).await).await
}

#[tokio::test]
async fn tls() -> anyhow::Result<()> {
    let engine = connect(async {
        Engine::connect_with_tls(
            "tcp://127.0.0.1:2376",
            Path::new("/var/lib/seaworthy-ci/tls/client"),
        )
        .await
    })
    .await;
    clean_each_fixture(engine).await
}

#[tokio::test]
async fn ssh() -> anyhow::Result<()> {
    let engine = connect(async {
        Engine::connect_with_ssh_key(
            "ssh://root@127.0.0.2",
            Path::new("/var/lib/seaworthy-ci/ssh/id_ed25519"),
        )
        .await
    })
    .await;
    clean_each_fixture(engine).await
}

#[tokio::test]
async fn podman() -> anyhow::Result<()> {
    clean_each_fixture(connect(Engine::connect_to("unix:///run/podman/podman.sock")).await).await
}
