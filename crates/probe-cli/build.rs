//! Sets the `netns_tests` cfg when ROLLPROBE_NETNS_TESTS=1, so the root-only suites in
//! tests/e2e/ (the lab, the kernel's unreachable errnos) run then and are listed as
//! ignored otherwise: a skipped suite must never be reported as passed.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(netns_tests)");
    println!("cargo:rerun-if-env-changed=ROLLPROBE_NETNS_TESTS");
    if std::env::var("ROLLPROBE_NETNS_TESTS").as_deref() == Ok("1") {
        println!("cargo:rustc-cfg=netns_tests");
    }
}
