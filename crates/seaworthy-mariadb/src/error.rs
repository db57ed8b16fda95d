//! The crate's error type: every variant names the fixture (its container and database).

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error, as returned by [`MariaDb::with_init`](crate::MariaDb::with_init) closures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong with a MariaDB fixture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The container could not be started, inspected or reached (Seaworthy's core error).
    #[error(transparent)]
    Seaworthy(#[from] seaworthy::Error),

    /// A statement or a connection failed.
    #[error("mariadb fixture {fixture}: {action} failed: {message}")]
    Query {
        /// The fixture: its container and database (`sw-1a2b-3c4d-5 (database test)`).
        fixture: String,
        /// What was being done (`clean: restore the baseline's rows`).
        action: String,
        /// The server's message with its error code and SQLSTATE, or the client's error.
        message: String,
        /// The client's error (boxed: it is large).
        #[source]
        source: Box<mysql_async::Error>,
    },

    /// A step given with [`MariaDb::with_init`](crate::MariaDb::with_init) failed.
    #[error("mariadb fixture {fixture}: init step {step:?} failed: {source}")]
    Init {
        /// The fixture.
        fixture: String,
        /// The step's name.
        step: String,
        /// What the step returned.
        #[source]
        source: BoxError,
    },

    /// The fixture could not do what was asked for a reason of its own.
    #[error("mariadb fixture {fixture}: {reason}")]
    Fixture {
        /// The fixture.
        fixture: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn query(
        fixture: &str,
        action: impl Into<String>,
        source: mysql_async::Error,
    ) -> Self {
        Error::Query {
            fixture: fixture.to_string(),
            action: action.into(),
            message: describe(&source),
            source: Box::new(source),
        }
    }

    pub(crate) fn fixture(fixture: &str, reason: impl Into<String>) -> Self {
        Error::Fixture {
            fixture: fixture.to_string(),
            reason: reason.into(),
        }
    }

    /// The server's error code (`1146` for a missing table), when the error came from the server.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Query { source, .. } => match source.as_ref() {
                mysql_async::Error::Server(e) => Some(e.code),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The server's message with its code and SQLSTATE, or the client's error with its causes.
pub(crate) fn describe(e: &mysql_async::Error) -> String {
    if let mysql_async::Error::Server(s) = e {
        return format!("ERROR {} ({}): {}", s.code, s.state, s.message);
    }
    seaworthy::kit::error_chain(e)
}

/// The trait methods of [`seaworthy::Fixture`] return Seaworthy's error: a core error (an
/// invalid definition is one: [`seaworthy::Error::Invalid`]) stays itself, and every other error
/// becomes [`seaworthy::Error::Fixture`] with this error as its source.
impl From<Error> for seaworthy::Error {
    fn from(e: Error) -> Self {
        let (fixture, action) = match &e {
            Error::Seaworthy(_) => (String::new(), String::new()),
            Error::Query {
                fixture, action, ..
            } => (fixture.clone(), action.clone()),
            Error::Init { fixture, step, .. } => (fixture.clone(), format!("init step {step:?}")),
            Error::Fixture { fixture, reason } => (fixture.clone(), reason.clone()),
        };
        match e {
            Error::Seaworthy(e) => e,
            e => {
                let container = fixture.split(" (").next().unwrap_or_default().to_string();
                seaworthy::Error::fixture("mariadb", container, action, e)
            }
        }
    }
}
