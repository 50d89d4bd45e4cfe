//! Benchmark runner: uvcurl against hand-written C baselines (libcurl's own
//! loop and careful libuv glue, both with a pool of easy handles), a C host
//! of uvcurl's C ABI, reqwest and the downloader example, all fetching from
//! one nginx on 127.0.0.1.
//!
//! `vendor/cargo build --release --example download --example bench_multi &&
//! vendor/cargo bench --bench compare`
//! runs every workload; `-- --quick` runs one small smoke workload;
//! `-- --workload NAME` (repeatable) picks workloads; `-- --strace` counts
//! syscalls per request for the 10k x 1 KiB HTTP/1.1 workload; `-- --million`
//! runs the leak check of compare/million.rs instead; `-- --help` lists the
//! options.
//!
//! The parent process starts nginx (its own config, prefix and pid file in a
//! temporary directory, `daemon off`, killed on drop), generates the files,
//! then runs every client in a child process — this binary again with
//! `--client NAME`, one of the C programs in `benches/compare/c/`, or the
//! downloader — and reads the child's CPU time and peak RSS from `wait4`.
//! The C programs are compiled with `cc` against the very libcurl and libuv
//! uvcurl links: libcurl's headers named by build.rs in `$OUT_DIR/uvcurl-c.env`,
//! libuv-sys2's (`tests/native/uv_headers.rs`)
//! and `target/<profile>/deps/libuvcurl.a` (which contains both), cached in
//! `target/<profile>/compare-c/`. A run in which any transfer failed or any
//! body had the wrong length is not reported: the runner exits non-zero
//! instead. The ratio columns divide by the C libuv glue (`c-glue`).

#[path = "compare/child.rs"]
mod child;
#[path = "compare/million.rs"]
mod million;
#[path = "compare/split.rs"]
mod split;
#[path = "compare/tools.rs"]
mod tools;
#[path = "../tests/native/uv_headers.rs"]
mod uv_headers;

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The clients, in the order the tables list them; [`BASELINE`] is the one
/// the ratio columns divide by.
const CLIENTS: [&str; 12] = [
    "c-glue",
    "libcurl",
    "uvcurl",
    "uvcurl-own",
    "capi",
    "client1",
    "client2",
    "client4",
    "reqwest",
    "reqwest-mt",
    "libcurl-fresh",
    "download",
];

/// The ratio columns' baseline: the hand-written libuv glue in C (the
/// targets of issue 13 are ratios to it). Without it, the first client.
const BASELINE: &str = "c-glue";

/// What each client is, printed under the first table.
const LEGEND: [(&str, &str); 12] = [
    ("c-glue", "hand-written libuv glue in C (c/uv_glue.c): lazy REMOVE, uv_poll_start on change, pool of easy handles re-armed with CURLOPT_URL"),
    ("libcurl", "libcurl's own loop in C (c/curl_poll.c): curl_multi_poll + curl_multi_perform, same easy pool"),
    ("uvcurl", "uvcurl `Multi` (Rust, one Request per transfer)"),
    ("uvcurl-own", "the same uvcurl `Multi` client in a binary of its own (examples/bench_multi.rs), as the C clients are: its peak RSS carries no reqwest/tokio code"),
    ("capi", "C host of uvcurl's C ABI (c/uvcurl_capi.c): uvcurl_multi_add, same easy pool, own uv_loop_t"),
    ("client1", "uvcurl `Client`, one loop thread, futures on a current-thread tokio runtime"),
    ("client2", "uvcurl `Client`, two loop threads, futures on a current-thread tokio runtime"),
    ("client4", "uvcurl `Client`, four loop threads, futures on a current-thread tokio runtime"),
    ("reqwest", "reqwest on a current-thread tokio runtime"),
    ("reqwest-mt", "reqwest on a multi-thread tokio runtime (one worker per CPU)"),
    ("libcurl-fresh", "libcurl's own loop (Rust), a fresh easy handle per transfer"),
    ("download", "the downloader example, writing every file"),
];

/// The C clients: name, source in `benches/compare/c/`.
const C_CLIENTS: [(&str, &str); 3] = [
    ("c-glue", "uv_glue.c"),
    ("libcurl", "curl_poll.c"),
    ("capi", "uvcurl_capi.c"),
];

/// What a table row calls a client.
fn label(client: &str) -> &str {
    match client {
        "libcurl-fresh" => "libcurl (fresh easy per transfer)",
        other => other,
    }
}

/// Longest any one client run may take before it is killed and the run fails.
const CHILD_DEADLINE: Duration = Duration::from_secs(300);

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// A set of generated files of one size under the document root.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileSet {
    dir: &'static str,
    count: usize,
    size: u64,
}

const SMALL: FileSet = FileSet {
    dir: "k",
    count: 10_000,
    size: KIB,
};
const MEDIUM: FileSet = FileSet {
    dir: "m",
    count: 200,
    size: MIB,
};
const HUGE: FileSet = FileSet {
    dir: "g",
    count: 1,
    size: GIB,
};

