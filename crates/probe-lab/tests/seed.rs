//! The seed manifests in examples/seed parse and carry the walkthrough's values.

use probe_lab::{parse_manifests, IntOrPercent, Object, ServiceType, Strategy};

fn load(name: &str) -> Vec<Object> {
    let path = format!("{}/../../examples/seed/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_manifests(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_five_seed_cases() {
    for (file, deployments) in [
        ("recreate.yaml", 1),
        ("rolling.yaml", 1),
        ("readiness.yaml", 1),
        ("surge.yaml", 1),
        ("bluegreen.yaml", 2),
    ] {
        let objs = load(file);
        let mut seen = 0;
        for o in &objs {
            match o {
                Object::Deployment(d) => {
                    seen += 1;
                    assert!(d.name.starts_with("backend-deployment"), "{file}");
                    assert_eq!(d.replicas, 2, "{file}");
                    assert_eq!(d.min_ready_seconds, 10, "{file}");
                    assert_eq!(d.template.termination_grace_period_seconds, 5, "{file}");
                    assert!(d.template.container.image.starts_with("shop/backend:v"));
                    let probe = d.template.container.readiness_probe.as_ref();
                    let want_probe = matches!(file, "readiness.yaml" | "surge.yaml");
                    assert_eq!(probe.is_some(), want_probe, "{file}");
                    if let Some(p) = probe {
                        assert_eq!(p.path, "/test/version");
                        assert_eq!(p.port, 8080);
                        assert_eq!(
                            (
                                p.initial_delay_seconds,
                                p.period_seconds,
                                p.success_threshold
                            ),
                            (5, 2, 3)
                        );
                    }
                    let want = match file {
                        "recreate.yaml" | "bluegreen.yaml" => Strategy::Recreate,
                        "surge.yaml" => Strategy::RollingUpdate {
                            max_surge: IntOrPercent::Percent(100),
                            max_unavailable: IntOrPercent::Percent(0),
                        },
                        _ => Strategy::default(),
                    };
                    assert_eq!(d.strategy, want, "{file}");
                }
                Object::Service(s) => {
                    assert_eq!(s.name, "backend-svc");
                    assert_eq!(s.service_type, ServiceType::LoadBalancer);
                    assert_eq!((s.ports[0].port, s.ports[0].target_port), (8080, 8080));
                    if file == "bluegreen.yaml" {
                        assert_eq!(s.selector.get("version").map(String::as_str), Some("v1"));
                    }
                }
                Object::Ingress(i) => panic!("{file}: the seed has no Ingress, found {}", i.name),
            }
        }
        assert_eq!(seen, deployments, "{file}");
    }
}
