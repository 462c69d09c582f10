//! Format stability: a log written by format version 1 is kept in `tests/fixtures/format-v1`
//! and must keep opening and reading the same; and today's writer must still produce exactly
//! those segment bytes (a change here means a new format version and a new fixture directory).
//!
//! To regenerate after a deliberate format change (with a version bump), run this module with
//! `DAOJIA_WRITE_FIXTURES=<dir>` and copy the files from `<dir>` into a new fixture directory.

use std::path::PathBuf;
use std::sync::Arc;

use daojia_eventlog::storage::{MemoryStorage, Storage};
use daojia_eventlog::{
    AllStart, Config, Direction, Error, EventId, EventLog, ExpectedRevision, METADATA_EVENT_TYPE,
    ManualClock, ProposedEvent, Revision, StreamStart,
};

/// 2025-01-01T00:00:00Z in 100 ns ticks since the Unix epoch.
const T0: i64 = 17_356_896_000_000_000;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1")
}

fn config() -> Config {
    Config {
        segment_size: 24 << 10,
        max_batch_bytes: 8 << 10,
        max_event_bytes: 2 << 10,
        ..Config::default()
    }
}

fn open(storage: &MemoryStorage) -> EventLog {
    EventLog::builder_with_storage(Arc::new(storage.clone()))
        .config(config())
        .clock(Arc::new(ManualClock::new(T0)))
        .open()
        .unwrap()
}

fn ev(n: u128, kind: &str) -> ProposedEvent {
    ProposedEvent::json(
        EventId::from_u128(0x0dd0_0000_0000_0000_0000_0000_0000_0000 + n),
        kind,
        format!("{{\"order\":{n},\"price_fen\":{}}}", 15_000 + n).into_bytes(),
    )
    .with_metadata(format!("{{\"actor\":\"customer-{}\"}}", n % 7).into_bytes())
}

/// The workload the fixture was written with: appends across segment rolls, multi-event
/// batches, metadata, a soft delete and reopen, and a tombstone.
fn workload(log: &EventLog) {
    for n in 0..240u128 {
        let stream = format!("order-{}", n % 12);
        let kind = if n % 3 == 0 {
            "OrderPosted"
        } else {
            "OrderAccepted"
        };
        log.append(
            &stream,
            ExpectedRevision::Any,
            vec![ev(n, kind), ev(n + 1000, "Noted")],
        )
        .unwrap();
    }
    let meta = ProposedEvent::json(
        EventId::from_u128(1),
        METADATA_EVENT_TYPE,
        &br#"{"$maxCount":5,"owner":"ops"}"#[..],
    );
    log.append("$$order-1", ExpectedRevision::Any, vec![meta])
        .unwrap();
    log.delete("order-2", ExpectedRevision::Any).unwrap();
    log.append(
        "order-2",
        ExpectedRevision::NoStream,
        vec![ev(5000, "OrderPosted")],
    )
    .unwrap();
    log.tombstone("order-3", ExpectedRevision::Any).unwrap();
}

fn segment_files(storage: &MemoryStorage) -> Vec<(String, Vec<u8>)> {
    storage
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("segment-"))
        .map(|n| {
            let bytes = storage.file_bytes(&n).unwrap();
            (n, bytes)
        })
        .collect()
}

#[test]
fn the_writer_still_produces_format_v1_byte_for_byte() {
    let storage = MemoryStorage::new();
    let log = open(&storage);
    workload(&log);
    log.close().unwrap();
    if let Some(dir) = std::env::var_os("DAOJIA_WRITE_FIXTURES") {
        std::fs::create_dir_all(&dir).unwrap();
        for name in storage.list().unwrap() {
            let bytes = storage.file_bytes(&name).unwrap();
            std::fs::write(PathBuf::from(&dir).join(name), bytes).unwrap();
        }
    }
    let written = segment_files(&storage);
    assert!(written.len() >= 3, "the workload should roll segments");
    for (name, bytes) in written {
        let kept = std::fs::read(fixture_dir().join(&name))
            .unwrap_or_else(|e| panic!("fixture {name} missing: {e}"));
        assert!(kept == bytes, "{name} differs from the format-v1 fixture");
    }
}

#[test]
fn a_format_v1_log_still_opens_and_reads() {
    let storage = MemoryStorage::new();
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.iter().any(|n| n == "index.snap"));
    for name in &names {
        storage.set_file_bytes(name, std::fs::read(fixture_dir().join(name)).unwrap());
    }
    let log = open(&storage);
    // 480 events, a metadata event, the delete's metadata, the reopen's metadata, one event,
    // and the tombstone.
    let mut all = Vec::new();
    let mut start = AllStart::Edge;
    loop {
        let page = log.read_all(Direction::Forwards, start, 100, None).unwrap();
        all.extend(page.events);
        if page.end_of_log {
            break;
        }
        start = AllStart::Position(page.next);
    }
    assert_eq!(all.len(), 485);
    assert_eq!(all[0].stream(), "order-0");
    assert_eq!(all[0].event_type(), "OrderPosted");
    assert_eq!(all[0].created_ticks, T0);
    assert_eq!(&all[0].data()[..], br#"{"order":0,"price_fen":15000}"#);
    assert_eq!(&all[0].metadata()[..], br#"{"actor":"customer-0"}"#);
    let last = all.last().unwrap();
    assert_eq!(
        (last.stream(), last.event_type()),
        ("order-3", "$streamDeleted")
    );

    let order_1 = log
        .read_stream("order-1", Direction::Forwards, StreamStart::Edge, 100)
        .unwrap();
    assert_eq!(
        order_1.iter().map(|e| e.revision.0).collect::<Vec<_>>(),
        (35..40).collect::<Vec<_>>(),
        "$maxCount 5 of 40 events"
    );
    let order_2 = log
        .read_stream("order-2", Direction::Forwards, StreamStart::Edge, 100)
        .unwrap();
    assert_eq!(order_2.len(), 1);
    assert_eq!(order_2[0].revision, Revision(40));
    assert!(matches!(
        log.read_stream("order-3", Direction::Forwards, StreamStart::Edge, 1),
        Err(Error::StreamDeleted { .. })
    ));
    let order_4 = log
        .read_stream("order-4", Direction::Backwards, StreamStart::Edge, 3)
        .unwrap();
    assert_eq!(
        order_4.iter().map(|e| e.revision.0).collect::<Vec<_>>(),
        vec![39, 38, 37]
    );
    // And it takes new appends where it left off.
    let a = log
        .append(
            "order-4",
            ExpectedRevision::Exact(Revision(39)),
            vec![ev(9000, "OrderClosed")],
        )
        .unwrap();
    assert_eq!(a.first_revision, Revision(40));
}
