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

#[path = "compare/affinity.rs"]
mod affinity;
#[path = "compare/c_clients.rs"]
mod c_clients;
#[path = "compare/child.rs"]
mod child;
#[path = "compare/million.rs"]
mod million;
#[path = "compare/nginx.rs"]
mod nginx;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/runner.rs"]
mod runner;
#[path = "compare/split.rs"]
mod split;
#[path = "compare/tools.rs"]
mod tools;
#[path = "../tests/native/uv_headers.rs"]
mod uv_headers;

use c_clients::*;
use nginx::*;
use report::*;
use runner::*;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    ("client1", "uvcurl `Client`, one loop thread, futures on a current-thread tokio runtime, `connection_cache` = in flight per loop"),
    ("client2", "uvcurl `Client`, two loop threads, futures on a current-thread tokio runtime, `connection_cache` = in flight per loop"),
    ("client4", "uvcurl `Client`, four loop threads, futures on a current-thread tokio runtime, `connection_cache` = in flight per loop"),
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
  --pin                pin each client to the last CPU and nginx to the others
                       (the issue's method; the default leaves both to the
                       scheduler). files-1k always pins its tools
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
    /// `--pin`: clients on one CPU, nginx on the others.
    pin: bool,
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
        pin: false,
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
            "--pin" => options.pin = true,
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
    let pinning = if options.pin {
        let pinning = affinity::Pinning::split()?;
        affinity::pin_process(server.child.id(), &pinning.server)?;
        Some(pinning)
    } else {
        None
    };
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let runner = Runner {
        me,
        c_bins,
        download_bin,
        multi_bin,
        server: &server,
        scratch: &scratch.path,
        client_cpu: pinning.as_ref().map(|p| p.client),
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
        let placement = pinning
            .as_ref()
            .map_or_else(|| "nothing pinned".to_owned(), affinity::Pinning::describe);
        print!("{}", render(workload, options, &placement, &levels));
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
