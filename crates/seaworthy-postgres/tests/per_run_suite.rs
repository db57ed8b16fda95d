//! Example: one PostgreSQL container for a whole test run, across processes.
//!
//! `cargo nextest run` runs every test in a process of its own, so a per-process fixture would
//! start one container per test. `Shared::per_run` starts one for the run: the first test
//! process creates it (under a cross-process lock) and records the baseline; the others find it
//! by its labels and attach. Each test takes an isolated database; under nextest its name is
//! keyed by `NEXTEST_TEST_GLOBAL_SLOT`. The container belongs to no test process: Seaworthy's
//! reaper removes it once the test runner has exited.
//!
//! The same file works under `cargo test` (one process, one container).

use seaworthy::Shared;
use seaworthy_postgres::{Postgres, SharedPostgres};

fn postgres() -> Postgres {
    Postgres::default().with_database("ledger").with_init_sql(
        "CREATE TABLE entries (id bigserial PRIMARY KEY, amount_cents bigint NOT NULL)",
    )
}

static PG: Shared<Postgres> = Shared::per_run(postgres);

#[tokio::test]
async fn writes_an_entry() -> anyhow::Result<()> {
    let db = PG.isolated_database().await?;
    let client = db.client().await?;
    client
        .execute("INSERT INTO entries (amount_cents) VALUES (100)", &[])
        .await?;
    let total: i64 = client
        .query_one("SELECT sum(amount_cents)::bigint FROM entries", &[])
        .await?
        .get(0);
    assert_eq!(total, 100);
    Ok(())
}

#[tokio::test]
async fn sees_only_its_own_entries() -> anyhow::Result<()> {
    let db = PG.isolated_database().await?;
    let client = db.client().await?;
    client
        .execute("INSERT INTO entries (amount_cents) VALUES (-5)", &[])
        .await?;
    let count: i64 = client
        .query_one("SELECT count(*) FROM entries", &[])
        .await?
        .get(0);
    assert_eq!(count, 1);
    Ok(())
}

#[tokio::test]
async fn the_container_is_shared_by_the_run() -> anyhow::Result<()> {
    let pg = PG.get().await?;
    let labels = pg
        .container()
        .inspect()
        .await?
        .config
        .and_then(|c| c.labels)
        .unwrap_or_default();
    assert_eq!(
        labels.get("io.seaworthy.owner").map(String::as_str),
        Some("run")
    );
    assert_eq!(
        labels.get("io.seaworthy.managed").map(String::as_str),
        Some("true")
    );
    Ok(())
}
