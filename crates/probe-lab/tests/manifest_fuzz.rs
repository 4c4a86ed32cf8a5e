//! Whatever text a user hands the lab, the manifest parser returns objects or a one-line
//! error naming the document; it never panics. Four shapes of input: arbitrary strings,
//! arbitrary bytes, the seed manifests with a random splice, and random YAML built from
//! the field names the parser looks at (which reaches the validation code, where plain
//! random text stops at the YAML syntax).

use proptest::prelude::*;

fn check(text: &str) {
    match probe_lab::parse_manifests_with_warnings(text) {
        Ok(parsed) => {
            for w in &parsed.warnings {
                let w = w.to_string();
                assert!(
                    w.starts_with("manifest document ") && !w.contains('\n'),
                    "{w:?}"
                );
            }
        }
        Err(e) => {
            let e = e.to_string();
            assert!(
                e.starts_with("manifest document ") && !e.contains('\n'),
                "{e:?}"
            );
        }
    }
}

fn seeds() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    out.sort();
    assert!(
        out.len() >= 5,
        "the seed's manifests are missing: {}",
        out.len()
    );
    out
}

const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "labels",
    "annotations",
    "spec",
    "replicas",
    "strategy",
    "type",
    "rollingUpdate",
    "maxSurge",
    "maxUnavailable",
    "minReadySeconds",
    "selector",
    "matchLabels",
    "matchExpressions",
    "template",
    "containers",
    "image",
    "env",
    "value",
    "valueFrom",
    "ports",
    "containerPort",
    "port",
    "targetPort",
    "protocol",
    "readinessProbe",
    "httpGet",
    "path",
    "periodSeconds",
    "failureThreshold",
    "lifecycle",
    "preStop",
    "exec",
    "command",
    "sleep",
    "seconds",
    "terminationGracePeriodSeconds",
    "clusterIP",
    "loadBalancerIP",
    "<<",
];

const SCALARS: &[&str] = &[
    "Deployment",
    "Service",
    "apps/v1",
    "v1",
    "Recreate",
    "RollingUpdate",
    "LoadBalancer",
    "0",
    "1",
    "-1",
    "8080",
    "65536",
    "25%",
    "101%",
    "x%",
    "2147483648",
    "1.5",
    "true",
    "null",
    "~",
    "\"\"",
    "sleep 5",
    "sh",
    "-c",
    "10.96.0.1",
    "None",
    "*a",
    "&a 1",
    "!!str 3",
];

/// A YAML flow value of bounded depth over [`KEYS`] and [`SCALARS`].
fn yamlish() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(SCALARS).prop_map(str::to_string);
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                let fields: Vec<String> = kv.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn spliced_seeds(which in 0usize..5, at in any::<prop::sample::Index>(),
                     cut in 0usize..40, insert in "[ -~\n\t]{0,12}") {
        let seed = &seeds()[which];
        let mut at = at.index(seed.len() + 1);
        while !seed.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + cut).min(seed.len());
        while !seed.is_char_boundary(end) {
            end -= 1;
        }
        check(&format!("{}{insert}{}", &seed[..at], &seed[end..]));
    }

    #[test]
    fn deployments_with_random_fields(values in fields(DEPLOYMENT_FIELDS)) {
        check(&fill(DEPLOYMENT, &values));
    }

    #[test]
    fn services_with_random_fields(values in fields(SERVICE_FIELDS)) {
        check(&fill(SERVICE, &values));
    }
}

/// A Deployment with a `{}` for each of [`DEPLOYMENT_FIELDS`], in order.
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: {}, strategy: {type: {}, rollingUpdate: {maxSurge: {}, maxUnavailable: {}}}, minReadySeconds: {}, selector: {matchLabels: {}}, template: {metadata: {labels: {}}, spec: {terminationGracePeriodSeconds: {}, containers: [{name: app, image: {}, env: {}, ports: {}, readinessProbe: {}, lifecycle: {}}]}}}\n";

/// A valid value for each field of [`DEPLOYMENT`].
const DEPLOYMENT_FIELDS: &[&str] = &[
    "2",
    "RollingUpdate",
    "1",
    "25%",
    "0",
    "{app: web}",
    "{app: web}",
    "30",
    "shop/web:v1",
    "[{name: VERSION, value: v1}]",
    "[{containerPort: 8080}]",
    "{httpGet: {port: 8080}, periodSeconds: 2}",
    "{preStop: {exec: {command: [sleep, '1']}}}",
];

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: {}, clusterIP: {}, selector: {}, ports: [{port: {}, targetPort: {}, protocol: {}}]}\n";

const SERVICE_FIELDS: &[&str] = &[
    "LoadBalancer",
    "10.96.0.9",
    "{app: web}",
    "80",
    "8080",
    "TCP",
];

/// Each field valid three times in four, otherwise random YAML, so that most inputs get
/// past the YAML layer and the typed layer into the lab's own validation.
fn fields(valid: &'static [&'static str]) -> Vec<BoxedStrategy<String>> {
    valid
        .iter()
        .map(|v| prop_oneof![3 => Just(v.to_string()), 1 => yamlish()].boxed())
        .collect()
}

fn fill(template: &str, values: &[String]) -> String {
    let mut parts = template.split("{}");
    let mut out = parts.next().unwrap_or_default().to_string();
    for (part, value) in parts.zip(values) {
        out.push_str(value);
        out.push_str(part);
    }
    out
}

/// The skeletons with every field valid parse, so the random cases start from a manifest
/// the parser accepts and each random field is what makes the difference.
#[test]
fn the_skeletons_parse_when_every_field_is_valid() {
    for (template, valid) in [(DEPLOYMENT, DEPLOYMENT_FIELDS), (SERVICE, SERVICE_FIELDS)] {
        let values: Vec<String> = valid.iter().map(|v| v.to_string()).collect();
        let yaml = fill(template, &values);
        let parsed = probe_lab::parse_manifests_with_warnings(&yaml)
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(parsed.objects.len(), 1, "{yaml}");
    }
}
