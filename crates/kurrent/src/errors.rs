//! How the client's errors become [`StoreError`]s.

use daojia_store::{CurrentRevision, ExpectedRevision, Revision, StoreError};

/// gRPC status codes the client hands back unmapped (`Error::Grpc`), by number.
mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const NOT_FOUND: i32 = 5;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const ABORTED: i32 = 10;
    pub const OUT_OF_RANGE: i32 = 11;
    pub const UNAVAILABLE: i32 = 14;
}

/// What the failed operation was about, for the error's fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Op<'a> {
    pub stream: &'a str,
    pub expected: Option<ExpectedRevision>,
}

impl<'a> Op<'a> {
    pub fn on(stream: &'a str) -> Self {
        Op {
            stream,
            expected: None,
        }
    }

    pub fn expecting(stream: &'a str, expected: ExpectedRevision) -> Self {
        Op {
            stream,
            expected: Some(expected),
        }
    }
}

/// Maps a client error to the store error it means.
pub(crate) fn map(op: Op<'_>, e: kurrentdb::Error) -> StoreError {
    use kurrentdb::Error as E;
    let stream = || op.stream.to_string();
    match e {
        E::WrongExpectedVersion { expected, current } => StoreError::WrongExpectedVersion {
            stream: stream(),
            expected: op.expected.unwrap_or(match expected {
                kurrentdb::StreamState::Any => ExpectedRevision::Any,
                kurrentdb::StreamState::NoStream => ExpectedRevision::NoStream,
                kurrentdb::StreamState::StreamExists => ExpectedRevision::StreamExists,
                kurrentdb::StreamState::StreamRevision(r) => ExpectedRevision::Exact(Revision(r)),
            }),
            actual: match current {
                kurrentdb::CurrentRevision::Current(r) => CurrentRevision::Current(Revision(r)),
                kurrentdb::CurrentRevision::NoStream => CurrentRevision::NoStream,
            },
        },
        E::ResourceDeleted => StoreError::StreamDeleted { stream: stream() },
        E::ResourceNotFound => StoreError::StreamNotFound { stream: stream() },
        E::Grpc { code, message } => {
            let code = i32::from(code);
            match code {
                code::FAILED_PRECONDITION if message.contains("WrongExpectedVersion") => {
                    match (op.expected, actual_version_in(&message)) {
                        (Some(expected), Some(actual)) => StoreError::WrongExpectedVersion {
                            stream: stream(),
                            expected,
                            actual,
                        },
                        _ => StoreError::Internal(format!(
                            "unreadable wrong-expected-version answer: {message}"
                        )),
                    }
                }
                code::INVALID_ARGUMENT | code::OUT_OF_RANGE => StoreError::InvalidArgument(message),
                code::NOT_FOUND => StoreError::StreamNotFound { stream: stream() },
                code::UNAVAILABLE | code::ABORTED | code::RESOURCE_EXHAUSTED => {
                    StoreError::Unavailable(message)
                }
                _ => StoreError::Internal(format!("KurrentDB answered code {code}: {message}")),
            }
        }
        e @ (E::ServerError(_)
        | E::NotLeaderException(_)
        | E::ConnectionClosed
        | E::GrpcConnectionError(_)
        | E::DeadlineExceeded
        | E::AccessDenied
        | E::InitializationError(_)) => StoreError::Unavailable(e.to_string()),
        e => StoreError::Internal(e.to_string()),
    }
}

/// The actual version in a delete's or tombstone's wrong-expected-version message ("…, Actual
/// version: 4"); -1 means the stream has no events.
fn actual_version_in(message: &str) -> Option<CurrentRevision> {
    let (_, rest) = message.split_once("Actual version: ")?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    let n: i64 = digits.parse().ok()?;
    Some(match u64::try_from(n) {
        Ok(r) => CurrentRevision::Current(Revision(r)),
        Err(_) => CurrentRevision::NoStream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actual_version_is_read_from_a_delete_message() {
        let m = "Delete failed due to WrongExpectedVersion. Stream: order-1, Expected version: 3, \
                 Actual version: 7";
        assert_eq!(
            actual_version_in(m),
            Some(CurrentRevision::Current(Revision(7)))
        );
        let m = "… Expected version: 0, Actual version: -1";
        assert_eq!(actual_version_in(m), Some(CurrentRevision::NoStream));
        assert_eq!(actual_version_in("nothing here"), None);
    }

    #[test]
    fn client_errors_map_to_the_precise_store_error() {
        let op = Op::expecting("s", ExpectedRevision::Exact(Revision(1)));
        let e = map(
            op,
            kurrentdb::Error::WrongExpectedVersion {
                expected: kurrentdb::StreamState::StreamRevision(1),
                current: kurrentdb::CurrentRevision::Current(4),
            },
        );
        assert!(
            matches!(
                e,
                StoreError::WrongExpectedVersion {
                    ref stream,
                    expected: ExpectedRevision::Exact(Revision(1)),
                    actual: CurrentRevision::Current(Revision(4)),
                } if stream == "s"
            ),
            "{e:?}"
        );
        assert!(matches!(
            map(op, kurrentdb::Error::ResourceDeleted),
            StoreError::StreamDeleted { .. }
        ));
        assert!(matches!(
            map(op, kurrentdb::Error::ResourceNotFound),
            StoreError::StreamNotFound { .. }
        ));
        assert!(matches!(
            map(op, kurrentdb::Error::ConnectionClosed),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map(op, kurrentdb::Error::DeadlineExceeded),
            StoreError::Unavailable(_)
        ));
    }
}
