//! Suite `surface`: what the safe test surface costs (`target/seaworthy-bench/surface.json`).
//!
//! * `postgres.handout_unchanged`: `fresh()` after a test that wrote nothing (it connected and
//!   read): the hand-out checks the server's write position and session count (one query)
//!   instead of cleaning. Against the form it replaces, `exclusive()` + `clean()` at the same
//!   point. Target: median ≤ 2 ms.
//! * `postgres.clean`: the `reset.postgres` suite's headline measured again in this run, under
//!   the same load: `clean()` of a fixture whose 20 tables got 1,000 rows, timed alone. Its runs
//!   are interleaved with those of `postgres.handout_dirty`, whose target it sets.
//! * `postgres.handout_dirty`: `fresh()` after a test that wrote 1,000 rows in 3 tables (the
//!   clean runs at hand-out), against `exclusive()` + `clean()` by hand after the same test.
//!   Target: median ≤ this run's `postgres.clean` median + 2 ms.
//! * `suite100.macro_vs_manual`: the same 100 tests (each inserts a row and counts the rows),
//!   written with `#[seaworthy::test]` (a `&PostgresFixture` parameter: the fixture at its
//!   baseline) and by hand with the same guarantee (a runtime, `exclusive()`, `clean()` as the
//!   first line, the work), run one after another as libtest would with one thread: the whole
//!   wall time of each suite. Target: ratio ≤ 1.05.
//! * `suite100.macro_vs_fresh_by_hand` (reference): the same, against the tests written by hand
//!   with `fresh()`: what the attribute itself adds (its runtime, catching a panic, the failure
//!   bookkeeping), without the hand-out's work.
//!
//! `cargo bench -p seaworthy-postgres --bench surface` (needs `cargo xtask images`).

use std::time::{Duration, Instant};

use seaworthy::{Fixture, FixtureDefinition, Shared};
use seaworthy_benchkit::{BenchResult, Suite, Target};
use seaworthy_postgres::{CleanPath, Postgres, PostgresFixture};

mod reset_load;
use reset_load::{touch_rows, ROWS_PER_TABLE, TABLES};

const RUNS: usize = 30;
const SUITE_RUNS: usize = 10;

fn shop() -> Postgres {
    Postgres::default().with_pool_size(0).with_init_sql(
        "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
             CREATE TABLE orders (id serial PRIMARY KEY, customer int NOT NULL, total int NOT NULL);
             CREATE TABLE items (id serial PRIMARY KEY, order_id int NOT NULL, sku text NOT NULL);
             INSERT INTO customers (name) VALUES ('seed');",
    )
}

static PG: Shared<Postgres> = Shared::per_process(shop);
static SUITE_PG: Shared<Postgres> = Shared::per_process(shop);

/// A test that wrote nothing: it connected and read.
async fn read_only(pg: &PostgresFixture) {
    let client = pg.client().await.expect("client");
    client
        .query_one("SELECT count(*) FROM customers", &[])
        .await
        .expect("read");
}

/// A test that wrote 1,000 rows in 3 tables.
async fn writer(pg: &PostgresFixture) {
    let client = pg.client().await.expect("client");
    client
        .batch_execute(
            "INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 334) g;
             INSERT INTO orders (customer, total) SELECT g, g FROM generate_series(1, 333) g;
             INSERT INTO items (order_id, sku) SELECT g, 's' || g FROM generate_series(1, 333) g;",
        )
        .await
        .expect("write");
}

#[derive(Clone, Copy)]
enum Test {
    ReadOnly,
    Writer,
}

#[derive(Clone, Copy)]
enum Form {
    /// `fresh()`: cleans at hand-out, unless nothing changed.
    Fresh,
    /// `exclusive()` + `clean()`: what a test wrote by hand.
    ByHand,
}

