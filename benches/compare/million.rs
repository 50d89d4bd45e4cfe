//! `compare --million [--million-count N]`: a long run that looks for leaks
//! and lost completions rather than speed. N (default 1,000,000) GETs of one
//! 1 KiB file from the runner's nginx, 200 in flight, first through one
//! `Multi` on this process's own loop, then through a `Client` with 2 loops
//! (futures on a current-thread tokio runtime). Each runs in a child process
//! (`compare --client million-multi|million-client2 --url URL --count N
//! --inflight 200`) that checks every response (200, exactly 1,024 bytes),
//! counts completions, and every 10,000 completions samples its own resident
//! set (`VmRSS` of /proc/self/status) and open descriptors (/proc/self/fd).
//!
//! The runner then requires: every transfer completed once and well; the
//! resident set after the first 100,000 transfers never more than 2 MiB
//! above its level at 100,000; the descriptor count the same at every sample
//! after 100,000. It prints a table per client and exits non-zero if a
//! requirement is missed.

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Transfers in flight.
pub const INFLIGHT: usize = 200;
/// The body size every response must have.
pub const SIZE: usize = 1024;
/// Completions between two samples.
const EVERY: usize = 10_000;
/// Where the steady state is taken to begin.
const WARM_UP: usize = 100_000;
/// Most the resident set may grow after [`WARM_UP`].
const RSS_SLACK_KIB: u64 = 2 * 1024;
/// Longest one child may run (a million at a few thousand per second).
const DEADLINE: Duration = Duration::from_secs(1800);

/// The two clients, as `--client` names, with their labels.
pub const CLIENTS: [(&str, &str); 2] = [
    ("million-multi", "one Multi"),
    ("million-client2", "Client, 2 loops"),
];

/// One sample, taken when `done` transfers had completed.
#[derive(Clone, Copy, Debug)]
struct Sample {
    done: usize,
    rss_kib: u64,
    fds: usize,
}

impl Sample {
    fn take(done: usize) -> Sample {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        // The directory handle read_dir opens is counted in every sample alike.
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
        Sample { done, rss_kib, fds }
    }

    fn line(&self) -> String {
        format!("sample {} {} {}", self.done, self.rss_kib, self.fds)
    }

    fn parse(line: &str) -> Option<Sample> {
        let mut words = line.strip_prefix("sample ")?.split(' ');
        let mut next = || words.next()?.parse::<u64>().ok();
        Some(Sample {
            done: next()? as usize,
            rss_kib: next()?,
            fds: next()? as usize,
        })
    }
}

// ------------------------------------------------------------------ parent

/// Runs both clients against `url` and returns the report; `Err` (with the
/// report) if a requirement was missed.
pub fn run(me: &Path, url: &str, count: usize) -> Result<String, String> {
    let mut report = format!(
        "\n## {count} × 1 KiB, HTTP/1.1, {INFLIGHT} in flight \
         (samples every {EVERY}; steady state from {WARM_UP})\n"
    );
    let mut failures = Vec::new();
    for (client, label) in CLIENTS {
        let started = Instant::now();
        let output = Command::new(me)
            .args(["--client", client, "--url", url])
            .args(["--count", &count.to_string()])
            .args(["--inflight", &INFLIGHT.to_string()])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{client}: spawn: {e}"))?;
        let wall = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let samples: Vec<Sample> = stdout.lines().filter_map(Sample::parse).collect();
        let verdict = judge(count, &samples, &stdout);
        let _ = writeln!(report, "\n### {label}\n");
        let _ = writeln!(
            report,
            "{count} transfers in {wall:.1} s ({:.0} per second); exit {}",
            count as f64 / wall,
            output.status
        );
        let _ = writeln!(report, "{}", table(&samples));
        match (output.status.success(), verdict) {
            (true, Ok(summary)) => {
                let _ = writeln!(report, "{label}: {summary}");
            }
            (_, Err(why)) => {
                let _ = writeln!(report, "{label}: FAILED: {why}");
                failures.push(format!("{label}: {why}\n{stderr}"));
            }
            (false, Ok(_)) => failures.push(format!("{label}: {}\n{stderr}", output.status)),
        }
    }
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(format!("{report}\n{}", failures.join("\n")))
    }
}

