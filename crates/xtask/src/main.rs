//! Project tasks for Seaworthy, run as `cargo xtask <task>`.
//!
//! `images` builds the local Docker images the test suite uses
//! (`seaworthy-test/*:latest`) from the recipes under `tests/images/`, without
//! any container registry. Images whose recipe has not changed since they were
//! built are skipped, so running the task again takes a few seconds.
//!
//! `bench-doc` records the suites' JSON results (`cargo bench`) in `crates/seaworthy-benchkit/records/` and regenerates
//! the result tables of `BENCHMARKS.md` from them.
//!
//! `layers` checks that no module of the core crate imports from a layer above its own (the
//! layer table in ARCHITECTURE.md; a test of this crate runs it too).
//!
//! `demo` builds the one image the demonstration needs and runs it
//! (`cargo run -p seaworthy --example demo`).

mod bench_doc;
mod builders;
mod cmd;
mod docker;
mod images;
mod layers;
mod recipe;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

/// Help text of `cargo xtask`.
const USAGE: &str = "\
Usage: cargo xtask <TASK>

Tasks:
  images [--force] [NAME...]   Build the local test images (seaworthy-test/*),
                               skipping those whose recipe is unchanged.
                               With NAMEs, only those images and their base.
                               --force rebuilds the selected images anyway
                               (not a base pulled in only as a dependency).
  images --list [NAME...]      Show the images, their recipe hash and state.
  bench-doc [--check]          Record the results of `cargo bench`
                               (target/seaworthy-bench/*.json) in crates/seaworthy-benchkit/records/
                               and regenerate BENCHMARKS.md's tables from them;
                               --check only checks the document is current.
  layers                       Check that no module of the core crate
                               (crates/seaworthy/src) imports from a layer
                               above its own (the table in ARCHITECTURE.md).
  demo                         Build the busybox test image and run the
                               demonstration (crates/seaworthy/examples/demo.rs).
  help                         Show this text.

NAME is an image name with or without its prefix: `postgres`,
`seaworthy-test/postgres` or `seaworthy-test/postgres:latest`.";

/// Options of the `images` task, as parsed from the command line.
#[derive(Debug, Default)]
struct ImagesArgs {
    /// Rebuild the selected images even when they are up to date.
    force: bool,
    /// Only list the images and their state.
    list: bool,
    /// Names given on the command line; empty means "all images".
    names: Vec<String>,
}

impl ImagesArgs {
    /// Parses the arguments that follow `images`.
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Self> {
        let mut parsed = Self::default();
        for arg in args {
            match arg.as_str() {
                "--force" | "-f" => parsed.force = true,
                "--list" | "-l" => parsed.list = true,
                flag if flag.starts_with('-') => {
                    bail!("unknown option `{flag}` for `images`\n\n{USAGE}")
                }
                _ => parsed.names.push(arg),
            }
        }
        if parsed.force && parsed.list {
            bail!("`--force` and `--list` cannot be combined");
        }
        Ok(parsed)
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Not `{err:?}`: that adds a backtrace when RUST_BACKTRACE is set.
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("\ncaused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Dispatches to the task named by the first argument.
fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(task) = args.next() else {
        println!("{USAGE}");
        return Ok(());
    };
    match task.as_str() {
        "images" => {
            let parsed = ImagesArgs::parse(args)?;
            let paths = images::Paths::new(workspace_root()?);
            if parsed.list {
                images::list(&paths, &parsed.names)
            } else {
                images::build(&paths, &parsed.names, parsed.force)
            }
        }
        "bench-doc" => {
            let check = match args.next().as_deref() {
                None => false,
                Some("--check") => true,
                Some(other) => bail!("unknown option `{other}` for `bench-doc`\n\n{USAGE}"),
            };
            bench_doc::run(&bench_doc::Paths::new(&workspace_root()?), check)
        }
        "layers" => layers::run(&layers::Paths::new(&workspace_root()?)),
        "demo" => {
            let paths = images::Paths::new(workspace_root()?);
            images::build(&paths, &["busybox".to_string()], false)?;
            let status = std::process::Command::new(
                std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            )
            .args([
                "run",
                "--quiet",
                "--package",
                "seaworthy",
                "--example",
                "demo",
            ])
            .current_dir(workspace_root()?)
            .status()
            .context("run the demo example")?;
            if !status.success() {
                bail!("the demo failed ({status})");
            }
            Ok(())
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

/// The workspace root: two levels above this crate's manifest directory.
fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .context("the xtask crate is not in <workspace>/crates/xtask")?;
    Ok(root.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ImagesArgs> {
        ImagesArgs::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags_and_names() {
        let parsed = parse(&["--force", "postgres", "redis"]).unwrap();
        assert!(parsed.force);
        assert!(!parsed.list);
        assert_eq!(parsed.names, ["postgres", "redis"]);
    }

    #[test]
    fn rejects_unknown_flags_and_conflicts() {
        assert!(parse(&["--frobnicate"]).is_err());
        assert!(parse(&["--force", "--list"]).is_err());
    }

    #[test]
    fn finds_the_workspace_root() {
        let root = workspace_root().unwrap();
        assert!(root.join("crates/xtask/Cargo.toml").is_file());
    }
}
