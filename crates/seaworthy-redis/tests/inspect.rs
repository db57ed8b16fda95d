//! Inspection helpers and readiness against a real Redis.

use redis::AsyncCommands;
use seaworthy::{Fixture, FixtureDefinition};
use seaworthy_redis::Redis;

#[tokio::test]
async fn keys_info_and_config_describe_the_server() -> anyhow::Result<()> {
    let redis = Redis::new()
        .with_args(["--maxmemory", "64mb"])
        .start()
        .await?;
    assert_eq!(redis.kind(), "redis");
    assert!(redis.container().image().contains("redis"));

    let mut conn = redis.connection_manager();
    for key in ["user:2", "user:1", "order:1"] {
        let _: () = conn.set(key, 1).await?;
    }
    let mut db3 = redis.connection_manager_for(3).await?;
    let _: () = db3.set("user:9", 1).await?;

    assert_eq!(redis.keys("user:*", 0).await?, ["user:1", "user:2"]);
    assert_eq!(redis.keys("*", 0).await?, ["order:1", "user:1", "user:2"]);
    assert_eq!(redis.keys("*", 3).await?, ["user:9"]);
    assert!(redis.keys("nothing:*", 0).await?.is_empty());

    let info = redis.info().await?;
    assert_eq!(info.major_version(), Some(7));
    assert_eq!(info.version(), Some(redis.version()));
    assert_eq!(info.keyspace(), [(0, 3), (3, 1)].into_iter().collect());
    let clients = redis.info_section("clients").await?;
    assert!(clients.get("connected_clients").is_some());
    assert!(clients.get("redis_version").is_none(), "one section only");

    assert_eq!(
        redis
            .config("maxmemory")
            .await?
            .get("maxmemory")
            .map(String::as_str),
        Some("67108864")
    );
    assert_eq!(redis.databases(), 16);

    let info = redis.connection();
    assert_eq!(
        info.to_string(),
        format!("redis://{}:{}/0", info.host, info.port)
    );
    Ok(())
}
