//! Image builds for tests: a Dockerfile and its context directory become an image, built once per
//! content.
//!
//! The model: an [`ImageBuild`] describes what to build (context directory, Dockerfile, build
//! arguments, target stage, labels). [`ImageBuild::build`] sends the context to the engine as a tar
//! archive and returns a [`BuiltImage`]. Before building, it hashes everything that decides the
//! result — the context's paths, file types, permission bits, link targets and contents (after
//! `.dockerignore`), the Dockerfile, the build arguments, the target and the labels — and looks for
//! an image labelled [`LABEL_BUILD_HASH`] with that hash: when one exists, nothing is built.
//! Modification times are not part of the hash, so a fresh checkout of unchanged files reuses the
//! image.
//!
//! Ownership follows the session model: the image carries the session's labels, and the session
//! that built it removes it at teardown (with its containers, networks and volumes), unless
//! [`BuiltImage::keep`] was called or `SEAWORTHY_KEEP=1` is set. An image found in the cache is
//! used but not owned: whoever built it decides when it goes. A failed build returns
//! [`Error::Build`], which names the Dockerfile and carries the last lines of the build's output.
//!
//! The engine's classic builder is used (it is what Engine API 1.41 offers without a BuildKit
//! session), so `RUN` steps see the network given by [`ImageBuild::with_network_mode`] (the
//! engine's default bridge when unset).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::query_parameters::{BuildImageOptions, ListImagesOptions, TagImageOptions};
use futures_util::StreamExt;

mod context;

use crate::definition::ContainerDefinition;
use crate::error::{status_of, Error, Result};
use crate::runtime::on_runtime;
use crate::session::{ResourceKind, Session};

use context::prepare;

/// Label carrying the content hash of a built image (the cache key).
pub const LABEL_BUILD_HASH: &str = "io.seaworthy.build-hash";

/// Lines of build output carried by a failed build's error.
const LOG_TAIL_LINES: usize = 40;

/// The name under which an inline Dockerfile travels in the context archive.
const INLINE_DOCKERFILE: &str = ".seaworthy.Dockerfile";

/// Where the Dockerfile comes from.
#[derive(Debug, Clone)]
enum Dockerfile {
    /// A path relative to the context directory (or absolute).
    Path(PathBuf),
    /// The Dockerfile's text.
    Inline(String),
}

/// Describes an image to build from a Dockerfile and a context directory.
///
/// ```no_run
/// # async fn demo() -> seaworthy::Result<()> {
/// use seaworthy::ImageBuild;
/// let image = ImageBuild::new("tests/fixtures/app")
///     .with_build_arg("VERSION", "1.2")
///     .with_target("runtime")
///     .build()
///     .await?;
/// let app = image.definition().with_port(8080).start().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ImageBuild {
    context: Option<PathBuf>,
    dockerfile: Dockerfile,
    tag: Option<String>,
    build_args: BTreeMap<String, String>,
    target: Option<String>,
    labels: BTreeMap<String, String>,
    network_mode: Option<String>,
}

impl ImageBuild {
    /// Builds the `Dockerfile` of directory `context`, sending that directory as the context.
    pub fn new(context: impl Into<PathBuf>) -> Self {
        ImageBuild {
            context: Some(context.into()),
            dockerfile: Dockerfile::Path(PathBuf::from("Dockerfile")),
            tag: None,
            build_args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
            network_mode: None,
        }
    }

    /// Builds the Dockerfile `text` with an empty context (no `COPY` from the host).
    pub fn inline(text: impl Into<String>) -> Self {
        ImageBuild {
            context: None,
            dockerfile: Dockerfile::Inline(text.into()),
            tag: None,
            build_args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
            network_mode: None,
        }
    }

