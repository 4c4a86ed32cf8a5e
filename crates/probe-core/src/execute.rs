//! Sending one request and timing its phases.
//!
//! We open and pool connections ourselves rather than through an HTTP client library
//! because the prober must see what such clients hide: the connect phase on its own
//! (its errno, its time), whether a connection was new or reused, and the exact moment
//! the response head arrived (the exchange itself is in `http1.rs`). The pool for
//! `keepalive` is a plain stack of idle connections: the newest idle connection
//! is reused, a closed one is dropped, and a failure is never retried, because a
//! retry would hide exactly what we came to measure.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::classify::{
    classify_answer, classify_error, errno_name, Classified, ProxySigns, PROXY_SIGN_HEADERS,
};
use crate::config::{ConnectionMode, ProbeConfig, VersionSource};
use crate::http1::{has_token, Connection, Head, Io};
use crate::outcome::{Outcome, Proxy};
use crate::tls::{root_store, NoVerification, TlsReason};

/// The most of a body that is kept (for the version, the pod and a failure's snippet);
/// enough for any version string. The rest of the body is read to its end, within the
/// timeout, and dropped.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What one request came to, before it is stamped into a [`crate::Sample`].
#[derive(Debug, Clone)]
pub struct Attempt {
    /// How it ended.
    pub outcome: Outcome,
    /// The OS error number, if the failure had one.
    pub errno: Option<i32>,
    /// HTTP status, when a response head arrived.
    pub status: Option<u16>,
    /// The version of an ok answer.
    pub version: Option<String>,
    /// The pod (instance) that gave an ok answer, with `pod_from`.
    pub pod: Option<String>,
    /// Handshake time (TCP + TLS) on a new connection, ms.
    pub connect_ms: Option<f64>,
    /// SYNs the kernel sent again before the connect ended (from `TCP_INFO`): a connect
    /// that needed one met a dropped SYN or an ICMP error that was never sent.
    pub syn_retransmits: Option<u32>,
    /// Time to the response head, ms from the start of the attempt.
    pub ttfb_ms: Option<f64>,
    /// Time to the end, ms from the start of the attempt.
    pub total_ms: f64,
    /// Whether a pooled connection was reused.
    pub reused: bool,
    /// The error chain of a failure.
    pub error: Option<String>,
    /// The proxy whose own answer this was (its error page or headers).
    pub proxy: Option<Proxy>,
}

impl Attempt {
    /// The errno's symbolic name.
    pub fn errno_name(&self) -> Option<&'static str> {
        self.errno.and_then(errno_name)
    }
}

/// The TLS client for the configured trust: the system's store and `--cacert`, or no
/// verification with `--insecure`.
fn tls_connector(config: &ProbeConfig) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let tls_config = if config.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let extra = config.cacert.as_ref().map(|ca| ca.certs.as_slice());
        builder
            .with_root_certificates(root_store(extra.unwrap_or_default()))
            .with_no_client_auth()
    };
    tokio_rustls::TlsConnector::from(Arc::new(tls_config))
}

/// Sends requests as configured; cheap to share between tasks.
pub struct Executor {
    config: Arc<ProbeConfig>,
    tls: Option<tokio_rustls::TlsConnector>,
    idle: Mutex<Vec<Connection>>,
    /// The request up to its `x-request-id` header: it is the same for every request.
    request_head: Vec<u8>,
    request_body: Vec<u8>,
    head_request: bool,
    /// The configured headers ask the server to close each connection after its answer.
    request_closes: bool,
    /// The lower-case names of the response headers that the answer's checks read.
    wanted_headers: Vec<String>,
}

/// A request that failed, with what was known of it when it did.
pub(crate) struct Failure {
    pub(crate) classified: Classified,
    pub(crate) connect_ms: Option<f64>,
    pub(crate) syn_retransmits: Option<u32>,
    pub(crate) ttfb_ms: Option<f64>,
    pub(crate) status: Option<u16>,
}

