//! This test binary run again as child processes, for tests of what a test process does with an
//! environment variable set (`NEXTEST_TEST_GLOBAL_SLOT`): setting one in a multithreaded test
//! process is unsound, so each child gets its own environment from the start.
//!
//! A child runs one ignored test with `--exact --ignored`; it finds its parameter in `SW_CHILD`
//! (without it, the test does nothing: `cargo test -- --ignored` run by hand passes), prints an
//! `ID=` line once it holds what the parent wants to look at, and waits for a line on its stdin
//! before going on. Every wait, on either side, has a deadline; a child still running when its
//! handle drops (a failing parent) is killed.
//!
//! The children of one test form a test run of their own ([`ChildRun`]): their `Shared::per_run`
//! fixtures are one container, which only they use. They cannot join this process's run: a
//! process takes its parent for the test runner, and the run's resources are removed once the
//! runner is gone, so the children would take the whole run with them when this binary exits.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seaworthy::gc::{self, GcReport};
use seaworthy::session::LABEL_SESSION;
use seaworthy::Session;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// A test run of its own for the child processes of one test.
pub struct ChildRun {
    id: String,
}

impl ChildRun {
    /// A new run, with an id no other run has (its first 8 characters name the run's network
    /// too: they are random).
    pub fn new() -> ChildRun {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let random = RandomState::new().hash_one((std::process::id(), nanos));
        ChildRun {
            id: format!("{random:016x}children"),
        }
    }

    /// Runs the ignored test `test` of this binary in a child process of this run, with
    /// `SW_CHILD=param` and the variables of `env` set. `label` names it in messages.
    pub fn spawn(&self, label: &str, test: &str, param: &str, env: &[(&str, String)]) -> ChildTest {
        ChildTest::spawn(label, test, &self.id, param, env)
    }

    /// Removes what the run's processes shared (their fixtures' containers) and the run's files,
    /// as the reaper would once this process is gone.
    pub async fn remove(self) -> anyhow::Result<()> {
        let session = Session::global().await?;
        let found = gc::list_labelled(session.engine(), &[(LABEL_SESSION, &self.id)]).await?;
        let mut report = GcReport::default();
        gc::remove_all(session.engine(), found, &mut report).await;
        anyhow::ensure!(
            report.errors.is_empty(),
            "removing the resources of run {}: {:?}",
            self.id,
            report.errors
        );
        gc::remove_run_files(&self.id);
        Ok(())
    }
}

impl Default for ChildRun {
    fn default() -> Self {
        ChildRun::new()
    }
}

/// The environment variable carrying a child's parameter.
pub const PARAM: &str = "SW_CHILD";

/// A child process running one ignored test of this binary.
pub struct ChildTest {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    output: Arc<Mutex<String>>,
}

impl ChildTest {
    /// Runs the ignored test `test` of this binary in a child process, in the test run `run`
    /// (`SEAWORTHY_SESSION`), with `SW_CHILD=param` and the variables of `env` set. `label` names
    /// it in messages.
    fn spawn(label: &str, test: &str, run: &str, param: &str, env: &[(&str, String)]) -> Self {
        let exe = std::env::current_exe().expect("the path of the test binary");
        let mut command = Command::new(exe);
        command
            .args(only_the_ignored_test(test))
            .env("SEAWORTHY_SESSION", run)
            .env(PARAM, param)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot start the child test {test}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let (sender, lines) = mpsc::unbounded_channel();
        collect(
            child.stdout.take().expect("piped"),
            output.clone(),
            Some(sender),
        );
        collect(child.stderr.take().expect("piped"), output.clone(), None);
        ChildTest {
            label: label.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            output,
        }
    }

