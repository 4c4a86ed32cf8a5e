//! probe-kube: Kubernetes integration (being built).
