//! Time as data: instants in unix milliseconds and whole-minute durations. The domain never
//! reads a clock; `now` is always an argument.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An instant, in milliseconds since the unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// A non-negative duration in whole minutes (policy windows, lateness, notice periods).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Minutes(pub u32);

const MS_PER_MINUTE: i64 = 60_000;

impl Minutes {
    /// Whole hours as minutes, saturating.
    pub const fn hours(hours: u32) -> Self {
        Self(hours.saturating_mul(60))
    }

    /// Whole days as minutes, saturating.
    pub const fn days(days: u32) -> Self {
        Self(days.saturating_mul(24 * 60))
    }

    fn millis(self) -> i64 {
        i64::from(self.0) * MS_PER_MINUTE
    }
}

impl Timestamp {
    /// The instant `minutes` later, saturating at the end of time.
    pub fn plus(self, minutes: Minutes) -> Self {
        Self(self.0.saturating_add(minutes.millis()))
    }

    /// The instant `minutes` earlier, saturating at the start of time.
    pub fn minus(self, minutes: Minutes) -> Self {
        Self(self.0.saturating_sub(minutes.millis()))
    }

    /// Whole minutes from `earlier` to `self`, rounded down; zero if `earlier` is not earlier.
    pub fn minutes_since(self, earlier: Timestamp) -> Minutes {
        let diff = self.0.saturating_sub(earlier.0);
        if diff <= 0 {
            return Minutes(0);
        }
        Minutes(u32::try_from(diff / MS_PER_MINUTE).unwrap_or(u32::MAX))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl fmt::Display for Minutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}min", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_arithmetic() {
        let t = Timestamp(1_000_000);
        assert_eq!(t.plus(Minutes(2)), Timestamp(1_120_000));
        assert_eq!(t.plus(Minutes(2)).minutes_since(t), Minutes(2));
        assert_eq!(t.minutes_since(t.plus(Minutes(5))), Minutes(0));
        assert_eq!(Timestamp(i64::MAX).plus(Minutes(1)), Timestamp(i64::MAX));
        assert_eq!(Minutes::hours(2), Minutes(120));
        assert_eq!(Minutes::days(1), Minutes(1440));
    }
}
