//! The `--split` benchmark (`vendor/cargo bench --bench compare -- --split`):
//! one 100 MiB file from a loopback nginx that limits every response to
//! 20 MB/s (`limit_rate 20m`, as many mirrors do), fetched by the
//! downloader over one connection and with `--split 8`, by curl, and by
//! aria2c `-x 8 -s 8`. Every run's file is compared byte for byte with the
//! original; the table gives the median wall time (and the range) of the
//! rounds, the median CPU time, and each tool's wall time relative to
//! aria2c's.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufReader, Read, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{find_tool, free_port, median, run_child, Measure, MIB};

/// The file's length.
const SIZE: u64 = 100 * MIB;

/// The tools compared, in the table's order: (label, what it runs).
const TOOLS: [(&str, &str); 6] = [
    ("download", "the downloader, one connection"),
    (
        "download --split 8",
        "the downloader, 8 ranged segments (of at least 1 MiB)",
    ),
    (
        "download --split 8 (h2c)",
        "the same over cleartext HTTP/2: 8 streams of one connection",
    ),
    ("curl", "curl -sS -o FILE URL"),
    (
        "aria2c -x 8 -s 8",
        "aria2c -x 8 -s 8, other options at their defaults: with -k 20M it splits \
         100 MiB into 5 segments",
    ),
    (
        "aria2c -x 8 -s 8 -k 1M",
        "aria2c -x 8 -s 8 -k 1M: 8 segments, as the downloader's",
    ),
];

/// The tool the ratio column divides by.
const BASELINE: &str = "aria2c -x 8 -s 8";

/// Runs the benchmark and returns its report (a Markdown table).
pub fn run(download_bin: &Path, scratch: &Path, rounds: usize) -> Result<String, String> {
    let nginx = find_tool("nginx", &["/usr/sbin/nginx"])?;
    let curl = find_tool("curl", &["/usr/bin/curl"])?;
    let aria2c = find_tool("aria2c", &["/usr/bin/aria2c"])?;
    let dir = scratch.join("split");
    let www = dir.join("www");
    fs::create_dir_all(&www).map_err(|e| format!("{}: {e}", www.display()))?;
    let original = www.join("big.bin");
    write_pattern(&original, SIZE)?;
    let server = LimitedNginx::start(&nginx, &dir)?;
    let url = format!("http://127.0.0.1:{}/big.bin", server.port);
    let h2c_url = format!("http://127.0.0.1:{}/big.bin", server.h2c_port);
    let out = dir.join("out");

    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); TOOLS.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); TOOLS.len()];
    for round in 0..rounds.max(3) {
        for k in 0..TOOLS.len() {
            // Each round starts with the next tool.
            let index = (k + round) % TOOLS.len();
            let label = TOOLS[index].0;
            let _ = fs::remove_dir_all(&out);
            fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let saved = out.join("big.bin");
            let mut command = match label {
                "curl" => {
                    let mut c = Command::new(&curl);
                    c.arg("-sS").arg("-o").arg(&saved).arg(&url);
                    c
                }
                aria if aria.starts_with("aria2c") => {
                    let mut c = Command::new(&aria2c);
                    c.args(["-q", "-x", "8", "-s", "8"]);
                    if aria.ends_with("-k 1M") {
                        c.args(["-k", "1M"]);
                    }
                    c.arg("-d").arg(&out).args(["-o", "big.bin", &url]);
                    c
                }
                _ => {
                    let mut c = Command::new(download_bin);
                    c.args(["-q", "--retries", "0", "-o"]).arg(&out);
                    if label.contains("--split 8") {
                        c.args(["--split", "8"]);
                    }
                    if label.ends_with("(h2c)") {
                        c.arg("--http2-prior-knowledge").arg(&h2c_url);
                    } else {
                        c.arg(&url);
                    }
                    c
                }
            };
            let what = format!("{label} (round {})", round + 1);
            let (measure, _) = run_child(&mut command, &dir, &what)?;
            same_bytes(&original, &saved).map_err(|e| format!("{what}: {e}"))?;
            let Measure { wall, cpu, .. } = measure;
            walls[index].push(wall);
            cpus[index].push(cpu);
        }
    }
    let _ = fs::remove_dir_all(&out);
    Ok(render(&walls, &cpus))
}

