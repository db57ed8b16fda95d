//! Isolation against a real Redis: parallel tests, each in a database of its own, in one container.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use redis::AsyncCommands;
use seaworthy::{FixtureDefinition, Isolation, Shared};
use seaworthy_redis::Redis;

/// Shared by every test process of the run: under nextest (a process per test) the tests below
/// take the databases of their slots in one container.
static REDIS: Shared<Redis> = Shared::per_run(Redis::new);
/// This process's own, for the test that runs eight tests in one process.
static REDIS_OF_THIS_PROCESS: Shared<Redis> = Shared::per_process(Redis::new);

/// What one test does: write the same key names as every other test, with its own values, then
/// check that it reads back only its own.
async fn use_a_namespace(
    fixture: &'static Shared<Redis>,
    id: usize,
    barrier: Option<Arc<Barrier>>,
) -> anyhow::Result<u32> {
    let shared = fixture.get().await?;
    let redis = shared.isolate().await?;
    let mut conn = redis.connection_manager();
    assert!(
        redis.keys("*").await?.is_empty(),
        "test {id} starts with an empty namespace"
    );
    for k in 0..100 {
        let _: () = conn.set(redis.key(&format!("key:{k}")), id).await?;
    }
    if let Some(barrier) = barrier {
        // Every test has written before any reads (or flushes).
        tokio::task::spawn_blocking(move || barrier.wait()).await?;
    } else {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if id == 10 && redis.has_own_database() {
        // A test that empties its whole database touches nobody else's.
        let _: () = redis::cmd("FLUSHDB").query_async(&mut conn).await?;
        let _: () = conn.set(redis.key("key:0"), id).await?;
        assert_eq!(redis.keys("*").await?, ["key:0"]);
        return Ok(redis.db());
    }
    let keys = redis.keys("*").await?;
    assert_eq!(keys.len(), 100, "test {id} sees its 100 keys and no others");
    for k in 0..100 {
        let value: usize = conn.get(redis.key(&format!("key:{k}"))).await?;
        assert_eq!(value, id, "test {id} reads its own value of key:{k}");
    }
    Ok(redis.db())
}

macro_rules! isolated_tests {
    ($($name:ident = $id:expr),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() -> anyhow::Result<()> {
            use_a_namespace(&REDIS, $id, None).await.map(|_| ())
        }
    )*};
}

isolated_tests!(
    isolated_test_1 = 1,
    isolated_test_2 = 2,
    isolated_test_3 = 3,
    isolated_test_4 = 4,
    isolated_test_5 = 5,
    isolated_test_6 = 6,
    isolated_test_7 = 7,
    isolated_test_8 = 8,
);

/// Eight tests at once, each on its own thread and runtime (as `#[tokio::test]`s are), all
/// holding their namespace at the same time.
#[test]
fn eight_concurrent_tests_share_one_container_without_interfering() {
    // One process, eight tests: the in-process pool (nextest's slot is per process).
    std::env::remove_var("NEXTEST_TEST_GLOBAL_SLOT");
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (10..18)
        .map(|id| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(use_a_namespace(&REDIS_OF_THIS_PROCESS, id, Some(barrier)))
            })
        })
        .collect();
    let mut dbs: Vec<u32> = threads
        .into_iter()
        .map(|t| t.join().expect("test thread").expect("test"))
        .collect();
    dbs.sort();
    dbs.dedup();
    assert_eq!(dbs.len(), 8, "eight different databases: {dbs:?}");
    assert!(!dbs.contains(&0), "database 0 is never handed out");
}

#[tokio::test]
async fn isolation_waits_for_a_free_database_and_hands_it_out_empty() -> anyhow::Result<()> {
    std::env::remove_var("NEXTEST_TEST_GLOBAL_SLOT");
    let redis = Redis::new().with_databases(3).start().await?;
    assert_eq!(redis.free_isolated_databases(), 2);
    let first = redis.isolate().await?;
    let second = redis.isolate().await?;
    assert_ne!(first.db(), second.db());
    assert_eq!(
        first.connection_info().path.as_deref(),
        Some(first.db().to_string().as_str())
    );
    let mut conn = first.connection_manager();
    let _: () = conn.set("left:behind", 1).await?;
    let db = first.db();

    // Every database is taken: the third test waits.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), redis.isolate())
            .await
            .is_err()
    );
    // It gets the first database back as soon as that is released.
    let release_later = async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(first);
    };
    let (third, ()) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(redis.isolate(), release_later)
    })
    .await?;
    let third = third?;
    assert_eq!(third.db(), db, "the released database is handed out again");
    assert!(
        third.keys("*").await?.is_empty(),
        "and it was flushed first"
    );
    assert!(redis.keys("*", db).await?.is_empty());
    drop((second, third));
    for _ in 0..100 {
        if redis.free_isolated_databases() == 2 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the databases were not returned to the pool")
}
