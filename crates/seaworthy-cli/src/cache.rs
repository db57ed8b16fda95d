//! `seaworthy cache ls|rm|prune`: the cached baseline images (see `seaworthy::baseline_cache`);
//! `ls` also lists the containers reused across runs (see `seaworthy::reuse`).

use std::process::ExitCode;
use std::time::Duration;

use seaworthy::baseline_cache::{self, CachedImage, PruneOptions};
use seaworthy::Engine;

/// Options of `seaworthy cache`.
#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

/// The subcommands of `seaworthy cache`.
#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
    /// List the cached baselines: id, size, age, last use, kind and identity, key, what each was
    /// built from; then the containers reused across runs: name, state, age, last use, key,
    /// image.
    Ls {
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Remove cached baselines by image id (or its prefix) or key (or its prefix).
    Rm {
        /// Image ids or keys (prefixes of at least 4 characters).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove cached baselines: those beyond a count or size cap (least recently used first),
    /// idle ones, or all of them.
    Prune(PruneArgs),
}

/// The caps of `seaworthy cache prune` (and of `seaworthy gc`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PruneArgs {
    /// Only this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Keep at most this many images (the most recently used).
    #[arg(long, value_name = "N")]
    max_count: Option<usize>,
    /// Keep at most this much (bytes, or with a K, M, G suffix), the most recently used first.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_size: Option<u64>,
    /// Remove images not used for this long (seconds, or with an m, h, d suffix).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    idle: Option<Duration>,
    /// Remove every cached image (of the namespace, with --namespace).
    #[arg(long)]
    all: bool,
}

impl PruneArgs {
    /// Whether any cap or removal was asked for.
    pub fn any(&self) -> bool {
        self.max_count.is_some() || self.max_size.is_some() || self.idle.is_some() || self.all
    }

    /// The caps `seaworthy gc` was given, if any (sizes and ages as `--max-size`, `--idle`).
    pub fn caps(
        max_count: Option<usize>,
        max_size: Option<&str>,
        idle: Option<&str>,
    ) -> anyhow::Result<Option<PruneArgs>> {
        let args = PruneArgs {
            max_count,
            max_size: max_size
                .map(parse_size)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--cache-max-size: {e}"))?,
            idle: idle
                .map(parse_age)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--cache-idle: {e}"))?,
            ..Default::default()
        };
        Ok(args.any().then_some(args))
    }

    fn options(&self) -> PruneOptions {
        PruneOptions {
            namespace: self.namespace.clone(),
            max_count: self.max_count,
            max_bytes: self.max_size,
            idle: self.idle,
            all: self.all,
        }
    }
}

