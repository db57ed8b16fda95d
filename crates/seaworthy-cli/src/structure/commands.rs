//! `commandTests`, run with as few containers as their setup allows.
//!
//! - Tests without `setup` or `teardown` share one container per set of run options: it is
//!   started with its entrypoint replaced by `sleep` (so it idles), and each command runs in it
//!   through `docker exec`, with the test's environment passed to that exec.
//! - A test with `setup` or `teardown` gets a container of its own, kept alive the same way; its
//!   steps and its command run in it in order, so what a step writes is seen by the next.
//! - With `--isolate`, or when the image has no `sleep` to idle on, a test without setup runs as
//!   the main process of a container of its own (entrypoint cleared, command as `CMD`), which is
//!   what container-structure-test does for every test.
//! - With `containerRunOptions.allocateTty`, the command (not its setup or teardown steps) runs
//!   with a terminal (`docker exec --tty`): what it writes to stderr is part of its stdout, with
//!   the terminal's `\r\n` line endings, as in container-structure-test. Under `--isolate` such a
//!   test gets a kept-alive container of its own, so it needs `sleep` in the image too.

use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use seaworthy::{Container, Exec, Wait};

use super::env::added_env;
use super::report::{Kind, TestResult};
use super::spec::{CommandTest, RunOptions, SpecFile};
use super::{Context, Role};

/// What a command test's run produced.
pub struct Outcome {
    /// The exit code of the command.
    pub exit_code: i64,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Failures of teardown steps.
    pub teardown_errors: Vec<String>,
}

/// Runs the command tests of `spec`.
pub async fn run(ctx: &Context, spec: &SpecFile, file_index: usize) -> Vec<TestResult> {
    let tests = &spec.spec.command_tests;
    if tests.is_empty() {
        return Vec::new();
    }
    let file = spec.path.display().to_string();
    let run = &spec.spec.container_run_options;
    let base_env = ctx.base_env(run);
    let tty = run.allocate_tty;
    let shares = !ctx.isolate && tests.iter().any(|t| !t.has_setup_or_teardown());
    let shell = if shares {
        Some(ctx.shell_container(run).await)
    } else {
        None
    };
    let results: Vec<TestResult> = stream::iter(tests.iter().enumerate())
        .map(|(i, t)| {
            let shell = shell.clone();
            let file = file.clone();
            let env = added_env(&base_env, &spec.spec.global_env_vars, &t.env_vars);
            async move {
                let started = Instant::now();
                let empty = t
                    .env_vars
                    .iter()
                    .position(|v| v.key.is_empty() || v.value.is_empty());
                let outcome = if let Some(at) = empty {
                    // container-structure-test's check of a command test, before it runs.
                    Err(format!(
                        "envVars[{at}] has an empty key or value: container-structure-test \
                         fails such a test without running it (\"Please provide non-empty keys \
                         and values for all specified env vars\")"
                    ))
                } else if t.has_setup_or_teardown() {
                    run_in_own_container(ctx, run, t, &env).await
                } else {
                    match &shell {
                        Some(Ok(c)) => run_steps(ctx, c, t, &env, tty).await,
                        Some(Err(e)) if !is_missing_binary(e) => {
                            Err(format!("cannot start a container of the image: {e}"))
                        }
                        Some(Err(e)) if tty => Err(lacks_sleep(t, e)),
                        // --isolate: a terminal needs an exec, so a kept-alive container.
                        None if tty => run_in_own_container(ctx, run, t, &env).await,
                        // --isolate, or no `sleep` in the image.
                        _ => run_as_main_process(ctx, run, t, &env).await,
                    }
                };
                let result = result_of(
                    &file,
                    (file_index, Kind::Command, i, 0),
                    &t.name,
                    t,
                    outcome,
                    started.elapsed(),
                );
                ctx.progress.result(&result);
                result
            }
        })
        .buffer_unordered(ctx.jobs)
        .collect()
        .await;
    if shares {
        drop(shell);
        ctx.release(Role::Shell, run).await;
    }
    results
}

