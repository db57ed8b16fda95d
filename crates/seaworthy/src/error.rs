//! The one error type of the core crate.
//!
//! Every variant names the thing at fault (image, container, network, volume, path, spec string) so a
//! failing test explains itself without a debugger.

use std::time::Duration;

/// A result with Seaworthy's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Seaworthy's core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Docker engine could not be reached or refused the connection.
    #[error("cannot reach the Docker engine at {host}: {source} ({})", unavailable_hint(.host))]
    EngineUnavailable {
        /// The endpoint that was tried (`unix:///var/run/docker.sock`, `tcp://...`).
        host: String,
        /// The underlying error.
        #[source]
        source: bollard::errors::Error,
    },

    /// No engine was found: every place discovery looked at, in order, and why each gave none.
    #[error("{}", describe_search(tried, configured))]
    EngineNotFound {
        /// The places looked at, in order.
        tried: Vec<Tried>,
        /// The place that named the engine (`DOCKER_HOST`...), when one did: discovery used
        /// only that one.
        configured: Option<String>,
    },

    /// A Docker API call failed.
    #[error("{action} failed: {source}{}", engine_hint(source))]
    Docker {
        /// What was being done, naming the resource (`create container sw-1a2b-web`).
        action: String,
        /// The underlying error.
        #[source]
        source: bollard::errors::Error,
    },

    /// A string could not be parsed (image reference, mount, port, env entry...).
    #[error("invalid {kind} {input:?}: {reason}")]
    Invalid {
        /// What kind of thing the string should have been (`image reference`, `mount`...).
        kind: &'static str,
        /// The string as given.
        input: String,
        /// Why it was refused.
        reason: String,
    },

    /// An image is not present locally and could not be pulled.
    #[error("image {image}: {reason}")]
    Image {
        /// The image reference.
        image: String,
        /// What went wrong.
        reason: String,
    },

    /// A wait condition did not hold before its deadline, or can no longer hold.
    #[error("container {container}: {condition} did not hold {why}\n--- last {} log lines of {container} ---\n{}", log_tail.len(), log_tail.join("\n"))]
    Wait {
        /// Name of the container waited on.
        container: String,
        /// The condition that did not hold, as text.
        condition: String,
        /// Why: `within 5s` or `because the container exited with code 1`.
        why: String,
        /// The last lines of the container's log (stdout and stderr, interleaved).
        log_tail: Vec<String>,
    },

    /// An operation on a container failed for a reason that is not a Docker API error.
    #[error("container {container}: {reason}")]
    Container {
        /// Name of the container.
        container: String,
        /// What went wrong.
        reason: String,
    },

    /// A path inside a container does not exist.
    #[error("container {container}: no such file or directory: {path}")]
    NotFound {
        /// Name of the container.
        container: String,
        /// The path that was asked for.
        path: String,
    },

    /// An operation took longer than its deadline.
    #[error("{action} did not finish within {timeout:?}")]
    Timeout {
        /// What was being done.
        action: String,
        /// The deadline that passed.
        timeout: Duration,
    },

    /// An HTTP request to a container failed.
    #[error("HTTP request to container {container} failed: {source}")]
    Http {
        /// Name of the container.
        container: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// A part of a stack (a member container, a network or a volume) could not be created, started
    /// or made ready; everything the stack had created was removed before this was returned.
    #[error("stack {stack}: {kind} {member} failed: {source}")]
    Stack {
        /// The stack's id (`NAME-1a2b`), the value of its `io.seaworthy.stack` label.
        stack: String,
        /// What failed: `member`, `network` or `volume`.
        kind: &'static str,
        /// Its name in the stack (a member's name is how the others reach it).
        member: String,
        /// Why (a failed wait carries the member's log tail).
        #[source]
        source: Box<Error>,
    },

    /// An image build failed: the Dockerfile is named and the end of the build's output kept.
    #[error("building image {image} from {dockerfile} failed: {reason}\n--- last {} lines of the build output ---\n{}", log_tail.len(), log_tail.join("\n"))]
    Build {
        /// The tag being built.
        image: String,
        /// The Dockerfile (its path, or `inline Dockerfile`).
        dockerfile: String,
        /// The engine's error message.
        reason: String,
        /// The last lines of the build output.
        log_tail: Vec<String>,
    },

    /// A fixture could not do what was asked (start, attach, clean, isolate). The source is the
    /// fixture crate's own error (`seaworthy_postgres::Error`...), whose source in turn is the
    /// client's (tokio-postgres, redis, lapin...): downcast it to branch on it. The message is the
    /// fixture's own, which names the fixture, its container and what was being done.
    #[error("{source}")]
    Fixture {
        /// The fixture's kind (`postgres`, a plugin's id).
        fixture: String,
        /// The container it runs in.
        container: String,
        /// What was being done (`clean`, `isolate`, `attach`...).
        action: String,
        /// The fixture's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A local I/O error (reading a file to copy into a container, a tar archive...).
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn docker(action: impl Into<String>, source: bollard::errors::Error) -> Self {
        Error::Docker {
            action: action.into(),
            source,
        }
    }

    /// An [`Error::Invalid`]: the `input` given as a `kind` (`log pattern`, `postgres database
    /// name`) is refused for `reason`.
    pub fn invalid(kind: &'static str, input: &str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            kind,
            input: input.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            action: action.into(),
            source,
        }
    }

    /// An [`Error::Fixture`]: the `fixture` of that kind (`postgres`) in `container` failed at
    /// `action`, for the reason `source` (the fixture crate's own error, kept as the source).
    pub fn fixture(
        fixture: impl Into<String>,
        container: impl Into<String>,
        action: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Fixture {
            fixture: fixture.into(),
            container: container.into(),
            action: action.into(),
            source: Box::new(source),
        }
    }

    /// The HTTP status code of a failed Docker API call, if the engine answered with one.
    pub fn docker_status(&self) -> Option<u16> {
        match self {
            Error::Docker {
                source: bollard::errors::Error::DockerResponseServerError { status_code, .. },
                ..
            } => Some(*status_code),
            _ => None,
        }
    }

    /// True when the engine could not be reached at all: not running, stopped or restarting
    /// since the session connected, or its socket gone (as opposed to an engine that answered
    /// with an error).
    pub fn is_engine_unavailable(&self) -> bool {
        match self {
            Error::EngineUnavailable { .. } | Error::EngineNotFound { .. } => true,
            Error::Docker { source, .. } => unreachable_engine(source),
            _ => false,
        }
    }

    /// True when nothing answered at the endpoint (connection refused, socket missing, connection
    /// reset): the engine is down or gone. False for an engine that answered, even with an error,
    /// or that was too slow to (busy).
    pub(crate) fn is_endpoint_silent(&self) -> bool {
        match self {
            Error::EngineNotFound { .. } => true,
            Error::EngineUnavailable { source, .. } | Error::Docker { source, .. } => {
                unreachable_engine(source)
            }
            _ => false,
        }
    }

    /// True when the engine answered 404 (no such container, image, network or volume).
    pub fn is_not_found(&self) -> bool {
        self.docker_status() == Some(404) || matches!(self, Error::NotFound { .. })
    }
}