/// Runs `test` (untimed), then times the next test's hand-out of the fixture at its baseline.
async fn handout(test: Test, form: Form) -> Duration {
    {
        let pg = PG.fresh().await.expect("hand-out");
        match test {
            Test::ReadOnly => read_only(&pg).await,
            Test::Writer => writer(&pg).await,
        }
    }
    let t = Instant::now();
    let pg = match form {
        Form::Fresh => PG.fresh().await.expect("hand-out"),
        Form::ByHand => {
            let pg = PG.exclusive().await.expect("hand-out");
            pg.clean().await.expect("clean");
            pg
        }
    };
    let elapsed = t.elapsed();
    drop(pg);
    elapsed
}

/// One test's work in the 100-test suite.
async fn work(pg: &PostgresFixture) -> anyhow::Result<()> {
    let client = pg.client().await?;
    client
        .execute("INSERT INTO customers (name) VALUES ('ada')", &[])
        .await?;
    let count: i64 = client
        .query_one("SELECT count(*) FROM customers", &[])
        .await?
        .get(0);
    anyhow::ensure!(
        count == 2,
        "{count} customers: the test did not start at the baseline"
    );
    Ok(())
}

/// The same 100 tests, with the attribute (`aNNN`, run through the runner the attribute
/// generates, as libtest runs the test), by hand with the same guarantee (`mNNN`, as
/// `#[tokio::test]` would: `exclusive()` and `clean()` as the first lines, so a failed test's
/// state never reaches the next one), and by hand with `fresh()` (`fNNN`: the attribute's own
/// cost is the difference between `aNNN` and `fNNN`).
macro_rules! suite100 {
    ($(($attr:ident, $runner:ident, $manual:ident, $fresh:ident),)*) => {
        $(
            #[seaworthy::test]
            async fn $attr(suite_pg: &PostgresFixture) -> anyhow::Result<()> {
                work(suite_pg).await
            }

            fn $manual() -> anyhow::Result<()> {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(async {
                        let pg = SUITE_PG.exclusive().await?;
                        pg.clean().await?;
                        work(&pg).await
                    })
            }

            fn $fresh() -> anyhow::Result<()> {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(async { work(&*SUITE_PG.fresh().await?).await })
            }
        )*
        const WITH_ATTRIBUTE: &[fn() -> anyhow::Result<()>] = &[$($runner),*];
        const BY_HAND: &[fn() -> anyhow::Result<()>] = &[$($manual),*];
        const FRESH_BY_HAND: &[fn() -> anyhow::Result<()>] = &[$($fresh),*];
    };
}

