//! Seaworthy's extension of the schema: `daemonTests`, tests of the image running as a daemon.

use serde::Deserialize;

use super::{yes, CommandTest, EnvVar, Pattern, Timeout};

/// Seaworthy's extension: the image started as it would be in production, then checked while it
/// runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DaemonTest {
    /// The test's name (prefixes the names of its checks).
    pub name: String,
    /// Extra environment variables (after `globalEnvVars`).
    #[serde(default)]
    pub env_vars: Vec<EnvVar>,
    /// Replaces the image's entrypoint.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's command.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// When the daemon counts as started (all given conditions must hold).
    #[serde(default)]
    pub wait_for: Option<WaitSpec>,
    /// Deadline for the start and `waitFor` (default 60 s).
    #[serde(default)]
    pub startup_timeout: Option<Timeout>,
    /// Log lines that must appear, each within its timeout.
    #[serde(default)]
    pub expected_logs: Vec<LogExpectation>,
    /// Regexes no log line may match (checked after the other checks).
    #[serde(default)]
    pub excluded_logs: Vec<Pattern>,
    /// HTTP requests and what they must answer.
    #[serde(default)]
    pub http_tests: Vec<HttpCheck>,
    /// Processes that must (not) run.
    #[serde(default)]
    pub process_tests: Vec<ProcessCheck>,
    /// Commands run in the running daemon's container, in order.
    #[serde(default)]
    pub command_tests: Vec<CommandTest>,
}

/// `waitFor` of a daemon test.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitSpec {
    /// A log line matching this regex.
    #[serde(default)]
    pub log: Option<Pattern>,
    /// How many lines must match `log` (default 1).
    #[serde(default)]
    pub log_times: Option<usize>,
    /// An HTTP GET answering.
    #[serde(default)]
    pub http: Option<HttpWait>,
    /// A TCP port accepting connections.
    #[serde(default)]
    pub tcp: Option<u16>,
    /// The image's healthcheck reporting healthy.
    #[serde(default, deserialize_with = "super::values::bool11")]
    pub healthy: bool,
    /// Running for this long without exiting.
    #[serde(default)]
    pub running_for: Option<Timeout>,
}

/// `waitFor.http`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpWait {
    /// The container port.
    pub port: u16,
    /// The path (default `/`).
    #[serde(default = "root_path")]
    pub path: String,
    /// The status (any 2xx when not given).
    #[serde(default)]
    pub status: Option<u16>,
}

fn root_path() -> String {
    "/".to_string()
}

/// An expected log line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogExpectation {
    /// The regex a line must match.
    pub pattern: Pattern,
    /// How long to wait for it after the daemon started (default 10 s).
    #[serde(default)]
    pub timeout: Option<Timeout>,
    /// Only lines of this stream.
    #[serde(default)]
    pub stream: Option<StreamName>,
    /// How many lines must match (default 1).
    #[serde(default)]
    pub times: Option<usize>,
}

/// `stdout` or `stderr`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StreamName {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// An HTTP check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpCheck {
    /// The check's name (default `METHOD path`).
    #[serde(default)]
    pub name: Option<String>,
    /// The container port.
    pub port: u16,
    /// The path (default `/`).
    #[serde(default = "root_path")]
    pub path: String,
    /// The method (default `GET`).
    #[serde(default)]
    pub method: Option<String>,
    /// The expected status (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// Regexes the body must match.
    #[serde(default)]
    pub expected_body: Vec<Pattern>,
    /// Regexes the body must not match.
    #[serde(default)]
    pub excluded_body: Vec<Pattern>,
    /// Headers that must be present, their values exact or regexes.
    #[serde(default)]
    pub headers: Vec<EnvVar>,
}

/// A process check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessCheck {
    /// The check's name (default `process /regex/`).
    #[serde(default)]
    pub name: Option<String>,
    /// A regex the command line must match.
    pub args: Pattern,
    /// The user it must run as: a name from the container's `/etc/passwd`, or a uid.
    #[serde(default)]
    pub user: Option<String>,
    /// Exactly this many must match (at least one when not given).
    #[serde(default)]
    pub count: Option<usize>,
    /// Whether it must run (default true); `false` means no process may match.
    #[serde(default = "yes", deserialize_with = "super::values::bool11")]
    pub should_exist: bool,
}
