//! Compatibility with container-structure-test (CST): for each rule where Seaworthy once read a
//! CST file differently, a spec and an image built here (from the local test images, no
//! registry) with the outcome CST gives, asserted test by test; reports checked by an XML
//! parser; CST's command-line flags.
//!
//! CST facts used (its source at github.com/GoogleContainerTools/container-structure-test):
//! `pkg/drivers/docker_driver.go` (`GetConfig` keeps `Port()` of each exposed port; env values
//! go through `os.Expand` against the image's environment; a missing `envFile` is a warning;
//! binds are passed as `HostConfig.Binds`, so the engine creates a missing source directory),
//! `pkg/types/v2/command.go` (`command` and `args` substituted from the image's environment,
//! which includes `globalEnvVars`, not the test's own `envVars`), `pkg/types/v2/
//! file_existence.go` (the path substituted), gopkg.in/yaml.v2 (YAML 1.1 booleans).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{errors_in, json_of, seaworthy, Dir};
use seaworthy::ImageBuild;
use serde_json::Value;
use tokio::sync::OnceCell;

/// The image of the suite: busybox with variables, a tool under a variable's path, and ports
/// exposed under both protocols. Built once per test process (and removed with its session).
async fn image() -> &'static str {
    static IMAGE: OnceCell<String> = OnceCell::const_new();
    IMAGE
        .get_or_init(|| async {
            ImageBuild::inline(
                "FROM seaworthy-test/busybox\n\
                 ENV VERSION=1.2.3 TOOL_HOME=/opt/tool\n\
                 RUN mkdir -p /opt/tool/bin \
                  && printf '#!/bin/sh\\necho tool ran\\n' > /opt/tool/bin/run \
                  && chmod 755 /opt/tool/bin/run\n\
                 EXPOSE 8080 9090/udp\n",
            )
            .with_network_mode("none")
            .build()
            .await
            .expect("build the compatibility image")
            .reference()
            .to_string()
        })
        .await
}

/// `(name, status)` of every result, in report order.
fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn errors_of(report: &Value, name: &str) -> String {
    errors_in(report, name)
}

const RULES: &str = r#"schemaVersion: "2.0.0"
globalEnvVars:
  - key: GREETING
    value: "hello $VERSION"
containerRunOptions:
  privileged: off
  envFile: ./missing.env
  bindMounts: ["./created-by-run:/mnt/created"]
metadataTest:
  envVars:
    - key: VERSION
      value: '^1\.'
      isRegex: yes
  exposedPorts: ["9090", "8080"]
  unexposedPorts: ["9090", "53"]
fileExistenceTests:
  - name: "pass: the path is expanded"
    path: "$TOOL_HOME/bin/run"
    shouldExist: yes
  - name: "pass: shouldExist no"
    path: /no/such/file
    shouldExist: no
commandTests:
  - name: "pass: args expanded from the image env without a shell"
    command: echo
    args: ["jb $VERSION"]
    expectedOutput: ['^jb 1\.2\.3\n']
  - name: "pass: braced names and globalEnvVars"
    command: echo
    args: ["${GREETING}"]
    expectedOutput: ['^hello 1\.2\.3\n']
  - name: "pass: the command is expanded too"
    command: "$TOOL_HOME/bin/run"
    expectedOutput: ["tool ran"]
  - name: "pass: a test's own envVars are not substituted into args"
    envVars: [{key: OWN, value: mine}]
    command: echo
    args: ["[$OWN]"]
    expectedOutput: ['^\[\]\n']
  - name: "pass: setup steps are run as written"
    setup: [["touch", "/tmp/$VERSION"]]
    command: ls
    args: ["/tmp"]
    expectedOutput: ['\$VERSION']
  - name: "pass: the missing bind mount source is created and mounted"
    command: test
    args: ["-d", "/mnt/created"]
  - name: "fail: a program not in the image"
    command: no-such-program
    exitCode: 127
  - name: "pass: a shell's own 127 is an exit code like any other"
    command: sh
    args: ["-c", "no-such-program"]
    exitCode: 127
"#;

