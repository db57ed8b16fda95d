//! # seaworthy-compare
//!
//! The proof behind Seaworthy's claims that it is fast, never leaks or hangs, and fails clearly.
//! Nothing here is for users' tests; it is the workspace's evidence:
//!
//! * `benches/compare.rs` — suite `compare`: Seaworthy side by side with testcontainers-rs on the
//!   same images and waits, alternating in one run (`cargo bench -p seaworthy-compare --bench
//!   compare`; numbers in the workspace's `BENCHMARKS.md`). `examples/start_breakdown.rs` splits a
//!   start into what the engine spends on it, network by network.
//! * `tests/faults.rs` — containers killed or removed behind the library's back, waits on
//!   containers that exit at once, fixed host ports already taken, full disks.
//! * `tests/engine_restart.rs` — the engine restarted mid-suite: a private `dockerd` of the test's
//!   own ([`private_engine`]), so the machine's engine and the containers of other tests are never
//!   touched. Needs root; it fails (not skips) when it cannot run.
//! * `tests/load.rs` — 32 containers at once; `clean()` cycles per native fixture with memory,
//!   descriptors and connections measured before, half way and after: 100 per fixture in every
//!   run (CI included), 1,000 with `SEAWORTHY_LOAD=1`.
//! * `tests/bad_input.rs` — property tests of the short-form parsers and malformed definitions.
//!
//! Every test checks that it leaves nothing labelled `io.seaworthy.managed` behind: the helpers of
//! [`leaks`] list what a session left. [`stats`] reads the process's own resource use, and
//! [`private_engine`] runs, stops and restarts a private `dockerd`. [`Sleeper`] is the smallest fixture
//! there is, for tests of the fixture machinery itself.

#![warn(missing_docs)]

pub mod leaks;
pub mod private_engine;
mod sleeper;
pub mod stats;

pub use sleeper::{Sleeper, SleeperFixture, BUSYBOX};
