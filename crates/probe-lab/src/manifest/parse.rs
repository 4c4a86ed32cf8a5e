//! YAML documents to the lab's model: each document is read as a YAML value, dispatched on
//! `apiVersion` and `kind`, deserialized into k8s-openapi's type for that kind, then
//! validated (in `deployment.rs` and `service.rs`) with errors that name the document, the
//! object and the field.

use std::cell::RefCell;

use probe_core::IntOrPercent;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use yaml_serde::Value;

use super::{deployment::deployment, service::service, ManifestWarning, Object, Parsed};
use crate::error::LabError;

/// Where an error or a warning is: document number (1-based), `Kind name`, and the
/// document as YAML (to tell a field that is absent from one k8s-openapi defaulted).
pub(super) struct Ctx<'a> {
    doc: usize,
    object: String,
    raw: &'a Value,
    warnings: RefCell<Vec<ManifestWarning>>,
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

pub(super) use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Parses a multi-document YAML string of Deployments and Services; anything the lab
/// does not run is skipped (see [`parse_manifests_with_warnings`] to learn what).
///
/// Errors display as one line naming the document, the object and the field, e.g.
/// `manifest document 1 (Deployment backend-deployment): missing required field spec.selector`.
///
/// ```
/// let objs = probe_lab::parse_manifests(r#"
/// apiVersion: apps/v1
/// kind: Deployment
/// metadata: {name: web}
/// spec:
///   selector: {matchLabels: {app: web}}
///   template:
///     metadata: {labels: {app: web}}
///     spec: {containers: [{name: web, image: "shop/web:v1"}]}
/// ---
/// apiVersion: v1
/// kind: Service
/// metadata: {name: web-svc}
/// spec: {selector: {app: web}, ports: [{port: 8080}], type: LoadBalancer}
/// "#).unwrap();
/// assert_eq!(objs.len(), 2);
/// assert_eq!(objs[1].name(), "web-svc");
/// ```
pub fn parse_manifests(yaml: &str) -> Result<Vec<Object>, LabError> {
    parse_manifests_with_warnings(yaml).map(|p| p.objects)
}

/// Parses a multi-document YAML string into the lab's objects and the warnings about
/// what it ignored: documents of another kind or apiVersion (a ConfigMap, an Ingress),
/// and fields that would change a rollout but that the lab does not model (a second
/// container, a liveness probe, `env[].valueFrom`). Fields that change nothing the lab
/// measures (resources, volumes, affinity...) are dropped silently.
///
/// Empty documents are skipped. A document without `apiVersion` is read by its `kind`
/// alone. Errors are those of [`parse_manifests`].
///
/// ```
/// let parsed = probe_lab::parse_manifests_with_warnings(r#"
/// apiVersion: v1
/// kind: ConfigMap
/// metadata: {name: settings}
/// data: {mode: fast}
/// ---
/// apiVersion: v1
/// kind: Service
/// metadata: {name: web}
/// spec: {selector: {app: web}, ports: [{port: 8080}], sessionAffinity: ClientIP}
/// "#).unwrap();
/// assert_eq!(parsed.objects.len(), 1);
/// assert_eq!(
///     parsed.warnings[0].to_string(),
///     "manifest document 1 (ConfigMap settings): ignored: the lab runs only apps/v1 \
///      Deployments and v1 Services, not v1 ConfigMap"
/// );
/// ```
pub fn parse_manifests_with_warnings(yaml: &str) -> Result<Parsed, LabError> {
    let mut parsed = Parsed::default();
    for (i, doc) in yaml_serde::Deserializer::from_str(yaml).enumerate() {
        let doc_no = i + 1;
        let syntax = |e: yaml_serde::Error| LabError::Manifest {
            doc: doc_no,
            object: "?".into(),
            message: one_line(&e.to_string()),
        };
        let mut value = Value::deserialize(doc).map_err(syntax)?;
        if value.is_null() {
            continue;
        }
        value.apply_merge().map_err(syntax)?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let kind = text(value.get("kind"));
        let api_version = text(value.get("apiVersion"));
        let name = text(value.get("metadata").and_then(|m| m.get("name")));
        let ctx = Ctx {
            doc: doc_no,
            object: format!(
                "{} {}",
                kind.as_deref().unwrap_or("?"),
                name.as_deref().unwrap_or("?")
            ),
            raw: &value,
            warnings: RefCell::new(Vec::new()),
        };
        let Some(kind) = kind else {
            return Err(ctx.missing("kind"));
        };
        match (api_version.as_deref(), kind.as_str()) {
            (None | Some("apps/v1"), "Deployment") => {
                let typed = typed(&ctx, &value)?;
                parsed
                    .objects
                    .push(Object::Deployment(deployment(&ctx, typed)?));
            }
            (None | Some("v1"), "Service") => {
                let typed = typed(&ctx, &value)?;
                parsed.objects.push(Object::Service(service(&ctx, typed)?));
            }
            (api_version, kind) => {
                let what = match api_version {
                    Some(a) => format!("{a} {kind}"),
                    None => kind.to_string(),
                };
                ctx.warn(format!(
                    "ignored: the lab runs only apps/v1 Deployments and v1 Services, not {what}"
                ));
            }
        }
        parsed.warnings.extend(ctx.warnings.into_inner());
    }
    Ok(parsed)
}

/// The document as k8s-openapi's type; a value of the wrong type is reported with its
/// path (`spec.replicas: invalid type: string "two", expected i32`).
fn typed<T: DeserializeOwned>(ctx: &Ctx, value: &Value) -> Result<T, LabError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ctx.err(format!("{path}: {}", e.into_inner()))
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
