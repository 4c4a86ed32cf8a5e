//! A `networking.k8s.io/v1` Ingress, as k8s-openapi reads it, validated into the lab's
//! [`Ingress`]: the class that picks the proxy, and the host and path rules it routes.
//!
//! `spec.ingressClassName` (or the older `kubernetes.io/ingress.class` annotation) must
//! name a proxy the lab runs (`nginx`, `haproxy`, `envoy`): an Ingress the lab would
//! route some other way than its class says would measure the wrong proxy. Backends are
//! Services by port number; a resource backend or a named port is an error, TLS a
//! warning (the lab's proxies speak plain HTTP). The routes an Ingress makes ([`Route`],
//! in the order a first-match proxy tries them) are what every proxy renders.

use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::networking::v1 as net;

use super::ctx::Ctx;
use crate::error::LabError;

/// Which ingress proxy (the `ingressClassName` that selects it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IngressKind {
    /// nginx with its Lua balancer, as ingress-nginx runs it (class `nginx`).
    Nginx,
    /// HAProxy, as the HAProxy ingress controllers run it (class `haproxy`).
    Haproxy,
    /// Envoy, as an Istio ingress gateway (class `envoy`).
    Envoy,
}

impl IngressKind {
    /// Every kind, in a fixed order.
    pub const ALL: [IngressKind; 3] =
        [IngressKind::Nginx, IngressKind::Haproxy, IngressKind::Envoy];

    /// The `ingressClassName` (and `--ingress` value) that selects it.
    pub fn class(self) -> &'static str {
        match self {
            IngressKind::Nginx => "nginx",
            IngressKind::Haproxy => "haproxy",
            IngressKind::Envoy => "envoy",
        }
    }

    /// The name of the controller's own LoadBalancer Service, as the projects' charts
    /// name it: the address clients (and the probe) reach.
    pub fn service_name(self) -> &'static str {
        match self {
            IngressKind::Nginx => "ingress-nginx-controller",
            IngressKind::Haproxy => "haproxy-ingress",
            IngressKind::Envoy => "istio-ingressgateway",
        }
    }
}

impl fmt::Display for IngressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.class())
    }
}

impl FromStr for IngressKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IngressKind::ALL
            .into_iter()
            .find(|k| k.class() == s)
            .ok_or_else(|| format!("unknown ingress class '{s}' (nginx, haproxy or envoy)"))
    }
}

/// One route of the proxy: requests whose Host (any, when `None`) and path match go to
/// `backend`. Routes are tried in the order given (longest paths first within a host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub host: Option<String>,
    pub path: String,
    /// `pathType: Exact` (else a prefix).
    pub exact: bool,
    pub backend: String,
}

impl Route {
    /// The order a proxy that takes the first match tries routes in: hosts a rule names
    /// first, then exact paths, then prefixes longest first (what nginx's longest match
    /// picks).
    pub(crate) fn order(&self) -> (bool, bool, std::cmp::Reverse<usize>) {
        (
            self.host.is_none(),
            !self.exact,
            std::cmp::Reverse(self.path.len()),
        )
    }
}

/// The name a proxy gives the backend of a Service port.
pub(crate) fn backend_name(service: &str, port: u16) -> String {
    format!("{service}-{port}")
}

/// An Ingress, reduced to what its proxy routes.
///
/// ```
/// let objs = probe_lab::parse_manifests(r#"
/// apiVersion: networking.k8s.io/v1
/// kind: Ingress
/// metadata: {name: shop}
/// spec:
///   ingressClassName: nginx
///   rules:
///   - host: shop.example
///     http:
///       paths:
///       - {path: /, pathType: Prefix, backend: {service: {name: web-svc, port: {number: 8080}}}}
/// "#).unwrap();
/// let probe_lab::Object::Ingress(ing) = &objs[0] else { panic!() };
/// assert_eq!(ing.class, probe_lab::IngressKind::Nginx);
/// assert_eq!(ing.rules[0].host.as_deref(), Some("shop.example"));
/// assert_eq!(ing.rules[0].paths[0].backend.service, "web-svc");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    /// `metadata.name`.
    pub name: String,
    /// `spec.ingressClassName`: the proxy that serves it.
    pub class: IngressKind,
    /// `spec.rules`, in order.
    pub rules: Vec<IngressRule>,
    /// `spec.defaultBackend`: where requests no rule matches go (else the proxy's 404).
    pub default_backend: Option<IngressBackend>,
}

/// One entry of `spec.rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRule {
    /// `host` (`None`: every host).
    pub host: Option<String>,
    /// `http.paths`.
    pub paths: Vec<IngressPath>,
}

/// One entry of a rule's `http.paths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressPath {
    /// `path` (default `/`).
    pub path: String,
    /// `pathType: Exact`; `Prefix` and `ImplementationSpecific` are prefixes.
    pub exact: bool,
    /// `backend.service`.
    pub backend: IngressBackend,
}

/// A Service backend: `service.name` and `service.port.number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressBackend {
    /// The Service's name.
    pub service: String,
    /// The Service's port.
    pub port: u16,
}

