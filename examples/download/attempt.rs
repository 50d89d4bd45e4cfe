//! One attempt at one URL: the request it sends, what its head and body
//! callbacks do with the `.part` file, and what its completion makes of it.
//!
//! The final name is settled in the head callback, before the first body
//! byte is written, because a `Content-Disposition` header may change it.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use uvcurl::{Error, ErrorKind, Flow, Head, HttpVersionPref, Request, Response};

use crate::checksum::Checksum;
use crate::cli::Settings;
use crate::naming::{self, Names};
use crate::output::{self, OutDir, PartFile, Published};
use crate::retry::Failure;

/// libcurl's receive buffer for bulk downloads (its default is 16 KiB).
const RECEIVE_BUFFER: usize = 128 * 1024;

/// Bodies of at most this many bytes (by `Content-Length`) are kept in
/// memory and written once complete (see [`Sink::Memory`]).
pub(crate) const SMALL_BODY: u64 = 64 * 1024;

/// Most names tried for one file when the disk has each one already.
pub(crate) const MAX_NAME_TRIES: usize = 1000;

/// What all attempts share: the settings and the names handed out so far.
#[derive(Debug)]
pub struct Context {
    /// The run's settings.
    pub settings: Settings,
    /// Names claimed in the output directory.
    pub names: RefCell<Names>,
    /// No proxy is named, neither by `--proxy` nor by the environment:
    /// requests then say so, which spares libcurl its look through the
    /// environment on every transfer.
    direct: bool,
    /// The output directory as a prefix of the paths in it: with a
    /// trailing `/` (none when it is empty), as `Path::join` would add.
    dir_prefix: std::ffi::OsString,
    /// The output directory, for files published whole.
    out_dir: OutDir,
}

impl Context {
    /// A context for `settings`.
    pub fn new(settings: Settings) -> Context {
        let names = Names::new(&settings.out_dir, settings.overwrite, settings.resume);
        let direct = settings.proxy.is_none() && !proxy_in_environment();
        let mut dir_prefix = settings.out_dir.clone().into_os_string();
        if !dir_prefix.is_empty() && !dir_prefix.as_encoded_bytes().ends_with(b"/") {
            dir_prefix.push("/");
        }
        let out_dir = OutDir::open(&settings.out_dir);
        Context {
            settings,
            names: RefCell::new(names),
            direct,
            dir_prefix,
            out_dir,
        }
    }

    /// Whether a body of `length` bytes is kept in memory and published
    /// whole: a small one, when no `.part` file is wanted: not with
    /// `--continue` (a killed run must leave a `.part` to resume), nor
    /// with `--overwrite` (a link does not replace), nor with a checksum
    /// (verified on the `.part` file).
    fn in_memory(&self, length: Option<u64>, job: &Job) -> bool {
        length.is_some_and(|length| length <= SMALL_BODY)
            && !self.settings.resume
            && !self.settings.overwrite
            && job.checksum.is_none()
            && self.out_dir.can_publish()
    }

    /// The final path of `name` (a sanitized name: one path component).
    pub fn final_path(&self, name: &str) -> PathBuf {
        self.path_in_dir(name, "")
    }

    /// The `.part` path of `name`.
    pub fn part_path(&self, name: &str) -> PathBuf {
        self.path_in_dir(name, naming::PART_SUFFIX)
    }

    /// `name` and `suffix` in the output directory, the path built in one
    /// allocation (`Path::join` would look for separators and grow it).
    fn path_in_dir(&self, name: &str, suffix: &str) -> PathBuf {
        let len = self.dir_prefix.len() + name.len() + suffix.len();
        let mut path = std::ffi::OsString::with_capacity(len);
        path.push(&self.dir_prefix);
        path.push(name);
        path.push(suffix);
        PathBuf::from(path)
    }
}

/// One URL to download, across its attempts.
#[derive(Debug, Clone)]
pub struct Job {
    /// Identifies the job in the run (its position in the URL list).
    pub id: u64,
    /// What to download.
    pub url: crate::link::Link,
    /// The name the input file's `out=` asked for (sanitized); it wins over
    /// the URL's and the server's.
    pub out: Option<String>,
    /// The digest the complete file must have.
    pub checksum: Option<Checksum>,
    /// The output name claimed for it; empty before the first attempt.
    pub name: String,
    /// Attempts started so far.
    pub tries: u32,
}

