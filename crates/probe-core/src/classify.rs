//! Naming a failure by its real cause.
//!
//! Errors arrive wrapped several layers deep (rustls, tokio, a caller's own
//! wrappers). The only trustworthy cause is the OS errno at the bottom of the
//! `source()` chain, so we walk the chain to the first `std::io::Error` with a raw OS
//! error and map the errno; wrappers only decide when no errno exists (an end of
//! stream is a closed connection, a rustls error is TLS).

use std::error::Error as StdError;
use std::io;

use crate::outcome::{Outcome, Proxy};

/// The symbolic name of an errno, such as `ECONNREFUSED` for 111.
///
/// ```
/// assert_eq!(probe_core::errno_name(113), Some("EHOSTUNREACH"));
/// assert_eq!(probe_core::errno_name(9999), None);
/// ```
pub fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::EPIPE => "EPIPE",
        libc::EPROTO => "EPROTO",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ENETRESET => "ENETRESET",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOTCONN => "ENOTCONN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        _ => return None,
    })
}

/// The outcome that an errno stands for.
///
/// ```
/// use probe_core::{outcome_for_errno, Outcome};
/// assert_eq!(outcome_for_errno(111), Outcome::ConnectionRefused);
/// assert_eq!(outcome_for_errno(24), Outcome::LocalEmfile);
/// ```
pub fn outcome_for_errno(errno: i32) -> Outcome {
    match errno {
        libc::ECONNREFUSED => Outcome::ConnectionRefused,
        libc::EHOSTUNREACH | libc::EHOSTDOWN => Outcome::HostUnreachable,
        libc::ENETUNREACH | libc::ENETDOWN => Outcome::NetworkUnreachable,
        libc::ETIMEDOUT => Outcome::ConnectTimeout,
        libc::ECONNRESET | libc::ECONNABORTED | libc::ENETRESET => Outcome::ConnectionReset,
        libc::EPIPE | libc::ENOTCONN => Outcome::ConnectionClosed,
        libc::EMFILE => Outcome::LocalEmfile,
        libc::ENFILE => Outcome::LocalEnfile,
        libc::EADDRNOTAVAIL => Outcome::LocalEaddrnotavail,
        libc::ENOBUFS => Outcome::LocalEnobufs,
        libc::ENOMEM => Outcome::LocalEnomem,
        _ => Outcome::Other,
    }
}

/// What classification found in an error: its kind and, when there was one, the errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The stable kind.
    pub outcome: Outcome,
    /// The OS error number at the bottom of the chain, if any.
    pub errno: Option<i32>,
    /// The error's messages, outermost first, joined with ": ".
    pub message: String,
}

/// Classifies any error by walking its `source()` chain to the OS error.
///
/// `fallback` is the kind to use when the chain holds neither an errno nor a
/// recognised wrapper (the caller knows the phase: DNS, TLS, ...).
///
/// ```
/// use probe_core::{classify_error, Outcome};
/// let err = std::io::Error::from_raw_os_error(113);
/// let c = classify_error(&err, Outcome::Other);
/// assert_eq!(c.outcome, Outcome::HostUnreachable);
/// assert_eq!(c.errno, Some(113));
/// ```
pub fn classify_error(err: &(dyn StdError + 'static), fallback: Outcome) -> Classified {
    let message = chain_message(err);
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    let mut from_wrapper: Option<Outcome> = None;
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(errno) = io.raw_os_error() {
                return Classified {
                    outcome: outcome_for_errno(errno),
                    errno: Some(errno),
                    message,
                };
            }
            from_wrapper = from_wrapper.or(match io.kind() {
                io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => {
                    Some(Outcome::ConnectionClosed)
                }
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                    Some(Outcome::ConnectionReset)
                }
                io::ErrorKind::ConnectionRefused => Some(Outcome::ConnectionRefused),
                _ => None,
            });
        }
        if e.downcast_ref::<rustls::Error>().is_some() {
            from_wrapper = from_wrapper.or(Some(Outcome::Tls));
        }
        current = e.source();
    }
    Classified {
        outcome: from_wrapper.unwrap_or(fallback),
        errno: None,
        message,
    }
}

