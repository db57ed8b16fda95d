//! `seaworthy test`: structure tests from YAML.
//!
//! Reads container-structure-test files (schema 2.0.0) unchanged, plus Seaworthy's `daemonTests`
//! (see [`spec`]), and runs them against one image with as little Docker work as each kind
//! allows:
//!
//! - `metadataTest`: answered from `docker image inspect`, no container;
//! - file tests: one container *created* (never started) per set of run options, read through the
//!   archive API ([`files`]);
//! - command tests: one shared idling container for the tests without setup or teardown, one
//!   container for each test with them ([`commands`]);
//! - daemon tests: one container each, started as the image runs in production ([`daemon`]).
//!
//! Spec files are checked before any container is created. Phases of one file run concurrently,
//! tests within a phase up to `--jobs` at a time; results are reported in spec order.

mod commands;
mod daemon;
mod env;
mod files;
mod metadata;
mod report;
mod spec;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::StreamExt;
use seaworthy::bollard::models::ImageConfig;
use seaworthy::{Container, ImageRef, Session};

use files::SharedContainer;
use report::{Kind, Progress, Report, Summary, TestResult};
use spec::{RunOptions, SpecFile};

/// Arguments of `seaworthy test`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Spec files use container-structure-test's schema 2.0.0 (commandTests, fileExistenceTests,
fileContentTests, metadataTest, globalEnvVars, containerRunOptions), plus `daemonTests:`,
which start the image as a daemon and check its readiness, logs, HTTP answers, processes and
commands. Exit status: 0 all passed, 1 a test failed, 2 a spec or usage error.")]
pub struct TestArgs {
    /// The image to test (must be present locally unless --pull).
    #[arg(long, short)]
    image: String,

    /// Spec files (YAML or JSON).
    #[arg(value_name = "SPEC.yaml")]
    specs: Vec<PathBuf>,

    /// Spec files, as container-structure-test's `--config` (may be repeated).
    #[arg(long = "config", short = 'c', value_name = "SPEC.yaml")]
    config: Vec<PathBuf>,

    /// Report format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,

    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    test_report: Option<PathBuf>,

    /// Give every test a container of its own, as container-structure-test does (slower; for
    /// tests that change the container without declaring setup or teardown).
    #[arg(long)]
    isolate: bool,

    /// How many tests of a phase run at once.
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,

    /// Deadline of each command (`30s`, `2m`).
    #[arg(long, default_value = "120s", value_parser = parse_timeout)]
    command_timeout: Duration,

    /// Pull the image before testing.
    #[arg(long)]
    pull: bool,

    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

/// The report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    /// Human-readable, with a line per test as it finishes.
    Text,
    /// One JSON document.
    Json,
    /// JUnit XML, one test suite per spec file.
    Junit,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    spec::parse_duration(text).ok_or_else(|| format!("invalid duration {text:?} (use 30s, 2m)"))
}

/// What every phase shares: the engine session, the image, the counters, and the containers
/// shared between tests.
pub struct Context {
    session: Session,
    image: String,
    image_config: ImageConfig,
    progress: Progress,
    jobs: usize,
    command_timeout: Duration,
    isolate: bool,
    started: AtomicUsize,
    created: AtomicUsize,
    shared: Mutex<HashMap<(Role, String), SharedCell>>,
    /// How many spec files still need each shared container: at zero it is removed at once,
    /// while the other phases go on.
    users: Mutex<HashMap<(Role, String), usize>>,
}

/// A shared container, created on first use by whichever test needs it first.
type SharedCell = Arc<tokio::sync::OnceCell<SharedContainer>>;

/// What a shared container is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    /// Created, never started: file tests.
    Files,
    /// Idling on `sleep`: command tests.
    Shell,
}

impl Context {
    /// The environment of a container of the image run with `run`: the image's, then the options'.
    fn base_env(&self, run: &RunOptions) -> Vec<(String, String)> {
        let mut env = env::parse_env_entries(self.image_config.env.as_deref().unwrap_or_default());
        env.extend(run.environment());
        env
    }

