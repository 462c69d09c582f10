//! The offline operator tools: `verify` reports every damaged record, `truncate_at` cuts the
//! log at a position and moves the cut bytes aside, never deleting them.

use std::path::Path;

use daojia_eventlog::{
    AllStart, Config, Direction, Error, EventId, EventLog, ExpectedRevision, ProposedEvent,
    truncate_at, verify,
};

use crate::support::TempDir;

fn config() -> Config {
    Config {
        segment_size: 64 << 10,
        max_batch_bytes: 16 << 10,
        max_event_bytes: 4 << 10,
        ..Config::default()
    }
}

fn open(dir: &Path) -> Result<EventLog, Error> {
    EventLog::builder(dir).config(config()).open()
}

/// Every record of the log as (position, event id).
fn all(log: &EventLog) -> Vec<(u64, EventId)> {
    let mut out = Vec::new();
    let mut from = AllStart::Edge;
    loop {
        let page = log.read_all(Direction::Forwards, from, 1000, None).unwrap();
        out.extend(page.events.iter().map(|e| (e.position.0, e.id)));
        if page.end_of_log {
            return out;
        }
        from = AllStart::Position(page.next);
    }
}

/// A closed log of 200 one-event appends (about 1 KiB each) over several segments; returns
/// its records.
fn build(dir: &Path) -> Vec<(u64, EventId)> {
    let log = open(dir).unwrap();
    for i in 0..200u128 {
        let data = format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(1000));
        let e = ProposedEvent::json(EventId::from_u128(i + 1), "Happened", data.into_bytes());
        log.append(&format!("s-{}", i % 7), ExpectedRevision::Any, vec![e])
            .unwrap();
    }
    let records = all(&log);
    log.close().unwrap();
    records
}

/// Segment files in order, as (base, name).
fn segments(dir: &Path) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| {
            let base = n
                .strip_prefix("segment-")?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((base, n))
        })
        .collect();
    out.sort();
    out
}

/// The segment holding `position`, as (base, name).
fn segment_of(dir: &Path, position: u64) -> (u64, String) {
    segments(dir)
        .into_iter()
        .rev()
        .find(|(b, _)| *b < position)
        .unwrap()
}

fn flip(dir: &Path, position: u64) {
    let (base, name) = segment_of(dir, position);
    let path = dir.join(name);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(position - base) as usize + 40] ^= 0x10;
    std::fs::write(&path, bytes).unwrap();
}

/// Every byte of the log from `position` to its end, in order.
fn log_bytes_from(dir: &Path, position: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for (base, name) in segments(dir) {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let end = base + bytes.len() as u64;
        if end > position {
            let from = position.saturating_sub(base) as usize;
            out.extend_from_slice(&bytes[from..]);
        }
    }
    out
}

#[test]
fn verify_finds_nothing_wrong_in_a_clean_log() {
    let dir = TempDir::new("verify-clean");
    let records = build(&dir.0);
    let report = verify(&dir.0).unwrap();
    assert!(report.damage.is_empty(), "{:?}", report.damage);
    assert_eq!(report.records, records.len() as u64);
    assert_eq!(report.segments, segments(&dir.0).len());
    assert!(report.segments >= 3, "{} segments", report.segments);
    assert_eq!(report.durable_end, Some(report.end));
}

#[test]
fn verify_reports_every_damaged_record_with_its_file_and_offset() {
    let dir = TempDir::new("verify-damage");
    let records = build(&dir.0);
    // One record in the first (sealed) segment, one in the middle, the very last one.
    let damaged = [records[3].0, records[100].0, records[199].0];
    for &p in &damaged {
        flip(&dir.0, p);
    }
    let report = verify(&dir.0).unwrap();
    let found: Vec<(String, u64)> = report
        .damage
        .iter()
        .map(|d| (d.file.clone(), d.offset))
        .collect();
    let want: Vec<(String, u64)> = damaged
        .iter()
        .map(|&p| {
            let (base, name) = segment_of(&dir.0, p);
            (name, p - base)
        })
        .collect();
    assert_eq!(found, want);
    assert!(
        report.damage.iter().all(|d| d.durable),
        "{:?}",
        report.damage
    );
    assert_eq!(report.records, records.len() as u64 - 3);
    // Each damaged stretch is exactly its record: the scan resumed at the next one.
    assert_eq!(report.damage[0].len, records[4].0 - records[3].0);
}

#[test]
fn truncate_moves_the_cut_bytes_aside_and_the_log_reopens_without_them() {
    let dir = TempDir::new("truncate");
    let records = build(&dir.0);
    let last = records[199].0;
    flip(&dir.0, last);
    let before = segments(&dir.0);
    assert!(matches!(open(&dir.0), Err(Error::DurableDamaged { .. })));

    // Cut well before the damage, in an earlier segment, so that later segments go too.
    let at = records[120].0;
    let (cut_base, cut_name) = segment_of(&dir.0, at);
    assert_ne!(
        cut_name,
        before.last().unwrap().1,
        "the cut is in an earlier segment"
    );
    let expected_moved = log_bytes_from(&dir.0, at);
    let done = truncate_at(&dir.0, at).unwrap();

    let name = done.moved_to.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(&format!("truncated-{at:020}-")), "{name}");
    assert_eq!(done.moved_to.parent().unwrap(), dir.0.as_path());
    assert_eq!(std::fs::read(&done.moved_to).unwrap(), expected_moved);
    assert_eq!(done.bytes, expected_moved.len() as u64);
    let removed: Vec<String> = before
        .iter()
        .filter(|(b, _)| *b > cut_base)
        .map(|(_, n)| n.clone())
        .collect();
    assert!(!removed.is_empty());
    assert_eq!(done.segments_removed, removed);
    assert_eq!(
        std::fs::metadata(dir.0.join(&cut_name)).unwrap().len(),
        at - cut_base
    );

    let log = open(&dir.0).unwrap();
    assert_eq!(all(&log), records[..120].to_vec());
    // The log goes on from the cut.
    let e = ProposedEvent::json(EventId::from_u128(9_999), "Happened", &b"{}"[..]);
    let a = log.append("after-cut", ExpectedRevision::NoStream, vec![e]);
    assert_eq!(a.unwrap().position.0, at);
    log.close().unwrap();
    assert!(verify(&dir.0).unwrap().damage.is_empty());
}

#[test]
fn truncate_refuses_a_position_that_is_not_a_record_boundary_and_changes_nothing() {
    let dir = TempDir::new("truncate-bad-position");
    let records = build(&dir.0);
    let snapshot = log_bytes_from(&dir.0, 0);
    for at in [records[50].0 + 1, records[199].0 + 100_000_000, 5] {
        match truncate_at(&dir.0, at) {
            Err(Error::InvalidArgument(why)) => assert!(why.contains("position"), "{why}"),
            other => panic!("cut at {at}: {other:?}"),
        }
    }
    assert_eq!(log_bytes_from(&dir.0, 0), snapshot);
    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with("truncated-")),
        "{names:?}"
    );
}

#[test]
fn verify_and_truncate_refuse_a_log_that_is_open() {
    let dir = TempDir::new("offline-locked");
    let records = build(&dir.0);
    let log = open(&dir.0).unwrap();
    assert!(matches!(verify(&dir.0), Err(Error::Locked(_))));
    assert!(matches!(
        truncate_at(&dir.0, records[10].0),
        Err(Error::Locked(_))
    ));
    assert_eq!(all(&log), records);
    log.close().unwrap();
}
