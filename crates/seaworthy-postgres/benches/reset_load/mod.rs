//! What the `reset.postgres` suite resets, shared with the `surface` suite (which measures the
//! same `postgres.clean` in its own run): 20 tables, 1,000 rows written between two resets.
#![allow(dead_code)]

use seaworthy_postgres::tokio_postgres::Client;

/// Tables in the schema.
pub const TABLES: usize = 20;
/// Rows written into each table between two resets.
pub const ROWS_PER_TABLE: usize = 50;

/// The schema: tables `t00` … `t19`.
pub fn schema() -> String {
    (0..TABLES)
        .map(|i| {
            format!(
                "CREATE TABLE t{i:02} (id serial PRIMARY KEY, name text NOT NULL, n int NOT NULL DEFAULT 0, \
                 created timestamptz NOT NULL DEFAULT now());\n"
            )
        })
        .collect()
}

/// What a test does between two resets: 1,000 rows over the 20 tables of `client`'s database.
pub async fn touch_rows(client: &Client) {
    let sql: String = (0..TABLES)
        .map(|i| {
            format!("INSERT INTO t{i:02} (name, n) SELECT 'row ' || g, g FROM generate_series(1, {ROWS_PER_TABLE}) g;\n")
        })
        .collect();
    client.batch_execute(&sql).await.expect("touch rows");
}
