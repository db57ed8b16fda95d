//! Acceptance tests of `seaworthy test`: the built binary over the spec suite in `tests/specs/`,
//! asserting the exact outcome of every test in the JSON report, the other output formats, the
//! number of containers, spec errors, and that no container is left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::errors_of_result as errors_in;

use seaworthy::session::LABEL_OWNER;
use seaworthy::ImageBuild;
use serde_json::Value;
use tokio::sync::OnceCell;

const NGINX: &str = "seaworthy-test/nginx";
const SCRATCH: &str = "seaworthy-test/scratch";

/// The workspace root: spec paths in reports are relative to it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fixture image, built once per test process from `tests/specs/fixture/` (and removed with
/// this process's session).
async fn fixture() -> &'static str {
    static IMAGE: OnceCell<String> = OnceCell::const_new();
    IMAGE
        .get_or_init(|| async {
            ImageBuild::new(root().join("tests/specs/fixture"))
                .with_network_mode("none")
                .build()
                .await
                .expect("build the fixture image")
                .reference()
                .to_string()
        })
        .await
}

/// Runs the binary from the workspace root; returns its output and its pid.
fn seaworthy(args: &[&str], env: &[(&str, &str)]) -> (Output, u32) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seaworthy"));
    cmd.current_dir(root()).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run seaworthy");
    let pid = child.id();
    (child.wait_with_output().expect("wait for seaworthy"), pid)
}

/// `seaworthy test --output json`: exit code, report, and a check that nothing was left behind.
async fn run_json(
    image: &str,
    specs: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> (i32, Value) {
    let mut args = vec!["test", "--image", image, "--output", "json"];
    args.extend(extra);
    args.extend(specs);
    let (out, pid) = seaworthy(&args, env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let left = leftovers(pid).await;
    assert!(left.is_empty(), "containers left behind: {left:?}");
    (out.status.code().unwrap_or(-1), report)
}

/// Containers (running or not) created by the seaworthy process `pid`.
async fn leftovers(pid: u32) -> Vec<String> {
    let session = seaworthy::Session::global().await.unwrap();
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec!["io.seaworthy.structure=true".to_string()],
    )]);
    let list = session
        .engine()
        .docker()
        .list_containers(Some(
            seaworthy::bollard::query_parameters::ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    list.into_iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .and_then(|l| l.get(LABEL_OWNER))
                .is_some_and(|owner| owner.starts_with(&format!("{pid}:")))
        })
        .map(|c| c.names.unwrap_or_default().join(","))
        .collect()
}

/// `(kind, name, status)` of every result, in report order.
fn outcomes(report: &Value) -> Vec<(String, String, String)> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn expected(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(k, n, s)| (k.to_string(), n.to_string(), s.to_string()))
        .collect()
}

/// Rows of tests whose name starts with their expected status (`pass: ...`, `fail: ...`).
fn named(kind: &str, names: &[&str]) -> Vec<(String, String, String)> {
    names
        .iter()
        .map(|n| {
            let status = n.split(':').next().unwrap();
            (kind.to_string(), n.to_string(), status.to_string())
        })
        .collect()
}

fn assert_outcomes(report: &Value, want: Vec<(String, String, String)>) {
    let got = outcomes(report);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "result {i} differs; all results: {got:#?}");
    }
    assert_eq!(got.len(), want.len(), "number of results; got {got:#?}");
}

fn fixture_metadata_outcomes() -> Vec<(String, String, String)> {
    expected(&[
        ("metadata", "env var APP_MODE", "pass"),
        ("metadata", "env var APP_HOME", "pass"),
        ("metadata", "env var APP_MODE", "fail"),
        ("metadata", "env var MISSING_VAR", "fail"),
        ("metadata", "env var APP_HOME", "fail"),
        ("metadata", "env var APP_HOME", "fail"),
        ("metadata", "unbound env var DEBUG", "pass"),
        ("metadata", "unbound env var APP_MODE", "fail"),
        ("metadata", "label org.opencontainers.image.vendor", "pass"),
        ("metadata", "label org.example.build-date", "pass"),
        ("metadata", "label org.example.build-date", "fail"),
        ("metadata", "exposed port 8080", "pass"),
        ("metadata", "exposed port 9090/udp", "pass"),
        ("metadata", "exposed port 9090", "pass"),
        ("metadata", "unexposed port 22", "pass"),
        ("metadata", "unexposed port 8080", "fail"),
        ("metadata", "entrypoint", "pass"),
        ("metadata", "cmd", "pass"),
        ("metadata", "workdir", "pass"),
        ("metadata", "user", "pass"),
        ("metadata", "volume /app/data", "pass"),
        ("metadata", "volume /var/lib/missing", "fail"),
        ("metadata", "unmounted volume /tmp", "pass"),
        ("metadata", "unmounted volume /app/data", "fail"),
    ])
}

