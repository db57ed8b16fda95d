//! Seaworthy's benchmark harness.
//!
//! A [`Suite`] measures named results. [`Suite::compare`] runs the measured side and its baseline
//! alternately in the same process (ABAB..., starting side swapped every run, so drift and warm-up
//! hit both sides alike), after one untimed warm-up run of each side, and reports both medians
//! and their ratio (`median_ms / baseline_median_ms`). [`Suite::measure`] times one side alone (a
//! reference figure). Each closure returns the duration it measured, so setup and cleanup that
//! are not part of the comparison stay outside the timing.
//!
//! # Noise and targets
//!
//! Every result carries a 95 % bootstrap interval computed from its own runs: of the ratio of the
//! medians (each side resampled with replacement, 2,000 times, a fixed seed) for a comparison,
//! of the median for a lone measurement. A suite declares a result's target right after
//! measuring it, with [`Suite::target`]:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use seaworthy_benchkit::{Suite, Target};
//! let mut suite = Suite::new("example");
//! suite.compare("start", "the bare engine calls", 20, || async { Duration::ZERO }, || async {
//!     Duration::ZERO
//! });
//! suite.target(Target::RatioAtMost(1.0)); // Seaworthy no slower than the baseline
//! suite.measure("clean", 30, || async { Duration::ZERO });
//! suite.target(Target::MedianAtMostMs(5.0));
//! suite.finish();
//! ```
//!
//! The verdict ([`Verdict`]) compares the interval with the target: **met** when the whole
//! interval is on the right side of it, **missed** when the whole interval is on the wrong side,
//! **within noise** when the interval contains the target (whichever side the point estimate
//! falls on). A missed target is printed as missed; the bench still exits 0 (a benchmark reports,
//! the document says what it means).
//!
//! # Output
//!
//! Run under `cargo bench` (the binary gets `--bench`), a suite does the full number of runs,
//! prints a table and **replaces** `target/seaworthy-bench/<suite>.json` (nothing of an earlier or
//! aborted run survives in it):
//!
//! ```json
//! {"suite": "...", "commit": "...", "dirty": false, "date": "2026-12-04T20:00:00Z",
//!  "machine": {"host", "cpus", "cpu_model", "memory_gib", "kernel"},
//!  "load_average": {"start": [1m, 5m, 15m], "end": [1m, 5m, 15m]},
//!  "quiet_wait_s": 42.0,
//!  "other_work": {"wall_s", "cpu_s", "foreign_share", "top": [["rustc", 12.5], ...]},
//!  "results": [{"name", "runs", "median_ms", "range_ms", "samples_ms", "baseline",
//!               "baseline_median_ms", "baseline_range_ms", "baseline_samples_ms", "ratio",
//!               "interval": {"low", "high", "of"}, "target": {"kind", "value"}, "verdict", ...}]}
//! ```
//!
//! # A quiet machine
//!
//! A full run first waits until the machine is quiet (1-minute load average below
//! [`QUIET_LOAD`], at most `SEAWORTHY_BENCH_QUIET_WAIT` seconds, default 600), then watches it
//! while it runs: the CPU time of every process that is not the suite's own work (the suite's
//! process and descendants, the container engines and their containers) is written as
//! `other_work` ([`OtherWork`]). `BENCHMARKS.md` calls a run quiet when it began below that load
//! and other work took under 2 % of the machine.
//!
//! Each bench binary is a suite of its own (a crate with several parts names them
//! `reset.postgres`, `reset.redis`...). `cargo xtask bench-doc` turns the JSON files into
//! `BENCHMARKS.md`. Run under `cargo test --all-targets`, each result runs once as a smoke test
//! (no warm-up, no verdict) and nothing is written.

mod watch;

pub use watch::{OtherWork, QUIET_LOAD};

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a result must reach.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// The ratio `median / baseline median` is at most this (1.0: no slower than the baseline).
    RatioAtMost(f64),
    /// The median is at most this many milliseconds.
    MedianAtMostMs(f64),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::RatioAtMost(r) => format!("ratio ≤ {r}"),
            Target::MedianAtMostMs(ms) => format!("median ≤ {} ms", (ms * 1000.0).round() / 1000.0),
        }
    }
}