impl Failure {
    /// The attempt this failure ends.
    pub(crate) fn into_attempt(self, total_ms: f64, reused: bool) -> Attempt {
        Attempt {
            outcome: self.classified.outcome,
            errno: self.classified.errno,
            status: self.status,
            version: None,
            pod: None,
            connect_ms: self.connect_ms,
            syn_retransmits: self.syn_retransmits,
            ttfb_ms: self.ttfb_ms,
            total_ms,
            reused,
            error: Some(self.classified.message),
            proxy: None,
        }
    }

    pub(crate) fn at_connect(classified: Classified, syn_retransmits: Option<u32>) -> Failure {
        Failure {
            classified,
            connect_ms: None,
            syn_retransmits,
            ttfb_ms: None,
            status: None,
        }
    }
}

pub(crate) fn timed_out(outcome: Outcome, what: &str, after: Duration) -> Classified {
    Classified {
        outcome,
        errno: None,
        message: format!("{what} did not finish within {after:?}"),
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Executor {
    /// Prepares everything that does not change between requests.
    pub fn new(config: Arc<ProbeConfig>) -> Executor {
        let tls = config.target.https.then(|| tls_connector(&config));
        let path = config.target.path_and_query();
        // The same fallback as an unparsable path always had: the root.
        let path = match path.parse::<hyper::Uri>() {
            Ok(_) => path,
            Err(_) => "/".to_string(),
        };
        let request_body = config.body.clone().unwrap_or_default().into_bytes();
        let mut head = format!("{} {path} HTTP/1.1\r\n", config.method);
        let user_agent = format!("rollprobe/{}", env!("CARGO_PKG_VERSION"));
        let defaults = [
            ("host", config.target.authority()),
            ("user-agent", user_agent),
        ];
        for (name, value) in &defaults {
            if !config
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
            {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        // The user's own headers replace the defaults of their names; an empty value
        // removes the header, as curl's `-H 'Name:'` does.
        for (k, v) in config.headers.iter().filter(|(_, v)| !v.is_empty()) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let framed_by_user = config.headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        });
        let body_expected = matches!(config.method.as_str(), "POST" | "PUT" | "PATCH");
        if !framed_by_user && (!request_body.is_empty() || body_expected) {
            head.push_str(&format!("content-length: {}\r\n", request_body.len()));
        }
        let mut wanted_headers: Vec<String> =
            PROXY_SIGN_HEADERS.iter().map(|h| h.to_string()).collect();
        for source in std::iter::once(&config.version_from).chain(config.pod_from.as_ref()) {
            if let VersionSource::Header(name) = source {
                wanted_headers.push(name.to_ascii_lowercase());
            }
        }
        let request_closes = config
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("connection") && has_token(v.as_bytes(), "close"));
        Executor {
            request_closes,
            request_head: head.into_bytes(),
            request_body,
            head_request: config.method == "HEAD",
            wanted_headers,
            config,
            tls,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends one request (with `x-request-id: request_id` when given) and reports how
    /// it went. Never retries.
    pub async fn execute(&self, request_id: Option<&str>) -> Attempt {
        let start = Instant::now();
        let pooled = match self.config.connection {
            ConnectionMode::Keepalive => self.take_idle(),
            // A stream's own config is never Both: the probe splits it into two streams.
            ConnectionMode::Fresh | ConnectionMode::Both => None,
        };
        let reused = pooled.is_some();
        let result = match pooled {
            Some(connection) => {
                self.exchange(connection, start, None, None, request_id)
                    .await
            }
            None => match self.connect().await {
                Ok((connection, retransmits)) => {
                    let connect_ms = ms(start.elapsed());
                    self.exchange(
                        connection,
                        start,
                        Some(connect_ms),
                        Some(retransmits),
                        request_id,
                    )
                    .await
                }
                Err(f) => Err(f),
            },
        };
        let total_ms = ms(start.elapsed());
        match result {
            Ok(mut attempt) => {
                attempt.total_ms = total_ms;
                attempt.reused = reused;
                attempt
            }
            Err(f) => f.into_attempt(total_ms, reused),
        }
    }

    fn take_idle(&self) -> Option<Connection> {
        loop {
            let mut connection = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
            if connection.is_reusable() {
                return Some(connection);
            }
        }
    }

    fn put_idle(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.config.effective_max_in_flight() {
            idle.push(connection);
        }
    }

    /// The target's addresses when no DNS is needed for them: a `--resolve` rule for
    /// its host and port, or an IP address for a host.
    pub(crate) fn addresses_without_dns(&self) -> Option<Vec<SocketAddr>> {
        let target = &self.config.target;
        // The last rule for the host and port wins, as a later option overrides.
        let rules = &self.config.resolve;
        if let Some(rule) = rules
            .iter()
            .rev()
            .find(|r| r.applies_to(&target.host, target.port))
        {
            return Some(
                rule.addrs
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, target.port))
                    .collect(),
            );
        }
        let ip = target.host.parse::<IpAddr>().ok()?;
        Some(vec![SocketAddr::new(ip, target.port)])
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, Classified> {
        if let Some(addrs) = self.addresses_without_dns() {
            return Ok(addrs);
        }
        let target = &self.config.target;
        match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
            Ok(addrs) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() {
                    Err(Classified {
                        outcome: Outcome::Dns,
                        errno: None,
                        message: format!("{} resolved to no address", target.host),
                    })
                } else {
                    Ok(addrs)
                }
            }
            Err(e) => {
                let mut c = classify_error(&e, Outcome::Dns);
                // getaddrinfo's failures carry no errno; an errno here is a local one.
                if !c.outcome.is_local() {
                    c.outcome = Outcome::Dns;
                }
                c.message = format!("resolving {}: {}", target.host, c.message);
                Err(c)
            }
        }
    }

    async fn connect(&self) -> Result<(Connection, u32), Failure> {
        let deadline = tokio::time::Instant::now() + self.config.connect_timeout;
        let addrs = match tokio::time::timeout_at(deadline, self.resolve()).await {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(c)) => return Err(Failure::at_connect(c, None)),
            Err(_) => return Err(self.connect_timed_out(None)),
        };
        let mut last = None;
        for addr in addrs {
            match tcp_connect(addr, deadline).await {
                Ok((stream, retransmits)) => {
                    let _ = stream.set_nodelay(true);
                    return match tokio::time::timeout_at(deadline, self.handshake(stream)).await {
                        Ok(Ok(connection)) => Ok((connection, retransmits)),
                        Ok(Err(c)) => Err(Failure::at_connect(c, Some(retransmits))),
                        Err(_) => Err(self.connect_timed_out(Some(retransmits))),
                    };
                }
                Err(TcpConnectError::TimedOut(retransmits)) => {
                    return Err(self.connect_timed_out(retransmits))
                }
                Err(TcpConnectError::Failed(e, retransmits)) => {
                    last = Some(Failure::at_connect(
                        classify_error(&e, Outcome::Other),
                        retransmits,
                    ))
                }
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    pub(crate) fn connect_timed_out(&self, retransmits: Option<u32>) -> Failure {
        Failure::at_connect(
            timed_out(
                Outcome::ConnectTimeout,
                "connect",
                self.config.connect_timeout,
            ),
            retransmits,
        )
    }

    async fn handshake(&self, stream: TcpStream) -> Result<Connection, Classified> {
        match &self.tls {
            None => Ok(Connection::new(Io::Plain(stream))),
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.config.target.host.clone())
                    .map_err(|e| classify_error(&e, Outcome::Tls))?;
                let stream = tls.connect(name, stream).await.map_err(|e| {
                    let mut c = classify_error(&e, Outcome::Tls);
                    // A handshake that fails without an errno is a TLS failure,
                    // whatever io::ErrorKind rustls wrapped it in; its reason leads
                    // the text, where the summary reads it back.
                    if c.errno.is_none() {
                        c.outcome = Outcome::Tls;
                        c.message = format!("{}: {}", TlsReason::of_chain(&e).as_str(), c.message);
                    }
                    c
                })?;
                Ok(Connection::new(Io::Tls(Box::new(stream))))
            }
        }
    }

    /// The bytes of one request.
    pub(crate) fn request(&self, request_id: Option<&str>) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.request_head.len() + 64 + self.request_body.len());
        bytes.extend_from_slice(&self.request_head);
        if let Some(id) = request_id {
            bytes.extend_from_slice(b"x-request-id: ");
            bytes.extend_from_slice(id.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&self.request_body);
        bytes
    }

    async fn exchange(
        &self,
        mut connection: Connection,
        start: Instant,
        connect_ms: Option<f64>,
        syn_retransmits: Option<u32>,
        request_id: Option<&str>,
    ) -> Result<Attempt, Failure> {
        let limit = self.config.timeout;
        let mut ttfb_ms = None;
        let mut status = None;
        let work = async {
            connection.send(&self.request(request_id)).await?;
            let head = connection
                .read_head(self.head_request, &self.wanted_headers)
                .await?;
            ttfb_ms = Some(ms(start.elapsed()));
            status = Some(head.status);
            // The whole body is read, but only its prefix is kept: an answer is
            // complete when its body has ended, so a 200 whose body never ends
            // within the timeout is a `response_timeout`, not `ok`, while memory
            // stays bounded by MAX_BODY_BYTES whatever the server sends.
            let mut prefix: Vec<u8> = Vec::new();
            let reusable = connection
                .read_body(&head, &mut prefix, MAX_BODY_BYTES)
                .await?;
            Ok::<_, Classified>((head, prefix, reusable))
        };
        let (head, prefix, reusable) = match tokio::time::timeout(limit, work).await {
            Ok(Ok(done)) => done,
            Ok(Err(classified)) => {
                return Err(Failure {
                    classified,
                    connect_ms,
                    syn_retransmits,
                    ttfb_ms,
                    status,
                })
            }
            Err(_) => {
                return Err(Failure {
                    classified: timed_out(Outcome::ResponseTimeout, "the response", limit),
                    connect_ms,
                    syn_retransmits,
                    ttfb_ms,
                    status,
                })
            }
        };
        if self.keeps(reusable) {
            self.put_idle(connection);
        }
        Ok(self.judge(&head, &prefix, connect_ms, syn_retransmits, ttfb_ms))
    }

    /// Whether a connection whose answer left it `reusable` goes back to the pool.
    pub(crate) fn keeps(&self, reusable: bool) -> bool {
        reusable && !self.request_closes && self.config.connection == ConnectionMode::Keepalive
    }

    /// The configuration this executor sends by.
    pub(crate) fn config(&self) -> &ProbeConfig {
        &self.config
    }

    /// Whether requests are HEAD (their answers have no body).
    pub(crate) fn head_request(&self) -> bool {
        self.head_request
    }

    /// The response headers that the answer's checks read.
    pub(crate) fn wanted_headers(&self) -> &[String] {
        &self.wanted_headers
    }

    /// What a complete answer (its head and the kept prefix of its body) comes to:
    /// ok, or a failure named by its status and the proxy signs.
    pub(crate) fn judge(
        &self,
        head: &Head,
        prefix: &[u8],
        connect_ms: Option<f64>,
        syn_retransmits: Option<u32>,
        ttfb_ms: Option<f64>,
    ) -> Attempt {
        let code = head.status;
        let (outcome, version, pod, error, proxy) = if self.config.expect_status.contains(code) {
            let version = self.config.version_from.extract(&head.headers, prefix);
            let pod = self
                .config
                .pod_from
                .as_ref()
                .and_then(|source| source.extract(&head.headers, prefix));
            (Outcome::Ok, version, pod, None, None)
        } else {
            let signs = ProxySigns::from_headers(&head.headers);
            let (outcome, proxy) = classify_answer(code, &signs, prefix);
            let snippet = String::from_utf8_lossy(&prefix[..prefix.len().min(120)])
                .trim()
                .replace(['\r', '\n'], " ");
            let from = proxy.map(|p| format!(" from {p}")).unwrap_or_default();
            let error = Some(format!("HTTP {code}{from}: {snippet}"));
            (outcome, None, None, error, proxy)
        };
        Attempt {
            outcome,
            errno: None,
            status: Some(code),
            version,
            pod,
            connect_ms,
            syn_retransmits,
            ttfb_ms,
            total_ms: 0.0,
            reused: false,
            error,
            proxy,
        }
    }
}

