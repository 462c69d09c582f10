//! Given/when/then tests of the log's input rules and refusals: each test starts from a known
//! history, makes one request that breaks one rule, and checks the exact error and that nothing
//! was appended (same committed end, same `$all`). The read-side rules (`$tb`, `$maxCount`,
//! `$maxAge`) and the directory lock are here too.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use daojia_eventlog::storage::{MemoryStorage, Storage};
use daojia_eventlog::{
    AllStart, Config, CurrentRevision, Direction, Error, EventId, EventLog, ExpectedRevision,
    Filter, FilterTarget, ManualClock, Position, ProposedEvent, RecordedEvent, Revision,
    StreamStart, SubscribeFrom, SubscriptionItem,
};

use ExpectedRevision::{Any, Exact, NoStream, StreamExists};

use crate::support::TempDir;

/// Bytes of a record frame besides its variable fields (12 bytes of framing and a 70-byte
/// payload header).
const FRAME_FIXED: usize = 82;
/// The clock of every test starts here (100 ns ticks since the Unix epoch, early 2024).
const T0: i64 = 17_040_672_000_000_000;

fn config() -> Config {
    Config {
        segment_size: 1 << 20,
        max_batch_bytes: 256 << 10,
        max_event_bytes: 64 << 10,
        ..Config::default()
    }
}

fn ev(id: u128) -> ProposedEvent {
    ProposedEvent::json(
        EventId::from_u128(id),
        "OrderPosted",
        &br#"{"fen":100}"#[..],
    )
}

fn sized(id: u128, data: usize) -> ProposedEvent {
    ProposedEvent::json(EventId::from_u128(id), "OrderPosted", vec![b'x'; data])
}

fn meta(id: u128, json: &str) -> ProposedEvent {
    ProposedEvent::json(
        EventId::from_u128(id),
        "$metadata",
        json.as_bytes().to_vec(),
    )
}

fn frame_len(stream: &str, e: &ProposedEvent) -> usize {
    FRAME_FIXED + stream.len() + e.event_type.len() + e.metadata.len() + e.data.len()
}

/// A log with a known history:
/// - `order-1`: revisions 0 and 1 (ids 1 and 2);
/// - `order-2`: revision 0 (id 3), metadata `{"owner":"ops"}` in `$$order-2`;
/// - `order-gone`: one event (id 4), then tombstoned;
/// - `order-paused`: two events (ids 5 and 6), then soft-deleted.
struct Given {
    log: EventLog,
    clock: Arc<ManualClock>,
}

/// What readers can see: the committed end and every record of `$all`.
#[derive(Debug, PartialEq, Eq)]
struct Visible {
    head: Position,
    all: Vec<(Position, String, Revision, EventId)>,
}

fn given() -> Given {
    given_with(config())
}