/// How a result compares with its target, given its noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The whole 95 % interval meets the target.
    Met,
    /// The 95 % interval contains the target: this machine cannot tell.
    WithinNoise,
    /// The whole 95 % interval misses the target.
    Missed,
}

impl Verdict {
    /// The word printed and written for it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::WithinNoise => "within noise",
            Verdict::Missed => "MISSED",
        }
    }
}

/// A 95 % bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// What it bounds: `ratio` or `median_ms`.
    pub of: &'static str,
}

/// One line of a suite's report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    /// The result's name (`busybox.start_to_ready`).
    pub name: String,
    /// Number of runs of each side (warm-up runs not counted).
    pub runs: usize,
    /// Median of the measured side, in milliseconds.
    pub median_ms: f64,
    /// Fastest and slowest run of the measured side, in milliseconds.
    pub range_ms: [f64; 2],
    /// Every run of the measured side, in milliseconds, in the order they ran.
    pub samples_ms: Vec<f64>,
    /// What the baseline is, when there is one.
    pub baseline: Option<String>,
    /// Median of the baseline, in milliseconds.
    pub baseline_median_ms: Option<f64>,
    /// Fastest and slowest run of the baseline.
    pub baseline_range_ms: Option<[f64; 2]>,
    /// Every run of the baseline, in milliseconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub baseline_samples_ms: Vec<f64>,
    /// `median_ms / baseline_median_ms`.
    pub ratio: Option<f64>,
    /// 95 % bootstrap interval of the ratio (with a baseline) or of the median (without).
    pub interval: Option<Interval>,
    /// The target declared with [`Suite::target`].
    pub target: Option<Target>,
    /// How the result compares with its target (full runs only).
    pub verdict: Option<Verdict>,
    /// Free-form extra figures (containers started, notes...).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BenchResult {
    /// A result from raw samples of the measured side and, optionally, of a named baseline.
    pub fn from_samples(
        name: &str,
        samples: &[Duration],
        baseline: Option<(&str, &[Duration])>,
    ) -> BenchResult {
        let a = to_ms(samples);
        let median = median_of(&a);
        let (baseline_name, b) = match baseline {
            Some((n, s)) => (Some(n.to_string()), to_ms(s)),
            None => (None, Vec::new()),
        };
        let baseline_median = (!b.is_empty()).then(|| median_of(&b));
        let ratio = baseline_median.map(|bm| if bm > 0.0 { median / bm } else { f64::NAN });
        let interval = if a.len() < 2 {
            None
        } else if baseline_median.is_some() {
            bootstrap(&a, Some(&b)).map(|(low, high)| Interval {
                low,
                high,
                of: "ratio",
            })
        } else {
            bootstrap(&a, None).map(|(low, high)| Interval {
                low,
                high,
                of: "median_ms",
            })
        };
        BenchResult {
            name: name.to_string(),
            runs: a.len(),
            median_ms: median,
            range_ms: range(&a),
            samples_ms: a,
            baseline: baseline_name,
            baseline_median_ms: baseline_median,
            baseline_range_ms: baseline_median.map(|_| range(&b)),
            baseline_samples_ms: b,
            ratio,
            interval,
            target: None,
            verdict: None,
            extra: Default::default(),
        }
    }

    /// The verdict of `target` for this result, from its interval (`None` without one, or when
    /// the target needs a baseline the result does not have).
    pub fn check(&self, target: Target) -> Option<Verdict> {
        let (low, high, limit) = match (target, self.interval) {
            (Target::RatioAtMost(limit), Some(i)) if i.of == "ratio" => (i.low, i.high, limit),
            (Target::MedianAtMostMs(limit), Some(i)) if i.of == "median_ms" => {
                (i.low, i.high, limit)
            }
            // A median target on a comparison: the measured side's own interval.
            (Target::MedianAtMostMs(limit), Some(_)) => {
                let (low, high) = bootstrap(&self.samples_ms, None)?;
                (low, high, limit)
            }
            _ => return None,
        };
        Some(if high <= limit {
            Verdict::Met
        } else if low > limit {
            Verdict::Missed
        } else {
            Verdict::WithinNoise
        })
    }
}

