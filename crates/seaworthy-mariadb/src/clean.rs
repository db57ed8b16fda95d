//! `clean()`: back to the baseline, by the cheapest path that gets there.
//!
//! 1. **Data** (one round trip): the baseline's clean procedure ends the other sessions of the
//!    database, checks the schema digest, restores the tables whose rows differ from the
//!    baseline's from their shadow copies, resets AUTO_INCREMENT counters and sequences, drops
//!    databases created after the baseline and restores users and grants when they changed.
//! 2. **Objects**, when the schema differs: objects the baseline did not have (tables, views,
//!    triggers, routines, events, sequences) are dropped, baseline tables that were altered or
//!    dropped are re-created from their recorded definition and refilled from their shadow
//!    copy, missing baseline objects re-created, and step 1 runs again.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Row;

use crate::baseline::{read_objects, ObjectMeta};
use crate::error::{describe, Error, Result};
use crate::fixture::{Inner, MariaDbFixture};
use crate::sql::{ident, qualified, text};

/// How far a [`clean`](MariaDbFixture::clean_with_report) had to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CleanPath {
    /// Only rows, counters, databases or users differed (the fast path, one round trip).
    Data,
    /// Objects were dropped or re-created because the schema differed.
    Objects,
}

/// What a [`clean`](MariaDbFixture::clean_with_report) did.
#[derive(Debug, Clone)]
pub struct CleanReport {
    /// How far it had to go.
    pub path: CleanPath,
    /// How many tables were restored from their shadow copies (a table restored again in a
    /// second pass counts twice).
    pub tables_restored: u32,
    /// Whether databases created by the test were dropped or users and grants restored.
    pub server_restored: bool,
    /// How long it took.
    pub elapsed: Duration,
}

/// What the clean procedure answered.
enum Outcome {
    Done { tables: u32, server: bool },
    Schema,
}

impl MariaDbFixture {
    /// Returns the database (and the server-wide state tests can change: databases, users,
    /// grants) to the baseline, the state right after the init steps. Other sessions of the
    /// database are ended first, open transactions too (connect again afterwards); isolated
    /// databases and their sessions are left alone. The report says which path it took.
    ///
    /// Restoring a table deletes its rows and copies the baseline's back, which fires the
    /// table's own triggers: when a trigger changes another table, that one is restored in a
    /// second pass (up to three).
    ///
    /// Concurrent calls on one fixture run one after the other.
    pub async fn clean_with_report(&self) -> Result<CleanReport> {
        let inner = self.inner.clone();
        seaworthy::runtime::run(async move { clean(&inner).await }).await
    }
}

async fn clean(inner: &Inner) -> Result<CleanReport> {
    let _serial = inner.clean_lock.lock().await;
    let started = Instant::now();
    let mut path = CleanPath::Data;
    let mut outcome = call(inner).await?;
    if matches!(outcome, Outcome::Schema) {
        restore_objects(inner).await?;
        path = CleanPath::Objects;
        outcome = call(inner).await?;
    }
    let Outcome::Done { tables, server } = outcome else {
        return Err(Error::fixture(
            &inner.label,
            "clean: the schema differs from the baseline even after restoring its objects",
        ));
    };
    let elapsed = started.elapsed();
    tracing::debug!(fixture = %inner.label, ?path, tables, server, ?elapsed, "cleaned");
    Ok(CleanReport {
        path,
        tables_restored: tables,
        server_restored: server,
        elapsed,
    })
}

/// Calls the clean procedure; a connection closed behind the fixture's back is re-opened once.
async fn call(inner: &Inner) -> Result<Outcome> {
    let sql = format!(
        "CALL {}()",
        qualified(&inner.names.baseline, "seaworthy_clean")
    );
    for attempt in 0..2 {
        let mut conn = inner.work.take(inner).await?;
        match conn.query_first::<Row, _>(sql.as_str()).await {
            Ok(Some(row)) => {
                inner.work.put(conn);
                let outcome = text(&row, 0).unwrap_or_default();
                if outcome == "schema" {
                    return Ok(Outcome::Schema);
                }
                return Ok(Outcome::Done {
                    tables: text(&row, 1).and_then(|t| t.parse().ok()).unwrap_or(0),
                    server: text(&row, 2).as_deref() == Some("1"),
                });
            }
            Ok(None) => {
                return Err(Error::fixture(
                    &inner.label,
                    "clean: the clean procedure answered nothing",
                ))
            }
            Err(e) if attempt == 0 && !matches!(e, mysql_async::Error::Server(_)) => {
                tracing::debug!(fixture = %inner.label, error = %describe(&e), "clean connection was lost; reconnecting");
            }
            Err(e) => {
                return Err(Error::query(
                    &inner.label,
                    format!("clean: restore database {}", inner.names.database),
                    e,
                ))
            }
        }
    }
    Err(Error::fixture(
        &inner.label,
        "clean: the server keeps closing the fixture's connection",
    ))
}

