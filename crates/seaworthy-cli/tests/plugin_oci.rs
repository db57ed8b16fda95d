//! `seaworthy plugin new|push|install|check` end to end: a new plugin crate (its own unit tests
//! pass, it builds for wasm32-wasip2), pushed to a real registry on 127.0.0.1 with htpasswd auth
//! (credentials from a Docker credential helper and from the environment; wrong ones named),
//! installed and pinned, then checked by reference.

mod common;
#[path = "../../seaworthy-plugin/tests/common/registry.rs"]
mod registry;

use std::path::Path;
use std::process::{Command, Output};

use registry::{Registry, TempDir};

// The `seaworthy` binary with an environment of its own under `home`: no Docker config, a
// private store, compile cache and lockfile.
use common::seaworthy_in as seaworthy;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn new_push_install_and_check_a_plugin_through_an_authenticated_registry() {
    let home = TempDir::new("cli-oci");
    let home = home.path();
    let crate_dir = home.join("clikv");

    // `plugin new`: a crate whose own tests pass on the host.
    let out = seaworthy(
        home,
        &[
            "plugin",
            "new",
            "clikv",
            "--dir",
            crate_dir.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("created plugin `clikv`"), "{stdout}");
    for file in [
        "Cargo.toml",
        "seaworthy-plugin.toml",
        "src/lib.rs",
        "wit/fixture.wit",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file} missing");
    }
    let plugin_lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/Cargo.lock");
    std::fs::copy(plugin_lock, crate_dir.join("Cargo.lock")).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tests = Command::new(&cargo)
        .arg("test")
        .arg("--target-dir")
        .arg(registry::target().join("scaffold-host"))
        .current_dir(&crate_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&tests);
    assert!(
        tests.status.success(),
        "the scaffold's own tests: {stdout}{stderr}"
    );
    assert!(stdout.contains("test result: ok. 2 passed"), "{stdout}");

    // Built for wasm32-wasip2.
    let built = registry::build_plugin_crate(&crate_dir);
    let wasm = built.join("plugin.wasm");

    let registry = Registry::start(&[("ci", "letmein")]);
    let reference = format!("{}/tools/clikv:0.1.0", registry.host());

    // Wrong credentials from the environment: refused, naming the registry and the 401.
    let out = seaworthy(
        home,
        &[
            "plugin",
            "push",
            crate_dir.to_str().unwrap(),
            &reference,
            "--wasm",
            wasm.to_str().unwrap(),
        ],
    )
    .env("SEAWORTHY_REGISTRY_USERNAME", "ci")
    .env("SEAWORTHY_REGISTRY_PASSWORD", "wrong")
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "registry {}: authentication failed (HTTP 401)",
            registry.host()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("SEAWORTHY_REGISTRY_USERNAME"), "{stderr}");

    // The right ones, from a Docker credential helper named in the Docker config's credHelpers
    // (run as `docker-credential-<name> get`, the server on stdin).
    let helpers = home.join("bin");
    std::fs::create_dir_all(&helpers).unwrap();
    let helper = helpers.join("docker-credential-seaworthy-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\nif [ \"$server\" = \"{host}\" ]; then\n  echo '{{\"ServerURL\":\"{host}\",\"Username\":\"ci\",\"Secret\":\"letmein\"}}'\nelse\n  echo 'credentials not found in native keychain' >&2; exit 1\nfi\n",
            host = registry.host()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(home.join("docker")).unwrap();
    std::fs::write(
        home.join("docker/config.json"),
        format!(
            r#"{{"credHelpers": {{"{}": "seaworthy-test"}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let path = std::env::join_paths(
        std::iter::once(helpers.clone()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .unwrap();
    let out = seaworthy(
        home,
        &[
            "plugin",
            "push",
            crate_dir.to_str().unwrap(),
            &reference,
            "--wasm",
            wasm.to_str().unwrap(),
        ],
    )
    .env("PATH", &path)
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("pushed {reference} (clikv 0.1.0)")),
        "{stdout}"
    );
    let manifest_digest = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("manifest"))
        .map(|d| d.trim().to_string())
        .expect("the manifest digest is printed");

    // Install on a clean store, with credentials from the environment: pinned in the lockfile.
    std::fs::remove_dir_all(home.join("docker")).unwrap();
    std::fs::remove_dir_all(home.join("oci")).unwrap();
    let out = seaworthy(home, &["plugin", "install", &reference])
        .env("SEAWORTHY_REGISTRY_USERNAME", "ci")
        .env("SEAWORTHY_REGISTRY_PASSWORD", "letmein")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("from the registry, pinned in"), "{stdout}");
    let lock = std::fs::read_to_string(home.join("seaworthy.lock")).unwrap();
    assert!(
        lock.contains(&format!("reference = \"{reference}\"")),
        "{lock}"
    );
    assert!(lock.contains(&manifest_digest), "{lock}");

    // Checked by reference, from the store, with the registry gone.
    drop(registry);
    let out = seaworthy(
        home,
        &["plugin", "check", &reference, "--grant", "tcp:11211"],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("clikv"), "{stdout}");
    let out = seaworthy(home, &["plugin", "install", &reference])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("from the local store, as pinned in"),
        "{stdout}"
    );
}

#[test]
fn new_refuses_a_name_that_cannot_be_a_plugin_id() {
    let home = TempDir::new("cli-oci-name");
    let out = seaworthy(home.path(), &["plugin", "new", "Not/Valid"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("cannot be a plugin id"), "{stderr}");
}