/// A benchmark suite: a named set of results, written as one JSON file.
pub struct Suite {
    name: String,
    full: bool,
    results: Vec<BenchResult>,
    runtime: tokio::runtime::Runtime,
    load_at_start: Option<[f64; 3]>,
    quiet_wait: Duration,
    watcher: Option<watch::Watcher>,
}

impl Suite {
    /// A suite named `name` (its JSON file is `<name>.json`); full runs under `cargo bench`, one
    /// smoke run each otherwise.
    pub fn new(name: &str) -> Suite {
        let full = std::env::args().any(|a| a == "--bench");
        let quiet_wait = if full {
            watch::wait_for_quiet()
        } else {
            Duration::ZERO
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the benchmark");
        let load_at_start = load_average();
        eprintln!(
            "suite {name}: {} (load average {})",
            if full {
                "full run"
            } else {
                "smoke run (one run each; `cargo bench` for numbers)"
            },
            load_at_start.map_or("unknown".into(), |l| format!(
                "{:.2} {:.2} {:.2}",
                l[0], l[1], l[2]
            ))
        );
        Suite {
            name: name.to_string(),
            full,
            results: Vec::new(),
            runtime,
            load_at_start,
            quiet_wait,
            watcher: full.then(watch::Watcher::start),
        }
    }

    /// Whether this is a full (`cargo bench`) run.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Runs `fut` on the suite's runtime (for setup and cleanup).
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.runtime.block_on(fut)
    }

    fn runs(&self, runs: usize) -> usize {
        if self.full {
            runs
        } else {
            1
        }
    }

    /// Measures `measured` against `baseline`, alternating, `runs` times each, after one untimed
    /// warm-up run of each side (full runs only).
    pub fn compare<M, MF, B, BF>(
        &mut self,
        name: &str,
        baseline_name: &str,
        runs: usize,
        mut measured: M,
        mut baseline: B,
    ) where
        M: FnMut() -> MF,
        MF: Future<Output = Duration>,
        B: FnMut() -> BF,
        BF: Future<Output = Duration>,
    {
        if self.full {
            self.runtime.block_on(measured());
            self.runtime.block_on(baseline());
        }
        let runs = self.runs(runs);
        let mut a = Vec::with_capacity(runs);
        let mut b = Vec::with_capacity(runs);
        for i in 0..runs {
            if i % 2 == 0 {
                a.push(self.runtime.block_on(measured()));
                b.push(self.runtime.block_on(baseline()));
            } else {
                b.push(self.runtime.block_on(baseline()));
                a.push(self.runtime.block_on(measured()));
            }
        }
        self.push(BenchResult::from_samples(
            name,
            &a,
            Some((baseline_name, &b)),
        ));
    }

    /// Measures `measured` alone, `runs` times after one untimed warm-up run (full runs only): a
    /// reference figure with no baseline.
    pub fn measure<M, MF>(&mut self, name: &str, runs: usize, mut measured: M)
    where
        M: FnMut() -> MF,
        MF: Future<Output = Duration>,
    {
        if self.full {
            self.runtime.block_on(measured());
        }
        let runs = self.runs(runs);
        let a: Vec<Duration> = (0..runs)
            .map(|_| self.runtime.block_on(measured()))
            .collect();
        self.push(BenchResult::from_samples(name, &a, None));
    }

    /// Adds a result computed by the caller (see [`BenchResult::from_samples`]).
    pub fn push(&mut self, result: BenchResult) {
        eprintln!(
            "  {:<32} {:>10.2} ms{}",
            result.name,
            result.median_ms,
            match (&result.baseline, result.baseline_median_ms, result.ratio) {
                (Some(b), Some(bm), Some(r)) => format!("   vs {b}: {bm:.2} ms   ratio {r:.3}"),
                _ => String::new(),
            }
        );
        self.results.push(result);
    }

