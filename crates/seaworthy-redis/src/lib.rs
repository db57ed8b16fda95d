//! # seaworthy-redis
//!
//! A real Redis for your tests, back to its baseline in about a millisecond.
//!
//! The shortest test: start one, use it, it is removed when dropped.
//!
//! ```no_run
//! use redis::AsyncCommands;
//! use seaworthy::FixtureDefinition;
//! use seaworthy_redis::Redis;
//!
//! #[tokio::test]
//! async fn remembers() -> anyhow::Result<()> {
//!     let redis = Redis::new().start().await?;
//!     let mut conn = redis.connection_manager();
//!     let _: () = conn.set("greeting", "hello").await?;
//!     assert_eq!(conn.get::<_, String>("greeting").await?, "hello");
//!     Ok(())
//! }
//! ```
//!
//! Starting a container for each test costs about half a second; share one instead. A test
//! given the shared server by `#[seaworthy::test]` has it alone, at its baseline when the test
//! starts (keys of every db, scripts, functions, subscribers, config and users are reset at
//! hand-out, whatever the test before did, failed or not):
//!
//! ```no_run
//! use seaworthy::Shared;
//! use seaworthy_redis::{Redis, RedisFixture};
//!
//! static REDIS: Shared<Redis> = Shared::per_process(Redis::new); // per_run under nextest
//!
//! #[seaworthy::test]
//! async fn starts_empty(redis: &RedisFixture) -> anyhow::Result<()> {
//!     assert!(redis.keys("*", 0).await?.is_empty());
//!     Ok(())
//! }
//! # fn main() {} // the statics above are module items, as in a test file
//! ```
//!
//! Without the attribute, `let redis = REDIS.fresh().await?;` is the same hand-out.
//!
//! Or let tests run in parallel, each in a database of its own, flushed when its guard drops
//! ([`Shared::isolated`](seaworthy::Shared::isolated): the guard keeps the server held, so no
//! test flushes the whole server under it):
//!
//! ```no_run
//! use redis::AsyncCommands;
//! use seaworthy::Shared;
//! use seaworthy_redis::Redis;
//!
//! static REDIS: Shared<Redis> = Shared::per_process(Redis::new);
//!
//! #[tokio::test]
//! async fn in_its_own_database() -> anyhow::Result<()> {
//!     let redis = REDIS.isolated().await?; // `redis: &Isolated<RedisFixture>` with #[seaworthy::test]
//!     let mut conn = redis.connection_manager();
//!     let _: () = conn.set(redis.key("counter"), 1).await?;
//!     assert_eq!(redis.keys("*").await?, ["counter"]);
//!     Ok(())
//! }
//! # fn main() {} // the statics above are module items, as in a test file
//! ```
//!
//! ## What is what
//!
//! * [`Redis`] is the definition: the official `redis:7` image (image substitution in
//!   `seaworthy.toml` or `SEAWORTHY_IMAGE_MAP` replaces it), an optional password, server
//!   arguments. It is ready when the server answers `PING` with `PONG`, not when a log line shows.
//! * [`RedisFixture`] is the running server: [`connection_manager`](RedisFixture::connection_manager)
//!   (a shared, reconnecting connection whose task runs on Seaworthy's runtime, so it serves
//!   every test's runtime), the [`ConnectionInfo`](seaworthy::ConnectionInfo) (its `Display` and
//!   `Debug` hide the password), and inspection: [`keys`](RedisFixture::keys),
//!   [`info`](RedisFixture::info), [`config`](RedisFixture::config).
//! * [`clean`](seaworthy::Fixture::clean) restores the whole baseline: see
//!   [`RedisFixture`]'s `Fixture` implementation.
//! * The baseline is what the definition's init steps leave ([`Redis::with_seed_commands`],
//!   [`Redis::with_seed_file`], [`Redis::with_init`] with an [`InitContext`]): keys with their
//!   values, types and time to live in every database, functions, configuration and users;
//!   empty without them. [`Redis::with_baseline_cache`] keeps it in an image across runs.
//! * [`IsolatedRedis`] is a test's private database; the [`isolation`] module says how databases
//!   are handed out, and what happens when they run out.

#![warn(missing_docs)]

mod baseline;
mod cache;
mod definition;
mod error;
mod fixture;
mod info;
mod init;
pub mod isolation;

pub use definition::{Redis, DEFAULT_IMAGE, REDIS_PORT};
pub use error::{Error, Result};
pub use fixture::RedisFixture;
pub use info::RedisInfo;
pub use init::InitContext;
pub use isolation::IsolatedRedis;

/// Re-exported so tests can use the client without naming a version of it.
pub use redis;
