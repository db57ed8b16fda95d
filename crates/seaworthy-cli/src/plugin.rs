//! `seaworthy plugin list|inspect|check`: fixture plugins on the search path
//! (`SEAWORTHY_PLUGIN_PATH`, `[plugins] path` in seaworthy.toml); `seaworthy plugin
//! new|push|install|search`: making a plugin crate, publishing it to an OCI registry, installing
//! (and pinning in `seaworthy.lock`) a published one, and listing what a registry holds. The logic lives in `seaworthy_plugin`
//! (`cli`, `scaffold`, `oci`); this module parses and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use seaworthy_plugin::cli::{self, CheckArgs, InspectArgs, ListArgs};
use seaworthy_plugin::oci::{self, InstallSource, LockChange, OciConfig};
use seaworthy_plugin::scaffold;

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
        /// A plugin id, a plugin directory or manifest file, or an OCI reference.
        plugin: String,
        /// Also search this directory.
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Load a plugin as a test would (manifest, WIT version, grants, compile, link) and call it.
    Check {
        /// A plugin id, a plugin directory or manifest file, or an OCI reference.
        plugin: String,
        /// Also search this directory.
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Grant a capability for this check: `exec`, `tcp:PORT` or `http:PORT`.
        #[arg(long = "grant", value_name = "CAPABILITY")]
        grants: Vec<String>,
    },
    /// Create a plugin crate that builds with `cargo build --release --target wasm32-wasip2`.
    New {
        /// The plugin id (and crate name): lowercase letters, digits, `-` and `_`.
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Publish a plugin (a plugin directory, or a built plugin crate) to an OCI registry.
    Push {
        /// The plugin directory or crate (holding seaworthy-plugin.toml).
        dir: PathBuf,
        /// Where to push: REGISTRY/NAMESPACE/NAME:TAG.
        reference: String,
        /// The component to push (default: the manifest's `wasm`, else cargo's release build).
        #[arg(long, value_name = "FILE")]
        wasm: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Install a plugin from an OCI registry into the local store, verified and pinned in
    /// seaworthy.lock (a pinned plugin installs from the store without the registry).
    Install {
        /// REGISTRY/NAMESPACE/NAME:TAG, or ...@sha256:DIGEST.
        reference: String,
        /// The lockfile (default: SEAWORTHY_LOCKFILE, else seaworthy.lock next to seaworthy.toml).
        #[arg(long, value_name = "FILE")]
        lockfile: Option<PathBuf>,
        /// Resolve the tag again and move its pin.
        #[arg(long)]
        update: bool,
        /// Refuse a reference that seaworthy.lock does not pin.
        #[arg(long)]
        locked: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// List the plugins a registry holds (name, versions, WIT version, capabilities,
    /// description), from its catalogue and the artifacts' annotations.
    Search {
        /// The registry: HOST[:PORT].
        registry: String,
        /// Only the plugins whose reference, id or description contains this (any case).
        term: Option<String>,
        #[command(flatten)]
        access: RegistryArgs,
    },
}

/// How to reach registries.
#[derive(Debug, Args)]
struct RegistryArgs {
    /// Speak plain HTTP to this registry (localhost and 127.0.0.1 always are). Repeatable.
    #[arg(long = "insecure", value_name = "HOST[:PORT]")]
    insecure: Vec<String>,
    /// The local store of installed plugins (default: SEAWORTHY_OCI_CACHE, else the user cache).
    #[arg(long = "cache", value_name = "DIR")]
    cache: Option<PathBuf>,
}

impl RegistryArgs {
    fn config(self) -> OciConfig {
        let mut config = OciConfig::from_environment();
        config.insecure.extend(self.insecure);
        if let Some(cache) = self.cache {
            config.cache_dir = cache;
        }
        config
    }
}

/// `seaworthy plugin new|push|install|search`.
async fn publishing(command: PluginCommand) -> seaworthy_plugin::Result<String> {
    match command {
        PluginCommand::New { name, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let made = scaffold::new_plugin(&dir, &name)?;
            let mut out = format!("created plugin `{}` in {}\n", made.id, made.dir.display());
            for file in &made.files {
                out.push_str(&format!("  {}\n", file.display()));
            }
            out.push_str(&format!(
                "next:\n  cd {}\n  cargo build --release --target wasm32-wasip2\n  seaworthy plugin push . REGISTRY/NAMESPACE/{}:0.1.0\n",
                made.dir.display(),
                made.id
            ));
            Ok(out)
        }
        PluginCommand::Push {
            dir,
            reference,
            wasm,
            registry,
        } => {
            let config = registry.config();
            let pushed = oci::push_component(&dir, wasm.as_deref(), &reference, &config).await?;
            Ok(format!(
                "pushed {} ({} {})\n  manifest         {}\n  component        {}\n  plugin manifest  {}\n",
                pushed.reference,
                pushed.manifest.id,
                pushed.manifest.version,
                pushed.manifest_digest,
                pushed.component_digest,
                pushed.plugin_manifest_digest
            ))
        }
        PluginCommand::Install {
            reference,
            lockfile,
            update,
            locked,
            registry,
        } => {
            let mut config = registry.config().update(update);
            config.locked |= locked;
            if let Some(lockfile) = lockfile {
                config.lockfile = Some(lockfile);
            }
            let installed = oci::install(&reference, &config).await?;
            let lock = match (installed.lock, &config.lockfile) {
                (LockChange::Added, Some(path)) => format!("pinned in {}", path.display()),
                (LockChange::Updated, Some(path)) => format!("pin moved in {}", path.display()),
                (LockChange::Pinned, Some(path)) => format!("as pinned in {}", path.display()),
                _ => "not pinned".to_string(),
            };
            Ok(format!(
                "installed {} ({} {}) from the {}, {lock}\n  manifest         {}\n  component        {}\n  plugin manifest  {}\n  directory        {}\n",
                installed.reference,
                installed.manifest.id,
                installed.manifest.version,
                match installed.source {
                    InstallSource::Cache => "local store",
                    InstallSource::Registry => "registry",
                },
                installed.manifest_digest,
                installed.component_digest,
                installed.plugin_manifest_digest,
                installed.dir.display()
            ))
        }
        PluginCommand::Search {
            registry,
            term,
            access,
        } => {
            let config = access.config();
            let found = oci::search::search(&registry, term.as_deref(), &config).await?;
            if found.is_empty() {
                return Ok(match term {
                    Some(term) => format!("no plugin in {registry} matches {term:?}\n"),
                    None => format!("no plugins in {registry}\n"),
                });
            }
            Ok(oci::search::table(&found))
        }
        _ => unreachable!("only the publishing commands come here"),
    }
}

/// Runs `seaworthy plugin ...`: 0 when the report was printed, 1 when the plugin was refused.
pub async fn run(args: PluginArgs) -> anyhow::Result<ExitCode> {
    let outcome = match args.command {
        command @ (PluginCommand::New { .. }
        | PluginCommand::Push { .. }
        | PluginCommand::Install { .. }
        | PluginCommand::Search { .. }) => publishing(command).await,
        command => local(command).await?,
    };
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

/// `seaworthy plugin list|inspect|check`.
async fn local(command: PluginCommand) -> anyhow::Result<seaworthy_plugin::Result<String>> {
    // Loading compiles and may block for a while: keep it off the async runtime's thread.
    Ok(tokio::task::spawn_blocking(move || match command {
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
        _ => unreachable!("the publishing commands do not come here"),
    })
    .await?)
}
