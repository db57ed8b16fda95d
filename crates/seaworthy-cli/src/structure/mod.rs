//! `seaworthy test`: structure tests from YAML.
//!
//! Reads container-structure-test files (schema 2.0.0, and 1.0.0) unchanged, plus Seaworthy's
//! `daemonTests` (see [`spec`]), and runs them against one image with as little Docker work as
//! each kind allows:
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
mod oci;
mod report;
mod spec;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use seaworthy::bollard::models::ImageConfig;
use seaworthy::{Container, Session};

use files::SharedContainer;
use report::{Kind, Progress, Report, Summary, TestResult};
use spec::{RunOptions, SpecFile};

/// Arguments of `seaworthy test`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Spec files use container-structure-test's schema 2.0.0 (commandTests, fileExistenceTests,
fileContentTests, metadataTest, globalEnvVars, containerRunOptions; schema 1.0.0 files are read
too), plus `daemonTests:`, which start the image as a daemon and check its readiness, logs, HTTP
answers, processes and commands. container-structure-test's flags --platform, --pull, --save,
--runtime, --driver, --image-from-oci-layout and --default-image-tag are taken; its others are
refused. Exit status: 0 all passed, 1 a test failed, 2 a spec or usage error.")]
pub struct TestArgs {
    /// The image to test (must be present locally unless --pull).
    #[arg(long, short, required_unless_present = "image_from_oci_layout")]
    image: Option<String>,

    /// Spec files (YAML or JSON).
    #[arg(value_name = "SPEC.yaml")]
    specs: Vec<PathBuf>,

    /// Spec files, as container-structure-test's `--config` (may be repeated).
    #[arg(long = "config", short = 'c', value_name = "SPEC.yaml")]
    config: Vec<PathBuf>,

    /// Report format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,

    /// Write the report to this file instead of standard output (JSON unless `--output junit`,
    /// as in container-structure-test).
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

    /// Pull the image before testing (for --platform when given).
    #[arg(long, conflicts_with = "image_from_oci_layout")]
    pull: bool,

    /// The platform of the image to run (`linux/arm64`), as container-structure-test's
    /// `--platform`: given to the pull and to every container's create (the engine refuses a
    /// local image of another platform). Default: the engine's own.
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,

    /// The engine's OCI runtime for every container (`runc`, `runsc`), as `docker run --runtime`.
    #[arg(long, value_name = "NAME")]
    runtime: Option<String>,

    /// Keep the containers the tests used (their names are printed) instead of removing them;
    /// `seaworthy gc` removes them later.
    #[arg(long)]
    save: bool,

    /// How tests reach the image: `docker` (the default) runs containers; `tar` reads files and
    /// metadata only and starts no container (command and daemon tests fail, naming the driver),
    /// as container-structure-test's tar driver. Its `host` driver is refused.
    #[arg(long, short = 'd', value_enum, default_value_t = Driver::Docker)]
    driver: Driver,

    /// Test the image in this OCI image layout directory (one image): it is loaded into the
    /// engine first, under its `org.opencontainers.image.ref.name` annotation or
    /// --default-image-tag.
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    image_from_oci_layout: Option<PathBuf>,

    /// The tag to load an OCI layout under when it has no reference annotation.
    #[arg(long, value_name = "IMAGE:TAG", requires = "image_from_oci_layout")]
    default_image_tag: Option<String>,

    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

/// How tests reach the image (`--driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Driver {
    /// Containers of the image in the Docker engine.
    Docker,
    /// The image's filesystem and configuration only; no container is started.
    Tar,
    /// Container-structure-test's host driver (tests the machine itself): refused.
    Host,
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
    /// `--platform`.
    platform: Option<String>,
    /// `--runtime`.
    runtime: Option<String>,
    /// `--save`: containers are kept, not removed.
    save: bool,
    /// `--driver tar`: files and metadata only.
    tar_driver: bool,
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

    /// A container of the image configured by `run` and the command line (`--platform`,
    /// `--runtime`).
    fn definition(&self, run: &RunOptions) -> seaworthy::ContainerDefinition {
        let mut def = env::base_definition(&self.image, run);
        if let Some(platform) = &self.platform {
            def = def.with_platform(platform.clone());
        }
        if let Some(runtime) = &self.runtime {
            def = def.with_runtime(runtime.clone());
        }
        def
    }

    fn count_started(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
    }

