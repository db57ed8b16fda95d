//! `seaworthy test --pull` pulls through the library (registry credentials from the Docker
//! config, progress on stderr), and `--quiet` silences that progress too. Against the private
//! registry of `.ci/engines` (Debian's docker-registry with TLS and htpasswd on 10.214.0.1:5443;
//! `bash .ci/engines start` starts it).

mod common;

use std::path::Path;
use std::process::Command;

use common::Dir;

const REGISTRY: &str = "10.214.0.1:5443";
const BUSYBOX: &str = "seaworthy-test/busybox";

const SPEC: &str = r#"schemaVersion: 2.0.0
commandTests:
  - name: echo
    command: echo
    args: [hi]
    expectedOutput: [hi]
"#;

/// Runs the Docker CLI with the Docker config directory `config`; panics with its output when it
/// fails.
fn docker(config: &Path, args: &[&str]) {
    let out = Command::new("docker")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `seaworthy test --pull [extra] --image image spec`, with the Docker config `config`; returns
/// its stderr after checking that the test passed.
fn pull_and_test(config: &Path, image: &str, spec: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_seaworthy"))
        .args(["test", "--pull"])
        .args(extra)
        .args(["--image", image, spec])
        .env("DOCKER_CONFIG", config)
        .env_remove("SEAWORTHY_QUIET")
        .output()
        .expect("run seaworthy");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

#[test]
fn pull_progress_is_shown_and_quiet_silences_it() {
    let dir = Dir::new("quiet-pull");
    // The credentials as `docker login` stores them (a config without a credential store).
    let mut login = Command::new("docker")
        .arg("--config")
        .arg(&dir.0)
        .args(["login", "-u", "seaworthy", "--password-stdin", REGISTRY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run docker login");
    {
        use std::io::Write as _;
        let mut stdin = login.stdin.take().unwrap();
        stdin
            .write_all(seaworthy_testkit::registry_password().as_bytes())
            .unwrap();
    }
    let login = login.wait_with_output().unwrap();
    assert!(
        login.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    let spec = dir.write("spec.yaml", SPEC);
    let image = format!("{REGISTRY}/sw-quiet-{}:t1", std::process::id());
    docker(&dir.0, &["tag", BUSYBOX, &image]);
    docker(&dir.0, &["push", "-q", &image]);
    docker(&dir.0, &["rmi", &image]);

    // Not a terminal: plain lines, from the start of the pull to its end.
    let shown = pull_and_test(&dir.0, &image, &spec, &[]);
    assert!(
        shown.contains(&format!("seaworthy: pulling {image}\n")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("seaworthy: pulled {image} in ")),
        "{shown}"
    );
    docker(&dir.0, &["rmi", &image]);

    let quiet = pull_and_test(&dir.0, &image, &spec, &["--quiet"]);
    assert!(!quiet.contains("seaworthy:"), "--quiet showed: {quiet}");
    docker(&dir.0, &["rmi", &image]);
}
