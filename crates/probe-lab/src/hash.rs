//! The one string hash of the lab (64-bit FNV-1a), for the names and choices that
//! Kubernetes derives from a hash: pod-template hashes, ReplicaSet and pod suffixes,
//! kube-proxy's chain names, the node that announces an address.
//!
//! Why FNV-1a written out: the values only need to be stable across runs and
//! platforms (std's `DefaultHasher` promises neither) and spread well; this is
//! what Kubernetes itself uses for its template hash.

/// 64-bit FNV-1a of `s`, its offset basis mixed with `seed` (a second seed gives a
/// second, independent hash of the same text).
pub(crate) fn fnv1a(s: &str, seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn matches_the_published_fnv1a_values() {
        // FNV-1a 64 test vectors (seed 0 is the plain algorithm).
        assert_eq!(fnv1a("", 0), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a", 0), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar", 0), 0x8594_4171_f739_67e8);
        assert_ne!(fnv1a("a", 0), fnv1a("a", 0x9e37_79b9_7f4a_7c15));
    }
}
