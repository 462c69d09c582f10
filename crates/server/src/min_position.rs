//! `min_position` of queries (DESIGN.md section 5): a query answers only once the store has
//! committed the event at that position, so a client that passes a command's commit position
//! reads its own write. The wait is bounded; past it the query answers UNAVAILABLE
//! (`POSITION_NOT_REACHED`) and the client retries.

use std::time::Duration;

use daojia_store::{EventStore, Position};

use crate::status::ApiError;

/// The longest a query waits for its `min_position`.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// How often the committed end is checked while waiting.
const POLL: Duration = Duration::from_millis(5);

/// Returns once the event at `min_position` is committed (at once for 0).
pub async fn wait_for<S: EventStore>(store: &S, min_position: u64) -> Result<(), ApiError> {
    if min_position == 0 {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    loop {
        let head = store.head().await?;
        if head.0 > min_position {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::PositionNotReached {
                min_position: Position(min_position),
                head,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
