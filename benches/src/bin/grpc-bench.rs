//! The EventStoreDB protocol over gRPC: durable one-event BatchAppends against a no-op unary
//! call at the same concurrency, append latency, and `$all` replay into a Rust client.
//!
//! `cargo run --release -p daojia-benches --bin grpc-bench -- --clients N --seconds S`
//! fills a temporary data directory with `--preload` events (default 1,000,000, 200-byte JSON
//! bodies, written directly to the embedded log), starts `daojia serve --insecure` on it
//! in-process (its own runtime; dispatcher and reactor off, read models on), waits until the
//! read models have caught up, and then measures, each for S seconds with N clients, every
//! client on its own HTTP/2 connection:
//! - `noop_per_sec`: `grpc.health.v1.Health/Check` calls, one at a time per client;
//! - `batch_append_per_sec`: `Streams/BatchAppend` of one event (stream `bench-<client>`,
//!   expectation any), each answered only once durable; one call stream per client, one batch
//!   in flight at a time; `append_p50_ms` / `append_p99_ms` are their latencies;
//! - `replay_events_per_sec`: one client reading `$all` from the start with `Streams/Read`
//!   (count unlimited), decoding every event; the median of `--replays` (default 3) runs.
//!
//! The last line of output is one JSON object.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use daojia_benches::{json_body, median, num, parse_args, percentile};
use daojia_server::esdb::proto::event_store::client::streams::{
    BatchAppendReq, ReadReq, batch_append_req, batch_append_resp, read_req, read_resp,
    streams_client::StreamsClient,
};
use daojia_server::esdb::proto::event_store::client::{Empty, StreamIdentifier, Uuid, uuid};
use daojia_store::{EmbeddedStore, EventId, EventStore, ExpectedRevision, ProposedEvent};
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const EVENT_BYTES: usize = 200;

fn main() {
    if let Err(e) = run() {
        eprintln!("grpc-bench: {e}");
        std::process::exit(2);
    }
}

#[allow(clippy::print_stdout)]
fn run() -> Result<(), String> {
    let args = parse_args(&["clients", "seconds", "preload", "replays", "data-dir"])?;
    let clients: usize = num(&args, "clients", 64)?;
    let seconds: f64 = num(&args, "seconds", 10.0)?;
    let preload: u64 = num(&args, "preload", 1_000_000)?;
    let replays: usize = num(&args, "replays", 3)?;
    if clients == 0 || seconds <= 0.0 || replays == 0 {
        return Err("--clients, --seconds and --replays must be positive".into());
    }
    let base = args
        .get("data-dir")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("daojia-grpc-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = bench(
        &dir,
        clients,
        Duration::from_secs_f64(seconds),
        preload,
        replays,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let line = result?;
    println!("{line}");
    Ok(())
}

fn runtime(threads: usize, name: &str) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn bench(
    dir: &std::path::Path,
    clients: usize,
    duration: Duration,
    preload: u64,
    replays: usize,
) -> Result<serde_json::Value, String> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server_rt = runtime(cores, "server")?;
    let client_rt = runtime(cores, "client")?;

    let t = Instant::now();
    server_rt.block_on(fill(dir, preload))?;
    let fill_secs = t.elapsed().as_secs_f64();
    eprintln!("preloaded {preload} events in {fill_secs:.1} s");

    let (addr, stop, served) = server_rt.block_on(start_server(dir))?;
    let out = client_rt.block_on(async {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true)
            // Large HTTP/2 receive windows, as a bulk reader would configure.
            .initial_stream_window_size(Some(16 << 20))
            .initial_connection_window_size(Some(32 << 20));
        let mut channels = Vec::with_capacity(clients);
        for _ in 0..clients {
            channels.push(endpoint.connect().await.map_err(|e| e.to_string())?);
        }
        daojia_benches::settle(&channels[0]).await?;

        let noop = noop(&channels, duration).await?;
        eprintln!("noop: {noop:.0} calls/s");
        let appends = batch_appends(&channels, duration).await?;
        eprintln!(
            "batch append: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
            appends.per_sec, appends.p50_ms, appends.p99_ms
        );
        daojia_benches::settle(&channels[0]).await?;
        let mut rates = Vec::with_capacity(replays);
        let mut replayed = 0;
        for run in 0..replays {
            let (events, secs) = replay(&channels[0]).await?;
            replayed = events;
            let rate = events as f64 / secs;
            eprintln!(
                "replay {}: {events} events in {secs:.2} s, {rate:.0}/s",
                run + 1
            );
            rates.push(rate);
        }
        Ok::<_, String>(serde_json::json!({
            "clients": clients,
            "seconds": duration.as_secs_f64(),
            "noop_per_sec": noop.round(),
            "batch_append_per_sec": appends.per_sec.round(),
            "batch_append_vs_noop": (appends.per_sec / noop * 1000.0).round() / 1000.0,
            "append_p50_ms": (appends.p50_ms * 1000.0).round() / 1000.0,
            "append_p99_ms": (appends.p99_ms * 1000.0).round() / 1000.0,
            "appends": appends.count,
            "replay_events": replayed,
            "replay_events_per_sec": median(&mut rates).round(),
            "preload_events": preload,
            "cores": cores,
        }))
    });
    let _ = stop.send(());
    server_rt
        .block_on(served)
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("server: {e}"))?;
    out
}

