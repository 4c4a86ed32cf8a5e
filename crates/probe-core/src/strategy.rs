//! A Deployment's rollout strategy: the one type that the lab, the Kubernetes
//! integration and the matrix share.
//!
//! `maxSurge`/`maxUnavailable` are what a matrix benchmarks, so their parsing and
//! Kubernetes' rounding live here once, beside the rollout model, rather than in
//! each source of events.

use std::fmt;

/// `maxSurge` / `maxUnavailable`: a count or a percentage of the desired replicas.
///
/// ```
/// use probe_core::IntOrPercent;
/// assert_eq!(IntOrPercent::Percent(25).scaled(2, true), 1);
/// assert_eq!(IntOrPercent::Percent(25).scaled(2, false), 0);
/// assert_eq!("25%".parse::<IntOrPercent>(), Ok(IntOrPercent::Percent(25)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntOrPercent {
    /// An absolute number of pods.
    Int(i32),
    /// A percentage (Kubernetes rounds surge up and unavailable down).
    Percent(u32),
}

impl IntOrPercent {
    /// Whether it is `0` or `0%`.
    pub fn is_zero(self) -> bool {
        matches!(self, IntOrPercent::Int(0) | IntOrPercent::Percent(0))
    }

    /// Resolves the value against `total` pods, rounding a percentage up or down
    /// (Kubernetes' `GetScaledValueFromIntOrPercent`).
    pub fn scaled(self, total: i32, round_up: bool) -> i32 {
        match self {
            IntOrPercent::Int(v) => v,
            IntOrPercent::Percent(p) => {
                let num = i64::from(p) * i64::from(total);
                let v = if round_up {
                    (num + 99).div_euclid(100)
                } else {
                    num.div_euclid(100)
                };
                i32::try_from(v).unwrap_or(i32::MAX)
            }
        }
    }
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl std::str::FromStr for IntOrPercent {
    type Err = String;

    fn from_str(s: &str) -> Result<IntOrPercent, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            p.parse::<u32>()
                .map(IntOrPercent::Percent)
                .map_err(|_| format!("\"{s}\" is not a percentage like 25%"))
        } else {
            match s.parse::<i32>() {
                Ok(n) if n >= 0 => Ok(IntOrPercent::Int(n)),
                _ => Err(format!(
                    "\"{s}\" is not a pod count (0, 1, 2...) or a percentage (25%)"
                )),
            }
        }
    }
}

/// A Deployment's `spec.strategy`.
///
/// Its `Display` is the matrix's case syntax, which [`Strategy::parse_case`] reads back.
///
/// ```
/// use probe_core::{IntOrPercent, Strategy};
/// assert_eq!(Strategy::parse_case("recreate"), Ok(Strategy::Recreate));
/// let rolling = Strategy::parse_case("rolling:25%/0").unwrap();
/// assert_eq!(
///     rolling,
///     Strategy::RollingUpdate { max_surge: IntOrPercent::Percent(25), max_unavailable: IntOrPercent::Int(0) }
/// );
/// assert_eq!(rolling.to_string(), "rolling:25%/0");
/// assert_eq!(rolling.slug(), "rolling-25pct-0");
/// assert!(Strategy::parse_case("rolling:0/0%").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// All old pods are gone before any new one is created.
    Recreate,
    /// Old pods are replaced step by step within the surge/unavailable budget.
    RollingUpdate {
        /// How many pods above the desired count may exist.
        max_surge: IntOrPercent,
        /// How many pods below the desired count may be unavailable.
        max_unavailable: IntOrPercent,
    },
}

impl Default for Strategy {
    /// Kubernetes' default: `RollingUpdate` with 25%/25%.
    fn default() -> Self {
        Strategy::DEFAULT
    }
}

impl Strategy {
    /// Kubernetes' default: `RollingUpdate` with 25%/25%.
    pub const DEFAULT: Strategy = Strategy::RollingUpdate {
        max_surge: IntOrPercent::Percent(25),
        max_unavailable: IntOrPercent::Percent(25),
    };

