//! # Seaworthy
//!
//! Test Docker images, and use containers as test fixtures, from Rust tests.
//!
//! Start an image, wait until it is really up, then look inside it:
//!
//! ```no_run
//! use seaworthy::{ContainerDefinition, Exec, Wait};
//!
//! # async fn demo() -> seaworthy::Result<()> {
//! let c = ContainerDefinition::new("seaworthy-test/busybox")
//!     .with_cmd(["sh", "-c", "echo ready; exec sleep 600"])
//!     .with_wait(Wait::log("^ready$"))
//!     .start()
//!     .await?;
//! let out = c.exec(Exec::new(["cat", "/etc/passwd"])).await?;
//! assert!(out.stdout_text().contains("root"));
//! assert!(c.file_exists("/bin/sh").await?);
//! let tree = c.process_tree().await?;
//! assert!(tree.process.args.starts_with("sleep"));
//! # Ok(()) }
//! ```
//!
//! Everything Seaworthy creates is labelled `io.seaworthy.managed=true` and owned by a
//! [`Session`], which removes it when its handle drops, at process exit (also after a panic or a
//! failed test) and on SIGINT/SIGTERM. See the [`session`] module for the model.

#![warn(missing_docs)]

#[doc(hidden)]
#[path = "test_support.rs"]
pub mod __private;
pub mod baseline_cache;
mod build;
mod compose;
mod container;
mod definition;
pub mod engine;
mod error;
mod exec;
mod files;
mod fixture;
pub mod gc;
mod generic;
mod http;
mod identity;
mod image;
pub mod kit;
mod logs;
mod network;
mod process;
mod reaper;
mod reference;
pub mod reuse;
pub mod runtime;
pub mod session;
mod shared;
mod snapshot;
mod spec;
mod stack;
mod stack_fixture;
pub mod standby;
mod state;
pub mod substitution;
pub mod wait;

pub use build::{BuiltImage, ImageBuild, LABEL_BUILD_HASH};
pub use container::Container;
pub use definition::{ContainerDefinition, Healthcheck, Resources};
pub use engine::client::Engine;
pub use error::{Error, Result};
pub use exec::{Exec, ExecOutput};
pub use files::{FileKind, FileMetadata};
pub use fixture::{
    ConnectionInfo, ContainerFixtureDefinition, Fixture, FixtureDefinition, FixtureError, Isolation,
};
pub use generic::{GenericFixture, SetupError, SnapshotFixture};
pub use http::HttpClient;
pub use image::PullPolicy;
pub use logs::{LogLine, LogOptions, LogStream, Logs};
pub use network::{Network, NetworkDefinition, Volume, VolumeDefinition};
pub use process::{Process, ProcessTree};
pub use reference::ImageRef;
pub use session::handle::{ResourceKind, Session};
pub use shared::{ExclusiveGuard, Isolated, Scope, Shared, SharedGuard};
pub use snapshot::{Consistency, Snapshot, SnapshotOptions, VolumeData};
pub use spec::{parse_env, MountSource, MountSpec, PortSpec, Protocol};
pub use stack::{
    DependsOn, Stack, StackDefinition, StackMember, DEFAULT_NETWORK, LABEL_STACK,
    LABEL_STACK_MEMBER, ORIGIN_SUFFIX,
};
pub use stack_fixture::{RunningStack, StackFixture};
pub use wait::log::LogPattern;
pub use wait::tree::Wait;

/// An async test, run on a Tokio runtime of its own and given what it asks for by parameter:
///
/// * `name: &F` (any fixture type): the fixture `static NAME: Shared<…>` (the parameter's name
///   in capitals) for this test alone, at its baseline ([`Shared::fresh`]);
/// * `name: &Isolated<F>`: a namespace of its own in `static NAME: Shared<…>`
///   ([`Shared::isolated`]), the fixture held meanwhile;
/// * `name: &Container`: a container started from `fn name() -> ContainerDefinition`, removed
///   after the test.
///
/// The static or function is looked up among the items of the test's module (declared there or
/// brought in by `use`, `use super::*` included). Items declared inside a function body are not
/// seen: a doctest that declares them needs a `fn main() {}` of its own, or rustdoc wraps the
/// whole example in one.
///
/// ```no_run
/// use seaworthy::{Container, ContainerDefinition, GenericFixture, Shared, SnapshotFixture, Wait};
///
/// fn files() -> SnapshotFixture {
///     SnapshotFixture::new(
///         ContainerDefinition::new("seaworthy-test/busybox")
///             .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
///             .with_wait(Wait::log("ready")),
///     )
/// }
/// static FILES: Shared<SnapshotFixture> = Shared::per_process(files);
///
/// fn web() -> ContainerDefinition {
///     ContainerDefinition::new("seaworthy-test/nginx").with_port(80).with_wait(Wait::http(80, "/"))
/// }
///
/// #[seaworthy::test]
/// async fn writes_a_file(files: &GenericFixture) -> anyhow::Result<()> {
///     use seaworthy::Fixture;
///     files.container().write_file("/tmp/x", "x", 0o644).await?; // gone for the next test
///     Ok(())
/// }
///
/// #[seaworthy::test(flavor = "multi_thread", worker_threads = 2)]
/// async fn serves(web: &Container) -> anyhow::Result<()> {
///     assert_eq!(web.http(80)?.get("/").send().await?.status(), 200);
///     Ok(())
/// }
/// # fn main() {} // the statics above are module items, as in a test file
/// ```
///
/// The test returns `()` or `Result<(), E>` with `E: Debug`. When it fails (a panic or an
/// error), its output names each fixture it used, the container behind it and the container's
/// last log lines, and the fixture counts as changed (with `SEAWORTHY_KEEP_ON_FAILURE=1` it is
/// kept as it was left, and later tests get a new one).
///
/// Without an engine the test fails with the engine's error; with
/// `SEAWORTHY_SKIP_WITHOUT_ENGINE=1` it is skipped instead, unless `CI` is set (then the variable
/// is ignored and the test fails). **libtest lists a skipped test as passed** (`test name ... ok`,
/// counted in `passed`, not in `ignored`): stable libtest gives a running test no way to report
/// itself ignored (`#[ignore]` is decided before the test runs; skipping at run time exists only
/// in custom harnesses such as libtest-mimic, with `harness = false`). So Seaworthy says it
/// itself, on stderr and never captured: `seaworthy: SKIPPED <test>: no Docker engine (<why>)`
/// right before libtest's `ok`, and when the test binary exits
/// `seaworthy: <n> tests SKIPPED, not run, because no Docker engine could be reached (…): <names>`.
/// Count a run's passes with that line in mind.
///
/// Misuse (a parameter it cannot provide, a parameter whose name matches no `static` or function
/// in scope, a non-async function, a result type it cannot judge, a `static` that is not a
/// [`Shared`]) is a compile error that names the parameter and says what to write.
pub use seaworthy_macros::test;

/// Re-exported so tests can name bollard's types without a separate dependency.
pub use bollard;
/// Re-exported so tests can build requests without a separate dependency.
pub use reqwest;
