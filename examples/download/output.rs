//! Files on disk: a download is written to `NAME.part` and becomes `NAME`
//! only once it is complete, so a final name never holds a partial file.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A `.part` file open for writing. Body chunks go straight to the file:
/// libcurl hands over up to its receive buffer at once, and a small file is
/// one chunk, so a buffer in between would only copy.
#[derive(Debug)]
pub struct PartFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl PartFile {
    /// Creates an empty part file at `path`, failing with
    /// [`io::ErrorKind::AlreadyExists`] if anything is there (a file, a
    /// symbolic link, a directory): `O_CREAT | O_EXCL` never writes through
    /// a link nor into another download's part file.
    pub fn create(path: &Path) -> io::Result<PartFile> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(PartFile::wrap(path, file, 0))
    }

    /// Reopens the part file at `path` to append to it; it must still hold
    /// exactly `expected_len` bytes (the offset the server resumes from).
    pub fn append(path: &Path, expected_len: u64) -> io::Result<PartFile> {
        let file = OpenOptions::new().append(true).open(path)?;
        let len = file.metadata()?.len();
        if len != expected_len {
            return Err(io::Error::other(format!(
                "{} changed size ({len} bytes, expected {expected_len})",
                path.display()
            )));
        }
        Ok(PartFile::wrap(path, file, len))
    }

    fn wrap(path: &Path, file: File, len: u64) -> PartFile {
        PartFile {
            path: path.to_owned(),
            file,
            len,
        }
    }

    /// Appends `chunk`.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk)?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Bytes in the file so far (resumed ones included).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file; returns its length.
    pub fn close(self) -> io::Result<u64> {
        drop(self.file);
        Ok(self.len)
    }
}

/// The length of an existing regular file at `path` (0 if there is none).
pub fn existing_len(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => 0,
    }
}

/// Removes `path` if it exists (a symbolic link itself, never its target).
pub fn discard(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Gives a finished part file its final name. Unless `replace`, fails
/// with [`io::ErrorKind::AlreadyExists`] if anything has that name: the
/// check and the rename are one atomic step, so nothing that appeared
/// meanwhile is ever replaced.
pub fn promote(part: &Path, dest: &Path, replace: bool) -> io::Result<()> {
    if replace {
        return fs::rename(part, dest);
    }
    match rename_noreplace(part, dest) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
            // A filesystem without RENAME_NOREPLACE (NFS, some FUSE): a hard
            // link fails as atomically on an existing name.
            match fs::hard_link(part, dest) {
                Ok(()) => fs::remove_file(part),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
                // Nor hard links (FAT): look, then rename (not atomic).
                Err(_) if fs::symlink_metadata(dest).is_ok() => {
                    Err(io::ErrorKind::AlreadyExists.into())
                }
                Err(_) => fs::rename(part, dest),
            }
        }
        other => other,
    }
}

/// `renameat2(part, dest, RENAME_NOREPLACE)`.
fn rename_noreplace(part: &Path, dest: &Path) -> io::Result<()> {
    let c_path = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::other("NUL in a path"))
    };
    let (from, to) = (c_path(part)?, c_path(dest)?);
    // SAFETY: two NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates the output directory if it is missing.
pub fn prepare_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    if fs::metadata(dir)?.is_dir() {
        Ok(())
    } else {
        Err(io::Error::other("not a directory"))
    }
}
