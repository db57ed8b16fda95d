//! The crate's error type: every variant names the fixture (its container and database).

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error, as returned by [`Postgres::with_init`](crate::Postgres::with_init) closures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong with a PostgreSQL fixture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The container could not be started, inspected or reached (Seaworthy's core error).
    #[error(transparent)]
    Seaworthy(#[from] seaworthy::Error),

    /// A statement or a connection failed.
    #[error("postgres fixture {fixture}: {action} failed: {message}")]
    Query {
        /// The fixture: its container and database (`sw-1a2b-3c4d-5 (database app)`).
        fixture: String,
        /// What was being done (`clean: re-create database app from app_baseline`).
        action: String,
        /// The server's message, with its SQLSTATE, detail and hint when it sent them.
        message: String,
        /// The client's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A step given with [`Postgres::with_init`](crate::Postgres::with_init) failed.
    #[error("postgres fixture {fixture}: init step {step:?} failed: {source}")]
    Init {
        /// The fixture.
        fixture: String,
        /// The step's name.
        step: String,
        /// What the step returned.
        #[source]
        source: BoxError,
    },

    /// The fixture could not do what was asked for a reason of its own (no baseline, a role that
    /// cannot be dropped...).
    #[error("postgres fixture {fixture}: {reason}")]
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
        source: tokio_postgres::Error,
    ) -> Self {
        Error::Query {
            fixture: fixture.to_string(),
            action: action.into(),
            message: describe(&source),
            source,
        }
    }

    pub(crate) fn fixture(fixture: &str, reason: impl Into<String>) -> Self {
        Error::Fixture {
            fixture: fixture.to_string(),
            reason: reason.into(),
        }
    }

    /// The SQLSTATE the server answered with, when the error came from the server.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Query { source, .. } => source.code().map(|c| c.code()),
            _ => None,
        }
    }
}

/// The server's message with its SQLSTATE, detail and hint, or the client's error with its cause.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            s.push_str(&format!(" (hint: {hint})"));
        }
        return s;
    }
    seaworthy::kit::error_chain(e)
}

/// The trait methods of [`seaworthy::Fixture`] return Seaworthy's error: a core error (an
/// invalid definition is one: [`seaworthy::Error::Invalid`]) stays itself, and every other error
/// becomes [`seaworthy::Error::Fixture`] with this error as its source (downcast it to branch on
/// it: [`Error::code`]), the client's error behind it.
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
                // The fixture is named `CONTAINER (database DB)`.
                let container = fixture.split(" (").next().unwrap_or_default().to_string();
                seaworthy::Error::fixture("postgres", container, action, e)
            }
        }
    }
}
