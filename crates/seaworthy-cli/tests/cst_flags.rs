//! container-structure-test's command-line flags on `seaworthy test`: `--platform`,
//! `--runtime`, `--save`, `--driver tar|host`, `--image-from-oci-layout` with
//! `--default-image-tag`, against the local busybox test image (no registry).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::{json_of, seaworthy, Dir};
use serde_json::Value;

const BUSYBOX: &str = "seaworthy-test/busybox";

/// `seaworthy test --image busybox --output json EXTRA... SPEC`.
fn json_run(spec: &str, extra: &[&str]) -> Output {
    let mut args = vec!["test", "-i", BUSYBOX, "-o", "json"];
    args.extend(extra);
    args.push(spec);
    seaworthy(&args)
}

/// `(name, status, errors joined)` of every result.
fn results(report: &Value) -> Vec<(String, String, String)> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let errors: Vec<&str> = r["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap())
                .collect();
            (
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                errors.join("\n"),
            )
        })
        .collect()
}

const SPEC: &str = "schemaVersion: 2.0.0
metadataTest:
  cmd: [sh]
fileExistenceTests:
  - {name: busybox, path: /bin/busybox}
commandTests:
  - {name: echo, command: echo, args: [hi], expectedOutput: ['^hi\\n$']}
";

fn engine_arch() -> String {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Arch}}"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn platform_goes_to_every_container_and_a_mismatch_fails_naming_both() {
    let dir = Dir::new("flags-platform");
    let spec = dir.write("spec.yaml", SPEC);
    let arch = engine_arch();
    let own = format!("linux/{arch}");
    let out = json_run(&spec, &["--platform", &own]);
    assert_eq!(out.status.code(), Some(0), "{:?}", results(&json_of(&out)));
    let other = if arch == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let out = json_run(&spec, &["--platform", other]);
    let rows = results(&json_of(&out));
    assert_eq!(out.status.code(), Some(1));
    // Metadata is the image's configuration: no container.
    assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), ("cmd", "pass"));
    for (name, status, errors) in &rows[1..] {
        assert_eq!(status, "fail", "{name}");
        assert!(
            errors.contains(&format!("wanted {other}, actual: linux/{arch}")),
            "{name}: {errors}"
        );
    }
}

#[test]
fn runtime_goes_to_every_container_and_an_unknown_one_is_named() {
    let dir = Dir::new("flags-runtime");
    let spec = dir.write("spec.yaml", SPEC);
    let out = json_run(&spec, &["--runtime", "runc"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", results(&json_of(&out)));
    let out = json_run(&spec, &["--runtime", "no-such-runtime"]);
    assert_eq!(out.status.code(), Some(1));
    let rows = results(&json_of(&out));
    for (name, status, errors) in &rows[1..] {
        assert_eq!(status, "fail", "{name}");
        assert!(errors.contains("no-such-runtime"), "{name}: {errors}");
    }
}

#[test]
fn save_keeps_the_containers_and_prints_their_names() {
    let dir = Dir::new("flags-save");
    let spec = dir.write("spec.yaml", SPEC);
    let out = seaworthy(&["test", "-i", BUSYBOX, "--save", &spec]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("kept container "))
        .map(|l| l.trim_end_matches(" (--save)"))
        .collect();
    // The file tests' container and the command tests' one.
    assert_eq!(names.len(), 2, "{stdout}");
    for name in &names {
        let inspect = Command::new("docker")
            .args(["inspect", "--format", "{{.Config.Image}}", name])
            .output()
            .unwrap();
        let removed = Command::new("docker")
            .args(["rm", "-f", name])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&inspect.stdout).trim(),
            BUSYBOX,
            "{name}"
        );
        assert!(removed.status.success());
    }
}

#[test]
fn driver_tar_reads_files_and_metadata_starts_nothing_and_fails_commands_by_name() {
    let dir = Dir::new("flags-tar");
    let spec = dir.write("spec.yaml", SPEC);
    let out = json_run(&spec, &["--driver", "tar"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json_of(&out);
    let rows = results(&report);
    let outcome: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(
        outcome,
        [("cmd", "pass"), ("busybox", "pass"), ("echo", "fail")]
    );
    assert!(
        rows[2].2.contains("cannot run with --driver tar"),
        "{}",
        rows[2].2
    );
    assert_eq!(report["summary"]["containers_started"], 0);
    let out = seaworthy(&["test", "-i", BUSYBOX, "--driver", "host", &spec]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--driver host is not supported"),
        "{stderr}"
    );
}

fn sha256_of(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// An OCI layout of `image`, made from `docker save` with the system's `tar`: its config and
/// layers as blobs, an OCI manifest, and an index with `annotations`.
fn oci_layout(image: &str, dir: &Dir, annotations: Value) -> String {
    let saved = dir.0.join("saved");
    std::fs::create_dir_all(&saved).unwrap();
    let archive = dir.0.join("saved.tar");
    let ok = Command::new("docker")
        .args(["save", "-o", archive.to_str().unwrap(), image])
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = Command::new("tar")
        .args([
            "-xf",
            archive.to_str().unwrap(),
            "-C",
            saved.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(saved.join("manifest.json")).unwrap()).unwrap();
    let blob = |source: PathBuf| -> Value {
        let digest = sha256_of(&source);
        let data = std::fs::read(&source).unwrap();
        dir.write(&format!("layout/blobs/sha256/{digest}"), &data);
        serde_json::json!({"digest": format!("sha256:{digest}"), "size": data.len()})
    };
    let mut config = blob(saved.join(manifest[0]["Config"].as_str().unwrap()));
    config["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let layers: Vec<Value> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut layer = blob(saved.join(l.as_str().unwrap()));
            layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
            layer
        })
        .collect();
    let oci_manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers,
    });
    let path = dir.write(
        "oci-manifest.json",
        serde_json::to_vec(&oci_manifest).unwrap(),
    );
    let mut descriptor = blob(PathBuf::from(path));
    descriptor["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    descriptor["annotations"] = annotations;
    dir.write(
        "layout/index.json",
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [descriptor]}))
            .unwrap(),
    );
    dir.write("layout/oci-layout", r#"{"imageLayoutVersion": "1.0.0"}"#);
    dir.0.join("layout").display().to_string()
}

