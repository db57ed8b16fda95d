//! Container logs: collected at once or followed as a stream of lines.

use std::fmt;
use std::time::SystemTime;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::stream::{BoxStream, StreamExt};

use crate::container::Container;
use crate::error::{Error, Result};
use crate::session::{on_runtime, runtime};

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl fmt::Display for LogStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        })
    }
}

/// One line of a container's log, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// The stream it was written to.
    pub stream: LogStream,
    /// The text (invalid UTF-8 replaced).
    pub text: String,
}

/// The whole log of a container, as read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logs {
    /// All lines, stdout and stderr interleaved in the order the engine recorded them.
    pub lines: Vec<LogLine>,
}

impl Logs {
    /// The stdout lines joined with `\n`.
    pub fn stdout(&self) -> String {
        self.join(LogStream::Stdout)
    }

    /// The stderr lines joined with `\n`.
    pub fn stderr(&self) -> String {
        self.join(LogStream::Stderr)
    }

    fn join(&self, stream: LogStream) -> String {
        self.lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether any line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.text.contains(needle))
    }
}

/// Which part of the log to read.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep the stream open and deliver new lines as they are written.
    pub follow: bool,
    /// Only lines written at or after this time.
    pub since: Option<SystemTime>,
    /// Only the last N lines (before following).
    pub tail: Option<usize>,
    /// Only stdout (when `Some(Stdout)`) or only stderr (`Some(Stderr)`); both when `None`.
    pub only: Option<LogStream>,
}

impl LogOptions {
    /// Follow the log from the beginning.
    pub fn follow() -> Self {
        LogOptions {
            follow: true,
            ..Default::default()
        }
    }
}

/// A stream of log lines, split at line endings across the engine's frames.
pub(crate) fn line_stream(
    docker: bollard::Docker,
    id: String,
    options: LogsOptions,
) -> BoxStream<'static, Result<LogLine>> {
    let frames = docker.logs(&id, Some(options));
    let state = (
        frames.boxed(),
        Vec::<u8>::new(),
        Vec::<u8>::new(),
        std::collections::VecDeque::<LogLine>::new(),
        false,
    );
    futures_util::stream::unfold(
        state,
        move |(mut frames, mut out, mut err, mut ready, mut ended)| {
            let id = id.clone();
            async move {
                loop {
                    if let Some(line) = ready.pop_front() {
                        return Some((Ok(line), (frames, out, err, ready, ended)));
                    }
                    if ended {
                        return None;
                    }
                    match frames.next().await {
                        Some(Ok(frame)) => {
                            let (buffer, stream, bytes) = match frame {
                                LogOutput::StdErr { message } => {
                                    (&mut err, LogStream::Stderr, message)
                                }
                                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                                    (&mut out, LogStream::Stdout, message)
                                }
                                LogOutput::StdIn { .. } => continue,
                            };
                            buffer.extend_from_slice(&bytes);
                            while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
                                let rest = buffer.split_off(pos + 1);
                                let mut line = std::mem::replace(buffer, rest);
                                line.pop();
                                if line.last() == Some(&b'\r') {
                                    line.pop();
                                }
                                ready.push_back(LogLine {
                                    stream,
                                    text: String::from_utf8_lossy(&line).into_owned(),
                                });
                            }
                        }
                        Some(Err(e)) => {
                            ended = true;
                            let e = Error::docker(format!("read the log of container {id}"), e);
                            return Some((Err(e), (frames, out, err, ready, ended)));
                        }
                        None => {
                            ended = true;
                            // A last line without a line ending.
                            for (buffer, stream) in
                                [(&mut out, LogStream::Stdout), (&mut err, LogStream::Stderr)]
                            {
                                if !buffer.is_empty() {
                                    ready.push_back(LogLine {
                                        stream,
                                        text: String::from_utf8_lossy(buffer).into_owned(),
                                    });
                                    buffer.clear();
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .boxed()
}

fn to_options(options: &LogOptions) -> LogsOptions {
    let since = options
        .since
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i32);
    LogsOptions {
        follow: options.follow,
        stdout: options.only != Some(LogStream::Stderr),
        stderr: options.only != Some(LogStream::Stdout),
        since,
        tail: options
            .tail
            .map_or_else(|| "all".to_string(), |n| n.to_string()),
        ..Default::default()
    }
}

impl Container {
    /// The container's whole log so far.
    pub async fn logs(&self) -> Result<Logs> {
        let docker = self.inner.docker().clone();
        let id = self.inner.name.clone();
        on_runtime(async move {
            let mut stream = line_stream(docker, id, to_options(&LogOptions::default()));
            let mut lines = Vec::new();
            while let Some(line) = stream.next().await {
                lines.push(line?);
            }
            Ok(Logs { lines })
        })
        .await
    }

    /// The log as a stream of lines; with `follow`, it stays open until the container stops.
    ///
    /// The stream is fed by the library's runtime, so it can be polled from any runtime.
    pub fn log_stream(&self, options: LogOptions) -> BoxStream<'static, Result<LogLine>> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let mut lines = line_stream(
            self.inner.docker().clone(),
            self.inner.name.clone(),
            to_options(&options),
        );
        runtime().spawn(async move {
            while let Some(line) = lines.next().await {
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|l| (l, rx)) })
            .boxed()
    }
}
