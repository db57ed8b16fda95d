//! Seaworthy's benchmark harness.
//!
//! A [`Suite`] measures named results. [`Suite::compare`] runs the measured side and its baseline
//! alternately in the same process (ABAB..., starting side swapped every run, so drift and warm-up
//! hit both sides alike) and reports both medians and their ratio (`median_ms /
//! baseline_median_ms`). Each closure returns the duration it measured, so setup and cleanup that
//! are not part of the comparison stay outside the timing.
//!
//! Run under `cargo bench` (the binary gets `--bench`), a suite does the full number of runs, prints
//! a table and writes `target/seaworthy-bench/<suite>.json` (merging by result name with what other
//! bench binaries of the same suite wrote):
//! `{"suite": "...", "results": [{"name", "median_ms", "runs", "baseline", "baseline_median_ms", "ratio"}]}`.
//! Run under `cargo test --all-targets`, each result runs once as a smoke test and nothing is written.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// One line of a suite's report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    /// The result's name (`busybox.start_to_ready`).
    pub name: String,
    /// Median of the measured side, in milliseconds.
    pub median_ms: f64,
    /// Number of runs of each side.
    pub runs: usize,
    /// What the baseline is, when there is one.
    pub baseline: Option<String>,
    /// Median of the baseline, in milliseconds.
    pub baseline_median_ms: Option<f64>,
    /// `median_ms / baseline_median_ms`.
    pub ratio: Option<f64>,
    /// Free-form extra figures (containers started, wall time...).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A benchmark suite: a named set of results, written as one JSON file.
pub struct Suite {
    name: String,
    full: bool,
    results: Vec<BenchResult>,
    runtime: tokio::runtime::Runtime,
}

impl Suite {
    /// A suite named `name`; full runs under `cargo bench`, one smoke run each otherwise.
    pub fn new(name: &str) -> Suite {
        let full = std::env::args().any(|a| a == "--bench");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the benchmark");
        eprintln!(
            "suite {name}: {}",
            if full {
                "full run"
            } else {
                "smoke run (one run each; `cargo bench` for numbers)"
            }
        );
        Suite {
            name: name.to_string(),
            full,
            results: Vec::new(),
            runtime,
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

    /// Measures `measured` against `baseline`, alternating, `runs` times each.
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
        let (m, bm) = (median_ms(&mut a), median_ms(&mut b));
        self.push(BenchResult {
            name: name.into(),
            median_ms: m,
            runs,
            baseline: Some(baseline_name.into()),
            baseline_median_ms: Some(bm),
            ratio: Some(if bm > 0.0 { m / bm } else { f64::NAN }),
            extra: Default::default(),
        });
    }

    /// Measures `measured` alone, `runs` times (a reference figure with no baseline).
    pub fn measure<M, MF>(&mut self, name: &str, runs: usize, mut measured: M)
    where
        M: FnMut() -> MF,
        MF: Future<Output = Duration>,
    {
        let runs = self.runs(runs);
        let mut a: Vec<Duration> = (0..runs)
            .map(|_| self.runtime.block_on(measured()))
            .collect();
        let m = median_ms(&mut a);
        self.push(BenchResult {
            name: name.into(),
            median_ms: m,
            runs,
            baseline: None,
            baseline_median_ms: None,
            ratio: None,
            extra: Default::default(),
        });
    }

    /// Adds a result computed by the caller.
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

    /// Attaches an extra figure to the last result.
    pub fn annotate(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        if let Some(last) = self.results.last_mut() {
            last.extra.insert(key.into(), value.into());
        }
    }

    /// Prints the table and, in a full run, writes the JSON report.
    pub fn finish(self) {
        println!("\nsuite {}", self.name);
        println!(
            "{:<32} {:>6} {:>12} {:>26} {:>14} {:>8}",
            "name", "runs", "median ms", "baseline", "baseline ms", "ratio"
        );
        for r in &self.results {
            println!(
                "{:<32} {:>6} {:>12.2} {:>26} {:>14} {:>8}",
                r.name,
                r.runs,
                r.median_ms,
                r.baseline.as_deref().unwrap_or("-"),
                r.baseline_median_ms
                    .map_or("-".into(), |b| format!("{b:.2}")),
                r.ratio.map_or("-".into(), |x| format!("{x:.3}")),
            );
        }
        if !self.full {
            return;
        }
        let dir = target_dir().join("seaworthy-bench");
        let path = dir.join(format!("{}.json", self.name));
        // Several bench binaries may report into one suite (the fixture crates share `reset`):
        // keep the results of the others, replace this run's by name.
        let mut results: Vec<serde_json::Value> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("results").and_then(|r| r.as_array()).cloned())
            .unwrap_or_default();
        for r in &self.results {
            results.retain(|old| old.get("name").and_then(|n| n.as_str()) != Some(r.name.as_str()));
            results.push(serde_json::to_value(r).unwrap_or_default());
        }
        let report = serde_json::json!({ "suite": self.name, "results": results });
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

fn median_ms(samples: &mut [Duration]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort();
    let n = samples.len();
    let mid = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    };
    mid.as_secs_f64() * 1000.0
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

    #[test]
    fn medians_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median_ms(&mut [ms(3), ms(1), ms(2)]), 2.0);
        assert_eq!(median_ms(&mut [ms(4), ms(1), ms(2), ms(3)]), 2.5);
        assert!(median_ms(&mut []).is_nan());
    }
}
