//! The configurable terms an order is posted under: offer expiry, check-in tolerance, no-show
//! grace, review window and the cancellation fee table by notice period. They come from
//! configuration, are validated, and are copied into `OrderPosted`, so an order is always judged
//! by the terms the customer saw when posting.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::money::{BasisPoints, Fen};
use crate::time::Minutes;

/// One row of the cancellation table: cancelling with at least `min_notice` before the service
/// window starts costs `fee` of the order total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationTier {
    /// Minimum notice for this tier.
    pub min_notice: Minutes,
    /// Fee as a share of the order total.
    pub fee: BasisPoints,
}

/// Cancellation fees by notice period. Tiers are kept sorted by descending notice; the first
/// tier whose `min_notice` is met applies. A valid table has a tier with zero notice, so every
/// cancellation finds one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationPolicy {
    tiers: Vec<CancellationTier>,
}

impl CancellationPolicy {
    /// Builds a table; refuses an empty table, fees above 100 %, duplicate notices, or a table
    /// without a zero-notice tier.
    pub fn new(mut tiers: Vec<CancellationTier>) -> Result<Self, DomainError> {
        tiers.sort_by_key(|t| std::cmp::Reverse(t.min_notice));
        if tiers.iter().any(|t| t.fee > BasisPoints::WHOLE) {
            return Err(DomainError::InvalidTerms {
                reason: "a cancellation fee exceeds 100%".into(),
            });
        }
        if tiers
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.min_notice == b.min_notice))
        {
            return Err(DomainError::InvalidTerms {
                reason: "two cancellation tiers have the same notice".into(),
            });
        }
        if tiers.last().is_none_or(|t| t.min_notice != Minutes(0)) {
            return Err(DomainError::InvalidTerms {
                reason: "the cancellation table needs a zero-notice tier".into(),
            });
        }
        Ok(Self { tiers })
    }

    /// The tiers, longest notice first.
    pub fn tiers(&self) -> &[CancellationTier] {
        &self.tiers
    }

    /// The fee for cancelling an order of `total` with `notice` to go.
    pub fn fee(&self, total: Fen, notice: Minutes) -> Result<Fen, DomainError> {
        match self.tiers.iter().find(|t| notice >= t.min_notice) {
            Some(tier) => total.share(tier.fee),
            None => Ok(Fen::ZERO),
        }
    }
}

/// The terms an order is posted under (configuration, copied into `OrderPosted`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTerms {
    /// How long a worker has to answer an offer.
    pub offer_ttl: Minutes,
    /// Parallel offers per slot allowed for emergency calls (other modes offer to one worker).
    pub emergency_parallel_offers: u32,
    /// How early before the window a worker may check in.
    pub early_check_in: Minutes,
    /// How far (metres) from the order location a check-in may be.
    pub check_in_radius_m: u32,
    /// How long after the window start an absent party may be reported as a no-show.
    pub no_show_grace: Minutes,
    /// How long after service the customer may review.
    pub review_window: Minutes,
    /// Customer cancellation fees by notice period (charged only once a worker is committed).
    pub cancellation: CancellationPolicy,
    /// Fee charged to a customer who is not there, as a share of the total.
    pub customer_no_show_fee: BasisPoints,
    /// Most workers one order may need.
    pub max_workers: u32,
}

impl OrderTerms {
    /// Checks the figures that [`CancellationPolicy::new`] does not.
    pub fn validate(&self) -> Result<(), DomainError> {
        let invalid = |reason: &str| {
            Err(DomainError::InvalidTerms {
                reason: reason.to_owned(),
            })
        };
        if self.offer_ttl == Minutes(0) {
            return invalid("offer ttl must be positive");
        }
        if self.emergency_parallel_offers == 0 {
            return invalid("emergency calls need at least one parallel offer");
        }
        if self.review_window == Minutes(0) {
            return invalid("review window must be positive");
        }
        if self.customer_no_show_fee > BasisPoints::WHOLE {
            return invalid("no-show fee exceeds 100%");
        }
        if self.max_workers == 0 {
            return invalid("max workers must be positive");
        }
        Ok(())
    }
}

impl Default for OrderTerms {
    /// A reasonable starting configuration (our proposal, not a published rule): offers last
    /// 5 minutes, emergencies offer to 3 workers at once, check-in from 30 minutes early within
    /// 300 m, no-show after 30 minutes, 7 days to review, cancellation free ≥ 24 h, 20 % ≥ 2 h,
    /// 50 % later, customer no-show 50 %, at most 20 workers.
    fn default() -> Self {
        Self {
            offer_ttl: Minutes(5),
            emergency_parallel_offers: 3,
            early_check_in: Minutes(30),
            check_in_radius_m: 300,
            no_show_grace: Minutes(30),
            review_window: Minutes::days(7),
            cancellation: CancellationPolicy {
                tiers: vec![
                    CancellationTier {
                        min_notice: Minutes::hours(24),
                        fee: BasisPoints(0),
                    },
                    CancellationTier {
                        min_notice: Minutes::hours(2),
                        fee: BasisPoints(2_000),
                    },
                    CancellationTier {
                        min_notice: Minutes(0),
                        fee: BasisPoints(5_000),
                    },
                ],
            },
            customer_no_show_fee: BasisPoints(5_000),
            max_workers: 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_follows_the_notice_tiers() {
        let policy = OrderTerms::default().cancellation;
        assert_eq!(policy.fee(Fen(10_000), Minutes::hours(30)), Ok(Fen(0)));
        assert_eq!(policy.fee(Fen(10_000), Minutes::hours(24)), Ok(Fen(0)));
        assert_eq!(policy.fee(Fen(10_000), Minutes::hours(3)), Ok(Fen(2_000)));
        assert_eq!(policy.fee(Fen(10_000), Minutes(119)), Ok(Fen(5_000)));
        assert_eq!(policy.fee(Fen(10_000), Minutes(0)), Ok(Fen(5_000)));
    }

    #[test]
    fn invalid_tables_are_refused() {
        let tier = |m, bp| CancellationTier {
            min_notice: Minutes(m),
            fee: BasisPoints(bp),
        };
        assert!(CancellationPolicy::new(vec![]).is_err());
        assert!(CancellationPolicy::new(vec![tier(60, 0)]).is_err());
        assert!(CancellationPolicy::new(vec![tier(0, 10_001)]).is_err());
        assert!(CancellationPolicy::new(vec![tier(0, 1), tier(0, 2)]).is_err());
        let ok = CancellationPolicy::new(vec![tier(0, 5_000), tier(1_440, 0)]).unwrap();
        assert_eq!(
            ok.tiers().first().map(|t| t.min_notice),
            Some(Minutes(1_440))
        );
    }

    #[test]
    fn default_terms_are_valid() {
        assert_eq!(OrderTerms::default().validate(), Ok(()));
        let bad = OrderTerms {
            offer_ttl: Minutes(0),
            ..OrderTerms::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(DomainError::InvalidTerms { .. })
        ));
    }
}
