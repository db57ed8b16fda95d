//! Test plugin `spin`: loops forever. Config `when` = `definition` or `clean` (default) says which call misbehaves.

#[macro_use]
#[path = "../../common.rs"]
mod common;

misbehaving_plugin!("spin", "loops forever");

/// Loops forever.
fn misbehave() -> FixtureError {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}