enum TcpConnectError {
    /// No handshake before the deadline; the SYN retransmissions so far.
    TimedOut(Option<u32>),
    /// The kernel's answer (refused, unreachable ...) and the retransmissions before it.
    Failed(std::io::Error, Option<u32>),
}

/// A TCP connect that keeps its socket until the end, so that `TCP_INFO` can say how
/// many SYNs it took, also when it failed or timed out (tokio's own connect closes the
/// socket before its error is returned).
async fn tcp_connect(
    addr: SocketAddr,
    deadline: tokio::time::Instant,
) -> Result<(TcpStream, u32), TcpConnectError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let failed = |e| TcpConnectError::Failed(e, None);
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(failed)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(failed(e)),
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket)).map_err(failed)?;
    match tokio::time::timeout_at(deadline, stream.writable()).await {
        Err(_) => Err(TcpConnectError::TimedOut(syn_retransmits(&stream))),
        Ok(Err(e)) => Err(TcpConnectError::Failed(e, syn_retransmits(&stream))),
        Ok(Ok(())) => {
            // One getsockopt answers both questions on the usual path: an established
            // connection has no pending error to fetch with SO_ERROR.
            let info = tcp_info(std::os::fd::AsRawFd::as_raw_fd(&stream));
            if let Some((TCP_ESTABLISHED, retransmits)) = info {
                return Ok((stream, retransmits));
            }
            match stream.take_error() {
                Ok(None) => Ok((stream, info.map_or(0, |(_, r)| r))),
                Ok(Some(e)) | Err(e) => Err(TcpConnectError::Failed(e, info.map(|(_, r)| r))),
            }
        }
    }
}

