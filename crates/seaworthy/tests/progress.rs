//! What image builds and pulls show on stderr, as a user sees it: plain lines when stderr is not
//! a terminal (the build's steps, the pull's start and end), nothing with `SEAWORTHY_QUIET=1`.
//! Each case runs in a child process (this binary, one ignored test) whose stderr is read. The
//! pull comes from the private registry of `.ci/engines` (10.214.0.1:5443, TLS and htpasswd;
//! `bash .ci/engines start` starts it).

mod common;
#[path = "support/private_registry.rs"]
mod private_registry;

use std::process::{Command, Output};

use private_registry::{auth_config, password, push_and_untag, untag, REGISTRY, USER};
use seaworthy::{Engine, ImageBuild, Session};

/// Runs the ignored test `child` of this binary with `SEAWORTHY_PROGRESS_CHILD` set, `vars`
/// added and `SEAWORTHY_QUIET` as `quiet` says; panics when it fails.
fn run_child(child: &str, vars: &[(&str, &str)], quiet: bool) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", child, "--ignored", "--nocapture"])
        .env("SEAWORTHY_PROGRESS_CHILD", "1")
        .envs(vars.iter().copied());
    if quiet {
        cmd.env("SEAWORTHY_QUIET", "1");
    } else {
        cmd.env_remove("SEAWORTHY_QUIET");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{child} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The lines Seaworthy showed on the child's stderr.
fn shown(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("seaworthy: "))
        .map(str::to_string)
        .collect()
}

/// Builds a two-step image no earlier build made (its label is new), prints its reference and
/// removes it.
#[tokio::test]
#[ignore = "run as a child process by builds_show_their_steps_unless_quiet"]
async fn child_builds_an_image() {
    if std::env::var("SEAWORTHY_PROGRESS_CHILD").is_err() {
        return;
    }
    let unique = std::env::var("SEAWORTHY_PROGRESS_UNIQUE").unwrap();
    let built = ImageBuild::inline(format!(
        "FROM {}\nRUN echo {unique} > /built\n",
        common::BUSYBOX
    ))
    .with_tag(format!("sw-progress-build:{unique}"))
    .build()
    .await
    .unwrap();
    assert!(!built.was_cached());
    println!("BUILT {}", built.reference());
    built.remove().await.unwrap();
}

#[test]
fn builds_show_their_steps_unless_quiet() {
    let unique = format!("{}-{}", std::process::id(), nanos());
    let reference = format!("sw-progress-build:{unique}");
    let out = run_child(
        "child_builds_an_image",
        &[("SEAWORTHY_PROGRESS_UNIQUE", &unique)],
        false,
    );
    let lines = shown(&out);
    // The engine's builder counts the labels Seaworthy adds as steps too: `step 1/N`.
    let step = |line: Option<&String>, n: usize, instruction: &str| {
        line.is_some_and(|l| {
            l.starts_with(&format!("seaworthy: building {reference}: step {n}/"))
                && l.ends_with(&format!(": {instruction}"))
        })
    };
    assert_eq!(
        lines.first(),
        Some(&format!("seaworthy: building {reference}")),
        "{lines:#?}"
    );
    assert!(
        step(lines.get(1), 1, &format!("FROM {}", common::BUSYBOX)),
        "{lines:#?}"
    );
    assert!(
        step(lines.get(2), 2, &format!("RUN echo {unique} > /built")),
        "{lines:#?}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with(&format!("seaworthy: built {reference} in "))),
        "{lines:#?}"
    );

    let unique = format!("{unique}-quiet");
    let out = run_child(
        "child_builds_an_image",
        &[("SEAWORTHY_PROGRESS_UNIQUE", &unique)],
        true,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("BUILT "),
        "the quiet child built nothing"
    );
    assert_eq!(shown(&out), Vec::<String>::new());
}

/// Pulls `SEAWORTHY_PROGRESS_IMAGE` with `Engine::pull_image` (credentials from the Docker
/// config of `DOCKER_CONFIG`), then removes its tag.
#[tokio::test]
#[ignore = "run as a child process by pulls_show_their_start_and_end_unless_quiet"]
async fn child_pulls_an_image() {
    if std::env::var("SEAWORTHY_PROGRESS_CHILD").is_err() {
        return;
    }
    let image = std::env::var("SEAWORTHY_PROGRESS_IMAGE").unwrap();
    let engine = Engine::connect().await.unwrap();
    engine.pull_image(&image, None).await.unwrap();
    engine.docker().inspect_image(&image).await.unwrap();
    untag(engine.docker(), &image).await;
}

#[tokio::test]
async fn pulls_show_their_start_and_end_unless_quiet() {
    let docker = Session::global().await.unwrap().engine().docker().clone();
    let repo = format!("{REGISTRY}/sw-progress-{}", std::process::id());
    let image = format!("{repo}:t1");
    push_and_untag(&docker, common::BUSYBOX, &repo, "t1").await;
    let config = std::env::temp_dir().join(format!("sw-progress-config-{}", std::process::id()));
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        auth_config(REGISTRY, USER, &password()),
    )
    .unwrap();
    let vars = [
        ("SEAWORTHY_PROGRESS_IMAGE", image.as_str()),
        ("DOCKER_CONFIG", config.to_str().unwrap()),
    ];
    let lines = shown(&run_child("child_pulls_an_image", &vars, false));
    assert_eq!(
        lines.first(),
        Some(&format!("seaworthy: pulling {image}")),
        "{lines:#?}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with(&format!("seaworthy: pulled {image} in "))),
        "{lines:#?}"
    );
    let lines = shown(&run_child("child_pulls_an_image", &vars, true));
    assert_eq!(lines, Vec::<String>::new());
    std::fs::remove_dir_all(&config).unwrap();
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
