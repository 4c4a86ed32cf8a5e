//! How an answer is read: which statuses count as ok ([`StatusSet`]) and where
//! the version that answered comes from ([`VersionSource`]).

use std::fmt;
use std::str::FromStr;

use super::ConfigError;

/// The set of statuses that count as `ok`, e.g. `200-299,304`.
///
/// ```
/// let set: probe_core::StatusSet = "200-299,304".parse().unwrap();
/// assert!(set.contains(204) && set.contains(304) && !set.contains(404));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
}

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet {
            ranges: vec![(200, 299)],
        }
    }
}

impl StatusSet {
    /// Whether `status` is expected.
    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| lo <= status && status <= hi)
    }
}

impl FromStr for StatusSet {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| ConfigError::Value {
            name: "expected status list",
            value: s.to_string(),
            reason: reason.to_string(),
        };
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let lo: u16 = lo
                .parse()
                .map_err(|_| bad("use statuses like 200-299,304"))?;
            let hi: u16 = hi
                .parse()
                .map_err(|_| bad("use statuses like 200-299,304"))?;
            if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
                return Err(bad("statuses run from 100 to 599, low before high"));
            }
            ranges.push((lo, hi));
        }
        if ranges.is_empty() {
            return Err(bad("the list is empty"));
        }
        Ok(StatusSet { ranges })
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Where the version string of an ok response comes from.
///
/// ```
/// use probe_core::VersionSource;
/// let src: VersionSource = "json:/build/version".parse().unwrap();
/// let none = probe_core::HeaderMap::new();
/// assert_eq!(src.extract(&none, br#"{"build":{"version":"v2"}}"#).as_deref(), Some("v2"));
/// let body: VersionSource = "body".parse().unwrap();
/// assert_eq!(body.extract(&none, b" v1\n").as_deref(), Some("v1"));
/// ```
#[derive(Debug, Clone, Default)]
pub enum VersionSource {
    /// The trimmed body, when it is short (at most 64 bytes) and one line.
    #[default]
    Body,
    /// A response header (case-insensitive name).
    Header(String),
    /// A JSON pointer into the body.
    Json(String),
    /// A regex over the body: the first capture group, else the whole match.
    Regex(regex::Regex),
}

/// The longest body that `body` takes as a version as it is.
const MAX_BODY_VERSION: usize = 64;

impl VersionSource {
    /// Extracts the version from a response's headers and body prefix.
    pub fn extract(&self, headers: &hyper::HeaderMap, body: &[u8]) -> Option<String> {
        match self {
            VersionSource::Body => {
                let text = std::str::from_utf8(body).ok()?.trim();
                (!text.is_empty() && text.len() <= MAX_BODY_VERSION && !text.contains('\n'))
                    .then(|| text.to_string())
            }
            VersionSource::Header(name) => headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string()),
            VersionSource::Json(pointer) => {
                let value: serde_json::Value = serde_json::from_slice(body).ok()?;
                match value.pointer(pointer)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                }
            }
            VersionSource::Regex(re) => {
                let text = String::from_utf8_lossy(body);
                let caps = re.captures(&text)?;
                caps.get(1)
                    .or_else(|| caps.get(0))
                    .map(|m| m.as_str().to_string())
            }
        }
    }
}

impl FromStr for VersionSource {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| ConfigError::Value {
            name: "version source",
            value: s.to_string(),
            reason,
        };
        if s == "body" {
            return Ok(VersionSource::Body);
        }
        match s.split_once(':') {
            Some(("header", name))
                if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok() =>
            {
                Ok(VersionSource::Header(name.to_ascii_lowercase()))
            }
            Some(("json", ptr)) if ptr.starts_with('/') => Ok(VersionSource::Json(ptr.into())),
            Some(("regex", re)) => regex::Regex::new(re)
                .map(VersionSource::Regex)
                .map_err(|e| bad(e.to_string().lines().last().unwrap_or("").to_string())),
            _ => Err(bad(
                "use body, header:NAME, json:/pointer or regex:RE".to_string()
            )),
        }
    }
}

impl fmt::Display for VersionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSource::Body => f.write_str("body"),
            VersionSource::Header(h) => write!(f, "header:{h}"),
            VersionSource::Json(p) => write!(f, "json:{p}"),
            VersionSource::Regex(r) => write!(f, "regex:{}", r.as_str()),
        }
    }
}
