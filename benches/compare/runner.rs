//! Running the clients: one child process per client and round, its CPU
//! time and peak RSS read from `wait4`, syscalls counted with strace, and
//! every downloaded file checked.

use super::*;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One client run, as the parent saw it.
#[derive(Clone, Copy)]
pub(crate) struct Measure {
    pub(crate) wall: f64,
    pub(crate) cpu: f64,
    /// Peak resident set, bytes.
    pub(crate) rss: u64,
}

pub(crate) struct Runner<'a> {
    pub(crate) me: PathBuf,
    /// The compiled C clients, by name.
    pub(crate) c_bins: Vec<(&'static str, PathBuf)>,
    pub(crate) download_bin: Option<PathBuf>,
    /// `examples/bench_multi`, for `uvcurl-own`.
    pub(crate) multi_bin: Option<PathBuf>,
    pub(crate) server: &'a Nginx,
    pub(crate) scratch: &'a Path,
    /// `--pin`: the CPU every client runs on.
    pub(crate) client_cpu: Option<usize>,
}

impl Runner<'_> {
    /// The URL list for a workload, written once.
    pub(crate) fn url_list(&self, workload: &Workload) -> Result<PathBuf, String> {
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

    pub(crate) fn command(
        &self,
        client: &str,
        workload: &Workload,
        inflight: usize,
        list: &Path,
    ) -> Command {
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

    pub(crate) fn measure(
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
        match self.client_cpu {
            Some(cpu) => crate::affinity::pin_command(&mut command, cpu),
            None => crate::affinity::fork_command(&mut command),
        }
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
    pub(crate) fn strace_report(&self, strace: &Path, chosen: &[&str]) -> Result<String, String> {
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
pub(crate) fn parse_strace(text: &str) -> Vec<(String, u64)> {
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
pub(crate) fn run_child(
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
pub(crate) fn verify_downloads(out: &Path, workload: &Workload) -> Result<(), String> {
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
