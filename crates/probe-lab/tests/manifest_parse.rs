//! Manifests as people write them for a real cluster: kinds the lab does not run and
//! fields it does not model are warnings, never parse failures; preStop hooks in their
//! three forms; and invalid values as one-line errors naming document, object and field.

use probe_lab::{
    parse_manifests, parse_manifests_with_warnings, IntOrPercent, Object, PreStop, Strategy,
};

/// What `kubectl apply` takes for a small shop: a ConfigMap, a Secret, an Ingress, an
/// HPA and a Deployment that uses resources, secrets, volumes, affinity, a sidecar,
/// liveness and startup probes, YAML anchors and merge keys.
const CLUSTER_READY: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: db}
type: Opaque
stringData: {password: hunter2}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  creationTimestamp: null
  labels: &labels {app: web}
spec:
  replicas: 4
  revisionHistoryLimit: 3
  progressDeadlineSeconds: 600
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  selector: {matchLabels: *labels}
  template:
    metadata:
      labels: {<<: *labels, tier: front}
    spec:
      serviceAccountName: web
      nodeSelector: {kubernetes.io/os: linux}
      tolerations: [{key: dedicated, operator: Equal, value: web, effect: NoSchedule}]
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              topologyKey: kubernetes.io/hostname
              labelSelector: {matchLabels: {app: web}}
      securityContext: {runAsNonRoot: true, runAsUser: 1000}
      volumes:
      - {name: cache, emptyDir: {sizeLimit: 1Gi}}
      - {name: cfg, configMap: {name: settings}}
      initContainers:
      - {name: migrate, image: shop/migrate:v2}
      containers:
      - name: app
        image: shop/web:v2
        imagePullPolicy: IfNotPresent
        args: ["--listen", ":8080"]
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {cpu: 1, memory: 256Mi}
        env:
        - {name: VERSION, value: v2}
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: db, key: password}}
        envFrom: [{configMapRef: {name: settings}}]
        ports: [{name: http, containerPort: 8080, protocol: TCP}]
        volumeMounts: [{name: cache, mountPath: /cache}]
        readinessProbe:
          httpGet:
            path: /ready
            port: 8080
            httpHeaders: [{name: X-Probe, value: "1"}]
          periodSeconds: 2
        livenessProbe:
          tcpSocket: {port: 8080}
        startupProbe:
          exec: {command: [cat, /tmp/started]}
        lifecycle:
          preStop: {sleep: {seconds: 5}}
        securityContext: {readOnlyRootFilesystem: true}
      - name: proxy
        image: envoyproxy/envoy:v1.30
status: {}
---
apiVersion: v1
kind: Service
metadata: {name: web, annotations: {service.beta.kubernetes.io/aws-load-balancer-type: nlb}}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  sessionAffinity: ClientIP
  ipFamilyPolicy: SingleStack
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP, appProtocol: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: shop.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}}]
---
apiVersion: apps/v1beta2
kind: Deployment
metadata: {name: legacy}
"#;

