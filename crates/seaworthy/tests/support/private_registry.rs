//! The private registry of `.ci/engines` (Debian's docker-registry with TLS and htpasswd on
//! 10.214.0.1:5443, the TLS engine's bridge address: see `.ci/engines` for why not 127.0.0.1).
#![allow(dead_code)]

use futures_util::StreamExt;
use seaworthy::bollard::auth::DockerCredentials;
use seaworthy::bollard::query_parameters::{PushImageOptions, RemoveImageOptions, TagImageOptions};
use seaworthy::bollard::Docker;

/// The registry's address.
pub const REGISTRY: &str = "10.214.0.1:5443";
/// Its user.
pub const USER: &str = "seaworthy";

/// The user's password; a clear failure when the registry was never set up.
pub use seaworthy_testkit::registry_password as password;

/// `config.json` text with the user's credentials for the registry under `key`.
pub fn auth_config(key: &str, user: &str, password: &str) -> String {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!(r#"{{"auths": {{"{key}": {{"auth": "{auth}"}}}}}}"#)
}

/// Pushes local image `source` to the registry as `repo:tag` (with the user's credentials), then
/// removes that tag locally so that using it pulls.
pub async fn push_and_untag(docker: &Docker, source: &str, repo: &str, tag: &str) {
    docker
        .tag_image(
            source,
            Some(TagImageOptions {
                repo: Some(repo.into()),
                tag: Some(tag.into()),
            }),
        )
        .await
        .unwrap();
    let mut push = docker.push_image(
        repo,
        Some(PushImageOptions {
            tag: Some(tag.into()),
            ..Default::default()
        }),
        Some(DockerCredentials {
            username: Some(USER.into()),
            password: Some(password()),
            serveraddress: Some(REGISTRY.into()),
            ..Default::default()
        }),
    );
    while let Some(step) = push.next().await {
        let step = step.unwrap();
        assert!(step.error_detail.is_none(), "push: {step:?}");
    }
    untag(docker, &format!("{repo}:{tag}")).await;
}

/// Removes the local tag `image` (the layers stay while other tags use them).
pub async fn untag(docker: &Docker, image: &str) {
    docker
        .remove_image(image, None::<RemoveImageOptions>, None)
        .await
        .unwrap();
}