/// Writes `events` 200-byte JSON events, 10 per stream, straight into the embedded log.
async fn fill(dir: &std::path::Path, events: u64) -> Result<(), String> {
    let store = EmbeddedStore::open(dir).map_err(|e| e.to_string())?;
    let mut seq = 0u64;
    while seq < events {
        let mut pending = Vec::new();
        for _ in 0..64 {
            if seq >= events {
                break;
            }
            let stream = format!("order-{:032x}", seq / 10);
            let batch: Vec<ProposedEvent> = (0..10)
                .take_while(|i| seq + i < events)
                .map(|i| {
                    ProposedEvent::json(
                        EventId::from_u128(u128::from(seq + i) + 1),
                        "OrderPosted",
                        json_body(seq + i, EVENT_BYTES),
                    )
                })
                .collect();
            seq += batch.len() as u64;
            pending.push((stream, batch));
        }
        let appends = pending
            .into_iter()
            .map(|(stream, batch)| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.append(&stream, ExpectedRevision::Any, batch).await },
                )
            })
            .collect::<Vec<_>>();
        for a in appends {
            a.await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
    }
    // Dropping the last handle joins the writer thread (everything appended is durable).
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .map_err(|e| e.to_string())
}

type Served = tokio::task::JoinHandle<Result<(), daojia_server::ServeError>>;

