//! The `files-1k` workload: the downloader against the tools people run
//! instead — curl's CLI (`--parallel`), wget2 and aria2c — on many small
//! files: 10,000 × 1 KiB from the runner's nginx, 50 at a time, every file
//! written to a tmpfs (`/dev/shm`). Each tool runs pinned (`taskset`) to one
//! CPU (the last) and nginx on the others, as if on a machine of its own
//! (on a single CPU both share it); the order of the tools
//! rotates each round. Every run must save every file whole and nothing
//! else, or the runner fails. `vendor/bootstrap bench` installs the tools.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{find_tool, median, run_child, verify_downloads, Measure, Nginx, Workload, KIB, SMALL};

/// The workload's name on the command line.
pub const NAME: &str = "files-1k";

/// Files fetched per run (from the runner's set of 1 KiB files).
pub const COUNT: usize = 10_000;

/// Transfers in flight, for every tool.
const INFLIGHT: usize = 50;

/// The workload, for the runner's URL and file checks.
const WORKLOAD: Workload = Workload {
    name: NAME,
    files: SMALL,
    count: COUNT,
    inflight: &[INFLIGHT],
    h2c: false,
    buffer: None,
    stream: false,
    close: false,
};

/// Targets of issue 15: the downloader's files/s over each tool's.
const TARGETS: [(&str, f64); 2] = [("curl", 1.2), ("wget2", 1.5)];

/// One measured program.
struct Tool {
    /// Its row in the table.
    name: &'static str,
    /// The executable.
    bin: PathBuf,
    /// How it is run, for the legend.
    what: &'static str,
}

/// Environment variables that could send a tool through a proxy or change
/// its configuration: removed for every run.
const SCRUBBED_ENV: [&str; 8] = [
    "http_proxy",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "CURL_HOME",
];

/// Runs the workload `rounds` times per tool (the order rotating each round)
/// and returns its table. `download_bin` is the downloader.
pub fn run(
    server: &Nginx,
    scratch: &Path,
    download_bin: &Path,
    rounds: usize,
) -> Result<String, String> {
    let missing =
        |e: String| format!("{e}\n(`vendor/bootstrap bench` installs curl, wget2 and aria2)");
    let taskset = find_tool("taskset", &["/usr/bin/taskset"])?;
    let tools = [
        Tool {
            name: "download",
            bin: download_bin.to_owned(),
            what: "the downloader: `-q --retries 0 -j 50 -o DIR -i LIST`",
        },
        Tool {
            name: "curl",
            bin: find_tool("curl", &["/usr/bin/curl"]).map_err(missing)?,
            what: "curl's CLI: `-q -s --parallel --parallel-max 50 --remote-name-all --output-dir DIR -K CONFIG` (one `url = ...` line per file)",
        },
        Tool {
            name: "wget2",
            bin: find_tool("wget2", &["/usr/bin/wget2"]).map_err(missing)?,
            what: "wget2: `-q --max-threads=50 -P DIR -i LIST`",
        },
        Tool {
            name: "aria2c",
            bin: find_tool("aria2c", &["/usr/bin/aria2c"]).map_err(missing)?,
            what: "aria2c: `-q -j 50 -d DIR -i LIST`",
        },
    ];
    let list = scratch.join("files-urls.txt");
    let config = scratch.join("files-curl.cfg");
    let (mut urls, mut lines) = (String::new(), String::new());
    for index in 0..COUNT {
        let url = server.url(false, SMALL, index);
        let _ = writeln!(urls, "{url}");
        let _ = writeln!(lines, "url = \"{url}\"");
    }
    fs::write(&list, urls).map_err(|e| format!("{}: {e}", list.display()))?;
    fs::write(&config, lines).map_err(|e| format!("{}: {e}", config.display()))?;
    let home = scratch.join("tools-home");
    fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let out = OutDir::new(scratch)?;
    // The server off the tools' CPU, as a remote server would be.
    let (cpu, placement) = match crate::affinity::Pinning::split() {
        Ok(pinning) => {
            crate::affinity::pin_process(server.child.id(), &pinning.server)?;
            (pinning.client, pinning.describe().replace("client", "tool"))
        }
        Err(_) => {
            let cpu = crate::affinity::client_cpu()?;
            (cpu, format!("each tool and nginx on CPU {cpu}"))
        }
    };

    let mut results: Vec<Vec<Measure>> = vec![Vec::new(); tools.len()];
    for round in 0..rounds {
        for k in 0..tools.len() {
            let index = (k + round) % tools.len();
            let tool = &tools[index];
            out.reset()?;
            let mut command = Command::new(&taskset);
            command
                .arg("-c")
                .arg(cpu.to_string())
                .arg(&tool.bin)
                .args(arguments(tool.name, &out.path, &list, &config))
                .env("HOME", &home);
            for name in SCRUBBED_ENV {
                command.env_remove(name);
            }
            let what = format!("{} on {NAME}", tool.name);
            let (measure, log) = run_child(&mut command, scratch, &what)?;
            verify_downloads(&out.path, &WORKLOAD).map_err(|e| format!("{what}: {e}\n{log}"))?;
            results[index].push(measure);
        }
    }
    Ok(render(&tools, &results, rounds, &out, &placement))
}

