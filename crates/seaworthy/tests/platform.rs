//! `ContainerDefinition::with_platform` and `with_runtime`: both reach the engine's create.

mod common;

use common::{sleeper, BUSYBOX};
use seaworthy::{ContainerDefinition, Session};

/// The engine's own platform, `linux/amd64` on an x86-64 host, as the engine reports it.
async fn engine_platform() -> (String, String) {
    let session = Session::global().await.unwrap();
    let version = session.engine().docker().version().await.unwrap();
    (version.os.unwrap(), version.arch.unwrap())
}

#[tokio::test]
async fn a_container_created_for_the_engines_platform_runs_the_image_of_that_platform() {
    let (os, arch) = engine_platform().await;
    let c = sleeper()
        .with_network_mode("none")
        .with_platform(format!("{os}/{arch}"))
        .start()
        .await
        .unwrap();
    let docker = c.session().engine().docker();
    let inspect = docker
        .inspect_container(c.id().as_ref(), None)
        .await
        .unwrap();
    assert_eq!(inspect.platform.as_deref(), Some(os.as_str()));
    let image = docker
        .inspect_image(inspect.image.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (image.os.as_deref(), image.architecture.as_deref()),
        (Some(os.as_str()), Some(arch.as_str()))
    );
}

#[tokio::test]
async fn a_platform_the_local_image_was_not_built_for_is_refused_by_the_engine_naming_both() {
    let (_, arch) = engine_platform().await;
    let other = if arch == "arm64" { "amd64" } else { "arm64" };
    let err = ContainerDefinition::new(BUSYBOX)
        .with_platform(format!("linux/{other}"))
        .with_network_mode("none")
        .with_cmd(["true"])
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(BUSYBOX), "{err}");
    assert!(
        err.contains(&format!("wanted linux/{other}, actual: linux/{arch}")),
        "{err}"
    );
}

#[test]
fn an_empty_platform_leaves_the_choice_to_the_engine() {
    let def = ContainerDefinition::new(BUSYBOX).with_platform("linux/arm64");
    assert_eq!(def.platform(), Some("linux/arm64"));
    assert_eq!(def.with_platform("").platform(), None);
}

#[tokio::test]
async fn a_container_runs_with_the_runtime_given_and_an_unknown_one_is_refused_by_name() {
    let c = sleeper()
        .with_network_mode("none")
        .with_runtime("runc")
        .start()
        .await
        .unwrap();
    let inspect = c
        .session()
        .engine()
        .docker()
        .inspect_container(&c.id(), None)
        .await
        .unwrap();
    assert_eq!(
        inspect.host_config.and_then(|h| h.runtime).as_deref(),
        Some("runc")
    );
    let err = ContainerDefinition::new(BUSYBOX)
        .with_network_mode("none")
        .with_runtime("no-such-runtime")
        .with_cmd(["true"])
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-runtime"), "{err}");
}
