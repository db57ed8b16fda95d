//! # seaworthy-rabbitmq
//!
//! A real RabbitMQ for your tests, back to its baseline in tens of milliseconds through the
//! management HTTP API, where restarting the broker takes seconds.
//!
//! The shortest test: start one, use it, it is removed when dropped.
//!
//! ```no_run
//! use seaworthy::FixtureDefinition;
//! use seaworthy_rabbitmq::RabbitMq;
//!
//! #[tokio::test]
//! async fn declares_a_queue() -> anyhow::Result<()> {
//!     let rabbit = RabbitMq::new().start().await?;
//!     let channel = rabbit.channel().await?;
//!     channel.queue_declare("jobs".into(), Default::default(), Default::default()).await?;
//!     assert_eq!(rabbit.queues("/").await?[0].name, "jobs");
//!     Ok(())
//! }
//! ```
//!
//! Starting a broker takes several seconds: share one. A test given the shared broker by
//! `#[seaworthy::test]` has it alone, at its baseline when the test starts (queues, exchanges,
//! bindings, policies, vhosts and users are reset at hand-out, whatever the test before did,
//! failed or not):
//!
//! ```no_run
//! use seaworthy::Shared;
//! use seaworthy_rabbitmq::{RabbitMq, RabbitMqFixture};
//!
//! static RABBIT: Shared<RabbitMq> = Shared::per_process(RabbitMq::new); // per_run under nextest
//!
//! #[seaworthy::test]
//! async fn starts_from_the_baseline(rabbit: &RabbitMqFixture) -> anyhow::Result<()> {
//!     assert!(rabbit.queues("/").await?.is_empty());
//!     Ok(())
//! }
//! # fn main() {} // the statics above are module items, as in a test file
//! ```
//!
//! Without the attribute, `let rabbit = RABBIT.fresh().await?;` is the same hand-out.
//!
//! Or let tests run in parallel, each in a virtual host of its own, deleted when its guard drops
//! ([`Shared::isolated`](seaworthy::Shared::isolated): the guard keeps the broker held, so no
//! test resets the whole broker under it):
//!
//! ```no_run
//! use seaworthy::Shared;
//! use seaworthy_rabbitmq::RabbitMq;
//!
//! static RABBIT: Shared<RabbitMq> = Shared::per_process(RabbitMq::new);
//!
//! #[tokio::test]
//! async fn in_its_own_vhost() -> anyhow::Result<()> {
//!     let rabbit = RABBIT.isolated().await?; // `rabbit: &Isolated<RabbitMqFixture>` with #[seaworthy::test]
//!     let channel = rabbit.channel().await?;
//!     channel.queue_declare("jobs".into(), Default::default(), Default::default()).await?;
//!     assert_eq!(rabbit.queues().await?.len(), 1);
//!     Ok(())
//! }
//! # fn main() {} // the statics above are module items, as in a test file
//! ```
//!
//! ## What is what
//!
//! * [`RabbitMq`] is the definition: the official `rabbitmq:3-management` image (image
//!   substitution in `seaworthy.toml` or `SEAWORTHY_IMAGE_MAP` replaces it), its default user,
//!   configuration lines. It is ready when an AMQP connection is greeted and the management API
//!   answers for the user, not when a log line shows.
//! * [`RabbitMqFixture`] is the running broker: AMQP connections and channels (their tasks run on
//!   Seaworthy's runtime, so they serve every test's runtime), the
//!   [`ConnectionInfo`](seaworthy::ConnectionInfo)s (their `Display` and `Debug` hide the
//!   password), the [`Management`] API client, and inspection: vhosts, queues with message
//!   counts, exchanges, bindings, users, policies.
//! * [`clean`](seaworthy::Fixture::clean) restores the whole baseline: see
//!   [`RabbitMqFixture`]'s `Fixture` implementation.
//! * [`IsolatedRabbitMq`] is a test's private virtual host; see the [`isolation`] module.
//! * Init steps build the baseline: [definitions](RabbitMq::with_definitions) (the JSON that
//!   `rabbitmqctl export_definitions` writes, or [a file](RabbitMq::with_definitions_file)) and
//!   [closures](RabbitMq::with_init). With the
//!   [baseline cache](RabbitMq::with_baseline_cache) on, the broker they leave is kept in an
//!   image, and later runs start from it without running them again.

#![warn(missing_docs)]

mod baseline;
mod cache;
mod definition;
mod error;
mod fixture;
pub mod isolation;
pub mod management;

pub use definition::{
    BoxError, InitContext, RabbitMq, AMQP_PORT, CACHED_DATA_DIR, CACHED_HOSTNAME, CONFIG_PATH,
    DATA_DIR, DEFAULT_IMAGE, MANAGEMENT_PORT,
};
pub use error::{Error, Result};
pub use fixture::RabbitMqFixture;
pub use isolation::IsolatedRabbitMq;
pub use management::{
    BindingInfo, ExchangeInfo, Management, Permission, PolicyInfo, QueueInfo, UserInfo, VHostInfo,
};

/// Re-exported so tests can use the AMQP client without naming a version of it.
pub use lapin;