/// What an attempt came to.
#[derive(Debug)]
pub enum Outcome {
    /// The file is complete under its final name.
    Saved {
        /// Where it is.
        path: PathBuf,
        /// Its length.
        bytes: u64,
    },
    /// It failed; the final name was not written.
    Failed(Failure),
}

/// Where an attempt's body goes.
#[derive(Debug)]
enum Sink {
    /// The `.part` file.
    Part(PartFile),
    /// Memory, for a small body that is written once complete: nothing is
    /// on disk before, no `.part` name is used, and a failure costs no
    /// file operation at all.
    Memory(Vec<u8>),
}

/// The state of one attempt, shared by its callbacks.
#[derive(Debug)]
pub struct Attempt {
    /// The job being attempted.
    pub job: Job,
    /// Bytes already in the `.part` file when the request was sent (a
    /// `Range` request asks for the rest).
    pub resume_from: u64,
    /// With `--continue` and no `.part` file: `resume_from` is the length
    /// of the file an earlier run saved under the final name, and the
    /// `Range` request asks whether it is complete (a `416` for its length
    /// says it is, with no body byte sent).
    saved_before: bool,
    /// Where the body goes, once a 2xx head arrived.
    file: Option<Sink>,
    /// Whether this attempt created or opened the `.part` file (only then
    /// may a failure remove it).
    owns_part: bool,
    /// Body bytes received by this attempt.
    pub received: u64,
    /// The expected final length, when the server said.
    pub total: Option<u64>,
    /// Why the attempt stopped itself (disk error, bad `Content-Range`).
    problem: Option<Failure>,
    /// Things worth telling in verbose mode.
    pub notes: Vec<String>,
}

impl Attempt {
    /// Prepares the next attempt of `job`, whose name is already claimed.
    /// With `--continue`, an existing `.part` file is resumed.
    /// Without a `.part` file, a file saved under the final name by an
    /// earlier run is checked instead (and never written to).
    pub fn new(job: Job, ctx: &Context) -> Attempt {
        let (resume_from, saved_before) = if ctx.settings.resume {
            match output::existing_len(&ctx.part_path(&job.name)) {
                0 => match output::existing_len(&ctx.final_path(&job.name)) {
                    0 => (0, false),
                    saved => (saved, true),
                },
                part => (part, false),
            }
        } else {
            (0, false)
        };
        Attempt {
            job,
            resume_from,
            saved_before,
            file: None,
            owns_part: false,
            received: 0,
            total: None,
            problem: None,
            notes: Vec::new(),
        }
    }

    /// Bytes of the file so far, resumed ones included.
    pub fn progress(&self) -> u64 {
        match &self.file {
            Some(Sink::Part(file)) => file.len(),
            Some(Sink::Memory(body)) => body.len() as u64,
            None => self.resume_from,
        }
    }

    /// The head callback: for a 2xx response, settles the name and opens the
    /// `.part` file; any other status only gets noted (its body is dropped).
    pub fn on_head(&mut self, head: &Head, ctx: &Context) -> Flow {
        if !(200..300).contains(&head.status()) {
            return Flow::Continue;
        }
        match self.open_output(head, ctx) {
            Ok(()) => Flow::Continue,
            Err(failure) => {
                self.problem = Some(failure);
                Flow::Abort
            }
        }
    }

    /// The body callback: appends to the `.part` file, or to the body in
    /// memory.
    pub fn on_data(&mut self, chunk: &[u8]) -> Flow {
        self.received += chunk.len() as u64;
        let file = match &mut self.file {
            Some(Sink::Part(file)) => file,
            Some(Sink::Memory(body)) => {
                if (body.len() + chunk.len()) as u64 > SMALL_BODY {
                    // More than its Content-Length said.
                    self.problem = Some(Failure::transient("the body is longer than announced"));
                    return Flow::Abort;
                }
                body.extend_from_slice(chunk);
                return Flow::Continue;
            }
            None => return Flow::Continue, // the body of an error response
        };
        match file.write(chunk) {
            Ok(()) => Flow::Continue,
            Err(e) => {
                let path = file.path().display().to_string();
                self.problem = Some(Failure::permanent(format!("writing {path}: {e}")));
                Flow::Abort
            }
        }
    }

