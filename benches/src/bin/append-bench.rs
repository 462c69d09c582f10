//! Durable append throughput and latency of the embedded store, next to the disk's own
//! fdatasync rate measured in the same directory just before.
//!
//! `cargo run --release -p daojia-benches --bin append-bench -- --appenders N --seconds S --data-dir DIR`
//! Each appender is a task that appends one event per call and waits for its acknowledgement.
//! The last line of output is one JSON object.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use daojia_benches::{json_body, num, parse_args, percentile, raw_fdatasync};
use daojia_store::{EmbeddedStore, EventId, EventStore, ExpectedRevision, ProposedEvent};

/// A number as a string, without `format!`.
fn itoa_u64(mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    String::from_utf8_lossy(digits.get(i..).unwrap_or_default()).into_owned()
}

fn main() {
    if let Err(e) = run() {
        eprintln!("append-bench: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args(&[
        "appenders",
        "seconds",
        "data-dir",
        "event-bytes",
        "events-per-stream",
    ])?;
    let appenders: usize = num(&args, "appenders", 64)?;
    let seconds: f64 = num(&args, "seconds", 5.0)?;
    let event_bytes: usize = num(&args, "event-bytes", 200)?;
    let per_stream: u64 = num(&args, "events-per-stream", 10)?;
    let dir = std::path::PathBuf::from(
        args.get("data-dir")
            .ok_or("--data-dir DIR is required (a scratch directory; its log is replaced)")?,
    );
    if appenders == 0 || seconds <= 0.0 {
        return Err("--appenders and --seconds must be positive".into());
    }

    eprintln!(
        "measuring raw fdatasync (4 KiB appends to a new file) in {} for 2 s",
        dir.display()
    );
    let (raw_per_sec, raw_p50_us) =
        raw_fdatasync(&dir, Duration::from_secs(2)).map_err(|e| format!("raw fdatasync: {e}"))?;

    let log_dir = dir.join("append-bench-log");
    let _ = std::fs::remove_dir_all(&log_dir);
    let store = EmbeddedStore::open(&log_dir).map_err(|e| e.to_string())?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    eprintln!("running {appenders} appenders for {seconds} s");
    let (total, mut latencies, elapsed) = rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::with_capacity(appenders);
        let start = Instant::now();
        for a in 0..appenders {
            let store = store.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(1 << 16);
                let mut seq = 0u64;
                // The client's own work is kept small so that the store is what is measured:
                // one body per appender, shared by its events (the bytes are reference-counted).
                let body = bytes::Bytes::from(json_body(a as u64, event_bytes));
                let prefix = format!("order-{a:04}-");
                while !stop.load(Ordering::Relaxed) {
                    let id = ((a as u128) << 64) | u128::from(seq);
                    let mut stream = String::with_capacity(prefix.len() + 20);
                    stream.push_str(&prefix);
                    stream.push_str(itoa_u64(seq / per_stream).as_str());
                    let event =
                        ProposedEvent::json(EventId::from_u128(id), "OrderPosted", body.clone());
                    let t = Instant::now();
                    store
                        .append(&stream, ExpectedRevision::Any, vec![event])
                        .await
                        .map_err(|e| e.to_string())?;
                    lat.push(t.elapsed().as_micros() as u64);
                    seq += 1;
                }
                Ok::<_, String>(lat)
            }));
        }
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let elapsed = start.elapsed().as_secs_f64();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.map_err(|e| e.to_string())??);
        }
        Ok::<_, String>((all.len(), all, elapsed))
    })?;
    latencies.sort_unstable();
    let events_per_sec = total as f64 / elapsed;
    let p50 = percentile(&latencies, 50.0);
    let p99 = percentile(&latencies, 99.0);
    let stats = store.log().stats();
    let events_per_sync = stats.records as f64 / stats.syncs.max(1) as f64;
    let events_per_group = stats.records as f64 / stats.groups.max(1) as f64;
    drop(store);
    let _ = std::fs::remove_dir_all(&log_dir);
    eprintln!(
        "{total} durable events in {elapsed:.2} s: {events_per_sec:.0}/s, p50 {p50} us, p99 {p99} us; raw fdatasync {raw_per_sec:.0}/s, p50 {raw_p50_us} us"
    );
    let json = format!(
        "{{\"events_per_sec\":{events_per_sec:.0},\"p50_us\":{p50},\"p99_us\":{p99},\"appenders\":{appenders},\"event_bytes\":{event_bytes},\"events\":{total},\"seconds\":{elapsed:.3},\"raw_fdatasync_per_sec\":{raw_per_sec:.0},\"raw_fdatasync_p50_us\":{raw_p50_us},\"ratio_to_raw_fdatasync\":{:.2},\"p50_ratio_to_raw\":{:.2},\"events_per_sync\":{events_per_sync:.1},\"events_per_group\":{events_per_group:.1}}}",
        events_per_sec / raw_per_sec,
        p50 as f64 / raw_p50_us.max(1) as f64
    );
    #[allow(clippy::print_stdout)]
    {
        println!("{json}");
    }
    Ok(())
}
