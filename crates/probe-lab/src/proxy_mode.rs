//! `ProxyMode`: which of kube-proxy's Linux modes each node's rules are written in (the
//! renderers are in `proxy/`). Its own module because the lab's configuration names it
//! and the renderers read the configuration's address ranges: neither imports the other
//! through it.

/// How each node's kube-proxy writes its rules (`--proxy-mode`).
///
/// ```
/// use probe_lab::ProxyMode;
/// assert_eq!("nftables".parse::<ProxyMode>(), Ok(ProxyMode::Nftables));
/// assert_eq!(ProxyMode::default().name(), "iptables");
/// assert!("ipvs".parse::<ProxyMode>().unwrap_err().contains("IP_VS"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// `iptables` mode (kube-proxy's default): `KUBE-SVC`/`KUBE-SEP` chains picking an
    /// endpoint with `-m statistic`, a `REJECT` for a Service without endpoints.
    #[default]
    Iptables,
    /// `nftables` mode (GA in Kubernetes 1.33): the `ip kube-proxy` table, verdict maps
    /// and `numgen random` picking an endpoint; a Service without endpoints meets
    /// `reject`, a ClusterIP that no Service holds is dropped.
    Nftables,
}

impl ProxyMode {
    /// The mode's name as kube-proxy's `--proxy-mode` spells it.
    pub fn name(self) -> &'static str {
        match self {
            ProxyMode::Iptables => "iptables",
            ProxyMode::Nftables => "nftables",
        }
    }
}

impl std::str::FromStr for ProxyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "iptables" => Ok(ProxyMode::Iptables),
            "nftables" => Ok(ProxyMode::Nftables),
            "ipvs" => Err(
                "ipvs mode needs the kernel's IPVS modules (CONFIG_IP_VS), which this machine \
                 lacks: use iptables or nftables"
                    .into(),
            ),
            other => Err(format!(
                "unknown proxy mode {other:?}: iptables or nftables"
            )),
        }
    }
}
