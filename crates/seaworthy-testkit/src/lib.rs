//! Helpers for Seaworthy's own test suites; not published.

pub mod child;
pub mod resources;

pub use child::{
    param, report, wait_for_parent, with_keep_on_failure_child, ChildRun, ChildTest, PARAM,
};
pub use resources::{created_containers, owned_containers};