#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    files: FileSet,
    /// How many of the set's files to fetch.
    count: usize,
    /// Transfers in flight; the scale series runs each level.
    inflight: &'static [usize],
    h2c: bool,
    /// libcurl receive buffer for the libcurl-based clients (None: 16 KiB).
    buffer: Option<usize>,
    /// Count body bytes in a data callback instead of collecting the body.
    stream: bool,
    /// Every request sends `Connection: close` (a new connection each).
    close: bool,
}

const WORKLOADS: [Workload; 8] = [
    Workload {
        name: "h1-1k",
        files: SMALL,
        count: 10_000,
        inflight: &[50],
        h2c: false,
        buffer: None,
        stream: true,
        close: false,
    },
    Workload {
        name: "h2c-1k",
        files: SMALL,
        count: 10_000,
        inflight: &[50],
        h2c: true,
        buffer: None,
        stream: true,
        close: false,
    },
    Workload {
        name: "h1-1m",
        files: MEDIUM,
        count: 200,
        inflight: &[8],
        h2c: false,
        buffer: Some(512 * 1024),
        stream: false,
        close: false,
    },
    Workload {
        name: "h1-1g",
        files: HUGE,
        count: 1,
        inflight: &[1],
        h2c: false,
        buffer: Some(512 * 1024),
        stream: true,
        close: false,
    },
    Workload {
        name: "scale",
        files: SMALL,
        count: 10_000,
        inflight: &[10, 100, 1_000, 10_000],
        h2c: false,
        buffer: None,
        stream: true,
        close: false,
    },
    Workload {
        name: "h1-1k-1000",
        files: SMALL,
        count: 10_000,
        inflight: &[1_000],
        h2c: false,
        buffer: None,
        stream: true,
        close: false,
    },
    Workload {
        name: "h1-close-1k",
        files: SMALL,
        count: 10_000,
        inflight: &[50],
        h2c: false,
        buffer: None,
        stream: true,
        close: true,
    },
    Workload {
        name: "quick",
        files: SMALL,
        count: 300,
        inflight: &[20],
        h2c: false,
        buffer: None,
        stream: false,
        close: false,
    },
];

const USAGE: &str = "\
usage: vendor/cargo bench --bench compare -- [OPTIONS]

  --quick              one small workload (300 x 1 KiB, 20 in flight), 2 rounds
  --workload NAME      run only NAME (repeatable): h1-1k h2c-1k h1-1m h1-1g scale
                       h1-1k-1000 h1-close-1k quick, and files-1k (the downloader
                       against curl --parallel, wget2 and aria2c writing 10k files)
  --rounds N           rounds per workload (default 3)
  --clients A,B        only these clients (default: all of c-glue libcurl uvcurl
                       uvcurl-own capi client1 client2 client4 reqwest reqwest-mt
                       libcurl-fresh download);
                       the ratio columns divide by c-glue (else the first client)
  --strace             also count syscalls per request (strace -c -f) for h1-1k,
                       every chosen client but download
  --split              the --split benchmark instead (one 100 MiB file, nginx
                       limit_rate 20m: the downloader, --split 8, curl, aria2c)
  --download-bin PATH  the downloader binary (default: target/<profile>/examples/download)
  --multi-bin PATH     the uvcurl-own binary (default: target/<profile>/examples/bench_multi)
  --keep               keep the temporary directory (nginx config, logs, files)
  --million            instead of the workloads: 1,000,000 x 1 KiB, 200 in flight,
                       through one Multi and a 2-loop Client, sampling RSS and open
                       descriptors every 10,000 (a leak check; minutes)
  --million-count N    the same with N transfers (e.g. 200000 for a quick check)

Build the downloader and uvcurl-own first:
  vendor/cargo build --release --example download --example bench_multi";