    /// A name usable as a directory: `recreate`, `rolling-25pct-0`.
    pub fn slug(&self) -> String {
        self.to_string()
            .replace([':', '/'], "-")
            .replace('%', "pct")
    }

    /// Parses a matrix case: `recreate` or `rolling:SURGE/UNAVAILABLE`, each a count or a
    /// percentage. Rejects what the API server would reject: both zero, and
    /// `maxUnavailable` above 100%.
    pub fn parse_case(s: &str) -> Result<Strategy, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("recreate") {
            return Ok(Strategy::Recreate);
        }
        let usage = "a case is `recreate` or `rolling:SURGE/UNAVAILABLE` (counts or percentages, e.g. rolling:25%/25%, rolling:1/0)";
        let Some(rest) = t
            .strip_prefix("rolling:")
            .or_else(|| t.strip_prefix("rollingupdate:"))
        else {
            return Err(format!("unknown case \"{s}\": {usage}"));
        };
        let Some((surge, unavail)) = rest.split_once('/') else {
            return Err(format!("case \"{s}\" lacks the `/`: {usage}"));
        };
        let max_surge: IntOrPercent = surge
            .parse()
            .map_err(|e| format!("case \"{s}\": maxSurge {e}"))?;
        let max_unavailable: IntOrPercent = unavail
            .parse()
            .map_err(|e| format!("case \"{s}\": maxUnavailable {e}"))?;
        Strategy::rolling(max_surge, max_unavailable).map_err(|e| format!("case \"{s}\": {e}"))
    }

    /// A rolling update, validated as the API server validates it.
    pub fn rolling(
        max_surge: IntOrPercent,
        max_unavailable: IntOrPercent,
    ) -> Result<Strategy, String> {
        if max_surge.is_zero() && max_unavailable.is_zero() {
            return Err(
                "maxSurge and maxUnavailable may not both be zero (Kubernetes rejects it)".into(),
            );
        }
        if let IntOrPercent::Percent(p) = max_unavailable {
            if p > 100 {
                return Err("maxUnavailable may not be more than 100%".into());
            }
        }
        Ok(Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        })
    }

    /// `(max_surge, max_unavailable)` in pods for `replicas`, as the Deployment
    /// controller resolves them: surge rounds up, unavailable rounds down, and if both
    /// come out as 0, unavailable becomes 1 so that the rollout can progress. Recreate
    /// is `(0, replicas)`.
    ///
    /// ```
    /// use probe_core::{IntOrPercent::*, Strategy};
    /// // The seed's "zero downtime" case: 2 replicas, maxSurge 100%, maxUnavailable 0%.
    /// let s = Strategy::RollingUpdate { max_surge: Percent(100), max_unavailable: Percent(0) };
    /// assert_eq!(s.fenceposts(2), (2, 0));
    /// assert_eq!(Strategy::DEFAULT.fenceposts(2), (1, 0));
    /// ```
    pub fn fenceposts(&self, replicas: i32) -> (i32, i32) {
        match *self {
            Strategy::Recreate => (0, replicas),
            Strategy::RollingUpdate {
                max_surge,
                max_unavailable,
            } => {
                let surge = max_surge.scaled(replicas, true);
                let mut unavailable = max_unavailable.scaled(replicas, false);
                if surge == 0 && unavailable == 0 {
                    unavailable = 1;
                }
                (surge, unavailable)
            }
        }
    }
}

/// The case syntax that [`Strategy::parse_case`] reads: `recreate`, `rolling:25%/0`.
impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Recreate => write!(f, "recreate"),
            Strategy::RollingUpdate {
                max_surge,
                max_unavailable,
            } => write!(f, "rolling:{max_surge}/{max_unavailable}"),
        }
    }
}

/// Most seconds a `+prestop=` case may sleep (an hour: far beyond any grace period).
const MAX_PRE_STOP_SECONDS: u32 = 3600;

