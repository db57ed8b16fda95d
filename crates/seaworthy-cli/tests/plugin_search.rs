//! `seaworthy plugin search REGISTRY [TERM]` against a real registry (Debian's docker-registry on
//! 127.0.0.1): the shipped plugins pushed as OCI artifacts are listed with their versions, WIT
//! version, capabilities and description; a term filters; no match and an unreachable registry
//! are said plainly; a listed plugin installs by its reference and is pinned in seaworthy.lock.

mod common;
#[path = "../../seaworthy-plugin/tests/common/registry.rs"]
mod registry;

use std::path::Path;
use std::process::Output;

use registry::{Registry, TempDir};

/// The `seaworthy` binary in `home`, with an environment of its own there.
fn seaworthy(home: &Path, args: &[&str]) -> Output {
    common::seaworthy_in(home, args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn search_lists_the_plugins_a_registry_holds() {
    let built = seaworthy_plugin::workspace::build(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins"),
        registry::target(),
    )
    .expect("the shipped plugins build");
    let dir_of = |id: &str| {
        built
            .iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("{id} among {built:?}"))
            .dir
            .clone()
    };
    let home = TempDir::new("cli-search");
    let home = home.path();
    let registry = Registry::start(&[]);
    let host = registry.host();
    for (id, tag) in [("memcached", "0.1"), ("memcached", "0.2"), ("redis", "0.1")] {
        let reference = format!("{host}/seaworthy/{id}:{tag}");
        let out = seaworthy(
            home,
            &["plugin", "push", dir_of(id).to_str().unwrap(), &reference],
        );
        assert!(out.status.success(), "{}", text(&out));
    }

    let out = seaworthy(home, &["plugin", "search", &host]);
    let listing = text(&out);
    assert!(out.status.success(), "{listing}");
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.starts_with(&format!("{host}/seaworthy/{name} ")))
            .unwrap_or_else(|| panic!("no {name} line in:\n{listing}"))
            .to_string()
    };
    let memcached = line("memcached");
    assert!(
        memcached.contains("0.1 (0.1.0), 0.2 (0.1.0)"),
        "{memcached}"
    );
    assert!(memcached.contains("0.1.0"), "the WIT version: {memcached}");
    assert!(memcached.contains("tcp port 11211"), "{memcached}");
    let redis = line("redis");
    assert!(
        redis.contains("exec"),
        "the redis plugin works by exec: {redis}"
    );
    assert!(
        listing.lines().next().unwrap().starts_with("PLUGIN"),
        "{listing}"
    );

    // A term keeps the plugins whose reference, id or description holds it.
    let out = seaworthy(home, &["plugin", "search", &host, "REDIS"]);
    let filtered = text(&out);
    assert!(out.status.success(), "{filtered}");
    assert!(
        filtered.contains("/seaworthy/redis") && !filtered.contains("/seaworthy/memcached"),
        "{filtered}"
    );
    let out = seaworthy(home, &["plugin", "search", &host, "no-such-plugin"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).trim(),
        format!("no plugin in {host} matches \"no-such-plugin\"")
    );

    // A listed plugin installs by its reference, pinned in seaworthy.lock.
    let reference = format!("{host}/seaworthy/memcached:0.2");
    let out = seaworthy(home, &["plugin", "install", &reference]);
    assert!(out.status.success(), "{}", text(&out));
    let lock = std::fs::read_to_string(home.join("seaworthy.lock")).unwrap();
    assert!(lock.contains(&reference), "{lock}");

    // A registry that does not answer is named.
    let out = seaworthy(home, &["plugin", "search", "127.0.0.1:9"]);
    assert!(!out.status.success());
    let error = text(&out);
    assert!(
        error.contains("registry 127.0.0.1:9") && error.contains("_catalog"),
        "{error}"
    );
    // A repository is not a registry.
    let out = seaworthy(home, &["plugin", "search", &format!("{host}/seaworthy")]);
    assert!(
        !out.status.success() && text(&out).contains("host[:port]"),
        "{}",
        text(&out)
    );
}
