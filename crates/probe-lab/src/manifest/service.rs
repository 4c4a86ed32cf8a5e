//! A `v1` Service, as k8s-openapi reads it, validated into the lab's [`Service`]: the
//! type, ports, selector and external traffic policy that kube-proxy and the load
//! balancer act on.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1 as core;

use super::ctx::Ctx;
use super::{Service, ServicePort, ServiceType, TrafficPolicy};
use crate::error::LabError;

pub(super) fn service(ctx: &Ctx, s: core::Service) -> Result<Service, LabError> {
    let name = s
        .metadata
        .name
        .ok_or_else(|| ctx.missing("metadata.name"))?;
    let spec = s.spec.ok_or_else(|| ctx.missing("spec"))?;
    let service_type = match spec.type_.as_deref().unwrap_or("ClusterIP") {
        "ClusterIP" => ServiceType::ClusterIp,
        "LoadBalancer" => ServiceType::LoadBalancer,
        other => {
            return Err(ctx.err(format!(
                "spec.type {other} is not supported by the lab (ClusterIP or LoadBalancer)"
            )))
        }
    };
    let raw_ports = spec
        .ports
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ctx.missing("spec.ports"))?;
    let mut ports = Vec::new();
    for (i, p) in raw_ports.into_iter().enumerate() {
        if let Some(proto) = p.protocol.as_deref() {
            if proto != "TCP" {
                return Err(ctx.err(format!(
                    "spec.ports[{i}].protocol {proto} is not supported by the lab (TCP only)"
                )));
            }
        }
        let field = format!("spec.ports[{i}].port");
        ctx.require(&field)?;
        let port = ctx.port(&field, i64::from(p.port))?;
        let target_port = match &p.target_port {
            None => port,
            Some(t) => ctx.int_or_string_port(&format!("spec.ports[{i}].targetPort"), t)?,
        };
        ports.push(ServicePort {
            name: p.name,
            port,
            target_port,
        });
    }
    let ip = |field: &str, v: Option<String>| -> Result<Option<Ipv4Addr>, LabError> {
        match v.as_deref() {
            None | Some("") | Some("None") => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| ctx.err(format!("{field} is not an IPv4 address: {s:?}"))),
        }
    };
    let external_traffic_policy = match spec.external_traffic_policy.as_deref() {
        None | Some("Cluster") => TrafficPolicy::Cluster,
        Some("Local") if service_type == ServiceType::LoadBalancer => TrafficPolicy::Local,
        Some("Local") => {
            return Err(ctx.err(
                "spec.externalTrafficPolicy Local needs spec.type LoadBalancer (as the API \
                 server requires of a Service without external addresses)",
            ))
        }
        Some(other) => {
            return Err(ctx.err(format!(
                "spec.externalTrafficPolicy {other} is not Cluster or Local"
            )))
        }
    };
    let health_check_node_port = match spec.health_check_node_port {
        None => None,
        Some(_) if external_traffic_policy != TrafficPolicy::Local => {
            return Err(ctx.err("spec.healthCheckNodePort needs spec.externalTrafficPolicy Local"))
        }
        Some(p) if (30000..=32767).contains(&p) => Some(p as u16),
        Some(p) => {
            return Err(ctx.err(format!(
                "spec.healthCheckNodePort {p} is outside the node port range 30000-32767"
            )))
        }
    };
    Ok(Service {
        name,
        selector: spec.selector.unwrap_or_default(),
        ports,
        service_type,
        cluster_ip: ip("spec.clusterIP", spec.cluster_ip)?,
        load_balancer_ip: ip("spec.loadBalancerIP", spec.load_balancer_ip)?,
        external_traffic_policy,
        health_check_node_port,
    })
}

#[cfg(test)]
mod tests {
    use crate::manifest::{parse_manifests, Object, TrafficPolicy};

    fn service(spec: &str) -> Result<crate::manifest::Service, String> {
        let yaml = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{selector: {{app: web}}, ports: [{{port: 80}}], {spec}}}\n"
        );
        match parse_manifests(&yaml).map_err(|e| e.to_string())?.pop() {
            Some(Object::Service(s)) => Ok(s),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn external_traffic_policy_and_its_health_check_port() {
        let s = service("type: LoadBalancer").unwrap();
        assert_eq!(s.external_traffic_policy, TrafficPolicy::Cluster);
        let s = service("type: LoadBalancer, externalTrafficPolicy: Local").unwrap();
        assert_eq!(
            (s.external_traffic_policy, s.health_check_node_port),
            (TrafficPolicy::Local, None)
        );
        let s =
            service("type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 32000")
                .unwrap();
        assert_eq!(s.health_check_node_port, Some(32000));
        for (spec, says) in [
            (
                "externalTrafficPolicy: Local",
                "needs spec.type LoadBalancer",
            ),
            (
                "type: LoadBalancer, externalTrafficPolicy: Global",
                "not Cluster or Local",
            ),
            (
                "type: LoadBalancer, healthCheckNodePort: 32000",
                "needs spec.externalTrafficPolicy Local",
            ),
            (
                "type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 8080",
                "30000-32767",
            ),
        ] {
            let e = service(spec).unwrap_err();
            assert!(e.contains(says), "{spec}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}
