//! Test plugin `trap`: panics, which traps. Config `when` = `definition` or `clean` (default) says which call misbehaves.

#[macro_use]
#[path = "../../common.rs"]
mod common;

misbehaving_plugin!("trap", "panics, which traps");

/// Panics, which traps.
fn misbehave() -> FixtureError {
    panic!("the trap plugin panicked on purpose")
}
