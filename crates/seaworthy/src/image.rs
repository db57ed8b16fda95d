//! Images: presence checks and pulls, one pull per image however many starts ask for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::{CreateImageOptions, RemoveImageOptions, TagImageOptions};
use futures_util::StreamExt;

mod credentials;
pub(crate) mod progress;

use crate::engine::Engine;
use crate::error::{status_of, Error, Result};
use crate::reference::ImageRef;
use crate::session::Session;

/// The pulls of this process: per engine endpoint and image reference, a lock held while one is
/// pulled, guarding when the last pull of it that succeeded began. Shared by every session of
/// the process, so that two sessions on one engine pull an image once.
type PullLocks = HashMap<(String, String), Arc<tokio::sync::Mutex<Option<Instant>>>>;
static PULLS: Mutex<Option<PullLocks>> = Mutex::new(None);

/// The lock that makes the concurrent pulls of `reference` on `endpoint` one pull.
fn pull_lock(endpoint: &str, reference: &str) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
    PULLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .entry((endpoint.to_string(), reference.to_string()))
        .or_default()
        .clone()
}

/// When to pull an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the image is not present locally (the default).
    #[default]
    Missing,
    /// Always pull, even when present.
    Always,
    /// Never pull: a missing image is an error.
    Never,
}

/// Makes sure `image` is present locally, pulling it per `policy`. Concurrent calls for the same
/// image on one engine pull it once, whichever sessions of the process they come from: the
/// others wait for that pull (with [`PullPolicy::Always`] too, when it began after they asked).
/// A `platform` goes with the pull; a local image is taken whatever its platform (the create,
/// which gets the platform too, refuses a mismatch).
pub(crate) async fn ensure_image(
    session: &Session,
    image: &ImageRef,
    policy: PullPolicy,
    platform: Option<&str>,
) -> Result<()> {
    let reference = image.to_string();
    if policy != PullPolicy::Always && session.image_known_present(&reference) {
        return Ok(());
    }
    if policy != PullPolicy::Always && image_present(session, &reference).await? {
        session.remember_image_present(&reference);
        return Ok(());
    }
    if policy == PullPolicy::Never {
        return Err(Error::Image {
            image: reference,
            reason: "not present locally, and the pull policy is Never".into(),
        });
    }
    let asked = Instant::now();
    let lock_key = match platform {
        Some(platform) => format!("{reference} ({platform})"),
        None => reference.clone(),
    };
    let lock = pull_lock(session.engine().endpoint(), &lock_key);
    let mut last_pull = lock.lock().await;
    // Another task, of this session or another, may have pulled it while this one waited.
    let pulled_meanwhile = match policy {
        PullPolicy::Always => last_pull.is_some_and(|began| began >= asked),
        _ => image_present(session, &reference).await?,
    };
    if !pulled_meanwhile {
        let began = Instant::now();
        pull(session.engine(), image, platform).await?;
        *last_pull = Some(began);
    }
    session.remember_image_present(&reference);
    Ok(())
}

/// Like [`ensure_image`], by `deadline` (`timeout` after the start was asked for): a pull still
/// running then is abandoned (the engine stops it when the request goes away), and the error
/// names the image.
pub(crate) async fn ensure_image_until(
    session: &Session,
    image: &ImageRef,
    policy: PullPolicy,
    platform: Option<&str>,
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    let ensured = ensure_image(session, image, policy, platform);
    match tokio::time::timeout_at(deadline.into(), ensured).await {
        Ok(done) => done,
        Err(_) => Err(Error::Image {
            image: image.to_string(),
            reason: format!(
                "not present, and not pulled within the startup timeout ({timeout:?}); the pull \
                 was abandoned (is the registry reachable? with_startup_timeout allows more time)"
            ),
        }),
    }
}

async fn image_present(session: &Session, reference: &str) -> Result<bool> {
    match session.engine().docker().inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(e) if status_of(&e) == Some(404) => Ok(false),
        Err(e) => Err(Error::docker(format!("inspect image {reference}"), e)),
    }
}

impl Engine {
    /// Pulls `image` (`name[:tag]` or `name@digest`) as a container start pulls a missing one:
    /// credentials as the Docker CLI finds them, a Docker Hub image through the registry mirror
    /// when one is set, the variant for `platform` (`linux/arm64`) when given, else for
    /// `DOCKER_DEFAULT_PLATFORM`, and progress on stderr (a live bar on a terminal, lines
    /// otherwise, nothing with `SEAWORTHY_QUIET=1`). A refused pull's error names the registry
    /// and what to do.
    pub async fn pull_image(&self, image: &str, platform: Option<&str>) -> Result<()> {
        let reference = ImageRef::parse(image)?;
        let default = default_platform();
        pull(self, &reference, platform.or(default.as_deref())).await
    }
}

