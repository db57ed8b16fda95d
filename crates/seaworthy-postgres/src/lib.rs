//! # seaworthy-postgres
//!
//! A real PostgreSQL for your tests, back to its baseline in milliseconds.
//!
//! The shortest test starts a fixture, uses it, and lets it go (the container is removed when
//! the fixture is dropped):
//!
//! ```no_run
//! use seaworthy::FixtureDefinition; // start(), and Fixture for clean()
//! use seaworthy_postgres::Postgres;
//!
//! #[tokio::test]
//! async fn stores_users() -> anyhow::Result<()> {
//!     let pg = Postgres::default()
//!         .with_init_sql("CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL)")
//!         .start()
//!         .await?;
//!     let client = pg.client().await?;
//!     client.execute("INSERT INTO users (name) VALUES ('ada')", &[]).await?;
//!     assert_eq!(pg.list_tables().await?[0].to_string(), "public.users");
//!     Ok(())
//! }
//! ```
//!
//! A suite shares one container and gives each test a database of its own, cloned from the
//! baseline ahead of time (a checkout takes a few milliseconds):
//!
//! ```no_run
//! use seaworthy::Shared;
//! use seaworthy_postgres::{Postgres, SharedPostgres};
//!
//! fn postgres() -> Postgres {
//!     Postgres::default().with_init_sql(include_str!("../tests/schema.sql"))
//! }
//! static PG: Shared<Postgres> = Shared::per_process(postgres); // per_run: one for all of nextest's processes
//!
//! #[tokio::test]
//! async fn one_of_many_parallel_tests() -> anyhow::Result<()> {
//!     let db = PG.isolated_database().await?;
//!     let client = db.client().await?;
//!     client.batch_execute("INSERT INTO users (name) VALUES ('grace')").await?;
//!     Ok(()) // the database is dropped with `db`
//! }
//! ```
//!
//! Or tests take turns on the fixture's own database, each handed it at its baseline by
//! `#[seaworthy::test]` (or `PG.fresh().await?`): [`PostgresFixture::clean_with_report`] runs at hand-out —
//! rows emptied or restored to the seed data, sequences reset, objects, roles and databases the
//! test before created dropped, other sessions closed (an open transaction never blocks it), a
//! few milliseconds when only data changed — and is skipped when the server wrote nothing since
//! the last one (one query). A test that fails never hands its rows to the next one:
//!
//! ```no_run
//! use seaworthy::Shared;
//! use seaworthy_postgres::{Postgres, PostgresFixture};
//!
//! fn postgres() -> Postgres {
//!     Postgres::default().with_init_sql("CREATE TABLE users (id serial PRIMARY KEY, name text)")
//! }
//! static PG: Shared<Postgres> = Shared::per_process(postgres);
//!
//! #[seaworthy::test]
//! async fn starts_with_no_users(pg: &PostgresFixture) -> anyhow::Result<()> {
//!     let client = pg.client().await?;
//!     client.execute("INSERT INTO users (name) VALUES ('ada')", &[]).await?;
//!     let count: i64 = client.query_one("SELECT count(*) FROM users", &[]).await?.get(0);
//!     assert_eq!(count, 1);
//!     Ok(())
//! }
//! # fn main() {} // the statics above are module items, as in a test file
//! ```
//!
//! ## What the baseline is
//!
//! The database right after the definition's init steps ([`Postgres::with_init_sql`],
//! [`Postgres::with_init`]), recorded once per container as a template database
//! (`<db>_baseline`) plus a few digests, so that every process attached to a container shared
//! per run sees the same baseline. See [`PostgresFixture::clean_with_report`] for how it is restored.
//!
//! ## Images
//!
//! [`Postgres`] defaults to the official `postgres:16` image. Image substitution maps it to a
//! local stand-in with the same contract (`seaworthy.toml`'s `[images]`, or
//! `SEAWORTHY_IMAGE_MAP=postgres=my/postgres`).

#![warn(missing_docs)]

mod baseline;
mod cache;
mod clean;
mod connect;
mod definition;
mod error;
mod fixture;
pub mod inspect;
mod isolation;

pub use clean::{CleanPath, CleanReport};
pub use definition::{InitContext, Postgres, DATA_DIR, DURABILITY_OFF, MAX_DATABASE_NAME, PORT};
pub use error::{BoxError, Error, Result};
pub use fixture::PostgresFixture;
pub use inspect::{Extension, Table};
pub use isolation::{IsolatedDatabase, SharedPostgres};

/// Re-exported so tests can use the client without a separate dependency.
pub use tokio_postgres;
