//! The order as the API shows it: `pb::Order` from the aggregate state folded from the order's
//! own stream (the command path and `GetOrder` both read the stream, so the view is always
//! consistent with the commit position they answer).

use daojia_domain::order::Order;
use daojia_domain::{OrderPhase, Quote, Timestamp};

use crate::pb;

/// A domain instant as a protobuf timestamp.
pub fn timestamp(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.0.div_euclid(1_000),
        // rem_euclid(1000) < 1000, so the nanos are below 1e9 and fit an i32.
        nanos: i32::try_from(t.0.rem_euclid(1_000) * 1_000_000).unwrap_or(0),
    }
}

impl From<OrderPhase> for pb::OrderPhase {
    fn from(phase: OrderPhase) -> Self {
        match phase {
            OrderPhase::Open => pb::OrderPhase::Open,
            OrderPhase::InService => pb::OrderPhase::InService,
            OrderPhase::Served => pb::OrderPhase::Served,
            OrderPhase::Reviewed => pb::OrderPhase::Reviewed,
            OrderPhase::Cancelled => pb::OrderPhase::Cancelled,
            OrderPhase::CustomerNoShow => pb::OrderPhase::CustomerNoShow,
        }
    }
}

/// A price quote as the API shows it.
pub fn quote_view(quote: &Quote) -> pb::Quote {
    pb::Quote {
        unit: quote.unit.as_str().to_owned(),
        unit_price_fen: quote.unit_price.0,
        quantity: quote.quantity,
        workers: quote.workers,
        total_fen: quote.total.0,
    }
}

/// The view of `order` at stream revision `revision`.
pub fn order_view(order: &Order, revision: u64) -> pb::Order {
    pb::Order {
        order_id: order.id.to_string(),
        customer_id: order.customer.to_string(),
        service_code: order.service.to_string(),
        phase: pb::OrderPhase::from(order.phase).into(),
        quote: Some(quote_view(&order.quote)),
        window_start: Some(timestamp(order.window.start)),
        window_end: Some(timestamp(order.window.end)),
        location: Some(pb::LatLon {
            lat: order.location.lat,
            lon: order.location.lon,
        }),
        slots: order
            .slots
            .iter()
            .map(|(index, slot)| {
                let assignment = slot.assignment.as_ref();
                pb::Slot {
                    index: index.0,
                    worker_id: assignment.map(|a| a.worker.to_string()).unwrap_or_default(),
                    offered_to: slot.offers.iter().map(|o| o.worker.to_string()).collect(),
                    checked_in_at: assignment
                        .and_then(|a| a.checked_in)
                        .map(|(at, _)| timestamp(at)),
                    late_by_minutes: assignment
                        .and_then(|a| a.checked_in)
                        .map_or(0, |(_, late)| late.0),
                    completed_at: assignment
                        .and_then(|a| a.completed)
                        .map(|(at, _)| timestamp(at)),
                }
            })
            .collect(),
        fee_charged_fen: order.fee_charged.0,
        refunded_fen: order.refunded.0,
        served_at: order.served_at.map(timestamp),
        stream_revision: revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_down_to_whole_seconds_with_millis_in_nanos() {
        assert_eq!(
            timestamp(Timestamp(1_500)),
            prost_types::Timestamp {
                seconds: 1,
                nanos: 500_000_000
            }
        );
        assert_eq!(
            timestamp(Timestamp(-1)),
            prost_types::Timestamp {
                seconds: -1,
                nanos: 999_000_000
            }
        );
    }
}