/// `text` followed by `cause` and its causes, each after `: `, leaving out a cause whose text is
/// already in the message (a client's error often repeats its source): an error message shows
/// only the top of a chain, and the reason is often deep in it.
pub(crate) fn with_causes(
    mut text: String,
    mut cause: Option<&(dyn std::error::Error + 'static)>,
) -> String {
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

/// The status code of a bollard error, if the engine answered with one.
pub(crate) fn status_of(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Whether `err` says the engine could not be reached (connection refused, socket missing or
/// reset), rather than that it answered.
fn unreachable_engine(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as B;
    match err {
        B::SocketNotFoundError(_) => return true,
        // Transparent: its `source()` is the I/O error's own source, so look at it here.
        B::IOError { err } => return io_unreachable(err),
        _ => {}
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io_unreachable(io);
        }
        cause = e.source();
    }
    false
}

fn io_unreachable(io: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        io.kind(),
        K::ConnectionRefused | K::NotFound | K::ConnectionReset | K::BrokenPipe
    )
}

/// What to check when the engine at `host` cannot be reached, by the kind of endpoint.
fn unavailable_hint(host: &str) -> &'static str {
    if host.starts_with("ssh://") {
        "can `ssh` log in there without a prompt and run `docker system dial-stdio`? \
         SEAWORTHY_SSH_KEY names the key; `seaworthy doctor` shows where Seaworthy looked"
    } else if host.starts_with("tcp://")
        || host.starts_with("https://")
        || host.starts_with("http://")
    {
        "is an engine listening at that address, and are DOCKER_CERT_PATH's certificates the \
         ones it expects? `seaworthy doctor` shows where Seaworthy looked"
    } else {
        "is dockerd running? (or Podman's API service, on that socket) DOCKER_HOST selects \
         another engine; `seaworthy doctor` shows where Seaworthy looked"
    }
}

/// The hint added to a failed API call whose engine could not be reached.
fn engine_hint(err: &bollard::errors::Error) -> &'static str {
    if unreachable_engine(err) {
        " (the Docker engine cannot be reached: is dockerd running?)"
    } else {
        ""
    }
}

