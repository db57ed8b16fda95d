//! The catalogue of test images and the `images` task: deciding which
//! images to build, building them in order and reporting progress.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::builders::{self, Kind};
use crate::cmd::Log;
use crate::docker::{self, ImageState};
use crate::recipe;

/// The repository (name prefix) of every test image.
pub const PREFIX: &str = "seaworthy-test";

/// One test image.
#[derive(Debug)]
pub struct Image {
    /// Short name: the image is `seaworthy-test/<name>:latest` and its
    /// recipe is in `tests/images/<name>/`.
    pub name: &'static str,
    /// The image it is built on, by short name.
    pub base: Option<&'static str>,
    /// How it is built.
    pub kind: Kind,
    /// One line on what it is for.
    pub about: &'static str,
}

impl Image {
    /// The image's repository, `seaworthy-test/<name>`.
    pub fn repository(&self) -> String {
        format!("{PREFIX}/{}", self.name)
    }

    /// The image's tag, `seaworthy-test/<name>:latest`.
    pub fn tag(&self) -> String {
        format!("{}:latest", self.repository())
    }
}

/// Every test image, each after its base.
pub const IMAGES: &[Image] = &[
    Image {
        name: "base",
        base: None,
        kind: Kind::Debian,
        about: "Debian bookworm with all the services (mmdebstrap)",
    },
    Image {
        name: "busybox",
        base: None,
        kind: Kind::Busybox,
        about: "static busybox and its applets, nothing else",
    },
    Image {
        name: "scratch",
        base: None,
        kind: Kind::Scratch,
        about: "no shell: a static /pause program and a few files",
    },
    Image {
        name: "postgres",
        base: Some("base"),
        kind: Kind::Dockerfile,
        about: "PostgreSQL 15, like the official postgres image",
    },
    Image {
        name: "redis",
        base: Some("base"),
        kind: Kind::Dockerfile,
        about: "Redis 7, like the official redis image",
    },
    Image {
        name: "rabbitmq",
        base: Some("base"),
        kind: Kind::Dockerfile,
        about: "RabbitMQ 3.10 with the management plugin",
    },
    Image {
        name: "nginx",
        base: Some("base"),
        kind: Kind::Dockerfile,
        about: "nginx serving a welcome page and /health",
    },
    Image {
        name: "memcached",
        base: Some("base"),
        kind: Kind::Dockerfile,
        about: "memcached in the foreground",
    },
    Image {
        name: "mariadb",
        base: Some("base"),
        kind: Kind::Dockerfile,
        about: "MariaDB 10.11, like the official mariadb image",
    },
    Image {
        name: "mosquitto",
        base: Some("base"),
        kind: Kind::Dockerfile,
        about: "the Mosquitto MQTT broker with persistence",
    },
    Image {
        name: "nats",
        base: Some("base"),
        kind: Kind::Dockerfile,
        about: "the NATS server with JetStream",
    },
    Image {
        name: "etcd",
        base: Some("base"),
        kind: Kind::Dockerfile,
        about: "a single-member etcd with its HTTP/JSON gateway",
    },
];

/// Where things are: the recipes, and the scratch space for builds.
pub struct Paths {
    /// `tests/images/`: one directory of recipe files per image.
    pub recipes: PathBuf,
    /// `target/xtask-images/`: build scratch space and logs.
    pub scratch: PathBuf,
}

impl Paths {
    /// The paths for the workspace at `root`. The scratch space follows
    /// `CARGO_TARGET_DIR` when it is set.
    pub fn new(root: PathBuf) -> Self {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|dir| {
                if dir.is_absolute() {
                    dir
                } else {
                    root.join(dir)
                }
            })
            .unwrap_or_else(|| root.join("target"));
        Self {
            recipes: root.join("tests").join("images"),
            scratch: target.join("xtask-images"),
        }
    }

    /// The recipe directory of `image`.
    pub fn recipe_dir(&self, image: &Image) -> PathBuf {
        self.recipes.join(image.name)
    }

    /// The build log of `image`.
    fn log_file(&self, image: &Image) -> PathBuf {
        self.scratch
            .join("logs")
            .join(format!("{}.log", image.name))
    }

    /// The scratch directory of `image`'s build. It is unique to this
    /// process, so that concurrent runs of the task do not collide.
    fn work_dir(&self, image: &Image) -> PathBuf {
        self.scratch
            .join(format!("{}.{}", image.name, std::process::id()))
    }
}

/// Finds an image by short name, repository or tag.
fn find(name: &str) -> Result<&'static Image> {
    let short = name.strip_suffix(":latest").unwrap_or(name);
    let short = short.strip_prefix(&format!("{PREFIX}/")).unwrap_or(short);
    match IMAGES.iter().find(|image| image.name == short) {
        Some(image) => Ok(image),
        None => {
            let known: Vec<&str> = IMAGES.iter().map(|image| image.name).collect();
            bail!(
                "unknown image `{name}`; the images are: {}",
                known.join(", ")
            )
        }
    }
}

