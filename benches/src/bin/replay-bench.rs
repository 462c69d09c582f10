//! Replay speed of `$all`, reopen time and memory per event of the embedded log.
//!
//! `cargo run --release -p daojia-benches --bin replay-bench -- --events N --data-dir DIR`
//! writes N events (10 per stream, 200-byte JSON bodies), closes the log, then starts itself
//! again as a fresh process that reopens the log (timing the open and reading RssAnon, so that
//! file pages in the cache do not count) and reads `$all` from position 0 several times.
//! The last line of output is one JSON object.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use daojia_benches::{json_body, median, num, parse_args, rss_anon_bytes};
use daojia_eventlog::{AllStart, Direction, EventId, EventLog, ExpectedRevision, ProposedEvent};

const EVENTS_PER_STREAM: u64 = 10;

fn main() {
    if let Err(e) = run() {
        eprintln!("replay-bench: {e}");
        std::process::exit(2);
    }
}

#[allow(clippy::print_stdout)]
fn run() -> Result<(), String> {
    let args = parse_args(&[
        "events",
        "data-dir",
        "event-bytes",
        "runs",
        "child-open",
        "reuse",
    ])?;
    let events: u64 = num(&args, "events", 1_000_000)?;
    let runs: usize = num(&args, "runs", 3)?;
    if let Some(dir) = args.get("child-open") {
        let line = child(std::path::Path::new(dir), events, runs)?;
        println!("{line}");
        return Ok(());
    }
    let event_bytes: usize = num(&args, "event-bytes", 200)?;
    let reuse: bool = num(&args, "reuse", false)?;
    let dir = std::path::PathBuf::from(
        args.get("data-dir")
            .ok_or("--data-dir DIR is required (a scratch directory)")?,
    );
    if events == 0 || runs == 0 {
        return Err("--events and --runs must be positive".into());
    }
    let log_dir = dir.join(format!("replay-bench-log-{events}"));
    let mut fill_secs = 0.0;
    if !(reuse && log_dir.exists()) {
        let _ = std::fs::remove_dir_all(&log_dir);
        fill_secs = fill(&log_dir, events, event_bytes)?;
    }
    let disk_bytes: u64 = std::fs::read_dir(&log_dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();

    eprintln!("reopening in a fresh process");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(["--child-open", &log_dir.to_string_lossy()])
        .args(["--events", &events.to_string(), "--runs", &runs.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("starting the reopen process: {e}"))?;
    if !out.status.success() {
        return Err(format!("the reopen process failed: {}", out.status));
    }
    let child_json = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    let inner = child_json
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| format!("unexpected output from the reopen process: {child_json:?}"))?;
    println!(
        "{{{inner},\"events\":{events},\"event_bytes\":{event_bytes},\"events_per_stream\":{EVENTS_PER_STREAM},\"fill_seconds\":{fill_secs:.1},\"log_bytes\":{disk_bytes}}}"
    );
    Ok(())
}

/// Writes `events` events, 10 per stream, as 10-event batches with many appends in flight.
fn fill(dir: &std::path::Path, events: u64, event_bytes: usize) -> Result<f64, String> {
    let log = EventLog::builder(dir).open().map_err(|e| e.to_string())?;
    let streams = events.div_ceil(EVENTS_PER_STREAM);
    let in_flight = Arc::new((Mutex::new((0usize, None::<String>)), Condvar::new()));
    let start = Instant::now();
    let mut last_report = Instant::now();
    for s in 0..streams {
        let n = EVENTS_PER_STREAM.min(events - s * EVENTS_PER_STREAM);
        let batch: Vec<ProposedEvent> = (0..n)
            .map(|i| {
                let seq = s * EVENTS_PER_STREAM + i;
                ProposedEvent::json(
                    EventId::from_u128(u128::from(seq) + 1),
                    "OrderPosted",
                    json_body(seq, event_bytes),
                )
            })
            .collect();
        {
            let (lock, cv) = &*in_flight;
            let mut g = lock.lock().map_err(|e| e.to_string())?;
            while g.0 >= 2048 {
                g = cv.wait(g).map_err(|e| e.to_string())?;
            }
            if let Some(e) = g.1.take() {
                return Err(e);
            }
            g.0 += 1;
        }
        let done = in_flight.clone();
        log.append_with(
            format!("order-{s:016x}"),
            ExpectedRevision::NoStream,
            batch,
            Box::new(move |r| {
                let (lock, cv) = &*done;
                if let Ok(mut g) = lock.lock() {
                    g.0 -= 1;
                    if let Err(e) = r {
                        g.1 = Some(e.to_string());
                    }
                }
                cv.notify_one();
            }),
        );
        if last_report.elapsed().as_secs() >= 2 {
            last_report = Instant::now();
            eprint!(
                "\rwriting: {:>5.1}% ({} events)",
                (s * EVENTS_PER_STREAM) as f64 * 100.0 / events as f64,
                s * EVENTS_PER_STREAM
            );
            let _ = std::io::stderr().flush();
        }
    }
    {
        let (lock, cv) = &*in_flight;
        let mut g = lock.lock().map_err(|e| e.to_string())?;
        while g.0 > 0 {
            g = cv.wait(g).map_err(|e| e.to_string())?;
        }
        if let Some(e) = g.1.take() {
            return Err(e);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "\rwrote {events} events in {secs:.1} s ({:.0}/s)",
        events as f64 / secs
    );
    log.close().map_err(|e| e.to_string())?;
    Ok(secs)
}

/// The fresh process: open, memory, replays.
fn child(dir: &std::path::Path, events: u64, runs: usize) -> Result<String, String> {
    let t = Instant::now();
    let log = EventLog::builder(dir).open().map_err(|e| e.to_string())?;
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    let rss = rss_anon_bytes();
    eprintln!("opened in {open_ms:.0} ms, RssAnon {} MiB", rss >> 20);
    let mut rates = Vec::with_capacity(runs);
    for run in 0..runs {
        let t = Instant::now();
        let mut seen = 0u64;
        let mut bytes = 0u64;
        let mut start = AllStart::Edge;
        loop {
            let page = log
                .read_all(Direction::Forwards, start, 4096, None)
                .map_err(|e| e.to_string())?;
            seen += page.events.len() as u64;
            bytes += page
                .events
                .iter()
                .map(|e| e.data_slice().len() as u64)
                .sum::<u64>();
            if page.end_of_log {
                break;
            }
            start = AllStart::Position(page.next);
        }
        let secs = t.elapsed().as_secs_f64();
        if seen != events {
            return Err(format!("replay {run} saw {seen} events, expected {events}"));
        }
        eprintln!("replay {run}: {seen} events ({bytes} data bytes) in {secs:.3} s");
        rates.push(seen as f64 / secs);
    }
    let replay = median(&mut rates);
    Ok(format!(
        "{{\"events_per_sec\":{replay:.0},\"open_ms\":{open_ms:.0},\"rss_bytes_per_event\":{:.1},\"rss_anon_bytes\":{rss},\"replay_runs\":{runs}}}",
        rss as f64 / events as f64
    ))
}
