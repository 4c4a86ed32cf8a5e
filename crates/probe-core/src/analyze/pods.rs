//! The pods (instances) that answered, from the `pod_from` header.

use std::collections::BTreeMap;

use crate::report::PodSeen;

/// The pods that answered, in order of first answer.
#[derive(Default)]
pub(super) struct Pods {
    pub(super) seen: Vec<PodSeen>,
    index: BTreeMap<String, usize>,
}

impl Pods {
    pub(super) fn answer(&mut self, pod: &str, at_ms: f64, version: Option<&str>) {
        let i = match self.index.get(pod) {
            Some(&i) => i,
            None => {
                self.seen.push(PodSeen {
                    pod: pod.to_string(),
                    first_ms: at_ms,
                    last_ms: at_ms,
                    count: 0,
                    version: None,
                });
                self.index.insert(pod.to_string(), self.seen.len() - 1);
                self.seen.len() - 1
            }
        };
        let p = &mut self.seen[i];
        p.count += 1;
        p.first_ms = p.first_ms.min(at_ms);
        if at_ms >= p.last_ms {
            p.last_ms = at_ms;
            if let Some(v) = version {
                p.version = Some(v.to_string());
            }
        }
    }
}