struct Options {
    workloads: Vec<Workload>,
    rounds: usize,
    clients: Vec<&'static str>,
    strace: bool,
    download_bin: Option<PathBuf>,
    multi_bin: Option<PathBuf>,
    keep: bool,
    /// Run the `--split` benchmark (benches/compare/split.rs).
    split: bool,
    /// Run the files-1k workload (the downloader against the tools).
    tools: bool,
    /// `--million`: the long leak run instead of the workloads (its count).
    million: Option<usize>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client") {
        if let Some(client) = args.get(1).filter(|c| c.starts_with("million-")) {
            return million::child(client, &args[2..]);
        }
        return child::main(&args[1..]);
    }
    // `cargo test --benches` runs this binary without `--bench`: do nothing
    // then, rather than start a benchmark of several minutes.
    if args.is_empty() {
        println!("compare: run with `vendor/cargo bench --bench compare` (see --help)");
        return ExitCode::SUCCESS;
    }
    let options = match parse_options(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("compare: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("compare: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_options(args: &[String]) -> Result<Option<Options>, String> {
    let mut options = Options {
        workloads: Vec::new(),
        rounds: 3,
        clients: CLIENTS.to_vec(),
        strace: false,
        download_bin: None,
        multi_bin: None,
        keep: false,
        split: false,
        tools: false,
        million: None,
    };
    let mut quick = false;
    let mut rounds = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            // Passed by `cargo bench`.
            "--bench" => {}
            "--help" | "-h" => return Ok(None),
            "--quick" => quick = true,
            "--strace" => options.strace = true,
            "--keep" => options.keep = true,
            "--split" => options.split = true,
            "--million" => options.million = Some(1_000_000),
            "--million-count" => {
                let n: usize = value("--million-count")?
                    .parse()
                    .map_err(|_| "--million-count needs a number".to_string())?;
                options.million = Some(n.max(1));
            }
            "--workload" => {
                let name = value("--workload")?;
                if name == tools::NAME {
                    options.tools = true;
                    continue;
                }
                let workload = WORKLOADS
                    .iter()
                    .find(|w| w.name == name)
                    .ok_or_else(|| format!("unknown workload {name}"))?;
                options.workloads.push(*workload);
            }
            "--rounds" => {
                let n: usize = value("--rounds")?
                    .parse()
                    .map_err(|_| "--rounds needs a number".to_string())?;
                rounds = Some(n.clamp(1, 50));
            }
            "--clients" => {
                let list = value("--clients")?;
                options.clients.clear();
                for name in list.split(',') {
                    let client = CLIENTS
                        .iter()
                        .find(|c| **c == name)
                        .ok_or_else(|| format!("unknown client {name}"))?;
                    options.clients.push(client);
                }
            }
            "--download-bin" => options.download_bin = Some(value("--download-bin")?.into()),
            "--multi-bin" => options.multi_bin = Some(value("--multi-bin")?.into()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if quick {
        options.workloads = vec![workload("quick")];
        options.rounds = 2;
    } else if options.workloads.is_empty() && !options.strace && !options.split && !options.tools {
        options.tools = true;
        options.workloads = WORKLOADS
            .iter()
            .filter(|w| w.name != "quick")
            .copied()
            .collect();
    }
    if let Some(n) = rounds {
        options.rounds = n;
    }
    Ok(Some(options))
}

fn workload(name: &str) -> Workload {
    *WORKLOADS
        .iter()
        .find(|w| w.name == name)
        .expect("a known workload")
}

fn run(options: &Options) -> Result<(), String> {
    raise_nofile_limit();
    if let Some(count) = options.million {
        return run_million(options, count);
    }
    if options.split {
        let bin = find_downloader(options.download_bin.as_deref())?;
        let scratch = Scratch::new(options.keep)?;
        println!("{}", machine_line());
        println!("{}", split::run(&bin, &scratch.path, options.rounds)?);
        if options.workloads.is_empty() && !options.strace {
            return Ok(());
        }
    }
    let download_bin = if options.clients.contains(&"download") {
        Some(find_downloader(options.download_bin.as_deref())?)
    } else {
        None
    };
    let multi_bin = if options.clients.contains(&"uvcurl-own") {
        Some(find_example(
            "bench_multi",
            "the uvcurl-own client",
            "--multi-bin",
            options.multi_bin.as_deref(),
        )?)
    } else {
        None
    };
    let nginx = find_tool("nginx", &["/usr/sbin/nginx"])?;
    let strace = if options.strace {
        Some(find_tool("strace", &["/usr/bin/strace"])?)
    } else {
        None
    };
    let c_bins = build_c_clients(&options.clients)?;

    let scratch = Scratch::new(options.keep)?;
    // (set, files used): only as many files as the workloads fetch.
    let mut sets: Vec<(FileSet, usize)> = options
        .workloads
        .iter()
        .map(|w| (w.files, w.count))
        .collect();
    if options.strace {
        sets.push((SMALL, workload("h1-1k").count));
    }
    if options.tools {
        sets.push((SMALL, tools::COUNT));
    }
    for set in [SMALL, MEDIUM, HUGE] {
        let used = sets
            .iter()
            .filter(|(s, _)| *s == set)
            .map(|(_, n)| *n)
            .max();
        if let Some(used) = used {
            generate(&scratch.path.join("www"), set, used.min(set.count))?;
        }
    }
    let server = Nginx::start(&nginx, &scratch.path)?;
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let runner = Runner {
        me,
        c_bins,
        download_bin,
        multi_bin,
        server: &server,
        scratch: &scratch.path,
    };

    println!("{}", machine_line());
    println!();
    for (client, what) in LEGEND {
        if options.clients.contains(&client) {
            println!("- {}: {what}", label(client));
        }
    }
    for workload in &options.workloads {
        let mut levels = Vec::new();
        for &inflight in workload.inflight {
            let mut results: Vec<Vec<Measure>> = vec![Vec::new(); options.clients.len()];
            for round in 0..options.rounds {
                // Alternate the order: each round starts with the next client.
                for k in 0..options.clients.len() {
                    let index = (k + round) % options.clients.len();
                    let client = options.clients[index];
                    let measure = runner.measure(client, workload, inflight)?;
                    results[index].push(measure);
                }
            }
            levels.push((inflight, results));
        }
        print!("{}", render(workload, options, &levels));
        std::io::stdout().flush().ok();
    }
    if options.tools {
        let download = find_downloader(options.download_bin.as_deref())?;
        print!(
            "{}",
            tools::run(&server, &scratch.path, &download, options.rounds)?
        );
    }
    if let Some(strace) = strace {
        print!("{}", runner.strace_report(&strace, &options.clients)?);
    }
    Ok(())
}

/// `--million`: nginx with one 1 KiB file, then the leak run of million.rs.
fn run_million(options: &Options, count: usize) -> Result<(), String> {
    let nginx = find_tool("nginx", &["/usr/sbin/nginx"])?;
    let scratch = Scratch::new(options.keep)?;
    generate(&scratch.path.join("www"), SMALL, 1)?;
    let server = Nginx::start(&nginx, &scratch.path)?;
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    println!("{}", machine_line());
    let report = million::run(&me, &server.url(false, SMALL, 0), count)?;
    print!("{report}");
    Ok(())
}

/// Lets this process (and so nginx and the clients) open as many files as the
/// hard limit allows: the scale series keeps 10,000 connections open.
fn raise_nofile_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscall on a local struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    limit.rlim_cur
}

/// The downloader's binary, or `explicit`.
fn find_downloader(explicit: Option<&Path>) -> Result<PathBuf, String> {
    find_example("download", "the downloader", "--download-bin", explicit)
}

/// The binary of example `name` (`what` in messages), or `explicit`.
fn find_example(
    name: &str,
    what: &str,
    option: &str,
    explicit: Option<&Path>,
) -> Result<PathBuf, String> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            // This binary is target/<profile>/deps/compare-HASH.
            let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
            let profile_dir = me
                .parent()
                .and_then(Path::parent)
                .ok_or("cannot locate the target directory")?;
            profile_dir.join("examples").join(name)
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{what} {} is missing: build it first with \
             `vendor/cargo build --release --example {name}`, or pass {option} \
             (or leave it out with --clients c-glue,uvcurl,reqwest)",
            path.display()
        ))
    }
}

