//! Init steps and the baseline cache against a real Redis: the seed (keys of every type with
//! their time to live, in two databases; a function; a user; a configuration parameter) is the
//! baseline `clean()` returns to; with the cache on, it is kept in an image that the next start
//! uses without running the init steps again, and a changed seed file builds a new image.
//!
//! Each cache test keeps its images in a namespace of its own, removed when it ends, also when it
//! fails (the suite's leak check counts every image labelled `io.seaworthy.managed=true`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use redis::AsyncCommands;
use seaworthy::baseline_cache::BaselineCache;
use seaworthy::{Fixture, FixtureDefinition, Isolation};
use seaworthy_redis::{Redis, RedisFixture};
use seaworthy_testkit::{image_of, CacheNamespace};

const SEED: &str = r#"
# the catalogue
SET greeting "hello world"
HSET user:1 name 'Ada Lovelace' born 1815
RPUSH queue a b c
SADD tags x y
ZADD scores 1 one 2 two
SET session:abc token PX 3600000
CONFIG SET maxmemory-policy allkeys-lru
ACL SETUSER reader on >secret ~* +@read
"#;

/// A definition seeded by `seed` (commands), a key in database 3 and a function (a closure that
/// counts its runs).
fn seeded(seed: Redis, runs: &Arc<AtomicUsize>) -> Redis {
    let runs = runs.clone();
    seed.with_init("db 3 and a function", move |ctx| {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            let mut conn = ctx.client.get_multiplexed_async_connection().await?;
            redis::cmd("SELECT").arg(3).query_async::<()>(&mut conn).await?;
            let _: () = conn.set("elsewhere", "db3").await?;
            redis::cmd("FUNCTION")
                .arg("LOAD")
                .arg("#!lua name=seedlib\nredis.register_function('answer', function() return 42 end)")
                .query_async::<String>(&mut conn)
                .await?;
            Ok(())
        }
    })
}

/// What a test checks of the seeded baseline: every key of database 0 with its type and
/// value, the key of database 3, the function, the user, the configuration parameter, and that
/// the key with a time to live has one.
async fn assert_seeded(redis: &RedisFixture) -> anyhow::Result<()> {
    let mut conn = redis.connection_manager();
    assert_eq!(
        redis.keys("*", 0).await?,
        [
            "greeting",
            "queue",
            "scores",
            "session:abc",
            "tags",
            "user:1"
        ]
    );
    assert_eq!(conn.get::<_, String>("greeting").await?, "hello world");
    let user: BTreeMap<String, String> = conn.hgetall("user:1").await?;
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(
        conn.lrange::<_, Vec<String>>("queue", 0, -1).await?,
        ["a", "b", "c"]
    );
    assert_eq!(conn.scard::<_, u32>("tags").await?, 2);
    assert_eq!(conn.zscore::<_, _, f64>("scores", "two").await?, 2.0);
    let ttl: i64 = conn.pttl("session:abc").await?;
    assert!(ttl > 3_000_000 && ttl <= 3_600_000, "time to live {ttl}");
    assert_eq!(conn.ttl::<_, i64>("greeting").await?, -1);
    assert_eq!(redis.keys("*", 3).await?, ["elsewhere"]);
    let answer: i64 = redis::cmd("FCALL")
        .arg("answer")
        .arg(0)
        .query_async(&mut conn)
        .await?;
    assert_eq!(answer, 42);
    let users: Vec<String> = redis::cmd("ACL")
        .arg("USERS")
        .query_async(&mut conn)
        .await?;
    assert_eq!(users, ["default", "reader"]);
    assert_eq!(
        redis.config("maxmemory-policy").await?["maxmemory-policy"],
        "allkeys-lru"
    );
    Ok(())
}

/// The seed is there after the start, and after a test's damage and `clean()`; isolation never
/// hands out the database the seed put a key in.
#[tokio::test]
async fn the_seed_is_the_baseline_clean_returns_to() -> anyhow::Result<()> {
    let runs = Arc::new(AtomicUsize::new(0));
    let redis = seeded(Redis::new().with_seed_commands(SEED), &runs)
        .with_baseline_cache(BaselineCache::off())
        .start()
        .await?;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_seeded(&redis).await?;

    let mut conn = redis.connection_manager();
    let _: () = conn.del(&["greeting", "queue"]).await?;
    let _: () = conn.hset("user:1", "name", "Grace").await?;
    let _: () = conn.persist("session:abc").await?;
    let _: () = conn.set("added", 1).await?;
    redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query_async::<()>(&mut conn)
        .await?;
    redis::cmd("ACL")
        .arg("DELUSER")
        .arg("reader")
        .query_async::<()>(&mut conn)
        .await?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query_async::<()>(&mut conn)
        .await?;
    let mut db3 = redis.connection_manager_for(3).await?;
    let _: () = db3.del("elsewhere").await?;
    redis.clean().await?;
    assert_seeded(&redis).await?;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "clean does not run init again"
    );

    let isolated = redis.isolate().await?;
    assert_ne!(isolated.db(), 3);
    Ok(())
}

/// A seed command the server refuses fails the start, naming its line.
#[tokio::test]
async fn a_refused_seed_command_names_its_line() -> anyhow::Result<()> {
    let err = Redis::new()
        .with_seed_commands("SET a 1\nNOSUCHCOMMAND x")
        .start()
        .await
        .unwrap_err();
    let text = seaworthy::kit::error_chain(&err);
    assert!(text.contains("line 2"), "{text}");
    Ok(())
}

/// With the cache on: the first start builds the image (init ran once), the next start uses it
/// without running init and has the whole seed (time to live, user and configuration put back
/// at hand-out), and a seed file changed in place builds a new image.
#[tokio::test]
async fn a_cached_seed_skips_init_and_a_changed_seed_builds_a_new_image() -> anyhow::Result<()> {
    let ns = CacheNamespace::new("redis");
    let file = std::env::temp_dir().join(format!("sw-{}.redis", ns.name));
    std::fs::write(&file, SEED)?;
    let runs = Arc::new(AtomicUsize::new(0));
    let definition = |runs: &Arc<AtomicUsize>| {
        seeded(Redis::new().with_seed_file(&file), runs)
            .with_baseline_cache(BaselineCache::on().with_namespace(&ns.name))
    };
    let first = definition(&runs).start().await?;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let images = ns.images().await?;
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(
        image_of(&first).await?,
        images[0].id,
        "started from the cache"
    );
    assert_seeded(&first).await?;
    drop(first);

    let second = definition(&runs).start().await?;
    assert_eq!(image_of(&second).await?, images[0].id);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "init skipped");
    assert_seeded(&second).await?;
    let mut conn = second.connection_manager();
    let _: () = conn.del("greeting").await?;
    second.clean().await?;
    assert_seeded(&second).await?;
    drop(second);

    std::fs::write(&file, SEED.replace("hello world", "hello again"))?;
    let third = definition(&runs).start().await?;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "a new key runs init");
    let mut conn = third.connection_manager();
    assert_eq!(conn.get::<_, String>("greeting").await?, "hello again");
    let images = ns.images().await?;
    assert_eq!(images.len(), 2, "{images:?}");
    assert_eq!(image_of(&third).await?, images[0].id, "the newest image");
    drop(third);
    let _ = std::fs::remove_file(&file);
    Ok(())
}
