//! How the EventStoreDB protocol reports failures: gRPC statuses with `exception` trailers for
//! unary and streaming calls, and `google.rpc.Status` values inside BatchAppend responses.
//!
//! This is a second error mapping next to `crate::status` on purpose: the official clients of
//! this protocol decode these exact codes, messages and trailers, not daojia.v1's details.

use std::sync::atomic::{AtomicU64, Ordering};

use daojia_store::{CurrentRevision, ExpectedRevision, StoreError};
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use super::convert::{current_version_number, expected_version_number, stream_identifier};
use super::proto::event_store::client as shared;
use super::proto::google::rpc;

/// Most bytes (data, metadata and types) one append may carry.
pub const MAX_APPEND_BYTES: usize = 16 << 20;

fn with_trailers(code: Code, message: String, trailers: &[(&'static str, String)]) -> Status {
    let mut map = MetadataMap::new();
    for (key, value) in trailers {
        // Values are ASCII numbers, names and stream names; a stream name that is not a valid
        // header value is left out rather than failing the error itself.
        if let Ok(v) = MetadataValue::try_from(value.as_str()) {
            map.insert(*key, v);
        }
    }
    Status::with_metadata(code, message, map)
}

/// INVALID_ARGUMENT with a message.
pub fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}

/// A proposed event without its `type` or `content-type`.
pub fn missing_metadata() -> Status {
    with_trailers(
        Code::InvalidArgument,
        "Required metadata properties are missing: type, content-type".into(),
        &[
            ("exception", "missing-required-metadata-property".into()),
            ("required-properties", "type, content-type".into()),
        ],
    )
}

/// The caller's role may not do this.
pub fn access_denied(action: &str) -> Status {
    with_trailers(
        Code::PermissionDenied,
        format!("Access denied: this role may not {action}"),
        &[("exception", "access-denied".into())],
    )
}

/// The stream is tombstoned.
pub fn stream_deleted(stream: &str) -> Status {
    with_trailers(
        Code::FailedPrecondition,
        format!("Event stream '{stream}' is deleted."),
        &[
            ("exception", "stream-deleted".into()),
            ("stream-name", stream.to_string()),
        ],
    )
}

/// A delete or tombstone whose expectation failed.
pub fn delete_wrong_expected(
    stream: &str,
    expected: ExpectedRevision,
    actual: CurrentRevision,
) -> Status {
    let expected = expected_version_number(expected);
    let actual = current_version_number(actual);
    with_trailers(
        Code::FailedPrecondition,
        format!(
            "Delete failed due to WrongExpectedVersion. Stream: {stream}, Expected version: {expected}, Actual version: {actual}"
        ),
        &[
            ("exception", "wrong-expected-version".into()),
            ("stream-name", stream.to_string()),
            ("expected-version", expected.to_string()),
            ("actual-version", actual.to_string()),
        ],
    )
}

/// An append over [`MAX_APPEND_BYTES`].
pub fn append_too_large() -> Status {
    with_trailers(
        Code::InvalidArgument,
        format!("Maximum Append Size of {MAX_APPEND_BYTES} Exceeded."),
        &[
            ("exception", "maximum-append-size-exceeded".into()),
            ("maximum-append-size", MAX_APPEND_BYTES.to_string()),
        ],
    )
}

/// The status of a store failure in a unary or streaming call (wrong expected versions of
/// appends are answered in the response instead, and of deletes by [`delete_wrong_expected`]).
pub fn from_store(error: StoreError) -> Status {
    match error {
        StoreError::StreamDeleted { stream } => stream_deleted(&stream),
        StoreError::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => delete_wrong_expected(&stream, expected, actual),
        StoreError::StreamNotFound { stream } => with_trailers(
            Code::NotFound,
            format!("Event stream '{stream}' is not found."),
            &[
                ("exception", "stream-not-found".into()),
                ("stream-name", stream),
            ],
        ),
        StoreError::InvalidArgument(message) => invalid(message),
        StoreError::Unavailable(message) => {
            tracing::warn!(%message, "EventStoreDB request refused: store unavailable");
            Status::unavailable("Server Is Not Ready")
        }
        other => internal(&other),
    }
}

/// INTERNAL, logged with an incident number that the message repeats (the cause is not echoed).
pub fn internal(error: &dyn std::fmt::Display) -> Status {
    static INCIDENTS: AtomicU64 = AtomicU64::new(1);
    let incident = INCIDENTS.fetch_add(1, Ordering::Relaxed);
    tracing::error!(incident, %error, "EventStoreDB request failed");
    Status::internal(format!("internal error (incident {incident})"))
}

fn packed(code: Code, message: &str, type_name: &str, detail: Vec<u8>) -> rpc::Status {
    rpc::Status {
        code: code as i32,
        message: message.to_string(),
        details: Some(prost_types::Any {
            type_url: format!("type.googleapis.com/event_store.client.{type_name}"),
            value: detail,
        }),
    }
}

/// The `error` of a BatchAppend response for a store failure.
pub fn batch_error(error: StoreError) -> rpc::Status {
    match error {
        StoreError::WrongExpectedVersion {
            expected, actual, ..
        } => {
            use shared::wrong_expected_version::{
                CurrentStreamRevisionOption as Current, ExpectedStreamPositionOption as Expected,
            };
            let detail = shared::WrongExpectedVersion {
                current_stream_revision_option: Some(match actual {
                    CurrentRevision::Current(r) => Current::CurrentStreamRevision(r.0),
                    CurrentRevision::NoStream => Current::CurrentNoStream(()),
                }),
                expected_stream_position_option: Some(match expected {
                    ExpectedRevision::Exact(r) => Expected::ExpectedStreamPosition(r.0),
                    ExpectedRevision::Any => Expected::ExpectedAny(()),
                    ExpectedRevision::StreamExists => Expected::ExpectedStreamExists(()),
                    ExpectedRevision::NoStream => Expected::ExpectedNoStream(()),
                }),
            };
            packed(
                Code::AlreadyExists,
                "WrongExpectedVersion",
                "WrongExpectedVersion",
                detail.encode_to_vec(),
            )
        }
        StoreError::StreamDeleted { stream } => packed(
            Code::NotFound,
            "StreamDeleted",
            "StreamDeleted",
            shared::StreamDeleted {
                stream_identifier: Some(stream_identifier(&stream)),
            }
            .encode_to_vec(),
        ),
        StoreError::InvalidArgument(message) => packed(
            Code::InvalidArgument,
            &message,
            "BadRequest",
            shared::BadRequest {
                message: message.clone(),
            }
            .encode_to_vec(),
        ),
        StoreError::Unavailable(message) => {
            tracing::warn!(%message, "EventStoreDB batch refused: store unavailable");
            packed(
                Code::Unavailable,
                "Server Is Not Ready",
                "Unknown",
                shared::Unknown {}.encode_to_vec(),
            )
        }
        other => {
            let status = internal(&other);
            packed(
                Code::Internal,
                status.message(),
                "Unknown",
                shared::Unknown {}.encode_to_vec(),
            )
        }
    }
}

/// A BatchAppend error for a request-level problem (bad input, size, access).
pub fn batch_status(status: &Status) -> rpc::Status {
    let (type_name, detail) = match status.code() {
        Code::PermissionDenied => ("AccessDenied", shared::AccessDenied {}.encode_to_vec()),
        Code::DeadlineExceeded => ("Timeout", shared::Timeout {}.encode_to_vec()),
        Code::InvalidArgument
            if status
                .metadata()
                .get("exception")
                .is_some_and(|v| v == "maximum-append-size-exceeded") =>
        {
            (
                "MaximumAppendSizeExceeded",
                shared::MaximumAppendSizeExceeded {
                    max_append_size: MAX_APPEND_BYTES as u32,
                }
                .encode_to_vec(),
            )
        }
        _ => (
            "BadRequest",
            shared::BadRequest {
                message: status.message().to_string(),
            }
            .encode_to_vec(),
        ),
    };
    packed(status.code(), status.message(), type_name, detail)
}
