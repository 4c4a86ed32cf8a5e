//! What the library's end-to-end suites share: the loopback servers (`loopback.rs`, also
//! included by path by the binary's suites in crates/probe-cli/tests/e2e/) and the
//! demo's versioned service, included by path from crates/probe-cli/src/service.rs so
//! that these suites redeploy the very service `rollprobe demo` does without the binary
//! exporting it.
// Each suite is its own crate and uses only some of this.
#![allow(dead_code, unused_imports)]

mod executors;
mod loopback;
#[path = "../../crates/probe-cli/src/service.rs"]
mod service;

pub use executors::*;
pub use loopback::*;
pub use service::ServiceInstance;