    /// Waits up to `timeout` for the child's `ID=` line and returns the words after `ID=`.
    pub async fn read_ids(&mut self, timeout: Duration) -> Vec<String> {
        let found = tokio::time::timeout(timeout, async {
            while let Some(line) = self.lines.recv().await {
                // libtest prints "test NAME ... " before the child's own output, on that line.
                if let Some((_, ids)) = line.split_once("ID=") {
                    return Some(ids.split_whitespace().map(str::to_string).collect());
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(ids)) => ids,
            Ok(None) => self.fail("ended without printing its ID line").await,
            Err(_) => {
                self.fail(&format!("printed no ID line within {timeout:?}"))
                    .await
            }
        }
    }

    /// Tells the child to go on (a line on its stdin).
    pub async fn proceed(&mut self) {
        let stdin = self
            .stdin
            .as_mut()
            .expect("stdin is open until the child ends");
        if let Err(e) = stdin.write_all(b"go\n").await {
            let why = format!("cannot be told to go on: {e}");
            self.fail(&why).await;
        }
    }

    /// Waits up to `timeout` for the child to end, and panics with its output unless its test
    /// passed.
    pub async fn expect_success(mut self, timeout: Duration) {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => self.fail(&format!("failed ({status})")).await,
            Ok(Err(e)) => self.fail(&format!("cannot be waited for: {e}")).await,
            Err(_) => self.fail(&format!("did not end within {timeout:?}")).await,
        }
    }

    /// Kills the child with SIGKILL (it has no chance to clean up) and waits for it to be gone.
    pub async fn kill(mut self) -> ExitStatus {
        self.child
            .kill()
            .await
            .unwrap_or_else(|e| panic!("{}: cannot be killed: {e}", self.label));
        self.child
            .wait()
            .await
            .unwrap_or_else(|e| panic!("{}: cannot be waited for: {e}", self.label))
    }

    /// Kills the child and panics with `why` and what it printed.
    async fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill().await;
        // Let the readers take in the last of the output.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let output = self.output.lock().unwrap().clone();
        panic!("child {} {why}; its output:\n{output}", self.label);
    }
}

/// Copies the lines of `stream` into `output` (and to `lines`, if given) until it ends.
fn collect(
    stream: impl AsyncRead + Unpin + Send + 'static,
    output: Arc<Mutex<String>>,
    lines: Option<mpsc::UnboundedSender<String>>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            {
                let mut output = output.lock().unwrap();
                output.push_str(&line);
                output.push('\n');
            }
            if let Some(lines) = &lines {
                let _ = lines.send(line);
            }
        }
    });
}

/// In a child: its parameter, or `None` when the test was not started by a parent.
pub fn param() -> Option<String> {
    std::env::var(PARAM).ok()
}

/// In a child: prints the `ID=` line the parent waits for.
pub fn report(ids: &[&str]) {
    use std::io::Write;
    println!("ID={}", ids.join(" "));
    let _ = std::io::stdout().flush();
}

/// In a child: waits up to `timeout` for the parent to say go on. Reads stdin on a thread of its
/// own, which does not keep the process alive if the parent never answers.
pub async fn wait_for_parent(timeout: Duration) -> anyhow::Result<()> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = sender.send(std::io::stdin().read_line(&mut line).map(|n| n > 0));
    });
    match tokio::time::timeout(timeout, receiver).await {
        Ok(Ok(Ok(true))) => Ok(()),
        Ok(Ok(Ok(false))) => anyhow::bail!("the parent test closed stdin without saying go on"),
        Ok(Ok(Err(e))) => anyhow::bail!("cannot read the parent's go-ahead from stdin: {e}"),
        Ok(Err(_)) => anyhow::bail!("the thread reading stdin ended without an answer"),
        Err(_) => anyhow::bail!("the parent test did not say go on within {timeout:?}"),
    }
}

/// Runs the ignored test `test` of this binary in a child process of a run of its own, with
/// `SEAWORTHY_KEEP_ON_FAILURE=1` (setting it in this multithreaded process would be unsound),
/// runs `here` in this process meanwhile (the same steps without the variable), then expects the
/// child to pass within `timeout` and removes what its run shared.
pub async fn with_keep_on_failure_child(
    test: &str,
    timeout: Duration,
    here: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let run = ChildRun::new();
    let child = run.spawn(
        "keep on failure",
        test,
        "keep",
        &[("SEAWORTHY_KEEP_ON_FAILURE", "1".to_string())],
    );
    here.await?;
    child.expect_success(timeout).await;
    run.remove().await
}