    /// Uses the Dockerfile at `path`: relative to the context directory, or absolute (it may lie
    /// outside the context, like `docker build -f`).
    pub fn with_dockerfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.dockerfile = Dockerfile::Path(path.into());
        self
    }

    /// Uses the Dockerfile `text` instead of a file, with the context directory still sent.
    pub fn with_dockerfile_contents(mut self, text: impl Into<String>) -> Self {
        self.dockerfile = Dockerfile::Inline(text.into());
        self
    }

    /// Tags the image `tag` (`name` or `name:tag`). The default is
    /// `seaworthy-build/<context directory name>:<first 16 hex digits of the content hash>`.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Sets a build argument (`ARG` in the Dockerfile).
    pub fn with_build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.build_args.insert(key.into(), value.into());
        self
    }

    /// Builds only up to stage `target` of a multi-stage Dockerfile.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Adds a label to the image (the session's labels and [`LABEL_BUILD_HASH`] are always added).
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the network of `RUN` steps (`none`, `host`, a network name).
    pub fn with_network_mode(mut self, mode: impl Into<String>) -> Self {
        self.network_mode = Some(mode.into());
        self
    }

    /// How the Dockerfile is named in messages: its path, or `inline Dockerfile`.
    pub fn dockerfile_name(&self) -> String {
        match (&self.dockerfile, &self.context) {
            (Dockerfile::Inline(_), _) => "inline Dockerfile".to_string(),
            (Dockerfile::Path(p), Some(ctx)) if p.is_relative() => {
                ctx.join(p).display().to_string()
            }
            (Dockerfile::Path(p), _) => p.display().to_string(),
        }
    }

    /// Builds the image in the global session (or finds it already built).
    pub async fn build(self) -> Result<BuiltImage> {
        let session = Session::global().await?;
        self.build_in(&session).await
    }

    /// Like [`build`](Self::build), in a given session.
    pub async fn build_in(self, session: &Session) -> Result<BuiltImage> {
        let session = session.clone();
        on_runtime(async move { build_here(self, session).await }).await
    }
}

/// An image built (or found built) by [`ImageBuild`].
///
/// It stays until its session tears down (it is not removed when this handle drops, so containers
/// of it can outlive the handle); [`BuiltImage::remove`] removes it earlier, and
/// [`BuiltImage::keep`] leaves it in place for later runs to reuse.
#[derive(Debug)]
pub struct BuiltImage {
    session: Session,
    id: String,
    reference: String,
    hash: String,
    cached: bool,
    owned: bool,
}

impl BuiltImage {
    /// The engine's image id (`sha256:...`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tag to use in a [`ContainerDefinition`] (`seaworthy-build/app:0123456789abcdef`).
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The content hash (the value of [`LABEL_BUILD_HASH`]).
    pub fn content_hash(&self) -> &str {
        &self.hash
    }

    /// Whether an image with the same content hash existed, so nothing was built.
    pub fn was_cached(&self) -> bool {
        self.cached
    }

    /// Whether this session built the image and removes it at teardown.
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// A container definition of this image.
    pub fn definition(&self) -> ContainerDefinition {
        ContainerDefinition::new(self.reference.clone())
    }

    /// Leaves the image in place after the session ends (it keeps its labels, so `seaworthy gc`
    /// can still remove it). Returns its reference.
    pub fn keep(self) -> String {
        self.session.untrack(ResourceKind::Image, &self.id);
        self.reference
    }

    /// Removes the image now (with force), if this session built it; an image found in the cache
    /// is left alone.
    pub async fn remove(self) -> Result<()> {
        if !self.owned {
            return Ok(());
        }
        self.session
            .remove_resource(ResourceKind::Image, self.id, self.reference)
            .await
    }
}

async fn build_here(build: ImageBuild, session: Session) -> Result<BuiltImage> {
    let dockerfile_name = build.dockerfile_name();
    let for_prepare = build.clone();
    let prepared = tokio::task::spawn_blocking(move || prepare(&for_prepare))
        .await
        .map_err(|e| {
            Error::io(
                "prepare the build context",
                std::io::Error::other(e.to_string()),
            )
        })??;
    let reference = match &build.tag {
        Some(tag) if tag.contains(':') && !tag.ends_with(':') => tag.clone(),
        Some(tag) => format!("{}:latest", tag.trim_end_matches(':')),
        None => format!(
            "seaworthy-build/{}:{}",
            default_repository(build.context.as_deref()),
            &prepared.hash[..16]
        ),
    };
    let docker = session.engine().docker();

    if let Some(id) = cached_image(&session, &prepared.hash).await? {
        tag_if_needed(docker, &id, &reference).await?;
        tracing::debug!(image = %reference, hash = %prepared.hash, "build skipped: cached");
        return Ok(BuiltImage {
            session: session.clone(),
            id,
            reference,
            hash: prepared.hash,
            cached: true,
            owned: false,
        });
    }

    let mut labels: std::collections::HashMap<String, String> =
        build.labels.clone().into_iter().collect();
    labels.extend(session.labels());
    labels.insert(LABEL_BUILD_HASH.to_string(), prepared.hash.clone());
    let options = BuildImageOptions {
        dockerfile: prepared.dockerfile_in_archive.clone(),
        t: Some(reference.clone()),
        buildargs: (!build.build_args.is_empty())
            .then(|| build.build_args.clone().into_iter().collect()),
        labels: Some(labels),
        target: build.target.clone().unwrap_or_default(),
        networkmode: build.network_mode.clone(),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let started = Instant::now();
    let mut log = BuildLog::default();
    let mut shown = crate::image::progress::BuildProgress::start(
        &reference,
        crate::image::progress::Display::from_env(),
    );
    let failed = |log: &BuildLog, reason: String| Error::Build {
        image: reference.clone(),
        dockerfile: dockerfile_name.clone(),
        reason,
        log_tail: log.tail(LOG_TAIL_LINES),
    };
    {
        let mut stream = docker.build_image(
            options,
            None,
            Some(bollard::body_full(prepared.archive.into())),
        );
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                        let before = log.lines.len();
                        log.push(text);
                        for line in &log.lines[before..] {
                            shown.line(line);
                        }
                    }
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        return Err(failed(&log, message));
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(failed(&log, error));
                }
                Err(e) => return Err(failed(&log, e.to_string())),
            }
        }
    }
    let id = docker
        .inspect_image(&reference)
        .await
        .map_err(|e| failed(&log, format!("the built image cannot be inspected: {e}")))?
        .id
        .unwrap_or_else(|| reference.clone());
    session.track(ResourceKind::Image, &id, &reference);
    shown.finish(started.elapsed());
    tracing::debug!(image = %reference, %id, elapsed = ?started.elapsed(), "built");
    Ok(BuiltImage {
        session,
        id,
        reference,
        hash: prepared.hash,
        cached: false,
        owned: true,
    })
}

