//! Helpers for Seaworthy's own test suites; not published.

pub mod cache;
pub mod child;
pub mod ci;
pub mod postgres;
pub mod resources;
pub mod threads;

pub use cache::{assert_cache_labels, image_of, remove_on_drop, CacheNamespace};
pub use child::{
    assert_kept_or_released, child_command, drop_in_a_failing_test, ids_in, param, read_ids,
    report, run_ignored_tests, wait_for_parent, with_keep_on_failure_child, ChildRun, ChildTest,
    PARAM,
};
pub use ci::{endpoint_missing, registry_password};
pub use resources::{
    assert_invalid, assert_label_and_env, created_containers, fixture_source, owned_containers,
    test_label,
};
pub use threads::run_on_threads;
