//! `--image-from-oci-layout`: an OCI image layout directory (one image) loaded into the engine,
//! as container-structure-test does before testing.
//!
//! The engine's `POST /images/load` (API 1.41) reads the `docker save` format, so the layout's
//! manifest is restated as a `manifest.json` that names the layout's own config and layer blobs
//! (the engine decompresses gzip layers and checks them against the config's `diff_ids`), and the
//! archive is sent with those blobs. Like container-structure-test, a layout must hold exactly one
//! image manifest (an index of several platforms is refused), tagged by its
//! `org.opencontainers.image.ref.name` annotation or else by `--default-image-tag`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use futures_util::StreamExt;
use seaworthy::{ImageRef, Session};
use serde_json::Value;

/// The annotation that names an image in a layout.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Loads the image of the layout in `dir` into the engine; returns the reference it is tagged
/// with.
pub async fn load(
    session: &Session,
    dir: &Path,
    default_tag: Option<&str>,
) -> anyhow::Result<String> {
    let shown = dir.display();
    let index: Value = read_json(&dir.join("index.json"))
        .with_context(|| format!("{shown} is not an OCI image layout"))?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let [descriptor] = manifests.as_slice() else {
        bail!(
            "the OCI layout {shown} holds {} images; --image-from-oci-layout takes exactly one",
            manifests.len()
        );
    };
    let media_type = descriptor["mediaType"].as_str().unwrap_or_default();
    if media_type.contains("index") || media_type.contains("manifest.list") {
        bail!(
            "the OCI layout {shown} holds an index of several platforms ({media_type}); \
             --image-from-oci-layout takes a single-platform image"
        );
    }
    let tag = match descriptor["annotations"][REF_NAME].as_str() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => match default_tag {
            Some(tag) => tag.to_string(),
            None => bail!(
                "the OCI layout {shown} has no {REF_NAME} annotation: give the tag to load it \
                 under with --default-image-tag"
            ),
        },
    };
    let reference = ImageRef::parse(&tag)
        .with_context(|| format!("cannot tag the image of {shown} as {tag:?}"))?
        .to_string();
    let manifest_path = blob_path(dir, descriptor)?;
    let manifest: Value = read_json(&manifest_path)?;
    let config = blob_name(&manifest["config"])?;
    let layers = manifest["layers"]
        .as_array()
        .map(|l| l.iter().map(blob_name).collect::<anyhow::Result<Vec<_>>>())
        .transpose()?
        .unwrap_or_default();
    let docker_manifest = serde_json::json!([{
        "Config": config,
        "RepoTags": [reference],
        "Layers": layers,
    }]);
    let mut archive = Tar::default();
    archive.add("manifest.json", &serde_json::to_vec(&docker_manifest)?);
    for name in std::iter::once(&config).chain(&layers) {
        let data = std::fs::read(dir.join(name))
            .with_context(|| format!("cannot read {name} of the OCI layout {shown}"))?;
        archive.add(name, &data);
    }
    let docker = session.engine().docker();
    let options = seaworthy::bollard::query_parameters::ImportImageOptions {
        quiet: true,
        ..Default::default()
    };
    let body = seaworthy::bollard::body_full(archive.finish().into());
    let mut stream = docker.import_image(options, body, None);
    while let Some(item) = stream.next().await {
        let info = item.with_context(|| format!("the engine did not load {shown}"))?;
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            bail!("the engine did not load {shown}: {message}");
        }
    }
    docker
        .inspect_image(&reference)
        .await
        .with_context(|| format!("{shown} was loaded, but {reference} is not in the engine"))?;
    eprintln!("seaworthy: loaded {shown} as {reference}");
    Ok(reference)
}

/// Whether `--image` names an image archive, as container-structure-test's tar driver tells one
/// (`pkgutil.IsTar`: a `.tar` or `.tgz` name) and it is a file here.
pub fn is_image_archive(image: &str) -> bool {
    let path = Path::new(image);
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("tar" | "tgz")
    ) && path.is_file()
}

/// Loads an image archive (`docker save` format, gzipped or not) into the engine, as
/// container-structure-test's tar driver reads `--image image.tar`; returns the reference of
/// the (first) image loaded.
pub async fn load_archive(session: &Session, path: &Path) -> anyhow::Result<String> {
    let shown = path.display();
    let data = std::fs::read(path).with_context(|| format!("cannot read {shown}"))?;
    let docker = session.engine().docker();
    let options = seaworthy::bollard::query_parameters::ImportImageOptions {
        quiet: false,
        ..Default::default()
    };
    let body = seaworthy::bollard::body_full(data.into());
    let mut stream = docker.import_image(options, body, None);
    let mut loaded = None;
    while let Some(item) = stream.next().await {
        let info = item.with_context(|| format!("the engine did not load {shown}"))?;
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            bail!("the engine did not load {shown}: {message}");
        }
        // "Loaded image: name:tag" (or "Loaded image ID: sha256:..." for an untagged image).
        let line = info.stream.unwrap_or_default();
        let name = line
            .trim()
            .strip_prefix("Loaded image: ")
            .or_else(|| line.trim().strip_prefix("Loaded image ID: "));
        if let (None, Some(name)) = (&loaded, name) {
            loaded = Some(name.to_string());
        }
    }
    let reference =
        loaded.with_context(|| format!("{shown} holds no image the engine could load"))?;
    eprintln!("seaworthy: loaded {shown} as {reference}");
    Ok(reference)
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// `blobs/<algorithm>/<hex>` of a descriptor, relative to the layout.
fn blob_name(descriptor: &Value) -> anyhow::Result<String> {
    let digest = descriptor["digest"].as_str().unwrap_or_default();
    match digest.split_once(':') {
        Some((algorithm, hex))
            if !algorithm.is_empty() && !hex.is_empty() && !hex.contains(['/', '.']) =>
        {
            Ok(format!("blobs/{algorithm}/{hex}"))
        }
        _ => bail!("invalid digest {digest:?} in the OCI layout"),
    }
}

fn blob_path(dir: &Path, descriptor: &Value) -> anyhow::Result<PathBuf> {
    Ok(dir.join(blob_name(descriptor)?))
}

/// A tar archive of regular files (ustar headers), built in memory.
#[derive(Default)]
struct Tar(Vec<u8>);

impl Tar {
    /// Adds `data` as the file `name` (at most 100 bytes: the layout's names are
    /// `blobs/sha256/<64 hex digits>`).
    fn add(&mut self, name: &str, data: &[u8]) {
        let mut header = [0u8; 512];
        header[..name.len().min(100)].copy_from_slice(&name.as_bytes()[..name.len().min(100)]);
        let octal = |field: &mut [u8], value: u64| {
            let digits = field.len() - 1;
            let text = format!("{value:0digits$o}");
            field[..digits].copy_from_slice(text.as_bytes());
        };
        octal(&mut header[100..108], 0o644);
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], data.len() as u64);
        octal(&mut header[136..148], 0);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field as spaces.
        header[148..156].copy_from_slice(b"        ");
        let sum: u64 = header.iter().map(|b| u64::from(*b)).sum();
        let text = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(text.as_bytes());
        self.0.extend_from_slice(&header);
        self.0.extend_from_slice(data);
        let padding = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, padding));
    }

    /// The archive, with its two closing zero blocks.
    fn finish(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }
}