fn rules_outcomes() -> Vec<(String, String)> {
    let rows = [
        ("env var VERSION", "pass"),
        ("exposed port 9090", "pass"),
        ("exposed port 8080", "pass"),
        ("unexposed port 9090", "fail"),
        ("unexposed port 53", "pass"),
    ];
    let mut want: Vec<(String, String)> = rows
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    for line in RULES.lines() {
        if let Some(name) = line.trim().strip_prefix("- name: \"") {
            let name = name.trim_end_matches('"');
            let status = name.split(':').next().unwrap();
            want.push((name.to_string(), status.to_string()));
        }
    }
    want
}

fn assert_rules(out: &Output, isolate: bool) {
    let report = json_of(out);
    assert_eq!(
        outcomes(&report),
        rules_outcomes(),
        "isolate: {isolate}; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1));
    let missing = errors_of(&report, "fail: a program not in the image");
    assert!(
        missing.contains("`no-such-program` is not in the image's PATH"),
        "{missing}"
    );
    assert!(!missing.contains("exit code"), "{missing}");
    assert_eq!(
        errors_of(&report, "unexposed port 9090"),
        "port 9090 is exposed but should not be"
    );
}

#[tokio::test]
async fn each_rule_gives_the_outcome_container_structure_test_gives() {
    let image = image().await;
    let dir = Dir::new("rules");
    let spec = dir.write("rules.yaml", RULES);
    let out = seaworthy(&["test", "--image", image, "--output", "json", &spec]);
    assert_rules(&out, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("containerRunOptions.envFile: cannot read env file \"./missing.env\"")
            && stderr.contains("going on without it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("created-by-run did not exist; created it as an empty directory"),
        "{stderr}"
    );
    assert!(dir.0.join("created-by-run").is_dir());
    // The same outcomes with a container per test, as CST runs them.
    let out = seaworthy(&[
        "test",
        "--image",
        image,
        "--output",
        "json",
        "--isolate",
        &spec,
    ]);
    assert_rules(&out, true);
}

#[tokio::test]
async fn a_port_with_its_protocol_is_compared_with_it_and_noticed() {
    let image = image().await;
    let dir = Dir::new("ports");
    let spec = dir.write(
        "ports.yaml",
        "schemaVersion: 2.0.0\nmetadataTest:\n  exposedPorts: ['9090/udp', '9090/tcp', 8080]\n",
    );
    let out = seaworthy(&["test", "--image", image, "--output", "json", &spec]);
    let report = json_of(&out);
    let want = [
        ("exposed port 9090/udp", "pass"),
        ("exposed port 9090/tcp", "fail"),
        ("exposed port 8080", "pass"),
    ];
    assert_eq!(outcomes(&report), rows(&want));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("compares numbers only"))
            .count(),
        2,
        "{stderr}"
    );
}

/// Checks that `xml` is well-formed XML 1.0 (every character allowed, every element closed,
/// every entity known) by reading it with quick-xml; returns the texts of `attribute` on
/// elements named `element`, unescaped.
fn read_xml(xml: &str, element: &str, attribute: &str) -> Vec<String> {
    use quick_xml::events::Event;
    for (i, c) in xml.char_indices() {
        let allowed =
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}');
        assert!(
            allowed,
            "character {c:?} at byte {i} is not allowed in XML 1.0"
        );
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut found = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                for a in e.attributes() {
                    let a = a.expect("a well-formed attribute");
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .expect("known entities")
                        .to_string();
                    if e.name().0 == element && a.key.0 == attribute {
                        found.push(value);
                    }
                }
            }
            Event::GeneralRef(r) => {
                let name = r.into_inner();
                assert!(
                    matches!(&*name, "lt" | "gt" | "amp" | "quot" | "apos")
                        || name.starts_with('#'),
                    "unknown entity &{name};"
                );
            }
            _ => {}
        }
    }
    found
}

