//! # seaworthy-mariadb
//!
//! A real MariaDB (or MySQL-compatible server) for your tests, back to its baseline in one
//! round trip.
//!
//! The shortest test starts a fixture, uses it, and lets it go (the container is removed when
//! the fixture is dropped):
//!
//! ```no_run
//! use mysql_async::prelude::Queryable;
//! use seaworthy::FixtureDefinition;
//! use seaworthy_mariadb::MariaDb;
//!
//! #[tokio::test]
//! async fn stores_users() -> anyhow::Result<()> {
//!     let db = MariaDb::default()
//!         .with_init_sql("CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT NOT NULL)")
//!         .start()
//!         .await?;
//!     let mut conn = db.conn().await?;
//!     conn.query_drop("INSERT INTO users (name) VALUES ('ada')").await?;
//!     assert_eq!(db.list_tables().await?, ["users"]);
//!     Ok(())
//! }
//! ```
//!
//! Tests take turns on the fixture's own database, each handed it at its baseline by
//! `#[seaworthy::test]` (or `DB.fresh().await?`): [`MariaDbFixture::clean_with_report`] runs at hand-out —
//! changed tables restored from shadow copies, AUTO_INCREMENT counters reset, tables, views,
//! routines, databases and users the test before created dropped, other sessions ended — so a
//! test that fails never hands its rows to the next one:
//!
//! ```no_run
//! use mysql_async::prelude::Queryable;
//! use seaworthy::Shared;
//! use seaworthy_mariadb::{MariaDb, MariaDbFixture};
//!
//! fn mariadb() -> MariaDb {
//!     MariaDb::default().with_init_sql("CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT)")
//! }
//! static DB: Shared<MariaDb> = Shared::per_process(mariadb);
//!
//! #[seaworthy::test]
//! async fn starts_with_no_users(db: &MariaDbFixture) -> anyhow::Result<()> {
//!     let mut conn = db.conn().await?;
//!     conn.query_drop("INSERT INTO users (name) VALUES ('ada')").await?;
//!     let count: Option<i64> = conn.query_first("SELECT COUNT(*) FROM users").await?;
//!     assert_eq!(count, Some(1));
//!     Ok(())
//! }
//! # fn main() {} // the statics above are module items, as in a test file
//! ```
//!
//! Or parallel tests each get a database of their own, cloned from the baseline ahead of time
//! ([`SharedMariaDb::isolated_database`], an `&Isolated<MariaDbFixture>` parameter).
//!
//! ## What the baseline is
//!
//! The database right after the image's init scripts and the definition's init steps
//! ([`MariaDb::with_init_sql`], [`MariaDb::with_init`]), recorded once per container in the
//! database `<db>_baseline`: a shadow copy of every table and of the privilege tables, the
//! objects' definitions, and a stored procedure generated from them that compares each table's
//! rows (count and hashes), the schema and the server's users and databases with the baseline
//! and restores only what differs. See [`MariaDbFixture::clean_with_report`].
//!
//! ## Images
//!
//! [`MariaDb`] defaults to the official `mariadb:11.4` image. Image substitution maps it to a
//! local stand-in with the same contract (`seaworthy.toml`'s `[images]`, or
//! `SEAWORTHY_IMAGE_MAP=mariadb=my/mariadb`).

#![warn(missing_docs)]

mod baseline;
mod clean;
mod connect;
mod definition;
mod error;
mod fixture;
mod isolation;
mod migrations;
mod sql;

pub use clean::{CleanPath, CleanReport};
pub use definition::{InitContext, MariaDb, DATA_DIR, INIT_DIR, MAX_DATABASE_NAME, PORT};
pub use error::{BoxError, Error, Result};
pub use fixture::MariaDbFixture;
pub use isolation::{IsolatedDatabase, SharedMariaDb};

/// Re-exported so tests can use the client without a separate dependency.
pub use mysql_async;
