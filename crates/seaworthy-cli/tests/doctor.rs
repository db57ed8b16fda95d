//! `seaworthy doctor` against the real engine, and with nothing to find.

use std::process::Command;

fn doctor() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seaworthy"));
    cmd.arg("doctor");
    cmd
}

#[tokio::test]
async fn doctor_reports_the_engine_found_and_what_it_is() {
    let engine = seaworthy::Engine::connect().await.unwrap();
    let info = engine.docker().info().await.unwrap();
    let out = doctor().output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |label: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(label).map(str::trim))
            .unwrap_or_else(|| panic!("no {label} line in:\n{stdout}"))
            .to_string()
    };
    assert_eq!(line("engine "), engine.endpoint());
    assert_eq!(line("found through"), engine.source().to_string());
    assert!(line("API version").starts_with(engine.api_version()));
    assert_eq!(line("storage driver"), info.driver.unwrap());
    assert_eq!(line("rootless"), "no");
    assert_eq!(
        line("published ports"),
        format!("reached at {}", engine.host())
    );
    assert!(line("reaper").starts_with("can work"), "{stdout}");
}

#[test]
fn doctor_without_an_engine_lists_every_place_and_fails() {
    let home = std::env::temp_dir().join(format!("sw-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let out = doctor()
        .env("HOME", &home)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&home).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the Docker engine named by DOCKER_HOST did not answer"),
        "{stderr}"
    );
    assert!(
        stderr.contains("DOCKER_HOST (unix:///nonexistent/docker.sock)"),
        "{stderr}"
    );
}
