//! Bounds on the figures clients send (issue 12): each is documented in the proto comments and
//! a request past one is refused with INVALID_ARGUMENT naming the field and the bound,
//! before anything is appended.
//!
//! | figure | bound | where set |
//! |---|---|---|
//! | `AdjustCredit.points` | `1 <= |points| <=` [`MAX_CREDIT_ADJUSTMENT`] (100) | here |
//! | `ResolveDispute.refund_fen + compensation_fen` | no overflow, at most what the order's customer paid plus the compensation ceiling | `daojia serve --compensation-ceiling-fen` (default 500000 fen) |
//! | `PostOrder.window_start` | at most the horizon after now | `daojia serve --order-horizon-days` (default 90) |
//! | `PostOrder` window length | at most the service's category maximum ([`max_window_minutes`]) | here |
//! | `ReviewOrder.tags` | at most [`MAX_REVIEW_TAGS`] (10) distinct known tags, no repeats | here |

use daojia_domain::Fen;
use daojia_domain::Timestamp;
use daojia_domain::catalog::Category;
use daojia_domain::order::ServiceWindow;

use crate::status::{ApiError, FieldViolation};

/// The largest manual credit adjustment, up or down, in points.
pub const MAX_CREDIT_ADJUSTMENT: i32 = 100;

/// The most tags a review may carry.
pub const MAX_REVIEW_TAGS: usize = 10;

/// Default of `--compensation-ceiling-fen`: 5,000 yuan.
pub const DEFAULT_COMPENSATION_CEILING_FEN: i64 = 500_000;

/// Default of `--order-horizon-days`.
pub const DEFAULT_ORDER_HORIZON_DAYS: u32 = 90;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// The longest service window of a category, in minutes: a day for visits by the hour or the
/// job (cleaning, housekeeping, repairs), 31 days for the live-in categories (maternity
/// carers, nannies and elder carers are booked by the month).
pub fn max_window_minutes(category: Category) -> i64 {
    match category {
        Category::Cleaning | Category::Housekeeping | Category::Repair => 24 * 60,
        Category::Maternity | Category::Childcare | Category::Eldercare => 31 * 24 * 60,
    }
}

/// The configurable bounds (`daojia serve` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How much a dispute's refund plus compensation may exceed what the customer paid.
    pub compensation_ceiling: Fen,
    /// How far ahead of now an order's window may start, in days.
    pub order_horizon_days: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            compensation_ceiling: Fen(DEFAULT_COMPENSATION_CEILING_FEN),
            order_horizon_days: DEFAULT_ORDER_HORIZON_DAYS,
        }
    }
}

impl Limits {
    /// INVALID_ARGUMENT unless `window` starts at most the horizon after `now` and lasts at
    /// most `category`'s maximum.
    pub fn check_window(
        &self,
        window: ServiceWindow,
        category: Category,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let mut bad = Vec::new();
        let horizon = now
            .0
            .saturating_add(i64::from(self.order_horizon_days).saturating_mul(DAY_MS));
        if window.start.0 > horizon {
            bad.push(FieldViolation::new(
                "window_start",
                format!(
                    "must be at most {} days ahead (the order horizon)",
                    self.order_horizon_days
                ),
            ));
        }
        let max = max_window_minutes(category);
        if window.end.0.saturating_sub(window.start.0) > max.saturating_mul(MINUTE_MS) {
            bad.push(FieldViolation::new(
                "window_end",
                format!(
                    "the window may last at most {max} minutes for a {} service",
                    crate::query_view::category_key(category)
                ),
            ));
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(bad))
        }
    }

    /// INVALID_ARGUMENT unless `refund + compensation` fits and is at most `paid` plus the
    /// compensation ceiling.
    pub fn check_settlement(
        &self,
        refund: Fen,
        compensation: Fen,
        paid: Fen,
    ) -> Result<(), ApiError> {
        let cap = paid.0.saturating_add(self.compensation_ceiling.0);
        let within = refund
            .0
            .checked_add(compensation.0)
            .is_some_and(|sum| sum <= cap);
        if within {
            Ok(())
        } else {
            Err(ApiError::invalid_field(
                "compensation_fen",
                format!(
                    "refund_fen + compensation_fen must be at most {cap} fen (the {} fen the \
                     customer paid plus the compensation ceiling of {} fen)",
                    paid.0, self.compensation_ceiling.0
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_bounded_by_horizon_and_category() {
        let limits = Limits::default();
        let now = Timestamp(1_800_000_000_000);
        let window = |start_days: i64, minutes: i64| ServiceWindow {
            start: Timestamp(now.0 + start_days * DAY_MS),
            end: Timestamp(now.0 + start_days * DAY_MS + minutes * MINUTE_MS),
        };
        assert!(
            limits
                .check_window(window(90, 120), Category::Cleaning, now)
                .is_ok()
        );
        assert!(
            limits
                .check_window(window(91, 120), Category::Cleaning, now)
                .is_err()
        );
        assert!(
            limits
                .check_window(window(1, 25 * 60), Category::Cleaning, now)
                .is_err()
        );
        assert!(
            limits
                .check_window(window(1, 26 * 24 * 60), Category::Maternity, now)
                .is_ok()
        );
    }

    #[test]
    fn a_settlement_may_not_overflow_or_pass_the_ceiling() {
        let limits = Limits::default();
        assert!(
            limits
                .check_settlement(Fen(1), Fen(i64::MAX), Fen(10_000))
                .is_err()
        );
        assert!(
            limits
                .check_settlement(Fen(10_000), Fen(500_000), Fen(10_000))
                .is_ok()
        );
        assert!(
            limits
                .check_settlement(Fen(10_000), Fen(500_001), Fen(10_000))
                .is_err()
        );
    }
}