    /// Opens the `.part` file for a 2xx response: appends for a `206` that
    /// continues where we asked, starts over otherwise.
    fn open_output(&mut self, head: &Head, ctx: &Context) -> Result<(), Failure> {
        let fields = Fields::of(head);
        let length = fields.length.and_then(|v| v.parse::<u64>().ok());
        if self.resume_from > 0 && head.status() == 206 {
            let part = ctx.part_path(&self.job.name);
            let range = fields.range.and_then(parse_content_range);
            let Some((start, total)) = range.filter(|(start, _)| *start == self.resume_from) else {
                output::discard(&part).map_err(|e| io_failure(&part, e))?;
                return Err(Failure::transient(format!(
                    "the server resumed at the wrong offset (asked for {}, got {:?})",
                    self.resume_from,
                    fields.range.unwrap_or("no Content-Range")
                )));
            };
            self.total = total.or(length.map(|l| start + l));
            self.notes
                .push(format!("resumed {} at byte {start}", self.job.name));
            if self.saved_before {
                // The saved file is a prefix of a longer one now: as with
                // `wget -c`, it is completed, as a `.part` file meanwhile.
                let saved = ctx.final_path(&self.job.name);
                output::promote(&saved, &part, false).map_err(|e| io_failure(&part, e))?;
                self.saved_before = false;
            }
            let file = match PartFile::append(part, start) {
                Ok(file) => file,
                Err(e) => return Err(io_failure(&ctx.part_path(&self.job.name), e)),
            };
            self.file = Some(Sink::Part(file));
            self.owns_part = true;
            return Ok(());
        }
        if self.resume_from > 0 {
            self.notes.push(format!(
                "the server ignored the Range request for {}; starting over",
                self.job.name
            ));
            if !self.saved_before {
                let part = ctx.part_path(&self.job.name);
                output::discard(&part).map_err(|e| io_failure(&part, e))?;
            }
            // (A file saved before stays; `save` picks another name.)
            self.resume_from = 0;
            self.saved_before = false;
        }
        self.rename_from_disposition(fields.disposition, ctx);
        self.total = length;
        if ctx.in_memory(length, &self.job) {
            let capacity = length.unwrap_or(0) as usize;
            self.file = Some(Sink::Memory(Vec::with_capacity(capacity)));
            return Ok(());
        }
        self.file = Some(Sink::Part(self.create_part(ctx)?));
        self.owns_part = true;
        Ok(())
    }

