//! `mariadb.*` of the `catalogue` suite:
//!
//! * `mariadb.clean`: `clean()` of a database of 20 tables (100 seed rows each) after a test
//!   touched 1,000 rows (in each table 30 updated, 10 deleted, 10 inserted), against what a user
//!   would do without the fixture: drop the database and re-create it from the init SQL, over an
//!   open connection (one round trip). Target: median ≤ 25 ms.
//! * `mariadb.isolated`: checking out an isolated database (a full copy of the baseline) from
//!   the pool, against a user's own clone over an open connection: `CREATE DATABASE`, then
//!   `CREATE TABLE … LIKE` and `INSERT … SELECT` for each of the 20 tables, in one round trip.
//!   Target: median ≤ 10 ms.
//! * `mariadb.isolated_refill`: the background work a checkout causes, from the checkout until
//!   the pool is full again (one database cloned from the baseline, the released one dropped):
//!   part of the whole cost of an isolated database, paid off the test's path.
//!
//! Both sides start from the same state, and the state after each run is checked (untimed).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use seaworthy::FixtureDefinition;
use seaworthy_benchkit::{Suite, Target};
use seaworthy_mariadb::mysql_async::prelude::Queryable;
use seaworthy_mariadb::mysql_async::Conn;
use seaworthy_mariadb::{MariaDb, MariaDbFixture};

const TABLES: usize = 20;
const SEED_ROWS: usize = 100;
const RUNS: usize = 30;

/// The init SQL: 20 tables of 100 rows.
fn init_sql() -> String {
    let mut sql = String::new();
    for t in 0..TABLES {
        let _ = writeln!(
            sql,
            "CREATE TABLE t{t} (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INT NOT NULL, note TEXT);"
        );
        let rows: Vec<String> = (0..SEED_ROWS)
            .map(|r| format!("('row {r}', {r}, 'seed')"))
            .collect();
        let _ = writeln!(
            sql,
            "INSERT INTO t{t} (name, qty, note) VALUES {};",
            rows.join(", ")
        );
    }
    sql
}

