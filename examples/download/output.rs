//! Files on disk: a download is written to `NAME.part` and becomes `NAME`
//! only once it is complete, so a final name never holds a partial file.
//! A small body held in memory is instead written to an unnamed file that
//! is linked in under its final name ([`OutDir::publish`]).

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
            done(rc)
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

/// Set (to anything) in the environment, it turns [`OutDir::publish`] off,
/// so that every file goes through a `.part` file (for tests, and for a
/// filesystem that misbehaves with unnamed files).
pub const NO_TMPFILE_ENV: &str = "DOWNLOAD_NO_TMPFILE";

/// How [`OutDir::publish`] links an unnamed file into the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// `linkat(fd, "", ..., AT_EMPTY_PATH)`: root, or Linux 6.10 and later
    /// for the file's opener.
    EmptyPath,
    /// `linkat("/proc/self/fd/N", ..., AT_SYMLINK_FOLLOW)`: older kernels
    /// without the capability, while `/proc` is mounted.
    ProcFd,
    /// Neither works, or the filesystem has no unnamed files.
    Off,
}

/// What [`OutDir::publish`] came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Published {
    /// The file is under its final name, complete.
    Saved,
    /// Something has that name: nothing was written under it.
    Taken,
    /// Unnamed files cannot be made or linked in this directory; nothing
    /// was written (the caller goes through a `.part` file).
    Unsupported,
}

/// The output directory, open for the `*at` calls of [`OutDir::publish`].
#[derive(Debug)]
pub struct OutDir {
    /// `O_PATH` descriptor of the directory; `None` if it could not be
    /// opened (publishing is then unsupported).
    dir: Option<OwnedFd>,
    link: Cell<Link>,
}

impl OutDir {
    /// Opens `dir` for publishing (unless [`NO_TMPFILE_ENV`] is set).
    pub fn open(dir: &Path) -> OutDir {
        let wanted = std::env::var_os(NO_TMPFILE_ENV).is_none();
        let dir = if wanted { open_dir(dir).ok() } else { None };
        let link = if dir.is_some() {
            Link::EmptyPath
        } else {
            Link::Off
        };
        OutDir {
            dir,
            link: Cell::new(link),
        }
    }

    /// Whether [`OutDir::publish`] may work (it has not failed for lack of
    /// support yet).
    pub fn can_publish(&self) -> bool {
        self.link.get() != Link::Off
    }

    /// Writes `body` as the file `name` (one path component) in the
    /// directory: to an unnamed file (`O_TMPFILE`), then linked in under
    /// `name`, which fails rather than replace anything there. The file
    /// appears complete or not at all; killed before the link, nothing is
    /// left. Four system calls: `openat`, `write`, `linkat`, `close`.
    pub fn publish(&self, name: &str, body: &[u8]) -> io::Result<Published> {
        let Some(dir) = self.dir.as_ref().filter(|_| self.can_publish()) else {
            return Ok(Published::Unsupported);
        };
        let file = match open_unnamed(dir) {
            Ok(file) => file,
            Err(e) if unnamed_unsupported(&e) => {
                self.link.set(Link::Off);
                return Ok(Published::Unsupported);
            }
            Err(e) => return Err(e),
        };
        (&file).write_all(body)?;
        with_c_path(Path::new(name), |name| loop {
            let method = self.link.get();
            let linked = match method {
                Link::EmptyPath => link_empty_path(&file, dir, name),
                Link::ProcFd => link_proc_fd(&file, dir, name),
                Link::Off => return Ok(Published::Unsupported),
            };
            match linked {
                Ok(()) => return Ok(Published::Saved),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Published::Taken),
                // ENOENT: no capability for AT_EMPTY_PATH (a kernel before
                // 6.10), or no /proc: the next method, or none.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.link.set(match method {
                    Link::EmptyPath => Link::ProcFd,
                    _ => Link::Off,
                }),
                // No hard links here, or not allowed (a security module):
                // the `.part` route, whose own errors then tell.
                Err(e) if link_unsupported(&e) => {
                    self.link.set(Link::Off);
                    return Ok(Published::Unsupported);
                }
                Err(e) => return Err(e),
            }
        })
    }
}

/// `open(dir, O_PATH | O_DIRECTORY)`.
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    with_c_path(dir, |path| {
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: a NUL-terminated path that outlives the call.
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        owned(fd)
    })
}

/// An unnamed regular file in `dir` (`O_TMPFILE`), open for writing, with
/// the mode a created file gets (0666 less the umask).
fn open_unnamed(dir: &OwnedFd) -> io::Result<File> {
    let flags = libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC;
    // SAFETY: a live directory descriptor and a NUL-terminated path.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c".".as_ptr(), flags, 0o666 as libc::c_uint) };
    owned(fd).map(File::from)
}

/// `Ok` for a call that returned 0, else the error it left in `errno`.
fn done(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Takes ownership of the descriptor a call returned, or its error.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned to us, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `open_unnamed` failed because the filesystem (or kernel) has no
/// unnamed files, rather than for a reason a `.part` file would share.
fn unnamed_unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOSYS)
    )
}

/// Whether linking failed because this filesystem or policy allows no
/// hard links at all, rather than for a reason a `.part` file would share.
fn link_unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EPERM | libc::EOPNOTSUPP | libc::EXDEV | libc::ENOSYS | libc::EMLINK)
    )
}

/// `linkat(file, "", dir, name, AT_EMPTY_PATH)`.
fn link_empty_path(file: &File, dir: &OwnedFd, name: &CStr) -> io::Result<()> {
    // SAFETY: live descriptors and NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::linkat(
            file.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    done(rc)
}

/// `linkat("/proc/self/fd/N", dir, name, AT_SYMLINK_FOLLOW)`.
fn link_proc_fd(file: &File, dir: &OwnedFd, name: &CStr) -> io::Result<()> {
    let proc_path = format!("/proc/self/fd/{}\0", file.as_raw_fd());
    let proc_path = CStr::from_bytes_with_nul(proc_path.as_bytes()).map_err(io::Error::other)?;
    // SAFETY: live descriptors and NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    done(rc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary one.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("download-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the scratch directory");
        dir
    }

    #[test]
    fn published_files_appear_whole_and_never_replace_anything() {
        let dir = scratch("publish");
        let out = OutDir::open(&dir);
        assert!(out.can_publish(), "no O_TMPFILE in {}", dir.display());
        assert_eq!(out.publish("a", b"first").unwrap(), Published::Saved);
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"first");
        // A name taken by a file, a link (never followed) or a directory.
        assert_eq!(out.publish("a", b"second").unwrap(), Published::Taken);
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"first");
        std::os::unix::fs::symlink(dir.join("victim"), dir.join("l")).unwrap();
        assert_eq!(out.publish("l", b"x").unwrap(), Published::Taken);
        assert!(!dir.join("victim").exists());
        fs::create_dir(dir.join("d")).unwrap();
        assert_eq!(out.publish("d", b"x").unwrap(), Published::Taken);
        // The /proc/self/fd route links as well.
        out.link.set(Link::ProcFd);
        assert_eq!(out.publish("b", b"").unwrap(), Published::Saved);
        assert_eq!(fs::read(dir.join("b")).unwrap(), b"");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b", "d", "l"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_that_cannot_be_opened_publishes_nothing() {
        let dir = scratch("publish-missing").join("missing");
        let out = OutDir::open(&dir);
        assert!(!out.can_publish());
        assert_eq!(out.publish("a", b"x").unwrap(), Published::Unsupported);
        assert!(!dir.exists());
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
