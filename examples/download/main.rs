//! `download`: a concurrent downloader built on uvcurl — libcurl's multi
//! interface driven by one libuv loop, on one thread.
//!
//! ```text
//! cargo run --release --example download -- --demo
//! cargo run --release --example download -- -j 32 -o out -i urls.txt
//! cargo run --release --example download -- -c --retries 5 https://example.org/big.iso
//! ```
//!
//! Up to `-j` transfers run at once; the rest of the URL list streams
//! through as slots free up. Each file is written to `NAME.part` and renamed
//! to `NAME` only when it is complete; a small one (64 KiB at most) is held
//! in memory and then written to an unnamed file linked in as `NAME`.
//! Slots that completions free are filled on the next loop turn, so the
//! new requests go out together. Transient failures are retried with
//! exponential backoff on a libuv timer. Exit status: 0 all saved, 1 any
//! failed, 2 usage error, 130 interrupted.
//!
//! Modules, one job each:
//! - [`cli`]: options, URL list (with per-URL options), validation;
//! - [`checksum`]: `--checksum` and `checksum=` digests, verified before
//!   a file gets its final name;
//! - [`link`]: URLs checked without a parse when they are canonical already;
//! - [`naming`]: safe, unique output names;
//! - [`output`]: `.part` files and their promotion, and small files
//!   published whole;
//! - [`attempt`]: one request and what its callbacks do with the file;
//! - [`retry`]: which failures to retry, and when;
//! - [`split`]: `--split`, one file as ranged segments in parallel (its
//!   segments, their plan, and the `.part.state` file that resumes them);
//! - [`scheduler`]: the loop, the slots, the timers, Ctrl-C;
//! - [`progress`]: bars or plain lines on standard error;
//! - [`report`]: the summary and the exit status;
//! - [`demo`]: the self-contained loopback demonstration;
//! - [`file_server`]: the loopback file server of the demo (and of the
//!   downloader's tests).

mod attempt;
mod checksum;
mod cli;
mod demo;
mod event_queue;
mod file_server;
mod link;
mod naming;
mod output;
mod progress;
mod report;
mod retry;
mod scheduler;
mod split;

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;

use crate::cli::{Cli, Settings, UsageError};
use crate::report::Report;

/// mimalloc for every allocation of the process: its `override` feature
/// also replaces `malloc` and `free` (exported, so shared libraries use it
/// as well), so libcurl's hundred or so allocations per small file go to it
/// too: 88.8k -> 79.8k instructions per file on files-1k. Its version 2
/// without transparent huge pages (`no_thp`) keeps the peak memory where
/// glibc's allocator had it (14 MiB for 10,000 files, not 19-30).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before any thread starts (the Ctrl-C handler's): uvcurl's first look
    // at libcurl opens a descriptor numbered 1024, and growing the
    // descriptor table of a process with several threads waits for an RCU
    // grace period (about 10 ms, a run of 10,000 small files takes 300).
    let _ = uvcurl::version();
    // Invalid options make clap print the usage and exit with status 2.
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(fatal) => {
            eprintln!("download: {fatal}");
            fatal.exit_code()
        }
    }
}

/// Runs the invocation; `Ok` carries the exit status of a completed run.
fn run(cli: &Cli) -> Result<ExitCode, Fatal> {
    if cli.insecure {
        eprintln!("warning: --insecure: TLS certificates and host names are NOT verified");
    }
    let interrupt = interrupt_flag();
    if cli.demo {
        return demo::run(cli, interrupt);
    }
    if cli.urls.is_empty() && cli.input.is_none() {
        return Err(Fatal::Usage(
            "no URLs given: pass URLs, --input FILE, or --demo (see --help)".to_owned(),
        ));
    }
    let urls = cli::collect_urls(cli)?;
    let out_dir = cli.output_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let settings = prepare_settings(cli, out_dir)?;
    let report = scheduler::download_all(settings.clone(), urls, interrupt)?;
    print_report(&report, &settings);
    Ok(report.exit_code())
}

/// Creates the output directory and resolves the settings.
///
/// # Errors
/// A directory that cannot be created, or a bad `--cacert`.
pub fn prepare_settings(cli: &Cli, out_dir: PathBuf) -> Result<Settings, Fatal> {
    output::prepare_dir(&out_dir).map_err(|e| {
        Fatal::Usage(format!(
            "cannot create output directory {}: {e}",
            out_dir.display()
        ))
    })?;
    Ok(Settings::new(cli, out_dir)?)
}

/// Prints the summary: JSON on standard output with `--json`, otherwise
/// for people on standard error.
pub fn print_report(report: &Report, settings: &Settings) {
    if settings.json {
        print_stdout(&report.to_json().to_string());
    } else {
        report.print_summary(settings.verbosity);
    }
}

/// Prints a line on standard output; a closed pipe (`| head`) is not an error.
pub fn print_stdout(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// A flag that Ctrl-C sets; the scheduler polls it from a libuv timer. A
/// second Ctrl-C exits at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&flag);
    let installed = ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    if let Err(error) = installed {
        eprintln!("warning: Ctrl-C will not stop the run cleanly: {error}");
    }
    flag
}

/// Why the program stops without a completed run.
#[derive(Debug)]
pub enum Fatal {
    /// A bad invocation (exit status 2).
    Usage(String),
    /// Something failed that is not about any one URL (exit status 1).
    Runtime(String),
}

impl Fatal {
    fn exit_code(&self) -> ExitCode {
        match self {
            Fatal::Usage(_) => ExitCode::from(2),
            Fatal::Runtime(_) => ExitCode::from(1),
        }
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fatal::Usage(message) | Fatal::Runtime(message) => f.write_str(message),
        }
    }
}

impl From<UsageError> for Fatal {
    fn from(error: UsageError) -> Fatal {
        Fatal::Usage(error.0)
    }
}

impl From<uvcurl::Error> for Fatal {
    fn from(error: uvcurl::Error) -> Fatal {
        Fatal::Runtime(error.to_string())
    }
}