fn chain_message(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        // Wrappers often repeat their source's text; keep each message once.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// What the client saw of an answer besides its status: the response headers that
/// name the proxy that made it. Everything else is in the body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxySigns<'a> {
    /// The `Server` header.
    pub server: Option<&'a str>,
    /// Envoy's `x-envoy-upstream-service-time`: Envoy forwarded an upstream's answer.
    pub envoy_upstream_service_time: bool,
    /// Envoy's `x-envoy-overloaded`: Envoy shed the request itself.
    pub envoy_overloaded: bool,
}

impl<'a> ProxySigns<'a> {
    /// The signs in a response's headers (those of [`PROXY_SIGN_HEADERS`]).
    ///
    /// ```
    /// let mut headers = probe_core::HeaderMap::new();
    /// headers.insert("x-envoy-overloaded", "true".parse().unwrap());
    /// assert!(probe_core::ProxySigns::from_headers(&headers).envoy_overloaded);
    /// ```
    pub fn from_headers(headers: &'a hyper::HeaderMap) -> ProxySigns<'a> {
        ProxySigns {
            server: headers
                .get(hyper::header::SERVER)
                .and_then(|v| v.to_str().ok()),
            envoy_upstream_service_time: headers.contains_key("x-envoy-upstream-service-time"),
            envoy_overloaded: headers.contains_key("x-envoy-overloaded"),
        }
    }
}

/// The response headers [`ProxySigns`] reads, lower case: an executor keeps these.
pub const PROXY_SIGN_HEADERS: [&str; 3] = [
    "server",
    "x-envoy-upstream-service-time",
    "x-envoy-overloaded",
];

/// How much of a body the proxy pages are looked for in: every proxy's own page
/// says what it is in its first few hundred bytes.
const PAGE_PREFIX: usize = 1024;

/// The kind of an answer whose status is not in the expected set, and the proxy
/// that produced it when the answer is a proxy's own (its error page, its headers).
///
/// An application's own 5xx stays `http_5xx` with no proxy: behind Envoy it carries
/// `x-envoy-upstream-service-time` and no Envoy text, behind nginx and HAProxy it is
/// not their error page.
///
/// ```
/// use probe_core::{classify_answer, Outcome, Proxy, ProxySigns};
/// let envoy = ProxySigns { server: Some("istio-envoy"), ..Default::default() };
/// assert_eq!(
///     classify_answer(503, &envoy, b"no healthy upstream"),
///     (Outcome::ProxyNoUpstream, Some(Proxy::Envoy))
/// );
/// let app = ProxySigns { server: Some("envoy"), envoy_upstream_service_time: true, ..Default::default() };
/// assert_eq!(classify_answer(503, &app, b"draining"), (Outcome::Http5xx, None));
/// ```
pub fn classify_answer(
    status: u16,
    signs: &ProxySigns<'_>,
    body: &[u8],
) -> (Outcome, Option<Proxy>) {
    let page = String::from_utf8_lossy(&body[..body.len().min(PAGE_PREFIX)]);
    let found = envoy_answer(status, signs, &page)
        .map(|kind| (kind, Proxy::Envoy))
        .or_else(|| nginx_page(status, &page).map(|kind| (kind, Proxy::Nginx)))
        .or_else(|| haproxy_page(status, signs, &page).map(|kind| (kind, Proxy::Haproxy)));
    match found {
        Some((kind, proxy)) => (kind, Some(proxy)),
        None => (status_kind(status), None),
    }
}

fn status_kind(status: u16) -> Outcome {
    if (500..600).contains(&status) {
        Outcome::Http5xx
    } else {
        Outcome::UnexpectedStatus
    }
}

/// Envoy's own local replies. Their text decides, not the `Server` header: Envoy
/// writes `server: envoy` (Istio: `istio-envoy`) on the answers it forwards too, and
/// a deeper Envoy's reply (a sidecar behind a gateway) reaches the client with the
/// outer one's `x-envoy-upstream-service-time` but keeps its text.
fn envoy_answer(status: u16, signs: &ProxySigns<'_>, page: &str) -> Option<Outcome> {
    if signs.envoy_overloaded && status >= 500 {
        return Some(Outcome::ProxyOverloaded);
    }
    if page.starts_with("no healthy upstream") {
        Some(Outcome::ProxyNoUpstream)
    } else if page.starts_with("upstream connect error or disconnect/reset before headers") {
        Some(if page.contains("reset reason: overflow") {
            Outcome::ProxyOverloaded
        } else {
            Outcome::ProxyUpstreamFailed
        })
    } else if page.starts_with("upstream request timeout") {
        Some(Outcome::ProxyUpstreamTimeout)
    } else if is_envoy_server(signs.server) && !signs.envoy_upstream_service_time {
        // Another local reply of Envoy's (a route with no cluster, a filter's refusal):
        // Envoy made it, its kind is the status's.
        Some(status_kind(status))
    } else {
        None
    }
}

fn is_envoy_server(server: Option<&str>) -> bool {
    server.is_some_and(|s| s.eq_ignore_ascii_case("envoy") || s.eq_ignore_ascii_case("istio-envoy"))
}

/// nginx's own error page ends with `<hr><center>nginx</center>` (or `nginx/1.22.1`).
/// It answers 502 when the upstream refused, reset or closed early (also when every
/// server of an upstream group is down), 504 when it hung, and ingress-nginx 503 for
/// a Service without endpoints. An application's own page behind nginx is not this one.
fn nginx_page(status: u16, page: &str) -> Option<Outcome> {
    if !page.contains("<hr><center>nginx") {
        return None;
    }
    Some(match status {
        502 => Outcome::ProxyUpstreamFailed,
        503 => Outcome::ProxyNoUpstream,
        504 => Outcome::ProxyUpstreamTimeout,
        other => status_kind(other),
    })
}

/// HAProxy's own pages carry no `Server` header and start with
/// `<html><body><h1>` and the status; the sentence under it names the case.
fn haproxy_page(status: u16, signs: &ProxySigns<'_>, page: &str) -> Option<Outcome> {
    if signs.server.is_some() || !page.starts_with(&format!("<html><body><h1>{status} ")) {
        return None;
    }
    Some(
        if page.contains("No server is available to handle this request.") {
            // HAProxy says this both when no server is up and when its server refused.
            Outcome::ProxyNoUpstream
        } else if page.contains("The server returned an invalid or incomplete response.") {
            Outcome::ProxyUpstreamFailed
        } else if page.contains("The server didn't respond in time.") {
            Outcome::ProxyUpstreamTimeout
        } else {
            status_kind(status)
        },
    )
}

/// Whether a response came from Envoy (Istio) saying it had no healthy upstream.
///
/// ```
/// assert!(probe_core::is_envoy_no_upstream(503, Some("envoy"), b"no healthy upstream"));
/// assert!(!probe_core::is_envoy_no_upstream(503, Some("nginx"), b"Service Unavailable"));
/// ```
pub fn is_envoy_no_upstream(status: u16, server_header: Option<&str>, body: &[u8]) -> bool {
    let signs = ProxySigns {
        server: server_header,
        ..ProxySigns::default()
    };
    classify_answer(status, &signs, body) == (Outcome::ProxyNoUpstream, Some(Proxy::Envoy))
}

/// The outcome of a response whose status is not in the expected set, from its
/// `Server` header and body alone (see [`classify_answer`], which also reads
/// Envoy's headers and names the proxy).
pub fn outcome_for_status(status: u16, server_header: Option<&str>, body: &[u8]) -> Outcome {
    let signs = ProxySigns {
        server: server_header,
        ..ProxySigns::default()
    };
    classify_answer(status, &signs, body).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn finds_errno_below_wrappers() {
        let err = Wrapper(io::Error::from_raw_os_error(libc::ECONNREFUSED));
        let c = classify_error(&err, Outcome::Other);
        assert_eq!(c.outcome, Outcome::ConnectionRefused);
        assert_eq!(c.errno, Some(111));
        assert!(c
            .message
            .starts_with("client error (Connect): Connection refused"));
    }

    #[test]
    fn eof_without_errno_is_connection_closed() {
        let err = io::Error::new(io::ErrorKind::UnexpectedEof, "eof");
        assert_eq!(
            classify_error(&err, Outcome::Other).outcome,
            Outcome::ConnectionClosed
        );
    }

    #[test]
    fn status_kinds() {
        assert_eq!(outcome_for_status(502, None, b"bad"), Outcome::Http5xx);
        assert_eq!(
            outcome_for_status(
                503,
                None,
                b"upstream connect error or disconnect/reset before headers"
            ),
            Outcome::ProxyUpstreamFailed
        );
        assert_eq!(
            outcome_for_status(404, None, b""),
            Outcome::UnexpectedStatus
        );
    }

    fn signs(server: Option<&str>) -> ProxySigns<'_> {
        ProxySigns {
            server,
            ..ProxySigns::default()
        }
    }

