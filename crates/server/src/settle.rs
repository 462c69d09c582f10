//! Driving a simulated server: `Admin.SetClock` moves a manual clock forward, and
//! `Admin.WaitSettled` waits until the background tasks have caught up with the log and the
//! clock, so that a simulation's next step starts from a state that depends only on its
//! earlier steps, not on how fast the tasks ran.
//!
//! Settled means: the reactor has reacted to the last committed event, the dispatcher has
//! fully handled it (offers included) and has passed over the open orders at the clock's
//! current reading, and no event was appended meanwhile. Both tasks publish their progress only
//! after the appends an event caused, so once they have reached the last event, re-reading the
//! last event tells whether anything new came in.

use std::time::Duration;

use daojia_domain::Timestamp;
use daojia_store::{AllStart, Direction, EventStore, Position};

use crate::clock::Clock;
use crate::order_view::timestamp;
use crate::pb;
use crate::progress::Progress;
use crate::status::ApiError;

/// The default and the longest wait of `WaitSettled`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// The longest wait a caller may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// Moves a manual `clock` to `to`.
pub fn set_clock(clock: &Clock, to: Option<&pb::Timestamp>) -> Result<pb::ClockReply, ApiError> {
    let Some(to) = to else {
        return Err(ApiError::invalid_field("now", "is required"));
    };
    let millis = to
        .seconds
        .checked_mul(1_000)
        .and_then(|ms| ms.checked_add(i64::from(to.nanos / 1_000_000)))
        .filter(|_| (0..1_000_000_000).contains(&to.nanos))
        .ok_or_else(|| ApiError::invalid_field("now", "is not a valid timestamp"))?;
    let to = Timestamp(millis);
    if !clock.is_manual() {
        return Err(ApiError::Precondition {
            reason: "CLOCK_NOT_SIMULATED",
            message: "this server runs on the system clock; start it with \
                      `daojia serve --simulated-clock START` to drive time"
                .into(),
        });
    }
    let now = clock.now();
    if to < now {
        return Err(ApiError::Precondition {
            reason: "CLOCK_BACKWARDS",
            message: format!("the clock reads {now}; it cannot go back to {to}"),
        });
    }
    clock.set(to);
    Ok(pb::ClockReply {
        now: Some(timestamp(to)),
    })
}

/// The position of the last committed event, if any.
async fn last_position<S: EventStore>(store: &S) -> Result<Option<Position>, ApiError> {
    let last = store
        .read_all(Direction::Backwards, AllStart::Edge, 1, None)
        .await?;
    Ok(last.events.first().map(|e| e.position))
}

/// Waits (at most `timeout`, 0 for the default) until the server has settled.
pub async fn wait_settled<S: EventStore>(
    store: &S,
    clock: &Clock,
    progress: &Progress,
    timeout_ms: u32,
) -> Result<pb::SettledReply, ApiError> {
    let timeout = match timeout_ms {
        0 => DEFAULT_WAIT,
        ms => Duration::from_millis(u64::from(ms)).min(MAX_WAIT),
    };
    let settle = async {
        loop {
            let last = last_position(store).await?;
            let now = clock.now();
            if let (Some(reactor), Some(last)) = (progress.reactor.get(), last) {
                let mut reactor = reactor.clone();
                reactor
                    .wait_for(|p| p.is_some_and(|p| p >= last))
                    .await
                    .map_err(|_| ApiError::StoreOpening)?;
            }
            if let Some(dispatcher) = progress.dispatcher.get() {
                let mut dispatcher = dispatcher.clone();
                dispatcher
                    .wait_for(|d| {
                        last.is_none_or(|last| d.position.is_some_and(|p| p >= last))
                            && d.settled_at.is_some_and(|t| t >= now)
                    })
                    .await
                    .map_err(|_| ApiError::StoreOpening)?;
            }
            if last_position(store).await? == last {
                return Ok(pb::SettledReply {
                    last_position: last.map_or(0, |p| p.0),
                    now: Some(timestamp(now)),
                });
            }
        }
    };
    tokio::time::timeout(timeout, settle).await.map_err(|_| {
        ApiError::DeadlineExceeded(format!(
            "the server did not settle within {} ms",
            timeout.as_millis()
        ))
    })?
}