/// The id of an image labelled with `hash`, if there is one.
async fn cached_image(session: &Session, hash: &str) -> Result<Option<String>> {
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_BUILD_HASH}={hash}")],
    )]);
    let images = session
        .engine()
        .docker()
        .list_images(Some(ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker(format!("list images labelled {LABEL_BUILD_HASH}={hash}"), e))?;
    Ok(images.into_iter().next().map(|i| i.id))
}

/// Tags image `id` as `reference` unless that tag already names it.
async fn tag_if_needed(docker: &bollard::Docker, id: &str, reference: &str) -> Result<()> {
    if let Ok(info) = docker.inspect_image(reference).await {
        if info.id.as_deref() == Some(id) {
            return Ok(());
        }
    }
    let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
    match docker
        .tag_image(
            id,
            Some(TagImageOptions {
                repo: Some(repo.to_string()),
                tag: Some(tag.to_string()),
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if status_of(&e) == Some(404) => Err(Error::Image {
            image: reference.to_string(),
            reason: format!("the cached build {id} disappeared while being tagged"),
        }),
        Err(e) => Err(Error::docker(format!("tag image {id} as {reference}"), e)),
    }
}

/// The repository part of the default tag: the context directory's name, made valid.
fn default_repository(context: Option<&Path>) -> String {
    let Some(context) = context else {
        return "inline".to_string();
    };
    let context = context
        .canonicalize()
        .unwrap_or_else(|_| context.to_path_buf());
    let raw = context
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: String = raw
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if name.is_empty() {
        "context".to_string()
    } else {
        name
    }
}

/// The build's output, split into lines.
#[derive(Default)]
struct BuildLog {
    lines: Vec<String>,
    partial: String,
}

impl BuildLog {
    fn push(&mut self, text: &str) {
        self.partial.push_str(text);
        while let Some(pos) = self.partial.find('\n') {
            let line = self.partial[..pos].trim_end_matches('\r').to_string();
            self.partial.drain(..=pos);
            tracing::trace!(line = %line, "build output");
            self.lines.push(line);
        }
    }

    fn tail(&self, n: usize) -> Vec<String> {
        let mut all: Vec<String> = self.lines.clone();
        if !self.partial.trim().is_empty() {
            all.push(self.partial.trim_end().to_string());
        }
        let skip = all.len().saturating_sub(n);
        all.split_off(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags_are_valid_repository_names() {
        assert_eq!(default_repository(Some(Path::new("/x/My App!"))), "my-app");
        assert_eq!(default_repository(None), "inline");
        assert_eq!(default_repository(Some(Path::new("/"))), "context");
    }

    #[test]
    fn the_log_tail_keeps_the_last_lines() {
        let mut log = BuildLog::default();
        log.push("Step 1/2 : FROM x\n ---> abc\nStep 2/2 : RUN false\n");
        log.push("partial");
        assert_eq!(log.tail(2), vec!["Step 2/2 : RUN false", "partial"]);
    }
}