/// The base of `image`.
fn base_of(image: &Image) -> Result<Option<&'static Image>> {
    image.base.map(find).transpose()
}

/// The images named (all of them if `names` is empty) plus, recursively,
/// their bases; in catalogue order, so each comes after its base. The second
/// set holds the names the user asked for.
fn select(names: &[String]) -> Result<(Vec<&'static Image>, BTreeSet<&'static str>)> {
    let requested: BTreeSet<&'static str> = if names.is_empty() {
        IMAGES.iter().map(|image| image.name).collect()
    } else {
        names
            .iter()
            .map(|name| find(name).map(|image| image.name))
            .collect::<Result<_>>()?
    };
    let mut needed = requested.clone();
    let mut pending: Vec<&'static str> = requested.iter().copied().collect();
    while let Some(name) = pending.pop() {
        if let Some(base) = base_of(find(name)?)? {
            if needed.insert(base.name) {
                pending.push(base.name);
            }
        }
    }
    let ordered = IMAGES
        .iter()
        .filter(|image| needed.contains(image.name))
        .collect();
    Ok((ordered, requested))
}

/// The recipe hash of `image`, which covers its base's recipe hash.
fn recipe_hash(paths: &Paths, image: &Image) -> Result<String> {
    let base = match base_of(image)? {
        Some(base) => Some(recipe_hash(paths, base)?),
        None => None,
    };
    let dir = paths.recipe_dir(image);
    if !dir.is_dir() {
        bail!("the recipe directory {} is missing", dir.display());
    }
    recipe::hash(&dir, &builders::parameters(image.kind), base.as_deref())
        .with_context(|| format!("cannot hash the recipe of {}", image.repository()))
}

/// The first 8 hex digits of a recipe hash, for messages.
fn short(hash: &str) -> &str {
    hash.get(..8).unwrap_or(hash)
}

/// A duration as seconds with one decimal, such as `12.3 s`.
fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// A size in bytes as megabytes, such as `12.3 MB`.
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Whether an image must be built, and why.
fn reason_to_build(state: &ImageState, hash: &str, force: bool) -> Option<String> {
    match state {
        ImageState::Missing => Some("image missing".to_string()),
        ImageState::Present { recipe: None, .. } => Some("image has no recipe label".to_string()),
        ImageState::Present {
            recipe: Some(built),
            ..
        } if built != hash => Some(format!("recipe changed, image has {}", short(built))),
        _ if force => Some("--force".to_string()),
        _ => None,
    }
}

/// `cargo xtask images [--force] [NAME...]`.
pub fn build(paths: &Paths, names: &[String], force: bool) -> Result<()> {
    let started = Instant::now();
    let (selected, requested) = select(names)?;
    docker::ensure_engine()?;

    let (mut built, mut fresh) = (0, 0);
    // Images replaced by new builds, removed at the end when unused.
    let mut replaced = Vec::new();
    for image in selected {
        let hash = recipe_hash(paths, image)?;
        let tag = image.tag();
        let state = docker::inspect(&tag)?;
        let forced = force && requested.contains(image.name);
        let Some(reason) = reason_to_build(&state, &hash, forced) else {
            println!(
                "{}: up to date (recipe {})",
                image.repository(),
                short(&hash)
            );
            fresh += 1;
            continue;
        };
        println!(
            "{}: building (recipe {}, {reason})...",
            image.repository(),
            short(&hash)
        );
        let image_started = Instant::now();
        let id = build_one(paths, image, &hash, forced)
            .with_context(|| format!("building {} failed", image.repository()))?;
        if let ImageState::Present { id: old, .. } = state {
            if old != id {
                replaced.push(old);
            }
        }
        let size = match docker::inspect(&tag)? {
            ImageState::Present { size, .. } => megabytes(size),
            ImageState::Missing => bail!("{tag} is missing right after it was built"),
        };
        println!(
            "{}: built in {} ({size})",
            image.repository(),
            seconds(image_started.elapsed())
        );
        built += 1;
    }
    if !replaced.is_empty() {
        // Derived images before their bases, which they keep in use.
        let log = Log::create(&paths.scratch.join("logs").join("cleanup.log"))?;
        for old in replaced.iter().rev() {
            docker::remove_if_unused(old, &log)?;
        }
    }
    println!(
        "images: {built} built, {fresh} up to date, in {}",
        seconds(started.elapsed())
    );
    Ok(())
}

