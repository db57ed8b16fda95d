//! `seaworthy gc`: remove what dead test processes left behind.

use std::process::ExitCode;

use seaworthy::gc::{collect, GcOptions};
use seaworthy::{Engine, ResourceKind};

/// Options of `seaworthy gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Only resources of this test run (the value of their io.seaworthy.session label).
    #[arg(long)]
    session: Option<String>,
    /// Remove everything labelled io.seaworthy.managed=true on this host, also of live processes.
    #[arg(long)]
    all: bool,
    /// Remove containers kept for debugging (SEAWORTHY_KEEP_ON_FAILURE, Container::keep) too.
    #[arg(long)]
    include_kept: bool,
    /// With --all: resources created from other hosts too.
    #[arg(long, requires = "all")]
    other_hosts: bool,
    /// Keep at most this many cached baselines (the most recently used; see `seaworthy cache`).
    #[arg(long, value_name = "N")]
    cache_max_count: Option<usize>,
    /// Keep at most this much of cached baselines (bytes, or with a K, M, G suffix).
    #[arg(long, value_name = "SIZE")]
    cache_max_size: Option<String>,
    /// Remove cached baselines not used for this long (seconds, or with an m, h, d suffix).
    #[arg(long, value_name = "AGE")]
    cache_idle: Option<String>,
}

/// Sweeps the engine named by DOCKER_HOST and prints what was removed.
pub async fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let engine = Engine::connect().await?;
    let options = GcOptions {
        session: args.session,
        all: args.all,
        include_kept: args.include_kept,
        other_hosts: args.other_hosts,
    };
    let cache = crate::cache::PruneArgs::caps(
        args.cache_max_count,
        args.cache_max_size.as_deref(),
        args.cache_idle.as_deref(),
    )?;
    let report = collect(&engine, options).await?;
    for r in &report.removed {
        let kind = match r.kind {
            ResourceKind::Container => "container",
            ResourceKind::Network => "network",
            ResourceKind::Volume => "volume",
            ResourceKind::Image => "image",
        };
        println!("removed {kind} {}", r.name);
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    println!(
        "{} removed, {} left (owned by live processes, other hosts, or kept), {} errors",
        report.removed.len(),
        report.kept,
        report.errors.len()
    );
    let cache_code = match cache {
        Some(cache) => crate::cache::prune_and_report(&engine, &cache).await?,
        None => ExitCode::SUCCESS,
    };
    Ok(if report.errors.is_empty() {
        cache_code
    } else {
        ExitCode::from(1)
    })
}
