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
mod image;
mod logs;
mod network;
mod process;
mod reference;
pub mod session;
mod shared;
mod snapshot;
mod spec;
mod stack;
mod stack_fixture;
pub mod standby;
pub mod substitution;
pub mod wait;

/// Seaworthy's own runtime, which carries every engine call; fixtures run their clients' tasks on it.
pub mod runtime {
    pub use crate::session::{run, spawn};
}

pub use build::{BuiltImage, ImageBuild, LABEL_BUILD_HASH};
pub use container::Container;
pub use definition::{ContainerDefinition, Healthcheck, PullPolicy, Resources};
pub use engine::Engine;
pub use error::{Error, Result};
pub use exec::{Exec, ExecOutput};
pub use files::{FileKind, FileMetadata};
pub use fixture::{ConnectionInfo, Fixture, FixtureDefinition, Isolation};
pub use generic::{GenericFixture, SnapshotFixture};
pub use http::HttpClient;
pub use logs::{LogLine, LogOptions, LogStream, Logs};
pub use network::{Network, NetworkDefinition, Volume, VolumeDefinition};
pub use process::{Process, ProcessTree};
pub use reference::ImageRef;
pub use session::{ResourceKind, Session};
pub use shared::{ExclusiveGuard, Isolated, Scope, Shared, SharedGuard};
pub use snapshot::{Consistency, Snapshot, SnapshotOptions, VolumeData};
pub use spec::{parse_env, MountSource, MountSpec, PortSpec, Protocol};
pub use stack::{
    DependsOn, Stack, StackDefinition, StackMember, DEFAULT_NETWORK, LABEL_STACK,
    LABEL_STACK_MEMBER, ORIGIN_SUFFIX,
};
pub use stack_fixture::{RunningStack, StackFixture};
pub use wait::{LogPattern, Wait};

pub use seaworthy_macros::test;

/// Re-exported so tests can name bollard's types without a separate dependency.
pub use bollard;
/// Re-exported so tests can build requests without a separate dependency.
pub use reqwest;
