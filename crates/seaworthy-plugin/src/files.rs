//! Reading plugin files (manifests, components, stored blobs) without trusting what they are:
//! only regular files (a symlink is followed, but to a regular file only: never a device, a
//! FIFO or a directory) of bounded size are read, so a plugin file that is `/dev/zero` or a
//! named pipe is an error naming the file, not an out-of-memory or a hang.

use std::io::Read;
use std::path::Path;

/// The largest manifest read.
pub(crate) const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The largest component read.
pub(crate) const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// The bytes of `path`, if it is a regular file of at most `max` bytes.
pub(crate) fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    read_regular_open(path, max).map(|(_, bytes)| bytes)
}

/// [`read_regular`], with the file it read (still open, so the same file can be used again
/// whatever happens to `path` since).
pub(crate) fn read_regular_open(
    path: &Path,
    max: u64,
) -> std::io::Result<(std::fs::File, Vec<u8>)> {
    let refuse = |reason: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, reason);
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(refuse(format!(
            "not a regular file (it is a {}); plugin files must be regular files",
            kind(&metadata)
        )));
    }
    if metadata.len() > max {
        return Err(refuse(format!(
            "{} bytes, over the limit of {max} bytes",
            metadata.len()
        )));
    }
    let file = std::fs::File::open(path)?;
    // Checked again on the open file, in case the path changed in between.
    let opened = file.metadata()?;
    if !opened.is_file() {
        return Err(refuse(format!(
            "not a regular file (it is a {})",
            kind(&opened)
        )));
    }
    let mut bytes = Vec::with_capacity(opened.len().min(max) as usize);
    (&file).take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(refuse(format!("over the limit of {max} bytes")));
    }
    Ok((file, bytes))
}

/// [`read_regular`] as UTF-8 text.
pub(crate) fn read_regular_text(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_regular(path, max)?).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text".to_string(),
        )
    })
}

fn kind(metadata: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = metadata.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_directories_and_oversized_files() {
        let e = read_regular(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read_regular(Path::new("/"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let dir = std::env::temp_dir().join(format!("sw-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, [7u8; 100]).unwrap();
        assert_eq!(read_regular(&file, 100).unwrap().len(), 100);
        let e = read_regular(&file, 99).unwrap_err();
        assert!(e.to_string().contains("over the limit of 99 bytes"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
