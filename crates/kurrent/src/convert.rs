//! Conversions between `daojia_store` values and the client's.

use daojia_store::{
    AllStart, ContentType, Direction, EventId, ExpectedRevision, Filter, FilterSpec, FilterTarget,
    Position, ProposedEvent, RecordedEvent, Revision, StoreError,
};
use kurrentdb::{EventData, StreamPosition, StreamState, SubscriptionFilter};

/// 100 ns ticks per second.
const TICKS_PER_SECOND: i64 = 10_000_000;

pub(crate) fn stream_state(expected: ExpectedRevision) -> StreamState {
    match expected {
        ExpectedRevision::Any => StreamState::Any,
        ExpectedRevision::NoStream => StreamState::NoStream,
        ExpectedRevision::StreamExists => StreamState::StreamExists,
        ExpectedRevision::Exact(r) => StreamState::StreamRevision(r.0),
    }
}

/// A `$all` position as the client wants it (commit = prepare for ordinary writes).
pub(crate) fn all_position(p: Position) -> kurrentdb::Position {
    kurrentdb::Position {
        commit: p.0,
        prepare: p.0,
    }
}

/// Where a `$all` read starts.
pub(crate) fn all_start(
    direction: Direction,
    start: AllStart,
) -> StreamPosition<kurrentdb::Position> {
    match (start, direction) {
        (AllStart::Edge, Direction::Forwards) => StreamPosition::Start,
        (AllStart::Edge, Direction::Backwards) => StreamPosition::End,
        (AllStart::Position(p), _) => StreamPosition::Position(all_position(p)),
    }
}

/// An event to append. JSON data must be valid JSON: it is sent as `application/json`.
pub(crate) fn event_data(event: ProposedEvent) -> Result<EventData, StoreError> {
    let ProposedEvent {
        id,
        event_type,
        content_type,
        data,
        metadata,
    } = event;
    let base = match content_type {
        ContentType::Binary => EventData::binary(&event_type, data),
        ContentType::Json => {
            let invalid =
                |why: String| StoreError::InvalidArgument(format!("event {id} data: {why}"));
            let text = String::from_utf8(data.to_vec())
                .map_err(|_| invalid("JSON data is not UTF-8".into()))?;
            // Sent verbatim: a raw value serialises to exactly its text.
            let raw = serde_json::value::RawValue::from_string(text)
                .map_err(|e| invalid(format!("not valid JSON: {e}")))?;
            EventData::json(&event_type, &raw).map_err(|e| invalid(e.to_string()))?
        }
    };
    Ok(base.id(uuid::Uuid::from_bytes(id.0)).metadata(metadata))
}

/// An event as read.
pub(crate) fn recorded(event: &kurrentdb::RecordedEvent) -> RecordedEvent {
    // The client rounds `created` to the second; the property keeps the server's ticks.
    let created_ticks = event
        .metadata
        .get("created")
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or_else(|| {
            event.created.timestamp() * TICKS_PER_SECOND
                + i64::from(event.created.timestamp_subsec_nanos() / 100)
        });
    RecordedEvent::new(
        event.stream_id(),
        Revision(event.revision),
        Position(event.position.commit),
        EventId(*event.id.as_bytes()),
        &event.event_type,
        if event.is_json {
            ContentType::Json
        } else {
            ContentType::Binary
        },
        created_ticks,
        &event.custom_metadata,
        &event.data,
    )
}

/// A `$all` filter for the server.
pub(crate) fn filter(filter: &Filter) -> SubscriptionFilter {
    let base = match filter.target() {
        FilterTarget::StreamName => SubscriptionFilter::on_stream_name(),
        FilterTarget::EventType => SubscriptionFilter::on_event_type(),
    };
    match filter.spec() {
        FilterSpec::Prefixes(prefixes) => prefixes.iter().fold(base, |f, p| f.add_prefix(p)),
        FilterSpec::Regex(pattern) => base.regex(pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_data_goes_out_byte_for_byte_and_invalid_json_is_refused() {
        let e = ProposedEvent::json(
            EventId::from_u128(7),
            "OrderPosted",
            &b"{\"b\":1, \"a\":2}"[..],
        );
        assert!(event_data(e).is_ok());
        let bad = ProposedEvent::json(EventId::from_u128(7), "OrderPosted", &b"{nope"[..]);
        assert!(matches!(
            event_data(bad),
            Err(StoreError::InvalidArgument(_))
        ));
        let bin = ProposedEvent {
            content_type: ContentType::Binary,
            ..ProposedEvent::json(EventId::from_u128(8), "Blob", &b"\xff\x00"[..])
        };
        assert!(event_data(bin).is_ok());
    }

    #[test]
    fn reads_start_at_the_edge_the_direction_implies() {
        assert_eq!(
            all_start(Direction::Forwards, AllStart::Edge),
            StreamPosition::Start
        );
        assert_eq!(
            all_start(Direction::Backwards, AllStart::Edge),
            StreamPosition::End
        );
        assert_eq!(
            all_start(Direction::Backwards, AllStart::Position(Position(42))),
            StreamPosition::Position(kurrentdb::Position {
                commit: 42,
                prepare: 42
            })
        );
    }
}
