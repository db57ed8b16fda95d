//! Running commands inside a container.

use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::container::Container;
use crate::error::{Error, Result};
use crate::runtime::on_runtime;

/// A command to run in a container, with its environment, user and working directory.
#[derive(Debug, Clone)]
pub struct Exec {
    argv: Vec<String>,
    env: Vec<String>,
    user: Option<String>,
    workdir: Option<String>,
    privileged: bool,
    stdin: Option<Vec<u8>>,
    tty: bool,
    timeout: Duration,
    max_output: Option<usize>,
}

impl Exec {
    /// The command `argv[0]` with arguments `argv[1..]` (no shell).
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Exec {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            user: None,
            workdir: None,
            privileged: false,
            stdin: None,
            tty: false,
            timeout: Duration::from_secs(60),
            max_output: None,
        }
    }

    /// `sh -c script`.
    pub fn shell(script: impl Into<String>) -> Self {
        Exec::new(["sh".to_string(), "-c".to_string(), script.into()])
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.env
            .push(format!("{}={}", key.as_ref(), value.as_ref()));
        self
    }

    /// Runs as `user`.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Runs in `dir`.
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// Runs with extended privileges.
    pub fn privileged(mut self, privileged: bool) -> Self {
        self.privileged = privileged;
        self
    }

    /// Feeds `input` to the command's standard input, then closes it.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Runs the command with a terminal (`docker exec --tty`): what it writes to stderr arrives in
    /// [`ExecOutput::stdout`] with the rest, lines end in `\r\n`, and `stderr` stays empty.
    pub fn tty(mut self, tty: bool) -> Self {
        self.tty = tty;
        self
    }

    /// Fails the exec when the command runs longer than `timeout` (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Fails the exec when the command writes more than `bytes` of output (stdout and stderr
    /// together); the output is not read past the cap, so a command that writes without end
    /// (`cat /dev/zero`) costs at most `bytes` of memory. Default: no cap.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = Some(bytes);
        self
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> String {
        self.argv.join(" ")
    }
}

impl<S: Into<String>, const N: usize> From<[S; N]> for Exec {
    fn from(argv: [S; N]) -> Self {
        Exec::new(argv)
    }
}

impl From<Vec<String>> for Exec {
    fn from(argv: Vec<String>) -> Self {
        Exec::new(argv)
    }
}

/// What a command run in a container produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExecOutput {
    /// The exit code.
    pub exit_code: i64,
    /// Standard output.
    #[serde(serialize_with = "lossy")]
    pub stdout: Vec<u8>,
    /// Standard error.
    #[serde(serialize_with = "lossy")]
    pub stderr: Vec<u8>,
}

fn lossy<S: serde::Serializer>(bytes: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

impl ExecOutput {
    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Whether the exit code is 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

impl Container {
    /// Runs a command in the container and returns its exit code and output.
    ///
    /// The exit is detected when the engine closes the output stream (no polling interval), then
    /// confirmed with one inspect. A command that cannot start (no such binary) is an `Ok` with the
    /// engine's exit code (126 or 127), as in a shell.
    ///
    /// ```no_run
    /// # async fn demo(c: &seaworthy::Container) -> seaworthy::Result<()> {
    /// use seaworthy::Exec;
    /// let out = c.exec(Exec::shell("echo $GREETING").env("GREETING", "hi")).await?;
    /// assert_eq!(out.stdout_text(), "hi\n");
    /// # Ok(()) }
    /// ```
    pub async fn exec(&self, exec: impl Into<Exec>) -> Result<ExecOutput> {
        let exec = exec.into();
        let inner = self.inner.clone();
        on_runtime(async move { exec_timed(&inner, exec).await }).await
    }
}

/// Runs `exec` in `inner`'s container within the exec's timeout.
pub(crate) async fn exec_timed(inner: &crate::container::Inner, exec: Exec) -> Result<ExecOutput> {
    let name = inner.name.clone();
    let timeout = exec.timeout;
    let line = exec.command_line();
    match tokio::time::timeout(timeout, exec_here(inner.docker(), &inner.name, &name, exec)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            action: format!("exec `{line}` in container {name}"),
            timeout,
        }),
    }
}

pub(crate) async fn exec_here(
    docker: &bollard::Docker,
    id: &str,
    name: &str,
    exec: Exec,
) -> Result<ExecOutput> {
    let started = Instant::now();
    let line = exec.command_line();
    let failed = |e| Error::docker(format!("exec `{line}` in container {name}"), e);
    let created = docker
        .create_exec(
            id,
            CreateExecOptions {
                cmd: Some(exec.argv.clone()),
                env: (!exec.env.is_empty()).then(|| exec.env.clone()),
                user: exec.user.clone(),
                working_dir: exec.workdir.clone(),
                privileged: Some(exec.privileged),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                attach_stdin: Some(exec.stdin.is_some()),
                tty: Some(exec.tty),
                ..Default::default()
            },
        )
        .await
        .map_err(failed)?;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    match docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty: exec.tty,
                ..Default::default()
            }),
        )
        .await
        .map_err(failed)?
    {
        StartExecResults::Attached {
            mut output,
            mut input,
        } => {
            if let Some(data) = exec.stdin {
                input.write_all(&data).await.map_err(|e| {
                    Error::io(format!("write stdin of `{line}` in container {name}"), e)
                })?;
                input.shutdown().await.map_err(|e| {
                    Error::io(format!("close stdin of `{line}` in container {name}"), e)
                })?;
            }
            let cap = exec.max_output.unwrap_or(usize::MAX);
            while let Some(chunk) = output.next().await {
                let (to_stdout, message) = match chunk.map_err(failed)? {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        (true, message)
                    }
                    LogOutput::StdErr { message } => (false, message),
                    LogOutput::StdIn { .. } => continue,
                };
                if stdout.len() + stderr.len() + message.len() > cap {
                    return Err(Error::Container {
                        container: name.to_string(),
                        reason: format!(
                            "exec `{line}` wrote more than {cap} bytes of output (its cap); the rest was not read"
                        ),
                    });
                }
                if to_stdout { &mut stdout } else { &mut stderr }.extend_from_slice(&message);
            }
        }
        StartExecResults::Detached => {}
    }
    // The stream closes when the process exits; the engine records the code a moment later at most.
    let mut delay = Duration::from_millis(1);
    let exit_code = loop {
        let info = docker.inspect_exec(&created.id).await.map_err(failed)?;
        if info.running != Some(true) {
            if let Some(code) = info.exit_code {
                break code;
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(20));
    };
    tracing::debug!(container = name, command = %line, exit_code, elapsed = ?started.elapsed(), "exec");
    Ok(ExecOutput {
        exit_code,
        stdout,
        stderr,
    })
}
