//! Files on disk: a download is written to `NAME.part` and becomes `NAME`
//! only once it is complete, so a final name never holds a partial file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Write buffer of a part file: transfers deliver 16–128 KiB chunks, so this
/// mostly saves system calls for the small ones.
const WRITE_BUFFER: usize = 64 * 1024;

/// A `.part` file open for writing.
#[derive(Debug)]
pub struct PartFile {
    path: PathBuf,
    writer: BufWriter<File>,
    len: u64,
}

impl PartFile {
    /// Starts an empty part file at `path`. Whatever was there (a stale part
    /// file, or a symbolic link) is removed first, never written through.
    pub fn create(path: &Path) -> io::Result<PartFile> {
        discard(path)?;
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
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            len,
        }
    }

    /// Appends `chunk`.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.writer.write_all(chunk)?;
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

    /// Flushes and closes the file; returns its length.
    pub fn close(self) -> io::Result<u64> {
        let file = self.writer.into_inner().map_err(|e| e.into_error())?;
        drop(file);
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

/// Removes `path` if it exists.
pub fn discard(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Gives a finished part file its final name.
pub fn promote(part: &Path, dest: &Path) -> io::Result<()> {
    fs::rename(part, dest)
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
