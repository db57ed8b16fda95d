//! Pulls from a private registry (Debian's docker-registry on 10.214.0.1:5443 with TLS and
//! htpasswd, started by `bash .ci/engines start`): refused without credentials, with an error
//! naming the registry and what to do; refused with wrong ones, naming where they came from;
//! done with the credentials of a Docker config file and of DOCKER_AUTH_CONFIG. Its own binary:
//! it sets DOCKER_CONFIG and DOCKER_AUTH_CONFIG, which no other test may see.

mod common;
#[path = "support/private_registry.rs"]
mod private_registry;

use private_registry::{auth_config, password, push_and_untag, untag, REGISTRY, USER};
use seaworthy::{ContainerDefinition, PullPolicy, Session, Wait};

/// Sets the Docker config directory to a new one holding `config_json` (none when `None`).
fn use_docker_config(dir: &std::path::Path, config_json: Option<&str>) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    if let Some(json) = config_json {
        std::fs::write(dir.join("config.json"), json).unwrap();
    }
    // SAFETY: this binary's only test sets these before each step; nothing else reads them
    // concurrently (the session's runtime reads them during the start this test awaits).
    unsafe {
        std::env::set_var("DOCKER_CONFIG", dir);
        std::env::remove_var("DOCKER_AUTH_CONFIG");
    }
}

async fn start(image: &str) -> seaworthy::Result<seaworthy::Container> {
    ContainerDefinition::new(image)
        .with_pull_policy(PullPolicy::Missing)
        .with_cmd(["sh", "-c", "echo ready; exec sleep 600"])
        .with_wait(Wait::log("^ready$"))
        .start()
        .await
}

#[tokio::test]
async fn private_images_are_pulled_with_the_docker_configs_credentials() {
    let password = password();
    let docker = Session::global().await.unwrap().engine().docker().clone();
    let repo = format!("{REGISTRY}/seaworthy-test/private");
    let tag = format!("t{}", std::process::id());
    let image = format!("{repo}:{tag}");
    push_and_untag(&docker, common::BUSYBOX, &repo, &tag).await;
    let dir = std::env::temp_dir().join(format!("sw-registry-auth-{}", std::process::id()));
    let key = format!("https://{REGISTRY}");

    // No credentials anywhere: the error names the registry and what to do.
    use_docker_config(&dir, None);
    let err = start(&image).await.unwrap_err().to_string();
    assert!(err.contains(&image), "{err}");
    assert!(
        err.contains(&format!(
            "the registry {REGISTRY} wants credentials and none were found for it"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("docker login {REGISTRY}")), "{err}");

    // Wrong credentials: the error says where they came from.
    use_docker_config(&dir, Some(&auth_config(&key, USER, "wrong")));
    let err = start(&image).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "refused the credentials from auths[\"{key}\"] in {}",
            dir.join("config.json").display()
        )),
        "{err}"
    );

    // The right ones in the config file: the image is pulled and runs.
    use_docker_config(&dir, Some(&auth_config(&key, USER, &password)));
    let c = start(&image).await.unwrap();
    assert_eq!(c.image(), image);
    c.remove().await.unwrap();
    untag(&docker, &image).await;

    // DOCKER_AUTH_CONFIG, as CI systems give it, with no config file.
    use_docker_config(&dir, None);
    // SAFETY: as in use_docker_config.
    unsafe { std::env::set_var("DOCKER_AUTH_CONFIG", auth_config(&key, USER, &password)) };
    let c = start(&image).await.unwrap();
    c.remove().await.unwrap();
    untag(&docker, &image).await;
    std::fs::remove_dir_all(&dir).unwrap();
}
