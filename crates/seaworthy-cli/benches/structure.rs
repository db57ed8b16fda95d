//! Suite `structure`: `seaworthy test` over a 30-test spec (10 command tests, 10 file
//! existence/content tests, 10 metadata checks) against `seaworthy-test/postgres`, through the
//! CLI binary, wall time of the whole process.
//!
//! There is no container-structure-test binary on these machines, so the baseline is Seaworthy's
//! own `--isolate` mode: a container per test (a started one per command test, a created one per
//! file test, metadata from the image), which is how container-structure-test's docker driver
//! runs tests. Both sides use the same parallelism (`--jobs 4`).
//!
//! `cargo bench -p seaworthy-cli --bench structure` (needs `cargo xtask images postgres`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use seaworthy_benchkit::{Suite, Target};
use serde_json::Value;

const IMAGE: &str = "seaworthy-test/postgres";
const SPEC: &str = "tests/specs/spec30.yaml";

/// `spec30`'s ratio as BENCHMARKS.md recorded it before the compatibility changes (the upper end
/// of its quiet runs, 0.379-0.386).
const SPEC30_RECORDED: f64 = 0.386;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the CLI once; returns its wall time and its JSON report (which must be all green).
fn run(isolate: bool) -> (Duration, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seaworthy"));
    cmd.current_dir(root())
        .args(["test", "--quiet", "--output", "json", "--image", IMAGE]);
    if isolate {
        cmd.arg("--isolate");
    }
    cmd.arg(SPEC);
    let started = Instant::now();
    let out = cmd.output().expect("run seaworthy");
    let elapsed = started.elapsed();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["passed"], true, "spec30 must pass: {report}");
    assert_eq!(report["summary"]["total"], 30);
    (elapsed, report)
}

fn main() {
    let mut suite = Suite::new("structure");
    // Warm-up: page cache, image layers, the engine's first containers.
    let (_, shared) = run(false);
    let (_, isolated) = run(true);

    suite.compare(
        "spec30",
        "seaworthy --isolate (a container per test, as container-structure-test does)",
        10,
        || async { run(false).0 },
        || async { run(true).0 },
    );
    // The figure BENCHMARKS.md recorded before `seaworthy test` followed container-structure-test
    // to the letter (quiet runs: 0.379-0.386): the CLI must not have become slower than it.
    // "within noise" is "stayed"; "missed" is slower.
    suite.target(Target::RatioAtMost(SPEC30_RECORDED));
    suite.annotate(
        "target_from",
        "the recorded ratio before the container-structure-test compatibility changes",
    );
    for (side, report) in [("", &shared), ("baseline_", &isolated)] {
        let summary = &report["summary"];
        suite.annotate(
            &format!("{side}containers_started"),
            summary["containers_started"].clone(),
        );
        suite.annotate(
            &format!("{side}containers_created"),
            summary["containers_created"].clone(),
        );
    }
    suite.annotate("tests", 30);
    suite.annotate("wall_time", "whole CLI process, spawn to exit, median");
    suite.finish();
}