    fn count_started(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
    }

    /// A container of the image that is never started (file tests read it).
    async fn create_files_container(&self, run: &RunOptions) -> Result<Container, String> {
        self.created.fetch_add(1, Ordering::SeqCst);
        env::base_definition(&self.image, run)
            // Never run: an entrypoint keeps images without a command creatable.
            .with_entrypoint(["/.seaworthy-never-started"])
            .with_network_mode("none")
            .create_in(&self.session)
            .await
            .map_err(|e| e.to_string())
    }

    /// A container of the image idling on `sleep` (command tests exec into it).
    async fn start_keepalive(&self, run: &RunOptions) -> Result<Container, String> {
        self.count_started();
        env::base_definition(&self.image, run)
            .with_entrypoint(["sleep", "86400"])
            .start_in(&self.session)
            .await
            .map_err(|e| e.to_string())
    }

    async fn shared(&self, role: Role, run: &RunOptions) -> SharedContainer {
        let cell = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((role, run.key()))
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            match role {
                Role::Files => self.create_files_container(run).await,
                Role::Shell => self.start_keepalive(run).await,
            }
            .map(Arc::new)
        })
        .await
        .clone()
    }

    /// The file tests' container for `run`, created on first use.
    async fn files_container(&self, run: &RunOptions) -> SharedContainer {
        self.shared(Role::Files, run).await
    }

    /// The command tests' shared container for `run`, started on first use.
    async fn shell_container(&self, run: &RunOptions) -> SharedContainer {
        self.shared(Role::Shell, run).await
    }

    /// Removes a container now, warning when that fails (the session removes it at exit anyway).
    async fn remove(&self, c: Container) {
        let name = c.name().to_string();
        if let Err(e) = c.remove().await {
            self.progress
                .note(&format!("warning: removing {name}: {e}"));
        }
    }

    /// Marks one spec file done with the shared container of `role` for `run`; the last one
    /// removes it.
    async fn release(&self, role: Role, run: &RunOptions) {
        let key = (role, run.key());
        let last = {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            match users.get_mut(&key) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    users.remove(&key);
                    true
                }
                None => false,
            }
        };
        if !last {
            return;
        }
        let cell = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        if let Some(container) = cell
            .and_then(|cell| Arc::try_unwrap(cell).ok())
            .and_then(|cell| cell.into_inner()?.ok())
            .and_then(|c| Arc::try_unwrap(c).ok())
        {
            self.remove(container).await;
        }
    }

    /// Removes the shared containers still there.
    async fn close(&self) {
        let cells: Vec<_> = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, cell)| cell)
            .collect();
        let removals = cells.into_iter().filter_map(|cell| {
            let cell = Arc::try_unwrap(cell).ok()?;
            let container = Arc::try_unwrap(cell.into_inner()?.ok()?).ok()?;
            Some(self.remove(container))
        });
        futures_util::future::join_all(removals).await;
    }
}