suite100! {
    (a000, __seaworthy_a000, m000, f000),
    (a001, __seaworthy_a001, m001, f001),
    (a002, __seaworthy_a002, m002, f002),
    (a003, __seaworthy_a003, m003, f003),
    (a004, __seaworthy_a004, m004, f004),
    (a005, __seaworthy_a005, m005, f005),
    (a006, __seaworthy_a006, m006, f006),
    (a007, __seaworthy_a007, m007, f007),
    (a008, __seaworthy_a008, m008, f008),
    (a009, __seaworthy_a009, m009, f009),
    (a010, __seaworthy_a010, m010, f010),
    (a011, __seaworthy_a011, m011, f011),
    (a012, __seaworthy_a012, m012, f012),
    (a013, __seaworthy_a013, m013, f013),
    (a014, __seaworthy_a014, m014, f014),
    (a015, __seaworthy_a015, m015, f015),
    (a016, __seaworthy_a016, m016, f016),
    (a017, __seaworthy_a017, m017, f017),
    (a018, __seaworthy_a018, m018, f018),
    (a019, __seaworthy_a019, m019, f019),
    (a020, __seaworthy_a020, m020, f020),
    (a021, __seaworthy_a021, m021, f021),
    (a022, __seaworthy_a022, m022, f022),
    (a023, __seaworthy_a023, m023, f023),
    (a024, __seaworthy_a024, m024, f024),
    (a025, __seaworthy_a025, m025, f025),
    (a026, __seaworthy_a026, m026, f026),
    (a027, __seaworthy_a027, m027, f027),
    (a028, __seaworthy_a028, m028, f028),
    (a029, __seaworthy_a029, m029, f029),
    (a030, __seaworthy_a030, m030, f030),
    (a031, __seaworthy_a031, m031, f031),
    (a032, __seaworthy_a032, m032, f032),
    (a033, __seaworthy_a033, m033, f033),
    (a034, __seaworthy_a034, m034, f034),
    (a035, __seaworthy_a035, m035, f035),
    (a036, __seaworthy_a036, m036, f036),
    (a037, __seaworthy_a037, m037, f037),
    (a038, __seaworthy_a038, m038, f038),
    (a039, __seaworthy_a039, m039, f039),
    (a040, __seaworthy_a040, m040, f040),
    (a041, __seaworthy_a041, m041, f041),
    (a042, __seaworthy_a042, m042, f042),
    (a043, __seaworthy_a043, m043, f043),
    (a044, __seaworthy_a044, m044, f044),
    (a045, __seaworthy_a045, m045, f045),
    (a046, __seaworthy_a046, m046, f046),
    (a047, __seaworthy_a047, m047, f047),
    (a048, __seaworthy_a048, m048, f048),
    (a049, __seaworthy_a049, m049, f049),
    (a050, __seaworthy_a050, m050, f050),
    (a051, __seaworthy_a051, m051, f051),
    (a052, __seaworthy_a052, m052, f052),
    (a053, __seaworthy_a053, m053, f053),
    (a054, __seaworthy_a054, m054, f054),
    (a055, __seaworthy_a055, m055, f055),
    (a056, __seaworthy_a056, m056, f056),
    (a057, __seaworthy_a057, m057, f057),
    (a058, __seaworthy_a058, m058, f058),
    (a059, __seaworthy_a059, m059, f059),
    (a060, __seaworthy_a060, m060, f060),
    (a061, __seaworthy_a061, m061, f061),
    (a062, __seaworthy_a062, m062, f062),
    (a063, __seaworthy_a063, m063, f063),
    (a064, __seaworthy_a064, m064, f064),
    (a065, __seaworthy_a065, m065, f065),
    (a066, __seaworthy_a066, m066, f066),
    (a067, __seaworthy_a067, m067, f067),
    (a068, __seaworthy_a068, m068, f068),
    (a069, __seaworthy_a069, m069, f069),
    (a070, __seaworthy_a070, m070, f070),
    (a071, __seaworthy_a071, m071, f071),
    (a072, __seaworthy_a072, m072, f072),
    (a073, __seaworthy_a073, m073, f073),
    (a074, __seaworthy_a074, m074, f074),
    (a075, __seaworthy_a075, m075, f075),
    (a076, __seaworthy_a076, m076, f076),
    (a077, __seaworthy_a077, m077, f077),
    (a078, __seaworthy_a078, m078, f078),
    (a079, __seaworthy_a079, m079, f079),
    (a080, __seaworthy_a080, m080, f080),
    (a081, __seaworthy_a081, m081, f081),
    (a082, __seaworthy_a082, m082, f082),
    (a083, __seaworthy_a083, m083, f083),
    (a084, __seaworthy_a084, m084, f084),
    (a085, __seaworthy_a085, m085, f085),
    (a086, __seaworthy_a086, m086, f086),
    (a087, __seaworthy_a087, m087, f087),
    (a088, __seaworthy_a088, m088, f088),
    (a089, __seaworthy_a089, m089, f089),
    (a090, __seaworthy_a090, m090, f090),
    (a091, __seaworthy_a091, m091, f091),
    (a092, __seaworthy_a092, m092, f092),
    (a093, __seaworthy_a093, m093, f093),
    (a094, __seaworthy_a094, m094, f094),
    (a095, __seaworthy_a095, m095, f095),
    (a096, __seaworthy_a096, m096, f096),
    (a097, __seaworthy_a097, m097, f097),
    (a098, __seaworthy_a098, m098, f098),
    (a099, __seaworthy_a099, m099, f099),
}

/// Runs a suite of tests one after another on a thread of its own (as libtest does with one
/// thread), from the baseline (untimed: the by-hand tests need the one before to have cleaned).
fn run_suite(tests: &'static [fn() -> anyhow::Result<()>]) -> Duration {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async { drop(SUITE_PG.fresh().await.expect("hand-out")) });
        let t = Instant::now();
        for test in tests {
            test().expect("a test of the suite failed");
        }
        let _ = tx.send(t.elapsed());
    });
    rx.recv().expect("the suite ran")
}

