//! Tests that themselves run in a container of the engine they use (the engine's socket mounted
//! in, as on a CI runner that runs jobs in containers): the fixture addresses the library reports
//! must be reachable from there. This binary runs one of its own tests inside a container of the
//! Debian test image `seaworthy-test/base` (its glibc is the host's), which finds the engine on
//! the mounted socket, starts a web server with a published port and fetches from it at the
//! address the library reports.

mod common;

use std::time::Duration;

use seaworthy::{ContainerDefinition, Session, Wait};

/// Where the test binary is mounted in the container.
const BINARY_INSIDE: &str = "/seaworthy-test-binary";

/// Run inside the container by `fixtures_are_reached_from_a_test_running_in_a_container`: finds
/// the engine (the mounted socket), starts a web server with a published port, fetches from it
/// at the address the library reports, says where, and removes it.
#[tokio::test]
#[ignore = "run inside a container by fixtures_are_reached_from_a_test_running_in_a_container"]
async fn child_in_a_container() {
    if std::env::var("SEAWORTHY_IN_CONTAINER_CHILD").is_err() {
        return;
    }
    assert!(
        std::path::Path::new("/.dockerenv").exists(),
        "not in a container"
    );
    let session = Session::global().await.unwrap();
    println!("HOST {}", session.engine().host());
    let web = common::web_server("inside")
        .with_startup_timeout(Duration::from_secs(60))
        .start_in(&session)
        .await
        .unwrap();
    let address = web.address(80).unwrap();
    let body = web
        .http(80)
        .unwrap()
        .get("/ping")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    println!("REACHED {address} {}", body.trim());
    web.remove().await.unwrap();
}

#[tokio::test]
async fn fixtures_are_reached_from_a_test_running_in_a_container() {
    let exe = std::env::current_exe().unwrap();
    let runner = ContainerDefinition::new("seaworthy-test/base")
        .with_mount(&format!("{}:{BINARY_INSIDE}:ro", exe.display()))
        .with_mount("/var/run/docker.sock:/var/run/docker.sock")
        .with_env("SEAWORTHY_IN_CONTAINER_CHILD", "1")
        // Its session is torn down when its test ends; a reaper would die with the container.
        .with_env("SEAWORTHY_REAPER", "off")
        .with_entrypoint([BINARY_INSIDE])
        .with_cmd([
            "--exact",
            "child_in_a_container",
            "--ignored",
            "--nocapture",
        ])
        .with_wait(Wait::exited())
        .with_startup_timeout(Duration::from_secs(120))
        .start()
        .await
        .unwrap();
    let inspect = runner.inspect().await.unwrap();
    let logs = runner.logs().await.unwrap();
    let output = format!("{}{}", logs.stdout(), logs.stderr());
    let code = inspect.state.as_ref().and_then(|s| s.exit_code);
    assert_eq!(code, Some(0), "the test in the container failed:\n{output}");
    // The gateway of the engine's default bridge, the runner's network: where the engine's
    // published ports are reached from inside it (an exited container's own settings no longer
    // name it).
    let bridge = runner
        .session()
        .engine()
        .docker()
        .inspect_network(
            "bridge",
            None::<seaworthy::bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .unwrap();
    let gateway = bridge
        .ipam
        .and_then(|i| i.config)
        .into_iter()
        .flatten()
        .find_map(|c| c.gateway)
        .unwrap_or_else(|| panic!("the bridge network names no gateway:\n{output}"));
    let host = output
        .lines()
        .find_map(|l| l.strip_prefix("HOST "))
        .unwrap_or_else(|| panic!("no HOST line:\n{output}"));
    assert_eq!(host, gateway, "{output}");
    let reached = output
        .lines()
        .find_map(|l| l.strip_prefix("REACHED "))
        .unwrap_or_else(|| panic!("no REACHED line:\n{output}"));
    assert!(
        reached.starts_with(&format!("{gateway}:")) && reached.ends_with(" inside"),
        "{reached}"
    );
    runner.remove().await.unwrap();
}