/// A tool's arguments (after the executable).
fn arguments(tool: &str, out: &Path, list: &Path, config: &Path) -> Vec<String> {
    let (out, list, config) = (
        out.display().to_string(),
        list.display().to_string(),
        config.display().to_string(),
    );
    let jobs = INFLIGHT.to_string();
    let args: Vec<&str> = match tool {
        "download" => vec!["-q", "--retries", "0", "-j", &jobs, "-o", &out, "-i", &list],
        // `-q` first: no ~/.curlrc.
        "curl" => vec![
            "-q",
            "-s",
            "--parallel",
            "--parallel-max",
            &jobs,
            "--remote-name-all",
            "--output-dir",
            &out,
            "-K",
            &config,
        ],
        "wget2" => vec!["-q", "--max-threads", &jobs, "-P", &out, "-i", &list],
        _ => vec!["-q", "-j", &jobs, "-d", &out, "-i", &list],
    };
    args.into_iter().map(str::to_owned).collect()
}

/// The output directory: on `/dev/shm` (a tmpfs) where there is one, so
/// that the disk is not what is measured; removed on drop.
struct OutDir {
    path: PathBuf,
    tmpfs: bool,
}

impl OutDir {
    fn new(scratch: &Path) -> Result<OutDir, String> {
        let shm = Path::new("/dev/shm");
        let tmpfs = shm.is_dir() && fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly());
        let path = if tmpfs {
            shm.join(format!("uvcurl-bench-files-{}", std::process::id()))
        } else {
            scratch.join("files-out")
        };
        Ok(OutDir { path, tmpfs })
    }

    /// Empties (creates) the directory for the next run.
    fn reset(&self) -> Result<(), String> {
        let _ = fs::remove_dir_all(&self.path);
        fs::create_dir_all(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The table: medians per tool, and the downloader's files/s and CPU
/// against each tool's.
fn render(
    tools: &[Tool],
    results: &[Vec<Measure>],
    rounds: usize,
    out: &OutDir,
    pinned: &str,
) -> String {
    let mut text = String::new();
    let place = if out.tmpfs {
        "written to a tmpfs (/dev/shm)".to_owned()
    } else {
        format!("written to {} (no /dev/shm here)", out.path.display())
    };
    let _ = writeln!(
        text,
        "\n## {NAME}: {COUNT} x {} KiB files {place}, HTTP/1.1, {INFLIGHT} at a time, {pinned}; median of {rounds} rounds\n",
        SMALL.size / KIB
    );
    for tool in tools {
        let _ = writeln!(text, "- {}: {}", tool.name, tool.what);
    }
    let _ = writeln!(
        text,
        "\n| tool | wall s | wall s, fastest–slowest round | files/s | CPU s (user+sys) | CPU µs/file | download files/s ÷ tool's | tool CPU ÷ download's |"
    );
    let _ = writeln!(text, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let wall = |i: usize| median(results[i].iter().map(|m| m.wall).collect());
    let cpu = |i: usize| median(results[i].iter().map(|m| m.cpu).collect());
    let rate = |i: usize| COUNT as f64 / wall(i);
    let spread = |i: usize| {
        let walls = results[i].iter().map(|m| m.wall);
        let min = walls.clone().fold(f64::INFINITY, f64::min);
        let max = walls.fold(0.0, f64::max);
        format!("{min:.3}–{max:.3}")
    };
    let download = tools.iter().position(|t| t.name == "download").unwrap_or(0);
    for (i, tool) in tools.iter().enumerate() {
        let _ = writeln!(
            text,
            "| {} | {:.3} | {} | {:.0} | {:.3} | {:.1} | {:.2} | {:.2} |",
            tool.name,
            wall(i),
            spread(i),
            rate(i),
            cpu(i),
            cpu(i) / COUNT as f64 * 1e6,
            rate(download) / rate(i),
            cpu(i) / cpu(download),
        );
    }
    let mut verdicts = Vec::new();
    for (name, target) in TARGETS {
        if let Some(i) = tools.iter().position(|t| t.name == name) {
            let ratio = rate(download) / rate(i);
            let verdict = if ratio >= target { "met" } else { "MISSED" };
            verdicts.push(format!(
                "download / {name} files/s {ratio:.2} (>= {target:.2}: {verdict})"
            ));
        }
    }
    let _ = writeln!(text, "\ntargets: {}", verdicts.join("; "));
    text
}