/// Pulls `image` (its variant for `platform` when given), showing its progress (see
/// [`progress`]: a live bar on a terminal, lines otherwise, nothing with `SEAWORTHY_QUIET=1`).
pub(crate) async fn pull(engine: &Engine, image: &ImageRef, platform: Option<&str>) -> Result<()> {
    let reference = image.to_string();
    let started = Instant::now();
    // A Docker Hub image tagged (not pinned by digest) comes through the mirror when one is set.
    let mirror = match (image.registry(), image.digest()) {
        (None, None) => registry_mirror()?,
        _ => None,
    };
    let from_image = match &mirror {
        Some(mirror) => format!("{mirror}/{}", hub_repository(image.repository())),
        None => image.name(),
    };
    let tag = image.digest().or(image.tag()).map(str::to_string);
    let options = CreateImageOptions {
        from_image: Some(from_image.clone()),
        tag: tag.clone(),
        platform: platform.unwrap_or_default().to_string(),
        ..Default::default()
    };
    let source_registry = match &mirror {
        Some(mirror) => mirror.split('/').next(),
        None => image.registry(),
    };
    let auth = credentials::for_registry(source_registry).await?;
    if let Some(auth) = &auth {
        tracing::debug!(image = %reference, source = %auth.source, "pulling with credentials");
    }
    let mut stream = engine.docker().create_image(
        Some(options),
        None,
        auth.as_ref().map(|a| a.credentials.clone()),
    );
    let mut shown = progress::PullProgress::start(&reference, progress::Display::from_env());
    while let Some(item) = stream.next().await {
        let failed = |detail: String| Error::Image {
            image: reference.clone(),
            reason: format!(
                "pull failed: {detail}{}",
                credentials::hint(source_registry, &detail, auth.as_ref())
            ),
        };
        let info = item.map_err(|e| failed(e.to_string()))?;
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(failed(detail));
        }
        let detail = info.progress_detail.unwrap_or_default();
        let bytes = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
        shown.update(
            info.id.as_deref().unwrap_or_default(),
            info.status.as_deref().unwrap_or_default(),
            bytes(detail.current),
            bytes(detail.total),
        );
    }
    if mirror.is_some() {
        // Under the name the definition gave, and not also under the mirror's.
        let tag = tag.unwrap_or_else(|| "latest".into());
        let mirrored = format!("{from_image}:{tag}");
        let docker = engine.docker();
        docker
            .tag_image(
                &mirrored,
                Some(TagImageOptions {
                    repo: Some(image.name()),
                    tag: Some(tag),
                }),
            )
            .await
            .map_err(|e| Error::docker(format!("tag {mirrored} as {reference}"), e))?;
        docker
            .remove_image(&mirrored, None::<RemoveImageOptions>, None)
            .await
            .map_err(|e| Error::docker(format!("untag {mirrored}"), e))?;
    }
    shown.finish(started.elapsed());
    Ok(())
}

/// The repository of a Docker Hub image as a mirror serves it (`redis` is `library/redis`).
fn hub_repository(repository: &str) -> String {
    if repository.contains('/') {
        repository.to_string()
    } else {
        format!("library/{repository}")
    }
}

/// The registry mirror for Docker Hub images: `SEAWORTHY_REGISTRY_MIRROR`, else `mirror` in
/// the `[registry]` table of `seaworthy.toml` (`host[:port][/path]`, no scheme).
fn registry_mirror() -> Result<Option<String>> {
    let from_env = std::env::var("SEAWORTHY_REGISTRY_MIRROR")
        .ok()
        .filter(|m| !m.trim().is_empty());
    let mirror = match from_env {
        Some(m) => Some(m),
        None => crate::substitution::config_setting("registry", "mirror")?,
    };
    let Some(mirror) = mirror else {
        return Ok(None);
    };
    let mirror = mirror.trim().trim_end_matches('/').to_string();
    if mirror.contains("://") || mirror.is_empty() {
        return Err(Error::invalid(
            "registry mirror",
            &mirror,
            "give it as host[:port][/path], without a scheme (the engine speaks HTTPS to it)",
        ));
    }
    Ok(Some(mirror))
}

/// The platform of a definition that names none: `DOCKER_DEFAULT_PLATFORM`, as for `docker run`.
pub(crate) fn default_platform() -> Option<String> {
    std::env::var("DOCKER_DEFAULT_PLATFORM")
        .ok()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
}
