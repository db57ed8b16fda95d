//! How each kind of test image is built. Every builder returns the ID of
//! the new, still untagged image; the caller tags it only once the whole
//! build succeeded, so a failed build never leaves a half-built image under
//! the tag.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cmd::{self, Log};
use crate::docker::{self, RECIPE_LABEL, TITLE_LABEL};
use crate::images::Image;

/// How an image is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Debian root filesystem made by `mmdebstrap` from `packages.txt`,
    /// `dpkg.cfg` and the hook `customize.sh`, imported with `docker import`.
    Debian,
    /// A root filesystem with Debian's static busybox, one symbolic link per
    /// applet, `/tmp`, and the `passwd` and `group` files of the recipe.
    Busybox,
    /// No root filesystem at all: the static program compiled from
    /// `pause.c` and a few files whose metadata the tests check.
    Scratch,
    /// `docker build` of the recipe directory (on top of its base image).
    Dockerfile,
}

/// The Debian release of the base image.
const SUITE: &str = "bookworm";

/// The mmdebstrap variant of the base image: only `Essential: yes`
/// packages and apt, before the packages of `packages.txt`.
const VARIANT: &str = "minbase";

/// The usual `PATH`, for images built without a Dockerfile.
const PATH_ENV: &str = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `docker import --change` instructions of the base image.
const DEBIAN_CHANGES: &[&str] = &[PATH_ENV, "ENV LANG=C.UTF-8", "CMD [\"bash\"]"];

/// `docker import --change` instructions of the busybox image.
const BUSYBOX_CHANGES: &[&str] = &[PATH_ENV, "CMD [\"sh\"]"];

/// `docker import --change` instructions of the scratch image.
const SCRATCH_CHANGES: &[&str] = &["ENTRYPOINT [\"/pause\"]"];

/// The Debian package providing the static busybox.
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// How `pause.c` is compiled (followed by `-o <output> <source>`).
const GCC_FLAGS: &[&str] = &["-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror"];

/// The owner (user and group ID) of the scratch image's test files.
const SCRATCH_FILE_OWNER: &str = "1000";

/// The build parameters of a kind that live in this code rather than in the
/// recipe files; they are part of the recipe hash.
pub fn parameters(kind: Kind) -> Vec<String> {
    let mut params = vec![format!("{kind:?}")];
    let strings: &[&str] = match kind {
        Kind::Debian => {
            params.push(format!("mmdebstrap --variant={VARIANT} {SUITE}"));
            DEBIAN_CHANGES
        }
        Kind::Busybox => {
            params.push(BUSYBOX_PACKAGE.to_string());
            BUSYBOX_CHANGES
        }
        Kind::Scratch => {
            params.push(format!("owner {SCRATCH_FILE_OWNER}"));
            params.extend(GCC_FLAGS.iter().map(|flag| flag.to_string()));
            SCRATCH_CHANGES
        }
        Kind::Dockerfile => &["docker build --network=none"],
    };
    params.extend(strings.iter().map(|s| s.to_string()));
    params
}

/// Builds `image` from the recipe in `recipe` with `work` as an empty
/// scratch directory, labelled with the recipe hash `hash`. Returns the new
/// image's ID. With `no_cache`, `docker build` does not reuse cached steps.
pub fn build(
    image: &Image,
    recipe: &Path,
    work: &Path,
    hash: &str,
    no_cache: bool,
    log: &Log,
) -> Result<String> {
    let labels = [
        (RECIPE_LABEL, hash.to_string()),
        (TITLE_LABEL, image.repository()),
    ];
    match image.kind {
        Kind::Debian => {
            let tarball = debian_rootfs(recipe, work, log)?;
            import(&tarball, DEBIAN_CHANGES, &labels, log)
        }
        Kind::Busybox => {
            let tarball = busybox_rootfs(recipe, work, log)?;
            import(&tarball, BUSYBOX_CHANGES, &labels, log)
        }
        Kind::Scratch => {
            let tarball = scratch_rootfs(recipe, work, log)?;
            import(&tarball, SCRATCH_CHANGES, &labels, log)
        }
        Kind::Dockerfile => docker_build(recipe, work, &labels, no_cache, log),
    }
}

/// Imports `tarball` as a new image with the `--change` instructions
/// `changes` and `labels`; returns its ID.
fn import(
    tarball: &Path,
    changes: &[&str],
    labels: &[(&str, String)],
    log: &Log,
) -> Result<String> {
    let mut cmd = Command::new("docker");
    cmd.arg("import");
    for change in changes {
        cmd.args(["--change", change]);
    }
    for (key, value) in labels {
        cmd.args(["--change", &docker::label_instruction(key, value)]);
    }
    cmd.args(["--message", "built by cargo xtask images"]);
    cmd.arg(tarball);
    let id = cmd::run_captured(&mut cmd, log)?;
    if !id.starts_with("sha256:") {
        bail!("`docker import` printed {id:?} instead of an image ID");
    }
    Ok(id)
}

