//! `clean()`: back to the baseline, by the cheapest path that gets there.
//!
//! 1. **Data** (one round trip): the session's clean function closes the other sessions of the
//!    database, checks the schema digest, empties the tables and restores seed rows and sequence
//!    positions that differ from the baseline, and checks the cluster-wide digest.
//! 2. **Objects**, when the schema differs: roles and databases created by the test are dropped
//!    (with what they own), then every object of the database with an id above the baseline's
//!    highest (tables, schemas, types, functions, indexes, triggers...), and step 1 runs again.
//! 3. **Database**, when the schema still differs (a baseline table was altered or dropped): the
//!    database is dropped and re-created from its template, and step 1 runs again.
//!
//! Cluster-wide state (roles, their attributes and memberships, role and database settings,
//! databases created by the test) is restored whenever its digest differs from the baseline's.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use crate::baseline::{self, ident};
use crate::error::{describe, Error, Result};
use crate::fixture::PostgresFixture;

/// How far a [`clean`](PostgresFixture::clean_with_report) had to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CleanPath {
    /// Only rows and sequence positions differed (the fast path).
    Data,
    /// Objects created by the test were dropped.
    Objects,
    /// The database was re-created from the baseline template.
    Database,
}

/// What a [`clean`](PostgresFixture::clean_with_report) did.
#[derive(Debug, Clone)]
pub struct CleanReport {
    /// How far it had to go.
    pub path: CleanPath,
    /// Whether roles, settings or databases created or changed by the test were restored.
    pub cluster_restored: bool,
    /// How long it took.
    pub elapsed: Duration,
}

/// What the clean function found.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Schema,
    Global,
}

impl PostgresFixture {
    /// The clean itself (see [`clean_with_report`](PostgresFixture::clean_with_report)); with
    /// whether rows were restored after the clean function returned (in a round trip of their
    /// own).
    pub(crate) async fn clean_to_baseline(&self) -> Result<(CleanReport, bool)> {
        let _serial = self.inner.clean_lock.lock().await;
        let started = Instant::now();
        let mut path = CleanPath::Data;
        let mut cluster_restored = false;
        let (mut outcome, mut restored) = self.run_clean_function().await?;
        if outcome == Outcome::Schema {
            // Roles first: dropping what they own also revokes their grants on baseline objects.
            self.restore_cluster().await?;
            cluster_restored = true;
            self.drop_new_objects().await?;
            path = CleanPath::Objects;
            let (again, more) = self.run_clean_function().await?;
            (outcome, restored) = (again, restored | more);
        }
        if outcome == Outcome::Schema {
            self.recreate_database().await?;
            path = CleanPath::Database;
            let (again, more) = self.run_clean_function().await?;
            (outcome, restored) = (again, restored | more);
            if outcome == Outcome::Schema {
                return Err(Error::fixture(
                    &self.inner.label,
                    format!(
                        "clean: the schema differs from the baseline even after re-creating the database from {}",
                        self.inner.names.template
                    ),
                ));
            }
        }
        if outcome == Outcome::Global {
            self.restore_cluster().await?;
            cluster_restored = true;
        }
        let elapsed = started.elapsed();
        tracing::debug!(fixture = %self.inner.label, ?path, cluster_restored, ?elapsed, "cleaned");
        let report = CleanReport {
            path,
            cluster_restored,
            elapsed,
        };
        Ok((report, restored))
    }

    /// Calls the clean function, then restores the seeded tables it names (and says whether it
    /// did); a connection closed behind the fixture's back is re-opened once.
    async fn run_clean_function(&self) -> Result<(Outcome, bool)> {
        let inner = &self.inner;
        for attempt in 0..2 {
            let client = inner.work.get(inner).await?;
            match baseline::single_text(&client, "SELECT pg_temp.seaworthy_clean()").await {
                Ok(text) => {
                    let mut words = text.split_whitespace();
                    let outcome = match words.next() {
                        Some("ok") => Outcome::Ok,
                        Some("schema") => Outcome::Schema,
                        _ => Outcome::Global,
                    };
                    let restored = self.restore_tables(&client, words).await?;
                    return Ok((outcome, restored));
                }
                Err(e)
                    if attempt == 0
                        && (client.is_closed() || e.code() == Some(&SqlState::ADMIN_SHUTDOWN)) =>
                {
                    tracing::debug!(fixture = %inner.label, error = %describe(&e), "clean connection was closed; reconnecting");
                    inner.work.reset().await;
                }
                Err(e) => {
                    return Err(Error::query(
                        &inner.label,
                        format!("clean: reset the data of database {}", inner.names.database),
                        e,
                    ))
                }
            }
        }
        Err(Error::fixture(
            &inner.label,
            "clean: the database keeps closing the fixture's connection",
        ))
    }