    /// Declares the target of the last result and checks it (in a full run): the verdict is
    /// printed at once and written to the JSON.
    pub fn target(&mut self, target: Target) {
        let full = self.full;
        if let Some(last) = self.results.last_mut() {
            last.target = Some(target);
            if full {
                last.verdict = last.check(target);
                eprintln!(
                    "  {:<32} target {}: {}",
                    last.name,
                    target.describe(),
                    last.verdict
                        .map_or("not checked (no interval)", |v| v.as_str())
                );
            }
        }
    }

    /// Attaches an extra figure to the last result.
    pub fn annotate(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        if let Some(last) = self.results.last_mut() {
            last.extra.insert(key.into(), value.into());
        }
    }

    /// Prints the table and, in a full run, replaces the suite's JSON report.
    pub fn finish(mut self) {
        let other_work = self.watcher.take().and_then(watch::Watcher::finish);
        println!("\nsuite {}", self.name);
        println!(
            "{:<32} {:>5} {:>11} {:>11} {:>8} {:>17} {:>18} {:>13}",
            "name",
            "runs",
            "median ms",
            "baseline ms",
            "ratio",
            "95% interval",
            "target",
            "verdict"
        );
        for r in &self.results {
            println!(
                "{:<32} {:>5} {:>11.2} {:>11} {:>8} {:>17} {:>18} {:>13}",
                r.name,
                r.runs,
                r.median_ms,
                r.baseline_median_ms
                    .map_or("-".into(), |b| format!("{b:.2}")),
                r.ratio.map_or("-".into(), |x| format!("{x:.3}")),
                r.interval.map_or("-".into(), |i| if i.of == "ratio" {
                    format!("{:.3}-{:.3}", i.low, i.high)
                } else {
                    format!("{:.2}-{:.2} ms", i.low, i.high)
                }),
                r.target.map_or("-".into(), |t| t.describe()),
                r.verdict.map_or("-", |v| v.as_str()),
            );
        }
        if !self.full {
            return;
        }
        let dir = target_dir().join("seaworthy-bench");
        let path = dir.join(format!("{}.json", self.name));
        let (commit, dirty) = git_commit();
        let report = serde_json::json!({
            "suite": self.name,
            "commit": commit,
            "dirty": dirty,
            "date": utc_now(),
            "machine": machine(),
            "load_average": {
                "start": self.load_at_start,
                "end": load_average(),
            },
            "quiet_wait_s": (self.quiet_wait.as_secs_f64() * 10.0).round() / 10.0,
            "other_work": other_work,
            "results": self.results,
        });
        match std::fs::create_dir_all(&dir).and_then(|_| {
            std::fs::write(
                &path,
                serde_json::to_vec_pretty(&report).unwrap_or_default(),
            )
        }) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}

fn to_ms(samples: &[Duration]) -> Vec<f64> {
    samples.iter().map(|d| d.as_secs_f64() * 1e3).collect()
}

/// Median of unsorted values (NaN when empty).
fn median_of(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn range(values: &[f64]) -> [f64; 2] {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() {
        [f64::NAN, f64::NAN]
    } else {
        [min, max]
    }
}

/// Resamples used for each bootstrap interval.
const RESAMPLES: usize = 2000;

/// 95 % percentile-bootstrap interval of `median(a)` (without `b`) or of `median(a) /
/// median(b)`, each side resampled with replacement on its own. Deterministic (fixed seed).
fn bootstrap(a: &[f64], b: Option<&[f64]>) -> Option<(f64, f64)> {
    if a.len() < 2 || b.is_some_and(|b| b.len() < 2) {
        return None;
    }
    let mut rng = SplitMix64(0x5ea_0047_7b1e);
    let resample = |values: &[f64], rng: &mut SplitMix64| -> f64 {
        let drawn: Vec<f64> = (0..values.len())
            .map(|_| values[rng.below(values.len())])
            .collect();
        median_of(&drawn)
    };
    let mut stats: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let ma = resample(a, &mut rng);
            match b {
                Some(b) => ma / resample(b, &mut rng),
                None => ma,
            }
        })
        .filter(|x| x.is_finite())
        .collect();
    if stats.is_empty() {
        return None;
    }
    stats.sort_by(f64::total_cmp);
    let at = |q: f64| stats[((stats.len() - 1) as f64 * q).round() as usize];
    Some((at(0.025), at(0.975)))
}

