//! Money as integer fen (分, 1/100 yuan) with checked arithmetic; there are no floats anywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// An amount of money in fen. May be negative only as an intermediate; amounts in commands
/// and events are validated non-negative by [`Fen::non_negative`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(pub i64);

/// A share in basis points (1/100 of a percent): 10_000 = 100 %.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct BasisPoints(pub u32);

impl BasisPoints {
    /// 100 %.
    pub const WHOLE: Self = Self(10_000);
}

impl Fen {
    /// Zero fen.
    pub const ZERO: Self = Self(0);

    /// Whole yuan as fen, if it fits.
    pub fn yuan(yuan: i64) -> Result<Self, DomainError> {
        yuan.checked_mul(100)
            .map(Self)
            .ok_or(DomainError::MoneyOverflow)
    }

    /// Refuses negative amounts (`field` names the offending input).
    pub fn non_negative(self, field: &'static str) -> Result<Self, DomainError> {
        if self.0 < 0 {
            return Err(DomainError::NegativeMoney { field, fen: self.0 });
        }
        Ok(self)
    }

    /// `self + other`, or [`DomainError::MoneyOverflow`].
    pub fn checked_add(self, other: Fen) -> Result<Self, DomainError> {
        self.0
            .checked_add(other.0)
            .map(Self)
            .ok_or(DomainError::MoneyOverflow)
    }

    /// `self - other`, or [`DomainError::MoneyOverflow`].
    pub fn checked_sub(self, other: Fen) -> Result<Self, DomainError> {
        self.0
            .checked_sub(other.0)
            .map(Self)
            .ok_or(DomainError::MoneyOverflow)
    }

    /// `self × factor`, or [`DomainError::MoneyOverflow`].
    pub fn checked_mul(self, factor: u32) -> Result<Self, DomainError> {
        self.0
            .checked_mul(i64::from(factor))
            .map(Self)
            .ok_or(DomainError::MoneyOverflow)
    }

    /// The share `bp` of `self`, rounded half away from zero to a whole fen.
    pub fn share(self, bp: BasisPoints) -> Result<Self, DomainError> {
        let product = i128::from(self.0) * i128::from(bp.0);
        let rounded = if product >= 0 {
            (product + 5_000) / 10_000
        } else {
            (product - 5_000) / 10_000
        };
        i64::try_from(rounded)
            .map(Self)
            .map_err(|_| DomainError::MoneyOverflow)
    }
}

impl fmt::Display for Fen {
    /// `¥12.34`, `-¥0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}¥{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Fen(1).checked_add(Fen(2)), Ok(Fen(3)));
        assert_eq!(
            Fen(i64::MAX).checked_add(Fen(1)),
            Err(DomainError::MoneyOverflow)
        );
        assert_eq!(
            Fen(i64::MIN).checked_sub(Fen(1)),
            Err(DomainError::MoneyOverflow)
        );
        assert_eq!(
            Fen(i64::MAX).checked_mul(2),
            Err(DomainError::MoneyOverflow)
        );
        assert_eq!(Fen(3500).checked_mul(3), Ok(Fen(10_500)));
        assert_eq!(Fen::yuan(35), Ok(Fen(3500)));
        assert_eq!(Fen::yuan(i64::MAX), Err(DomainError::MoneyOverflow));
    }

    #[test]
    fn shares_round_half_away_from_zero() {
        assert_eq!(Fen(10_000).share(BasisPoints(2_000)), Ok(Fen(2_000)));
        assert_eq!(Fen(5).share(BasisPoints(5_000)), Ok(Fen(3)));
        assert_eq!(Fen(-5).share(BasisPoints(5_000)), Ok(Fen(-3)));
        assert_eq!(Fen(i64::MAX).share(BasisPoints::WHOLE), Ok(Fen(i64::MAX)));
        assert_eq!(
            Fen(i64::MAX).share(BasisPoints(20_000)),
            Err(DomainError::MoneyOverflow)
        );
    }

    #[test]
    fn negative_amounts_are_refused_and_displayed() {
        assert_eq!(
            Fen(-1).non_negative("refund"),
            Err(DomainError::NegativeMoney {
                field: "refund",
                fen: -1
            })
        );
        assert_eq!(Fen(1234).to_string(), "¥12.34");
        assert_eq!(Fen(-5).to_string(), "-¥0.05");
    }
}