#[test]
fn a_cluster_ready_manifest_parses_with_warnings() {
    let parsed = parse_manifests_with_warnings(CLUSTER_READY).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.objects.len(), 2);
    let Object::Deployment(d) = &parsed.objects[0] else {
        panic!("{:?}", parsed.objects[0])
    };
    assert_eq!((d.name.as_str(), d.replicas), ("web", 4));
    assert_eq!(
        d.strategy,
        Strategy::RollingUpdate {
            max_surge: IntOrPercent::Int(1),
            max_unavailable: IntOrPercent::Int(0),
        }
    );
    assert_eq!(d.selector.get("app").map(String::as_str), Some("web"));
    assert_eq!(d.template.labels.len(), 2, "merge key and own label");
    let c = &d.template.container;
    assert_eq!((c.name.as_str(), c.image.as_str()), ("app", "shop/web:v2"));
    assert_eq!(c.env, vec![("VERSION".to_string(), "v2".to_string())]);
    assert_eq!(c.ports, vec![8080]);
    let probe = c.readiness_probe.as_ref().unwrap();
    assert_eq!(
        (probe.path.as_str(), probe.port, probe.period_seconds),
        ("/ready", 8080, 2)
    );
    assert_eq!(c.pre_stop, Some(PreStop::Sleep { seconds: 5 }));
    let Object::Service(s) = &parsed.objects[1] else {
        panic!()
    };
    assert_eq!((s.ports[0].port, s.ports[0].target_port), (80, 8080));

    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    let c0 = "spec.template.spec.containers[0]";
    let want = [
        "manifest document 1 (ConfigMap settings): ignored: the lab runs only apps/v1 Deployments and v1 Services, not v1 ConfigMap".to_string(),
        "manifest document 2 (Secret db): ignored: the lab runs only apps/v1 Deployments and v1 Services, not v1 Secret".into(),
        "manifest document 3 (Deployment web): spec.template.spec.containers[1] (proxy) ignored: the lab runs the first container of a pod".into(),
        "manifest document 3 (Deployment web): spec.template.spec.initContainers (1 of them) ignored: the lab starts the app at once".into(),
        format!("manifest document 3 (Deployment web): {c0}.env[1] (DB_PASSWORD) ignored: the lab passes only literal values, not valueFrom"),
        format!("manifest document 3 (Deployment web): {c0}.envFrom ignored: the lab passes only literal env values"),
        format!("manifest document 3 (Deployment web): {c0}.livenessProbe ignored: the lab runs readiness probes only"),
        format!("manifest document 3 (Deployment web): {c0}.startupProbe ignored: the lab runs readiness probes only"),
        "manifest document 5 (Ingress web): ignored: no spec.ingressClassName (the lab runs nginx, haproxy or envoy)".into(),
        "manifest document 6 (HorizontalPodAutoscaler web): ignored: the lab runs only apps/v1 Deployments and v1 Services, not autoscaling/v2 HorizontalPodAutoscaler".into(),
        "manifest document 7 (Deployment legacy): ignored: the lab runs only apps/v1 Deployments and v1 Services, not apps/v1beta2 Deployment".into(),
    ];
    assert_eq!(warnings, want);
    // The warning-free entry point gives the same objects.
    assert_eq!(parse_manifests(CLUSTER_READY).unwrap(), parsed.objects);
}

fn deployment_with(container_extra: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      terminationGracePeriodSeconds: 20\n      containers:\n      - name: app\n        image: shop/web:v1\n{container_extra}"
    )
}

fn pre_stop_of(yaml: &str) -> (Option<PreStop>, usize) {
    let parsed = parse_manifests_with_warnings(yaml).unwrap_or_else(|e| panic!("{e}"));
    let Object::Deployment(d) = &parsed.objects[0] else {
        panic!()
    };
    (d.template.container.pre_stop.clone(), parsed.warnings.len())
}