/// The two tests of what a fixture's guard leaves behind when its test fails: `$parent` runs
/// `$steps(false)` (without `SEAWORTHY_KEEP_ON_FAILURE`) while it runs `$child` (ignored, the
/// same steps with `$steps(true)`) in a child process with `SEAWORTHY_KEEP_ON_FAILURE=1`
/// ([`with_keep_on_failure_child`]), which must pass within `$deadline`. `$steps` is an
/// `async fn(keep: bool) -> anyhow::Result<()>`; doc comments before `$parent` go to it.
#[macro_export]
macro_rules! keep_on_failure_tests {
    ($(#[$doc:meta])* $parent:ident, $child:ident, $steps:path, $deadline:expr $(,)?) => {
        /// The child of the test of the same file that runs it with
        /// `SEAWORTHY_KEEP_ON_FAILURE=1`.
        #[tokio::test]
        #[ignore = "a child process of a keep-on-failure test"]
        async fn $child() -> anyhow::Result<()> {
            match $crate::param() {
                Some(_) => $steps(true).await,
                None => Ok(()),
            }
        }

        $(#[$doc])*
        #[tokio::test]
        async fn $parent() -> anyhow::Result<()> {
            $crate::with_keep_on_failure_child(stringify!($child), $deadline, $steps(false)).await
        }
    };
}

/// Drops `guard` on a thread that panics, as a failing test drops its guards while it unwinds
/// (what `SEAWORTHY_KEEP_ON_FAILURE` looks at), and checks that the thread did panic.
pub fn drop_in_a_failing_test<G: Send + 'static>(guard: G) {
    let failed = std::thread::spawn(move || {
        let _guard = guard;
        panic!("the test fails (on purpose: its guard drops while it panics)");
    })
    .join();
    assert!(failed.is_err(), "the failing test did not panic");
}

/// What became of what a failing test's guard held ([`drop_in_a_failing_test`]): with `keep`
/// (`SEAWORTHY_KEEP_ON_FAILURE=1`), after time enough for a release to have happened (releases
/// take milliseconds), `kept` checks it is still there as the test left it; without, `released`
/// is polled until it says the release happened, for up to `within` (an error naming `what`
/// after that).
pub async fn assert_kept_or_released<K, R, RF>(
    keep: bool,
    what: &str,
    kept: K,
    mut released: R,
    within: Duration,
) -> anyhow::Result<()>
where
    K: std::future::Future<Output = anyhow::Result<()>>,
    R: FnMut() -> RF,
    RF: std::future::Future<Output = anyhow::Result<bool>>,
{
    if keep {
        tokio::time::sleep(Duration::from_millis(500)).await;
        return kept.await;
    }
    let deadline = std::time::Instant::now() + within;
    while !released().await? {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{what} was not released within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The arguments that make this test binary run only the ignored test `test` (a path like
/// `child` or `module::child`), on one thread, its output not captured.
fn only_the_ignored_test(test: &str) -> [&str; 5] {
    [
        "--exact",
        test,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]
}

/// This test binary run again as a child process **in this process's test run** (unlike
/// [`ChildRun::spawn`]), running only the ignored test `test` with `SW_CHILD=mode` saying what it
/// should do; its stdout and stderr are piped. Read its `ID=` line with [`read_ids`].
pub fn child_command(test: &str, mode: &str) -> std::process::Command {
    let exe = std::env::current_exe().expect("the path of the test binary");
    let mut command = std::process::Command::new(exe);
    command
        .args(only_the_ignored_test(test))
        .env(PARAM, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Reads the stdout of a child of [`child_command`] until its `ID=` line and returns the words
/// after `ID=` (the rest of its output is drained in the background, so it never blocks on a
/// full pipe); panics with the child's stderr when it ends without one.
pub fn read_ids(child: &mut std::process::Child) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read};
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        // libtest prints "test child ... " before the child's own output, on the same line.
        if let Some((_, ids)) = line.split_once("ID=") {
            let ids = ids.split_whitespace().map(str::to_string).collect();
            std::thread::spawn(move || for _ in lines {});
            return ids;
        }
    }
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    panic!("the child printed no ID line; stderr:\n{err}");
}

/// This test binary run again to its end, **in this process's test run** unless `env` says
/// otherwise, running the ignored tests whose names contain `filter` one after the other, with
/// the variables of `env` set and those of `remove` unset. Returns its output and its stdout and
/// stderr as one text (read the `ID=` lines of its tests with [`ids_in`]).
pub fn run_ignored_tests(
    filter: &str,
    env: &[(&str, &str)],
    remove: &[&str],
) -> (std::process::Output, String) {
    let exe = std::env::current_exe().expect("the path of the test binary");
    let mut command = std::process::Command::new(exe);
    command.args([filter, "--ignored", "--test-threads=1", "--nocapture"]);
    for (k, v) in env {
        command.env(k, v);
    }
    for k in remove {
        command.env_remove(k);
    }
    let output = command.output().expect("run the test binary again");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

/// What follows `ID=` on each line of `text` that has one, in order.
pub fn ids_in(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once("ID=").map(|(_, id)| id.trim().to_string()))
        .collect()
}