/// Runs `seaworthy test`.
pub async fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let paths: Vec<PathBuf> = args.specs.iter().chain(&args.config).cloned().collect();
    if paths.is_empty() {
        bail!("no spec file given: seaworthy test --image IMAGE SPEC.yaml...");
    }
    let mut specs = Vec::new();
    let mut failed = false;
    for path in &paths {
        match spec::load(path) {
            Ok(s) => specs.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Ok(ExitCode::from(2));
    }

    let progress = if args.quiet {
        Progress::quiet()
    } else if args.output == OutputFormat::Text && args.test_report.is_none() {
        Progress::stdout()
    } else {
        Progress::stderr()
    };
    let session = Session::global()
        .await
        .context("cannot reach the Docker engine")?;
    let config = image_config(&session, &args.image, args.pull).await?;
    let ctx = Context {
        session: session.clone(),
        image: args.image.clone(),
        image_config: config,
        progress,
        jobs: usize::from(args.jobs),
        command_timeout: args.command_timeout,
        isolate: args.isolate,
        started: AtomicUsize::new(0),
        created: AtomicUsize::new(0),
        shared: Mutex::new(HashMap::new()),
        users: Mutex::new(users_of(&specs, args.isolate)),
    };
    ctx.progress.note(&format!(
        "seaworthy test: {} ({} spec file{}){}",
        args.image,
        specs.len(),
        if specs.len() == 1 { "" } else { "s" },
        if args.isolate {
            ", a container per test"
        } else {
            ""
        }
    ));

    let started = Instant::now();
    let mut results = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        results.extend(run_spec(&ctx, spec, i).await);
    }
    ctx.close().await;
    for e in session.teardown().await {
        ctx.progress.note(&format!("warning: teardown: {e}"));
    }

    let summary = Summary {
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        containers_started: ctx.started.load(Ordering::SeqCst),
        containers_created: ctx.created.load(Ordering::SeqCst),
        isolate: args.isolate,
        ..Default::default()
    };
    let files = specs.iter().map(|s| s.path.display().to_string()).collect();
    let report = Report::new(&args.image, files, results, summary);
    let text = match args.output {
        OutputFormat::Text => report.to_text_summary(),
        OutputFormat::Json => report.to_json() + "\n",
        OutputFormat::Junit => report.to_junit().context("writing the JUnit report")? + "\n",
    };
    match &args.test_report {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            ctx.progress.note(&report.to_text_summary());
        }
        None => print!("{text}"),
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// How many spec files use each shared container.
fn users_of(specs: &[SpecFile], isolate: bool) -> HashMap<(Role, String), usize> {
    let mut users = HashMap::new();
    if isolate {
        return users;
    }
    for s in specs {
        let key = s.spec.container_run_options.key();
        if !s.spec.file_existence_tests.is_empty() || !s.spec.file_content_tests.is_empty() {
            *users.entry((Role::Files, key.clone())).or_default() += 1;
        }
        if s.spec
            .command_tests
            .iter()
            .any(|t| !t.has_setup_or_teardown())
        {
            *users.entry((Role::Shell, key)).or_default() += 1;
        }
    }
    users
}

/// Every test of one spec file: metadata at once, the other phases concurrently.
async fn run_spec(ctx: &Context, spec: &SpecFile, index: usize) -> Vec<TestResult> {
    let file = spec.path.display().to_string();
    let mut results = Vec::new();
    if let Some(test) = &spec.spec.metadata_test {
        for r in metadata::check(&file, index, test, &ctx.image_config) {
            ctx.progress.result(&r);
            results.push(r);
        }
    }
    for i in 0..spec.spec.license_tests.len() {
        let r = TestResult::new(
            &file,
            (index, Kind::License, i, 0),
            format!("license test {}", i + 1),
            Duration::ZERO,
            vec![],
        )
        .skipped("licenseTests are not supported by seaworthy");
        ctx.progress.result(&r);
        results.push(r);
    }
    let (f, c, d) = tokio::join!(
        files::run(ctx, spec, index),
        commands::run(ctx, spec, index),
        daemon::run(ctx, spec, index)
    );
    results.extend(f);
    results.extend(c);
    results.extend(d);
    results
}

/// The image's configuration, pulling the image first when asked.
async fn image_config(session: &Session, image: &str, pull: bool) -> anyhow::Result<ImageConfig> {
    let docker = session.engine().docker();
    if pull {
        let reference = ImageRef::parse(image)?;
        let options = seaworthy::bollard::query_parameters::CreateImageOptions {
            from_image: Some(reference.name()),
            tag: reference.digest().or(reference.tag()).map(str::to_string),
            ..Default::default()
        };
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            item.with_context(|| format!("cannot pull {image}"))?;
        }
    }
    match docker.inspect_image(image).await {
        Ok(info) => Ok(info.config.unwrap_or_default()),
        Err(seaworthy::bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }) => bail!(
            "image {image} is not present locally{}",
            if pull { "" } else { " (--pull pulls it)" }
        ),
        Err(e) => Err(e).with_context(|| format!("cannot inspect image {image}")),
    }
}