const FIXTURE_FILES: &[&str] = &[
    "pass: app binary",
    "pass: secret is private",
    "fail: secret executable by others",
    "pass: data owned by app",
    "fail: data owned by root",
    "pass: no sshd",
    "fail: passwd should not exist",
    "fail: missing file",
    "pass: setuid helper, ls style",
    "pass: setuid helper, Go style",
    "fail: helper executable by others",
    "pass: symlink, Go style",
    "fail: conf permissions",
    "pass: conf group",
    "fail: conf executable by owner",
];

const FIXTURE_CONTENTS: &[&str] = &[
    "pass: conf contents",
    "pass: symlink is followed",
    "fail: expected contents missing",
    "fail: excluded contents present",
    "fail: no such file",
];

const FIXTURE_COMMANDS: &[&str] = &[
    "pass: app prints its mode",
    "pass: exit code and stderr",
    "fail: unexpected exit code",
    "fail: expected output missing",
    "fail: excluded output present",
    "fail: expected error missing",
    "fail: excluded error present",
    "pass: test and global env vars",
    "fail: test env var has another value",
    "fail: global env var has another value",
    "pass: global PATH is expanded",
    "pass: image user and workdir",
    "pass: setup and teardown share the test's container",
    "pass: setup does not leak into other tests",
    "fail: setup step fails",
    "fail: teardown step fails",
    "fail: no such command",
];

fn fixture_outcomes() -> Vec<(String, String, String)> {
    let mut want = fixture_metadata_outcomes();
    want.extend(named("fileExistence", FIXTURE_FILES));
    want.extend(named("fileContent", FIXTURE_CONTENTS));
    want.extend(named("command", FIXTURE_COMMANDS));
    want.extend(expected(&[
        ("metadata", "entrypoint", "fail"),
        ("metadata", "cmd", "fail"),
        ("metadata", "workdir", "fail"),
        ("metadata", "user", "fail"),
        // `/usr/share/doc` is a directory, not a license file: the test fails, as in CST.
        ("license", "license test 1", "fail"),
    ]));
    want
}

fn result<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result named {name:?}"))
}

fn errors_of(report: &Value, name: &str) -> String {
    errors_in(result(report, name))
}

/// The errors of every result named `name`, in report order.
fn errors_of_all(report: &Value, name: &str) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == name)
        .map(errors_in)
        .collect()
}

/// `(stdout, stderr)` of the command test `name`.
fn output_of<'a>(report: &'a Value, name: &str) -> (&'a str, &'a str) {
    let r = result(report, name);
    (
        r["stdout"].as_str().expect("stdout"),
        r["stderr"].as_str().expect("stderr"),
    )
}