/// Runs `seaworthy cache …` against the engine DOCKER_HOST (or the usual search) names.
pub async fn run(args: CacheArgs) -> anyhow::Result<ExitCode> {
    let engine = Engine::connect().await?;
    match args.command {
        CacheCommand::Ls { namespace } => {
            let images = baseline_cache::list(&engine, namespace.as_deref()).await?;
            print_table(&images);
            if namespace.is_none() {
                println!();
                print_reused(&seaworthy::reuse::list(&engine, &[]).await?);
            }
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Rm { ids } => {
            let images = baseline_cache::list(&engine, None).await?;
            let mut failed = false;
            for wanted in &ids {
                let matching: Vec<&CachedImage> =
                    images.iter().filter(|i| matches(i, wanted)).collect();
                match matching.as_slice() {
                    [] => {
                        eprintln!("error: no cached baseline has the id or key {wanted}");
                        failed = true;
                    }
                    [image] => match baseline_cache::remove(&engine, &image.id).await {
                        Ok(()) => println!("removed {} ({})", short(&image.id), image.identity),
                        Err(e) => {
                            eprintln!("error: {e}");
                            failed = true;
                        }
                    },
                    several => {
                        eprintln!(
                            "error: {wanted} names {} cached baselines; give more of it",
                            several.len()
                        );
                        failed = true;
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        CacheCommand::Prune(prune) => {
            if !prune.any() {
                anyhow::bail!(
                    "say what to prune: --max-count, --max-size, --idle or --all (see --help)"
                );
            }
            prune_and_report(&engine, &prune).await
        }
    }
}

/// Applies `prune` and prints what was removed; exit code 1 when a removal failed.
pub async fn prune_and_report(engine: &Engine, prune: &PruneArgs) -> anyhow::Result<ExitCode> {
    let (removed, errors) = baseline_cache::prune(engine, &prune.options()).await?;
    for image in &removed {
        println!(
            "removed cached baseline {} ({}, {})",
            short(&image.id),
            image.identity,
            human_size(image.size)
        );
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    println!(
        "{} cached baselines removed, {} errors",
        removed.len(),
        errors.len()
    );
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn matches(image: &CachedImage, wanted: &str) -> bool {
    let wanted = wanted.trim_start_matches("sha256:");
    wanted.len() >= 4
        && (short_full(&image.id).starts_with(wanted) || image.key.starts_with(wanted))
}

fn short_full(id: &str) -> &str {
    id.trim_start_matches("sha256:")
}

fn short(id: &str) -> &str {
    let id = short_full(id);
    &id[..12.min(id.len())]
}

fn print_table(images: &[CachedImage]) {
    let now = unix_now();
    println!(
        "{:<12}  {:>8}  {:>6}  {:>9}  {:<12}  {:<28}  {:<16}  BUILT FROM",
        "IMAGE", "SIZE", "AGE", "LAST USE", "NAMESPACE", "FIXTURE", "KEY"
    );
    for image in images {
        let last_use = image
            .last_used
            .map(|t| human_age(now - t))
            .unwrap_or_else(|| "-".into());
        let state = if image.complete { "" } else { " (incomplete)" };
        println!(
            "{:<12}  {:>8}  {:>6}  {:>9}  {:<12}  {:<28}  {:<16}  {}{state}",
            short(&image.id),
            human_size(image.size),
            human_age(now - image.created),
            last_use,
            image.namespace,
            image.identity,
            &image.key[..16.min(image.key.len())],
            image.built_from
        );
    }
    let total: i64 = images.iter().map(|i| i.size).sum();
    println!(
        "{} cached baselines, {} (sizes include the layers shared with their base images)",
        images.len(),
        human_size(total)
    );
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn print_reused(reused: &[seaworthy::reuse::ReusedContainer]) {
    let now = unix_now();
    println!(
        "{:<32}  {:<8}  {:>6}  {:>9}  {:<16}  IMAGE",
        "REUSED CONTAINER", "STATE", "AGE", "LAST USE", "KEY"
    );
    for c in reused {
        println!(
            "{:<32}  {:<8}  {:>6}  {:>9}  {:<16}  {}",
            c.name,
            c.state,
            human_age(now - c.created),
            human_age(c.idle_secs(now)),
            &c.key[..16.min(c.key.len())],
            c.image
        );
    }
    println!(
        "{} reused containers (seaworthy gc removes those idle for longer than SEAWORTHY_REUSE_IDLE, 24h by default)",
        reused.len()
    );
}

fn human_size(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    if bytes >= 1e9 {
        format!("{:.1} GB", bytes / 1e9)
    } else if bytes >= 1e6 {
        format!("{:.0} MB", bytes / 1e6)
    } else {
        format!("{:.0} kB", bytes / 1e3)
    }
}

fn human_age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn split_number(input: &str) -> Result<(f64, String), String> {
    let input = input.trim();
    let split = input
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(input.len());
    let (number, unit) = input.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{input}` does not start with a number"))?;
    Ok((number, unit.trim().to_ascii_lowercase()))
}

fn parse_size(input: &str) -> Result<u64, String> {
    let (number, unit) = split_number(input)?;
    let factor = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        other => return Err(format!("unknown size unit `{other}` (use K, M or G)")),
    };
    Ok((number * factor) as u64)
}

/// An age: seconds, or with an `s`, `m`, `h` or `d` suffix.
pub(crate) fn parse_age(input: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(input)?;
    let factor = match unit.as_str() {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => return Err(format!("unknown age unit `{other}` (use s, m, h or d)")),
    };
    Ok(Duration::from_secs_f64(number * factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_parse_with_units() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert_eq!(parse_size("1.5m"), Ok(1_500_000));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("3T").unwrap_err().contains("`t`"));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_age("1w").is_err());
    }
}
