//! How times read in every output: one formatter per meaning.

/// A length of time: `250 ms` under a second, `1.500 s` from one second on.
pub(crate) fn duration(ms: f64) -> String {
    if ms.abs() < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.3} s", ms / 1000.0)
    }
}

/// A moment of the run, as an offset from its start: `+1.500 s`.
pub(crate) fn offset(ms: f64) -> String {
    format!("+{:.3} s", ms / 1000.0)
}

/// A length of time always in seconds, for columns that compare runs: `0.250 s`.
pub(crate) fn seconds(ms: f64) -> String {
    format!("{:.3} s", ms / 1000.0)
}