impl Ingress {
    /// An Ingress of class `class` that sends every request (any host, any path) to
    /// `service`'s `port`: what `rollprobe lab --ingress CLASS` puts in front of the
    /// probed Service.
    ///
    /// ```
    /// use probe_lab::{Ingress, IngressKind};
    /// let ing = Ingress::catch_all(IngressKind::Envoy, "web-svc", 8080);
    /// assert_eq!(ing.default_backend.unwrap().service, "web-svc");
    /// ```
    pub fn catch_all(class: IngressKind, service: &str, port: u16) -> Ingress {
        Ingress {
            name: format!("{service}-{class}"),
            class,
            rules: Vec::new(),
            default_backend: Some(IngressBackend {
                service: service.to_string(),
                port,
            }),
        }
    }

    /// Every Service backend it names, in order, without repeats.
    pub fn backends(&self) -> Vec<&IngressBackend> {
        let mut out: Vec<&IngressBackend> = Vec::new();
        let named = self
            .rules
            .iter()
            .flat_map(|r| r.paths.iter().map(|p| &p.backend));
        for b in named.chain(&self.default_backend) {
            if !out.contains(&b) {
                out.push(b);
            }
        }
        out
    }

    /// The proxy's routes: per host, exact paths first, then prefixes longest first (a
    /// proxy that takes the first match then picks what nginx's longest match would);
    /// the default backend last, as `/` for every host and for any other host. A host
    /// that a rule names takes only its own routes, as nginx's servers and Envoy's
    /// virtual hosts do; the host-less ones are for every other host.
    pub(crate) fn routes(&self) -> Vec<Route> {
        let mut routes: Vec<Route> = Vec::new();
        for rule in &self.rules {
            for p in &rule.paths {
                routes.push(Route {
                    host: rule.host.clone(),
                    path: p.path.clone(),
                    exact: p.exact,
                    backend: backend_name(&p.backend.service, p.backend.port),
                });
            }
        }
        routes.sort_by_key(Route::order);
        if let Some(b) = &self.default_backend {
            let mut hosts: Vec<Option<String>> = Vec::new();
            for r in &routes {
                if !hosts.contains(&r.host) {
                    hosts.push(r.host.clone());
                }
            }
            if !hosts.contains(&None) {
                hosts.push(None);
            }
            for host in hosts {
                if !routes
                    .iter()
                    .any(|r| r.host == host && !r.exact && r.path == "/")
                {
                    routes.push(Route {
                        host,
                        path: "/".into(),
                        exact: false,
                        backend: backend_name(&b.service, b.port),
                    });
                }
            }
            routes.sort_by_key(Route::order);
        }
        routes
    }

    /// The backend a request with this Host header (`None`: none that a rule names) and
    /// path reaches through the proxy, or `None` when the proxy answers its 404. A
    /// prefix matches as a string prefix, as the proxies match it.
    ///
    /// ```
    /// let objs = probe_lab::parse_manifests(r#"
    /// apiVersion: networking.k8s.io/v1
    /// kind: Ingress
    /// metadata: {name: shop}
    /// spec:
    ///   ingressClassName: haproxy
    ///   rules:
    ///   - host: shop.example
    ///     http:
    ///       paths:
    ///       - {path: /test, pathType: Prefix, backend: {service: {name: web-svc, port: {number: 8080}}}}
    /// "#).unwrap();
    /// let probe_lab::Object::Ingress(ing) = &objs[0] else { panic!() };
    /// let found = ing.backend_for(Some("shop.example:80"), "/test/version").unwrap();
    /// assert_eq!(found.service, "web-svc");
    /// assert!(ing.backend_for(None, "/test/version").is_none());
    /// assert!(ing.backend_for(Some("shop.example"), "/other").is_none());
    /// ```
    pub fn backend_for(&self, host: Option<&str>, path: &str) -> Option<&IngressBackend> {
        let host = host.map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase());
        let routes = self.routes();
        let known = |h: &str| routes.iter().any(|r| r.host.as_deref() == Some(h));
        let host = host.filter(|h| known(h));
        let route = routes.iter().find(|r| {
            r.host.as_deref().map(str::to_ascii_lowercase) == host
                && if r.exact {
                    r.path == path
                } else {
                    path.starts_with(&r.path)
                }
        })?;
        self.backends()
            .into_iter()
            .find(|b| backend_name(&b.service, b.port) == route.backend)
    }
}