    #[test]
    fn proxy_pages_name_their_proxy_and_case() {
        let nginx = |code: u16, text: &str| {
            format!("<html>\r\n<head><title>{code} {text}</title></head>\r\n<body>\r\n<center><h1>{code} {text}</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n")
        };
        let haproxy = |code: u16, text: &str, line: &str| {
            format!("<html><body><h1>{code} {text}</h1>\n{line}\n</body></html>\n")
        };
        let cases: [(u16, ProxySigns, String, Outcome, Option<Proxy>); 10] = [
            (502, signs(Some("nginx")), nginx(502, "Bad Gateway"), Outcome::ProxyUpstreamFailed, Some(Proxy::Nginx)),
            (504, signs(Some("nginx")), nginx(504, "Gateway Time-out"), Outcome::ProxyUpstreamTimeout, Some(Proxy::Nginx)),
            (503, signs(Some("nginx")), nginx(503, "Service Temporarily Unavailable"), Outcome::ProxyNoUpstream, Some(Proxy::Nginx)),
            // The application's own page behind nginx: nginx writes its Server header.
            (500, signs(Some("nginx")), "app failed".into(), Outcome::Http5xx, None),
            (503, signs(None), haproxy(503, "Service Unavailable", "No server is available to handle this request."), Outcome::ProxyNoUpstream, Some(Proxy::Haproxy)),
            (502, signs(None), haproxy(502, "Bad Gateway", "The server returned an invalid or incomplete response."), Outcome::ProxyUpstreamFailed, Some(Proxy::Haproxy)),
            (504, signs(None), haproxy(504, "Gateway Timeout", "The server didn't respond in time."), Outcome::ProxyUpstreamTimeout, Some(Proxy::Haproxy)),
            (503, signs(Some("envoy")), "upstream connect error or disconnect/reset before headers. reset reason: connection termination".into(), Outcome::ProxyUpstreamFailed, Some(Proxy::Envoy)),
            (504, signs(Some("istio-envoy")), "upstream request timeout".into(), Outcome::ProxyUpstreamTimeout, Some(Proxy::Envoy)),
            (503, ProxySigns { envoy_overloaded: true, ..signs(Some("envoy")) }, "upstream connect error or disconnect/reset before headers. reset reason: overflow".into(), Outcome::ProxyOverloaded, Some(Proxy::Envoy)),
        ];
        for (status, signs, body, kind, proxy) in cases {
            assert_eq!(
                classify_answer(status, &signs, body.as_bytes()),
                (kind, proxy),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn an_apps_own_answer_behind_envoy_is_http_5xx() {
        let forwarded = ProxySigns {
            envoy_upstream_service_time: true,
            ..signs(Some("envoy"))
        };
        assert_eq!(
            classify_answer(503, &forwarded, b"busy"),
            (Outcome::Http5xx, None)
        );
        // Without the header, Envoy made it: a local reply of another kind.
        assert_eq!(
            classify_answer(503, &signs(Some("envoy")), b"busy"),
            (Outcome::Http5xx, Some(Proxy::Envoy))
        );
    }

    #[test]
    fn local_errnos_are_local() {
        for e in [
            libc::EMFILE,
            libc::ENFILE,
            libc::EADDRNOTAVAIL,
            libc::ENOBUFS,
            libc::ENOMEM,
        ] {
            assert!(outcome_for_errno(e).is_local(), "{e}");
            assert!(errno_name(e).is_some());
        }
    }
}
