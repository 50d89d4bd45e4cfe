//! `--demo`: a loopback HTTP server (hyper on a tokio runtime in a
//! background thread) serves a few hundred generated files; they are
//! downloaded through the same code path as any other run and every file's
//! SHA-256 is checked against what was served.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_DISPOSITION, CONTENT_RANGE, LOCATION, RANGE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::cli::{Cli, Verbosity};
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
    let catalog = Arc::new(Catalog::generate(SEED, FILE_COUNT));
    let server = DemoServer::start(Arc::clone(&catalog))
        .map_err(|e| Fatal::Runtime(format!("demo server: {e}")))?;
    let base = format!("http://{}", server.addr());
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
    let report = scheduler::download_all(settings.clone(), urls.clone(), interrupt)?;
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
    /// Served path (`/files/NAME`, `/report`) to index in `files`.
    routes: HashMap<String, usize>,
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
            routes.insert(served, files.len());
            files.push(DemoFile {
                url_path,
                name,
                body: Bytes::from(body),
            });
        }
        Catalog { files, routes }
    }

    /// Bytes of all files.
    fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.body.len() as u64).sum()
    }

    /// The answer to `request`.
    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        if let Some(name) = path.strip_prefix("/moved/") {
            return reply(StatusCode::FOUND)
                .header(LOCATION, format!("/files/{name}"))
                .body(Full::new(Bytes::new()))
                .unwrap_or_default();
        }
        let Some(file) = self.routes.get(path).map(|&i| &self.files[i]) else {
            return plain(StatusCode::NOT_FOUND, "no such file\n");
        };
        let mut response = serve_range(&file.body, request.headers().get(RANGE));
        if path == "/report" {
            let value = format!("attachment; filename=\"{DISPOSITION_NAME}\"");
            if let Ok(value) = value.parse() {
                response.headers_mut().insert(CONTENT_DISPOSITION, value);
            }
        }
        response
    }
}

/// A 200 with the whole body, or a 206 from `bytes=N-`, or a 416.
fn serve_range(body: &Bytes, range: Option<&hyper::header::HeaderValue>) -> Response<Full<Bytes>> {
    let len = body.len();
    let start = range
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok());
    let response = match start {
        None => reply(StatusCode::OK).body(Full::new(body.clone())),
        Some(start) if start < len => reply(StatusCode::PARTIAL_CONTENT)
            .header(CONTENT_RANGE, format!("bytes {start}-{}/{len}", len - 1))
            .body(Full::new(body.slice(start..))),
        Some(_) => reply(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(CONTENT_RANGE, format!("bytes */{len}"))
            .body(Full::new(Bytes::new())),
    };
    response.unwrap_or_default()
}

/// A response builder with `status`.
fn reply(status: StatusCode) -> hyper::http::response::Builder {
    Response::builder()
        .status(status)
        .header("accept-ranges", "bytes")
}

/// A short text response.
fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    reply(status)
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .unwrap_or_default()
}

/// The loopback server; dropping it stops the server and its thread.
struct DemoServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DemoServer {
    /// Listens on 127.0.0.1 (a free port) and serves `catalog` from a
    /// background thread running a single-threaded tokio runtime.
    fn start(catalog: Arc<Catalog>) -> io::Result<DemoServer> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("demo-server".to_owned())
            .spawn(move || runtime.block_on(serve(listener, catalog, stopped)))?;
        Ok(DemoServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stopped` fires; each is served (HTTP/1.1 or
/// h2c) on a task of its own.
async fn serve(
    listener: std::net::TcpListener,
    catalog: Arc<Catalog>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors, say: give connections time to close.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let catalog = Arc::clone(&catalog);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = catalog.respond(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            // A client that goes away mid-response is not the server's problem.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
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
