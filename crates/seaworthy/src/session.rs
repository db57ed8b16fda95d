//! Sessions: who owns which Docker resources, and how they are removed whatever happens.
//!
//! A [`Session`] belongs to one test process. It labels everything it creates with
//! [`LABEL_MANAGED`], [`LABEL_SESSION`] (the id shared by all processes of one test run: nextest's
//! `NEXTEST_RUN_ID`, else a hash of the parent process id and start time, so every test binary that
//! `cargo test` runs shares it) and [`LABEL_OWNER`] (this process: pid and start time, so a sweep can
//! tell a dead owner from a live one). Names are prefixed with the session's namespace
//! (`sw-<run>-<process>`), so two runs, or two processes of one run, never collide.
//!
//! Ownership starts with the API call that creates a resource: from then on the session tracks it
//! until it is removed, by its handle ([`Container::remove`](crate::Container::remove) or drop), by
//! [`Session::teardown`], or at process exit (an `atexit` hook, which also runs after a panicking or
//! failing test) or on SIGINT/SIGTERM. Teardown removes containers, then networks, then volumes, then
//! images, each kind in parallel. `SEAWORTHY_KEEP=1` keeps everything for debugging (it is listed at
//! exit instead).
//!
//! All engine calls run on a small runtime owned by the library, so handles work from any async
//! runtime (each `#[tokio::test]` has its own) and can be removed from `Drop`.

mod exit;
pub(crate) mod handle;
mod network;
pub(crate) mod reused;

// `Session` and `ResourceKind` are public at the crate root (`seaworthy::Session`), their one
// path.
pub(crate) use handle::{remove_now, ResourceKind, Session};

pub use crate::identity::{fnv1a, host_name, keep_on_failure, process_alive, process_start_time};

/// Label on every resource Seaworthy creates.
pub const LABEL_MANAGED: &str = "io.seaworthy.managed";
/// Label naming the test run (shared by all processes of the run).
pub const LABEL_SESSION: &str = "io.seaworthy.session";
/// Label naming the owning process as `pid:start-time`, or [`OWNER_RUN`] for resources shared by
/// the whole test run.
pub const LABEL_OWNER: &str = "io.seaworthy.owner";
/// Label naming the process that runs the tests (`cargo`, `cargo-nextest`) as `pid:start-time`:
/// resources shared per run live until it is gone.
pub const LABEL_RUNNER: &str = "io.seaworthy.runner";
/// Label naming the machine whose processes the owner and runner labels refer to.
pub const LABEL_HOST: &str = "io.seaworthy.host";
/// Label marking a container shared per run, with the key of its fixture definition.
pub const LABEL_FIXTURE: &str = "io.seaworthy.fixture";
/// The owner of resources shared by every process of a test run.
pub const OWNER_RUN: &str = "run";
/// The owner of cached baselines, which belong to no process and no run: `seaworthy gc` and the
/// reaper leave them, `seaworthy cache prune` removes them.
pub const OWNER_CACHE: &str = "cache";
/// The owner of containers reused across runs ([`reuse`](crate::reuse)), which belong to no
/// process and no run: the exit path and the reaper leave them, `seaworthy gc` removes idle ones.
pub const OWNER_REUSE: &str = "reuse";
