//! Helpers for Seaworthy's own test suites; not published.

pub mod child;

pub use child::{param, report, wait_for_parent, ChildRun, ChildTest, PARAM};