/// The result of a command test from what its run produced.
pub fn result_of(
    file: &str,
    order: (usize, Kind, usize, usize),
    name: &str,
    t: &CommandTest,
    outcome: Result<Outcome, String>,
    elapsed: Duration,
) -> TestResult {
    match outcome {
        Err(e) => TestResult::new(file, order, name, elapsed, vec![e]),
        Ok(out) => {
            let errors = evaluate(t, &out);
            let mut result = TestResult::new(file, order, name, elapsed, errors);
            result.stdout = Some(out.stdout);
            result.stderr = Some(out.stderr);
            result
        }
    }
}

/// What is wrong with `out` for test `t`.
pub fn evaluate(t: &CommandTest, out: &Outcome) -> Vec<String> {
    let mut errors = Vec::new();
    if out.exit_code != t.exit_code {
        errors.push(format!(
            "expected exit code {}, got {}",
            t.exit_code, out.exit_code
        ));
    }
    for p in &t.expected_output {
        if !p.is_match(&out.stdout) {
            errors.push(format!("stdout does not match {p}"));
        }
    }
    for p in &t.excluded_output {
        if p.is_match(&out.stdout) {
            errors.push(format!("stdout matches excluded {p}"));
        }
    }
    for p in &t.expected_error {
        if !p.is_match(&out.stderr) {
            errors.push(format!("stderr does not match {p}"));
        }
    }
    for p in &t.excluded_error {
        if p.is_match(&out.stderr) {
            errors.push(format!("stderr matches excluded {p}"));
        }
    }
    errors.extend(out.teardown_errors.iter().cloned());
    errors
}

/// When the engine could not start `program` at all (its runtime's exec failed; `text`: what the
/// engine said, which a plain exec gets as output with exit code 126 or 127), a message that
/// says so, naming the program: not in the image's `PATH`, not there, or not executable.
pub fn unstartable(program: &str, exit_code: i64, text: &str) -> Option<String> {
    if !matches!(exit_code, 126 | 127) && exit_code != -1 {
        return None;
    }
    let line = text
        .lines()
        .find(|l| l.contains("OCI runtime") || l.contains("starting container process"))?
        .trim();
    let why = if line.contains("executable file not found") {
        format!("`{program}` is not in the image's PATH")
    } else if line.contains("no such file or directory") {
        format!("`{program}` does not exist in the image")
    } else if line.contains("permission denied") {
        format!("`{program}` is not executable in the image")
    } else {
        format!("the engine could not start `{program}`")
    };
    Some(format!("{why} (the engine: {line})"))
}

/// Whether an engine error says the program to run does not exist in the image.
pub fn is_missing_binary(message: &str) -> bool {
    message.contains("executable file not found") || message.contains("no such file or directory")
}

/// A test with setup or teardown (or, under `--isolate`, one needing a terminal), in a
/// kept-alive container of its own.
async fn run_in_own_container(
    ctx: &Context,
    run: &RunOptions,
    t: &CommandTest,
    env: &[(String, String)],
) -> Result<Outcome, String> {
    let c = ctx.start_keepalive(run).await.map_err(|e| {
        if is_missing_binary(&e) {
            lacks_sleep(t, &e)
        } else {
            format!("cannot start a container of the image: {e}")
        }
    })?;
    let outcome = run_steps(ctx, &c, t, env, run.allocate_tty).await;
    ctx.remove(c).await;
    outcome
}

/// Why `t`, which needs a kept-alive container (for its setup or teardown, or its terminal),
/// cannot run in an image without `sleep` (`e`: the engine's error).
fn lacks_sleep(t: &CommandTest, e: &str) -> String {
    let what = if t.has_setup_or_teardown() {
        "setup and teardown run"
    } else {
        "a command with allocateTty runs"
    };
    format!("{what} in a container kept alive by `sleep`, which the image lacks: {e}")
}

