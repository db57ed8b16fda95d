//! Tests start clean by construction: a test that dirties the shared PostgreSQL and then fails
//! hands nothing to the next one, in either order (`cargo test` threads or `cargo nextest run`
//! processes: the fixture is shared per run). And `fresh()` skips the clean only when the server
//! has really not changed.

use seaworthy::Shared;
use seaworthy_postgres::{Postgres, PostgresFixture};

fn shop() -> Postgres {
    Postgres::default().with_init_sql(
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
         INSERT INTO items (name) VALUES ('seed');",
    )
}

static SHOP: Shared<Postgres> = Shared::per_run(shop);

async fn dirty(shop: &PostgresFixture) {
    let client = shop.client().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO items (name) SELECT 'row ' || n FROM generate_series(1, 100) n;
             CREATE TABLE scratch (x int); INSERT INTO scratch VALUES (1);
             CREATE ROLE left_behind;",
        )
        .await
        .unwrap();
}

async fn assert_baseline(shop: &PostgresFixture) -> anyhow::Result<()> {
    let client = shop.client().await?;
    let names: Vec<String> = client
        .query("SELECT name FROM items ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    anyhow::ensure!(names == ["seed"], "items: {names:?}");
    let next: i32 = client
        .query_one(
            "INSERT INTO items (name) VALUES ('probe') RETURNING id",
            &[],
        )
        .await?
        .get(0);
    anyhow::ensure!(next == 2, "the sequence was not reset: next id {next}");
    let tables: Vec<String> = shop
        .list_tables()
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    anyhow::ensure!(tables == ["public.items"], "tables: {tables:?}");
    let roles = shop.list_roles().await?;
    anyhow::ensure!(
        !roles.iter().any(|r| r == "left_behind"),
        "roles: {roles:?}"
    );
    Ok(())
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn postgres_1_dirties_then_panics(shop: &PostgresFixture) {
    dirty(shop).await;
    panic!("deliberately, after dirtying the fixture");
}

#[seaworthy::test]
async fn postgres_2_starts_at_the_baseline(shop: &PostgresFixture) -> anyhow::Result<()> {
    assert_baseline(shop).await
}

#[seaworthy::test]
async fn postgres_3_starts_at_the_baseline(shop: &PostgresFixture) -> anyhow::Result<()> {
    assert_baseline(shop).await
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn postgres_4_dirties_then_panics(shop: &PostgresFixture) {
    dirty(shop).await;
    panic!("deliberately, after dirtying the fixture");
}

#[tokio::test]
async fn fresh_skips_the_clean_only_when_nothing_was_written_or_left_in_a_transaction(
) -> anyhow::Result<()> {
    static PG: Shared<Postgres> = Shared::per_process(shop);
    use seaworthy::Fixture;
    // A test that only reads: the next hand-out finds the server unchanged.
    {
        let pg = PG.fresh().await?;
        let client = pg.client().await?;
        client.query("SELECT count(*) FROM items", &[]).await?;
    }
    {
        let pg = PG.fresh().await?;
        assert!(
            pg.unchanged_since_clean().await?,
            "at the baseline at hand-out"
        );
        assert_baseline(&pg).await?; // writes a probe row: changed from here on
        assert!(!pg.unchanged_since_clean().await?, "a write went unnoticed");
    }
    {
        let pg = PG.fresh().await?;
        assert!(pg.unchanged_since_clean().await?, "just cleaned");
        // An idle session holds nothing another session sees; one left in a transaction (or
        // holding an advisory lock) is a change: it may block the next test.
        let client = pg.client().await?;
        client.batch_execute("SELECT 1").await?;
        assert!(pg.unchanged_since_clean().await?, "an idle session counted");
        client.batch_execute("BEGIN; SELECT 1").await?;
        assert!(
            !pg.unchanged_since_clean().await?,
            "an open transaction went unnoticed"
        );
        drop(pg);
        let pg = PG.fresh().await?;
        assert!(
            client.batch_execute("SELECT 1").await.is_err(),
            "the hand-out did not clean (the clean closes other sessions)"
        );
        assert!(pg.unchanged_since_clean().await?);
    }
    Ok(())
}
