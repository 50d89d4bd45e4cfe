//! Files on disk: a download is written to `NAME.part` and becomes `NAME`
//! only once it is complete, so a final name never holds a partial file.

use std::ffi::{CStr, CString};
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
    pub fn create(path: PathBuf) -> io::Result<PartFile> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(PartFile { path, file, len: 0 })
    }

    /// Reopens the part file at `path` to append to it; it must still hold
    /// exactly `expected_len` bytes (the offset the server resumes from).
    pub fn append(path: PathBuf, expected_len: u64) -> io::Result<PartFile> {
        let file = OpenOptions::new().append(true).open(&path)?;
        let len = file.metadata()?.len();
        if len != expected_len {
            return Err(io::Error::other(format!(
                "{} changed size ({len} bytes, expected {expected_len})",
                path.display()
            )));
        }
        Ok(PartFile { path, file, len })
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

    /// Closes the file; returns its path and length. (An error of
    /// `close(2)` itself is not reported: the bytes were written already.)
    pub fn close(self) -> (PathBuf, u64) {
        drop(self.file);
        (self.path, self.len)
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
    with_c_path(part, |from| {
        with_c_path(dest, |to| {
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
        })
    })
}

/// Paths shorter than this are made NUL-terminated on the stack.
const STACK_PATH: usize = 512;

/// Calls `f` with `path` as a C string (on the stack when it is short, as
/// the standard library does); a NUL byte inside `path` is an error.
fn with_c_path<T>(path: &Path, f: impl FnOnce(&CStr) -> io::Result<T>) -> io::Result<T> {
    let nul_inside = || io::Error::other("NUL in a path");
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= STACK_PATH {
        return f(&CString::new(bytes).map_err(|_| nul_inside())?);
    }
    let mut buffer = [0u8; STACK_PATH];
    buffer[..bytes.len()].copy_from_slice(bytes);
    f(CStr::from_bytes_with_nul(&buffer[..=bytes.len()]).map_err(|_| nul_inside())?)
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
