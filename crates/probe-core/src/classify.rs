//! Naming a failure by its real cause.
//!
//! Errors arrive wrapped several layers deep (rustls, tokio, a caller's own
//! wrappers). The only trustworthy cause is the OS errno at the bottom of the
//! `source()` chain, so we walk the chain to the first `std::io::Error` with a raw OS
//! error and map the errno; wrappers only decide when no errno exists (an end of
//! stream is a closed connection, a rustls error is TLS).

use std::error::Error as StdError;
use std::io;

use crate::outcome::Outcome;

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

/// Whether a response came from Envoy (Istio) saying it had no healthy upstream.
///
/// ```
/// assert!(probe_core::is_envoy_no_upstream(503, Some("envoy"), b"no healthy upstream"));
/// assert!(!probe_core::is_envoy_no_upstream(503, Some("nginx"), b"Service Unavailable"));
/// ```
pub fn is_envoy_no_upstream(status: u16, server_header: Option<&str>, body: &[u8]) -> bool {
    if status != 503 {
        return false;
    }
    let body = String::from_utf8_lossy(&body[..body.len().min(512)]);
    body.contains("no healthy upstream")
        || body.contains("upstream connect error")
        || server_header.is_some_and(|s| s.eq_ignore_ascii_case("envoy"))
}

/// The outcome of a response whose status is not in the expected set.
pub fn outcome_for_status(status: u16, server_header: Option<&str>, body: &[u8]) -> Outcome {
    if is_envoy_no_upstream(status, server_header, body) {
        Outcome::ProxyNoUpstream
    } else if (500..600).contains(&status) {
        Outcome::Http5xx
    } else {
        Outcome::UnexpectedStatus
    }
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
            Outcome::ProxyNoUpstream
        );
        assert_eq!(
            outcome_for_status(404, None, b""),
            Outcome::UnexpectedStatus
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
