//! How the prober reaches its target when the URL alone is not how users reach it: an
//! ingress probed by its address under a virtual host's name (`--resolve`), a service
//! whose certificate comes from a private CA (`--cacert`).
//!
//! Both are read and checked here, before probing, so that a typo or a missing file is
//! one line and exit 2, not a run of failed requests.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::ConfigError;

/// One `--resolve HOST:PORT:ADDR` rule, as curl has it: connections to `HOST:PORT` go to
/// `ADDR` (one or more, comma-separated; an IPv6 address in brackets), while the request
/// keeps `HOST` in its Host header and TLS server name.
///
/// ```
/// let rule: probe_core::ResolveRule = "a.test:443:127.0.0.1".parse().unwrap();
/// assert_eq!((rule.host.as_str(), rule.port), ("a.test", 443));
/// assert_eq!(rule.addrs, vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
/// let v6: probe_core::ResolveRule = "a.test:80:[::1]".parse().unwrap();
/// assert_eq!(v6.to_string(), "a.test:80:[::1]");
/// assert!("a.test:443".parse::<probe_core::ResolveRule>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRule {
    /// The host name as the URL has it (compared without regard to case).
    pub host: String,
    /// The URL's port.
    pub port: u16,
    /// Where the connections go, tried in order.
    pub addrs: Vec<IpAddr>,
}

impl ResolveRule {
    /// Whether the rule is for this host and port.
    pub fn applies_to(&self, host: &str, port: u16) -> bool {
        self.port == port && self.host.eq_ignore_ascii_case(host)
    }
}

impl FromStr for ResolveRule {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<ResolveRule, ConfigError> {
        let refuse = |reason: &str| ConfigError::Value {
            name: "--resolve",
            value: text.to_string(),
            reason: format!("{reason}: use HOST:PORT:ADDR, e.g. a.test:443:127.0.0.1"),
        };
        let mut parts = text.splitn(3, ':');
        let (Some(host), Some(port), Some(addrs)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(refuse("three parts are needed"));
        };
        if host.is_empty() || host.contains(['[', ']', '/', ' ']) {
            return Err(refuse("the host must be a name"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| refuse("the port must be a number from 1 to 65535"))?;
        let addrs = addrs
            .split(',')
            .map(|a| {
                let bare = match a.strip_prefix('[') {
                    Some(inner) => inner.strip_suffix(']').filter(|i| i.contains(':')),
                    None => Some(a).filter(|a| !a.contains(':')),
                };
                bare.and_then(|b| b.parse::<IpAddr>().ok())
            })
            .collect::<Option<Vec<IpAddr>>>()
            .ok_or_else(|| refuse("the address must be an IPv4 address or an [IPv6] one"))?;
        Ok(ResolveRule {
            host: host.to_string(),
            port,
            addrs,
        })
    }
}

impl fmt::Display for ResolveRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.host, self.port)?;
        for (i, addr) in self.addrs.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            match addr {
                IpAddr::V4(a) => write!(f, "{comma}{a}")?,
                IpAddr::V6(a) => write!(f, "{comma}[{a}]")?,
            }
        }
        Ok(())
    }
}

/// The certificates of a `--cacert` file, read once before probing.
///
/// ```no_run
/// let ca = probe_core::CaFile::load("ca.pem").unwrap();
/// println!("{} trusts {} certificate(s)", ca.path.display(), ca.certs.len());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile {
    /// The file as given.
    pub path: PathBuf,
    /// Its certificates, in file order.
    pub certs: Vec<CertificateDer<'static>>,
}

impl CaFile {
    /// Reads a PEM file of one or more certificates. A missing or unreadable file, or
    /// one without a certificate, is an error.
    pub fn load(path: impl AsRef<Path>) -> Result<CaFile, ConfigError> {
        let path = path.as_ref();
        let refuse = |reason: String| ConfigError::Value {
            name: "--cacert",
            value: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refuse(format!("not a PEM file of certificates: {e:?}")))?;
        if certs.is_empty() {
            return Err(refuse("it holds no PEM certificate".into()));
        }
        Ok(CaFile {
            path: path.to_path_buf(),
            certs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_rules_refuse_what_curl_would() {
        for bad in [
            "a.test",
            "a.test:443",
            ":443:127.0.0.1",
            "a.test:0:127.0.0.1",
            "a.test:x:127.0.0.1",
            "a.test:443:localhost",
            "a.test:443:::1",
            "a.test:443:[127.0.0.1]",
            "a.test:443:127.0.0.1,",
        ] {
            let e = bad.parse::<ResolveRule>().unwrap_err().to_string();
            assert!(e.contains("HOST:PORT:ADDR"), "{bad}: {e}");
        }
        let two: ResolveRule = "A.test:8443:10.0.0.1,[fe80::1]".parse().unwrap();
        assert_eq!(two.addrs.len(), 2);
        assert!(two.applies_to("a.TEST", 8443));
        assert!(!two.applies_to("a.test", 443));
        assert_eq!(two.to_string(), "A.test:8443:10.0.0.1,[fe80::1]");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("rollprobe-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        let text = dir.join("text.pem");
        std::fs::write(&text, b"not a certificate\n").unwrap();
        for (path, says) in [
            (empty.as_path(), "no PEM certificate"),
            (text.as_path(), "no PEM certificate"),
            (dir.join("missing.pem").as_path(), "cannot read it"),
        ] {
            let e = CaFile::load(path).unwrap_err().to_string();
            assert!(e.contains(says), "{}: {e}", path.display());
            assert_eq!(e.lines().count(), 1);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
