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
