//! `--demo`: a loopback HTTP server ([`FileServer`], hyper on a tokio runtime
//! in a background thread) serves a few hundred generated files; they are
//! downloaded through the same code path as any other run and every file's
//! SHA-256 is checked against what was served.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::cli::{Cli, Entry, Verbosity};
use crate::file_server::{FileServer, Route};
use crate::report::Report;
use crate::{prepare_settings, print_report, print_stdout, scheduler, Fatal};

/// Seed of the generated file set: the same files every run.
const SEED: u64 = 0x00C0_FFEE_D0D0;

/// How many files the demo serves.
const FILE_COUNT: usize = 300;

/// The name the server gives the `Content-Disposition` file.
const DISPOSITION_NAME: &str = "uvcurl-demo-report.txt";

/// Runs the demo: serve, download, verify. Exit status 0 when every file
/// arrived intact, 1 otherwise, 130 when interrupted.
///
/// # Errors
/// If the output directory or the server cannot be set up, or the loop fails.
pub fn run(cli: &Cli, interrupt: Arc<AtomicBool>) -> Result<ExitCode, Fatal> {
    let out_dir = match &cli.output_dir {
        Some(dir) => dir.clone(),
        None => fresh_temp_dir().map_err(|e| Fatal::Runtime(format!("temp dir: {e}")))?,
    };
    let settings = prepare_settings(cli, out_dir.clone())?;
    let catalog = Catalog::generate(SEED, FILE_COUNT);
    let server = FileServer::start(catalog.routes.clone(), true)
        .map_err(|e| Fatal::Runtime(format!("demo server: {e}")))?;
    let base = server.url("");
    if settings.verbosity != Verbosity::Quiet {
        eprintln!(
            "demo: serving {} files ({}) on {base}, downloading into {}",
            catalog.files.len(),
            indicatif::HumanBytes(catalog.total_bytes()),
            out_dir.display()
        );
    }
    let urls = catalog
        .files
        .iter()
        .map(|f| url::Url::parse(&format!("{base}{}", f.url_path)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Fatal::Runtime(format!("demo URL: {e}")))?;
    let entries = urls.iter().cloned().map(Entry::plain).collect();
    let report = scheduler::download_all(settings.clone(), entries, interrupt)?;
    drop(server);
    print_report(&report, &settings);
    if report.interrupted {
        eprintln!("demo: interrupted; files not verified");
        return Ok(report.exit_code());
    }
    let problems = verify(&catalog, &urls, &report, &out_dir);
    let verdict = if problems.is_empty() {
        format!("demo: {} files verified", catalog.files.len())
    } else {
        format!(
            "demo: {} of {} files failed verification",
            problems.len(),
            catalog.files.len()
        )
    };
    for problem in &problems {
        eprintln!("demo: {problem}");
    }
    // Standard output carries the JSON summary alone when --json is given.
    if settings.json {
        eprintln!("{verdict}");
    } else {
        print_stdout(&verdict);
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A new, empty directory under the system's temporary directory.
fn fresh_temp_dir() -> io::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("uvcurl-demo-{}-{nanos:09}", std::process::id()));
    fs::create_dir(&dir)?;
    Ok(dir)
}

/// Checks each served file against what was saved for its URL: present,
/// inside the output directory, named as expected, same SHA-256.
fn verify(catalog: &Catalog, urls: &[url::Url], report: &Report, out_dir: &Path) -> Vec<String> {
    let saved: HashMap<&str, &Path> = report
        .saved
        .iter()
        .map(|s| (s.url.as_str(), s.path.as_path()))
        .collect();
    let mut problems = Vec::new();
    for (file, url) in catalog.files.iter().zip(urls) {
        let Some(path) = saved.get(url.as_str()) else {
            problems.push(format!("{url}: not downloaded"));
            continue;
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if path.parent() != Some(out_dir) {
            problems.push(format!("{url}: saved outside {}", out_dir.display()));
        } else if !name.is_some_and(|n| n.starts_with(&file.name)) {
            problems.push(format!(
                "{url}: saved as {}, expected {}",
                path.display(),
                file.name
            ));
        }
        match fs::read(path) {
            Ok(data) if Sha256::digest(&data) == Sha256::digest(&file.body) => {}
            Ok(data) => problems.push(format!(
                "{url}: {} has the wrong content ({} bytes, expected {})",
                path.display(),
                data.len(),
                file.body.len()
            )),
            Err(e) => problems.push(format!("{url}: cannot read {}: {e}", path.display())),
        }
    }
    problems
}

/// One generated file.
#[derive(Debug)]
struct DemoFile {
    /// The path the downloader asks for.
    url_path: String,
    /// The file name it should be saved under.
    name: String,
    /// Its content.
    body: Bytes,
}

/// The generated files and the paths the server answers.
#[derive(Debug)]
struct Catalog {
    files: Vec<DemoFile>,
    /// Served path (`/files/NAME`, `/report`, `/moved/NAME`) to its answer.
    routes: HashMap<String, Route>,
}

impl Catalog {
    /// `count` files from `seed`: one named by `Content-Disposition`, one
    /// empty, a few of 1–4 MiB, a few behind a 302 redirect, the rest 1–64 KiB.
    fn generate(seed: u64, count: usize) -> Catalog {
        let mut rng = XorShift::new(seed);
        let mut files = Vec::with_capacity(count);
        let mut routes = HashMap::new();
        for i in 0..count {
            let (name, size) = match i {
                0 => (DISPOSITION_NAME.to_owned(), 24 * 1024),
                1 => ("empty.txt".to_owned(), 0),
                _ if i % 50 == 25 => (format!("large-{i:03}.bin"), rng.between(1 << 20, 4 << 20)),
                _ => (format!("file-{i:03}.bin"), rng.between(1 << 10, 64 << 10)),
            };
            let mut body = vec![0u8; size];
            XorShift::new(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .fill(&mut body);
            let (served, url_path) = match i {
                0 => ("/report".to_owned(), "/report?id=1".to_owned()),
                _ if i % 60 == 7 => (format!("/files/{name}"), format!("/moved/{name}")),
                _ => (format!("/files/{name}"), format!("/files/{name}")),
            };
            let body = Bytes::from(body);
            let mut route = Route::file(body.clone());
            if i == 0 {
                route.disposition = Some(format!("attachment; filename=\"{DISPOSITION_NAME}\""));
            }
            if url_path.starts_with("/moved/") {
                let redirect = Route {
                    redirect: Some(served.clone()),
                    ..Route::default()
                };
                routes.insert(url_path.clone(), redirect);
            }
            routes.insert(served, route);
            files.push(DemoFile {
                url_path,
                name,
                body,
            });
        }
        Catalog { files, routes }
    }

    /// Bytes of all files.
    fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.body.len() as u64).sum()
    }
}

/// A small deterministic generator (xorshift64*), for sizes and contents.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `low..high`.
    fn between(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low) as u64) as usize
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}