/// Runs `t`'s setup steps, its command (with a terminal when `tty`) and its teardown steps in
/// `c`, in order.
pub async fn run_steps(
    ctx: &Context,
    c: &Container,
    t: &CommandTest,
    env: &[(String, String)],
    tty: bool,
) -> Result<Outcome, String> {
    for step in &t.setup {
        let out = exec(ctx, c, step, env, false).await?;
        if out.exit_code != 0 {
            return Err(format!(
                "setup step `{}` exited with {}{}",
                step.join(" "),
                out.exit_code,
                tail_of(&out.stderr)
            ));
        }
    }
    let mut outcome = exec(ctx, c, &t.argv(), env, tty).await?;
    for step in &t.teardown {
        match exec(ctx, c, step, env, false).await {
            Ok(out) if out.exit_code == 0 => {}
            Ok(out) => outcome.teardown_errors.push(format!(
                "teardown step `{}` exited with {}{}",
                step.join(" "),
                out.exit_code,
                tail_of(&out.stderr)
            )),
            Err(e) => outcome.teardown_errors.push(e),
        }
    }
    Ok(outcome)
}

/// `argv` run in `c`; with `tty`, with a terminal (`docker exec --tty`): the terminal's output,
/// stderr included, is the stdout of the outcome, and its stderr is empty.
async fn exec(
    ctx: &Context,
    c: &Container,
    argv: &[String],
    env: &[(String, String)],
    tty: bool,
) -> Result<Outcome, String> {
    let mut exec = Exec::new(argv.to_vec())
        .timeout(ctx.command_timeout)
        .tty(tty);
    for (k, v) in env {
        exec = exec.env(k, v);
    }
    let out = c.exec(exec).await.map_err(|e| e.to_string())?;
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let said = format!("{}{}", out.stdout_text(), out.stderr_text());
    if let Some(message) = unstartable(program, out.exit_code, &said) {
        return Err(message);
    }
    Ok(Outcome {
        exit_code: out.exit_code,
        stdout: out.stdout_text(),
        stderr: out.stderr_text(),
        teardown_errors: Vec::new(),
    })
}

/// The command as the main process of a container of its own; its output is read from the log.
async fn run_as_main_process(
    ctx: &Context,
    run: &RunOptions,
    t: &CommandTest,
    env: &[(String, String)],
) -> Result<Outcome, String> {
    let mut def = ctx
        .definition(run)
        .with_entrypoint(Vec::<String>::new())
        .with_cmd(t.argv())
        .with_wait(Wait::exited())
        .with_startup_timeout(ctx.command_timeout);
    for (k, v) in env {
        def = def.with_env(k.clone(), v.clone());
    }
    ctx.count_started();
    let c = match def.start_in(&ctx.session).await {
        Ok(c) => c,
        // The engine refuses to start a program that is not there: a failed test, as in
        // container-structure-test, whatever exit code it expects.
        Err(e) => {
            let e = e.to_string();
            return Err(unstartable(&t.command, -1, &e).unwrap_or(e));
        }
    };
    let result = async {
        let logs = c.logs().await.map_err(|e| e.to_string())?;
        let info = c.inspect().await.map_err(|e| e.to_string())?;
        let exit_code = info.state.and_then(|s| s.exit_code).unwrap_or(-1);
        let mut stdout = String::new();
        let mut stderr = String::new();
        for line in &logs.lines {
            let buffer = match line.stream {
                seaworthy::LogStream::Stdout => &mut stdout,
                seaworthy::LogStream::Stderr => &mut stderr,
            };
            buffer.push_str(&line.text);
            buffer.push('\n');
        }
        Ok(Outcome {
            exit_code,
            stdout,
            stderr,
            teardown_errors: Vec::new(),
        })
    }
    .await;
    ctx.remove(c).await;
    result
}

/// `: <last line of stderr>` when there is one.
fn tail_of(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default()
}
