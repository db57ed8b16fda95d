//! Pulls from a private registry (Debian's docker-registry on 10.214.0.1:5443 with TLS and
//! htpasswd, started by `bash .ci/engines start`): refused without credentials, with an error
//! naming the registry and what to do; refused with wrong ones, naming where they came from;
//! done with the credentials of a Docker config file and of DOCKER_AUTH_CONFIG. Its own binary:
//! it sets DOCKER_CONFIG and DOCKER_AUTH_CONFIG, which no other test may see.

mod common;

use base64::Engine as _;
use futures_util::StreamExt;
use seaworthy::bollard::auth::DockerCredentials;
use seaworthy::bollard::query_parameters::{PushImageOptions, RemoveImageOptions, TagImageOptions};
use seaworthy::{ContainerDefinition, PullPolicy, Session, Wait};

/// The private registry of `.ci/engines` (on the TLS engine's bridge address: see there why not
/// on 127.0.0.1).
const REGISTRY: &str = "10.214.0.1:5443";
const USER: &str = "seaworthy";

fn password() -> String {
    let path = std::env::var("SEAWORTHY_TEST_REGISTRY_PASSWORD_FILE")
        .unwrap_or_else(|_| "/var/lib/seaworthy-ci/registry/password".into());
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| {
            panic!("{path}: {e}: run `bash .ci/engines start` to start the private registry")
        })
        .trim()
        .to_string()
}

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

fn auth_config(user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!(r#"{{"auths": {{"https://{REGISTRY}": {{"auth": "{auth}"}}}}}}"#)
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
    docker
        .tag_image(
            common::BUSYBOX,
            Some(TagImageOptions {
                repo: Some(repo.clone()),
                tag: Some(tag.clone()),
            }),
        )
        .await
        .unwrap();
    let credentials = DockerCredentials {
        username: Some(USER.into()),
        password: Some(password.clone()),
        serveraddress: Some(REGISTRY.into()),
        ..Default::default()
    };
    let mut push = docker.push_image(
        &repo,
        Some(PushImageOptions {
            tag: Some(tag.clone()),
            ..Default::default()
        }),
        Some(credentials),
    );
    while let Some(step) = push.next().await {
        let step = step.unwrap();
        assert!(step.error_detail.is_none(), "push: {step:?}");
    }
    let untag = || async {
        docker
            .remove_image(&image, None::<RemoveImageOptions>, None)
            .await
            .unwrap();
    };
    untag().await;
    let dir = std::env::temp_dir().join(format!("sw-registry-auth-{}", std::process::id()));

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
    use_docker_config(&dir, Some(&auth_config(USER, "wrong")));
    let err = start(&image).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "refused the credentials from auths[\"https://{REGISTRY}\"] in {}",
            dir.join("config.json").display()
        )),
        "{err}"
    );

    // The right ones in the config file: the image is pulled and runs.
    use_docker_config(&dir, Some(&auth_config(USER, &password)));
    let c = start(&image).await.unwrap();
    assert_eq!(c.image(), image);
    c.remove().await.unwrap();
    untag().await;

    // DOCKER_AUTH_CONFIG, as CI systems give it, with no config file.
    use_docker_config(&dir, None);
    // SAFETY: as in use_docker_config.
    unsafe { std::env::set_var("DOCKER_AUTH_CONFIG", auth_config(USER, &password)) };
    let c = start(&image).await.unwrap();
    c.remove().await.unwrap();
    untag().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
