//! The model's parsing and defaults, on small manifests.

use super::*;
use probe_core::IntOrPercent::*;

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend-deployment
  annotations: {unknown: field}
spec:
  replicas: 2
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0%
      maxSurge: 100%
  minReadySeconds: 10
  selector:
    matchLabels:
      type: backend
  template:
    metadata:
      labels:
        type: backend
    spec:
      containers:
      - name: backend
        image: shop/backend:v1
        env: [{name: SHUTDOWN_DELAY_MS, value: "500"}]
        readinessProbe:
          httpGet: {path: /test/version, port: 8080}
          initialDelaySeconds: 5
          periodSeconds: 2
          successThreshold: 3
      terminationGracePeriodSeconds: 5
"#;

#[test]
fn parses_a_full_deployment() {
    let objs = parse_manifests(DEPLOY).unwrap();
    let Object::Deployment(d) = &objs[0] else {
        panic!()
    };
    assert_eq!(d.replicas, 2);
    assert_eq!(d.min_ready_seconds, 10);
    assert_eq!(
        d.strategy,
        Strategy::RollingUpdate {
            max_surge: Percent(100),
            max_unavailable: Percent(0)
        }
    );
    assert_eq!(d.template.termination_grace_period_seconds, 5);
    let p = d.template.container.readiness_probe.as_ref().unwrap();
    assert_eq!(
        (
            p.initial_delay_seconds,
            p.period_seconds,
            p.success_threshold
        ),
        (5, 2, 3)
    );
    assert_eq!((p.timeout_seconds, p.failure_threshold), (1, 3));
    assert_eq!(d.template.container.env[0].1, "500");
}

#[test]
fn defaults_are_kubernetes_defaults() {
    let y = "kind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {x: y}}\n  template:\n    metadata: {labels: {x: y}}\n    spec: {containers: [{name: c, image: i}]}\n";
    let Object::Deployment(d) = &parse_manifests(y).unwrap()[0] else {
        panic!()
    };
    assert_eq!(d.replicas, 1);
    assert_eq!(d.strategy, Strategy::default());
    assert_eq!(d.template.termination_grace_period_seconds, 30);
    assert_eq!(d.min_ready_seconds, 0);
}

#[test]
fn missing_fields_name_field_and_object_on_one_line() {
    let y = DEPLOY.replace("  selector:\n    matchLabels:\n      type: backend\n", "");
    let e = parse_manifests(&y).unwrap_err().to_string();
    assert_eq!(
        e,
        "manifest document 1 (Deployment backend-deployment): missing required field spec.selector"
    );
    let y = "---\n---\nkind: Service\nmetadata: {name: s}\nspec: {selector: {a: b}}\n";
    let e = parse_manifests(y).unwrap_err().to_string();
    assert!(e.contains("(Service s)") && e.contains("spec.ports"), "{e}");
    assert!(!e.contains('\n'));
    let p = parse_manifests_with_warnings("kind: ConfigMap\nmetadata: {name: c}\n").unwrap();
    assert!(p.objects.is_empty());
    assert_eq!(
        p.warnings[0].to_string(),
        "manifest document 1 (ConfigMap c): ignored: the lab runs only apps/v1 Deployments and v1 Services, not ConfigMap"
    );
    let e = parse_manifests("metadata: {name: c}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing required field kind"), "{e}");
    let e = parse_manifests(&DEPLOY.replace("image: shop/backend:v1", "imagex: a"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("containers[0].image"), "{e}");
}

#[test]
fn invalid_rolling_update_values() {
    let both0 = DEPLOY.replace("maxSurge: 100%", "maxSurge: 0");
    let e = parse_manifests(&both0).unwrap_err().to_string();
    assert!(e.contains("may not be 0 when maxSurge is 0"), "{e}");
    let bad = DEPLOY.replace("maxSurge: 100%", "maxSurge: lots");
    let e = parse_manifests(&bad).unwrap_err().to_string();
    assert!(
        e.contains("maxSurge must be an integer or a percentage"),
        "{e}"
    );
    let int = DEPLOY.replace("maxSurge: 100%", "maxSurge: 3");
    let Object::Deployment(d) = &parse_manifests(&int).unwrap()[0] else {
        panic!()
    };
    assert!(matches!(
        d.strategy,
        Strategy::RollingUpdate {
            max_surge: Int(3),
            ..
        }
    ));
}

/// The examples of the Kubernetes documentation and the controller's own tests.
#[test]
fn fencepost_rounding() {
    let f = |surge, unavail, replicas| {
        Strategy::RollingUpdate {
            max_surge: surge,
            max_unavailable: unavail,
        }
        .fenceposts(replicas)
    };
    // docs: 10 replicas, 30% -> surge 3, unavailable 3
    assert_eq!(f(Percent(30), Percent(30), 10), (3, 3));
    // 25%/25% defaults
    assert_eq!(f(Percent(25), Percent(25), 1), (1, 0));
    assert_eq!(f(Percent(25), Percent(25), 4), (1, 1));
    assert_eq!(f(Percent(25), Percent(25), 5), (2, 1));
    // seed: 100% / 0% with 2 replicas -> 2 new pods at once, none unavailable
    assert_eq!(f(Percent(100), Percent(0), 2), (2, 0));
    // both resolve to 0: the controller uses maxUnavailable 1
    assert_eq!(f(Int(0), Percent(25), 2), (0, 1));
    assert_eq!(f(Percent(25), Percent(25), 0), (0, 1));
    assert_eq!(Strategy::Recreate.fenceposts(3), (0, 3));
}

#[test]
fn services() {
    let y = "kind: Service\nmetadata: {name: s}\nspec:\n  selector: {a: b}\n  ports: [{port: 80, targetPort: 8080}]\n";
    let Object::Service(s) = &parse_manifests(y).unwrap()[0] else {
        panic!()
    };
    assert_eq!(s.service_type, ServiceType::ClusterIp);
    assert_eq!(s.ports[0].target_port, 8080);
    let e = parse_manifests(&y.replace("{a: b}", "{a: b}\n  type: NodePort"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("NodePort is not supported"), "{e}");
}

#[test]
fn versions_from_images() {
    assert_eq!(version_of_image("shop/web:v2"), "v2");
    assert_eq!(version_of_image("shop/web"), "latest");
    assert_eq!(version_of_image("localhost:5000/web:1.0"), "1.0");
    assert_eq!(version_of_image("web:v3@sha256:abc"), "v3");
}

#[test]
fn a_line_break_in_a_field_name_stays_out_of_the_error() {
    // Found by tests/manifest_fuzz.rs: a label key with a line break and no value.
    let y = DEPLOY.replace("      type: backend\n", "      \"ty\\npe\":\n");
    let e = parse_manifests(&y).unwrap_err().to_string();
    assert!(
        e.starts_with("manifest document 1 (Deployment backend-deployment): "),
        "{e}"
    );
    assert!(e.contains("matchLabels"), "{e}");
    assert!(!e.contains('\n'), "{e:?}");
}
