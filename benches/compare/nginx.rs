//! The server side of a run: a scratch directory, the generated files and
//! the nginx (its own config, prefix and pid file, `daemon off`) that serves
//! them on 127.0.0.1.

use super::*;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A temporary directory, removed on drop unless kept.
pub(crate) struct Scratch {
    pub(crate) path: PathBuf,
    pub(crate) keep: bool,
}

impl Scratch {
    pub(crate) fn new(keep: bool) -> Result<Scratch, String> {
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

pub(crate) fn file_name(index: usize) -> String {
    format!("f{index:05}")
}

/// Writes the set's files (the 1 GiB one sparse: nginx serves its zeros from
/// the page cache, the disk is not what is measured).
pub(crate) fn generate(www: &Path, set: FileSet, count: usize) -> Result<(), String> {
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
pub(crate) struct Nginx {
    pub(crate) child: Child,
    pub(crate) h1_port: u16,
    pub(crate) h2c_port: u16,
}

impl Nginx {
    pub(crate) fn start(binary: &Path, scratch: &Path) -> Result<Nginx, String> {
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

    pub(crate) fn url(&self, h2c: bool, set: FileSet, index: usize) -> String {
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

pub(crate) fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}
