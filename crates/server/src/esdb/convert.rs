//! Conversions between the EventStoreDB wire types and the store's types.

use bytes::Bytes;
use daojia_store::{
    ContentType, CurrentRevision, EventId, ExpectedRevision, Position, ProposedEvent,
    RecordedEvent, Revision,
};
use tonic::Status;

use super::errors::invalid;
use super::proto::event_store::client::streams::read_resp;
use super::proto::event_store::client::{self as shared, uuid};

/// Metadata keys of proposed and recorded events.
pub const TYPE_KEY: &str = "type";
/// See [`TYPE_KEY`].
pub const CONTENT_TYPE_KEY: &str = "content-type";
/// See [`TYPE_KEY`].
pub const CREATED_KEY: &str = "created";
/// The content types the protocol knows.
pub const JSON: &str = "application/json";
/// See [`JSON`].
pub const OCTET_STREAM: &str = "application/octet-stream";

/// How a reader wants event ids encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UuidFormat {
    /// Two big-endian signed 64-bit halves (what the Rust client asks for by default).
    Structured,
    /// The hyphenated lower-case text form (Python clients).
    String,
}

/// An event id from either encoding.
pub fn event_id(id: Option<&shared::Uuid>, field: &str) -> Result<EventId, Status> {
    match id.and_then(|u| u.value.as_ref()) {
        Some(uuid::Value::Structured(s)) => {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&s.most_significant_bits.to_be_bytes());
            bytes[8..].copy_from_slice(&s.least_significant_bits.to_be_bytes());
            Ok(EventId(bytes))
        }
        Some(uuid::Value::String(text)) => parse_uuid(text)
            .map(EventId)
            .ok_or_else(|| invalid(format!("{field} {text:?} is not a UUID"))),
        None => Err(invalid(format!("{field} is missing"))),
    }
}

/// Parses the 36-character hyphenated form (or 32 bare hex digits), case-insensitively.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let digits: Vec<u8> = match text.len() {
        36 => {
            let b = text.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                return None;
            }
            b.iter().copied().filter(|&c| c != b'-').collect()
        }
        32 => text.as_bytes().to_vec(),
        _ => return None,
    };
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// An event id on the wire.
pub fn wire_uuid(id: EventId, format: UuidFormat) -> shared::Uuid {
    let value = match format {
        UuidFormat::String => uuid::Value::String(id.to_string()),
        UuidFormat::Structured => {
            let (hi, lo) = id.0.split_at(8);
            uuid::Value::Structured(uuid::Structured {
                most_significant_bits: i64::from_be_bytes(hi.try_into().unwrap_or_default()),
                least_significant_bits: i64::from_be_bytes(lo.try_into().unwrap_or_default()),
            })
        }
    };
    shared::Uuid { value: Some(value) }
}

/// A stream name from its identifier.
pub fn stream_name(id: Option<&shared::StreamIdentifier>) -> Result<String, Status> {
    let id = id.ok_or_else(|| invalid("stream_identifier is missing"))?;
    let name = std::str::from_utf8(&id.stream_name)
        .map_err(|_| invalid("stream_identifier.stream_name is not UTF-8"))?;
    if name.is_empty() {
        return Err(invalid("stream_identifier.stream_name is empty"));
    }
    Ok(name.to_string())
}

/// A stream identifier for a name.
pub fn stream_identifier(name: &str) -> shared::StreamIdentifier {
    shared::StreamIdentifier {
        stream_name: Bytes::copy_from_slice(name.as_bytes()),
    }
}

/// One proposed event from its wire parts; `type` and `content-type` are required.
pub fn proposed_event(
    id: Option<&shared::Uuid>,
    metadata: &std::collections::HashMap<String, String>,
    custom_metadata: Bytes,
    data: Bytes,
) -> Result<ProposedEvent, Status> {
    let id = event_id(id, "proposed_message.id")?;
    let (Some(event_type), Some(content_type)) =
        (metadata.get(TYPE_KEY), metadata.get(CONTENT_TYPE_KEY))
    else {
        return Err(super::errors::missing_metadata());
    };
    let content_type = match content_type.as_str() {
        JSON => ContentType::Json,
        OCTET_STREAM => ContentType::Binary,
        other => {
            return Err(invalid(format!(
                "content-type {other:?} is neither {JSON} nor {OCTET_STREAM}"
            )));
        }
    };
    Ok(ProposedEvent {
        id,
        event_type: event_type.clone(),
        content_type,
        data,
        metadata: custom_metadata,
    })
}

