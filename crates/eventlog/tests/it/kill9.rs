//! A real process killed with SIGKILL while it appends: nothing it was told is durable is lost.
//!
//! The test binary is its own child: `crash_kill9_loses_no_acknowledged_event` runs this binary
//! again with only `kill9::child_process_entry` selected and `DAOJIA_KILL9_DIR` set. The child
//! appends from several threads to a log in that directory and, after every acknowledgement,
//! appends a line to a side file and prints it. The parent reads the child's output until a
//! pseudo-random number of acknowledgements has gone by, kills the child, reopens the log and
//! checks every acknowledgement of every round so far against it.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use daojia_eventlog::{
    AllStart, Config, Direction, EventId, EventLog, ExpectedRevision, ProposedEvent, RecordedEvent,
    Revision, StreamStart,
};

use crate::support::TempDir;

/// Tells `child_process_entry` to act as the child, and where.
const DIR_VAR: &str = "DAOJIA_KILL9_DIR";
/// The round the child runs in (part of its event ids).
const ROUND_VAR: &str = "DAOJIA_KILL9_ROUND";
const THREADS: u64 = 6;
const ROUNDS: u64 = 30;
/// A bound on the child's work in case the parent never kills it.
const MAX_APPENDS_PER_THREAD: u64 = 50_000;
const EVENT_TYPE: &str = "Kill9Tested";
const STREAMS: u64 = 5;

fn config() -> Config {
    Config {
        segment_size: 64 << 10,
        max_batch_bytes: 16 << 10,
        max_event_bytes: 4 << 10,
        ..Config::default()
    }
}

