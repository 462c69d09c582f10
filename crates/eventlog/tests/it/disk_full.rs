//! A full disk and a failed fsync, without a crash: the log recovers by itself from the first
//! once space is freed, and stays failed after the second.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use daojia_eventlog::storage::{CrashImage, FaultyStorage, Storage};
use daojia_eventlog::{
    AllStart, Config, Direction, Error, EventId, EventLog, ExpectedRevision, LogHealth,
    ProposedEvent,
};

fn config() -> Config {
    Config {
        segment_size: 64 << 10,
        max_batch_bytes: 16 << 10,
        max_event_bytes: 4 << 10,
        ..Config::default()
    }
}

fn event(id: u128) -> ProposedEvent {
    ProposedEvent::json(
        EventId::from_u128(id),
        "Happened",
        format!(
            "{{\"n\":{id},\"pad\":\"{}\"}}",
            "x".repeat((id % 700) as usize)
        ),
    )
}

fn open(storage: Arc<dyn Storage>) -> EventLog {
    EventLog::builder_with_storage(storage)
        .config(config())
        .open()
        .unwrap()
}

/// Every health change of `log`, in order (the first is the health at the call).
fn health_changes(log: &EventLog) -> mpsc::Receiver<LogHealth> {
    let (tx, rx) = mpsc::channel();
    log.on_health_change(move |h| {
        let _ = tx.send(h.clone());
    });
    rx
}

/// The ids of every event of `$all`, in order.
fn all_ids(log: &EventLog) -> Vec<EventId> {
    let mut out = Vec::new();
    let mut from = AllStart::Edge;
    loop {
        let page = log.read_all(Direction::Forwards, from, 1000, None).unwrap();
        out.extend(page.events.iter().map(|e| e.id));
        if page.end_of_log {
            return out;
        }
        from = AllStart::Position(page.next);
    }
}

/// Appends event `id` to one of a few streams.
fn append(log: &EventLog, id: u128) -> Result<(), Error> {
    log.append(
        &format!("s-{}", id % 3),
        ExpectedRevision::Any,
        vec![event(id)],
    )
    .map(|_| ())
}

/// Fills the disk after `space` more bytes, at a point that differs with `space` (inside a
/// record, at a segment roll, ...), frees it again and checks that the log recovered by itself:
/// what was acknowledged reads back once, the failed appends retried with the same ids are
/// written once, and a reopen finds exactly the acknowledged events.
fn disk_full_then_freed(space: u64) {
    let faulty = FaultyStorage::new();
    let log = open(Arc::new(faulty.clone()));
    let health = health_changes(&log);
    assert_eq!(health.recv().unwrap(), LogHealth::Healthy);
    let mut acked: Vec<u128> = Vec::new();
    let mut next = 1u128;
    for _ in 0..40 {
        append(&log, next).unwrap();
        acked.push(next);
        next += 1;
    }

    // The disk fills: appends fail, and the failure is reported once, as a recoverable one.
    faulty.set_space_left(Some(space));
    let mut failed: Vec<u128> = Vec::new();
    for _ in 0..1000 {
        match append(&log, next) {
            Ok(()) => acked.push(next),
            Err(Error::Poisoned { .. }) => failed.push(next),
            Err(e) => panic!("space {space}: append failed with {e}"),
        }
        next += 1;
        if failed.len() == 3 {
            break;
        }
    }
    assert_eq!(failed.len(), 3, "space {space}: the disk never filled");
    match health.recv().unwrap() {
        LogHealth::Recovering { cause } => {
            assert!(cause.contains("No space left"), "space {space}: {cause}")
        }
        other => panic!("space {space}: health went {other:?}, not Recovering"),
    }
    assert!(
        matches!(log.health(), LogHealth::Recovering { .. }),
        "space {space}: the log healed while the disk is still full"
    );

    // Space is freed: the log takes appends again by itself, with nothing lost or doubled.
    faulty.set_space_left(None);
    // The bound only turns a log that never recovers into a failure rather than a hang.
    assert_eq!(
        health.recv_timeout(Duration::from_secs(60)),
        Ok(LogHealth::Healthy),
        "space {space}: the log did not recover"
    );
    for &id in &failed {
        append(&log, id).unwrap();
        append(&log, id).unwrap(); // a second retry is idempotent
        acked.push(id);
    }
    for _ in 0..20 {
        append(&log, next).unwrap();
        acked.push(next);
        next += 1;
    }
    let want: Vec<EventId> = acked.iter().map(|&i| EventId::from_u128(i)).collect();
    assert_eq!(all_ids(&log), want, "space {space}: $all after recovery");
    assert_eq!(log.health(), LogHealth::Healthy);
    drop(log);

    // What a restart finds: exactly the acknowledged events, whatever reached the disk.
    let log = open(Arc::new(faulty.after_crash(CrashImage::DurableOnly)));
    assert_eq!(all_ids(&log), want, "space {space}: $all after reopening");
    append(&log, next).unwrap();
}

#[test]
fn a_full_disk_fails_appends_and_the_log_recovers_once_space_is_freed() {
    // 0: nothing fits; small values cut a record part-way; the larger ones reach a segment
    // roll (64 KiB segments, about 40 KiB written before the disk fills).
    for space in [0, 1, 100, 1_000, 4_000, 20_000, 30_000, 60_000] {
        disk_full_then_freed(space);
    }
}

#[test]
fn a_failed_fsync_fails_the_log_for_good() {
    let faulty = FaultyStorage::new();
    let log = open(Arc::new(faulty.clone()));
    let health = health_changes(&log);
    assert_eq!(health.recv().unwrap(), LogHealth::Healthy);
    append(&log, 1).unwrap();
    let next_sync = faulty.syncs();
    let faulty = faulty.fail_sync_at(next_sync);
    let err = append(&log, 2).unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    match health.recv().unwrap() {
        LogHealth::Failed { cause } => assert!(cause.contains("fdatasync"), "{cause}"),
        other => panic!("health went {other:?}, not Failed"),
    }
    // No retry: the next syncs would work, but the log stays failed until it is reopened.
    for id in 3..6 {
        assert!(matches!(append(&log, id), Err(Error::Poisoned { .. })));
    }
    assert!(matches!(log.health(), LogHealth::Failed { .. }));
    assert!(health.try_recv().is_err(), "health changed again");
    assert_eq!(all_ids(&log), vec![EventId::from_u128(1)]);
    drop(log);

    let log = open(Arc::new(faulty.after_crash(CrashImage::DurableOnly)));
    assert_eq!(log.health(), LogHealth::Healthy);
    assert_eq!(all_ids(&log), vec![EventId::from_u128(1)]);
    append(&log, 7).unwrap();
}