#[tokio::test]
async fn every_field_of_the_schema_passes_and_fails_as_expected() {
    let image = fixture().await;
    let (code, report) = run_json(
        image,
        &[
            "tests/specs/fixture.yaml",
            "tests/specs/fixture-mismatch.yaml",
        ],
        &[],
        &[],
    )
    .await;
    assert_eq!(code, 1, "failures exit with 1");
    assert_outcomes(&report, fixture_outcomes());
    assert_eq!(report["passed"], false);
    let summary = &report["summary"];
    assert_eq!(summary["total"], 66);
    assert_eq!(summary["failed"], 34);
    assert_eq!(summary["skipped"], 0);
    // One shared container for the 14 plain command tests, one each for the 3 with setup or
    // teardown; one created container for all 20 file tests; metadata needs none.
    assert_eq!(summary["containers_started"], 4, "{summary}");
    assert_eq!(summary["containers_created"], 1, "{summary}");

    // What a user reads to fix a failure.
    let ok = result(&report, "pass: app prints its mode");
    assert_eq!(ok["stdout"], "app (production): hello\n");
    assert_eq!(ok["stderr"], "");
    assert_eq!(
        errors_of(&report, "fail: unexpected exit code"),
        "expected exit code 0, got 3"
    );
    assert_eq!(
        errors_of(&report, "fail: setup step fails"),
        "setup step `sh -c echo setup broke >&2; exit 2` exited with 2: setup broke"
    );
    assert_eq!(
        errors_of(&report, "fail: conf permissions"),
        "/etc/app/app.conf has permissions -rw-r-----, expected -rw-r--r--"
    );
    assert_eq!(
        errors_of(&report, "fail: data owned by root"),
        "/app/data is owned by uid 1000, expected 0\n/app/data belongs to gid 1000, expected 0"
    );
    assert_eq!(
        result(&report, "fail: missing file")["file"],
        "tests/specs/fixture.yaml"
    );
    // isRegex: a match, a regex that does not match, and the same regex compared as text.
    assert_eq!(
        errors_of_all(&report, "env var APP_HOME"),
        [
            "",
            "environment variable APP_HOME is \"/app\", which does not match /^/opt/",
            "environment variable APP_HOME is \"/app\", expected \"^/ap+$\"",
        ]
    );
    // The test's and the global variables are set; their values are not the expected ones.
    assert_eq!(
        output_of(&report, "fail: test env var has another value"),
        ("TEST_VAR=actual\n", "")
    );
    assert_eq!(
        errors_of(&report, "fail: global env var has another value"),
        "stdout does not match /^bonjour\\n$/"
    );
    assert_eq!(
        output_of(&report, "fail: global env var has another value"),
        ("hello\n", "")
    );
}

#[tokio::test]
async fn isolate_runs_every_test_in_a_container_of_its_own_with_the_same_outcomes() {
    let image = fixture().await;
    let (code, report) = run_json(
        image,
        &[
            "tests/specs/fixture.yaml",
            "tests/specs/fixture-mismatch.yaml",
        ],
        &["--isolate"],
        &[],
    )
    .await;
    assert_eq!(code, 1);
    assert_outcomes(&report, fixture_outcomes());
    let summary = &report["summary"];
    assert_eq!(summary["isolate"], true);
    assert_eq!(summary["containers_started"], 17, "{summary}");
    // A created container for each of the 20 file tests and the license test.
    assert_eq!(summary["containers_created"], 21, "{summary}");
}

const RUN_OPTIONS_FILES: &[&str] = &[
    "pass: bind mount seen by file tests",
    "fail: bind mount file that does not exist",
];

const RUN_OPTIONS_CONTENTS: &[&str] = &[
    "pass: bind mount contents",
    "fail: bind mount contents differ",
];

const RUN_OPTIONS_COMMANDS: &[&str] = &[
    "pass: runs as the given user",
    "fail: not the image's user",
    "pass: env file",
    "fail: env file value differs",
    "pass: host variables pass through",
    "fail: an unset host variable is not passed",
    "pass: bind mount",
    "fail: bind mount has no such file",
    "pass: bind mount is read-only",
    "pass: NET_ADMIN is granted",
    "fail: NET_ADMIN is missing",
    "fail: not privileged, no SYS_ADMIN",
    "fail: without allocateTty stderr is not in stdout",
];

const PRIVILEGED_COMMANDS: &[&str] = &[
    "pass: privileged has SYS_ADMIN in its bounding set",
    "pass: still the image's user",
    "pass: allocateTty puts stderr in stdout",
    "fail: with allocateTty stderr is empty",
    "pass: stdout is a terminal",
];

/// The output of the same command (`echo to-stderr >&2`) with a terminal and without one.
fn assert_tty_merges_stderr(report: &Value) {
    assert_eq!(
        output_of(report, "pass: allocateTty puts stderr in stdout"),
        ("to-stderr\r\n", "")
    );
    assert_eq!(
        errors_of(report, "fail: with allocateTty stderr is empty"),
        "stderr does not match /to-stderr/"
    );
}

