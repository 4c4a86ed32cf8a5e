//! Why a TLS handshake failed, in words a user can act on, and how the prober decides
//! which certificates to trust.
//!
//! rustls names a failure precisely (`invalid peer certificate: UnknownIssuer`), but the
//! summary's reader needs the cause and the way out: a private CA that `--cacert` would
//! add, a certificate that expired during the rollout, a virtual host that serves
//! another name's certificate. The reason is put at the front of the sample's error
//! text, where the analyzer reads it back; at the front it also survives the error
//! column's cut in samples.csv.
//!
//! Trust follows curl and kubectl: the system's store (with `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` honoured), plus the user's own CA file, or no verification at all when
//! asked for; a prober that trusted only compiled-in roots could not reach a service
//! behind a company's own CA.

use std::error::Error as StdError;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// Why a TLS handshake failed, as the summary names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsReason {
    /// The chain ends at a CA the prober does not trust (a private CA).
    UnknownIssuer,
    /// The certificate's validity has ended.
    Expired,
    /// The certificate is not valid yet (or the prober's clock is behind).
    NotYetValid,
    /// The certificate does not cover the name in the URL.
    NameMismatch,
    /// The certificate was refused for another reason (bad signature, revoked, ...).
    BadCertificate,
    /// The server ended the handshake with an alert (it refused the client's offer).
    AlertFromServer,
    /// The server closed the connection during the handshake, without an alert.
    ClosedByServer,
    /// The server's answer is not TLS (a plain-HTTP port behind an `https://` URL).
    NotTls,
    /// Any other TLS failure; the sample's error text says what.
    Other,
}

impl TlsReason {
    /// Every reason, for the reader of an error text.
    const ALL: [TlsReason; 9] = [
        TlsReason::UnknownIssuer,
        TlsReason::Expired,
        TlsReason::NotYetValid,
        TlsReason::NameMismatch,
        TlsReason::BadCertificate,
        TlsReason::AlertFromServer,
        TlsReason::ClosedByServer,
        TlsReason::NotTls,
        TlsReason::Other,
    ];

    /// The reason in a few words; it starts a TLS failure's error text.
    ///
    /// ```
    /// use probe_core::TlsReason;
    /// assert_eq!(TlsReason::UnknownIssuer.as_str(), "certificate from an unknown issuer");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            TlsReason::UnknownIssuer => "certificate from an unknown issuer",
            TlsReason::Expired => "certificate expired",
            TlsReason::NotYetValid => "certificate not valid yet",
            TlsReason::NameMismatch => "certificate not valid for the URL's name",
            TlsReason::BadCertificate => "certificate refused",
            TlsReason::AlertFromServer => "handshake refused by the server (TLS alert)",
            TlsReason::ClosedByServer => "server closed the connection during the handshake",
            TlsReason::NotTls => "the server's answer is not TLS",
            TlsReason::Other => "TLS handshake failed",
        }
    }

    /// The reason with what to do about it: the summary's line for the kind.
    ///
    /// ```
    /// use probe_core::TlsReason;
    /// assert_eq!(
    ///     TlsReason::UnknownIssuer.summary(),
    ///     "certificate from an unknown issuer (pass --cacert FILE, or --insecure)"
    /// );
    /// ```
    pub fn summary(self) -> String {
        let advice = match self {
            TlsReason::UnknownIssuer => "pass --cacert FILE, or --insecure",
            TlsReason::Expired | TlsReason::NotYetValid => {
                "check the certificate's dates and this machine's clock"
            }
            TlsReason::NameMismatch => {
                "the server sent another name's certificate: check the URL's host, or --resolve"
            }
            TlsReason::BadCertificate => "see the samples' error text",
            TlsReason::AlertFromServer => {
                "the server refused the handshake: a client certificate or TLS version it requires?"
            }
            TlsReason::ClosedByServer => "is the port serving TLS?",
            TlsReason::NotTls => "a plain-HTTP port? use http://",
            TlsReason::Other => "see the samples' error text",
        };
        format!("{} ({advice})", self.as_str())
    }

    /// The reason for a rustls error.
    ///
    /// ```
    /// use probe_core::TlsReason;
    /// let e = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
    /// assert_eq!(TlsReason::of(&e), TlsReason::Expired);
    /// ```
    pub fn of(err: &rustls::Error) -> TlsReason {
        match err {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => TlsReason::UnknownIssuer,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsReason::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsReason::NotYetValid
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsReason::NameMismatch,
                _ => TlsReason::BadCertificate,
            },
            rustls::Error::AlertReceived(_) => TlsReason::AlertFromServer,
            rustls::Error::InvalidMessage(_) => TlsReason::NotTls,
            _ => TlsReason::Other,
        }
    }

    /// The reason for a failed handshake's error chain: the rustls error in it, or a
    /// connection that ended without one.
    pub fn of_chain(err: &(dyn StdError + 'static)) -> TlsReason {
        let mut current = Some(err);
        while let Some(e) = current {
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                return TlsReason::of(tls);
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                // io::Error's source() skips the error it wraps: look at it directly.
                if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    return TlsReason::of(tls);
                }
                if io.kind() == std::io::ErrorKind::UnexpectedEof {
                    return TlsReason::ClosedByServer;
                }
            }
            current = e.source();
        }
        TlsReason::Other
    }

    /// The reason at the start of a TLS failure's error text (as the prober writes it).
    ///
    /// ```
    /// use probe_core::TlsReason;
    /// let text = "certificate expired: invalid peer certificate: Expired";
    /// assert_eq!(TlsReason::in_message(text), Some(TlsReason::Expired));
    /// assert_eq!(TlsReason::in_message("connection refused"), None);
    /// ```
    pub fn in_message(text: &str) -> Option<TlsReason> {
        TlsReason::ALL
            .into_iter()
            .find(|r| text.starts_with(r.as_str()))
    }
}

/// Accepts any certificate (`--insecure`), while still checking that the server holds
/// the key of the certificate it sent: the handshake stays a real one, only the trust
/// decision is skipped.
#[derive(Debug)]
pub(crate) struct NoVerification(pub(crate) Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The certificates the prober trusts: the system's store (`SSL_CERT_FILE` and
/// `SSL_CERT_DIR` honoured, as `openssl` and curl do) and `extra`. Only when the system
/// has no store at all (a bare container) are the compiled-in web roots used instead.
pub(crate) fn root_store(extra: &[CertificateDer<'static>]) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable files in the store are skipped, as curl skips them.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots.add_parsable_certificates(extra.iter().cloned());
    roots
}
