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

/// The fixture traits of the core return its error type: a core error (an invalid definition
/// is one: [`seaworthy::Error::Invalid`]) stays itself, and every other error becomes
/// [`seaworthy::Error::Fixture`] with this error as its source (the Redis client's error
/// behind it).
impl From<Error> for seaworthy::Error {
    fn from(e: Error) -> Self {
        let (container, action) = match &e {
            Error::Seaworthy(_) => (String::new(), String::new()),
            Error::Redis {
                container, action, ..
            } => (container.clone(), action.clone()),
            Error::Fixture { container, reason } => (container.clone(), reason.clone()),
        };
        match e {
            Error::Seaworthy(e) => e,
            e => seaworthy::Error::fixture("redis", container, action, e),
        }
    }
}