    /// A container of the image that is never started (file tests read it).
    async fn create_files_container(&self, run: &RunOptions) -> Result<Container, String> {
        self.created.fetch_add(1, Ordering::SeqCst);
        self.definition(run)
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
        self.definition(run)
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

    /// Removes a container now, warning when that fails (the session removes it at exit anyway);
    /// with `--save`, keeps it and prints its name.
    async fn remove(&self, c: Container) {
        if self.save {
            let name = c.keep();
            self.progress
                .note(&format!("kept container {name} (--save)"));
            return;
        }
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
    if args.driver == Driver::Host {
        bail!(
            "--driver host is not supported: seaworthy tests images through the Docker engine \
             (container-structure-test's host driver tests the machine it runs on)"
        );
    }
    if args.driver == Driver::Tar && (args.pull || args.image_from_oci_layout.is_some()) {
        bail!("--pull and --image-from-oci-layout need --driver docker (as in container-structure-test)");
    }
    let shown_image = match (&args.image, &args.image_from_oci_layout) {
        (Some(image), _) => image.clone(),
        (None, Some(dir)) => dir.display().to_string(),
        (None, None) => String::new(),
    };
    let paths: Vec<PathBuf> = args.specs.iter().chain(&args.config).cloned().collect();
    if paths.is_empty() {
        bail!("no spec file given: seaworthy test --image IMAGE SPEC.yaml...");
    }
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for path in &paths {
        match spec::load(path) {
            Ok(s) => specs.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                errors.push(report::SpecErrorEntry {
                    file: e.file,
                    line: e.location.map(|(line, _)| line),
                    column: e.location.map(|(_, column)| column),
                    message: e.message,
                });
            }
        }
    }
    if !errors.is_empty() {
        // The report says so too, so that a consumer of JSON or JUnit sees why nothing ran.
        if args.output != OutputFormat::Text || args.test_report.is_some() {
            let report = Report::of_spec_errors(&shown_image, errors);
            write_report(&args, &report, None)?;
        }
        return Ok(ExitCode::from(2));
    }

    for spec in &specs {
        for notice in prepare_host(spec) {
            eprintln!("{notice}");
        }
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
    let image = match &args.image_from_oci_layout {
        Some(dir) => oci::load(&session, dir, args.default_image_tag.as_deref()).await?,
        // As container-structure-test's tar driver: `--image image.tar` is a saved image.
        None if args.driver == Driver::Tar && oci::is_image_archive(&shown_image) => {
            oci::load_archive(&session, Path::new(&shown_image)).await?
        }
        None => shown_image.clone(),
    };
    let config = image_config(&session, &image, args.pull, args.platform.as_deref()).await?;
    let image_env = env::parse_env_entries(config.env.as_deref().unwrap_or_default());
    for spec in &mut specs {
        substitute(&mut spec.spec, &image_env);
    }
    let ctx = Context {
        session: session.clone(),
        image: image.clone(),
        image_config: config,
        progress,
        jobs: usize::from(args.jobs),
        command_timeout: args.command_timeout,
        isolate: args.isolate,
        platform: args.platform.clone(),
        runtime: args.runtime.clone(),
        save: args.save,
        tar_driver: args.driver == Driver::Tar,
        started: AtomicUsize::new(0),
        created: AtomicUsize::new(0),
        shared: Mutex::new(HashMap::new()),
        users: Mutex::new(users_of(&specs, args.isolate)),
    };
    ctx.progress.note(&format!(
        "seaworthy test: {} ({} spec file{}){}",
        image,
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
    let mut file_durations_ms = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let file_started = Instant::now();
        results.extend(run_spec(&ctx, spec, i).await);
        file_durations_ms.push(file_started.elapsed().as_secs_f64() * 1000.0);
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
    let mut report = Report::new(&image, files, results, summary);
    report.file_durations_ms = file_durations_ms;
    if report.summary.total == 0 {
        // As container-structure-test: a run in which no test ran fails.
        report.passed = false;
        ctx.progress.note(
            "FAIL: the spec files hold no test (container-structure-test fails such a run too)",
        );
    }
    write_report(&args, &report, Some(&ctx.progress))?;
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What a spec needs of the host before its containers are created, done, and what it relies on
/// that reads differently from container-structure-test, as one-line notices: a missing bind
/// mount source is created as an empty directory (the engine does that for container-structure-
/// test's binds); an unreadable env file gives no variables (container-structure-test warns
/// and goes on); a port spelled with its protocol is compared with it.
fn prepare_host(spec: &SpecFile) -> Vec<String> {
    let file = spec.path.display();
    let run = &spec.spec.container_run_options;
    let mut notices: Vec<String> = spec
        .spec
        .notices
        .iter()
        .map(|n| format!("note: {file}: {n}"))
        .collect();
    for mount in run.bind_mounts.iter().filter(|m| m.missing) {
        notices.push(match std::fs::create_dir_all(&mount.host) {
            Ok(()) => format!(
                "note: {file}: bind mount source {} did not exist; created it as an empty \
                 directory (as the engine does for container-structure-test)",
                mount.host.display()
            ),
            Err(e) => format!(
                "warning: {file}: bind mount source {} does not exist and cannot be created: {e}",
                mount.host.display()
            ),
        });
    }
    if let Some(why) = run.env_file.as_ref().and_then(|f| f.unreadable.as_ref()) {
        notices.push(format!(
            "warning: {file}: containerRunOptions.envFile: {why}; going on without it (as \
             container-structure-test does)"
        ));
    }
    if let Some(m) = &spec.spec.metadata_test {
        for port in m.exposed_ports.iter().chain(&m.unexposed_ports) {
            if port.contains('/') {
                notices.push(format!(
                    "note: {file}: metadataTest port {port:?} has a protocol: seaworthy compares \
                     number and protocol; container-structure-test compares numbers only and \
                     never matches this spelling (write {:?} for its reading)",
                    port.split('/').next().unwrap_or_default()
                ));
            }
        }
    }
    notices
}

/// Substitutes variables as container-structure-test does before running (Go's `os.Expand`,
/// against the image's environment plus `globalEnvVars`): in each command test's `command` and
/// `args` (daemon tests' command tests too) and each file existence test's `path`. Setup and
/// teardown steps, file content paths and expected output are left as written, as there.
fn substitute(spec: &mut spec::Spec, image_env: &[(String, String)]) {
    let mut env = image_env.to_vec();
    env.extend(env::added_env(image_env, &spec.global_env_vars, &[]));
    let commands = spec.command_tests.iter_mut().chain(
        spec.daemon_tests
            .iter_mut()
            .flat_map(|d| d.command_tests.iter_mut()),
    );
    for t in commands {
        t.command = env::expand_in(&t.command, &env);
        for arg in &mut t.args {
            *arg = env::expand_in(arg, &env);
        }
    }
    for t in &mut spec.file_existence_tests {
        t.path = env::expand_in(&t.path, &env);
    }
}

/// Writes `report` in the format asked for, to the report file or standard output (with the
/// text summary on `progress` when to a file).
fn write_report(
    args: &TestArgs,
    report: &Report,
    progress: Option<&Progress>,
) -> anyhow::Result<()> {
    // As container-structure-test: a report file is JSON unless JUnit is asked for.
    let format = match (args.output, &args.test_report) {
        (OutputFormat::Text, Some(_)) => OutputFormat::Json,
        (format, _) => format,
    };
    let text = match format {
        OutputFormat::Text => report.to_text_summary(),
        OutputFormat::Json => report.to_json() + "\n",
        OutputFormat::Junit => report.to_junit().context("writing the JUnit report")? + "\n",
    };
    match &args.test_report {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            if let Some(progress) = progress {
                progress.note(&report.to_text_summary());
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// How many spec files use each shared container.
fn users_of(specs: &[SpecFile], isolate: bool) -> HashMap<(Role, String), usize> {
    let mut users = HashMap::new();
    if isolate {
        return users;
    }
    for s in specs {
        let key = s.spec.container_run_options.key();
        if !s.spec.file_existence_tests.is_empty()
            || !s.spec.file_content_tests.is_empty()
            || !s.spec.license_tests.is_empty()
        {
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
    if ctx.tar_driver {
        results.extend(refused_by_tar_driver(&file, index, spec));
        results.extend(files::run(ctx, spec, index).await);
        return results;
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

/// The failed results of the command and daemon tests of `spec` under `--driver tar`, which
/// runs nothing (as container-structure-test's tar driver, which fails each command test).
fn refused_by_tar_driver(file: &str, index: usize, spec: &SpecFile) -> Vec<TestResult> {
    let why = |what: &str| {
        vec![format!(
            "{what} cannot run with --driver tar, which reads the image's files and configuration \
             and starts no container; use --driver docker"
        )]
    };
    let commands = spec.spec.command_tests.iter().enumerate().map(|(i, t)| {
        TestResult::new(
            file,
            (index, Kind::Command, i, 0),
            t.name.clone(),
            Duration::ZERO,
            why("a command test"),
        )
    });
    let daemons = spec.spec.daemon_tests.iter().enumerate().map(|(i, t)| {
        TestResult::new(
            file,
            (index, Kind::Daemon, i, 0),
            t.name.clone(),
            Duration::ZERO,
            why("a daemon test"),
        )
    });
    commands.chain(daemons).collect()
}

/// The image's configuration, pulling the image first when asked (its variant for `platform`
/// when given).
async fn image_config(
    session: &Session,
    image: &str,
    pull: bool,
    platform: Option<&str>,
) -> anyhow::Result<ImageConfig> {
    let docker = session.engine().docker();
    if pull {
        // The library's pull: registry credentials, mirror, and its progress on stderr
        // (nothing under --quiet, which sets SEAWORTHY_QUIET).
        session
            .engine()
            .pull_image(image, platform)
            .await
            .with_context(|| format!("cannot pull {image}"))?;
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