fn given_with(config: Config) -> Given {
    let clock = Arc::new(ManualClock::new(T0));
    let log = EventLog::builder_with_storage(Arc::new(MemoryStorage::new()))
        .config(config)
        .clock(clock.clone())
        .open()
        .unwrap();
    log.append("order-1", NoStream, vec![ev(1), ev(2)]).unwrap();
    log.append("order-2", NoStream, vec![ev(3)]).unwrap();
    log.append("$$order-2", NoStream, vec![meta(90, r#"{"owner":"ops"}"#)])
        .unwrap();
    log.append("order-gone", NoStream, vec![ev(4)]).unwrap();
    log.tombstone("order-gone", Exact(Revision(0))).unwrap();
    log.append("order-paused", NoStream, vec![ev(5), ev(6)])
        .unwrap();
    log.delete("order-paused", Exact(Revision(1))).unwrap();
    Given { log, clock }
}

impl Given {
    fn visible(&self) -> Visible {
        let all = self
            .log
            .read_all(Direction::Forwards, AllStart::Edge, usize::MAX, None)
            .unwrap();
        assert!(all.end_of_log);
        Visible {
            head: self.log.head(),
            all: all
                .events
                .iter()
                .map(|e| (e.position, e.stream().to_string(), e.revision, e.id))
                .collect(),
        }
    }

    /// When `request` is made, it is refused and nothing is appended. Returns the error.
    #[track_caller]
    fn refused<T: Debug>(&self, request: impl FnOnce(&EventLog) -> Result<T, Error>) -> Error {
        let before = self.visible();
        let err = request(&self.log).expect_err("the request must be refused");
        assert_eq!(self.visible(), before, "nothing may be appended ({err:?})");
        err
    }

    fn read(&self, stream: &str, direction: Direction, start: StreamStart) -> Vec<u64> {
        revisions(
            &self
                .log
                .read_stream(stream, direction, start, usize::MAX)
                .unwrap(),
        )
    }

    fn all_revisions_of(&self, stream: &str) -> Vec<u64> {
        let all = self
            .log
            .read_all(Direction::Forwards, AllStart::Edge, usize::MAX, None)
            .unwrap();
        all.events
            .iter()
            .filter(|e| e.stream() == stream)
            .map(|e| e.revision.0)
            .collect()
    }
}

fn revisions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.revision.0).collect()
}

#[track_caller]
fn assert_invalid_name(err: Error, shown: &str, reason_mentions: &str) {
    match err {
        Error::InvalidStreamName { stream, reason } => {
            assert_eq!(stream, shown);
            assert!(
                reason.contains(reason_mentions),
                "reason {reason:?} should mention {reason_mentions:?}"
            );
        }
        other => panic!("expected InvalidStreamName, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid_event(err: Error, at: usize, reason_mentions: &str) {
    match err {
        Error::InvalidEvent { index, reason } => {
            assert_eq!(index, at);
            assert!(
                reason.contains(reason_mentions),
                "reason {reason:?} should mention {reason_mentions:?}"
            );
        }
        other => panic!("expected InvalidEvent, got {other:?}"),
    }
}

#[track_caller]
fn assert_wrong_expected(err: Error, on: &str, want: ExpectedRevision, is: CurrentRevision) {
    match err {
        Error::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => assert_eq!((stream.as_str(), expected, actual), (on, want, is)),
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
}

#[track_caller]
fn assert_stream_deleted(err: Error, on: &str) {
    match err {
        Error::StreamDeleted { stream } => assert_eq!(stream, on),
        other => panic!("expected StreamDeleted, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found(err: Error, on: &str) {
    match err {
        Error::StreamNotFound { stream } => assert_eq!(stream, on),
        other => panic!("expected StreamNotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid_argument(err: Error, mentions: &str) {
    match err {
        Error::InvalidArgument(why) => assert!(why.contains(mentions), "{why:?}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// Every request that names a stream refuses `name` the same way.
#[track_caller]
fn assert_name_refused_everywhere(g: &Given, name: &str, shown: &str, reason_mentions: &str) {
    let check = |err| assert_invalid_name(err, shown, reason_mentions);
    check(g.refused(|log| log.append(name, Any, vec![ev(100)])));
    check(g.refused(|log| log.append(name, NoStream, vec![])));
    check(g.refused(|log| log.delete(name, Any)));
    check(g.refused(|log| log.tombstone(name, Any)));
    check(g.refused(|log| log.read_stream(name, Direction::Forwards, StreamStart::Edge, 10)));
    check(g.refused(|log| log.subscribe_stream(name, SubscribeFrom::Start)));
}

// --- stream names ----------------------------------------------------------------------------

#[test]
fn an_empty_stream_name_is_refused() {
    assert_name_refused_everywhere(&given(), "", "", "empty");
}

#[test]
fn a_stream_name_over_the_length_limit_is_refused() {
    let g = given();
    let limit = Config::default().max_stream_name_bytes;
    let long = "o".repeat(limit + 1);
    // The error shows the first 64 bytes of the name.
    assert_name_refused_everywhere(&g, &long, &long[..64], "too long");
    // Multi-byte characters: over the limit in bytes, cut at a character boundary when shown.
    let wide = "家".repeat(limit / 3 + 1);
    assert_name_refused_everywhere(&g, &wide, &"家".repeat(21), "too long");

    let longest = "o".repeat(limit);
    let a = g.log.append(&longest, NoStream, vec![ev(100)]).unwrap();
    assert_eq!(a.first_revision, Revision(0));
}

#[test]
fn a_stream_name_with_control_characters_is_refused() {
    let g = given();
    for name in [
        "order\n1",
        "order\t1",
        "order\u{0}1",
        "\u{7f}",
        "order-\u{85}",
    ] {
        assert_name_refused_everywhere(&g, name, name, "control characters");
    }
}

#[test]
fn dollar_all_is_not_a_stream() {
    assert_name_refused_everywhere(&given(), "$all", "$all", "$all");
}

#[test]
fn a_metadata_stream_must_name_a_stream() {
    let g = given();
    assert_name_refused_everywhere(&g, "$$", "$$", "must name a stream");
    let err = g.refused(|log| log.append("$$", Any, vec![meta(100, "{}")]));
    assert_invalid_name(err, "$$", "must name a stream");
}

#[test]
fn a_metadata_stream_has_no_metadata_stream() {
    let g = given();
    assert_name_refused_everywhere(&g, "$$$$order-1", "$$$$order-1", "no metadata stream");
    let err = g.refused(|log| log.append("$$$$order-1", Any, vec![meta(100, "{}")]));
    assert_invalid_name(err, "$$$$order-1", "no metadata stream");
}

#[test]
fn a_metadata_stream_cannot_be_deleted_or_tombstoned() {
    let g = given();
    let err = g.refused(|log| log.delete("$$order-2", Any));
    assert_invalid_name(err, "$$order-2", "cannot be deleted");
    let err = g.refused(|log| log.tombstone("$$order-2", Any));
    assert_invalid_name(err, "$$order-2", "cannot be deleted");
    // A metadata stream that was never written is refused the same way.
    let err = g.refused(|log| log.delete("$$order-1", NoStream));
    assert_invalid_name(err, "$$order-1", "cannot be deleted");
}

// --- events ----------------------------------------------------------------------------------

#[test]
fn an_empty_event_type_is_refused() {
    let g = given();
    let bad = ProposedEvent::json(EventId::from_u128(101), "", &b"{}"[..]);
    let err = g.refused(|log| log.append("order-1", Any, vec![ev(100), bad, ev(102)]));
    assert_invalid_event(err, 1, "empty");
}

#[test]
fn an_event_type_too_long_or_with_control_characters_is_refused() {
    let g = given();
    let limit = Config::default().max_event_type_bytes;
    let long = ProposedEvent::json(EventId::from_u128(101), "T".repeat(limit + 1), &b"{}"[..]);
    let err = g.refused(|log| log.append("order-1", Any, vec![long]));
    assert_invalid_event(err, 0, "over the limit");
    let ctl = ProposedEvent::json(EventId::from_u128(102), "Order\nPosted", &b"{}"[..]);
    let err = g.refused(|log| log.append("order-1", Any, vec![ev(100), ctl]));
    assert_invalid_event(err, 1, "control characters");

    let longest = ProposedEvent::json(EventId::from_u128(103), "T".repeat(limit), &b"{}"[..]);
    g.log.append("order-1", Any, vec![longest]).unwrap();
}

#[test]
fn an_event_over_max_event_bytes_is_refused() {
    let g = given();
    let limit = config().max_event_bytes;
    // Data and metadata count together.
    let over = sized(101, limit - 10).with_metadata(vec![b'm'; 11]);
    let err = g.refused(|log| log.append("order-1", Any, vec![ev(100), over]));
    match err {
        Error::EventTooLarge {
            index,
            size,
            limit: l,
        } => {
            assert_eq!((index, size, l), (1, limit + 1, limit));
        }
        other => panic!("expected EventTooLarge, got {other:?}"),
    }
    let at_limit = sized(102, limit - 10).with_metadata(vec![b'm'; 10]);
    let a = g.log.append("order-1", Any, vec![at_limit]).unwrap();
    assert_eq!(a.first_revision, Revision(2));
}

#[test]
fn a_batch_over_max_batch_events_is_refused() {
    let g = given_with(Config {
        max_batch_events: 10,
        ..config()
    });
    let batch: Vec<ProposedEvent> = (100..111).map(ev).collect();
    let bytes: usize = batch.iter().map(|e| frame_len("order-1", e)).sum();
    let err = g.refused(|log| log.append("order-1", Any, batch.clone()));
    match err {
        Error::BatchTooLarge {
            events,
            bytes: b,
            max_events,
            max_bytes,
        } => assert_eq!(
            (events, b, max_events, max_bytes),
            (11, bytes, 10, config().max_batch_bytes)
        ),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    g.log.append("order-1", Any, batch[..10].to_vec()).unwrap();
}

#[test]
fn a_batch_over_max_batch_bytes_is_refused() {
    let g = given();
    let max = config().max_batch_bytes;
    let stream = "order-1";
    // Four events that fill the batch limit exactly.
    let budget = max;
    let per_event = budget / 4;
    let mut batch: Vec<ProposedEvent> = (0..4)
        .map(|i| {
            sized(
                100 + i,
                per_event - FRAME_FIXED - stream.len() - "OrderPosted".len(),
            )
        })
        .collect();
    let filler = budget - batch.iter().map(|e| frame_len(stream, e)).sum::<usize>();
    batch[3] = sized(103, batch[3].data.len() + filler);
    let bytes: usize = batch.iter().map(|e| frame_len(stream, e)).sum();
    assert_eq!(bytes, max);

    let mut over = batch.clone();
    over[3] = sized(103, batch[3].data.len() + 1);
    let err = g.refused(|log| log.append(stream, Any, over));
    match err {
        Error::BatchTooLarge {
            events,
            bytes: b,
            max_events,
            max_bytes,
        } => assert_eq!(
            (events, b, max_events, max_bytes),
            (4, bytes + 1, Config::default().max_batch_events, max)
        ),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    let a = g.log.append(stream, Any, batch).unwrap();
    assert_eq!(a.count, 4);
}

#[test]
fn a_metadata_event_must_have_the_metadata_type() {
    let g = given();
    let err = g.refused(|log| log.append("$$order-1", Any, vec![ev(100)]));
    assert_invalid_event(err, 0, "$metadata");
    let err = g.refused(|log| {
        log.append(
            "$$order-1",
            Any,
            vec![meta(100, r#"{"$maxCount":3}"#), ev(101)],
        )
    });
    assert_invalid_event(err, 1, "$metadata");
    assert_eq!(g.log.stream_metadata("order-1"), None);
}

#[test]
fn a_metadata_event_must_be_a_json_object_with_valid_limits() {
    let g = given();
    let cases = [
        ("{", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1,2]", "JSON object"),
        ("\"owner\"", "JSON object"),
        ("3", "JSON object"),
        (r#"{"$maxCount":0}"#, "$maxCount"),
        (r#"{"$maxCount":-1}"#, "$maxCount"),
        (r#"{"$maxCount":"3"}"#, "$maxCount"),
        (r#"{"$maxCount":1.5}"#, "$maxCount"),
        (r#"{"$maxAge":0}"#, "$maxAge"),
        (r#"{"$maxAge":"1h"}"#, "$maxAge"),
        (r#"{"$tb":-1}"#, "$tb"),
        (r#"{"$tb":true}"#, "$tb"),
    ];
    for (json, mentions) in cases {
        let err = g.refused(|log| {
            log.append(
                "$$order-2",
                Any,
                vec![meta(100, r#"{"$maxCount":1}"#), meta(101, json)],
            )
        });
        assert_invalid_event(err, 1, mentions);
    }
    // The metadata in force is still the one written before.
    let m = g.log.stream_metadata("order-2").unwrap();
    assert_eq!((m.max_count, m.raw["owner"].as_str()), (None, Some("ops")));
    // The smallest valid limits are accepted.
    g.log
        .append(
            "$$order-2",
            Any,
            vec![meta(102, r#"{"$maxCount":1,"$maxAge":1,"$tb":0}"#)],
        )
        .unwrap();
}

// --- expectations ----------------------------------------------------------------------------

#[test]
fn no_stream_is_refused_when_the_stream_has_events() {
    let g = given();
    let err = g.refused(|log| log.append("order-1", NoStream, vec![ev(100)]));
    assert_wrong_expected(
        err,
        "order-1",
        NoStream,
        CurrentRevision::Current(Revision(1)),
    );
    let err = g.refused(|log| log.append("order-1", NoStream, vec![]));
    assert_wrong_expected(
        err,
        "order-1",
        NoStream,
        CurrentRevision::Current(Revision(1)),
    );
    let err = g.refused(|log| log.delete("order-1", NoStream));
    assert_wrong_expected(
        err,
        "order-1",
        NoStream,
        CurrentRevision::Current(Revision(1)),
    );
    let err = g.refused(|log| log.tombstone("order-1", NoStream));
    assert_wrong_expected(
        err,
        "order-1",
        NoStream,
        CurrentRevision::Current(Revision(1)),
    );
}

#[test]
fn stream_exists_is_refused_when_the_stream_has_no_events() {
    let g = given();
    let err = g.refused(|log| log.append("order-9", StreamExists, vec![ev(100)]));
    assert_wrong_expected(err, "order-9", StreamExists, CurrentRevision::NoStream);
    let err = g.refused(|log| log.append("order-9", StreamExists, vec![]));
    assert_wrong_expected(err, "order-9", StreamExists, CurrentRevision::NoStream);
    let err = g.refused(|log| log.delete("order-9", StreamExists));
    assert_wrong_expected(err, "order-9", StreamExists, CurrentRevision::NoStream);
    let err = g.refused(|log| log.tombstone("order-9", StreamExists));
    assert_wrong_expected(err, "order-9", StreamExists, CurrentRevision::NoStream);
}

#[test]
fn an_exact_revision_that_is_not_the_last_is_refused() {
    let g = given();
    let current = CurrentRevision::Current(Revision(1));
    for wrong in [
        Exact(Revision(2)),
        Exact(Revision(7)),
        Exact(Revision(u64::MAX)),
    ] {
        let err = g.refused(|log| log.append("order-1", wrong, vec![ev(100)]));
        assert_wrong_expected(err, "order-1", wrong, current);
        let err = g.refused(|log| log.delete("order-1", wrong));
        assert_wrong_expected(err, "order-1", wrong, current);
    }
    // Too low, with new ids: not a retry but a conflict.
    let err = g.refused(|log| log.append("order-1", Exact(Revision(0)), vec![ev(100)]));
    assert_wrong_expected(err, "order-1", Exact(Revision(0)), current);
    let err = g.refused(|log| log.append("order-1", Exact(Revision(0)), vec![]));
    assert_wrong_expected(err, "order-1", Exact(Revision(0)), current);
    let err = g.refused(|log| log.tombstone("order-1", Exact(Revision(0))));
    assert_wrong_expected(err, "order-1", Exact(Revision(0)), current);
    let err = g.refused(|log| log.append("order-9", Exact(Revision(0)), vec![ev(100)]));
    assert_wrong_expected(
        err,
        "order-9",
        Exact(Revision(0)),
        CurrentRevision::NoStream,
    );
}

#[test]
fn a_retry_that_matches_only_part_of_a_batch_is_refused() {
    let g = given();
    let current = CurrentRevision::Current(Revision(1));
    // order-1 holds ids 1, 2 from NoStream: a retry must match from revision 0 on.
    let err = g.refused(|log| log.append("order-1", NoStream, vec![ev(1), ev(100)]));
    assert_wrong_expected(err, "order-1", NoStream, current);
    let err = g.refused(|log| log.append("order-1", NoStream, vec![ev(1), ev(2), ev(100)]));
    assert_wrong_expected(err, "order-1", NoStream, current);
    let err = g.refused(|log| log.append("order-1", NoStream, vec![ev(2)]));
    assert_wrong_expected(err, "order-1", NoStream, current);
    // The whole batch, or a prefix of it, is an idempotent retry that writes nothing.
    let before = g.visible();
    let again = g
        .log
        .append("order-1", NoStream, vec![ev(1), ev(2)])
        .unwrap();
    assert_eq!((again.first_revision, again.count), (Revision(0), 2));
    let prefix = g.log.append("order-1", NoStream, vec![ev(1)]).unwrap();
    assert_eq!((prefix.first_revision, prefix.count), (Revision(0), 1));
    assert_eq!(g.visible(), before);

    // Under Any, the recent-id window applies the same rule.
    let first = g.log.append("order-1", Any, vec![ev(10), ev(11)]).unwrap();
    let current = CurrentRevision::Current(Revision(3));
    let err = g.refused(|log| log.append("order-1", Any, vec![ev(10), ev(100)]));
    assert_wrong_expected(err, "order-1", Any, current);
    let err = g.refused(|log| log.append("order-1", StreamExists, vec![ev(10), ev(12)]));
    assert_wrong_expected(err, "order-1", StreamExists, current);
    let before = g.visible();
    assert_eq!(
        g.log.append("order-1", Any, vec![ev(10), ev(11)]).unwrap(),
        first
    );
    assert_eq!(g.visible(), before);
}

#[test]
fn a_tombstoned_stream_refuses_everything() {
    let g = given();
    for expected in [
        Any,
        NoStream,
        StreamExists,
        Exact(Revision(0)),
        Exact(Revision(1)),
    ] {
        let err = g.refused(|log| log.append("order-gone", expected, vec![ev(100)]));
        assert_stream_deleted(err, "order-gone");
        let err = g.refused(|log| log.append("order-gone", expected, vec![]));
        assert_stream_deleted(err, "order-gone");
        let err = g.refused(|log| log.delete("order-gone", expected));
        assert_stream_deleted(err, "order-gone");
        let err = g.refused(|log| log.tombstone("order-gone", expected));
        assert_stream_deleted(err, "order-gone");
    }
    // Even a retry of the batch written before the tombstone.
    let err = g.refused(|log| log.append("order-gone", NoStream, vec![ev(4)]));
    assert_stream_deleted(err, "order-gone");
    for direction in [Direction::Forwards, Direction::Backwards] {
        let err = g.refused(|log| log.read_stream("order-gone", direction, StreamStart::Edge, 10));
        assert_stream_deleted(err, "order-gone");
    }
    assert_stream_deleted(
        g.log.stream_revision("order-gone").unwrap_err(),
        "order-gone",
    );
}

#[test]
fn a_soft_deleted_stream_is_not_found_and_refuses_stream_exists() {
    let g = given();
    for direction in [Direction::Forwards, Direction::Backwards] {
        let err =
            g.refused(|log| log.read_stream("order-paused", direction, StreamStart::Edge, 10));
        assert_not_found(err, "order-paused");
    }
    let err = g.refused(|log| log.append("order-paused", StreamExists, vec![ev(100)]));
    assert_stream_deleted(err, "order-paused");
    let err = g.refused(|log| log.delete("order-paused", StreamExists));
    assert_stream_deleted(err, "order-paused");
    // Its revisions are kept: the expectation of a write still sees them.
    let err = g.refused(|log| log.append("order-paused", Exact(Revision(0)), vec![ev(100)]));
    assert_wrong_expected(
        err,
        "order-paused",
        Exact(Revision(0)),
        CurrentRevision::Current(Revision(1)),
    );
    // NoStream (or the last revision) reopens it; revisions continue and only new ones show.
    let a = g
        .log
        .append("order-paused", NoStream, vec![ev(100)])
        .unwrap();
    assert_eq!((a.first_revision, a.count), (Revision(2), 1));
    assert_eq!(
        g.read("order-paused", Direction::Forwards, StreamStart::Edge),
        vec![2]
    );
    assert_eq!(g.all_revisions_of("order-paused"), vec![0, 1, 2]);
}

#[test]
fn reading_a_stream_never_written_is_not_found() {
    let g = given();
    for direction in [Direction::Forwards, Direction::Backwards] {
        let err = g.refused(|log| log.read_stream("order-9", direction, StreamStart::Edge, 10));
        assert_not_found(err, "order-9");
    }
    // A metadata stream alone does not make its stream exist.
    g.log
        .append("$$order-9", Any, vec![meta(100, r#"{"$maxCount":5}"#)])
        .unwrap();
    let err =
        g.refused(|log| log.read_stream("order-9", Direction::Forwards, StreamStart::Edge, 10));
    assert_not_found(err, "order-9");
}

// --- filters and opening ---------------------------------------------------------------------

#[test]
fn an_invalid_filter_is_refused() {
    assert_invalid_argument(
        Filter::regex(FilterTarget::StreamName, "(unclosed").unwrap_err(),
        "invalid filter regex",
    );
    assert_invalid_argument(
        Filter::regex(FilterTarget::EventType, "order-[").unwrap_err(),
        "invalid filter regex",
    );
    assert_invalid_argument(
        Filter::prefixes(FilterTarget::StreamName, Vec::<String>::new()).unwrap_err(),
        "at least one prefix",
    );
    assert_invalid_argument(
        Filter::regex(FilterTarget::StreamName, &"a".repeat(4097)).unwrap_err(),
        "over the limit",
    );
    Filter::regex(FilterTarget::StreamName, &"a".repeat(4096)).unwrap();
    // Look-around works (the clients' "exclude system events" filter).
    let g = given();
    let user = Filter::regex(FilterTarget::StreamName, r"^(?!\$)").unwrap();
    let page = g
        .log
        .read_all(Direction::Forwards, AllStart::Edge, usize::MAX, Some(&user))
        .unwrap();
    assert!(!page.events.is_empty());
    assert!(page.events.iter().all(|e| !e.stream().starts_with('$')));
}

#[test]
fn open_refuses_a_segment_too_small_for_the_batch_limit() {
    let max_batch_bytes = 256 << 10;
    let max_event_bytes = 64 << 10;
    // A segment must hold its 32-byte header, the largest batch, and the largest metadata record
    // a reopening append adds: a frame for `$$` + the longest stream name, `$metadata`, and the
    // largest metadata JSON plus a quarter for re-encoding plus 1 KiB.
    let reopen = FRAME_FIXED
        + Config::default().max_stream_name_bytes
        + 2
        + 9
        + max_event_bytes
        + max_event_bytes / 4
        + 1024;
    let smallest = (32 + max_batch_bytes + reopen) as u64;
    let storage = MemoryStorage::new();
    let err = EventLog::builder_with_storage(Arc::new(storage.clone()))
        .config(Config {
            segment_size: smallest - 1,
            max_batch_bytes,
            max_event_bytes: 64 << 10,
            ..Config::default()
        })
        .open()
        .unwrap_err();
    assert_invalid_argument(err, "segment size");
    assert_eq!(
        storage.list().unwrap(),
        Vec::<String>::new(),
        "nothing created"
    );

    let log = EventLog::builder_with_storage(Arc::new(storage.clone()))
        .config(Config {
            segment_size: smallest,
            max_batch_bytes,
            max_event_bytes: 64 << 10,
            ..Config::default()
        })
        .open()
        .unwrap();
    log.append("order-1", NoStream, vec![ev(1)]).unwrap();
}

#[test]
fn open_refuses_inconsistent_limits() {
    let storage = MemoryStorage::new();
    let open = |config: Config| {
        EventLog::builder_with_storage(Arc::new(storage.clone()))
            .config(config)
            .open()
            .unwrap_err()
    };
    assert_invalid_argument(
        open(Config {
            max_event_bytes: (256 << 10) + 1,
            ..config()
        }),
        "event size limit",
    );
    assert_invalid_argument(
        open(Config {
            max_batch_events: 0,
            ..config()
        }),
        "",
    );
    assert_eq!(
        storage.list().unwrap(),
        Vec::<String>::new(),
        "nothing created"
    );
}

#[test]
fn a_directory_already_open_is_locked() {
    let dir = TempDir::new("locked");
    let first = EventLog::builder(&dir.0).open().unwrap();
    first.append("order-1", NoStream, vec![ev(1)]).unwrap();
    let head = first.head();

    match EventLog::builder(&dir.0).open() {
        Err(Error::Locked(path)) => assert_eq!(path, dir.0),
        other => panic!("expected Locked, got {other:?}"),
    }
    // The first handle is unaffected.
    assert_eq!(first.head(), head);
    first
        .append("order-1", Exact(Revision(0)), vec![ev(2)])
        .unwrap();
    first.close().unwrap();

    // Closing releases the lock.
    let again = EventLog::builder(&dir.0).open().unwrap();
    let events = again
        .read_stream("order-1", Direction::Forwards, StreamStart::Edge, 10)
        .unwrap();
    assert_eq!(revisions(&events), vec![0, 1]);
    again.close().unwrap();
}

// --- metadata limits on reads ----------------------------------------------------------------

#[test]
fn max_age_hides_old_events_from_stream_reads_but_not_from_all() {
    let g = given();
    g.log
        .append("visits-1", NoStream, vec![ev(100), ev(101), ev(102)])
        .unwrap();
    g.clock.advance_secs(3600);
    g.log
        .append("visits-1", Exact(Revision(2)), vec![ev(103), ev(104)])
        .unwrap();
    g.log
        .append(
            "$$visits-1",
            NoStream,
            vec![meta(200, r#"{"$maxAge":1800}"#)],
        )
        .unwrap();

    assert_eq!(
        g.read("visits-1", Direction::Forwards, StreamStart::Edge),
        vec![3, 4]
    );
    assert_eq!(
        g.read("visits-1", Direction::Backwards, StreamStart::Edge),
        vec![4, 3]
    );
    assert_eq!(
        g.read(
            "visits-1",
            Direction::Backwards,
            StreamStart::Revision(Revision(3))
        ),
        vec![3]
    );
    assert_eq!(g.all_revisions_of("visits-1"), vec![0, 1, 2, 3, 4]);

    // The age is measured against the clock at read time.
    g.clock.advance_secs(1799);
    assert_eq!(
        g.read("visits-1", Direction::Forwards, StreamStart::Edge),
        vec![3, 4]
    );
    g.clock.advance_secs(2);
    assert_eq!(
        g.read("visits-1", Direction::Forwards, StreamStart::Edge),
        Vec::<u64>::new()
    );
    assert_eq!(g.all_revisions_of("visits-1"), vec![0, 1, 2, 3, 4]);
    // Expiry hides events; it does not change the stream's revision.
    assert_eq!(
        g.log.stream_revision("visits-1").unwrap(),
        CurrentRevision::Current(Revision(4))
    );
}

/// A forward page must start at the first event that has not expired: an empty page reads as
/// the end of the stream, and a stream subscription's catch-up would skip to live.
#[test]
fn max_age_forward_reads_start_at_the_first_unexpired_event() {
    let g = given();
    // More expired events than a subscription's catch-up page (256).
    for batch in 0..3u128 {
        let events = (0..100).map(|i| ev(1000 + batch * 100 + i)).collect();
        g.log.append("visits-2", Any, events).unwrap();
    }
    g.clock.advance_secs(3600);
    g.log
        .append("visits-2", Exact(Revision(299)), vec![ev(2000), ev(2001)])
        .unwrap();
    g.log
        .append(
            "$$visits-2",
            NoStream,
            vec![meta(200, r#"{"$maxAge":1800}"#)],
        )
        .unwrap();

    let page = g
        .log
        .read_stream("visits-2", Direction::Forwards, StreamStart::Edge, 10)
        .unwrap();
    assert_eq!(revisions(&page), vec![300, 301]);
    let page = g
        .log
        .read_stream(
            "visits-2",
            Direction::Forwards,
            StreamStart::Revision(Revision(0)),
            1,
        )
        .unwrap();
    assert_eq!(revisions(&page), vec![300]);

    let mut sub = g
        .log
        .subscribe_stream("visits-2", SubscribeFrom::Start)
        .unwrap();
    let mut seen = Vec::new();
    loop {
        match sub.next_timeout(Duration::from_secs(10)).unwrap() {
            Some(SubscriptionItem::Event(e)) => seen.push(e.revision.0),
            Some(SubscriptionItem::CaughtUp) => break,
            Some(SubscriptionItem::Checkpoint(_)) => {}
            None => panic!("no CaughtUp within 10 s; saw {seen:?}"),
        }
    }
    assert_eq!(seen, vec![300, 301]);
}

#[test]
fn max_count_keeps_the_newest_events_on_stream_reads_but_not_on_all() {
    let g = given();
    let events = (0..5).map(|i| ev(100 + i)).collect();
    g.log.append("visits-3", NoStream, events).unwrap();
    g.log
        .append(
            "$$visits-3",
            NoStream,
            vec![meta(200, r#"{"$maxCount":2}"#)],
        )
        .unwrap();
    assert_eq!(
        g.read("visits-3", Direction::Forwards, StreamStart::Edge),
        vec![3, 4]
    );
    assert_eq!(
        g.read(
            "visits-3",
            Direction::Forwards,
            StreamStart::Revision(Revision(1))
        ),
        vec![3, 4]
    );
    assert_eq!(
        g.read("visits-3", Direction::Backwards, StreamStart::Edge),
        vec![4, 3]
    );
    assert_eq!(
        g.read(
            "visits-3",
            Direction::Backwards,
            StreamStart::Revision(Revision(2))
        ),
        Vec::<u64>::new()
    );
    // The window moves with new events.
    g.log
        .append("visits-3", Exact(Revision(4)), vec![ev(105)])
        .unwrap();
    assert_eq!(
        g.read("visits-3", Direction::Forwards, StreamStart::Edge),
        vec![4, 5]
    );
    assert_eq!(g.all_revisions_of("visits-3"), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        g.log.stream_metadata("visits-3").unwrap().max_count,
        Some(2)
    );
}

#[test]
fn truncate_before_hides_earlier_revisions_on_stream_reads_but_not_on_all() {
    let g = given();
    let events = (0..5).map(|i| ev(100 + i)).collect();
    g.log.append("visits-4", NoStream, events).unwrap();
    g.log
        .append("$$visits-4", NoStream, vec![meta(200, r#"{"$tb":3}"#)])
        .unwrap();
    assert_eq!(
        g.read("visits-4", Direction::Forwards, StreamStart::Edge),
        vec![3, 4]
    );
    assert_eq!(
        g.read(
            "visits-4",
            Direction::Backwards,
            StreamStart::Revision(Revision(9))
        ),
        vec![4, 3]
    );
    assert_eq!(
        g.read(
            "visits-4",
            Direction::Backwards,
            StreamStart::Revision(Revision(2))
        ),
        Vec::<u64>::new()
    );
    assert_eq!(g.all_revisions_of("visits-4"), vec![0, 1, 2, 3, 4]);
    // With both limits, the stricter one wins.
    g.log
        .append(
            "$$visits-4",
            Exact(Revision(0)),
            vec![meta(201, r#"{"$tb":1,"$maxCount":2}"#)],
        )
        .unwrap();
    assert_eq!(
        g.read("visits-4", Direction::Forwards, StreamStart::Edge),
        vec![3, 4]
    );
    g.log
        .append(
            "$$visits-4",
            Exact(Revision(1)),
            vec![meta(202, r#"{"$tb":4,"$maxCount":3}"#)],
        )
        .unwrap();
    assert_eq!(
        g.read("visits-4", Direction::Forwards, StreamStart::Edge),
        vec![4]
    );
    // Metadata written later replaces the earlier one as a whole.
    g.log
        .append("$$visits-4", Any, vec![meta(203, "{}")])
        .unwrap();
    assert_eq!(
        g.read("visits-4", Direction::Forwards, StreamStart::Edge),
        vec![0, 1, 2, 3, 4]
    );
}

/// The smallest segment size `open` accepts with these limits.
fn smallest_segment(max_batch_bytes: usize, max_event_bytes: usize) -> u64 {
    let accepts = |segment_size: u64| {
        EventLog::builder_with_storage(Arc::new(MemoryStorage::new()))
            .config(Config {
                segment_size,
                max_batch_bytes,
                max_event_bytes,
                ..Config::default()
            })
            .open()
            .is_ok()
    };
    let (mut refused, mut accepted) = (0, 4 * max_batch_bytes as u64);
    assert!(accepts(accepted));
    while refused + 1 < accepted {
        let mid = refused + (accepted - refused) / 2;
        if accepts(mid) {
            accepted = mid;
        } else {
            refused = mid;
        }
    }
    accepted
}

/// Every batch that validation accepts must fit a segment `open` accepts, including the
/// metadata record that reopening a soft-deleted stream adds (metadata may be as large as
/// `max_event_bytes`, so `open` asks for segments with room for the largest such record).
#[test]
fn a_valid_batch_fits_the_smallest_segment_when_it_reopens_a_stream() {
    let (max_batch_bytes, max_event_bytes) = (64 << 10, 32 << 10);
    let g = given_with(Config {
        segment_size: smallest_segment(max_batch_bytes, max_event_bytes),
        max_batch_bytes,
        max_event_bytes,
        ..Config::default()
    });
    let note = format!(r#"{{"note":"{}"}}"#, "n".repeat(20_000));
    match g.log.append("$$order-1", Any, vec![meta(200, &note)]) {
        Ok(_) => {}
        Err(Error::InvalidEvent { index: 0, .. }) => return,
        Err(other) => panic!("{other:?}"),
    }
    g.log.delete("order-1", Exact(Revision(1))).unwrap();
    // The largest batch validation accepts.
    let stream = "order-1";
    let budget = max_batch_bytes;
    let mut batch = vec![sized(100, 20_000), sized(101, 20_000), sized(102, 20_000)];
    let used: usize = batch.iter().map(|e| frame_len(stream, e)).sum();
    batch[2] = sized(102, 20_000 + budget - used);
    assert!(batch[2].data.len() <= max_event_bytes);
    let a = g.log.append(stream, Any, batch).unwrap();
    assert_eq!((a.first_revision, a.count), (Revision(2), 3));
    assert_eq!(
        g.read(stream, Direction::Forwards, StreamStart::Edge),
        vec![2, 3, 4]
    );
}