/// `DROP ...` of an object.
fn drop_sql(database: &str, object: &ObjectMeta) -> String {
    let what = match object.kind.as_str() {
        "VIEW" => "VIEW",
        "SEQUENCE" => "SEQUENCE",
        "TRIGGER" => "TRIGGER",
        "PROCEDURE" => "PROCEDURE",
        "FUNCTION" => "FUNCTION",
        _ => "EVENT",
    };
    format!(
        "DROP {what} IF EXISTS {}",
        qualified(database, &object.name)
    )
}

/// Drops what the baseline did not have and re-creates what it had that changed or is gone.
async fn restore_objects(inner: &Inner) -> Result<()> {
    let mut conn = inner.work.take(inner).await?;
    let result = restore_objects_on(inner, &mut conn).await;
    // Back to the baseline database and foreign key checks, whatever happened.
    let reset = conn
        .query_drop(format!(
            "SET foreign_key_checks = 1; USE {}",
            ident(&inner.names.baseline)
        ))
        .await;
    if result.is_ok() && reset.is_ok() {
        inner.work.put(conn);
    }
    result
}

async fn restore_objects_on(inner: &Inner, conn: &mut mysql_async::Conn) -> Result<()> {
    let db = &inner.names.database;
    let meta = &inner.meta;
    let q = |action: &str, e| Error::query(&inner.label, format!("clean: {action}"), e);
    conn.query_drop(format!(
        "SET foreign_key_checks = 0; CREATE DATABASE IF NOT EXISTS {0}; USE {0}",
        ident(db)
    ))
    .await
    .map_err(|e| q("re-create the database", e))?;
    let (tables, objects) = read_objects(conn, db)
        .await
        .map_err(|e| q("list the database's objects", e))?;
    for object in &objects {
        let same = meta.objects.iter().any(|b| {
            b.kind == object.kind && b.name == object.name && b.create_sql == object.create_sql
        });
        if !same {
            conn.query_drop(drop_sql(db, object)).await.map_err(|e| {
                q(
                    &format!("drop {} {}", object.kind.to_lowercase(), object.name),
                    e,
                )
            })?;
        }
    }
    let mut kept = Vec::new();
    for table in &tables {
        let same = meta
            .tables
            .iter()
            .any(|b| b.name == table.name && b.create_sql == table.create_sql);
        if same {
            kept.push(table.name.clone());
        } else {
            conn.query_drop(format!(
                "DROP TABLE IF EXISTS {}",
                qualified(db, &table.name)
            ))
            .await
            .map_err(|e| q(&format!("drop table {}", table.name), e))?;
        }
    }
    for table in meta.tables.iter().filter(|t| !kept.contains(&t.name)) {
        let sql = format!(
            "{};\nINSERT INTO {} ({cols}) SELECT {cols} FROM {}",
            meta.create_table_sql(table),
            qualified(db, &table.name),
            qualified(&inner.names.baseline, &table.name),
            cols = table.columns
        );
        conn.query_drop(sql)
            .await
            .map_err(|e| q(&format!("re-create table {}", table.name), e))?;
    }
    // Triggers went with the tables dropped above: list again.
    let (_, objects) = read_objects(conn, db)
        .await
        .map_err(|e| q("list the database's objects", e))?;
    for object in meta.objects_in_order() {
        let present = objects
            .iter()
            .any(|o| o.kind == object.kind && o.name == object.name);
        if !present {
            conn.query_drop(object.create_sql.as_str())
                .await
                .map_err(|e| {
                    q(
                        &format!("re-create {} {}", object.kind.to_lowercase(), object.name),
                        e,
                    )
                })?;
        }
    }
    Ok(())
}