    /// Creates the `.part` file of the job's name. One that is there already
    /// belongs to something else (another download, or a stale one): it is
    /// replaced only with `--overwrite`, or with `--continue` (which owns the
    /// `.part` files of its names: one that is there while this attempt
    /// starts over is empty, left by a run killed between creating it and
    /// writing to it, or one the server would not resume); otherwise the job
    /// takes the next free name.
    fn create_part(&mut self, ctx: &Context) -> Result<PartFile, Failure> {
        let mut replaced = false;
        for _ in 0..MAX_NAME_TRIES {
            let error = match PartFile::create(ctx.part_path(&self.job.name)) {
                Ok(file) => return Ok(file),
                Err(error) => error,
            };
            let part = ctx.part_path(&self.job.name);
            match error {
                e if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(io_failure(&part, e))
                }
                _ => {
                    // With --overwrite or --continue, the one there is
                    // removed once (a link itself, never its target; not a
                    // directory).
                    let ours = ctx.settings.overwrite || ctx.settings.resume;
                    if ours && !replaced {
                        replaced = true;
                        if output::discard(&part).is_ok() {
                            continue;
                        }
                    }
                    replaced = false;
                    let next = ctx.names.borrow_mut().claim_next(&self.job.name);
                    self.job.name = next;
                }
            }
        }
        Err(too_many_names(&self.job.name))
    }

    /// Switches to the `Content-Disposition` name, if the server gave one
    /// and `out=` did not name the file.
    fn rename_from_disposition(&mut self, disposition: Option<&str>, ctx: &Context) {
        if self.job.out.is_some() {
            return;
        }
        let Some(wanted) = disposition.and_then(naming::name_from_content_disposition) else {
            return;
        };
        if wanted == self.job.name {
            return;
        }
        let mut names = ctx.names.borrow_mut();
        names.release(&self.job.name);
        self.job.name = names.claim(&wanted);
        self.notes.push(format!(
            "{} is named {} by the server",
            self.job.url, self.job.name
        ));
    }

    /// Turns the transfer's result into the attempt's outcome: a 2xx
    /// response whose length checks out is renamed to its final name; on
    /// failure the `.part` file is kept only with `--continue`.
    pub fn conclude(&mut self, result: Result<Response, Error>, ctx: &Context) -> Outcome {
        let outcome = match result {
            Ok(response) => self.finish_response(&response, ctx),
            Err(error) => match self.problem.take() {
                Some(problem) if error.kind() == ErrorKind::Aborted => Outcome::Failed(problem),
                _ => Outcome::Failed(Failure::from_error(&error)),
            },
        };
        if matches!(outcome, Outcome::Failed(_)) {
            self.drop_part(ctx);
        }
        outcome
    }

    /// Closes the `.part` file after a failure; removes it unless resuming
    /// (and only if this attempt made it: no syscall for one never created).
    fn drop_part(&mut self, ctx: &Context) {
        if let Some(Sink::Part(file)) = self.file.take() {
            // A close error only loses bytes that a resume would fetch again.
            file.close();
        }
        if !ctx.settings.resume && std::mem::take(&mut self.owns_part) {
            let _ = output::discard(&ctx.part_path(&self.job.name));
        }
    }

    /// Checks a completed response and saves its file.
    fn finish_response(&mut self, response: &Response, ctx: &Context) -> Outcome {
        let status = response.status();
        if status == 416 && self.part_already_complete(response) {
            self.notes
                .push(format!("{} was already complete", self.job.name));
            if self.saved_before {
                return self.keep_saved(ctx);
            }
            return self.save(&ctx.part_path(&self.job.name), self.resume_from, ctx);
        }
        if !(200..300).contains(&status) {
            return Outcome::Failed(Failure::from_status(status, response.header("retry-after")));
        }
        if self.file.is_none() {
            // No body byte arrived, so the head callback never ran.
            if let Err(failure) = self.open_output(response.head(), ctx) {
                return Outcome::Failed(failure);
            }
        }
        let (part, len) = match self.file.take() {
            Some(Sink::Part(file)) => file.close(),
            Some(Sink::Memory(body)) => {
                return match self.total {
                    Some(total) if total != body.len() as u64 => short_body(body.len(), total),
                    _ => self.publish(&body, ctx),
                }
            }
            None => return Outcome::Failed(Failure::permanent("no output file")),
        };
        match self.total {
            Some(total) if total != len => short_body(len, total),
            _ => self.save(&part, len, ctx),
        }
    }

    /// Writes a complete body held in memory under the job's final name,
    /// or the next free one (see [`OutDir::publish`]); through a `.part`
    /// file where the directory has no unnamed files.
    fn publish(&mut self, body: &[u8], ctx: &Context) -> Outcome {
        let bytes = body.len() as u64;
        let mut name = std::borrow::Cow::Borrowed(self.job.name.as_str());
        for _ in 0..MAX_NAME_TRIES {
            match ctx.out_dir.publish(&name, body) {
                Ok(Published::Saved) => {
                    let path = ctx.final_path(&name);
                    return Outcome::Saved { path, bytes };
                }
                Ok(Published::Taken) => {
                    name = ctx.names.borrow_mut().claim_next(&name).into();
                }
                Ok(Published::Unsupported) => {
                    let name = name.into_owned();
                    self.job.name = name;
                    return self.save_through_part(body, ctx);
                }
                Err(e) => return Outcome::Failed(io_failure(&ctx.final_path(&name), e)),
            }
        }
        Outcome::Failed(too_many_names(&self.job.name))
    }

    /// Saves a complete body held in memory as any file is saved: written
    /// to a `.part` file, which is then renamed.
    fn save_through_part(&mut self, body: &[u8], ctx: &Context) -> Outcome {
        let mut file = match self.create_part(ctx) {
            Ok(file) => file,
            Err(failure) => return Outcome::Failed(failure),
        };
        self.owns_part = true;
        if let Err(e) = file.write(body) {
            return Outcome::Failed(io_failure(file.path(), e));
        }
        let (part, len) = file.close();
        self.save(&part, len, ctx)
    }

    /// The file an earlier run saved is complete: it stays as it is, once
    /// its checksum (if the job has one) matches.
    fn keep_saved(&mut self, ctx: &Context) -> Outcome {
        let path = ctx.final_path(&self.job.name);
        if let Some(sum) = &self.job.checksum {
            match sum.verify_file(&path) {
                Ok(Ok(())) => {}
                Ok(Err(actual)) => {
                    return Outcome::Failed(Failure::permanent(sum.mismatch(&actual)))
                }
                Err(e) => return Outcome::Failed(io_failure(&path, e)),
            }
        }
        Outcome::Saved {
            path,
            bytes: self.resume_from,
        }
    }

    /// A `416` to our `Range` request whose `Content-Range: bytes */N` says
    /// the `.part` file already holds all `N` bytes.
    fn part_already_complete(&self, response: &Response) -> bool {
        let total = response
            .header("content-range")
            .and_then(|v| v.trim().strip_prefix("bytes */"))
            .and_then(|n| n.trim().parse::<u64>().ok());
        self.resume_from > 0 && total == Some(self.resume_from)
    }

    /// Verifies the complete `.part` file's checksum, if the job has one,
    /// and renames it to the final name. Without `--overwrite`, a name that
    /// is taken on disk (found by the rename itself, which never replaces)
    /// makes it take the next free one; with it, only a directory does.
    fn save(&mut self, part: &std::path::Path, bytes: u64, ctx: &Context) -> Outcome {
        if let Err(failure) = self.verify(part) {
            return Outcome::Failed(failure);
        }
        let overwrite = ctx.settings.overwrite;
        let mut name = std::borrow::Cow::Borrowed(self.job.name.as_str());
        for _ in 0..MAX_NAME_TRIES {
            let dest = ctx.final_path(&name);
            match output::promote(part, &dest, overwrite) {
                Ok(()) => return Outcome::Saved { path: dest, bytes },
                Err(e) if name_taken(&e) => {
                    name = ctx.names.borrow_mut().claim_next(&name).into();
                }
                Err(e) => return Outcome::Failed(io_failure(&dest, e)),
            }
        }
        Outcome::Failed(too_many_names(&self.job.name))
    }
}

