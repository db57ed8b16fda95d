//! Loading plugins: the compile cache, discovery from the environment and the config file, and
//! the `seaworthy plugin` subcommands' reports.

mod common;

use std::time::{Duration, Instant};

use seaworthy_plugin::cli::{self, CheckArgs, InspectArgs, ListArgs};
use seaworthy_plugin::{Grants, LoadOutcome, PluginError, PluginHost};

#[test]
fn a_second_load_comes_from_the_disk_cache_without_recompiling() {
    let cache = common::cache_dir("second-load");
    let _ = std::fs::remove_dir_all(&cache);
    let host = || {
        PluginHost::builder()
            .search_dir(common::plugins())
            .grant("memcached", Grants::new().tcp(11211))
            .cache_dir(&cache)
            .build()
            .unwrap()
    };
    let first = host();
    assert_eq!(
        first.load("memcached").unwrap().load_outcome(),
        LoadOutcome::Compiled
    );
    assert_eq!(
        first.load("memcached").unwrap().load_outcome(),
        LoadOutcome::Memory
    );
    let cached: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(cached.len(), 1, "one compiled component: {cached:?}");
    assert!(cached[0].file_name().to_string_lossy().ends_with(".cwasm"));

    // A new host (as in the next test process) deserializes instead of compiling.
    let started = Instant::now();
    let again = host().load("memcached").unwrap();
    assert_eq!(again.load_outcome(), LoadOutcome::DiskCache);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a cached load took {:?}",
        started.elapsed()
    );
    assert_eq!(again.metadata().unwrap().id, "memcached");

    // A different component gets its own entry.
    let redis = host().load("redis").unwrap_err().to_string();
    assert!(
        redis.contains("plugin `redis` asks for exec, which is not granted"),
        "{redis}"
    );
    let with_exec = PluginHost::builder()
        .search_dir(common::plugins())
        .grant("redis", Grants::new().exec())
        .cache_dir(&cache)
        .build()
        .unwrap();
    assert_eq!(
        with_exec.load("redis").unwrap().load_outcome(),
        LoadOutcome::Compiled
    );
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn unknown_plugins_are_reported_with_the_search_path() {
    let host = PluginHost::builder()
        .search_dir(common::plugins())
        .build()
        .unwrap();
    let error = host.load("postgres").unwrap_err();
    assert!(matches!(error, PluginError::NotFound { .. }));
    let message = error.to_string();
    assert!(
        message.contains("no plugin `postgres` found in") && message.contains("seaworthy-plugins"),
        "{message}"
    );
    let ids: Vec<String> = host
        .discover()
        .into_iter()
        .filter_map(|d| d.manifest.ok())
        .map(|m| m.id)
        .collect();
    for id in ["memcached", "redis", "spin", "future-wit"] {
        assert!(ids.contains(&id.to_string()), "{id} missing from {ids:?}");
    }
    let empty = PluginHost::builder()
        .build()
        .unwrap()
        .load("memcached")
        .unwrap_err()
        .to_string();
    assert!(empty.contains("the search path is empty"), "{empty}");
}

/// Everything that reads the environment, in one test (the environment is per process).
#[test]
fn the_environment_and_the_cli_reports() {
    let plugins = common::plugins();
    let dir = common::scratch("env");
    let config = dir.join("seaworthy.toml");
    std::fs::write(
        &config,
        "[plugins]\ncache = \"cache\"\n\n[plugins.grants.memcached]\ntcp = [11211]\n",
    )
    .unwrap();
    // SAFETY (edition 2021: set_var is safe): no other test of this binary reads these.
    std::env::set_var("SEAWORTHY_PLUGIN_PATH", &plugins);
    std::env::set_var("SEAWORTHY_CONFIG", &config);

    let host = PluginHost::from_environment().unwrap();
    assert_eq!(host.search_path(), std::slice::from_ref(&plugins));
    assert_eq!(host.grants_for("memcached"), Grants::new().tcp(11211));
    // The compile cache holds native code: a project file cannot place it.
    assert_ne!(host.cache_dir(), Some(dir.join("cache").as_path()));
    host.load("memcached").expect("granted by the config file");

    let list = cli::list(&ListArgs::default()).unwrap();
    let text = list.to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("memcached") && l.contains("tcp port 11211")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("redis") && l.contains("exec")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("future-wit") && l.contains("0.2.0 (unsupported)")),
        "{text}"
    );

    let inspect = cli::inspect(&InspectArgs {
        plugin: "memcached".into(),
        dirs: vec![],
    })
    .unwrap();
    assert_eq!(
        inspect.component_wit.as_deref().unwrap(),
        ["0.1.0".to_string()]
    );
    let text = inspect.to_string();
    assert!(
        text.contains("capabilities:  tcp port 11211") && text.contains("all granted"),
        "{text}"
    );
    let future = cli::inspect(&InspectArgs {
        plugin: plugins.join("future-wit").display().to_string(),
        dirs: vec![],
    })
    .unwrap();
    assert!(
        future
            .to_string()
            .contains("unsupported; this host supports 0.1.0"),
        "{future}"
    );

    let check = cli::check(&CheckArgs {
        plugin: "memcached".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(check.metadata.id, "memcached");
    assert!(
        check
            .to_string()
            .starts_with("ok: plugin `memcached` 0.1.0 loads and answers"),
        "{check}"
    );
    let redis = cli::check(&CheckArgs {
        plugin: "redis".into(),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        redis.contains("plugin `redis` asks for exec, which is not granted"),
        "{redis}"
    );
    cli::check(&CheckArgs {
        plugin: "redis".into(),
        grants: vec!["exec".into()],
        ..Default::default()
    })
    .expect("granted on the command line");
    let future = cli::check(&CheckArgs {
        plugin: "future-wit".into(),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        future.contains("targets seaworthy:fixture@0.2.0"),
        "{future}"
    );
    let bad = cli::check(&CheckArgs {
        plugin: "memcached".into(),
        grants: vec!["docker".into()],
        ..Default::default()
    })
    .unwrap_err();
    assert!(bad.to_string().contains("unknown grant"), "{bad}");

    std::env::remove_var("SEAWORTHY_PLUGIN_PATH");
    std::env::remove_var("SEAWORTHY_CONFIG");
    let _ = std::fs::remove_dir_all(&dir);
}
