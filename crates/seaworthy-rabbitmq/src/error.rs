//! The crate's error type: every message names the fixture's container.

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with a RabbitMQ fixture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Seaworthy call failed (starting the container, reading a file in it...).
    #[error(transparent)]
    Seaworthy(#[from] seaworthy::Error),

    /// A request to the management HTTP API could not be made or its answer not read.
    #[error("rabbitmq fixture {container}: {action} failed: {source}")]
    Http {
        /// The fixture's container.
        container: String,
        /// What was being done (`GET /api/queues/%2F`).
        action: String,
        /// The client's error.
        #[source]
        source: seaworthy::reqwest::Error,
    },

    /// The management HTTP API answered with an error status.
    #[error(
        "rabbitmq fixture {container}: {action}: the management API answered {status}: {body}"
    )]
    Status {
        /// The fixture's container.
        container: String,
        /// What was being done.
        action: String,
        /// The HTTP status.
        status: u16,
        /// The answer's body (RabbitMQ explains itself there).
        body: String,
    },

    /// An AMQP operation failed.
    #[error("rabbitmq fixture {container}: {action} failed: {source}")]
    Amqp {
        /// The fixture's container.
        container: String,
        /// What was being done (`connect to vhost /`).
        action: String,
        /// The client's error (boxed: it is large).
        #[source]
        source: Box<lapin::Error>,
    },

    /// The fixture could not do what was asked, for a reason that is not a client error.
    #[error("rabbitmq fixture {container}: {reason}")]
    Fixture {
        /// The fixture's container.
        container: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn amqp(container: &str, action: impl Into<String>, source: lapin::Error) -> Self {
        Error::Amqp {
            container: container.to_string(),
            action: action.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn fixture(container: &str, reason: impl Into<String>) -> Self {
        Error::Fixture {
            container: container.to_string(),
            reason: reason.into(),
        }
    }

    /// The HTTP status, when the management API answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The fixture traits of the core return its error type: a core error (an invalid definition
/// is one: [`seaworthy::Error::Invalid`]) stays itself, and every other error becomes
/// [`seaworthy::Error::Fixture`] with this error as its source (downcast it to branch on it:
/// [`Error::status`]), the client's error behind it.
impl From<Error> for seaworthy::Error {
    fn from(e: Error) -> Self {
        let (container, action) = match &e {
            Error::Seaworthy(_) => (String::new(), String::new()),
            Error::Http {
                container, action, ..
            }
            | Error::Status {
                container, action, ..
            }
            | Error::Amqp {
                container, action, ..
            } => (container.clone(), action.clone()),
            Error::Fixture { container, reason } => (container.clone(), reason.clone()),
        };
        match e {
            Error::Seaworthy(e) => e,
            e => seaworthy::Error::fixture("rabbitmq", container, action, e),
        }
    }
}