impl Attempt {
    /// Checks the digest of the whole `.part` file (resumed bytes included)
    /// against the job's checksum. A mismatch is permanent (the server would
    /// send the same bytes again) and deletes the `.part` file, even with
    /// `--continue`: its content is known to be bad.
    fn verify(&mut self, part: &std::path::Path) -> Result<(), Failure> {
        let Some(sum) = &self.job.checksum else {
            return Ok(());
        };
        match sum.verify_file(part) {
            Ok(Ok(())) => {
                self.notes.push(format!(
                    "{} checksum of {} verified",
                    sum.algorithm, self.job.name
                ));
                Ok(())
            }
            Ok(Err(actual)) => {
                let _ = output::discard(part);
                Err(Failure::permanent(sum.mismatch(&actual)))
            }
            Err(e) => Err(io_failure(part, e)),
        }
    }
}

/// The header fields a 2xx head is acted on by, found in one pass over
/// the headers (each lookup by name would be a pass of its own).
#[derive(Default)]
struct Fields<'a> {
    length: Option<&'a str>,
    range: Option<&'a str>,
    disposition: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// The first value of each field in `head`.
    fn of(head: &'a Head) -> Fields<'a> {
        let mut fields = Fields::default();
        for (name, value) in head.headers() {
            let slot = if name.eq_ignore_ascii_case("content-length") {
                &mut fields.length
            } else if name.eq_ignore_ascii_case("content-range") {
                &mut fields.range
            } else if name.eq_ignore_ascii_case("content-disposition") {
                &mut fields.disposition
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        fields
    }
}

/// Whether a rename failed because its target name is taken: by anything
/// (without `--overwrite`), or by a directory.
pub(crate) fn name_taken(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::AlreadyExists
        || matches!(error.raw_os_error(), Some(libc::EISDIR | libc::ENOTEMPTY))
}

/// Every name tried was taken.
pub(crate) fn too_many_names(name: &str) -> Failure {
    Failure::permanent(format!(
        "{name}: {MAX_NAME_TRIES} names tried, each taken in the output directory"
    ))
}

/// Whether the environment names a proxy for http or https URLs, as
/// libcurl reads it (`http_proxy` only in lower case).
fn proxy_in_environment() -> bool {
    [
        "http_proxy",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// A body that ended before its `Content-Length` (`len` of `total` bytes).
fn short_body(len: impl std::fmt::Display, total: u64) -> Outcome {
    Outcome::Failed(Failure::transient(format!(
        "short body: got {len} of {total} bytes"
    )))
}

/// A failed file operation.
fn io_failure(path: &std::path::Path, error: std::io::Error) -> Failure {
    Failure::permanent(format!("{}: {error}", path.display()))
}

/// Parses `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let spec = value.trim().strip_prefix("bytes ")?;
    let (range, total) = spec.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, total))
}

/// Builds the request for `attempt`, its callbacks writing through it.
pub fn request(attempt: &Rc<RefCell<Attempt>>, ctx: &Rc<Context>) -> Request {
    let (url, resume_from) = {
        let a = attempt.borrow();
        (a.job.url.as_str().to_owned(), a.resume_from)
    };
    let mut request = base_request(url, ctx, ctx.settings.max_speed);
    if resume_from > 0 {
        request = request.header("Range", &format!("bytes={resume_from}-"));
    }
    let (head_attempt, head_ctx) = (Rc::clone(attempt), Rc::clone(ctx));
    let data_attempt = Rc::clone(attempt);
    request
        .on_head(move |head| head_attempt.borrow_mut().on_head(head, &head_ctx))
        .on_data(move |chunk| data_attempt.borrow_mut().on_data(chunk))
}

/// A GET of `url` with every option of `settings` (headers, timeouts, TLS,
/// proxy, HTTP version) and a receive-rate cap of `max_speed`, no callbacks.
pub fn base_request(url: impl Into<String>, ctx: &Context, max_speed: Option<u64>) -> Request {
    let settings = &ctx.settings;
    let mut request = Request::get(url)
        .user_agent(&settings.user_agent)
        .follow_redirects(true)
        .verify_tls(!settings.insecure);
    for line in &settings.headers {
        request = request.header_line(line);
    }
    if let Some(t) = settings.connect_timeout {
        request = request.connect_timeout(t);
    }
    if let Some(t) = settings.timeout {
        request = request.timeout(t);
    }
    match max_speed {
        Some(rate) => request = request.max_recv_speed(rate),
        None => request = request.buffer_size(RECEIVE_BUFFER),
    }
    if settings.http2_prior_knowledge {
        request = request.http_version(HttpVersionPref::Http2PriorKnowledge);
    }
    if let Some(ca) = &settings.cacert {
        request = request.ca_file(ca);
    }
    if let Some(proxy) = &settings.proxy {
        request = request.proxy(proxy);
    } else if ctx.direct {
        // libcurl: an empty proxy means none, the environment unread.
        request = request.proxy("");
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn paths_in_the_output_directory_are_what_join_makes() {
        use clap::Parser;
        for dir in ["out", "out/", "/tmp/a b", ".", "", "/"] {
            let cli = crate::cli::Cli::parse_from(["download", "http://h/x"]);
            let settings = Settings::new(&cli, PathBuf::from(dir)).unwrap();
            let ctx = Context::new(settings);
            let dir = std::path::Path::new(dir);
            assert_eq!(ctx.final_path("f.txt"), dir.join("f.txt"));
            assert_eq!(ctx.part_path("f.txt"), dir.join("f.txt.part"));
        }
    }
}
