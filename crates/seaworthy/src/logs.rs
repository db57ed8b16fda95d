//! Container logs: collected at once or followed as a stream of lines.

use std::fmt;
use std::time::SystemTime;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::stream::{BoxStream, StreamExt};

use crate::container::Container;
use crate::error::{Error, Result};
use crate::runtime::{on_runtime, runtime};

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
    /// Only lines the engine recorded at or after this time, to the nanosecond (the engine's
    /// clock: on a remote engine, mind a clock difference).
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

/// A log line with the time the engine recorded it (when the log was read with `timestamps`).
pub(crate) struct StampedLine {
    /// When the engine recorded the line's first part (`None` when the log was read without
    /// timestamps, or the engine gave none).
    pub(crate) time: Option<SystemTime>,
    /// The line.
    pub(crate) line: LogLine,
}

/// A stream of log lines, split at line endings across the engine's frames.
pub(crate) fn line_stream(
    docker: bollard::Docker,
    id: String,
    options: LogsOptions,
) -> BoxStream<'static, Result<LogLine>> {
    stamped_line_stream(docker, id, options)
        .map(|l| l.map(|l| l.line))
        .boxed()
}

/// The lines being put together from one output stream's frames.
#[derive(Default)]
struct Partial {
    bytes: Vec<u8>,
    /// When the engine recorded the first frame of the line in `bytes`.
    time: Option<SystemTime>,
}

/// What [`stamped_line_stream`] carries from one item to the next.
struct LineState {
    frames: BoxStream<'static, std::result::Result<LogOutput, bollard::errors::Error>>,
    timestamps: bool,
    out: Partial,
    err: Partial,
    ready: std::collections::VecDeque<StampedLine>,
    ended: bool,
}

impl LineState {
    /// Splits `frame` (one engine log message, led by its timestamp when asked for) into the
    /// lines it completes.
    fn push(&mut self, stream: LogStream, frame: &[u8]) {
        let (time, payload) = if self.timestamps {
            split_timestamp(frame)
        } else {
            (None, frame)
        };
        let partial = match stream {
            LogStream::Stdout => &mut self.out,
            LogStream::Stderr => &mut self.err,
        };
        if partial.bytes.is_empty() {
            partial.time = time;
        }
        partial.bytes.extend_from_slice(payload);
        while let Some(pos) = partial.bytes.iter().position(|b| *b == b'\n') {
            let rest = partial.bytes.split_off(pos + 1);
            let mut line = std::mem::replace(&mut partial.bytes, rest);
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.ready.push_back(StampedLine {
                time: partial.time,
                line: LogLine {
                    stream,
                    text: String::from_utf8_lossy(&line).into_owned(),
                },
            });
            // The lines after the first in one frame were recorded with it.
            partial.time = time;
        }
    }

    /// Flushes the last lines without a line ending.
    fn finish(&mut self) {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let partial = match stream {
                LogStream::Stdout => &mut self.out,
                LogStream::Stderr => &mut self.err,
            };
            if !partial.bytes.is_empty() {
                let text = String::from_utf8_lossy(&partial.bytes).into_owned();
                partial.bytes.clear();
                self.ready.push_back(StampedLine {
                    time: partial.time,
                    line: LogLine { stream, text },
                });
            }
        }
    }
}

/// The engine's timestamp leading `frame` (`2024-05-01T12:34:56.123456789Z message`) and the
/// message after it; no time and the whole frame when it does not start with one.
fn split_timestamp(frame: &[u8]) -> (Option<SystemTime>, &[u8]) {
    let Some(space) = frame.iter().take(40).position(|b| *b == b' ') else {
        return (None, frame);
    };
    match std::str::from_utf8(&frame[..space])
        .ok()
        .and_then(parse_timestamp)
    {
        Some(time) => (Some(time), &frame[space + 1..]),
        None => (None, frame),
    }
}

/// Parses an RFC 3339 time as the engine writes it (`2024-05-01T12:34:56.123456789Z`, or with
/// an offset); `None` when it is not one, or lies before 1970 (the engine's "never",
/// `0001-01-01T00:00:00Z`).
pub(crate) fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let number = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let (year, month, day) = (
        number(date_parts.next()?)?,
        number(date_parts.next()?)?,
        number(date_parts.next()?)?,
    );
    if rest.len() < 8 {
        return None;
    }
    let (clock, mut zone) = rest.split_at(8);
    let mut clock_parts = clock.splitn(3, ':');
    let (hour, minute, second) = (
        number(clock_parts.next()?)?,
        number(clock_parts.next()?)?,
        number(clock_parts.next()?)?,
    );
    let mut nanos = 0u32;
    if let Some(fraction) = zone.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<9}", &fraction[..digits.min(9)]);
        nanos = padded.parse().ok()?;
        zone = &fraction[digits..];
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = zone[1..].split_once(':')?;
            sign * (number(h)? * 3600 + number(m)? * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second.min(60) - offset;
    let seconds = u64::try_from(seconds).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(seconds, nanos))
}

