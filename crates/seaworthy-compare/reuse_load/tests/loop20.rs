//! Twenty tests of an edit-and-test loop: each takes the run's PostgreSQL fixture (40
//! migrations and 10,000 seed rows, from `SW_LOAD_MIGRATIONS`), at its baseline, writes a row and
//! reads it back. The baseline cache and reuse are on: the first `cargo test` builds the cached
//! baseline and leaves the fixture for the next, which finds it, cleans it and runs at once.
//!
//! Run by the `reuse` bench (`loop20`), which sets `SW_LOAD_MIGRATIONS`, `SW_LOAD_GROUP` (a
//! label by which it removes what the runs leave) and `SEAWORTHY_BASELINE_CACHE_NAMESPACE`.

use seaworthy::baseline_cache::BaselineCache;
use seaworthy::Shared;
use seaworthy_postgres::Postgres;

fn database() -> Postgres {
    let migrations = std::env::var("SW_LOAD_MIGRATIONS").unwrap_or_else(|_| "migrations".into());
    let group = std::env::var("SW_LOAD_GROUP").unwrap_or_default();
    Postgres::default()
        .with_database("load")
        .with_migrations(migrations)
        .with_container(|c| c.with_label("io.seaworthy.bench.group", group))
        .with_baseline_cache(BaselineCache::on())
        .with_reuse(true)
}

static DB: Shared<Postgres> = Shared::per_run(database);

/// Takes the fixture at its baseline, writes a row to `table` (empty in the baseline) and reads
/// it back.
async fn exercise(table: &str) -> anyhow::Result<()> {
    let db = DB.fresh().await?;
    let client = db.client().await?;
    client
        .execute(
            &format!("INSERT INTO {table} (owner_id, name, amount) VALUES (7, 'loop', 2.5)"),
            &[],
        )
        .await?;
    let rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .get(0);
    anyhow::ensure!(rows == 1, "{table} holds {rows} rows, not the one written");
    Ok(())
}

macro_rules! loop_tests {
    ($($name:ident: $table:literal),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() -> anyhow::Result<()> {
                exercise($table).await
            }
        )*
    };
}

loop_tests! {
    test_01: "t02", test_02: "t03", test_03: "t04", test_04: "t05", test_05: "t06",
    test_06: "t07", test_07: "t08", test_08: "t09", test_09: "t10", test_10: "t11",
    test_11: "t12", test_12: "t13", test_13: "t14", test_14: "t15", test_15: "t16",
    test_16: "t17", test_17: "t18", test_18: "t19", test_19: "t20", test_20: "t21",
}