/// Builds `image` with recipe hash `hash` and tags it; returns its ID.
/// `forced` builds do not reuse Docker's build cache.
fn build_one(paths: &Paths, image: &Image, hash: &str, forced: bool) -> Result<String> {
    let log = Log::create(&paths.log_file(image))?;
    let work = WorkDir::create(paths.work_dir(image))?;
    let recipe = paths.recipe_dir(image);
    let id = builders::build(image, &recipe, work.path(), hash, forced, &log)?;
    docker::tag(&id, &image.tag(), &log)?;
    Ok(id)
}

/// `cargo xtask images --list [NAME...]`.
pub fn list(paths: &Paths, names: &[String]) -> Result<()> {
    let (selected, _) = select(names)?;
    let engine = docker::ensure_engine();
    if let Err(err) = &engine {
        eprintln!("warning: {err:#}");
    }
    let mut rows = vec![["IMAGE", "BASE", "RECIPE", "STATE", "ABOUT"].map(String::from)];
    for image in selected {
        let hash = recipe_hash(paths, image)?;
        let state = if engine.is_ok() {
            match docker::inspect(&image.tag())? {
                ImageState::Missing => "missing".to_string(),
                ImageState::Present { size, recipe, .. } => {
                    let fresh = recipe.as_deref() == Some(hash.as_str());
                    let word = if fresh { "up to date" } else { "outdated" };
                    format!("{word}, {}", megabytes(size))
                }
            }
        } else {
            "unknown".to_string()
        };
        rows.push([
            image.tag(),
            image.base.unwrap_or("-").to_string(),
            short(&hash).to_string(),
            state,
            image.about.to_string(),
        ]);
    }
    let mut text = String::new();
    for row in rows {
        text.push_str(&format!(
            "{:<32} {:<6} {:<8} {:<22} {}\n",
            row[0], row[1], row[2], row[3], row[4]
        ));
    }
    // Not `print!`, which panics when stdout is a closed pipe (`| head`).
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

/// A build's scratch directory: emptied when created, removed when dropped
/// (whether the build succeeded or not; the log is kept elsewhere).
struct WorkDir {
    /// The directory.
    path: PathBuf,
}

impl WorkDir {
    /// Creates `path` as a new, empty directory.
    fn create(path: PathBuf) -> Result<Self> {
        remove_dir(&path)?;
        fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path })
    }

    /// The directory.
    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(err) = remove_dir(&self.path) {
            eprintln!("warning: {err:#}");
        }
    }
}

/// Removes `path` and everything in it, if it exists.
fn remove_dir(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot remove {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(images: &[&Image]) -> Vec<&'static str> {
        images.iter().map(|image| image.name).collect()
    }

    #[test]
    fn catalogue_is_consistent() {
        for (index, image) in IMAGES.iter().enumerate() {
            if let Some(base) = image.base {
                let position = IMAGES.iter().position(|other| other.name == base);
                assert!(
                    matches!(position, Some(p) if p < index),
                    "{} after its base",
                    image.name
                );
            }
            assert_eq!(
                image.kind == Kind::Dockerfile,
                image.base.is_some(),
                "{}",
                image.name
            );
        }
    }

    #[test]
    fn every_image_has_a_recipe() {
        let paths = Paths::new(crate::workspace_root().unwrap());
        for image in IMAGES {
            let hash = recipe_hash(&paths, image).unwrap();
            assert_eq!(hash.len(), 64);
        }
    }

    #[test]
    fn selection_adds_bases_in_order() {
        let (all, requested) = select(&[]).unwrap();
        assert_eq!(all.len(), IMAGES.len());
        assert_eq!(requested.len(), IMAGES.len());

        let wanted = [
            "seaworthy-test/redis:latest".to_string(),
            "postgres".to_string(),
        ];
        let (some, requested) = select(&wanted).unwrap();
        assert_eq!(names(&some), ["base", "postgres", "redis"]);
        assert!(!requested.contains("base"));

        let (alone, _) = select(&["scratch".to_string()]).unwrap();
        assert_eq!(names(&alone), ["scratch"]);

        assert!(select(&["mysql".to_string()]).is_err());
    }

    #[test]
    fn decides_when_to_build() {
        let hash = "a".repeat(64);
        let present = |recipe: Option<String>| ImageState::Present {
            id: "sha256:1".into(),
            size: 1,
            recipe,
        };
        assert!(reason_to_build(&ImageState::Missing, &hash, false).is_some());
        assert!(reason_to_build(&present(None), &hash, false).is_some());
        assert!(reason_to_build(&present(Some("b".repeat(64))), &hash, false).is_some());
        assert_eq!(
            reason_to_build(&present(Some(hash.clone())), &hash, false),
            None
        );
        assert_eq!(
            reason_to_build(&present(Some(hash.clone())), &hash, true).as_deref(),
            Some("--force")
        );
    }
}