async fn start_server(
    dir: &std::path::Path,
) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>, Served), String> {
    let config = daojia_benches::bench_server_config(dir)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(daojia_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    Ok((addr, stop, served))
}

/// Runs `client` once per channel until `duration` has passed; returns every call's latency
/// in microseconds.
async fn drive<F, Fut>(
    channels: &[Channel],
    duration: Duration,
    client: F,
) -> Result<Vec<u64>, String>
where
    F: Fn(usize, Channel, Arc<AtomicBool>) -> Fut,
    Fut: Future<Output = Result<Vec<u64>, String>> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = channels
        .iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(client(i, c.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

async fn noop(channels: &[Channel], duration: Duration) -> Result<f64, String> {
    let start = Instant::now();
    let calls = drive(channels, duration, |_, channel, stop| async move {
        let mut health = HealthClient::new(channel);
        let mut lat = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|e| e.to_string())?;
            lat.push(t.elapsed().as_micros() as u64);
        }
        Ok(lat)
    })
    .await?;
    Ok(calls.len() as f64 / start.elapsed().as_secs_f64())
}

struct Appends {
    count: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn wire_uuid(n: u128) -> Uuid {
    let b = n.to_be_bytes();
    Uuid {
        value: Some(uuid::Value::Structured(uuid::Structured {
            most_significant_bits: i64::from_be_bytes(b[..8].try_into().unwrap_or_default()),
            least_significant_bits: i64::from_be_bytes(b[8..].try_into().unwrap_or_default()),
        })),
    }
}

async fn batch_appends(channels: &[Channel], duration: Duration) -> Result<Appends, String> {
    let start = Instant::now();
    let mut lat = drive(channels, duration, |client, channel, stop| async move {
        let mut streams = StreamsClient::new(channel);
        let (tx, rx) = tokio::sync::mpsc::channel::<BatchAppendReq>(1);
        let mut responses = streams
            .batch_append(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        let stream = StreamIdentifier {
            stream_name: format!("bench-{client}").into_bytes().into(),
        };
        let mut lat = Vec::new();
        let mut seq = 0u128;
        while !stop.load(Ordering::Relaxed) {
            seq += 1;
            // Distinct ids per client and call: client in the high bits.
            let id = (client as u128) << 64 | seq;
            let mut metadata = std::collections::HashMap::new();
            metadata.insert("type".to_string(), "BenchEvent".to_string());
            metadata.insert("content-type".to_string(), "application/json".to_string());
            let request = BatchAppendReq {
                correlation_id: Some(wire_uuid(id | 1 << 127)),
                options: Some(batch_append_req::Options {
                    stream_identifier: Some(stream.clone()),
                    expected_stream_position: Some(
                        batch_append_req::options::ExpectedStreamPosition::Any(()),
                    ),
                    deadline_option: None,
                }),
                proposed_messages: vec![batch_append_req::ProposedMessage {
                    id: Some(wire_uuid(id)),
                    metadata,
                    custom_metadata: Default::default(),
                    data: json_body(seq as u64, EVENT_BYTES).into(),
                }],
                is_final: true,
            };
            let t = Instant::now();
            tx.send(request).await.map_err(|e| e.to_string())?;
            let resp = responses
                .next()
                .await
                .ok_or("the BatchAppend stream ended early")?
                .map_err(|e| e.to_string())?;
            match resp.result {
                Some(batch_append_resp::Result::Success(_)) => {}
                other => return Err(format!("batch append failed: {other:?}")),
            }
            lat.push(t.elapsed().as_micros() as u64);
        }
        Ok(lat)
    })
    .await?;
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    Ok(Appends {
        count: lat.len(),
        per_sec: lat.len() as f64 / secs,
        p50_ms: percentile(&lat, 50.0) as f64 / 1000.0,
        p99_ms: percentile(&lat, 99.0) as f64 / 1000.0,
    })
}

/// Reads `$all` from the start to the end; returns (events, seconds).
async fn replay(channel: &Channel) -> Result<(u64, f64), String> {
    use read_req::options::{self, AllOptions, all_options::AllOption};
    let mut streams = StreamsClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    let request = ReadReq {
        options: Some(read_req::Options {
            stream_option: Some(options::StreamOption::All(AllOptions {
                all_option: Some(AllOption::Start(Empty {})),
            })),
            read_direction: options::ReadDirection::Forwards as i32,
            resolve_links: false,
            count_option: Some(options::CountOption::Count(u64::MAX)),
            filter_option: Some(options::FilterOption::NoFilter(Empty {})),
            uuid_option: Some(options::UuidOption {
                content: Some(options::uuid_option::Content::Structured(Empty {})),
            }),
            control_option: None,
        }),
    };
    let start = Instant::now();
    let mut events = 0u64;
    let mut last = 0u64;
    let mut reads = streams
        .read(request)
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    while let Some(resp) = reads.next().await {
        let resp = resp.map_err(|e| e.to_string())?;
        if let Some(read_resp::Content::Event(e)) = resp.content {
            let event = e.event.ok_or("a read event without its event")?;
            if event.commit_position <= last && events > 0 {
                return Err("replay positions went backwards".into());
            }
            last = event.commit_position;
            events += 1;
        }
    }
    Ok((events, start.elapsed().as_secs_f64()))
}
