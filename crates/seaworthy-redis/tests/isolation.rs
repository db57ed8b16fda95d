//! Isolation against a real Redis: parallel tests, each in a database of its own, in one container.

use seaworthy_testkit as common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use seaworthy::{ConnectionInfo, FixtureDefinition, Isolation, Shared};
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
    let mut dbs: Vec<u32> = common::run_on_threads(10..18, move |id| {
        use_a_namespace(&REDIS_OF_THIS_PROCESS, id, Some(barrier.clone()))
    });
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

/// The child test of [`nextest_slots_key_the_namespaces`], run with `NEXTEST_TEST_GLOBAL_SLOT`
/// set, as cargo-nextest runs a test: it takes the namespace of its slot in the run's container
/// (`REDIS`), writes ten keys whose values are its parameter, shows the parent where they are
/// (`ID=DB PREFIX HOST PORT`, `-` for no prefix), and once told to go on checks that it still
/// reads exactly its own, then waits for the namespace to be emptied when its guard drops.
#[tokio::test]
#[ignore = "a child process of nextest_slots_key_the_namespaces"]
async fn a_test_process_in_a_nextest_slot() -> anyhow::Result<()> {
    let Some(value) = common::param() else {
        return Ok(());
    };
    let shared = REDIS.get().await?;
    let redis = shared.isolate().await?;
    let mut conn = redis.connection_manager();
    anyhow::ensure!(
        redis.keys("*").await?.is_empty(),
        "the namespace of {value} is not empty at first"
    );
    for k in 0..10 {
        let _: () = conn.set(redis.key(&format!("key:{k}")), &value).await?;
    }
    let prefix = redis.prefix().to_string();
    let info = redis.connection_info();
    common::report(&[
        &redis.db().to_string(),
        if prefix.is_empty() { "-" } else { &prefix },
        &info.host,
        &info.port.to_string(),
    ]);
    common::wait_for_parent(CHILD_DEADLINE).await?;
    // The other slots wrote the same key names meanwhile.
    let keys = redis.keys("*").await?;
    anyhow::ensure!(keys.len() == 10, "{value} sees the keys {keys:?}");
    for k in 0..10 {
        let read: String = conn.get(redis.key(&format!("key:{k}"))).await?;
        anyhow::ensure!(read == value, "{value} reads {read} in key:{k}");
    }
    let db = redis.db();
    drop(redis);
    // Emptied in the background: wait for it before the process ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shared.keys(&format!("{prefix}*"), db).await?.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the namespace of {value} (database {db}, prefix {prefix:?}) was not emptied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// How long a child may take for each step (the first one starts the run's container).
const CHILD_DEADLINE: Duration = Duration::from_secs(60);

/// The databases of `Redis::new()`'s server.
const DATABASES: u32 = 16;

/// Under cargo-nextest, a test process takes the database of its slot,
/// `1 + NEXTEST_TEST_GLOBAL_SLOT`, and past the last database a key prefix in database 0; two
/// slots never see each other's keys. Three child processes, in slots 0, 1 and the last one,
/// share one container (a run of their own); this test looks into it from outside.
#[tokio::test]
async fn nextest_slots_key_the_namespaces() -> anyhow::Result<()> {
    let run = common::ChildRun::new();
    let last = DATABASES - 1;
    let slots = [0, 1, last];
    let mut children: Vec<_> = slots
        .iter()
        .map(|slot| {
            run.spawn(
                &format!("slot {slot}"),
                "a_test_process_in_a_nextest_slot",
                &format!("slot {slot}"),
                &[("NEXTEST_TEST_GLOBAL_SLOT", slot.to_string())],
            )
        })
        .collect();
    let mut reported = Vec::new();
    for child in &mut children {
        reported.push(child.read_ids(CHILD_DEADLINE).await);
    }
    let namespaces: Vec<(&str, &str)> = reported
        .iter()
        .map(|ids| (ids[0].as_str(), ids[1].as_str()))
        .collect();
    let prefix = format!("sw:slot{last}:0:");
    assert_eq!(
        namespaces,
        [("1", "-"), ("2", "-"), ("0", prefix.as_str())],
        "slot s takes database s + 1; past the last database, a prefix in database 0"
    );

    // Seen from outside while the three hold their namespaces: each has ten keys, all of them
    // carrying its own slot, and database 0 holds the prefixed slot's keys alone.
    let (host, port) = (reported[0][2].clone(), reported[0][3].parse()?);
    let mut connections = Vec::new();
    for (slot, (db, prefix)) in slots.iter().zip(&namespaces) {
        let url = ConnectionInfo::new("redis", host.clone(), port)
            .with_path(*db)
            .url();
        let mut conn = redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await?;
        let pattern = format!("{}*", prefix.trim_start_matches('-'));
        let keys: Vec<String> = conn.keys(&pattern).await?;
        assert_eq!(keys.len(), 10, "slot {slot}: {keys:?}");
        for key in keys {
            let value: String = conn.get(&key).await?;
            assert_eq!(value, format!("slot {slot}"), "{key} in database {db}");
        }
        let all: Vec<String> = conn.keys("*").await?;
        assert_eq!(all.len(), 10, "database {db} holds one slot's keys");
        connections.push((conn, pattern));
    }

    for child in &mut children {
        child.proceed().await;
    }
    for child in children {
        child.expect_success(CHILD_DEADLINE).await;
    }
    for (conn, pattern) in &mut connections {
        let keys: Vec<String> = conn.keys(pattern.as_str()).await?;
        assert!(keys.is_empty(), "{pattern} was emptied: {keys:?}");
    }
    run.remove().await
}

/// A guard dropped by a failing test (while its thread panics): with `keep` (the child below
/// runs with `SEAWORTHY_KEEP_ON_FAILURE=1`), its namespace stays as the test left it and out of
/// use; without, it is emptied and handed out again.
async fn a_failed_tests_namespace(keep: bool) -> anyhow::Result<()> {
    let redis = Redis::new().start().await?;
    let free = redis.free_isolated_databases();
    let guard = redis.isolate().await?;
    let (db, key) = (guard.db(), guard.key("left"));
    let mut conn = guard.connection_manager();
    let _: () = conn.set(&key, "by the failed test").await?;
    common::drop_in_a_failing_test(guard);
    let pattern = format!("{key}*");
    let kept = async {
        assert_eq!(redis.keys(&pattern, db).await?, [key.as_str()], "kept");
        assert_eq!(redis.free_isolated_databases(), free - usize::from(db != 0));
        Ok(())
    };
    let released = || async {
        Ok(redis.keys(&pattern, db).await?.is_empty() && redis.free_isolated_databases() == free)
    };
    common::assert_kept_or_released(
        keep,
        "the namespace",
        kept,
        released,
        Duration::from_secs(5),
    )
    .await
}

common::keep_on_failure_tests!(
    /// `SEAWORTHY_KEEP_ON_FAILURE=1` keeps the database of a failed test as it was left (as
    /// PostgreSQL keeps its database); without it, the database is released.
    keep_on_failure_keeps_a_failed_tests_database,
    a_failing_test_with_keep_on_failure,
    a_failed_tests_namespace,
    CHILD_DEADLINE,
);
