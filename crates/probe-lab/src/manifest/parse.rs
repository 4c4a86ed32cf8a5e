//! YAML documents to the lab's model: each document is read as a YAML value, dispatched on
//! `apiVersion` and `kind`, deserialized into k8s-openapi's type for that kind, then
//! validated (in `deployment.rs` and `service.rs`) with errors that name the document, the
//! object and the field.

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use yaml_serde::Value;

use super::ctx::{one_line, Ctx};
use super::{deployment::deployment, ingress::ingress, service::service, Object, Parsed};
use crate::error::LabError;

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
/// what it ignored: documents of another kind or apiVersion (a ConfigMap, an Ingress
/// without a class), and fields that would change a rollout but that the lab does not
/// model (a second container, a liveness probe, `env[].valueFrom`). Fields that change nothing the lab
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
            (Some("networking.k8s.io/v1"), "Ingress") => {
                let typed = typed(&ctx, &value)?;
                parsed
                    .objects
                    .extend(ingress(&ctx, typed)?.map(Object::Ingress));
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