/// Compiles the chosen C clients (in parallel) against the libcurl and libuv
/// inside this build's `libuvcurl.a`, unless an up-to-date binary is cached
/// in `target/<profile>/compare-c/`. Returns (client, binary) pairs.
fn build_c_clients(clients: &[&str]) -> Result<Vec<(&'static str, PathBuf)>, String> {
    let wanted: Vec<(&'static str, &'static str)> = C_CLIENTS
        .iter()
        .copied()
        .filter(|(name, _)| clients.contains(name))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // This binary is target/<profile>/deps/compare-HASH; cargo built
    // deps/libuvcurl.a for it (crate-type staticlib), with libcurl and libuv.
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let deps = me.parent().ok_or("cannot locate target/<profile>/deps")?;
    let archive = deps.join("libuvcurl.a");
    if !archive.is_file() {
        return Err(format!("{} is missing", archive.display()));
    }
    let env_file = Path::new(env!("OUT_DIR")).join("uvcurl-c.env");
    let env_text =
        fs::read_to_string(&env_file).map_err(|e| format!("{}: {e}", env_file.display()))?;
    let get = |key: &str| {
        env_text
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .map(str::to_string)
            .ok_or_else(|| format!("{}: no {key}", env_file.display()))
    };
    let curl_include = get("CURL_INCLUDE")?;
    let uv_include = uv_headers::libuv_include()?;
    let native_libs = get("NATIVE_STATIC_LIBS")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source_dir = root.join("benches/compare/c");
    let out_dir = deps
        .parent()
        .ok_or("cannot locate target/<profile>")?
        .join("compare-c");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    let inputs_newest = [
        source_dir.join("common.h"),
        root.join("include/uvcurl.h"),
        archive.clone(),
        env_file.clone(),
    ]
    .iter()
    .filter_map(|p| modified(p))
    .max();

    let mut building = Vec::new();
    let mut built = Vec::new();
    for (name, source) in wanted {
        let source = source_dir.join(source);
        let exe = out_dir.join(name);
        let newest = modified(&source).max(inputs_newest);
        let fresh = matches!((modified(&exe), newest), (Some(e), Some(n)) if e >= n);
        if !fresh {
            let mut cc = Command::new("cc");
            cc.args(["-O2", "-g", "-Wall", "-Wextra", "-std=gnu11"])
                .arg("-I")
                .arg(root.join("include"))
                .arg("-I")
                .arg(&curl_include)
                .arg("-I")
                .arg(&uv_include)
                .arg(&source)
                .arg(&archive)
                .args(native_libs.split_whitespace())
                .arg("-o")
                .arg(&exe)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let child = cc
                .spawn()
                .map_err(|e| format!("cc {}: {e}", source.display()))?;
            building.push((name, source, child));
        }
        built.push((name, exe));
    }
    let mut failures = String::new();
    for (name, source, child) in building {
        let output = child
            .wait_with_output()
            .map_err(|e| format!("cc {}: {e}", source.display()))?;
        if !output.status.success() {
            let exe = out_dir.join(name);
            let _ = fs::remove_file(&exe);
            let _ = write!(
                failures,
                "cc {} failed ({}):\n{}{}",
                source.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    if failures.is_empty() {
        Ok(built)
    } else {
        Err(failures)
    }
}

/// The tool at one of `paths` or on PATH. vendor/bootstrap installs the
/// Debian package of the same name (`vendor/cargo bench` and `vendor/cargo
/// test` run it); this runner installs nothing.
fn find_tool(name: &str, paths: &[&str]) -> Result<PathBuf, String> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default();
    paths
        .iter()
        .map(PathBuf::from)
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{name} is missing: install it with `vendor/bootstrap {name}` \
                 (`vendor/cargo bench` and `vendor/cargo test` do that for nginx)"
            )
        })
}

