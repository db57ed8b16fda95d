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
    /// Remove containers reused across runs (SEAWORTHY_REUSE) that no run took for this long
    /// (seconds, or with an m, h, d suffix; default SEAWORTHY_REUSE_IDLE, `[reuse] idle` of
    /// seaworthy.toml, or 24h).
    #[arg(long, value_name = "AGE")]
    reuse_idle: Option<String>,
    /// Keep at most this many containers reused across runs (the most recently used; default
    /// SEAWORTHY_REUSE_MAX or `[reuse] max`, else no cap).
    #[arg(long, value_name = "N")]
    reuse_max_count: Option<usize>,
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
    let reuse_idle = args
        .reuse_idle
        .as_deref()
        .map(crate::cache::parse_age)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--reuse-idle: {e}"))?;
    let mut report = collect(&engine, options).await?;
    // The configured idle time and cap applied in `collect`; flags apply on top.
    if reuse_idle.is_some() || args.reuse_max_count.is_some() {
        let reuse_options = seaworthy::reuse::ReuseGcOptions {
            idle: reuse_idle,
            max_count: args.reuse_max_count,
            ..Default::default()
        };
        let (removed, errors) = seaworthy::reuse::collect(&engine, &reuse_options).await?;
        report.kept = report.kept.saturating_sub(removed.len());
        report.removed.extend(
            removed
                .into_iter()
                .map(|r| seaworthy::gc::LabelledResource {
                    kind: ResourceKind::Container,
                    id: r.id,
                    name: r.name,
                    labels: r.labels,
                }),
        );
        report.errors.extend(errors);
    }
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