/// Retransmitted segments of a connection that has sent nothing but SYNs yet.
fn syn_retransmits(stream: &TcpStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    tcp_info(stream.as_raw_fd()).map(|(_, retransmits)| retransmits)
}

/// `TCP_ESTABLISHED` of the kernel's tcp_states.h (the libc crate has it only for Hurd).
const TCP_ESTABLISHED: u8 = 1;

/// The connection's TCP state (e.g. [`TCP_ESTABLISHED`]) and its retransmitted
/// segments so far, from `TCP_INFO`.
pub(crate) fn tcp_info(fd: std::os::fd::RawFd) -> Option<(u8, u32)> {
    // SAFETY: tcp_info is plain old data; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt on any fd is safe; a closed or foreign one fails.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some((info.tcpi_state, info.tcpi_total_retrans))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;
    use std::io::{Read, Write};

    /// One request against a loopback server that answers its first connection
    /// with `answer` after reading the request.
    async fn against(answer: &'static [u8], timeout: Duration) -> Attempt {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(answer);
            // Hold the connection for longer than the client waits (bounded).
            let _ = stream.set_read_timeout(Some(timeout * 2));
            let _ = stream.read(&mut buf);
        });
        let mut config = ProbeConfig::new(Target::parse(&format!("http://{addr}/")).unwrap());
        config.timeout = timeout;
        let attempt = Executor::new(Arc::new(config)).execute(None).await;
        server.join().unwrap();
        attempt
    }

    #[tokio::test]
    async fn bytes_that_are_not_http_are_an_invalid_response() {
        let a = against(b"v1\n", Duration::from_secs(2)).await;
        assert_eq!(a.outcome, Outcome::InvalidResponse, "{:?}", a.error);
        assert!(a.error.unwrap().starts_with("invalid HTTP response"));
    }

    #[tokio::test]
    async fn a_body_that_does_not_end_in_time_is_a_response_timeout() {
        let a = against(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nv1",
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(a.outcome, Outcome::ResponseTimeout, "{:?}", a.error);
        assert_eq!(a.status, Some(200));
    }

    #[tokio::test]
    async fn a_body_longer_than_the_kept_prefix_is_ok_when_it_ends() {
        static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let answer = BIG.get_or_init(|| {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                4 * MAX_BODY_BYTES
            )
            .into_bytes();
            r.extend(std::iter::repeat_n(b'v', 4 * MAX_BODY_BYTES));
            r
        });
        let a = against(answer, Duration::from_secs(2)).await;
        assert_eq!(a.outcome, Outcome::Ok, "{:?}", a.error);
    }
}