/// The `reset.postgres` suite's `postgres.clean`: 1,000 rows over the 20 tables (untimed), then
/// `clean()` alone, timed.
async fn reset_clean(pg: &PostgresFixture) -> Duration {
    touch_rows(&pg.client().await.expect("client")).await;
    let t = Instant::now();
    let report = pg.clean_with_report().await.expect("clean");
    let elapsed = t.elapsed();
    assert_eq!(report.path, CleanPath::Data);
    elapsed
}

fn main() {
    let mut suite = Suite::new("surface");
    suite.block_on(async {
        // Started, and every path warmed up once.
        let pg = PG.fresh().await.expect("postgres starts");
        writer(&pg).await;
        drop(pg);
        drop(PG.fresh().await.expect("hand-out"));
    });

    suite.compare(
        "postgres.handout_unchanged",
        "exclusive() + clean() by hand",
        RUNS,
        || handout(Test::ReadOnly, Form::Fresh),
        || handout(Test::ReadOnly, Form::ByHand),
    );
    suite.target(Target::MedianAtMostMs(2.0));

    // The reset suite's clean, measured before each dirty hand-out of either form.
    let reset_pg = suite.block_on(async {
        let pg = Postgres::default()
            .with_pool_size(0)
            .with_init_sql(reset_load::schema())
            .start()
            .await
            .expect("postgres starts");
        reset_clean(&pg).await;
        pg
    });
    let cleans = std::cell::RefCell::new(Vec::new());
    let reset_pg = &reset_pg;
    let sample_clean = || async {
        let elapsed = reset_clean(reset_pg).await;
        cleans.borrow_mut().push(elapsed);
    };
    suite.compare(
        "postgres.handout_dirty",
        "exclusive() + clean() by hand",
        RUNS,
        || async {
            sample_clean().await;
            handout(Test::Writer, Form::Fresh).await
        },
        || async {
            sample_clean().await;
            handout(Test::Writer, Form::ByHand).await
        },
    );
    let mut cleans = cleans.take();
    if suite.is_full() {
        // The two warm-up runs of the comparison.
        cleans.drain(..2.min(cleans.len()));
    }
    let clean = BenchResult::from_samples("postgres.clean", &cleans, None);
    // Rounded to 10 µs: the target is printed, and more digits than the timing has say nothing.
    let limit = ((clean.median_ms + 2.0) * 100.0).round() / 100.0;
    suite.target(Target::MedianAtMostMs(limit));
    suite.annotate("target_from", "this run's postgres.clean median + 2 ms");
    suite.annotate("rows_written", 1000u64);
    suite.annotate("tables", 3u64);
    suite.push(clean);
    suite.annotate("tables", TABLES as u64);
    suite.annotate("rows_touched", (TABLES * ROWS_PER_TABLE) as u64);
    suite.annotate(
        "note",
        "the reset.postgres suite's postgres.clean, measured in this run, interleaved with postgres.handout_dirty",
    );

    // The suites run off the benchmark's runtime, so the fixture is started once there first.
    suite.block_on(async {
        drop(SUITE_PG.fresh().await.expect("postgres starts"));
    });
    // A test run of the benchmarks (not `--bench`) only checks that both suites pass: 10 tests.
    let tests = if suite.is_full() { 100 } else { 10 };
    suite.compare(
        "suite100.macro_vs_manual",
        "100 tests by hand (exclusive(), clean() first)",
        SUITE_RUNS,
        || async move { run_suite(&WITH_ATTRIBUTE[..tests]) },
        || async move { run_suite(&BY_HAND[..tests]) },
    );
    suite.target(Target::RatioAtMost(1.05));
    suite.annotate("tests", tests as u64);
    suite.compare(
        "suite100.macro_vs_fresh_by_hand",
        "100 tests by hand with fresh()",
        SUITE_RUNS,
        || async move { run_suite(&WITH_ATTRIBUTE[..tests]) },
        || async move { run_suite(&FRESH_BY_HAND[..tests]) },
    );
    suite.annotate("tests", tests as u64);
    suite.finish();
}
