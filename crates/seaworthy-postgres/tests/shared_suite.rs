//! Example: a test suite that shares one PostgreSQL for all its tests, each test in a database
//! of its own. Copy this file's pattern: a function that describes the fixture, a `static`
//! that shares it, and `PG.isolated_database()` at the top of each test.
//!
//! The container starts on the first test that asks for it and is removed when the test binary
//! exits. Tests run in parallel: each gets a clone of the baseline (schema and seed rows), taken
//! from a pool of clones made ahead of time, so a checkout takes a few milliseconds.

use seaworthy::Shared;
use seaworthy_postgres::{Postgres, SharedPostgres};

fn postgres() -> Postgres {
    Postgres::default()
        .with_database("shop")
        .with_init_sql(
            "CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, price_cents int NOT NULL);
             INSERT INTO products (name, price_cents) VALUES ('kettle', 2999), ('teapot', 1999);",
        )
}

static PG: Shared<Postgres> = Shared::per_process(postgres);

#[tokio::test]
async fn every_test_starts_from_the_seed_data() -> anyhow::Result<()> {
    let db = PG.isolated_database().await?;
    let client = db.client().await?;
    let count: i64 = client
        .query_one("SELECT count(*) FROM products", &[])
        .await?
        .get(0);
    assert_eq!(count, 2);
    Ok(())
}

#[tokio::test]
async fn a_test_can_change_anything() -> anyhow::Result<()> {
    let db = PG.isolated_database().await?;
    let client = db.client().await?;
    client
        .batch_execute("DELETE FROM products; ALTER TABLE products ADD COLUMN stock int; CREATE TABLE carts (id int)")
        .await?;
    let count: i64 = client
        .query_one("SELECT count(*) FROM products", &[])
        .await?
        .get(0);
    assert_eq!(count, 0);
    Ok(()) // dropping `db` drops the database; the other tests never saw any of this
}

#[tokio::test]
async fn sequences_are_the_baselines_too() -> anyhow::Result<()> {
    let db = PG.isolated_database().await?;
    let client = db.client().await?;
    let id: i32 = client
        .query_one(
            "INSERT INTO products (name, price_cents) VALUES ('cup', 499) RETURNING id",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(id, 3);
    Ok(())
}