/// One case of a strategy matrix: a strategy, and optionally a `preStop` sleep that the
/// Deployment's container gets for the case's runs (`rolling:1/0+prestop=5s`), so the
/// same rolling update can be compared with and without the hook. A case without the
/// suffix runs with the Deployment's own hook, whatever it is.
///
/// ```
/// use probe_core::{StrategyCase, Strategy};
/// let case = StrategyCase::parse("rolling:1/0+prestop=5s").unwrap();
/// assert_eq!(case.strategy, Strategy::parse_case("rolling:1/0").unwrap());
/// assert_eq!(case.pre_stop_seconds, Some(5));
/// assert_eq!(case.to_string(), "rolling:1/0+prestop=5s");
/// assert_eq!(case.slug(), "rolling-1-0-prestop-5s");
/// assert_eq!(StrategyCase::parse("recreate").unwrap(), StrategyCase::from(Strategy::Recreate));
/// assert!(StrategyCase::parse("rolling:1/0+prestop=0s").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StrategyCase {
    /// The Deployment's strategy for the case.
    pub strategy: Strategy,
    /// A `preStop` sleep of this many seconds for the case's runs.
    pub pre_stop_seconds: Option<u32>,
}

impl From<Strategy> for StrategyCase {
    fn from(strategy: Strategy) -> StrategyCase {
        StrategyCase {
            strategy,
            pre_stop_seconds: None,
        }
    }
}

impl StrategyCase {
    /// Parses `STRATEGY[+prestop=Ns]`: a strategy as [`Strategy::parse_case`] reads it,
    /// then optionally a preStop sleep in whole seconds (`5s` or `5`), 1 to 3600.
    pub fn parse(s: &str) -> Result<StrategyCase, String> {
        let t = s.trim();
        let (strategy, suffix) = match t.split_once('+') {
            Some((strategy, suffix)) => (strategy, Some(suffix)),
            None => (t, None),
        };
        let strategy = Strategy::parse_case(strategy)?;
        let pre_stop_seconds = match suffix {
            None => None,
            Some(suffix) => {
                let usage = "the suffix is `+prestop=SECONDS` (e.g. rolling:1/0+prestop=5s)";
                let value = suffix
                    .strip_prefix("prestop=")
                    .ok_or_else(|| format!("case \"{s}\": unknown suffix `+{suffix}`: {usage}"))?;
                let number = value.strip_suffix('s').unwrap_or(value);
                match number.parse::<u32>() {
                    Ok(n) if (1..=MAX_PRE_STOP_SECONDS).contains(&n) => Some(n),
                    _ => {
                        return Err(format!(
                            "case \"{s}\": preStop sleep '{value}' is not 1 to {MAX_PRE_STOP_SECONDS} whole seconds: {usage}"
                        ))
                    }
                }
            }
        };
        Ok(StrategyCase {
            strategy,
            pre_stop_seconds,
        })
    }

    /// A name usable as a directory: `recreate`, `rolling-1-0-prestop-5s`.
    pub fn slug(&self) -> String {
        self.to_string()
            .replace([':', '/', '+', '='], "-")
            .replace('%', "pct")
    }
}

/// The case syntax that [`StrategyCase::parse`] reads: `rolling:1/0+prestop=5s`.
impl fmt::Display for StrategyCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.strategy)?;
        if let Some(n) = self.pre_stop_seconds {
            write!(f, "+prestop={n}s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_with_a_pre_stop_read_back_and_bad_suffixes_say_why() {
        for text in [
            "rolling:25%/25%+prestop=30s",
            "recreate+prestop=1s",
            "rolling:1/0",
        ] {
            assert_eq!(StrategyCase::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            StrategyCase::parse("rolling:1/0+prestop=5").unwrap(),
            StrategyCase::parse("rolling:1/0+prestop=5s").unwrap()
        );
        for (text, says) in [
            ("rolling:1/0+drain=5s", "unknown suffix `+drain=5s`"),
            (
                "rolling:1/0+prestop=5m",
                "'5m' is not 1 to 3600 whole seconds",
            ),
            ("rolling:1/0+prestop=", "'' is not 1 to 3600"),
            ("rolling:1/0+prestop=3601s", "'3601s' is not"),
            ("rolling:0/0+prestop=5s", "may not both be zero"),
        ] {
            let e = StrategyCase::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