/// `docker build` of the recipe directory; returns the new image's ID.
fn docker_build(
    recipe: &Path,
    work: &Path,
    labels: &[(&str, String)],
    no_cache: bool,
    log: &Log,
) -> Result<String> {
    let iid_file = work.join("image-id");
    let mut cmd = Command::new("docker");
    // The classic builder is in every Docker engine (Debian's docker.io has
    // no buildx), works offline and uses local base images as they are.
    cmd.env("DOCKER_BUILDKIT", "0");
    cmd.args(["build", "--network=none", "--force-rm", "--pull=false"]);
    if no_cache {
        cmd.arg("--no-cache");
    }
    for (key, value) in labels {
        cmd.args(["--label", &format!("{key}={value}")]);
    }
    cmd.arg("--iidfile").arg(&iid_file);
    cmd.arg(recipe);
    cmd::run_logged(&mut cmd, log)?;
    let id = fs::read_to_string(&iid_file)
        .with_context(|| format!("`docker build` wrote no {}", iid_file.display()))?;
    Ok(id.trim().to_string())
}

/// Builds the base root filesystem with mmdebstrap; returns the tarball.
fn debian_rootfs(recipe: &Path, work: &Path, log: &Log) -> Result<PathBuf> {
    let packages = read_package_list(&recipe.join("packages.txt"))?;
    let dpkg_cfg = existing_file(recipe.join("dpkg.cfg"))?;
    let hook = existing_file(recipe.join("customize.sh"))?;
    let tarball = work.join("rootfs.tar");

    let mut cmd = Command::new("mmdebstrap");
    cmd.arg(format!("--variant={VARIANT}"))
        .arg(format!("--include={}", packages.join(",")))
        .arg("--dpkgopt")
        .arg(dpkg_cfg)
        // Run under sh (rather than exec-ed, which needs the executable
        // bit), with the root filesystem as "$1".
        .arg(format!(
            "--customize-hook=sh {} \"$1\"",
            cmd::shell_quote(&hook.to_string_lossy())
        ))
        .arg("--format=tar")
        .arg(SUITE)
        .arg(&tarball);
    cmd::run_logged(&mut cmd, log)?;
    Ok(tarball)
}

/// The package names in a package list: one per line, `#` comments.
fn read_package_list(path: &Path) -> Result<Vec<String>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let packages = parse_package_list(&text);
    if packages.is_empty() {
        bail!("{} lists no packages", path.display());
    }
    Ok(packages)
}

/// Parses the text of a package list.
fn parse_package_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

/// Builds the busybox root filesystem; returns the tarball.
fn busybox_rootfs(recipe: &Path, work: &Path, log: &Log) -> Result<PathBuf> {
    let deb = download_package(BUSYBOX_PACKAGE, work, log)?;
    let unpacked = work.join("deb");
    cmd::run_logged(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked),
        log,
    )?;
    let busybox = unpacked.join("bin").join("busybox");
    let busybox = existing_file(busybox)?;

    let applets = cmd::run_captured(Command::new(&busybox).arg("--list"), log)?;
    let root = work.join("rootfs");
    let bin = root.join("bin");
    create_dir(&bin, 0o755)?;
    fs::copy(&busybox, bin.join("busybox")).context("cannot copy busybox")?;
    set_mode(&bin.join("busybox"), 0o755)?;
    let mut count = 0;
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", bin.join(applet))
            .with_context(|| format!("cannot link applet {applet}"))?;
        count += 1;
    }
    for required in ["ps", "sh", "httpd", "nc", "sleep", "wget"] {
        if !bin.join(required).exists() {
            bail!("{BUSYBOX_PACKAGE} has no `{required}` applet");
        }
    }
    log.note(&format!("linked {count} applets"))?;

    create_dir(&root.join("tmp"), 0o1777)?;
    create_dir(&root.join("root"), 0o700)?;
    create_dir(&root.join("etc"), 0o755)?;
    for file in ["passwd", "group"] {
        copy_file(&recipe.join(file), &root.join("etc").join(file), 0o644)?;
    }

    let tarball = work.join("rootfs.tar");
    let mut tar = tar_command(&tarball, "--create", "0");
    tar.arg("-C").arg(&root).arg(".");
    cmd::run_logged(&mut tar, log)?;
    Ok(tarball)
}

