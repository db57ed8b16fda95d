//! The `loop20` result of the `reuse` suite: an edit-and-test loop. The crate in
//! `crates/seaworthy-compare/reuse_load` (20 tests sharing one PostgreSQL fixture per run, the
//! 40 migrations and 10,000 seed rows of the suite, baseline cache and reuse on) is run twice
//! with `cargo test`; the result is the second run's wall time against the first's.
//!
//! Each sample starts from an empty cache (a namespace of the suite's own, emptied) and no
//! reused fixture (those of the group label removed): the first run builds the cached baseline,
//! starts from it and leaves the fixture; the second finds it, cleans it and runs the tests. The
//! crate is built before the samples (`cargo test --no-run`), so no sample compiles anything; the
//! wall time is the whole `cargo test` (cargo's freshness check, the test binary, its session).
//! Full runs only (`cargo bench`): the smoke run under `cargo test` does not build the crate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use seaworthy_benchkit::{BenchResult, Suite, Target};

const RUNS: usize = 5;

/// The crate's manifest, and the workspace (for its lock file and target directory).
fn paths() -> (PathBuf, PathBuf) {
    let compare = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = compare
        .parent()
        .and_then(Path::parent)
        .expect("the workspace of seaworthy-compare")
        .to_path_buf();
    (compare.join("reuse_load/Cargo.toml"), workspace)
}

/// `cargo test` of the crate with `args`, its environment set; panics naming what failed.
fn cargo_test(manifest: &Path, target: &Path, env: &[(&str, String)], args: &[&str]) -> Duration {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["test", "-q", "--manifest-path"])
        .arg(manifest)
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        // Each `cargo test` is a run of its own, as at a terminal.
        .env_remove("SEAWORTHY_SESSION")
        .env_remove("NEXTEST_RUN_ID")
        .env_remove("SEAWORTHY_BASELINE_CACHE")
        .env_remove("SEAWORTHY_REUSE")
        .stdout(std::process::Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let t = Instant::now();
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("run cargo test for {}: {e}", manifest.display()));
    let elapsed = t.elapsed();
    assert!(
        status.success(),
        "cargo test {args:?} of {} failed ({status})",
        manifest.display()
    );
    elapsed
}

/// Removes the namespace's cached images and the group's reused containers.
async fn empty(namespace: &str, group: &str) {
    crate::remove_reused(group).await;
    crate::remove_cached(namespace).await;
}

/// Runs the `loop20` samples with the migrations of `migrations`.
pub fn loop20(suite: &mut Suite, migrations: &Path) {
    if !suite.is_full() {
        eprintln!(
            "  loop20: full runs only (`cargo bench`: it builds and runs a crate of its own)"
        );
        return;
    }
    let (manifest, workspace) = paths();
    let lock = manifest.with_file_name("Cargo.lock");
    if !lock.exists() {
        // The workspace's versions (cargo drops what the crate does not use).
        std::fs::copy(workspace.join("Cargo.lock"), &lock)
            .expect("copy the workspace's Cargo.lock");
    }
    // The workspace's debug build directory: the dependencies are built there already.
    let target = workspace.join("target");
    let id = std::process::id();
    let namespace = format!("bench-loop20-{id}");
    let group = format!("loop20-{id}");
    let env = [
        ("SW_LOAD_MIGRATIONS", migrations.display().to_string()),
        ("SW_LOAD_GROUP", group.clone()),
        ("SEAWORTHY_BASELINE_CACHE_NAMESPACE", namespace.clone()),
    ];
    let t = Instant::now();
    cargo_test(&manifest, &target, &env, &["--no-run"]);
    eprintln!("  (loop20's crate built in {:.1?})", t.elapsed());
    let mut first = Vec::new();
    let mut second = Vec::new();
    for _ in 0..RUNS {
        suite.block_on(empty(&namespace, &group));
        first.push(cargo_test(&manifest, &target, &env, &[]));
        second.push(cargo_test(&manifest, &target, &env, &[]));
    }
    suite.block_on(empty(&namespace, &group));
    suite.push(BenchResult::from_samples(
        "loop20",
        &second,
        Some((
            "the first run (empty cache, no reused fixture: cache built, fixture started)",
            &first,
        )),
    ));
    suite.target(Target::RatioAtMost(0.5));
}