/// Checks the requirements; the summary line, or what was missed.
fn judge(count: usize, samples: &[Sample], stdout: &str) -> Result<String, String> {
    let ok = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ok "))
        .ok_or("the child reported no result")?;
    if ok != format!("{count} {}", count * SIZE) {
        return Err(format!("completed {ok}, expected {count} {}", count * SIZE));
    }
    let expected = count / EVERY;
    if samples.len() != expected {
        return Err(format!("{} samples, expected {expected}", samples.len()));
    }
    let Some(base) = samples.iter().find(|s| s.done == WARM_UP.min(count)) else {
        return Ok("all completed (too few transfers to judge growth)".into());
    };
    let steady = samples.iter().filter(|s| s.done >= base.done);
    let peak = steady.clone().map(|s| s.rss_kib).max().unwrap_or(0);
    let (fd_min, fd_max) = steady.clone().fold((usize::MAX, 0), |(lo, hi), s| {
        (lo.min(s.fds), hi.max(s.fds))
    });
    let growth = peak.saturating_sub(base.rss_kib);
    let summary = format!(
        "all {count} completed once with 200 and 1,024 bytes; RSS {} KiB at {}, \
         peak after it {peak} KiB (+{growth} KiB, limit +{RSS_SLACK_KIB}); \
         descriptors {fd_min}..={fd_max}",
        base.rss_kib, base.done
    );
    if growth > RSS_SLACK_KIB {
        return Err(format!("resident set grew: {summary}"));
    }
    if fd_min != fd_max {
        return Err(format!("descriptor count moved: {summary}"));
    }
    Ok(summary)
}

/// The samples as a table: every tenth one, and the last.
fn table(samples: &[Sample]) -> String {
    let mut text = String::from("| done | RSS KiB | fds |\n|---:|---:|---:|\n");
    let step = (samples.len() / 10).max(1);
    for (i, s) in samples.iter().enumerate() {
        if i % step == step - 1 || i + 1 == samples.len() || i == 0 {
            let _ = writeln!(text, "| {} | {} | {} |", s.done, s.rss_kib, s.fds);
        }
    }
    text
}

// ------------------------------------------------------------------- child

struct Job {
    url: String,
    count: usize,
    inflight: usize,
}

