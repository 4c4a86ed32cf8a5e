//! Real servers on loopback for the reach tests (the library's in
//! crates/probe-core/tests/reach.rs and the command line's in crates/probe-cli/tests/e2e/reach.rs): a
//! private CA made for the test, an HTTPS server holding its certificate, and a plain
//! server; each writes down the request heads and TLS server names it got, so a test
//! can check what the prober really sent.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA of the test's own, which no system store trusts.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A server's certificate chain and key, as rustls takes them.
pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl Ca {
    pub fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "rollprobe test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            cert: params.self_signed(&key).unwrap(),
            key,
        }
    }

    /// The CA's certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA's PEM into `dir` and says where.
    pub fn write_pem(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.pem()).unwrap();
        path
    }

    /// A certificate for these DNS names and 127.0.0.1, signed by the CA.
    pub fn issue(&self, names: &[&str]) -> ServerCert {
        self.issue_with(names, |_| {})
    }

    /// Like [`Ca::issue`], with its parameters changed first (e.g. its dates).
    pub fn issue_with(
        &self,
        names: &[&str],
        change: impl FnOnce(&mut CertificateParams),
    ) -> ServerCert {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        change(&mut params);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        ServerCert {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

/// What a server got: the TLS server name (SNI) if any, and the request head.
#[derive(Debug, Clone)]
pub struct Seen {
    pub sni: Option<String>,
    pub head: String,
}

impl Seen {
    /// The values of every header of this name, in order.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// A loopback server and what it has seen so far.
pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// An HTTPS server on 127.0.0.1 with `cert`, answering `v1` to every request.
pub async fn https(cert: ServerCert) -> Server {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(cert.chain, PrivateKeyDer::Pkcs8(cert.key))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    serve(move |tcp, seen| {
        let acceptor = acceptor.clone();
        async move {
            // A client that refuses the certificate ends the handshake: nothing to answer.
            if let Ok(tls) = acceptor.accept(tcp).await {
                let sni = tls.get_ref().1.server_name().map(str::to_string);
                answer(tls, sni, seen).await;
            }
        }
    })
    .await
}

/// A plain HTTP server on 127.0.0.1, answering `v1` to every request.
pub async fn plain() -> Server {
    serve(|tcp, seen| answer(tcp, None, seen)).await
}

/// A server that reads the client's first bytes and answers them with `reply` (e.g. a
/// TLS alert), then closes.
pub async fn replies(reply: &'static [u8]) -> Server {
    serve(move |mut tcp, _| async move {
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
        let _ = tcp.write_all(reply).await;
        let _ = tcp.shutdown().await;
    })
    .await
}

async fn serve<F, Fut>(handle: F) -> Server
where
    F: Fn(tokio::net::TcpStream, Arc<Mutex<Vec<Seen>>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(handle(tcp, kept.clone()));
        }
    });
    Server { addr, seen }
}

/// Reads one request head (bounded in size and time), notes it, answers `v1` and closes.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    sni: Option<String>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    seen.lock().unwrap().push(Seen {
        sni,
        head: String::from_utf8_lossy(&head).into_owned(),
    });
    let _ = s
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nv1")
        .await;
    let _ = s.shutdown().await;
}

/// A fatal `handshake_failure` alert, as a server sends it to refuse a handshake.
pub const HANDSHAKE_FAILURE_ALERT: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
