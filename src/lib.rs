//! Nothing to see here: this package exists for its tests/ and benches/, which
//! exercise the `rollprobe` binary (crates/probe-cli) and the library end to end.
