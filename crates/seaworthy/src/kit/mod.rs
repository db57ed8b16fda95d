//! The native-fixture kit: what every fixture that resets a service through its own protocol
//! needs, written once. A native fixture (PostgreSQL, Redis, RabbitMQ, a plugin's) is then its
//! protocol: how to read the server's state, how to put it back, how to make a namespace.
//!
//! * [`key_hash`]: the one short, stable hash of a definition's key (or of a secret that must
//!   not appear in a key as is): labels, container names and lock files use it.
//! * [`Baseline`]: the baseline kept **in the container** (a file), so that every process of a
//!   test run that attaches to a shared container restores the same state: loaded when the
//!   container has one, recorded (by a closure of the fixture's) and stored when it has none,
//!   under the run's cross-process lock for that container.
//!   [`Baseline::load_or_record`] is the one place where a baseline comes into being: a cache of
//!   baselines hooks there.
//! * [`NamespacePool`]: namespaces (a database, a db index, a virtual host) made ahead of time
//!   and checked out one per test ([`Lease`]); a lease dropped goes back to the pool after the
//!   fixture's reset, which runs on Seaworthy's runtime (the test's runtime may be shutting
//!   down); a lease dropped by a failing test under `SEAWORTHY_KEEP_ON_FAILURE=1` is kept as the
//!   test left it. [`Shared::isolated`](crate::Shared::isolated) keeps the shared hold on the
//!   fixture while a lease lives, so nothing cleans the server under it.
//!   Namespaces that cost more to empty than to make anew (PostgreSQL's and MariaDB's cloned
//!   databases) go in a [`single_use`](NamespacePool::single_use) pool: a released one is
//!   discarded, checkouts make theirs from a stock the fixture keeps in the server and tops up
//!   in the background ([`with_refill`](NamespacePool::with_refill)), and a kept one is recorded
//!   where the server's sweeps leave it ([`with_keep`](NamespacePool::with_keep)).
//!
//! * [`error_chain`]: an error and its causes as one message, for a fixture's own errors.
//! * [`InitStep`]: the steps that build a baseline (statements, or a closure of the user's),
//!   their names in messages and their part of the definition's key ([`init_key`]).
//! * [`migrations`]: a migrations directory as sqlx, golang-migrate, diesel, refinery, Flyway,
//!   dbmate or goose lay it out, read into the ordered up-migrations a fixture's
//!   `with_migrations` runs ([`migrations::read_migrations`]).
//!
//! Keep-on-failure, the error chain ([`Error::Fixture`](crate::Error::Fixture) with the
//! fixture's error as source) and validation before anything is created come with the
//! [contract](crate::FixtureDefinition).
//!
//! # A fixture on the kit
//!
//! `crates/seaworthy/examples/memcached.rs` is a complete native fixture for memcached (its
//! `clean` is `flush_all`, its namespaces are key prefixes handed out from a pool) in 336
//! lines, 274 without blank and comment lines, of which 143 are its memcached protocol client and
//! its `main`: the fixture itself is about 130; ARCHITECTURE.md walks through it.

mod baseline;
mod init;
pub mod migrations;
mod pool;

pub use baseline::{Baseline, Revision};
pub use init::{hash_init_steps, init_key, InitError, InitFn, InitStep};
pub use pool::{Lease, NamespacePool};

/// A short, stable hash of `key` (16 hex digits of its 64-bit FNV-1a): the same in every process
/// and every version of Seaworthy, so a per-run fixture started by one process is found by the
/// others through it. Use it for a definition's key in labels and names, and to put a secret (a
/// password) into a key without the secret itself.
pub fn key_hash(key: &str) -> String {
    format!("{:016x}", crate::identity::fnv1a(key.as_bytes()))
}

/// `error` and its causes as one message (`connection refused: Connection reset by peer (os
/// error 104)`): a client's error often says only the top of what happened, and an error message
/// shows only the top. A cause whose text is already in the message is left out.
///
/// ```
/// #[derive(Debug, thiserror::Error)]
/// #[error("read the reply")]
/// struct Read(#[source] std::io::Error);
///
/// let reset = std::io::Error::new(std::io::ErrorKind::Other, "reset by peer");
/// assert_eq!(seaworthy::kit::error_chain(&Read(reset)), "read the reply: reset by peer");
/// ```
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    crate::error::with_causes(error.to_string(), error.source())
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_hashes_are_stable_and_short() {
        // FNV-1a's published test vector for "a".
        assert_eq!(super::key_hash("a"), "af63dc4c8601ec8c");
        assert_ne!(super::key_hash("redis|a"), super::key_hash("redis|b"));
    }
}
