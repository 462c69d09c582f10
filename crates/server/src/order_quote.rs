//! `CustomerApp.QuoteOrder`: what `PostOrder` would fix now, found by running the very decision
//! `PostOrder` runs (same validation, same standing check, same `decide`) and showing the
//! `OrderPosted` it would append instead of appending it.

use daojia_domain::order::{self, OrderEvent, OrderState};
use daojia_domain::{DomainError, Timestamp};

use crate::order_requests::OrderRequest;
use crate::order_view::{quote_view, timestamp};
use crate::pb;
use crate::status::ApiError;

/// The quote for a validated `PostOrder` request at `now`; nothing is appended.
pub fn quote(request: OrderRequest, now: Timestamp) -> Result<pb::OrderQuote, ApiError> {
    let events = order::decide(&OrderState::default(), request.command, now)?;
    let Some(OrderEvent::OrderPosted {
        category,
        required_certificates,
        quote,
        window,
        terms,
        ..
    }) = events.into_iter().next()
    else {
        return Err(ApiError::Domain(DomainError::MalformedEvent {
            event_type: "OrderPosted".into(),
            reason: "posting decided no OrderPosted".into(),
        }));
    };
    let cancellation = terms
        .cancellation
        .tiers()
        .iter()
        .map(|tier| {
            Ok(pb::CancellationFee {
                min_notice_minutes: tier.min_notice.0,
                fee_basis_points: tier.fee.0,
                fee_fen: quote.total.share(tier.fee)?.0,
                cancel_by: Some(timestamp(window.start.minus(tier.min_notice))),
            })
        })
        .collect::<Result<Vec<_>, DomainError>>()?;
    Ok(pb::OrderQuote {
        quote: Some(quote_view(&quote)),
        category: category.key().to_owned(),
        required_certificates: required_certificates
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        cancellation,
        customer_no_show_fee_fen: quote.total.share(terms.customer_no_show_fee)?.0,
        offer_ttl_minutes: terms.offer_ttl.0,
        early_check_in_minutes: terms.early_check_in.0,
        check_in_radius_m: terms.check_in_radius_m,
        no_show_grace_minutes: terms.no_show_grace.0,
        review_window_minutes: terms.review_window.0,
        max_workers: terms.max_workers,
        quoted_at: Some(timestamp(now)),
    })
}