/// The report: one row per tool.
fn render(walls: &[Vec<f64>], cpus: &[Vec<f64>]) -> String {
    let base = TOOLS.iter().position(|(label, _)| *label == BASELINE);
    let base_wall = base.map_or(1.0, |b| median(walls[b].clone()));
    let mut text = format!(
        "\n## split: one 100 MiB file, nginx limit_rate 20m per response, HTTP/1.1 (and h2c), {} rounds\n\n",
        walls.first().map_or(0, Vec::len)
    );
    text.push_str("| tool | wall s (median) | wall s (min-max) | CPU s | wall / aria2c |\n");
    text.push_str("|---|---:|---:|---:|---:|\n");
    for (i, (label, _)) in TOOLS.iter().enumerate() {
        let min = walls[i].iter().copied().fold(f64::INFINITY, f64::min);
        let max = walls[i].iter().copied().fold(0.0, f64::max);
        let wall = median(walls[i].clone());
        let _ = writeln!(
            text,
            "| {label} | {wall:.2} | {min:.2}-{max:.2} | {:.2} | {:.2} |",
            median(cpus[i].clone()),
            wall / base_wall
        );
    }
    text.push('\n');
    for (label, what) in TOOLS {
        let _ = writeln!(text, "- {label}: {what}");
    }
    text
}

/// Writes `len` bytes of a fixed pseudo-random pattern (so that a segment
/// written at the wrong offset cannot go unnoticed).
fn write_pattern(path: &Path, len: u64) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = File::create(path).map_err(fail)?;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut chunk = vec![0u8; MIB as usize];
    for _ in 0..len / MIB {
        for word in chunk.chunks_exact_mut(8) {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk).map_err(fail)?;
    }
    Ok(())
}

/// Whether `copy` holds exactly the bytes of `original`.
fn same_bytes(original: &Path, copy: &Path) -> Result<(), String> {
    let open = |p: &Path| {
        File::open(p)
            .map(|f| BufReader::with_capacity(MIB as usize, f))
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let (mut a, mut b) = (open(original)?, open(copy)?);
    let (mut x, mut y) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    let mut at = 0u64;
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Err(format!(
                "the saved file differs from the original near byte {at}"
            ));
        }
        if n == 0 {
            return Ok(());
        }
        at += n as u64;
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(filled)
}

/// nginx serving `DIR/www` with `limit_rate 20m` over HTTP/1.1 and h2c,
/// killed on drop.
struct LimitedNginx {
    child: Child,
    port: u16,
    h2c_port: u16,
}

impl LimitedNginx {
    fn start(binary: &Path, dir: &Path) -> Result<LimitedNginx, String> {
        let prefix: PathBuf = dir.join("nginx");
        fs::create_dir_all(prefix.join("logs"))
            .map_err(|e| format!("{}: {e}", prefix.display()))?;
        let port = free_port()?;
        let h2c_port = free_port()?;
        let p = prefix.display();
        let www = dir.join("www");
        let www = www.display();
        let config = format!(
            "daemon off;
master_process off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;
events {{ worker_connections 1024; }}
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
    server {{ listen 127.0.0.1:{port}; root {www}; limit_rate 20m; }}
    server {{ listen 127.0.0.1:{h2c_port} http2; root {www}; limit_rate 20m; }}
}}
"
        );
        let conf = prefix.join("nginx.conf");
        fs::write(&conf, config).map_err(|e| format!("{}: {e}", conf.display()))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let mut server = LimitedNginx {
            child,
            port,
            h2c_port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("nginx exited at once ({status})"));
            }
            let up = [port, h2c_port]
                .iter()
                .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if up {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("nginx did not start listening within 10 s".into())
    }
}

impl Drop for LimitedNginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
