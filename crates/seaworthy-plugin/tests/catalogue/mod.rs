//! Shared by the catalogue plugins' test binaries (`catalogue_<plugin>.rs`).

#![allow(dead_code)]

pub mod etcd;

use std::collections::BTreeSet;
use std::future::Future;

use seaworthy_plugin::{Grants, PluginHost};

/// A host seeing the built plugins that grants plugin `id` what its manifest declares, with a
/// compile cache of the test binary's own.
pub fn host(id: &str, grants: Grants) -> PluginHost {
    PluginHost::builder()
        .search_dir(crate::common::plugins())
        .cache_dir(crate::common::cache_dir(&format!("catalogue-{id}")))
        .grant(id, grants)
        .build()
        .expect("a plugin host")
}

/// Runs `test(0..8)` as eight tasks at once; each returns its namespace and the address it
/// used. Fails unless all succeed in distinct namespaces.
pub async fn eight_parallel<F, Fut>(test: F) -> Vec<(String, String)>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<(String, String)>> + Send + 'static,
{
    let tasks = (0..8).map(|n| tokio::spawn(test(n)));
    let mut namespaces = Vec::new();
    for task in futures_util::future::join_all(tasks).await {
        namespaces.push(task.expect("the test task").expect("an isolated test"));
    }
    let distinct: BTreeSet<_> = namespaces.iter().map(|(ns, _)| ns).collect();
    assert_eq!(distinct.len(), 8, "{namespaces:?}");
    namespaces
}