#[test]
fn pre_stop_forms() {
    // Sleep hooks run (no warning); any other exec command is read but not run (a warning).
    let hook = |h: &str| deployment_with(&format!("        lifecycle:\n          preStop: {h}\n"));
    let sleep = |seconds| Some(PreStop::Sleep { seconds });
    assert_eq!(pre_stop_of(&hook("{sleep: {seconds: 7}}")), (sleep(7), 0));
    assert_eq!(
        pre_stop_of(&hook("{exec: {command: [sleep, \"5\"]}}")),
        (sleep(5), 0)
    );
    assert_eq!(
        pre_stop_of(&hook("{exec: {command: [/bin/sleep, 5s]}}")),
        (sleep(5), 0)
    );
    assert_eq!(
        pre_stop_of(&hook("{exec: {command: [sh, -c, \"sleep 15\"]}}")),
        (sleep(15), 0)
    );
    assert_eq!(
        pre_stop_of(&hook("{exec: {command: [/bin/sh, -c, \"sleep 3\"]}}")),
        (sleep(3), 0)
    );
    let drain = vec!["/app/drain".to_string(), "--wait".to_string()];
    assert_eq!(
        pre_stop_of(&hook("{exec: {command: [/app/drain, --wait]}}")),
        (Some(PreStop::Exec { command: drain }), 1)
    );
    assert_eq!(
        pre_stop_of(&hook("{exec: {command: [sh, -c, \"sleep 2 && kill 1\"]}}")).0,
        Some(PreStop::Exec {
            command: vec!["sh".into(), "-c".into(), "sleep 2 && kill 1".into()]
        })
    );
    // An HTTP hook is not modelled: a warning, no hook.
    let (hook_model, warnings) = pre_stop_of(&hook("{httpGet: {path: /drain, port: 8080}}"));
    assert_eq!((hook_model, warnings), (None, 1));
    assert_eq!(pre_stop_of(&deployment_with("")), (None, 0));
    // The API server's bounds on the sleep action: 0 to the grace period.
    let e = parse_manifests(&hook("{sleep: {seconds: 30}}"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "manifest document 1 (Deployment web): spec.template.spec.containers[0].lifecycle.preStop.sleep.seconds must be non-negative and at most terminationGracePeriodSeconds (20), got 30"
    );
    let e = parse_manifests(&hook("{sleep: {seconds: -1}}"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("preStop.sleep.seconds must be non-negative"),
        "{e}"
    );
    let e = parse_manifests(&hook("{}")).unwrap_err().to_string();
    assert!(
        e.ends_with("lifecycle.preStop must set one of exec, sleep, httpGet or tcpSocket"),
        "{e}"
    );
}

/// Each invalid value, the document it sits in, and the part of the error that names it.
#[test]
fn invalid_values_are_one_line_errors_naming_document_object_and_field() {
    let dep = |strategy: &str, extra: &str| {
        format!(
            "kind: Service\nmetadata: {{name: s}}\nspec: {{ports: [{{port: 80}}]}}\n---\n{}",
            deployment_with(extra).replace(
                "spec:\n  selector",
                &format!("spec:\n  strategy: {strategy}\n  selector")
            )
        )
    };
    let ru = |s: &str| dep(&format!("{{rollingUpdate: {s}}}"), "");
    let svc = |spec: &str| format!("kind: Service\nmetadata: {{name: s}}\nspec: {spec}\n");
    let cases: Vec<(String, &str)> = vec![
        (ru("{maxSurge: 0, maxUnavailable: 0}"), "spec.strategy.rollingUpdate.maxUnavailable may not be 0 when maxSurge is 0"),
        (ru("{maxSurge: 0%, maxUnavailable: 0}"), "may not be 0 when maxSurge is 0"),
        (ru("{maxUnavailable: 101%}"), "spec.strategy.rollingUpdate.maxUnavailable must not be greater than 100%"),
        (ru("{maxSurge: -1}"), "spec.strategy.rollingUpdate.maxSurge must be >= 0, got -1"),
        (ru("{maxSurge: lots}"), "spec.strategy.rollingUpdate.maxSurge must be an integer or a percentage such as \"25%\", got \"lots\""),
        (ru("{maxSurge: 1.5}"), "spec.strategy.rollingUpdate.maxSurge: invalid type"),
        (dep("{type: Recreate, rollingUpdate: {maxSurge: 1}}", ""), "spec.strategy.rollingUpdate may not be specified when strategy type is Recreate"),
        (dep("{type: BlueGreen}", ""), "spec.strategy.type must be Recreate or RollingUpdate, got \"BlueGreen\""),
        (dep("{}", "        ports: [{containerPort: 70000}]\n"), "spec.template.spec.containers[0].ports[0].containerPort must be between 1 and 65535, got 70000"),
        (dep("{}", "        ports: [{name: http}]\n"), "missing required field spec.template.spec.containers[0].ports[0].containerPort"),
        (dep("{}", "        ports: [{containerPort: http}]\n"), "spec.template.spec.containers[0].ports[0].containerPort: invalid type: string \"http\", expected i32"),
        (dep("{}", "        readinessProbe: {exec: {command: [/bin/true]}}\n"), "only httpGet probes are supported by the lab"),
        (dep("{}", "        readinessProbe: {httpGet: {port: http}}\n"), "readinessProbe.httpGet.port: named ports (\"http\") are not supported by the lab"),
        (dep("{}", "        readinessProbe: {httpGet: {path: /}}\n"), "missing required field spec.template.spec.containers[0].readinessProbe.httpGet.port"),
        (dep("{}", "        readinessProbe: {httpGet: {port: 80}, periodSeconds: 0}\n"), "readinessProbe.periodSeconds must be >= 1"),
        (dep("{}", "        env: [{value: x}]\n"), "missing required field spec.template.spec.containers[0].env[0].name"),
        (dep("{}", "        env: [{name: X, value: 5}]\n"), "spec.template.spec.containers[0].env[0].value: invalid type: integer `5`, expected a string"),
        (dep("{}", "").replace("replicas", "x").replace("spec:\n  strategy", "spec:\n  replicas: two\n  strategy"), "spec.replicas: invalid type: string \"two\", expected i32"),
        (dep("{}", "").replace("spec:\n  strategy", "spec:\n  replicas: -1\n  strategy"), "spec.replicas must be 0..=10000, got -1"),
        (dep("{}", "").replace("terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds: -5"), "spec.template.spec.terminationGracePeriodSeconds must be >= 0, got -5"),
        (dep("{}", "").replace("{matchLabels: {app: web}}", "{matchLabels: {app: web}, matchExpressions: []}"), "spec.selector.matchExpressions is not supported by the lab"),
        (dep("{}", "").replace("{matchLabels: {app: web}}", "{matchLabels: {app: api}}"), "spec.template.metadata.labels: `selector` does not match template `labels`"),
        (dep("{}", "").replace("  selector: {matchLabels: {app: web}}\n", ""), "(Deployment web): missing required field spec.selector"),
        (dep("{}", "").replace("- name: app\n", "- nam: app\n"), "missing required field spec.template.spec.containers[0].name"),
        (svc("{type: NodePort, ports: [{port: 80}]}"), "manifest document 1 (Service s): spec.type NodePort is not supported by the lab (ClusterIP or LoadBalancer)"),
        (svc("{ports: [{port: 53, protocol: UDP}]}"), "spec.ports[0].protocol UDP is not supported by the lab (TCP only)"),
        (svc("{ports: [{port: 80, targetPort: http}]}"), "spec.ports[0].targetPort: named ports (\"http\") are not supported by the lab"),
        (svc("{ports: [{name: http}]}"), "missing required field spec.ports[0].port"),
        (svc("{ports: []}"), "missing required field spec.ports"),
        (svc("{clusterIP: 10.96.0.x, ports: [{port: 80}]}"), "spec.clusterIP is not an IPv4 address: \"10.96.0.x\""),
        ("kind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n---\nkind: [\n".into(), "manifest document 2 (?): did not find expected node content"),
        ("metadata: {name: c}\n".into(), "manifest document 1 (? c): missing required field kind"),
    ];
    let mut in_second_document = 0;
    for (yaml, want) in cases {
        let e = match parse_manifests(&yaml) {
            Ok(objs) => panic!("expected an error containing {want:?}, parsed {objs:?}\n{yaml}"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains(want),
            "error {e:?} does not contain {want:?}\n{yaml}"
        );
        assert!(!e.contains('\n'), "{e:?} is not one line");
        assert!(e.starts_with("manifest document "), "{e:?}");
        if yaml.starts_with(
            "kind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n---\napiVersion",
        ) {
            assert!(
                e.starts_with("manifest document 2 (Deployment web): "),
                "{e:?} does not name the second document"
            );
            in_second_document += 1;
        }
    }
    assert_eq!(in_second_document, 24);
}