#[tokio::test]
async fn junit_is_well_formed_for_any_output_and_times_add_up() {
    let image = image().await;
    let dir = Dir::new("junit");
    let a = dir.write(
        "a.yaml",
        r#"schemaVersion: 2.0.0
containerRunOptions:
  allocateTty: true
commandTests:
  - name: "coloured <output> & \x01"
    command: sh
    args: ["-c", "printf '\\033[31mred\\033[0m \\001 end\\n'; exit 3"]
  - name: "a regex with a line break"
    command: echo
    args: ["one"]
    expectedOutput: ["one\ntwo"]
"#,
    );
    let b = dir.write(
        "b.yaml",
        "schemaVersion: 2.0.0\ncommandTests:\n  - {name: one, command: sleep, args: ['1']}\n  - {name: two, command: sleep, args: ['1']}\n  - {name: three, command: sleep, args: ['1']}\n",
    );
    let out = seaworthy(&["test", "--image", image, "--output", "junit", &a, &b]);
    let xml = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let messages = read_xml(&xml, "failure", "message");
    assert_eq!(
        messages,
        vec![
            "expected exit code 0, got 3".to_string(),
            "stdout does not match /one\\ntwo/".to_string()
        ],
        "{xml}"
    );
    assert!(xml.contains(r"red\u{1b}[0m \u{1} end"), "{xml}");
    assert!(
        xml.contains(r#"name="coloured &lt;output&gt; &amp; \u{1}""#),
        "{xml}"
    );
    // Each file's time is its wall time: the three concurrent sleeps of b.yaml take about 1 s
    // (and the start of their container), not their 3 s sum; the files together take no more
    // than the run.
    let total: f64 = read_xml(&xml, "testsuites", "time")[0].parse().unwrap();
    let files: Vec<f64> = read_xml(&xml, "testsuite", "time")
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(files.len(), 2);
    assert!(files.iter().sum::<f64>() <= total + 0.001, "{xml}");
    let cases: Vec<f64> = read_xml(&xml, "testcase", "time")
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(cases[2..].iter().all(|t| *t >= 1.0), "{xml}");
    assert!(files[1] < cases[2..].iter().sum::<f64>(), "{xml}");
    // The text output prints the regex on one line too.
    let out = seaworthy(&["test", "--image", image, &a]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stdout does not match /one\\ntwo/"), "{text}");
}

#[tokio::test]
async fn a_spec_error_is_reported_in_json_and_junit_on_stdout() {
    let dir = Dir::new("errors");
    let bad = dir.write(
        "bad.yaml",
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n    comand: x\n",
    );
    let out = seaworthy(&["test", "--image", "any", "--output", "json", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let report = json_of(&out);
    assert_eq!(report["passed"], false);
    let error = &report["spec_errors"][0];
    assert_eq!(error["file"], bad.as_str());
    assert_eq!(
        (error["line"].as_u64(), error["column"].as_u64()),
        (Some(4), Some(5))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("commandTests[0]: unknown field `comand`"),
        "{report}"
    );
    let out = seaworthy(&["test", "--image", "any", "--output", "junit", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let xml = String::from_utf8(out.stdout).unwrap();
    let messages = read_xml(&xml, "failure", "message");
    assert_eq!(messages.len(), 1, "{xml}");
    assert!(
        messages[0].contains("bad.yaml:4:5: commandTests[0]: unknown field `comand`"),
        "{xml}"
    );
}

#[test]
fn yaml_1_1_booleans_are_read_and_other_words_refused() {
    let dir = Dir::new("bools");
    let bad = dir.write(
        "bad.yaml",
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: a, path: /x, shouldExist: maybe}\n",
    );
    let out = seaworthy(&["test", "--image", "any", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fileExistenceTests[0].shouldExist: invalid boolean \"maybe\""),
        "{stderr}"
    );
}

#[test]
fn flags_container_structure_test_has_and_seaworthy_does_not_are_refused_by_name() {
    for flag in [
        "--no-color",
        "--metadata",
        "--force",
        "--junit-suite-name",
        "--json",
    ] {
        let out = seaworthy(&["test", "--image", "any", flag, "x", "spec.yaml"]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{flag}: {stderr}");
    }
}

/// The path of a spec in the repository's suite.
#[allow(dead_code)]
fn repo_spec(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/specs")
        .join(name)
}

#[tokio::test]
async fn schema_1_0_0_files_run_as_container_structure_test_runs_them() {
    let image = image().await;
    let dir = Dir::new("v1");
    let spec = dir.write(
        "v1.yaml",
        r#"schemaVersion: "1.0.0"
commandTests:
  - name: "pass: a command list, expanded"
    command: ["echo", "jb $VERSION"]
    expectedOutput: ['^jb 1\.2\.3\n']
  - name: "fail: a command list with the wrong exit code"
    command: ["sh", "-c", "exit 4"]
fileExistenceTests:
  - name: "pass: a file"
    path: /opt/tool/bin/run
    shouldExist: true
    permissions: "-rwxr-xr-x"
"#,
    );
    let out = seaworthy(&["test", "--image", image, "--output", "json", &spec]);
    let report = json_of(&out);
    let want = [
        ("pass: a file", "pass"),
        ("pass: a command list, expanded", "pass"),
        ("fail: a command list with the wrong exit code", "fail"),
    ];
    assert_eq!(outcomes(&report), rows(&want));
    let refused = dir.write(
        "v1-metadata.yaml",
        "schemaVersion: 1.0.0\nmetadataTest:\n  user: root\n",
    );
    let out = seaworthy(&["test", "--image", image, &refused]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("metadataTest: schemaVersion 1.0.0 has no `metadataTest` (a 2.0.0 field): set `schemaVersion: 2.0.0`"),
        "{stderr}"
    );
}

/// An image with Debian-style package documentation (`/usr/share/doc/PACKAGE/copyright`): a
/// plain license, an AGPL one, a package without a copyright file, the package CST never
/// checks (`libgnutls30`, here with a refused license), a copyright file that is a relative
/// link, a package directory that is a link; license files elsewhere; a working directory and a
/// user.
async fn license_image() -> &'static str {
    static IMAGE: OnceCell<String> = OnceCell::const_new();
    IMAGE
        .get_or_init(|| async {
            ImageBuild::inline(
                "FROM seaworthy-test/busybox\n\
                 RUN mkdir -p /usr/share && cd /usr/share && mkdir -p doc/good doc/agpl doc/nocopy doc/libgnutls30 \
                     doc/linked /opt/lic \
                  && echo 'License: GPL-2+' > doc/good/copyright \
                  && echo 'License: agpl-3' > doc/agpl/copyright \
                  && echo 'License: WTFPL' > doc/libgnutls30/copyright \
                  && ln -s ../good/copyright doc/linked/copyright \
                  && ln -s agpl doc/dirlink \
                  && echo MIT > /opt/lic/LICENSE && echo 'wtfpl 2' > /opt/lic/BAD\n\
                 WORKDIR /opt/lic\n\
                 USER 1000\n",
            )
            .with_network_mode("none")
            .build()
            .await
            .expect("build the license image")
            .reference()
            .to_string()
        })
        .await
}

fn rows(want: &[(&str, &str)]) -> Vec<(String, String)> {
    want.iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

#[tokio::test]
async fn license_tests_run_as_container_structure_test_runs_them() {
    let image = license_image().await;
    let dir = Dir::new("licenses");
    let spec = dir.write(
        "licenses.yaml",
        "schemaVersion: 2.0.0\nlicenseTests:\n  - debian: true\n    files:\n  - debian: false\n    files: [/opt/lic/LICENSE]\n  - debian: no\n    files: [/opt/lic/BAD, /opt/lic/missing]\n",
    );
    let out = seaworthy(&["test", "--image", image, "--output", "json", &spec]);
    let report = json_of(&out);
    assert_eq!(
        outcomes(&report),
        rows(&[
            ("license test 1", "fail"),
            ("license test 2", "pass"),
            ("license test 3", "fail"),
        ])
    );
    assert_eq!(out.status.code(), Some(1));
    // AGPL in any case fails; a package without a copyright file fails; libgnutls30 and the
    // linked package directory are not read; the relative link is followed from its directory.
    assert_eq!(
        errors_of(&report, "license test 1"),
        "license file /usr/share/doc/agpl/copyright contains AGPL\nlicense file /usr/share/doc/nocopy/copyright does not exist"
    );
    assert_eq!(
        errors_of(&report, "license test 3"),
        "license file /opt/lic/BAD contains WTFPL\nlicense file /opt/lic/missing does not exist"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("license file /usr/share/doc/linked/copyright is a relative symbolic link (to ../good/copyright)")
            && stderr.contains("its issue #77"),
        "{stderr}"
    );
    // A Debian image without documentation passes, as there.
    let base = dir.write(
        "base.yaml",
        "schemaVersion: 2.0.0\nlicenseTests: [{debian: true}]\n",
    );
    let out = seaworthy(&["test", "--image", "seaworthy-test/busybox", &base]);
    assert_eq!(out.status.code(), Some(1), "busybox has no /usr/share/doc");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cannot read /usr/share/doc"), "{text}");
}

#[tokio::test]
async fn yaml_shapes_container_structure_test_reads_are_read_the_same() {
    let image = license_image().await;
    let dir = Dir::new("shapes");
    // Merge keys, nulls for lists, numbers where strings are expected, `uid: -1` (not checked),
    // an empty workdir and user (not checked), and the pre-1.13 spelling `env`.
    let spec = dir.write(
        "shapes.yaml",
        r#"schemaVersion: 2.0.0
commandTests:
  - &echo
    name: "pass: the anchored test"
    command: echo
    args: [1, true]
    expectedOutput: ['^1 true\n$']
    setup:
  - <<: *echo
    name: "pass: merged, its args overridden"
    args: [merged]
    expectedOutput: ['^merged\n$']
  - name: "fail: an empty envVars value, as CST's check of the test"
    envVars: [{key: EMPTY, value: ""}]
    command: "true"
  - name: "pass: regexes read as Go reads them"
    command: echo
    args: ["٣ é [+]"]
    expectedOutput: ['^\Q٣ é\E [[][+]]']
    excludedOutput: ['\d', '\w', '\bé']
fileExistenceTests:
  - name: "pass: uid -1 is not checked"
    path: /opt/lic/LICENSE
    uid: -1
    gid: 0
metadataTest:
  workdir: ""
  user: ""
  env:
    - key: PATH
      value: '^/usr'
      isRegex: true
  unboundEnv:
    - key: NOPE
"#,
    );
    let out = seaworthy(&["test", "--image", image, "--output", "json", &spec]);
    let report = json_of(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        outcomes(&report),
        rows(&[
            ("env var PATH", "pass"),
            ("unbound env var NOPE", "pass"),
            ("pass: uid -1 is not checked", "pass"),
            ("pass: the anchored test", "pass"),
            ("pass: merged, its args overridden", "pass"),
            (
                "fail: an empty envVars value, as CST's check of the test",
                "fail"
            ),
            ("pass: regexes read as Go reads them", "pass"),
        ]),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        errors_of(
            &report,
            "fail: an empty envVars value, as CST's check of the test"
        )
        .starts_with("envVars[0] has an empty key or value"),
        "{report}"
    );
    assert!(
        stderr.contains("metadataTest.env is container-structure-test's spelling before 1.13")
            && stderr.contains("metadataTest.unboundEnv is"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_run_without_tests_fails_as_in_container_structure_test() {
    let dir = Dir::new("no-tests");
    let spec = dir.write(
        "empty.yaml",
        "schemaVersion: 2.0.0\nmetadataTest:\ncommandTests: []\n",
    );
    let out = seaworthy(&["test", "--image", "seaworthy-test/busybox", &spec]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL: 0 tests"), "{text}");
    assert!(text.contains("the spec files hold no test"), "{text}");
}

#[tokio::test]
async fn a_json_spec_is_read_as_container_structure_test_reads_json() {
    let image = image().await;
    let dir = Dir::new("json");
    // Go field names in any case, and a key that names no field (ignored, with a notice).
    let spec = dir.write(
        "spec.json",
        r#"{
	"SchemaVersion": "2.0.0",
	"FileExistenceTests": [
		{"Name": "pass: the tool", "Path": "/opt/tool/bin/run", "isDirectory": false}
	],
	"commandTests": [
		{"name": "pass: echo", "command": "echo", "args": ["$VERSION"], "expectedOutput": ["^1\\.2\\.3\n$"]}
	]
}"#,
    );
    let out = seaworthy(&["test", "--image", image, "--output", "json", &spec]);
    let report = json_of(&out);
    assert_eq!(
        outcomes(&report),
        rows(&[("pass: the tool", "pass"), ("pass: echo", "pass")])
    );
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fileExistenceTests[0].isDirectory is not a field: ignored")
            && stderr.contains("fileExistenceTests[0] has no shouldExist: read as true"),
        "{stderr}"
    );
}
