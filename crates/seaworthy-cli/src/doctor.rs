//! `seaworthy doctor`: which engine Seaworthy finds, how, and what it is.

use std::process::ExitCode;

use seaworthy::engine::Discovery;
use seaworthy::Engine;

/// Options of `seaworthy doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}

/// Finds the engine as the tests do and prints what Seaworthy knows of it. Exit code 1 when no
/// engine answers (the error lists every place looked at).
pub async fn run(_args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let engine = match Discovery::from_env().connect().await {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    for (key, value) in report(&engine).await? {
        println!("{key:<16} {value}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The lines of the report, as (label, value).
async fn report(engine: &Engine) -> anyhow::Result<Vec<(&'static str, String)>> {
    let docker = engine.docker();
    let version = docker.version().await?;
    let info = docker.info().await?;
    let podman = version
        .components
        .iter()
        .flatten()
        .find(|c| c.name.to_lowercase().contains("podman"));
    let product = match podman {
        Some(c) => format!("Podman {}", c.version),
        None => format!("Docker {}", version.version.clone().unwrap_or_default()),
    };
    let rootless = info
        .security_options
        .iter()
        .flatten()
        .any(|o| o.contains("name=rootless"));
    let mut lines = vec![
        ("engine", engine.endpoint().to_string()),
        ("found through", engine.source().to_string()),
    ];
    if let Some(dir) = engine.tls_dir() {
        lines.push(("TLS material", dir.display().to_string()));
    }
    lines.extend([
        ("engine version", product),
        (
            "API version",
            format!(
                "{} (the engine speaks {}, from {})",
                engine.api_version(),
                version.api_version.clone().unwrap_or_default(),
                version.min_api_version.clone().unwrap_or_default()
            ),
        ),
        (
            "platform",
            format!(
                "{}/{}",
                version.os.clone().unwrap_or_default(),
                version.arch.clone().unwrap_or_default()
            ),
        ),
        ("storage driver", info.driver.clone().unwrap_or_default()),
        ("rootless", if rootless { "yes" } else { "no" }.to_string()),
        ("published ports", format!("reached at {}", engine.host())),
        ("reaper", reaper(engine).await),
    ]);
    if podman.is_some() {
        lines.push((
            "note",
            "Podman runs healthchecks from systemd timers: without systemd, a health wait never \
             sees the container turn healthy"
                .to_string(),
        ));
    }
    Ok(lines)
}

/// Whether the reaper, a process of its own, can reach the engine and remove what a killed
/// test process left.
async fn reaper(engine: &Engine) -> String {
    if std::env::var("SEAWORTHY_REAPER").is_ok_and(|v| v == "off" || v == "0") {
        return "off (SEAWORTHY_REAPER); `seaworthy gc` removes what killed test processes leave"
            .to_string();
    }
    match engine.reconnect().await {
        Ok(_) => format!(
            "can work: a new connection to {} (as the reaper makes it) answered",
            engine.endpoint()
        ),
        Err(e) => format!(
            "cannot work: a new connection to {} failed: {e}; `seaworthy gc` removes what \
             killed test processes leave",
            engine.endpoint()
        ),
    }
}
