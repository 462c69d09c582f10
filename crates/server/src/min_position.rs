//! `min_position` of queries (DESIGN.md section 5): "answer after every event up to and
//! including this commit position". A client passes a command reply's `commit_position` to
//! read its own write, or `Meta.ServerInfo.head_position` (the committed end) to read
//! everything committed so far.
//!
//! Positions are checked against the store's committed end (`head`, exclusive: every committed
//! event's position is below it):
//!
//! - `min_position <= head`: every event at or below it that will ever exist below `head` is
//!   already committed, so the position is reached; a query on the read models then waits
//!   (bounded) only for the read models to apply the committed events up to it;
//! - `min_position > head`: no command reply or server info ever handed out that position, so
//!   waiting would not help. The query answers FAILED_PRECONDITION `POSITION_BEYOND_HEAD` at
//!   once, with the head in the message and the ErrorInfo metadata, instead of inviting the
//!   client to retry forever.

use daojia_store::{EventStore, Position};

use crate::status::ApiError;

/// Checks that `min_position` is at most the committed end (at once for 0); FAILED_PRECONDITION
/// `POSITION_BEYOND_HEAD` otherwise. Returns the committed end.
pub async fn check<S: EventStore>(store: &S, min_position: u64) -> Result<Position, ApiError> {
    let head = store.head().await?;
    if min_position > head.0 {
        return Err(ApiError::PositionBeyondHead {
            min_position: Position(min_position),
            head,
        });
    }
    Ok(head)
}

/// The position the read models must have applied so that an answer includes every event at
/// or below `min_position`, given `last`, the position of the newest committed event
/// (`Position::START` for an empty store). `min_position` is at most the committed end (see
/// [`check`]); when it lies past the newest event (the committed end itself, for example),
/// every committed event is enough.
pub fn read_model_target(min_position: u64, last: Position) -> Position {
    Position(min_position.min(last.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_needs_only_the_newest_event_and_a_commit_position_itself() {
        // Events at 0, 40 and 90; the committed end is 130.
        let last = Position(90);
        assert_eq!(read_model_target(130, last), Position(90));
        assert_eq!(read_model_target(90, last), Position(90));
        assert_eq!(read_model_target(40, last), Position(40));
        assert_eq!(read_model_target(7, Position::START), Position::START);
    }
}