/// Removes an image tag when dropped.
struct Tag(String);

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

#[test]
fn an_oci_layout_is_loaded_under_its_annotation_or_the_default_tag_then_tested() {
    let dir = Dir::new("flags-oci");
    let spec = dir.write("spec.yaml", SPEC);
    let plain = oci_layout(BUSYBOX, &dir, serde_json::json!({}));
    let out = seaworthy(&["test", "--image-from-oci-layout", &plain, &spec]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--default-image-tag"), "{stderr}");

    let tag = Tag(format!("seaworthy-oci-test/default:{}", std::process::id()));
    let out = seaworthy(&[
        "test",
        "-o",
        "json",
        "--image-from-oci-layout",
        &plain,
        "--default-image-tag",
        &tag.0,
        &spec,
    ]);
    let report = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{:?}", results(&report));
    assert_eq!(report["image"], tag.0.as_str());

    let named = Tag(format!(
        "seaworthy-oci-test/annotated:{}",
        std::process::id()
    ));
    let annotated = Dir::new("flags-oci-annotated");
    let layout = oci_layout(
        BUSYBOX,
        &annotated,
        serde_json::json!({"org.opencontainers.image.ref.name": named.0}),
    );
    let out = seaworthy(&[
        "test",
        "-o",
        "json",
        "--image-from-oci-layout",
        &layout,
        &spec,
    ]);
    let report = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{:?}", results(&report));
    assert_eq!(report["image"], named.0.as_str());
}

#[test]
fn a_test_report_file_is_json_unless_junit_is_asked_for() {
    let dir = Dir::new("flags-report");
    let spec = dir.write(
        "spec.yaml",
        "schemaVersion: 2.0.0\nmetadataTest:\n  cmd: [sh]\n",
    );
    let file = dir.0.join("report").display().to_string();
    let out = seaworthy(&["test", "-i", BUSYBOX, "--test-report", &file, &spec]);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(report["summary"]["passed"], 1);
    let out = seaworthy(&[
        "test",
        "-i",
        BUSYBOX,
        "-o",
        "junit",
        "--test-report",
        &file,
        &spec,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let xml = std::fs::read_to_string(&file).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
}

/// The metadata checks of container-structure-test's own suite (`tests/Dockerfile.metadata` and
/// its metadata test: an empty variable, a value with `\:` and `=`, regexes, an empty label),
/// restated on busybox.
const METADATA_DOCKERFILE: &str = "FROM seaworthy-test/busybox\n\
ENV ONE_KEY=\"ONE_VAL\" EMPTY_VAR=\"\" COLON_VAR=\"A\\:B=C\" REGEX_VAR=\"tool-3.4.5\"\n\
LABEL org.example.commit=\"89abcdef\" org.example.note=\"a test label\" empty-label=\"\"\n";

const METADATA_SPEC: &str = r#"schemaVersion: '2.0.0'
metadataTest:
  envVars:
    - {key: 'ONE_KEY', value: 'ONE_VAL'}
    - {key: 'EMPTY_VAR', value: ''}
    - {key: 'COLON_VAR', value: 'A\:B=C'}
    - {key: 'REGEX_VAR', value: '[a-z]+-3\.4\.*', isRegex: true}
  unboundEnvVars:
    - key: 'NOT_SET'
  labels:
    - {key: 'org.example.commit', value: '89abcdef'}
    - {key: 'org.example.note', value: 'a .+ label', isRegex: true}
    - {key: 'empty-label', value: ''}
  unexposedPorts: ['80']
  unmountedVolumes: ['/root']
"#;

#[test]
fn driver_tar_reads_a_saved_image_file_as_container_structure_test_does() {
    let dir = Dir::new("flags-tar-archive");
    let tag = Tag(format!(
        "seaworthy-cst-test/metadata:{}",
        std::process::id()
    ));
    dir.write("Dockerfile", METADATA_DOCKERFILE);
    let built = Command::new("docker")
        .args(["build", "-q", "--network", "none", "-t", &tag.0])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let archive = dir.0.join("metadata.tar");
    let saved = Command::new("docker")
        .args(["save", "-o", archive.to_str().unwrap(), &tag.0])
        .status()
        .unwrap();
    assert!(saved.success());
    let spec = dir.write("metadata.yaml", METADATA_SPEC);
    let all_pass = |out: &Output| {
        let report = json_of(out);
        let rows = results(&report);
        assert_eq!(rows.len(), 10, "{rows:?}");
        assert!(rows.iter().all(|r| r.1 == "pass"), "{rows:?}");
        assert_eq!(out.status.code(), Some(0));
    };
    // The image from the engine, then from its saved file under the tar driver (loaded into the
    // engine, then read without starting a container).
    all_pass(&seaworthy(&["test", "-o", "json", "-i", &tag.0, &spec]));
    let out = seaworthy(&[
        "test",
        "-o",
        "json",
        "--driver",
        "tar",
        "-i",
        archive.to_str().unwrap(),
        &spec,
    ]);
    all_pass(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("metadata.tar as {}", tag.0)),
        "{stderr}"
    );
}