    /// Restores the seeded tables numbered `numbers` (as the clean function names them) to the
    /// baseline's rows, in one transaction; whether there were any.
    async fn restore_tables<'a>(
        &self,
        client: &tokio_postgres::Client,
        numbers: impl Iterator<Item = &'a str>,
    ) -> Result<bool> {
        let inner = &self.inner;
        let mut statements = Vec::new();
        for number in numbers {
            let statement = number
                .parse::<usize>()
                .ok()
                .and_then(|n| inner.meta.restores.get(n));
            match statement {
                Some(statement) => statements.push(statement.as_str()),
                None => {
                    return Err(Error::fixture(
                        &inner.label,
                        format!("clean: the clean function named a seeded table the baseline record does not have ({number})"),
                    ))
                }
            }
        }
        if statements.is_empty() {
            return Ok(false);
        }
        let restored = client
            .batch_execute(&baseline::restore_sql(statements))
            .await;
        if restored.is_err() {
            // The transaction failed part way: end it, so the connection can be used again.
            let _ = client.batch_execute("ROLLBACK").await;
        }
        restored.map(|()| true).map_err(|e| {
            Error::query(
                &inner.label,
                format!(
                    "clean: restore the baseline rows of database {}",
                    inner.names.database
                ),
                e,
            )
        })
    }

    /// Drops the objects created after the baseline.
    async fn drop_new_objects(&self) -> Result<()> {
        let inner = &self.inner;
        let client = inner.work.get(inner).await?;
        let sql = baseline::DROP_NEW_OBJECTS.replace("{max_oid}", &inner.meta.max_oid.to_string());
        client.batch_execute(&sql).await.map_err(|e| {
            Error::query(
                &inner.label,
                "clean: drop the objects created after the baseline",
                e,
            )
        })
    }

    /// Drops the database and creates it again from the template.
    async fn recreate_database(&self) -> Result<()> {
        let inner = &self.inner;
        inner.work.reset().await;
        let maint = inner.maint.get(inner).await?;
        let db = &inner.names.database;
        baseline::close_sessions(&maint, db, &inner.label).await?;
        maint
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                ident(db)
            ))
            .await
            .map_err(|e| Error::query(&inner.label, format!("clean: drop database {db}"), e))?;
        baseline::create_database_from(
            &maint,
            db,
            &inner.names.template,
            &inner.names,
            &inner.label,
        )
        .await
    }

    /// Drops the databases and roles created after the baseline, then, if the cluster-wide
    /// digest still differs, restores the baseline roles' attributes, memberships and settings.
    async fn restore_cluster(&self) -> Result<()> {
        let inner = &self.inner;
        let names = &inner.names;
        let maint = inner.maint.get(inner).await?;
        let max_oid = inner.meta.max_oid;
        // Databases the baseline did not have (one a test dropped and created again keeps its
        // place: only the fixture's own database is restored to its baseline contents).
        let databases: Vec<String> = maint
            .query("SELECT datname::text FROM pg_database ORDER BY oid", &[])
            .await
            .map_err(|e| Error::query(&inner.label, "clean: list the databases", e))?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|d| {
                *d != names.database && !names.is_internal(d) && !inner.meta.databases.contains(d)
            })
            .collect();
        for d in &databases {
            maint
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    ident(d)
                ))
                .await
                .map_err(|e| {
                    Error::query(
                        &inner.label,
                        format!("clean: drop database {d}, created after the baseline"),
                        e,
                    )
                })?;
        }
        let roles: Vec<String> = maint
            .query(
                "SELECT rolname FROM pg_authid WHERE oid > $1 ORDER BY oid",
                &[&max_oid],
            )
            .await
            .map_err(|e| {
                Error::query(
                    &inner.label,
                    "clean: list the roles created after the baseline",
                    e,
                )
            })?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !roles.is_empty() {
            let list = roles
                .iter()
                .map(|r| ident(r))
                .collect::<Vec<_>>()
                .join(", ");
            let work = inner.work.get(inner).await?;
            let dropped = async {
                work.batch_execute(&format!("DROP OWNED BY {list} CASCADE"))
                    .await?;
                maint
                    .batch_execute(&format!("DROP OWNED BY {list} CASCADE; DROP ROLE {list}"))
                    .await
            }
            .await;
            if let Err(e) = dropped {
                return Err(Error::fixture(
                    &inner.label,
                    format!(
                        "clean: cannot drop the roles created after the baseline ({}): {} \
                         (a role that owns objects in another database, an isolated one still in use?)",
                        roles.join(", "),
                        describe(&e)
                    ),
                ));
            }
        }
        if self.cluster_digest().await? == inner.meta.global_digest {
            return Ok(());
        }
        let restore = format!(
            "{};\n{}",
            baseline::REVOKE_MEMBERSHIPS.trim(),
            inner.meta.roles_sql
        );
        maint.batch_execute(&restore).await.map_err(|e| {
            Error::query(
                &inner.label,
                "clean: restore the baseline's roles and settings",
                e,
            )
        })?;
        if self.cluster_digest().await? != inner.meta.global_digest {
            return Err(Error::fixture(
                &inner.label,
                "clean: roles, settings or databases still differ from the baseline after restoring them",
            ));
        }
        Ok(())
    }

    /// The cluster-wide digest, as seen from the fixture's database.
    async fn cluster_digest(&self) -> Result<String> {
        let inner = &self.inner;
        let work = inner.work.get(inner).await?;
        baseline::single_text(&work, &inner.names.global_digest_sql())
            .await
            .map_err(|e| {
                Error::query(
                    &inner.label,
                    "clean: compare roles and settings with the baseline",
                    e,
                )
            })
    }
}