/// A stream of log lines, each with the time the engine recorded it when `options` asks for
/// timestamps (the engine's timestamps are taken off the text).
pub(crate) fn stamped_line_stream(
    docker: bollard::Docker,
    id: String,
    options: LogsOptions,
) -> BoxStream<'static, Result<StampedLine>> {
    let state = LineState {
        timestamps: options.timestamps,
        frames: docker.logs(&id, Some(options)).boxed(),
        out: Partial::default(),
        err: Partial::default(),
        ready: std::collections::VecDeque::new(),
        ended: false,
    };
    futures_util::stream::unfold(state, move |mut state| {
        let id = id.clone();
        async move {
            loop {
                if let Some(line) = state.ready.pop_front() {
                    return Some((Ok(line), state));
                }
                if state.ended {
                    return None;
                }
                match state.frames.next().await {
                    Some(Ok(frame)) => match frame {
                        LogOutput::StdErr { message } => state.push(LogStream::Stderr, &message),
                        LogOutput::StdOut { message } | LogOutput::Console { message } => {
                            state.push(LogStream::Stdout, &message)
                        }
                        LogOutput::StdIn { .. } => {}
                    },
                    Some(Err(e)) => {
                        state.ended = true;
                        let e = Error::docker(format!("read the log of container {id}"), e);
                        return Some((Err(e), state));
                    }
                    None => {
                        state.ended = true;
                        state.finish();
                    }
                }
            }
        }
    })
    .boxed()
}

/// The engine's options for `options`. The engine takes `since` in whole seconds: it is
/// rounded down here, and the lines before the exact time are dropped by [`since_filter`].
fn to_options(options: &LogOptions) -> LogsOptions {
    let since = options
        .since
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs().min(i32::MAX as u64) as i32);
    LogsOptions {
        follow: options.follow,
        stdout: options.only != Some(LogStream::Stderr),
        stderr: options.only != Some(LogStream::Stdout),
        since,
        timestamps: since > 0,
        tail: options
            .tail
            .map_or_else(|| "all".to_string(), |n| n.to_string()),
        ..Default::default()
    }
}

/// Whether a line recorded at `time` is wanted by `options` (at or after its `since`, to the
/// nanosecond).
fn since_filter(options: &LogOptions, time: Option<SystemTime>) -> bool {
    match (options.since, time) {
        (Some(since), Some(time)) => time >= since,
        _ => true,
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
        let mut lines = stamped_line_stream(
            self.inner.docker().clone(),
            self.inner.name.clone(),
            to_options(&options),
        );
        runtime().spawn(async move {
            while let Some(line) = lines.next().await {
                let line = match line {
                    Ok(l) if !since_filter(&options, l.time) => continue,
                    Ok(l) => Ok(l.line),
                    Err(e) => Err(e),
                };
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|l| (l, rx)) })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{parse_timestamp, split_timestamp};

    fn at(seconds: u64, nanos: u32) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos))
    }

    #[test]
    fn the_engines_timestamps_are_read_to_the_nanosecond() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), at(0, 0));
        assert_eq!(
            parse_timestamp("2026-11-25T13:35:49.791350175Z"),
            at(1_795_613_749, 791_350_175)
        );
        // Trailing zeros trimmed (inspect), or an offset.
        assert_eq!(
            parse_timestamp("2024-02-29T23:59:59.5Z"),
            at(1_709_251_199, 500_000_000)
        );
        assert_eq!(
            parse_timestamp("2024-03-01T01:00:00+01:00"),
            at(1_709_251_200, 0)
        );
        // The engine's "never", and what is not a time.
        assert_eq!(parse_timestamp("0001-01-01T00:00:00Z"), None);
        for bad in [
            "",
            "ready",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "12:00",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_frame_is_split_into_its_timestamp_and_message() {
        let (time, message) = split_timestamp(b"2026-11-25T13:35:49.791350175Z ready\n");
        assert_eq!(time, at(1_795_613_749, 791_350_175));
        assert_eq!(message, b"ready\n");
        let (time, message) = split_timestamp(b"no time here\n");
        assert_eq!(time, None);
        assert_eq!(message, b"no time here\n");
    }
}
