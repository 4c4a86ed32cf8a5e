//! probe-lab: the Kubernetes data path in network namespaces (being built).