pub(super) fn ingress(ctx: &Ctx, i: net::Ingress) -> Result<Option<Ingress>, LabError> {
    let name = i
        .metadata
        .name
        .ok_or_else(|| ctx.missing("metadata.name"))?;
    let spec = i.spec.ok_or_else(|| ctx.missing("spec"))?;
    let annotation = i
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubernetes.io/ingress.class").cloned());
    let Some(class) = spec.ingress_class_name.or(annotation) else {
        ctx.warn("ignored: no spec.ingressClassName (the lab runs nginx, haproxy or envoy)");
        return Ok(None);
    };
    let class: IngressKind = class
        .parse()
        .map_err(|e: String| ctx.err(format!("spec.ingressClassName: {e}")))?;
    if spec.tls.as_ref().is_some_and(|t| !t.is_empty()) {
        ctx.warn("spec.tls ignored: the lab's proxies speak plain HTTP");
    }
    let backend = |field: &str, b: net::IngressBackend| -> Result<IngressBackend, LabError> {
        let s = b
            .service
            .ok_or_else(|| ctx.err(format!("{field}: only Service backends are supported")))?;
        let number = s.port.and_then(|p| p.number).ok_or_else(|| {
            ctx.err(format!(
                "{field}.service.port.number is required (named ports are not supported)"
            ))
        })?;
        Ok(IngressBackend {
            service: s.name,
            port: ctx.port(&format!("{field}.service.port.number"), i64::from(number))?,
        })
    };
    let default_backend = spec
        .default_backend
        .map(|b| backend("spec.defaultBackend", b))
        .transpose()?;
    let mut rules = Vec::new();
    for (r, rule) in spec.rules.unwrap_or_default().into_iter().enumerate() {
        let mut paths = Vec::new();
        let http_paths = rule.http.map(|h| h.paths).unwrap_or_default();
        for (p, path) in http_paths.into_iter().enumerate() {
            let field = format!("spec.rules[{r}].http.paths[{p}]");
            let exact = match path.path_type.as_str() {
                "Exact" => true,
                "Prefix" | "ImplementationSpecific" => false,
                other => {
                    return Err(ctx.err(format!(
                        "{field}.pathType {other} is not Exact, Prefix or ImplementationSpecific"
                    )))
                }
            };
            paths.push(IngressPath {
                path: path.path.unwrap_or_else(|| "/".into()),
                exact,
                backend: backend(&format!("{field}.backend"), path.backend)?,
            });
        }
        rules.push(IngressRule {
            host: rule
                .host
                .filter(|h| !h.is_empty())
                .map(|h| h.to_ascii_lowercase()),
            paths,
        });
    }
    if rules.iter().all(|r| r.paths.is_empty()) && default_backend.is_none() {
        return Err(ctx.err("spec has neither rules with paths nor a defaultBackend"));
    }
    Ok(Some(Ingress {
        name,
        class,
        rules,
        default_backend,
    }))
}

#[cfg(test)]
mod tests {
    use crate::manifest::{parse_manifests, parse_manifests_with_warnings, Object};

    fn ingress(spec: &str) -> Result<Vec<Object>, String> {
        parse_manifests(&format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: shop}}\nspec: {spec}\n"
        ))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_class_the_lab_does_not_run_or_a_named_port_is_one_line() {
        let backend = "{service: {name: web, port: {number: 80}}}";
        let e = ingress(&format!(
            "{{ingressClassName: traefik, defaultBackend: {backend}}}"
        ))
        .unwrap_err();
        assert_eq!(
            e,
            "manifest document 1 (Ingress shop): spec.ingressClassName: unknown ingress class 'traefik' (nginx, haproxy or envoy)"
        );
        let e = ingress(
            "{ingressClassName: nginx, defaultBackend: {service: {name: web, port: {name: http}}}}",
        )
        .unwrap_err();
        assert!(
            e.contains("spec.defaultBackend.service.port.number is required"),
            "{e}"
        );
        let e = ingress("{ingressClassName: nginx}").unwrap_err();
        assert!(
            e.contains("neither rules with paths nor a defaultBackend"),
            "{e}"
        );
        // The older annotation selects the class too.
        let objs = parse_manifests(&format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: a, annotations: {{kubernetes.io/ingress.class: envoy}}}}\nspec: {{defaultBackend: {backend}}}\n"
        ))
        .unwrap();
        let Object::Ingress(i) = &objs[0] else {
            panic!()
        };
        assert_eq!(i.class, super::IngressKind::Envoy);
    }

    #[test]
    fn hosts_take_their_own_routes_and_the_default_backend_catches_the_rest() {
        let objs = ingress(
            "{ingressClassName: nginx, defaultBackend: {service: {name: fallback, port: {number: 80}}}, rules: [{host: Shop.Example, http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}, {path: /api/health, pathType: Exact, backend: {service: {name: health, port: {number: 8080}}}}]}}]}",
        )
        .unwrap();
        let Object::Ingress(i) = &objs[0] else {
            panic!()
        };
        let to =
            |host: Option<&str>, path: &str| i.backend_for(host, path).map(|b| b.service.as_str());
        assert_eq!(to(Some("shop.example"), "/api/health"), Some("health"));
        assert_eq!(to(Some("shop.example"), "/api/v1"), Some("api"));
        assert_eq!(to(Some("shop.example"), "/"), Some("fallback"));
        assert_eq!(to(Some("other"), "/api"), Some("fallback"));
        assert_eq!(to(None, "/x"), Some("fallback"));
        let tls = parse_manifests_with_warnings(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: t}\nspec: {ingressClassName: nginx, tls: [{hosts: [a]}], defaultBackend: {service: {name: w, port: {number: 80}}}}\n",
        )
        .unwrap();
        assert_eq!(tls.warnings.len(), 1, "{:?}", tls.warnings);
    }
}
