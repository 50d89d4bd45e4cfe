//! `HttpsServer`: the routes of `HttpServer` over TLS, with ALPN.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use super::background::Background;
use super::http::{accept_loop, Stats};
use super::tls::TestPki;
use super::TempDir;

/// TLS loopback server with the same routes; ALPN offers `h2` and
/// `http/1.1`; the certificate is issued for "localhost" and 127.0.0.1 by a
/// CA generated at start.
pub struct HttpsServer {
    background: Background,
    stats: Arc<Stats>,
    ca_pem: String,
    ca_file: PathBuf,
    _dir: TempDir,
}

impl HttpsServer {
    /// Generates the CA and leaf, writes the CA PEM to a temporary
    /// directory, binds 127.0.0.1:0 and serves until dropped.
    pub fn start() -> HttpsServer {
        HttpsServer::start_at(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// As [`start`](HttpsServer::start), bound to `ip`; the certificate
    /// still names "localhost" and 127.0.0.1 (tests/it/links.rs reaches it
    /// through a proxy on 127.0.0.1).
    pub fn start_at(ip: IpAddr) -> HttpsServer {
        let pki = TestPki::generate();
        let dir = TempDir::new("uvcurl-support-tls");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, pki.ca_pem.as_bytes()).expect("write CA PEM");
        let acceptor = TlsAcceptor::from(Arc::clone(&pki.server_config));
        let stats = Arc::new(Stats::default());
        let shared = Arc::clone(&stats);
        let background = Background::spawn_at("support-https", ip, 2, move |listener| {
            accept_loop(listener, shared, move |tcp| {
                let accept = acceptor.accept(tcp);
                async move {
                    let handshake = tokio::time::timeout(Duration::from_secs(10), accept).await;
                    handshake.ok()?.ok()
                }
            })
        });
        HttpsServer {
            background,
            stats,
            ca_pem: pki.ca_pem,
            ca_file,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{}", self.port(), path)
    }

    /// Path of the CA certificate (PEM); the file is removed on drop.
    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }

    /// The CA certificate as PEM text.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.background.port()
    }

    /// TCP connections accepted so far (before the TLS handshake).
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }
}