/// One place discovery looked at, and what it found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// The place (`DOCKER_HOST`, `Docker context "remote"`, `rootless Docker`...).
    pub place: String,
    /// The endpoint found there, if any.
    pub endpoint: Option<String>,
    /// Why it gave no engine (`not set`, `no such socket`, the connection error...).
    pub outcome: String,
}

impl std::fmt::Display for Tried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.endpoint {
            Some(endpoint) => write!(f, "{} ({endpoint}): {}", self.place, self.outcome),
            None => write!(f, "{}: {}", self.place, self.outcome),
        }
    }
}

/// The text of [`Error::EngineNotFound`].
pub(crate) fn describe_search(tried: &[Tried], configured: &Option<String>) -> String {
    let mut text = match configured {
        Some(place) => format!(
            "the Docker engine named by {place} did not answer (an engine that is configured is \
             the one used: Seaworthy does not fall back to another). Places looked at, in order:"
        ),
        None => "no Docker engine answered. Places looked at, in order:".to_string(),
    };
    for (i, t) in tried.iter().enumerate() {
        text.push_str(&format!("\n  {}. {t}", i + 1));
    }
    text.push_str(
        "\nStart an engine, or name one with DOCKER_HOST, a Docker context (`docker context use \
         NAME`) or `[engine] host` in seaworthy.toml; `seaworthy doctor` shows what Seaworthy \
         finds.",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_engine_is_explained_by_its_kind_of_endpoint() {
        assert!(unavailable_hint("ssh://root@10.0.0.5").contains("dial-stdio"));
        assert!(unavailable_hint("tcp://127.0.0.1:2376").contains("DOCKER_CERT_PATH"));
        assert!(unavailable_hint("unix:///run/podman/podman.sock").contains("is dockerd running?"));
        for host in ["ssh://h", "tcp://h:2375", "unix:///var/run/docker.sock"] {
            assert!(
                unavailable_hint(host).contains("seaworthy doctor"),
                "{host}"
            );
        }
    }

    #[test]
    fn an_engine_that_cannot_be_reached_is_told_apart_from_one_that_answered() {
        let refused = Error::docker(
            "create container sw-1-web",
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        );
        assert!(refused.is_engine_unavailable());
        assert!(
            refused.to_string().contains("is dockerd running?"),
            "{refused}"
        );
        let answered = Error::docker(
            "create container sw-1-web",
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                message: "no such image".into(),
            },
        );
        assert!(!answered.is_engine_unavailable());
        assert!(!answered.to_string().contains("dockerd"), "{answered}");
    }
}