/// What a test does: 1,000 rows touched, in one round trip (untimed).
fn touch_sql() -> String {
    let mut sql = String::new();
    for t in 0..TABLES {
        let _ = write!(
            sql,
            "UPDATE t{t} SET qty = qty + 1000, note = 'changed' WHERE id <= 30; \
             DELETE FROM t{t} WHERE id > 90; \
             INSERT INTO t{t} (name, qty) VALUES {};",
            (0..10)
                .map(|i| format!("('new {i}', {i})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    sql
}

/// The baseline's checksums of the 20 tables (and their counters), to check each reset.
async fn fingerprint(conn: &mut Conn) -> Vec<String> {
    let names: Vec<String> = (0..TABLES).map(|t| format!("t{t}")).collect();
    let rows: Vec<(String, Option<u64>)> = conn
        .query(format!("CHECKSUM TABLE {}", names.join(", ")))
        .await
        .expect("CHECKSUM TABLE");
    let counters: Vec<Option<u64>> = conn
        .query("SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'test' ORDER BY TABLE_NAME")
        .await
        .expect("the counters");
    rows.into_iter()
        .map(|(t, c)| format!("{t}={c:?}"))
        .chain(counters.into_iter().map(|c| format!("{c:?}")))
        .collect()
}

/// Adds the `mariadb.*` results to `suite`.
pub fn run(suite: &mut Suite) {
    let init = init_sql();
    let definition = MariaDb::new().with_init_sql(init.clone());
    let db: MariaDbFixture = suite
        .block_on(definition.start())
        .expect("a MariaDB fixture (cargo xtask images)");
    let touch = touch_sql();
    let expected = suite.block_on(async {
        let mut conn = db.conn().await.expect("connect");
        fingerprint(&mut conn).await
    });

    let fixture = &db;
    let (touch, expected, init) = (&touch, &expected, &init);
    let check = move |side: &'static str| async move {
        let mut conn = fixture.conn().await.expect("connect");
        assert_eq!(
            &fingerprint(&mut conn).await,
            expected,
            "{side} left the database off its baseline"
        );
    };
    suite.compare(
        "mariadb.clean",
        "DROP DATABASE + CREATE DATABASE + the init SQL, one round trip over an open connection",
        RUNS,
        move || async move {
            let mut conn = fixture.conn().await.expect("connect");
            conn.query_drop(touch.as_str()).await.expect("touch");
            drop(conn);
            let t = Instant::now();
            let report = fixture.clean_with_report().await.expect("clean");
            let elapsed = t.elapsed();
            assert!(report.tables_restored as usize >= TABLES, "{report:?}");
            check("clean()").await;
            elapsed
        },
        move || async move {
            let mut conn = fixture.conn().await.expect("connect");
            conn.query_drop(touch.as_str()).await.expect("touch");
            let recreate = format!("DROP DATABASE test; CREATE DATABASE test; USE test; {init}");
            let t = Instant::now();
            conn.query_drop(recreate)
                .await
                .expect("re-create the database");
            let elapsed = t.elapsed();
            drop(conn);
            check("re-creating the database").await;
            elapsed
        },
    );
    suite.target(Target::MedianAtMostMs(25.0));
    suite.annotate("tables", TABLES as u64);
    suite.annotate("rows_touched", (TABLES * 50) as u64);

    let pool_count = move || async move {
        let mut conn = fixture.conn().await.expect("connect");
        let n: Option<u64> = conn
            .query_first("SELECT COUNT(*) FROM test_baseline.seaworthy_pool")
            .await
            .expect("count the pool");
        n.unwrap_or(0)
    };
    let wait_for_pool = move || async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while pool_count().await < 4 {
            assert!(Instant::now() < deadline, "the pool was not refilled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    suite.block_on(async {
        drop(fixture.isolated_database().await.expect("warm-up checkout"));
        wait_for_pool().await;
    });
    let tables_of = move |name: String| async move {
        let mut conn = fixture.conn().await.expect("connect");
        let n: Option<u64> = conn
            .query_first(format!(
                "SELECT SUM(TABLE_ROWS >= 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{name}'"
            ))
            .await
            .expect("count the tables");
        assert_eq!(n, Some(TABLES as u64), "the copy {name} has every table");
    };
    suite.compare(
        "mariadb.isolated",
        "CREATE DATABASE + CREATE TABLE … LIKE + INSERT … SELECT for each table, one round trip over an open connection",
        RUNS,
        move || async move {
            wait_for_pool().await;
            let t = Instant::now();
            let iso = fixture.isolated_database().await.expect("checkout");
            let elapsed = t.elapsed();
            tables_of(iso.name().to_string()).await;
            iso.release().await.expect("release");
            elapsed
        },
        move || async move {
            let mut conn = fixture.conn().await.expect("connect");
            let name = format!("copy_{:08x}", rand_u32());
            let mut sql = format!("CREATE DATABASE {name};");
            for t in 0..TABLES {
                let _ = write!(
                    sql,
                    " CREATE TABLE {name}.t{t} LIKE test.t{t}; INSERT INTO {name}.t{t} SELECT * FROM test.t{t};"
                );
            }
            let t = Instant::now();
            conn.query_drop(sql).await.expect("copy the database");
            let elapsed = t.elapsed();
            tables_of(name.clone()).await;
            conn.query_drop(format!("DROP DATABASE {name}")).await.expect("drop the copy");
            elapsed
        },
    );
    suite.target(Target::MedianAtMostMs(10.0));
    suite.annotate("tables", TABLES as u64);
    suite.annotate("pool_size", 4u64);

    // The refill a checkout causes: from the checkout until the pool holds 4 databases again
    // and the released one is gone (polled every 2 ms; the checkout itself is included).
    let iso_count = move || async move {
        let mut conn = fixture.conn().await.expect("connect");
        let n: Option<u64> = conn
            .query_first(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'test\\_iso\\_%'",
            )
            .await
            .expect("count the isolated databases");
        n.unwrap_or(0)
    };
    suite.measure("mariadb.isolated_refill", RUNS, move || async move {
        wait_for_pool().await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while iso_count().await > 4 {
            assert!(
                Instant::now() < deadline,
                "released databases were not dropped"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let t = Instant::now();
        let iso = fixture.isolated_database().await.expect("checkout");
        iso.release().await.expect("release");
        while pool_count().await < 4 || iso_count().await > 4 {
            assert!(Instant::now() < deadline, "the pool was not refilled");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        t.elapsed()
    });
    suite.annotate("pool_size", 4u64);
    drop(db);
}

/// A random number for names, from the clock (no extra dependency for the bench).
fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id()
}
