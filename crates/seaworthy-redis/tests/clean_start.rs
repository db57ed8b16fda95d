//! Tests start clean by construction: a test that dirties the shared Redis and then fails hands
//! nothing to the next one, in either order; and an isolated test keeps its keys while another
//! test waits to clean the whole server.

use std::time::Duration;

use redis::AsyncCommands;
use seaworthy::{Isolated, Shared};
use seaworthy_redis::{Redis, RedisFixture};

static CACHE: Shared<Redis> = Shared::per_run(Redis::new);

async fn dirty(cache: &RedisFixture) {
    let mut conn = cache.connection_manager();
    let _: () = conn.set("left", "behind").await.unwrap();
    let mut db3 = cache.connection_manager_for(3).await.unwrap();
    let _: () = db3.set("in-db-3", 1).await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut conn)
        .await
        .unwrap();
}

async fn assert_baseline(cache: &RedisFixture) -> anyhow::Result<()> {
    for db in 0..cache.databases() {
        let keys = cache.keys("*", db).await?;
        anyhow::ensure!(keys.is_empty(), "db {db} holds {keys:?}");
    }
    let policy = cache.config("maxmemory-policy").await?;
    anyhow::ensure!(
        policy.get("maxmemory-policy") == cache.baseline_config().get("maxmemory-policy"),
        "maxmemory-policy is {policy:?}"
    );
    Ok(())
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn redis_1_dirties_then_panics(cache: &RedisFixture) {
    dirty(cache).await;
    panic!("deliberately, after dirtying the fixture");
}

#[seaworthy::test]
async fn redis_2_starts_at_the_baseline(cache: &RedisFixture) -> anyhow::Result<()> {
    assert_baseline(cache).await
}

#[seaworthy::test]
async fn redis_3_starts_at_the_baseline(cache: &RedisFixture) -> anyhow::Result<()> {
    assert_baseline(cache).await
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn redis_4_dirties_then_panics(cache: &RedisFixture) {
    dirty(cache).await;
    panic!("deliberately, after dirtying the fixture");
}

#[seaworthy::test]
async fn an_isolated_parameter_is_a_database_of_its_own(
    cache: &Isolated<RedisFixture>,
) -> anyhow::Result<()> {
    let mut conn = cache.connection_manager();
    let _: () = conn.set(cache.key("mine"), 1).await?;
    assert_eq!(cache.keys("*").await?, ["mine"]);
    Ok(())
}

/// Before `Shared::isolated`, the documented `REDIS.get().await?.isolate().await?` let go of
/// the shared hold at the end of the statement: a test cleaning the whole server (FLUSHALL) ran
/// in the middle of the isolated test and wiped its keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_test_keeps_its_keys_while_another_test_waits_to_clean() -> anyhow::Result<()> {
    static REDIS: Shared<Redis> = Shared::per_process(Redis::new);
    let isolated = REDIS.isolated().await?;
    let mut conn = isolated.connection_manager();
    let _: () = conn.set(isolated.key("mine"), "kept").await?;
    let cleaner = tokio::spawn(async {
        let whole = REDIS.fresh().await?; // cleans the whole server at hand-out
        anyhow::Ok(whole.keys("*", 0).await?.len())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let value: Option<String> = conn.get(isolated.key("mine")).await?;
    assert_eq!(
        value.as_deref(),
        Some("kept"),
        "another test cleaned under the isolated one"
    );
    assert!(
        !cleaner.is_finished(),
        "the cleaner did not wait for the isolated test"
    );
    drop(isolated);
    let left = tokio::time::timeout(Duration::from_secs(30), cleaner).await???;
    assert_eq!(left, 0);
    Ok(())
}