/// The wire form of the store's current revision: a revision, or `None` for no stream.
pub fn current(revision: CurrentRevision) -> Option<u64> {
    match revision {
        CurrentRevision::Current(Revision(r)) => Some(r),
        CurrentRevision::NoStream => None,
    }
}

/// The number EventStoreDB writes for an expectation in error messages and trailers.
pub fn expected_version_number(expected: ExpectedRevision) -> i64 {
    match expected {
        ExpectedRevision::Any => -2,
        ExpectedRevision::NoStream => -1,
        ExpectedRevision::StreamExists => -4,
        ExpectedRevision::Exact(Revision(r)) => i64::try_from(r).unwrap_or(i64::MAX),
    }
}

/// The number EventStoreDB writes for a stream's current revision (-1: no stream).
pub fn current_version_number(current: CurrentRevision) -> i64 {
    match current {
        CurrentRevision::NoStream => -1,
        CurrentRevision::Current(Revision(r)) => i64::try_from(r).unwrap_or(i64::MAX),
    }
}

/// A recorded event as a read response.
pub fn read_event(event: &RecordedEvent, format: UuidFormat) -> read_resp::ReadEvent {
    let position = event.position.0;
    let mut metadata = std::collections::HashMap::with_capacity(3);
    metadata.insert(TYPE_KEY.to_string(), event.event_type().to_string());
    metadata.insert(
        CONTENT_TYPE_KEY.to_string(),
        match event.content_type {
            ContentType::Json => JSON,
            ContentType::Binary => OCTET_STREAM,
        }
        .to_string(),
    );
    metadata.insert(CREATED_KEY.to_string(), event.created_ticks.to_string());
    read_resp::ReadEvent {
        event: Some(read_resp::read_event::RecordedEvent {
            id: Some(wire_uuid(event.id, format)),
            stream_identifier: Some(shared::StreamIdentifier {
                stream_name: event.stream_bytes(),
            }),
            stream_revision: event.revision.0,
            prepare_position: position,
            commit_position: position,
            metadata,
            custom_metadata: event.metadata(),
            data: event.data(),
        }),
        link: None,
        position: Some(read_resp::read_event::Position::CommitPosition(position)),
    }
}

/// The wire position of a filtered subscription's checkpoint.
///
/// The store's checkpoint says "every event below `p` has been considered", and `p` may be the
/// position of the next, unconsidered event. Clients resume *after* a checkpoint, so the wire
/// carries `p - 1`, which no event has (records are longer than one byte): resuming after it
/// starts exactly at `p`.
pub fn checkpoint_position(p: Position) -> u64 {
    p.0.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_uuid_encodings_round_trip_to_the_same_id() {
        let id = EventId(*b"\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10");
        for format in [UuidFormat::String, UuidFormat::Structured] {
            let wire = wire_uuid(id, format);
            assert_eq!(event_id(Some(&wire), "id").unwrap(), id, "{format:?}");
        }
        let text = wire_uuid(id, UuidFormat::String);
        assert_eq!(
            text.value,
            Some(uuid::Value::String(
                "01234567-89ab-cdef-fedc-ba9876543210".into()
            ))
        );
        // The high bit set makes the halves negative as signed integers; that is the encoding.
        let Some(uuid::Value::Structured(s)) = wire_uuid(id, UuidFormat::Structured).value else {
            panic!("structured expected");
        };
        assert_eq!(s.most_significant_bits, 0x0123_4567_89ab_cdef);
        assert_eq!(s.least_significant_bits, 0xfedc_ba98_7654_3210_u64 as i64);
    }

    #[test]
    fn malformed_uuids_are_refused() {
        for bad in [
            "",
            "01234567-89ab-cdef-fedc-ba987654321",
            "0123456789ab-cdef-fedc-ba98765432100",
            "g1234567-89ab-cdef-fedc-ba9876543210",
            "01234567+89ab-cdef-fedc-ba9876543210",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad:?}");
        }
        assert!(parse_uuid("0123456789ABCDEFFEDCBA9876543210").is_some());
        assert!(event_id(None, "id").is_err());
    }

    #[test]
    fn versions_use_the_event_store_numbers() {
        assert_eq!(expected_version_number(ExpectedRevision::Any), -2);
        assert_eq!(expected_version_number(ExpectedRevision::NoStream), -1);
        assert_eq!(expected_version_number(ExpectedRevision::StreamExists), -4);
        assert_eq!(
            expected_version_number(ExpectedRevision::Exact(Revision(7))),
            7
        );
        assert_eq!(current_version_number(CurrentRevision::NoStream), -1);
    }
}
