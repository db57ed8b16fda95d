//! Nothing to build: the crate is its tests (`tests/loop20.rs`), run by the `reuse` bench.