#[tokio::test]
async fn container_run_options() {
    let image = fixture().await;
    let (code, report) = run_json(
        image,
        &[
            "tests/specs/run-options.yaml",
            "tests/specs/privileged.yaml",
        ],
        &[],
        &[("SEAWORTHY_SPEC_PASSTHROUGH", "from-the-host")],
    )
    .await;
    assert_eq!(code, 1);
    let mut want = named("fileExistence", RUN_OPTIONS_FILES);
    want.extend(named("fileContent", RUN_OPTIONS_CONTENTS));
    want.extend(named("command", RUN_OPTIONS_COMMANDS));
    want.extend(named("command", PRIVILEGED_COMMANDS));
    assert_outcomes(&report, want);
    // Different run options, different shared containers.
    assert_eq!(report["summary"]["containers_started"], 2);
    assert_eq!(report["summary"]["containers_created"], 1);

    // Each option took effect; the failing cases expect something else.
    assert_eq!(
        output_of(&report, "fail: not the image's user"),
        ("root\n", "")
    );
    assert_eq!(
        output_of(&report, "fail: env file value differs"),
        ("FROM_ENV_FILE=env-file-value\n", "")
    );
    assert_eq!(
        errors_of(&report, "fail: an unset host variable is not passed"),
        "expected exit code 0, got 1"
    );
    assert_eq!(
        errors_of(&report, "fail: bind mount file that does not exist"),
        "/mnt/bind/missing.txt does not exist"
    );
    // Without a terminal, stderr stays apart; with one, it is in stdout.
    assert_eq!(
        output_of(&report, "fail: without allocateTty stderr is not in stdout"),
        ("", "to-stderr\n")
    );
    assert_tty_merges_stderr(&report);
}

#[tokio::test]
async fn allocate_tty_under_isolate_gives_the_same_outcomes() {
    let image = fixture().await;
    let (code, report) =
        run_json(image, &["tests/specs/privileged.yaml"], &["--isolate"], &[]).await;
    assert_eq!(code, 1);
    assert_outcomes(&report, named("command", PRIVILEGED_COMMANDS));
    assert_tty_merges_stderr(&report);
    // A container per test.
    assert_eq!(report["summary"]["containers_started"], 5);
}

#[tokio::test]
async fn daemon_tests_check_a_running_server() {
    let (code, report) = run_json(NGINX, &["tests/specs/daemon.yaml"], &[], &[]).await;
    assert_eq!(code, 1);
    let want = expected(&[
        ("daemon", "nginx: ready", "pass"),
        ("daemon", "nginx: log /start worker processes/", "pass"),
        ("daemon", "nginx: log /this line is never logged/", "fail"),
        ("daemon", "nginx: pass: index page", "pass"),
        ("daemon", "nginx: pass: health", "pass"),
        ("daemon", "nginx: pass: missing page is a 404", "pass"),
        ("daemon", "nginx: pass: HEAD", "pass"),
        ("daemon", "nginx: fail: wrong status", "fail"),
        ("daemon", "nginx: fail: wrong body and header", "fail"),
        ("daemon", "nginx: pass: master runs as root", "pass"),
        ("daemon", "nginx: pass: a worker runs as www-data", "pass"),
        ("daemon", "nginx: pass: no apache", "pass"),
        ("daemon", "nginx: fail: two workers", "fail"),
        ("daemon", "nginx: pass: configuration is valid", "pass"),
        ("daemon", "nginx: fail: wrong version", "fail"),
        ("daemon", "nginx: no log /\\[emerg\\]/", "pass"),
        ("daemon", "nginx: no log /start worker processes/", "fail"),
        ("daemon", "never ready: ready", "fail"),
        ("daemon", "never ready: GET /", "fail"),
        ("daemon", "never ready: no log /panic/", "fail"),
        ("daemon", "exits early: ready", "fail"),
    ]);
    assert_outcomes(&report, want);
    assert_eq!(report["summary"]["containers_started"], 3);
    let log = errors_of(&report, "nginx: log /this line is never logged/");
    assert!(log.contains("did not hold within"), "{log}");
    assert!(
        log.contains("start worker processes"),
        "the error shows the log: {log}"
    );
    let never = errors_of(&report, "never ready: ready");
    assert!(
        never.contains("/^ready$/") && never.contains("booting"),
        "{never}"
    );
    assert_eq!(
        errors_of(&report, "never ready: GET /"),
        "not run: the daemon did not become ready"
    );
    let exited = errors_of(&report, "exits early: ready");
    // The wait fails as soon as the container exits, with its last log lines.
    assert!(
        exited.contains("did not hold") && exited.contains("crashing"),
        "{exited}"
    );
    let wrong = errors_of(&report, "nginx: fail: wrong body and header");
    assert!(
        wrong.contains("the body does not match /^healthy$/")
            && wrong.contains("no x-missing header"),
        "{wrong}"
    );
}