/// A temporary directory, removed on drop unless kept.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    fn new(keep: bool) -> Result<Scratch, String> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("uvcurl-bench-{}-{}", std::process::id(), stamp));
        fs::create_dir_all(path.join("www")).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Scratch { path, keep })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("compare: kept {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn file_name(index: usize) -> String {
    format!("f{index:05}")
}

/// Writes the set's files (the 1 GiB one sparse: nginx serves its zeros from
/// the page cache, the disk is not what is measured).
fn generate(www: &Path, set: FileSet, count: usize) -> Result<(), String> {
    let dir = www.join(set.dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let pattern: Vec<u8> = (0..set.size.min(MIB))
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz\n"[(i % 37) as usize])
        .collect();
    for index in 0..count {
        let path = dir.join(file_name(index));
        let result = if set.size > MIB {
            fs::File::create(&path).and_then(|f| f.set_len(set.size))
        } else {
            fs::write(&path, &pattern)
        };
        result.map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// nginx in the foreground (`daemon off`, one process), killed on drop.
struct Nginx {
    child: Child,
    h1_port: u16,
    h2c_port: u16,
}

impl Nginx {
    fn start(binary: &Path, scratch: &Path) -> Result<Nginx, String> {
        let prefix = scratch.join("nginx");
        fs::create_dir_all(prefix.join("logs"))
            .map_err(|e| format!("{}: {e}", prefix.display()))?;
        let h1_port = free_port()?;
        let h2c_port = free_port()?;
        let p = prefix.display();
        let www = scratch.join("www");
        let www = www.display();
        // Descriptors: one per connection, plus the open-file cache.
        let cache = 1_000;
        let connections = nofile_limit().clamp(4096, 65_536) - cache - 100;
        // `master_process off`: one process, which runs as whoever started
        // it, so no `user` directive is needed (nor honoured). Every path
        // nginx writes to is under the prefix. `listen ... http2` without
        // `ssl` is cleartext HTTP/2 with prior knowledge (h2c) in nginx 1.22.
        let config = format!(
            "daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;
events {{ worker_connections {connections}; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    open_file_cache max={cache} inactive=300s;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    http2_max_concurrent_streams 1024;
    server {{ listen 127.0.0.1:{h1_port} backlog=16384; root {www}; }}
    server {{ listen 127.0.0.1:{h2c_port} http2 backlog=16384; root {www}; }}
}}
",
            nofile = nofile_limit(),
        );
        let conf_path = prefix.join("nginx.conf");
        fs::write(&conf_path, config).map_err(|e| format!("{}: {e}", conf_path.display()))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let mut server = Nginx {
            child,
            h1_port,
            h2c_port,
        };
        // Wait (at most 10 s) until both ports accept connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..1_000 {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "nginx exited at once ({status}); see its log above"
                ));
            }
            let up = [h1_port, h2c_port]
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok());
            if up {
                return Ok(server);
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("nginx did not start listening within 10 s".into())
    }

    fn url(&self, h2c: bool, set: FileSet, index: usize) -> String {
        let port = if h2c { self.h2c_port } else { self.h1_port };
        format!("http://127.0.0.1:{port}/{}/{}", set.dir, file_name(index))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: graceful; then SIGKILL if it has not gone within 5 s.
        // SAFETY: the child is ours and not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGQUIT) };
        for _ in 0..500 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// One client run, as the parent saw it.
#[derive(Clone, Copy)]
struct Measure {
    wall: f64,
    cpu: f64,
    /// Peak resident set, bytes.
    rss: u64,
}

struct Runner<'a> {
    me: PathBuf,
    /// The compiled C clients, by name.
    c_bins: Vec<(&'static str, PathBuf)>,
    download_bin: Option<PathBuf>,
    /// `examples/bench_multi`, for `uvcurl-own`.
    multi_bin: Option<PathBuf>,
    server: &'a Nginx,
    scratch: &'a Path,
}

impl Runner<'_> {
    /// The URL list for a workload, written once.
    fn url_list(&self, workload: &Workload) -> Result<PathBuf, String> {
        let path = self.scratch.join(format!(
            "urls-{}-{}-{}.txt",
            if workload.h2c { "h2c" } else { "h1" },
            workload.files.dir,
            workload.count
        ));
        if !path.exists() {
            let mut text = String::new();
            for index in 0..workload.count {
                let _ = writeln!(
                    text,
                    "{}",
                    self.server.url(workload.h2c, workload.files, index)
                );
            }
            fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(path)
    }

    fn command(&self, client: &str, workload: &Workload, inflight: usize, list: &Path) -> Command {
        if client == "download" {
            let bin = self.download_bin.as_ref().expect("checked in run()");
            let mut command = Command::new(bin);
            command
                .arg("-q")
                .arg("--retries")
                .arg("0")
                .arg("-o")
                .arg(self.scratch.join("out"))
                .arg("-j")
                .arg(inflight.to_string())
                .arg("-i")
                .arg(list);
            if workload.h2c {
                command.arg("--http2-prior-knowledge");
            }
            if workload.close {
                command.arg("-H").arg("Connection: close");
            }
            command
        } else {
            let mut command = match self.c_bins.iter().find(|(name, _)| *name == client) {
                Some((_, bin)) => Command::new(bin),
                None if client == "uvcurl-own" => {
                    let mut command =
                        Command::new(self.multi_bin.as_ref().expect("checked in run()"));
                    command.arg("uvcurl");
                    command
                }
                None => {
                    let mut command = Command::new(&self.me);
                    command.arg("--client").arg(client);
                    command
                }
            };
            command
                .arg("--urls")
                .arg(list)
                .arg("--size")
                .arg(workload.files.size.to_string())
                .arg("--inflight")
                .arg(inflight.to_string());
            if workload.h2c {
                command.arg("--h2c");
            }
            // uvcurl's Rust clients run with their default options (their
            // receive buffer follows the libcurl version); the C clients
            // and the fresh-handle libcurl client set the workload's.
            let uvcurl_defaults = matches!(
                client,
                "uvcurl" | "uvcurl-own" | "client1" | "client2" | "client4"
            );
            if let (Some(buffer), false) = (workload.buffer, uvcurl_defaults) {
                command.arg("--buffer").arg(buffer.to_string());
            }
            if workload.stream {
                command.arg("--stream");
            }
            if workload.close {
                command.arg("--close");
            }
            command
        }
    }

    fn measure(
        &self,
        client: &str,
        workload: &Workload,
        inflight: usize,
    ) -> Result<Measure, String> {
        let list = self.url_list(workload)?;
        let out = self.scratch.join("out");
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let mut command = self.command(client, workload, inflight, &list);
        let what = format!("{client} on {} at {inflight} in flight", workload.name);
        let (measure, log) = run_child(&mut command, self.scratch, &what)?;
        if client == "download" {
            verify_downloads(&out, workload).map_err(|e| format!("{what}: {e}\n{log}"))?;
        } else {
            // The child checked every status and length; it says so.
            let expected = format!("ok {} ", workload.count);
            if !log.starts_with(&expected) {
                return Err(format!("{what}: unexpected report: {log}"));
            }
        }
        let _ = fs::remove_dir_all(&out);
        Ok(measure)
    }

    /// Syscalls per request for the h1-1k workload, under `strace -c -f`,
    /// less what the same client does with an empty URL list.
    fn strace_report(&self, strace: &Path, chosen: &[&str]) -> Result<String, String> {
        let workload = workload("h1-1k");
        let list = self.url_list(&workload)?;
        let empty = self.scratch.join("urls-empty.txt");
        fs::write(&empty, "").map_err(|e| format!("{}: {e}", empty.display()))?;
        let clients: Vec<&str> = chosen
            .iter()
            .copied()
            .filter(|c| *c != "download")
            .collect();
        let mut counts = Vec::new();
        for &client in &clients {
            let mut per_list = Vec::new();
            for (list, n) in [(&list, workload.count), (&empty, 0)] {
                let trace = self.scratch.join(format!("strace-{client}-{n}.txt"));
                let inner = self.command(client, &workload, workload.inflight[0], list);
                let mut command = Command::new(strace);
                command
                    .arg("-f")
                    .arg("-c")
                    .arg("-o")
                    .arg(&trace)
                    .arg(inner.get_program())
                    .args(inner.get_args());
                let what = format!("strace of {client} ({n} URLs)");
                let (_, log) = run_child(&mut command, self.scratch, &what)?;
                if !log.starts_with(&format!("ok {n} ")) {
                    return Err(format!("{what}: unexpected report: {log}"));
                }
                let text =
                    fs::read_to_string(&trace).map_err(|e| format!("{}: {e}", trace.display()))?;
                per_list.push(parse_strace(&text));
            }
            counts.push(per_list);
        }
        let n = workload.count as f64;
        let per_request = |counts: &[Vec<(String, u64)>], name: &str| {
            let get = |table: &Vec<(String, u64)>| {
                table.iter().find(|(s, _)| s == name).map_or(0, |(_, c)| *c)
            };
            (get(&counts[0]) as f64 - get(&counts[1]) as f64).max(0.0) / n
        };
        let mut names: Vec<String> = Vec::new();
        for per_list in &counts {
            for (name, _) in &per_list[0] {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        let mut rows: Vec<(String, Vec<f64>)> = names
            .iter()
            .map(|name| {
                let values = counts.iter().map(|c| per_request(c, name)).collect();
                (name.clone(), values)
            })
            .filter(|(name, values): &(String, Vec<f64>)| {
                name == "total" || values.iter().any(|v| *v >= 0.05)
            })
            .collect();
        rows.sort_by(|a, b| {
            let key = |r: &(String, Vec<f64>)| (r.0 != "total", -r.1.iter().sum::<f64>());
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut text = format!(
            "\n## syscalls per request: {} x 1 KiB, HTTP/1.1, {} in flight \
             (strace -c -f, less the same client with no URLs)\n\n",
            workload.count, workload.inflight[0]
        );
        let labels: Vec<&str> = clients.iter().map(|c| label(c)).collect();
        let _ = writeln!(text, "| syscall | {} |", labels.join(" | "));
        let _ = writeln!(text, "|---|{}", "---:|".repeat(clients.len()));
        let mut capi_total = None;
        for (name, values) in rows {
            if name == "total" {
                capi_total = clients.iter().position(|c| *c == "capi").map(|i| values[i]);
            }
            let cells: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
            let _ = writeln!(text, "| {name} | {} |", cells.join(" | "));
        }
        if let Some(total) = capi_total {
            let _ = writeln!(
                text,
                "\ntarget: capi {total:.2} syscalls/request (<= 2.2: {})",
                if total <= 2.2 { "met" } else { "MISSED" }
            );
        }
        Ok(text)
    }
}

/// (syscall, calls) from `strace -c` output, with the "total" line.
fn parse_strace(text: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors,] syscall
        if fields.len() < 5 || fields[0].parse::<f64>().is_err() {
            continue;
        }
        let name = fields[fields.len() - 1];
        if let Ok(calls) = fields[3].parse::<u64>() {
            out.push((name.to_string(), calls));
        }
    }
    out
}

/// Runs a child with its output in files, kills it after [`CHILD_DEADLINE`],
/// and returns its wall time, CPU time and peak RSS with its stdout (or an
/// error with its stderr when it failed).
fn run_child(
    command: &mut Command,
    scratch: &Path,
    what: &str,
) -> Result<(Measure, String), String> {
    let stdout_path = scratch.join("child.out");
    let stderr_path = scratch.join("child.err");
    let stdout = fs::File::create(&stdout_path).map_err(|e| format!("child.out: {e}"))?;
    let stderr = fs::File::create(&stderr_path).map_err(|e| format!("child.err: {e}"))?;
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{what}: spawn: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let exited = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let exited = Arc::clone(&exited);
        std::thread::spawn(move || {
            let deadline = Instant::now() + CHILD_DEADLINE;
            while !exited.load(Ordering::Acquire) {
                if Instant::now() > deadline {
                    // SAFETY: the child is not reaped before `exited` is set
                    // (waitid below leaves it a zombie), so the pid is ours.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        })
    };
    // Wait for the exit without reaping, so the watchdog never signals a
    // reused pid; then reap with wait4 for the rusage.
    // SAFETY: a zeroed siginfo_t is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointer; our own child.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    exited.store(true, Ordering::Release);
    let killed = watchdog.join().unwrap_or(false);
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers; our own, exited child.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    drop(child);
    if rc != pid {
        return Err(format!(
            "{what}: wait4: {}",
            std::io::Error::last_os_error()
        ));
    }
    let out = fs::read_to_string(&stdout_path).unwrap_or_default();
    let err = fs::read_to_string(&stderr_path).unwrap_or_default();
    if killed {
        return Err(format!("{what}: killed after {CHILD_DEADLINE:?}\n{err}"));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{what}: exit status {status:#x}\n{out}{err}"));
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let measure = Measure {
        wall,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        rss: usage.ru_maxrss as u64 * 1024,
    };
    Ok((measure, out))
}

/// Every file downloaded, complete, and nothing else left behind.
fn verify_downloads(out: &Path, workload: &Workload) -> Result<(), String> {
    let mut found = 0;
    let entries = fs::read_dir(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for entry in entries.take(workload.count + 10) {
        let entry = entry.map_err(|e| format!("{}: {e}", out.display()))?;
        let len = entry.metadata().map_err(|e| e.to_string())?.len();
        let name = entry.file_name();
        if len != workload.files.size {
            return Err(format!(
                "{}: {len} bytes, expected {}",
                name.to_string_lossy(),
                workload.files.size
            ));
        }
        found += 1;
    }
    if found != workload.count {
        return Err(format!(
            "{found} files downloaded, expected {}",
            workload.count
        ));
    }
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Medians over the rounds.
fn summarize(measures: &[Measure]) -> Measure {
    Measure {
        wall: median(measures.iter().map(|m| m.wall).collect()),
        cpu: median(measures.iter().map(|m| m.cpu).collect()),
        rss: median(measures.iter().map(|m| m.rss as f64).collect()) as u64,
    }
}

fn describe(workload: &Workload) -> String {
    let size = match workload.files.size {
        s if s >= GIB => format!("{} GiB", s / GIB),
        s if s >= MIB => format!("{} MiB", s / MIB),
        s => format!("{} KiB", s / KIB),
    };
    format!(
        "{}: {} x {size}, {}",
        workload.name,
        workload.count,
        if workload.h2c {
            "h2c (HTTP/2 prior knowledge)"
        } else {
            "HTTP/1.1"
        }
    )
}

fn render(workload: &Workload, options: &Options, levels: &[(usize, Vec<Vec<Measure>>)]) -> String {
    let mut text = String::new();
    let scale = levels.len() > 1;
    let in_flight = if scale {
        "in flight: see table".to_string()
    } else {
        format!("{} in flight", levels[0].0)
    };
    let _ = writeln!(
        text,
        "\n## {}, {in_flight}; median of {} rounds\n",
        describe(workload),
        options.rounds
    );
    if scale {
        let _ = writeln!(
            text,
            "| in flight | client | wall s | req/s | CPU µs/req | peak RSS MiB | RSS KiB per transfer in flight | req/s × | CPU × |"
        );
        let _ = writeln!(text, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    } else {
        let _ = writeln!(
            text,
            "| client | wall s | req/s | MB/s | CPU s (user+sys) | CPU µs/req | peak RSS MiB | wall × | CPU × |"
        );
        let _ = writeln!(text, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    let bytes = workload.count as f64 * workload.files.size as f64;
    let mut notes = Vec::new();
    for (inflight, results) in levels {
        let summaries: Vec<Measure> = results.iter().map(|r| summarize(r)).collect();
        let cpu_of = |name: &str| {
            options
                .clients
                .iter()
                .position(|c| *c == name)
                .map(|i| summaries[i].cpu)
        };
        let base = options
            .clients
            .iter()
            .position(|c| *c == BASELINE)
            .or(if summaries.is_empty() { None } else { Some(0) })
            .map(|i| summaries[i]);
        let ratio = |value: f64, base: Option<f64>| match base {
            Some(b) if b > 0.0 => format!("{:.2}", value / b),
            _ => "-".into(),
        };
        for (client, m) in options.clients.iter().zip(&summaries) {
            let client = label(client);
            let rate = workload.count as f64 / m.wall;
            let cpu_per_req = m.cpu / workload.count as f64 * 1e6;
            let rss_mib = m.rss as f64 / MIB as f64;
            if scale {
                let _ = writeln!(
                    text,
                    "| {inflight} | {client} | {:.3} | {rate:.0} | {cpu_per_req:.1} | {rss_mib:.1} | {:.1} | {} | {} |",
                    m.wall,
                    m.rss as f64 / 1024.0 / *inflight as f64,
                    ratio(rate, base.map(|b| workload.count as f64 / b.wall)),
                    ratio(m.cpu, base.map(|b| b.cpu)),
                );
            } else {
                let _ = writeln!(
                    text,
                    "| {client} | {:.3} | {rate:.0} | {:.0} | {:.3} | {cpu_per_req:.1} | {rss_mib:.1} | {} | {} |",
                    m.wall,
                    bytes / m.wall / 1e6,
                    m.cpu,
                    ratio(m.wall, base.map(|b| b.wall)),
                    ratio(m.cpu, base.map(|b| b.cpu)),
                );
            }
        }
        // Issue 13's targets, as CPU ratios.
        let mut targets = Vec::new();
        for (what, over, under, limit) in [
            ("uvcurl / c-glue", "uvcurl", "c-glue", 1.00),
            ("client1 / uvcurl", "client1", "uvcurl", 1.15),
            ("capi / uvcurl", "capi", "uvcurl", 1.10),
        ] {
            if let (Some(a), Some(b)) = (cpu_of(over), cpu_of(under)) {
                if b > 0.0 {
                    let r = a / b;
                    let verdict = if r <= limit { "met" } else { "MISSED" };
                    targets.push(format!("{what} {r:.2} (<= {limit:.2}: {verdict})"));
                }
            }
        }
        let prefix = if scale {
            format!("{inflight} in flight: ")
        } else {
            String::new()
        };
        if !targets.is_empty() {
            notes.push(format!("{prefix}CPU targets: {}", targets.join("; ")));
        }
        // And the memory target at 1,000 in flight, on peak RSS.
        let rss_of = |name: &str| {
            options
                .clients
                .iter()
                .position(|c| *c == name)
                .map(|i| summaries[i].rss as f64)
        };
        if *inflight == 1_000 {
            let mut rss = Vec::new();
            for over in ["uvcurl-own", "uvcurl"] {
                if let (Some(a), Some(b)) = (rss_of(over), rss_of("c-glue")) {
                    let r = a / b;
                    let verdict = if r <= 1.10 { "met" } else { "MISSED" };
                    rss.push(format!("{over} / c-glue {r:.2} (<= 1.10: {verdict})"));
                }
            }
            if !rss.is_empty() {
                notes.push(format!("{prefix}peak RSS targets: {}", rss.join("; ")));
            }
        }
    }
    for note in notes {
        let _ = writeln!(text, "\n{note}");
    }
    text
}

/// nproc, CPU model and kernel, for the record.
fn machine_line() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown kernel".into());
    let version = uvcurl::version();
    format!(
        "# uvcurl benchmark: {cpus} CPUs ({model}), Linux {kernel}, libcurl {}, libuv {}, RLIMIT_NOFILE {}",
        version.curl,
        version.uv,
        nofile_limit()
    )
}
