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

/// China Standard Time (Asia/Shanghai), UTC+08:00 all year: China has kept no daylight saving
/// time since 1991, so a fixed offset is exact for every instant an order can have.
const SHANGHAI_OFFSET_SECONDS: i32 = 8 * 3_600;

impl Timestamp {
    /// The instant as chrono's UTC date-time, if chrono can represent it (years -262143 to
    /// 262142; every instant a validated request can carry is within).
    pub fn to_utc(self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_millis(self.0)
    }
}

/// RFC 3339 in UTC (`2027-01-15T08:00:00Z`, milliseconds only when there are some). The
/// alternate form (`{:#}`) adds the same instant in China time, for messages about service
/// windows: `2027-01-15T08:00:00Z (2027-01-15T16:00:00+08:00 Asia/Shanghai)`. An instant
/// beyond chrono's range shows as its raw milliseconds.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::SecondsFormat;
        let Some(utc) = self.to_utc() else {
            return write!(f, "{} ms since the unix epoch", self.0);
        };
        let precision = if self.0.rem_euclid(1_000) == 0 {
            SecondsFormat::Secs
        } else {
            SecondsFormat::Millis
        };
        f.write_str(&utc.to_rfc3339_opts(precision, true))?;
        if f.alternate()
            && let Some(offset) = chrono::FixedOffset::east_opt(SHANGHAI_OFFSET_SECONDS)
        {
            let local = utc.with_timezone(&offset);
            write!(
                f,
                " ({} Asia/Shanghai)",
                local.to_rfc3339_opts(precision, false)
            )?;
        }
        Ok(())
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

    #[test]
    fn instants_show_as_rfc3339_in_utc_and_china_time() {
        let t = Timestamp(1_800_000_000_000);
        assert_eq!(t.to_string(), "2027-01-15T08:00:00Z");
        assert_eq!(
            format!("{t:#}"),
            "2027-01-15T08:00:00Z (2027-01-15T16:00:00+08:00 Asia/Shanghai)"
        );
        assert_eq!(Timestamp(1_500).to_string(), "1970-01-01T00:00:01.500Z");
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            Timestamp(i64::MAX).to_string(),
            format!("{} ms since the unix epoch", i64::MAX)
        );
    }
}
