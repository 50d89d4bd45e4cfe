//! The tables a run prints: medians, ratios to the baseline, the targets
//! met or missed, and the machine it ran on.

use super::*;
use std::fmt::Write as _;
use std::fs;

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
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
pub(crate) fn summarize(measures: &[Measure]) -> Measure {
    Measure {
        wall: median(measures.iter().map(|m| m.wall).collect()),
        cpu: median(measures.iter().map(|m| m.cpu).collect()),
        rss: median(measures.iter().map(|m| m.rss as f64).collect()) as u64,
    }
}

pub(crate) fn describe(workload: &Workload) -> String {
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

pub(crate) fn render(
    workload: &Workload,
    options: &Options,
    placement: &str,
    levels: &[(usize, Vec<Vec<Measure>>)],
) -> String {
    let mut text = String::new();
    let scale = levels.len() > 1;
    let in_flight = if scale {
        "in flight: see table".to_string()
    } else {
        format!("{} in flight", levels[0].0)
    };
    let _ = writeln!(
        text,
        "\n## {}, {in_flight}, {placement}; median of {} rounds\n",
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
pub(crate) fn machine_line() -> String {
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
