//! Pull settings from the environment, as the Docker CLI takes them: a registry mirror for
//! Docker Hub images (`SEAWORTHY_REGISTRY_MIRROR`, here the private registry of `.ci/engines`
//! on 10.214.0.1:5443, with credentials from a Docker config) and the default platform
//! (`DOCKER_DEFAULT_PLATFORM`). Its own binary: it sets variables no other test may see.

mod common;
#[path = "support/private_registry.rs"]
mod private_registry;

use private_registry::{auth_config, password, push_and_untag, untag, REGISTRY as MIRROR};
use seaworthy::{ContainerDefinition, Session, Wait};

fn sleeper(image: &str) -> ContainerDefinition {
    ContainerDefinition::new(image)
        .with_cmd(["sh", "-c", "echo ready; exec sleep 600"])
        .with_wait(Wait::log("^ready$"))
}

#[tokio::test]
async fn docker_hub_images_come_through_the_mirror_and_the_default_platform_applies() {
    let docker = Session::global().await.unwrap().engine().docker().clone();
    let password = password();
    // A Docker Hub name nobody has: only the mirror can provide it.
    let name = format!("sw-mirror-{}", std::process::id());
    let on_mirror = format!("{MIRROR}/library/{name}");
    push_and_untag(&docker, common::BUSYBOX, &on_mirror, "t1").await;

    let config = std::env::temp_dir().join(format!("sw-mirror-config-{}", std::process::id()));
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        auth_config(MIRROR, private_registry::USER, &password),
    )
    .unwrap();
    // SAFETY: this binary's only test sets these; nothing else reads them concurrently.
    unsafe {
        std::env::set_var("DOCKER_CONFIG", &config);
        std::env::set_var("SEAWORTHY_REGISTRY_MIRROR", MIRROR);
    }
    let image = format!("{name}:t1");
    let c = sleeper(&image).start().await.unwrap();
    assert_eq!(c.image(), image);
    c.remove().await.unwrap();
    // Present under the name the definition gave, not under the mirror's.
    docker.inspect_image(&image).await.unwrap();
    assert!(docker
        .inspect_image(&format!("{on_mirror}:t1"))
        .await
        .is_err());
    untag(&docker, &image).await;

    // A mirror given with a scheme is refused, naming the setting.
    // SAFETY: as above.
    unsafe { std::env::set_var("SEAWORTHY_REGISTRY_MIRROR", "https://mirror.example") };
    let err = sleeper(&format!("{name}:t2"))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid registry mirror \"https://mirror.example\""),
        "{err}"
    );
    // SAFETY: as above.
    unsafe { std::env::remove_var("SEAWORTHY_REGISTRY_MIRROR") };
    std::fs::remove_dir_all(&config).unwrap();

    // DOCKER_DEFAULT_PLATFORM is the platform of a definition that names none: the engine is
    // asked for it, and refuses the local amd64 image; with_platform still decides.
    // SAFETY: as above.
    unsafe { std::env::set_var("DOCKER_DEFAULT_PLATFORM", "linux/arm64") };
    let def = sleeper(common::BUSYBOX).with_pull_policy(seaworthy::PullPolicy::Never);
    assert_eq!(def.platform(), Some("linux/arm64"));
    let err = def.start().await.unwrap_err().to_string();
    assert!(err.contains("platform"), "{err}");
    let c = sleeper(common::BUSYBOX)
        .with_platform("linux/amd64")
        .start()
        .await
        .unwrap();
    c.remove().await.unwrap();
    // SAFETY: as above.
    unsafe { std::env::remove_var("DOCKER_DEFAULT_PLATFORM") };
}