/// Downloads the `.deb` of `package` into `dir` with `apt-get download`,
/// updating the package lists first if that fails; returns its path.
fn download_package(package: &str, dir: &Path, log: &Log) -> Result<PathBuf> {
    let download = || {
        let mut cmd = Command::new("apt-get");
        cmd.args(["download", "--quiet", package]).current_dir(dir);
        cmd::run_logged(&mut cmd, log)
    };
    if download().is_err() {
        log.note("apt-get download failed; updating the package lists and trying again")?;
        cmd::run_logged(Command::new("apt-get").args(["update", "--quiet"]), log)?;
        download()?;
    }
    let entries = fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(&format!("{package}_")) && name.ends_with(".deb") {
            return Ok(path);
        }
    }
    bail!("`apt-get download {package}` produced no .deb file")
}

/// Builds the scratch image's content; returns the tarball.
///
/// The tarball holds, with exact owners and modes:
/// `/pause` (root, 0755), `/etc/` and `/etc/seaworthy/` (root, 0755),
/// `/etc/seaworthy/config.txt` (1000:1000, 0640, "answer=42\n"),
/// `/etc/seaworthy/link` (root, symbolic link to `config.txt`) and
/// `/data/` (1000:1000, 0755). There is no `/bin`.
fn scratch_rootfs(recipe: &Path, work: &Path, log: &Log) -> Result<PathBuf> {
    let root = work.join("rootfs");
    create_dir(&root, 0o755)?;

    let source = existing_file(recipe.join("pause.c"))?;
    let mut gcc = Command::new("gcc");
    gcc.args(GCC_FLAGS)
        .arg("-o")
        .arg(root.join("pause"))
        .arg(source);
    cmd::run_logged(&mut gcc, log)?;
    set_mode(&root.join("pause"), 0o755)?;

    let config_dir = root.join("etc").join("seaworthy");
    create_dir(&root.join("etc"), 0o755)?;
    create_dir(&config_dir, 0o755)?;
    copy_file(
        &recipe.join("config.txt"),
        &config_dir.join("config.txt"),
        0o640,
    )?;
    symlink("config.txt", config_dir.join("link")).context("cannot create etc/seaworthy/link")?;
    create_dir(&root.join("data"), 0o755)?;

    // Listed one by one (no recursion) so each entry gets the right owner:
    // first the root-owned ones, then those appended as 1000:1000.
    let tarball = work.join("rootfs.tar");
    let mut tar = tar_command(&tarball, "--create", "0");
    tar.arg("--no-recursion").arg("-C").arg(&root).args([
        "pause",
        "etc",
        "etc/seaworthy",
        "etc/seaworthy/link",
    ]);
    cmd::run_logged(&mut tar, log)?;
    let mut tar = tar_command(&tarball, "--append", SCRATCH_FILE_OWNER);
    tar.arg("--no-recursion")
        .arg("-C")
        .arg(&root)
        .args(["etc/seaworthy/config.txt", "data"]);
    cmd::run_logged(&mut tar, log)?;
    Ok(tarball)
}

/// A GNU tar command writing `tarball` (`mode` is `--create` or `--append`)
/// with every entry owned by the numeric user and group `owner`.
fn tar_command(tarball: &Path, mode: &str, owner: &str) -> Command {
    let mut tar = Command::new("tar");
    tar.arg(mode)
        .arg("--file")
        .arg(tarball)
        .arg("--numeric-owner")
        .arg(format!("--owner={owner}"))
        .arg(format!("--group={owner}"));
    tar
}

/// Fails with a clear message unless `path` is a file; returns it.
fn existing_file(path: PathBuf) -> Result<PathBuf> {
    if !path.is_file() {
        bail!("{} is missing", path.display());
    }
    Ok(path)
}

/// Creates the directory `path` (and missing parents) with mode `mode`.
fn create_dir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    set_mode(path, mode)
}

/// Copies the file `from` to `to` and gives the copy mode `mode`.
fn copy_file(from: &Path, to: &Path, mode: u32) -> Result<()> {
    fs::copy(existing_file(from.to_path_buf())?, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    set_mode(to, mode)
}

/// Sets the permission bits of `path` (not affected by the umask).
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_package_lists() {
        let text = "# comment\npostgresql\n\n  redis-server # inline\n#gone\n";
        assert_eq!(parse_package_list(text), ["postgresql", "redis-server"]);
    }

    #[test]
    fn parameters_differ_between_kinds() {
        let kinds = [Kind::Debian, Kind::Busybox, Kind::Scratch, Kind::Dockerfile];
        for (i, a) in kinds.iter().enumerate() {
            for b in &kinds[i + 1..] {
                assert_ne!(parameters(*a), parameters(*b));
            }
        }
    }
}