#[tokio::test]
async fn daemon_waits_for_health_log_counts_and_running_time() {
    let image = fixture().await;
    let (code, report) = run_json(image, &["tests/specs/fixture-daemon.yaml"], &[], &[]).await;
    assert_eq!(code, 1);
    let want = expected(&[
        ("daemon", "app server: ready", "pass"),
        ("daemon", "app server: log /^mode=serving hello$/", "pass"),
        ("daemon", "app server: log /^tick$/", "pass"),
        ("daemon", "app server: log /^tick$/", "fail"),
        (
            "daemon",
            "app server: pass: serves the app directory",
            "pass",
        ),
        (
            "daemon",
            "app server: pass: httpd runs as the image's user",
            "pass",
        ),
        (
            "daemon",
            "app server: pass: users can be given by uid",
            "pass",
        ),
    ]);
    assert_outcomes(&report, want);
    // Healthy needs the healthcheck to have run (interval 1 s) and the running time on top.
    let ready = result(&report, "app server: ready");
    assert!(ready["duration_ms"].as_f64().unwrap() >= 500.0, "{ready}");
}

#[tokio::test]
async fn an_image_without_shell_or_sleep() {
    let (code, report) = run_json(
        SCRATCH,
        &["tests/specs/scratch.yaml"],
        &["--command-timeout", "20s"],
        &[],
    )
    .await;
    assert_eq!(code, 1);
    let mut want = expected(&[("metadata", "entrypoint", "pass")]);
    want.extend(named(
        "fileExistence",
        &[
            "pass: pause is executable",
            "pass: a symbolic link",
            "pass: no shell",
        ],
    ));
    want.extend(named("fileContent", &["pass: config"]));
    want.extend(named(
        "command",
        &[
            "fail: a missing program is named",
            "fail: setup needs sleep",
        ],
    ));
    assert_outcomes(&report, want);
    let why = errors_of(&report, "fail: a missing program is named");
    assert!(
        why.starts_with("`/no-such-program` does not exist in the image"),
        "{why}"
    );
    let why = errors_of(&report, "fail: setup needs sleep");
    assert!(
        why.contains("kept alive by `sleep`, which the image lacks"),
        "{why}"
    );

    // A terminal needs an exec, so `sleep` too: shared or isolated, the test says so.
    let dir = std::env::temp_dir().join(format!("seaworthy-cli-tty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("scratch-tty.yaml");
    std::fs::write(
        &spec,
        "schemaVersion: 2.0.0\ncontainerRunOptions:\n  allocateTty: true\ncommandTests:\n  - name: \"fail: a terminal needs sleep\"\n    command: /pause\n",
    )
    .unwrap();
    for extra in [&[][..], &["--isolate"][..]] {
        let (code, report) = run_json(SCRATCH, &[spec.to_str().unwrap()], extra, &[]).await;
        assert_eq!(code, 1, "{extra:?}");
        assert_outcomes(&report, named("command", &["fail: a terminal needs sleep"]));
        let why = errors_of(&report, "fail: a terminal needs sleep");
        assert!(
            why.contains(
                "a command with allocateTty runs in a container kept alive by `sleep`, which the image lacks"
            ),
            "{extra:?}: {why}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn junit_and_text_reports() {
    let image = fixture().await;
    let (out, _) = seaworthy(
        &[
            "test",
            "--image",
            image,
            "--output",
            "junit",
            "tests/specs/fixture-mismatch.yaml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuites name="seaworthy" tests="5" failures="5" skipped="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuite name="tests/specs/fixture-mismatch.yaml" tests="5" failures="5" skipped="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<failure message="user is &quot;app&quot;, expected &quot;root&quot;">"#),
        "{xml}"
    );
    // Progress goes to stderr so the XML stays parseable.
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("FAIL  [metadata] user"), "{progress}");

    let (out, _) = seaworthy(
        &[
            "test",
            "--image",
            image,
            "tests/specs/fixture-mismatch.yaml",
        ],
        &[],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("FAIL  [metadata] entrypoint"), "{text}");
    assert!(text.contains("FAIL  [license] license test 1"), "{text}");
    assert!(
        text.contains("FAIL: 5 tests, 0 passed, 5 failed, 0 skipped"),
        "{text}"
    );

    // --test-report writes the report to a file; a passing run exits 0.
    let dir = std::env::temp_dir().join(format!("seaworthy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("passing.yaml");
    std::fs::write(
        &spec,
        "schemaVersion: 2.0.0\nmetadataTest:\n  user: app\n  workdir: /app\n",
    )
    .unwrap();
    let report = dir.join("report.json");
    let (out, _) = seaworthy(
        &[
            "test",
            "--image",
            image,
            "--output",
            "json",
            "--test-report",
            report.to_str().unwrap(),
            "--config",
            spec.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["summary"]["total"], 2);
    assert_eq!(json["summary"]["containers_started"], 0);
    assert_eq!(json["summary"]["containers_created"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn spec_errors_name_the_file_the_line_and_the_field() {
    let cases = [
        (
            "tests/specs/errors/unknown-field.yaml",
            "tests/specs/errors/unknown-field.yaml:4:5: commandTests[0]: unknown field `comand`, expected one of",
        ),
        (
            "tests/specs/errors/malformed.yaml",
            "tests/specs/errors/malformed.yaml:5:4: did not find expected '-' indicator",
        ),
        (
            "tests/specs/errors/bad-values.yaml",
            "tests/specs/errors/bad-values.yaml:5:18: fileExistenceTests[0].permissions: invalid permissions \"rw-r--r--\"",
        ),
        (
            "tests/specs/errors/bad-regex.yaml",
            "tests/specs/errors/bad-regex.yaml:7:9: commandTests[0].expectedOutput[1]: invalid regex \"(unclosed\": unclosed group",
        ),
        // An isRegex value is checked while reading, whether isRegex comes after it or before.
        (
            "tests/specs/errors/bad-env-regex.yaml",
            "tests/specs/errors/bad-env-regex.yaml:7:14: metadataTest.envVars[1].value: invalid regex \"(unclosed\": unclosed group",
        ),
        (
            "tests/specs/errors/bad-header-regex.yaml",
            "tests/specs/errors/bad-header-regex.yaml:9:20: daemonTests[0].httpTests[0].headers[0].value: invalid regex \"^text/(html\": unclosed group",
        ),
        (
            "tests/specs/errors/empty-command.yaml",
            "tests/specs/errors/empty-command.yaml:6:9: commandTests[0].setup[1]: an empty command",
        ),
    ];
    for (spec, message) in cases {
        // The image does not matter: specs are checked before anything else.
        let (out, _) = seaworthy(&["test", "--image", "no-such-image", spec], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert!(
            stderr.contains(&format!("error: {message}")),
            "{spec}: expected {message:?} in:\n{stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "nothing runs: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Every bad file is reported, not only the first.
    let (out, _) = seaworthy(
        &[
            "test",
            "--image",
            "x",
            "tests/specs/errors/bad-values.yaml",
            "tests/specs/errors/bad-regex.yaml",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        2,
        "{stderr}"
    );
    // A missing file and a missing image are errors too.
    let (out, _) = seaworthy(&["test", "--image", "x", "tests/specs/none.yaml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("tests/specs/none.yaml: cannot read the spec"));
    let (out, _) = seaworthy(
        &[
            "test",
            "--image",
            "seaworthy-test/no-such-image",
            "tests/specs/fixture-mismatch.yaml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("image seaworthy-test/no-such-image is not present locally"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