/// A small deterministic generator for the bootstrap.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The 1, 5 and 15 minute load averages of `/proc/loadavg`.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// The commit checked out, and whether tracked files differ from it.
fn git_commit() -> (Option<String>, Option<bool>) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]);
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
    (commit, dirty)
}

/// The machine's description: host, CPUs, CPU model, memory, kernel.
fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let cpu_model = read("/proc/cpuinfo").and_then(|c| {
        c.lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let memory_gib = read("/proc/meminfo").and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0)
    });
    serde_json::json!({
        "host": read("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "kernel": read("/proc/sys/kernel/osrelease").map(|k| k.trim().to_string()),
    })
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc(secs)
}

fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The workspace's target directory (`CARGO_TARGET_DIR`, else found from the running binary).
pub fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|a| a.file_name().is_some_and(|n| n == "target"))
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("target"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median_of(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_of(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median_of(&[]).is_nan());
    }

    #[test]
    fn a_clear_win_is_met_a_clear_loss_missed_and_a_tie_within_noise() {
        let fast = ms(&[50, 52, 49, 51, 50, 53, 48, 50, 51, 52]);
        let slow = ms(&[100, 104, 98, 101, 99, 103, 97, 100, 102, 101]);
        let win = BenchResult::from_samples("win", &fast, Some(("slow", &slow)));
        assert!((win.ratio.unwrap() - 0.5).abs() < 0.02);
        let i = win.interval.unwrap();
        assert!(i.low <= 0.5 && 0.5 <= i.high + 0.01, "{i:?}");
        assert_eq!(win.check(Target::RatioAtMost(1.0)), Some(Verdict::Met));

        let loss = BenchResult::from_samples("loss", &slow, Some(("fast", &fast)));
        assert_eq!(loss.check(Target::RatioAtMost(1.0)), Some(Verdict::Missed));

        // The same spread on both sides: the ratio's interval straddles 1.
        let tie = BenchResult::from_samples("tie", &slow, Some(("slow", &slow)));
        assert_eq!(
            tie.check(Target::RatioAtMost(1.0)),
            Some(Verdict::WithinNoise)
        );
    }

    #[test]
    fn median_targets_use_the_measured_sides_interval() {
        let runs = ms(&[4, 5, 6, 5, 4, 5, 6, 5]);
        let alone = BenchResult::from_samples("alone", &runs, None);
        assert_eq!(
            alone.check(Target::MedianAtMostMs(10.0)),
            Some(Verdict::Met)
        );
        assert_eq!(
            alone.check(Target::MedianAtMostMs(5.0)),
            Some(Verdict::WithinNoise)
        );
        assert_eq!(
            alone.check(Target::MedianAtMostMs(3.0)),
            Some(Verdict::Missed)
        );
        // A ratio target needs a baseline.
        assert_eq!(alone.check(Target::RatioAtMost(1.0)), None);
        let compared = BenchResult::from_samples("compared", &runs, Some(("b", &runs)));
        assert_eq!(
            compared.check(Target::MedianAtMostMs(10.0)),
            Some(Verdict::Met)
        );
        // One run has no interval: no verdict.
        let once = BenchResult::from_samples("once", &ms(&[5]), None);
        assert_eq!(once.check(Target::MedianAtMostMs(10.0)), None);
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_400_000), "2026-12-04T16:00:00Z");
    }
}
