//! Running external programs (`docker`, `mmdebstrap`, `gcc`, ...) with their
//! output recorded in a log file, and errors that show what went wrong.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use anyhow::{anyhow, Context, Result};

/// How many lines of a failed command's output an error shows.
const TAIL_LINES: usize = 30;

/// The log file of one image build: every command run for the build, and
/// its output (stdout and stderr interleaved), is appended to it.
pub struct Log {
    /// Where the log is.
    path: PathBuf,
    /// The open log, in append mode.
    file: File,
}

impl Log {
    /// Creates (or truncates) the log file at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The path of the log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a line of text (for example the command about to run).
    pub fn note(&self, line: &str) -> Result<()> {
        writeln!(&self.file, "{line}")
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// A new handle on the log, to pass as a child's stdout or stderr.
    fn stdio(&self) -> Result<Stdio> {
        let file = self
            .file
            .try_clone()
            .with_context(|| format!("cannot reopen {}", self.path.display()))?;
        Ok(Stdio::from(file))
    }

    /// The last `TAIL_LINES` lines of the log, indented for an error message.
    fn tail(&self) -> String {
        match std::fs::read(&self.path) {
            Ok(bytes) => indent_tail(&String::from_utf8_lossy(&bytes)),
            Err(err) => format!("    (cannot read the log: {err})"),
        }
    }
}

/// Runs `cmd` to completion with stdin closed and its output appended to
/// `log`. Fails if it cannot be started or exits unsuccessfully; the error
/// then shows the end of its output.
pub fn run_logged(cmd: &mut Command, log: &Log) -> Result<()> {
    log.note(&format!("\n$ {}", display(cmd)))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(log.stdio()?)
        .stderr(log.stdio()?)
        .status()
        .map_err(|err| spawn_error(cmd, err))?;
    check_status(cmd, status, log)
}

/// Runs `cmd` like [`run_logged`], but returns its standard output (trimmed)
/// instead of logging it. Its standard error still goes to the log.
pub fn run_captured(cmd: &mut Command, log: &Log) -> Result<String> {
    log.note(&format!("\n$ {}", display(cmd)))?;
    let output = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log.stdio()?)
        .output()
        .map_err(|err| spawn_error(cmd, err))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    log.note(&stdout)?;
    check_status(cmd, output.status, log)?;
    Ok(stdout)
}

/// Runs a short query (such as `docker image inspect`) and returns its
/// output whatever the exit status; only failing to start it is an error.
pub fn query(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|err| spawn_error(cmd, err))
}

/// Turns an unsuccessful exit status into an error showing the log's tail.
fn check_status(cmd: &Command, status: ExitStatus, log: &Log) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    Err(anyhow!(
        "`{}` failed ({status})\nlast lines of its output (full log: {}):\n{}",
        display(cmd),
        log.path().display(),
        log.tail()
    ))
}

/// The error for a program that could not be started, with a hint on how
/// to install it when it is missing.
fn spawn_error(cmd: &Command, err: io::Error) -> anyhow::Error {
    let program = cmd.get_program().to_string_lossy().into_owned();
    if err.kind() == io::ErrorKind::NotFound {
        let hint = match program.as_str() {
            "docker" => "install Docker (on Debian: `apt-get install docker.io`)",
            "mmdebstrap" => "install it (on Debian: `apt-get install mmdebstrap`)",
            "gcc" => "install it (on Debian: `apt-get install gcc libc6-dev`)",
            "apt-get" | "dpkg-deb" => "this task needs a Debian-based host",
            _ => "install it",
        };
        anyhow!("`{program}` was not found: {hint}")
    } else {
        anyhow!("cannot run `{}`: {err}", display(cmd))
    }
}

/// The last `TAIL_LINES` non-empty lines of `text`, each prefixed with `  | `.
fn indent_tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    let tail: Vec<String> = lines[start..]
        .iter()
        .map(|line| format!("  | {line}"))
        .collect();
    if tail.is_empty() {
        "  | (no output)".to_string()
    } else {
        tail.join("\n")
    }
}

/// A shell-like rendering of `cmd`, for logs and error messages.
pub fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes `word` for a POSIX shell when it contains anything unusual.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_quote("--include=a,b"), "--include=a,b");
        assert_eq!(shell_quote("CMD [\"sh\"]"), "'CMD [\"sh\"]'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn displays_commands() {
        let mut cmd = Command::new("docker");
        cmd.args(["import", "--change", "CMD [\"sh\"]", "-"]);
        assert_eq!(display(&cmd), "docker import --change 'CMD [\"sh\"]' -");
    }

    #[test]
    fn tails_skip_blank_lines_and_keep_the_end() {
        let text: String = (0..100).map(|i| format!("line {i}\n\n")).collect();
        let tail = indent_tail(&text);
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(tail.ends_with("  | line 99"));
        assert_eq!(indent_tail(""), "  | (no output)");
    }
}
