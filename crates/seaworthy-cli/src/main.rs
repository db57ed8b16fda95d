//! `seaworthy`: Seaworthy's command line.
//!
//! One module per subcommand; each defines its clap `Args` and an async `run` that returns the
//! process exit code. To add a subcommand, add a variant to [`Commands`] and a line to its match in
//! [`main`].
//!
//! Exit codes: 0 when everything passed, 1 when a test failed, 2 for usage and spec errors (and
//! anything that stopped the run).

mod cache;
mod doctor;
mod gc;
mod plugin;
mod structure;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Test Docker images and use containers as test fixtures.
#[derive(Debug, Parser)]
#[command(name = "seaworthy", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Commands {
    /// Run structure tests (container-structure-test files and flags, plus daemon tests) against
    /// an image.
    Test(structure::TestArgs),
    /// Remove the containers, networks, volumes and images of dead test processes (and of finished
    /// test runs) on this host.
    Gc(gc::GcArgs),
    /// Cached baselines (fixture state kept in images across runs): list them, remove some,
    /// prune by count, size or idle time.
    Cache(cache::CacheArgs),
    /// Fixture plugins: list, inspect and check them; create one; push one to an OCI registry;
    /// install (and pin) a published one.
    Plugin(plugin::PluginArgs),
    /// Show the Docker engine Seaworthy finds, how it was found, its version, storage driver,
    /// where published ports are reached and whether the reaper can work there.
    Doctor(doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    // `seaworthy test --quiet` silences the library's pull and build progress too: it reads
    // SEAWORTHY_QUIET. Set here, before the runtime starts any thread.
    if matches
        .subcommand_matches("test")
        .is_some_and(|test| test.get_flag("quiet"))
    {
        std::env::set_var("SEAWORTHY_QUIET", "1");
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let outcome = match cli.command {
        Commands::Test(args) => structure::run(args).await,
        Commands::Gc(args) => gc::run(args).await,
        Commands::Cache(args) => cache::run(args).await,
        Commands::Plugin(args) => plugin::run(args).await,
        Commands::Doctor(args) => doctor::run(args).await,
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
