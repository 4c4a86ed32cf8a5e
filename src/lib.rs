//! # rollprobe: how much is a service really down while it is redeployed?
//!
//! rollprobe fires HTTP requests at a fixed rate (open loop) while a service is
//! redeployed, names every failure by its real cause (the OS errno, the HTTP status, the
//! proxy that answered), tracks which version answered, puts the rollout's own events on
//! the same clock and explains each outage window. This crate is the library behind the
//! `rollprobe` command, made for integration tests that assert "this rollout lost zero
//! requests":
//!
//! ```toml
//! [dev-dependencies]
//! rollprobe = { path = "...", features = ["lab"] }   # "lab": Linux, root; "kube": a cluster
//! ```
//!
//! Any redeploy, as a future: its start and end become `trigger_start` and `trigger_exit`
//! on the report's timeline.
//!
//! ```no_run
//! # async fn redeploy() -> Result<(), std::io::Error> { Ok(()) }
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use rollprobe::{Probe, Rollout};
//!
//! let report = Rollout::new(Probe::builder("http://127.0.0.1:8080/test/version").rate(200))
//!     .warmup(Duration::from_millis(500))      // default 2 s
//!     .settle(Duration::from_millis(500))      // default 5 s
//!     .trigger(async move { redeploy().await })  // output () or Result<(), E: Display>
//!     .run()
//!     .await?;
//! assert_eq!(report.totals.failed, 0, "{}", report.summary());
//! # Ok(()) }
//! ```
//!
//! The same with a command: `.trigger_command(["kubectl", "rollout", "restart",
//! "deployment/web"])`; with a cluster's events: `.events(source)` (a
//! [`kube`](crate) watch, with feature `kube`).
//!
//! In the lab (feature `lab`, Linux, root), the Kubernetes data path rebuilt in network
//! namespaces on the real kernel:
//!
//! ```no_run
//! # #[cfg(feature = "lab")]
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! # const MANIFEST: &str = "";
//! use std::time::Duration;
//! use rollprobe::{Probe, Rollout};
//!
//! let lab = rollprobe::lab::Lab::start(Default::default()).await?;   // start(LabConfig)
//! lab.apply_yaml(MANIFEST)?;                         // multi-document Deployment/Service YAML
//! lab.wait_available(Duration::from_secs(60)).await?;
//! let change = lab.clone();                          // Lab is a cheap handle (Clone + Send + Sync)
//! let report = Rollout::new(Probe::builder(&lab.service_url("web-svc")?).rate(100))
//!     .lab(&lab)     // wait until the Service answers steadily (as `rollprobe lab` does),
//!                    // probe from where a client of it stands, lab events on the
//!                    // probe's clock, run until the rollout completes, then settle
//!     .trigger(async move { change.set_image("web", "shop/web:v2") })
//!     .run()
//!     .await?;
//! lab.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Everything of the engine is re-exported at the top level ([`Probe`], [`Rollout`],
//! [`Report`], [`MatrixRunner`] ...); `rollprobe::lab` and `rollprobe::kube` are the event
//! sources. ARCHITECTURE.md in the repository maps the crates.

pub use probe_core::*;

/// The lab: the Kubernetes data path on one machine, in network namespaces (Linux,
/// root). See [`lab::Lab`].
#[cfg(feature = "lab")]
pub mod lab {
    pub use probe_lab::*;
}

/// Kubernetes: a rollout's events from a cluster, strategy changes for a matrix.
#[cfg(feature = "kube")]
pub mod kube {
    pub use probe_kube::*;
}
