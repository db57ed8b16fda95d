//! Images: presence checks and pulls, one pull per image however many starts ask for it.

use std::time::Instant;

use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;

use crate::definition::PullPolicy;
use crate::error::{status_of, Error, Result};
use crate::reference::ImageRef;
use crate::session::Session;

/// Makes sure `image` is present locally, pulling it per `policy`. Concurrent calls for the same
/// image in one session pull it once: the others wait for that pull.
pub(crate) async fn ensure_image(
    session: &Session,
    image: &ImageRef,
    policy: PullPolicy,
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
    let lock = session.pull_lock(&reference);
    let _guard = lock.lock().await;
    // Another task may have pulled it while this one waited.
    if policy != PullPolicy::Always && image_present(session, &reference).await? {
        return Ok(());
    }
    pull(session, image).await?;
    session.remember_image_present(&reference);
    Ok(())
}

async fn image_present(session: &Session, reference: &str) -> Result<bool> {
    match session.engine().docker().inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(e) if status_of(&e) == Some(404) => Ok(false),
        Err(e) => Err(Error::docker(format!("inspect image {reference}"), e)),
    }
}

/// Pulls `image`, reporting progress on stderr (one line per layer state change) and in tracing.
pub(crate) async fn pull(session: &Session, image: &ImageRef) -> Result<()> {
    let reference = image.to_string();
    let started = Instant::now();
    eprintln!("seaworthy: pulling {reference}");
    let options = CreateImageOptions {
        from_image: Some(image.name()),
        tag: image.digest().or(image.tag()).map(str::to_string),
        ..Default::default()
    };
    let mut stream = session
        .engine()
        .docker()
        .create_image(Some(options), None, None);
    let mut last_status: std::collections::HashMap<String, String> = Default::default();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| Error::Image {
            image: reference.clone(),
            reason: format!("pull failed: {e}"),
        })?;
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::Image {
                image: reference,
                reason: format!("pull failed: {detail}"),
            });
        }
        let status = info.status.unwrap_or_default();
        let layer = info.id.unwrap_or_default();
        // Report state changes, not every progress tick.
        if last_status.get(&layer) != Some(&status) {
            tracing::info!(image = %reference, layer, status, "pull progress");
            if !layer.is_empty()
                && !status.starts_with("Downloading")
                && !status.starts_with("Extracting")
            {
                eprintln!("seaworthy: {reference}: {layer}: {status}");
            }
            last_status.insert(layer, status);
        }
    }
    eprintln!("seaworthy: pulled {reference} in {:.1?}", started.elapsed());
    Ok(())
}
