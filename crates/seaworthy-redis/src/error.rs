//! The crate's error type: every message names the fixture's container.

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with a Redis fixture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Seaworthy call failed (starting the container, reading a file in it...).
    #[error(transparent)]
    Seaworthy(#[from] seaworthy::Error),

    /// A command sent to Redis failed.
    #[error("redis fixture {container}: {action} failed: {source}")]
    Redis {
        /// The fixture's container.
        container: String,
        /// What was being done (`FLUSHALL`, `restore the configuration`...).
        action: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },

    /// The fixture could not do what was asked, for a reason that is not a client error.
    #[error("redis fixture {container}: {reason}")]
    Fixture {
        /// The fixture's container.
        container: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn redis(
        container: &str,
        action: impl Into<String>,
        source: redis::RedisError,
    ) -> Self {
        Error::Redis {
            container: container.to_string(),
            action: action.into(),
            source,
        }
    }

    pub(crate) fn fixture(container: &str, reason: impl Into<String>) -> Self {
        Error::Fixture {
            container: container.to_string(),
            reason: reason.into(),
        }
    }
}

/// The fixture traits of the core return its error type: a Redis error becomes a
/// [`seaworthy::Error::Container`] naming the container, with the Redis error in the reason.
impl From<Error> for seaworthy::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Seaworthy(e) => e,
            Error::Redis {
                container,
                action,
                source,
            } => seaworthy::Error::Container {
                container,
                reason: format!("redis fixture: {action} failed: {source}"),
            },
            Error::Fixture { container, reason } => seaworthy::Error::Container {
                container,
                reason: format!("redis fixture: {reason}"),
            },
        }
    }
}