fn parse(args: &[String]) -> Result<Job, String> {
    let mut job = Job {
        url: String::new(),
        count: 0,
        inflight: INFLIGHT,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().ok_or(format!("{arg} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{arg}: bad number"))
        };
        match arg.as_str() {
            "--url" => job.url = value.clone(),
            "--count" => job.count = number()?,
            "--inflight" => job.inflight = number()?.max(1),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if job.url.is_empty() {
        return Err("--url is required".into());
    }
    Ok(job)
}

/// `compare --client million-multi|million-client2 ...`: prints the samples,
/// then `ok COUNT BYTES`; exits 1 naming the first failed transfer.
pub fn child(client: &str, args: &[String]) -> ExitCode {
    let job = match parse(args) {
        Ok(job) => job,
        Err(message) => {
            eprintln!("{client}: {message}");
            return ExitCode::from(2);
        }
    };
    // A hang must not outlive the benchmark.
    std::thread::spawn(|| {
        std::thread::sleep(DEADLINE);
        eprintln!("gave up after {DEADLINE:?}");
        std::process::exit(3);
    });
    let outcome = match client {
        "million-multi" => through_multi(&job),
        _ => through_client(&job),
    };
    match outcome {
        Ok((samples, done)) => {
            for sample in samples {
                println!("{}", sample.line());
            }
            println!("ok {done} {}", done * SIZE);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{client}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Completed transfers (each checked) and the samples taken.
struct Tally {
    done: AtomicUsize,
    samples: Mutex<Vec<Sample>>,
    failure: Mutex<Option<String>>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            done: AtomicUsize::new(0),
            samples: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
        }
    }

    /// Records one result; false if it failed (the first failure is kept).
    fn record(&self, result: Result<uvcurl::Response, uvcurl::Error>) -> bool {
        let checked = match result {
            Ok(response) if response.status() == 200 && response.body().len() == SIZE => Ok(()),
            Ok(response) => Err(format!(
                "HTTP {} with {} bytes",
                response.status(),
                response.body().len()
            )),
            Err(error) => Err(error.to_string()),
        };
        if let Err(message) = checked {
            self.failure.lock().unwrap().get_or_insert(message);
            return false;
        }
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if done % EVERY == 0 {
            self.samples.lock().unwrap().push(Sample::take(done));
        }
        true
    }

    fn finish(self) -> Result<(Vec<Sample>, usize), String> {
        if let Some(failure) = self.failure.into_inner().unwrap() {
            return Err(failure);
        }
        Ok((self.samples.into_inner().unwrap(), self.done.into_inner()))
    }
}

fn request(url: &str) -> uvcurl::Request {
    uvcurl::Request::get(url)
        .http_version(uvcurl::HttpVersionPref::Http1_1)
        .timeout(Duration::from_secs(60))
}

fn through_multi(job: &Job) -> Result<(Vec<Sample>, usize), String> {
    let uv = uvcurl::Loop::new().map_err(|e| e.to_string())?;
    let multi = uvcurl::Multi::builder()
        .max_host_connections(job.inflight)
        .build(&uv)
        .map_err(|e| e.to_string())?;
    let tally = Rc::new(Tally::new());
    let started = Rc::new(Cell::new(0usize));
    let handle = multi.handle();
    let url: Rc<str> = job.url.as_str().into();
    for _ in 0..job.inflight.min(job.count) {
        start_next(&handle, &url, job.count, &tally, &started);
    }
    uv.run().map_err(|e| e.to_string())?;
    drop(multi);
    uv.run().map_err(|e| e.to_string())?;
    uv.close().map_err(|e| e.to_string())?;
    Rc::try_unwrap(tally)
        .map_err(|_| "the tally is still shared".to_string())?
        .finish()
}

/// Starts the next of `count` transfers, if any is left; its completion
/// starts the one after.
fn start_next(
    handle: &uvcurl::MultiHandle,
    url: &Rc<str>,
    count: usize,
    tally: &Rc<Tally>,
    started: &Rc<Cell<usize>>,
) {
    if started.get() >= count {
        return;
    }
    started.set(started.get() + 1);
    let (next, me, url_again, started_again) = (
        handle.clone(),
        Rc::clone(tally),
        Rc::clone(url),
        Rc::clone(started),
    );
    let result = handle.start(request(url), move |result| {
        if me.record(result) {
            start_next(&next, &url_again, count, &me, &started_again);
        } else {
            next.close();
        }
    });
    if let Err(error) = result {
        tally
            .failure
            .lock()
            .unwrap()
            .get_or_insert(format!("start: {error}"));
        handle.close();
    }
}

fn through_client(job: &Job) -> Result<(Vec<Sample>, usize), String> {
    let client = uvcurl::Client::builder()
        .loops(2)
        .max_host_connections(job.inflight.div_ceil(2))
        .build()
        .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let tally = Arc::new(Tally::new());
    let next = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..job.inflight.min(job.count) {
            let (client, tally, next) = (client.clone(), Arc::clone(&tally), Arc::clone(&next));
            let (url, count) = (job.url.clone(), job.count);
            tasks.spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let url = url.clone();
                    let result = client.submit(move || request(&url)).await;
                    if !tally.record(result) {
                        return;
                    }
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    })?;
    drop(client);
    Arc::try_unwrap(tally)
        .map_err(|_| "the tally is still shared".to_string())?
        .finish()
}
