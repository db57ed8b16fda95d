//! `seaworthy plugin list|inspect|check`: fixture plugins on the search path
//! (`SEAWORTHY_PLUGIN_PATH`, `[plugins] path` in seaworthy.toml). The logic lives in
//! `seaworthy_plugin::cli`; this module parses and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use seaworthy_plugin::cli::{self, CheckArgs, InspectArgs, ListArgs};

/// Arguments of `seaworthy plugin`.
#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

/// The `plugin` subcommands.
#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// List the plugins on the search path, with their WIT version and capabilities.
    List {
        /// Also search this directory (before the environment's search path).
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Show a plugin's manifest, component, WIT versions and grants, without loading it.
    Inspect {
        /// A plugin id, or a plugin directory or manifest file.
        plugin: String,
        /// Also search this directory.
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Load a plugin as a test would (manifest, WIT version, grants, compile, link) and call it.
    Check {
        /// A plugin id, or a plugin directory or manifest file.
        plugin: String,
        /// Also search this directory.
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Grant a capability for this check: `exec`, `tcp:PORT` or `http:PORT`.
        #[arg(long = "grant", value_name = "CAPABILITY")]
        grants: Vec<String>,
    },
}

/// Runs `seaworthy plugin ...`: 0 when the report was printed, 1 when the plugin was refused.
pub async fn run(args: PluginArgs) -> anyhow::Result<ExitCode> {
    // Loading compiles and may block for a while: keep it off the async runtime's thread.
    let outcome = tokio::task::spawn_blocking(move || match args.command {
        PluginCommand::List { dirs } => cli::list(&ListArgs { dirs }).map(|r| r.to_string()),
        PluginCommand::Inspect { plugin, dirs } => {
            cli::inspect(&InspectArgs { plugin, dirs }).map(|r| r.to_string())
        }
        PluginCommand::Check {
            plugin,
            dirs,
            grants,
        } => cli::check(&CheckArgs {
            plugin,
            dirs,
            grants,
        })
        .map(|r| r.to_string()),
    })
    .await?;
    match outcome {
        Ok(report) => {
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
