//! TLS servers that fail on purpose: one that stops right after its
//! ServerHello, and `openssl s_server` limited to TLS 1.0.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::background::Background;
use super::tls::TestPki;
use super::{HttpsServer, TempDir};

/// TLS record type of handshake messages, and the ServerHello message type.
const HANDSHAKE_RECORD: u8 = 22;
const SERVER_HELLO: u8 = 2;

/// A relay in front of an [`HttpsServer`] that passes the client's bytes on
/// but, of the server's, only its first TLS record (the ServerHello); then
/// it holds the connection open and sends nothing more.
pub struct ServerHelloThenSilence {
    background: Background,
    hellos: Arc<AtomicUsize>,
    _upstream: HttpsServer,
}

impl ServerHelloThenSilence {
    /// Starts the TLS server and the relay.
    pub fn start() -> ServerHelloThenSilence {
        let upstream = HttpsServer::start();
        let port = upstream.port();
        let hellos = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hellos);
        let background = Background::spawn("support-tls-stall", 1, move |listener| async move {
            loop {
                if let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(relay_server_hello(client, port, Arc::clone(&counted)));
                }
            }
        });
        ServerHelloThenSilence {
            background,
            hellos,
            _upstream: upstream,
        }
    }

    /// `https://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.background.port())
    }

    /// ServerHello records passed on so far.
    pub fn server_hellos(&self) -> usize {
        self.hellos.load(Ordering::SeqCst)
    }
}

/// Relays `client` to the server on `port`: everything upstream, and only
/// the first record back when it is a ServerHello.
async fn relay_server_hello(client: TcpStream, port: u16, hellos: Arc<AtomicUsize>) {
    let Ok(server) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
        return;
    };
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    let upstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_in, &mut server_out).await;
    });
    let mut header = [0u8; 5];
    if server_in.read_exact(&mut header).await.is_err() {
        return;
    }
    let mut record = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
    if server_in.read_exact(&mut record).await.is_err() {
        return;
    }
    if header[0] != HANDSHAKE_RECORD || record.first() != Some(&SERVER_HELLO) {
        return; // not what this server is for: close
    }
    if client_out.write_all(&header).await.is_err() || client_out.write_all(&record).await.is_err()
    {
        return;
    }
    hellos.fetch_add(1, Ordering::SeqCst);
    // The rest of the server's handshake goes nowhere.
    let _ = tokio::io::copy(&mut server_in, &mut tokio::io::sink()).await;
    let _ = upstream.await;
    drop(client_out);
}

/// `openssl s_server` speaking TLS 1.0 only (at OpenSSL security level 0,
/// which TLS 1.0 needs), with a certificate for 127.0.0.1; killed on drop.
pub struct Tls10Server {
    child: Child,
    port: u16,
    ca_file: std::path::PathBuf,
    _dir: TempDir,
}

impl Tls10Server {
    /// Starts it; fails the test when `openssl` is missing (vendor/bootstrap
    /// installs it for `vendor/cargo test`).
    pub fn start() -> Tls10Server {
        let pki = TestPki::generate();
        let dir = TempDir::new("uvcurl-support-tls10");
        let (cert, key, ca_file) = (
            dir.join("leaf.pem"),
            dir.join("key.pem"),
            dir.join("ca.pem"),
        );
        std::fs::write(&cert, &pki.leaf_pem).expect("write leaf PEM");
        std::fs::write(&key, &pki.key_pem).expect("write key PEM");
        std::fs::write(&ca_file, &pki.ca_pem).expect("write CA PEM");
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-tls1", "-www"])
            .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run openssl ({e}): run `vendor/bootstrap test` to install it")
            });
        // It prints `ACCEPT 127.0.0.1:PORT` once listening; the rest of its
        // output is drained until it exits.
        let stdout = child.stdout.take().expect("piped stdout");
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("ACCEPT 127.0.0.1:") {
                    let _ = port_tx.send(port.trim().parse::<u16>().ok());
                }
            }
        });
        let port = port_rx.recv_timeout(Duration::from_secs(10));
        let Ok(Some(port)) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("openssl s_server did not say where it listens: {port:?}");
        };
        Tls10Server {
            child,
            port,
            ca_file,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// The CA that signed its certificate (PEM file).
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.ca_file.clone()
    }
}

impl Drop for Tls10Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
