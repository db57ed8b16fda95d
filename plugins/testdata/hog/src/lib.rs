//! Test plugin `hog`: allocates memory without bound. Config `when` = `definition` or `clean` (default) says which call misbehaves.

#[macro_use]
#[path = "../../common.rs"]
mod common;

misbehaving_plugin!("hog", "allocates memory without bound");

/// Allocates memory without bound.
fn misbehave() -> FixtureError {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the memory is really used.
        kept.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
}
