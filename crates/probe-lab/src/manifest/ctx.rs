//! `Ctx`, where a manifest error or warning is, and the checks that word them.
//!
//! Its own file, under the readers: parse.rs dispatches each document to
//! deployment.rs and service.rs, and both report through `Ctx`; kept in parse.rs it
//! made the readers and their dispatcher import each other.

use std::cell::RefCell;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use probe_core::IntOrPercent;
use yaml_serde::Value;

use super::ManifestWarning;
use crate::error::LabError;

/// Where an error or a warning is: document number (1-based), `Kind name`, and the
/// document as YAML (to tell a field that is absent from one k8s-openapi defaulted).
pub(super) struct Ctx<'a> {
    pub(super) doc: usize,
    pub(super) object: String,
    pub(super) raw: &'a Value,
    pub(super) warnings: RefCell<Vec<ManifestWarning>>,
}

impl Ctx<'_> {
    pub(super) fn err(&self, message: impl Into<String>) -> LabError {
        // A field path or a name can carry a user's line break: the error stays one line.
        LabError::Manifest {
            doc: self.doc,
            object: one_line(&self.object),
            message: one_line(&message.into()),
        }
    }

    pub(super) fn warn(&self, message: impl Into<String>) {
        self.warnings.borrow_mut().push(ManifestWarning {
            doc: self.doc,
            object: one_line(&self.object),
            message: one_line(&message.into()),
        });
    }

    pub(super) fn missing(&self, field: &str) -> LabError {
        self.err(format!("missing required field {field}"))
    }

    /// Whether the document sets `field` (a path such as `spec.ports[0].port`) to
    /// something other than null. k8s-openapi fills a required field that is absent with
    /// its default, and `port: 0` is a different mistake from no port at all.
    pub(super) fn has(&self, field: &str) -> bool {
        let mut v = self.raw;
        for seg in field.split('.') {
            let (key, index) = match seg.split_once('[') {
                Some((key, rest)) => {
                    let Some(i) = rest.strip_suffix(']').and_then(|i| i.parse::<usize>().ok())
                    else {
                        return false;
                    };
                    (key, Some(i))
                }
                None => (seg, None),
            };
            let Some(next) = v.get(key) else {
                return false;
            };
            v = next;
            if let Some(i) = index {
                let Some(next) = v.get(i) else {
                    return false;
                };
                v = next;
            }
        }
        !v.is_null()
    }

    /// `field` if present, else an error that it is missing.
    pub(super) fn require(&self, field: &str) -> Result<(), LabError> {
        if self.has(field) {
            Ok(())
        } else {
            Err(self.missing(field))
        }
    }

    pub(super) fn non_negative<T: Into<i64>>(
        &self,
        field: &str,
        v: Option<T>,
        default: u32,
    ) -> Result<u32, LabError> {
        match v.map(Into::into) {
            None => Ok(default),
            Some(v) => {
                u32::try_from(v).map_err(|_| self.err(format!("{field} must be >= 0, got {v}")))
            }
        }
    }

    pub(super) fn port(&self, field: &str, v: i64) -> Result<u16, LabError> {
        match u16::try_from(v) {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(self.err(format!("{field} must be between 1 and 65535, got {v}"))),
        }
    }

    /// A port given as a number or a numeric string; a named port is an error because the
    /// lab does not resolve names against the container's ports.
    pub(super) fn int_or_string_port(&self, field: &str, v: &IntOrString) -> Result<u16, LabError> {
        match v {
            IntOrString::Int(v) => self.port(field, i64::from(*v)),
            IntOrString::String(s) => match s.parse::<i64>() {
                Ok(v) => self.port(field, v),
                Err(_) => Err(self.err(format!(
                    "{field}: named ports ({s:?}) are not supported by the lab"
                ))),
            },
        }
    }

    /// `maxSurge` or `maxUnavailable`: a whole number or a percentage such as `25%`.
    pub(super) fn int_or_percent(
        &self,
        field: &str,
        v: &IntOrString,
    ) -> Result<IntOrPercent, LabError> {
        match v {
            IntOrString::Int(i) => u32::try_from(*i)
                .ok()
                .and_then(|i| i32::try_from(i).ok())
                .map(IntOrPercent::Int)
                .ok_or_else(|| self.err(format!("{field} must be >= 0, got {i}"))),
            IntOrString::String(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<u32>().ok())
                .map(IntOrPercent::Percent)
                .ok_or_else(|| {
                    self.err(format!(
                        "{field} must be an integer or a percentage such as \"25%\", got {s:?}"
                    ))
                }),
        }
    }
}

/// The text on one line: a user's line break never splits an error.
pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