/// An event id says where the event came from: round, thread, the thread's append sequence
/// number, its index in the batch and the batch's size.
fn event_id(round: u64, thread: u64, seq: u64, index: u64, count: u64) -> u128 {
    u128::from(round) << 80
        | u128::from(thread) << 64
        | u128::from(seq) << 16
        | u128::from(index) << 8
        | u128::from(count)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Origin {
    round: u64,
    thread: u64,
    seq: u64,
    index: u64,
    count: u64,
}

fn origin(id: EventId) -> Origin {
    let v = id.as_u128();
    Origin {
        round: (v >> 80) as u64 & 0xffff,
        thread: (v >> 64) as u64 & 0xffff,
        seq: (v >> 16) as u64 & 0xffff_ffff_ffff,
        index: (v >> 8) as u64 & 0xff,
        count: v as u64 & 0xff,
    }
}

fn mix(x: u64) -> u64 {
    let mut x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

fn stream_of(round: u64, thread: u64, seq: u64) -> String {
    format!("kill9-{}", mix(round ^ thread << 20 ^ seq << 28) % STREAMS)
}

fn batch_size(round: u64, thread: u64, seq: u64) -> u64 {
    1 + mix(round << 40 ^ thread << 32 ^ seq) % 4
}

/// The data of an event: a deterministic function of its id, of varying length.
fn data(id: u128) -> Vec<u8> {
    let h = mix(id as u64 ^ (id >> 64) as u64);
    let fill: String = (0..h % 400)
        .map(|i| char::from(b'a' + ((h >> 8) + i) as u8 % 26))
        .collect();
    format!("{{\"id\":\"{id:032x}\",\"fill\":\"{fill}\"}}").into_bytes()
}

fn metadata(o: Origin) -> Vec<u8> {
    format!("{{\"thread\":{}}}", o.thread).into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The child.

/// The child side: appends until killed. Run as an ordinary test (no `DAOJIA_KILL9_DIR`), it
/// only checks that it is not meant to be the child.
#[test]
fn child_process_entry() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        assert!(std::env::var_os(DIR_VAR).is_none());
        return;
    };
    let dir = PathBuf::from(dir);
    let round: u64 = std::env::var(ROUND_VAR).unwrap().parse().unwrap();
    let log = Arc::new(
        EventLog::builder(dir.join("log"))
            .config(config())
            .open()
            .unwrap(),
    );
    let side = Arc::new(Mutex::new(
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("acks.txt"))
            .unwrap(),
    ));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let log = log.clone();
            let side = side.clone();
            std::thread::spawn(move || {
                for seq in 0..MAX_APPENDS_PER_THREAD {
                    if !append_one(&log, &side, round, thread, seq) {
                        return;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// One append and its acknowledgement; false once the parent no longer listens.
fn append_one(log: &EventLog, side: &Mutex<fs::File>, round: u64, thread: u64, seq: u64) -> bool {
    let stream = stream_of(round, thread, seq);
    let count = batch_size(round, thread, seq);
    let ids: Vec<u128> = (0..count)
        .map(|i| event_id(round, thread, seq, i, count))
        .collect();
    let events = ids
        .iter()
        .map(|&id| {
            ProposedEvent::json(EventId::from_u128(id), EVENT_TYPE, data(id))
                .with_metadata(metadata(origin(EventId::from_u128(id))))
        })
        .collect();
    let a = log.append(&stream, ExpectedRevision::Any, events).unwrap();
    let ids: Vec<String> = ids.iter().map(|id| format!("{id:x}")).collect();
    let line = format!(
        "{stream} {} {} {} {}\n",
        a.first_revision.0,
        a.count,
        a.position.0,
        ids.join(",")
    );
    // One write per line, so a kill leaves at most a cut last line.
    side.lock()
        .unwrap_or_else(|e| e.into_inner())
        .write_all(line.as_bytes())
        .unwrap();
    let mut out = std::io::stdout().lock();
    out.write_all(format!("ACK {line}").as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// Kills the child if the test fails before it does.
struct Killer(Arc<Mutex<Child>>);

impl Drop for Killer {
    fn drop(&mut self) {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(c.try_wait(), Ok(None)) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One acknowledged append, as the child wrote it down.
#[derive(Debug)]
struct Ack {
    stream: String,
    first_revision: u64,
    count: u64,
    position: u64,
    ids: Vec<u128>,
}

/// Reads the side file. A line cut by the kill is dropped from the file, so that the next
/// child's lines start on a line of their own.
fn parse_acks(path: &Path) -> Vec<Ack> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(complete as u64)
            .unwrap();
    }
    text[..complete]
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 5, "side file line {line:?}");
            Ack {
                stream: f[0].to_string(),
                first_revision: f[1].parse().unwrap(),
                count: f[2].parse().unwrap(),
                position: f[3].parse().unwrap(),
                ids: f[4]
                    .split(',')
                    .map(|h| u128::from_str_radix(h, 16).unwrap())
                    .collect(),
            }
        })
        .collect()
}

fn read_all(log: &EventLog) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut from = AllStart::Edge;
    loop {
        let page = log
            .read_all(Direction::Forwards, from, 10_000, None)
            .unwrap();
        out.extend(page.events);
        if page.end_of_log {
            return out;
        }
        from = AllStart::Position(page.next);
    }
}

/// Checks the reopened log against every acknowledgement so far; returns how many there were.
fn verify(dir: &Path, round: u64) -> usize {
    let acks = parse_acks(&dir.join("acks.txt"));
    let log = EventLog::builder(dir.join("log"))
        .config(config())
        .open()
        .unwrap_or_else(|e| panic!("round {round}: reopening after the kill failed: {e}"));
    let all = read_all(&log);

    // Every event in the log, acknowledged or not, is intact and belongs to a whole batch.
    let mut at = std::collections::HashMap::new();
    let mut i = 0;
    while i < all.len() {
        let e = &all[i];
        let o = origin(e.id);
        assert_eq!(o.index, 0, "round {round}: {e:?} does not start its batch");
        for j in 0..o.count {
            let e = all.get(i + j as usize).unwrap_or_else(|| {
                panic!("round {round}: the batch of {o:?} is cut at the end of the log")
            });
            let id = e.id.as_u128();
            let oj = origin(e.id);
            assert_eq!(
                (oj.round, oj.thread, oj.seq, oj.index, oj.count),
                (o.round, o.thread, o.seq, j, o.count),
                "round {round}: batch of {o:?} is not whole and contiguous"
            );
            assert_eq!(e.stream(), stream_of(o.round, o.thread, o.seq));
            assert_eq!(e.event_type(), EVENT_TYPE);
            assert_eq!(
                e.data_slice(),
                &data(id)[..],
                "round {round}: data of {id:x}"
            );
            assert_eq!(e.metadata_slice(), &metadata(oj)[..]);
            assert!(
                at.insert(id, i + j as usize).is_none(),
                "round {round}: event {id:x} is in the log twice"
            );
        }
        i += o.count as usize;
    }

    // Every acknowledged batch is there, in order, at its revisions and position.
    for a in &acks {
        let what = format!("round {round}: acknowledged {a:?}");
        assert_eq!(a.count as usize, a.ids.len(), "{what}");
        let last = *a.ids.last().unwrap();
        let &end = at
            .get(&last)
            .unwrap_or_else(|| panic!("{what}: lost after the kill"));
        let start = end + 1 - a.ids.len();
        for (k, id) in a.ids.iter().enumerate() {
            let e = &all[start + k];
            assert_eq!(e.id.as_u128(), *id, "{what}");
            assert_eq!(e.stream(), a.stream, "{what}");
            assert_eq!(e.revision, Revision(a.first_revision + k as u64), "{what}");
        }
        assert_eq!(all[end].position.0, a.position, "{what}");
        let read = log
            .read_stream(
                &a.stream,
                Direction::Forwards,
                StreamStart::Revision(Revision(a.first_revision)),
                a.ids.len(),
            )
            .unwrap();
        let read: Vec<u128> = read.iter().map(|e| e.id.as_u128()).collect();
        assert_eq!(read, a.ids, "{what}: stream read");
    }

    // Streams have gapless revisions in log order.
    for s in 0..STREAMS {
        let stream = format!("kill9-{s}");
        let Ok(events) =
            log.read_stream(&stream, Direction::Forwards, StreamStart::Edge, usize::MAX)
        else {
            continue;
        };
        for (r, e) in events.iter().enumerate() {
            assert_eq!(e.revision, Revision(r as u64), "round {round}: {stream}");
        }
        assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    }
    // The events read first still hold their bytes after all those reads (read buffers are
    // reused only once no event refers to them).
    for e in &all {
        assert_eq!(
            e.data_slice(),
            &data(e.id.as_u128())[..],
            "round {round}: {e:?}"
        );
    }
    log.close().unwrap();
    acks.len()
}

#[test]
fn crash_kill9_loses_no_acknowledged_event() {
    let dir = TempDir::new("kill9");
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x6B69_6C6C_0009_u64;
    let mut acknowledged = 0;
    for round in 0..ROUNDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let target = 1 + seed % 400;
        let child = Command::new(&exe)
            .args([
                "--exact",
                "kill9::child_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_VAR, &dir.0)
            .env(ROUND_VAR, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let child = Arc::new(Mutex::new(child));
        let killer = Killer(child.clone());
        let stdout = child.lock().unwrap().stdout.take().unwrap();

        // A child that hangs would hang the test: a watchdog kills it after a generous delay,
        // and the round then fails for lack of acknowledgements.
        let (done, watch) = mpsc::channel::<()>();
        let watched = child.clone();
        let watchdog = std::thread::spawn(move || {
            if watch.recv_timeout(Duration::from_secs(120)).is_err() {
                let _ = watched.lock().unwrap_or_else(|e| e.into_inner()).kill();
            }
        });

        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.starts_with("ACK ") {
                seen += 1;
                if seen == target {
                    break;
                }
            }
        }
        let status = {
            let mut c = child.lock().unwrap();
            c.kill().unwrap();
            c.wait().unwrap()
        };
        let _ = done.send(());
        watchdog.join().unwrap();
        drop(killer);
        assert_eq!(
            seen, target,
            "round {round}: the child stopped after {seen} acknowledgements ({status})"
        );
        assert_eq!(status.signal(), Some(9), "round {round}: {status}");

        let now = verify(&dir.0, round);
        assert!(
            now >= acknowledged + target as usize,
            "round {round}: {now} acknowledgements written down, expected at least {}",
            acknowledged + target as usize
        );
        acknowledged = now;
    }
    // The log spans many segments by now.
    let segments = fs::read_dir(dir.0.join("log"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("segment-")
        })
        .count();
    assert!(segments >= 10, "only {segments} segments");
}
