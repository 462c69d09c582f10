//! A reconnect storm of worker notification streams against a server taking orders.
//!
//! `cargo run --release -p daojia-benches --bin storm-bench -- --watchers N --data-dir DIR`
//! fills a data directory (under DIR) through the domain with `--workers` registered workers
//! (default 5,000) and `--order-events` order events (default 200,000: orders posted, offered
//! to a worker who declines, offered to another who accepts), then starts `daojia serve
//! --insecure` on it as a child process (this binary again, `--serve`; dispatcher and reactor
//! off) so that its memory is measured alone, and waits for its read models. Then, with
//! `--clients` posting clients (default 64, each on its own connection):
//! - quiet: the clients post orders for `--seconds` (default 10): `post_per_sec_quiet`;
//! - storm: N `WatchNotifications` streams (workers in turn, 100 streams per connection) are
//!   opened at once with `after_position` `--back` order events back (default 50,000) while
//!   the clients post orders for `--seconds` and one client checks health every 10 ms.
//!   Once every stream is open, one credit event per watched worker is appended (the
//!   EventStoreDB protocol): a stream is live when it has received its worker's.
//!
//! Reported: `health_p99_ms` (health checks during the storm), `post_per_sec_during_storm`,
//! `post_per_sec_quiet`, `catch_up_s` (storm start until every stream has its live marker),
//! `server_rss_peak_bytes` (the server process's VmHWM), `notifications` (received by all
//! streams), `streams_cut` (ended by the server as too slow; expected 0).
//!
//! The last line of output is one JSON object.
//!
//! To profile the server, name a wrapper in `STORM_SERVER_WRAPPER` (see
//! `daojia_benches::child::ChildServer::start`), for example `heaptrack`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use daojia_benches::child::{ChildServer, runtime, sample_health, serve};
use daojia_benches::{parse_args, percentile};
use daojia_domain::certificates::IdentityNumber;
use daojia_domain::credit::{CreditEvent, Standing, Subject};
use daojia_domain::events::{self, DomainEvent};
use daojia_domain::order::{
    self, DispatchMode, GeoPoint, OrderCommand, OrderEvent, OrderState, PostOrder, ServiceWindow,
    SlotIndex, TakenVia,
};
use daojia_domain::worker::{self, WorkerEvent};
use daojia_domain::{
    CompanyId, CustomerId, Minutes, OrderId, OrderTerms, RegistryId, Timestamp, WorkerId,
};
use daojia_server::esdb::proto::event_store::client::StreamIdentifier;
use daojia_server::esdb::proto::event_store::client::streams::{
    BatchAppendReq, batch_append_req, batch_append_resp, streams_client::StreamsClient,
};
use daojia_server::esdb::proto::event_store::client::{Uuid, uuid};
use daojia_server::pb;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::worker_app_client::WorkerAppClient;
use daojia_store::{EmbeddedStore, EventId, EventStore, ExpectedRevision, Position, ProposedEvent};
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};

/// Streams opened per HTTP/2 connection.
const STREAMS_PER_CONNECTION: usize = 100;

fn main() {
    if let Err(e) = run() {
        eprintln!("storm-bench: {e}");
        std::process::exit(2);
    }
}

#[allow(clippy::print_stdout)]
fn run() -> Result<(), String> {
    let args = parse_args(&[
        "watchers",
        "data-dir",
        "workers",
        "order-events",
        "back",
        "clients",
        "seconds",
        "serve",
    ])?;
    if let Some(dir) = args.get("serve") {
        return serve(Path::new(dir));
    }
    let watchers: usize = daojia_benches::num(&args, "watchers", 2_000)?;
    let workers: u128 = daojia_benches::num(&args, "workers", 5_000)?;
    let order_events: u64 = daojia_benches::num(&args, "order-events", 200_000)?;
    let back: u64 = daojia_benches::num(&args, "back", 50_000)?;
    let clients: usize = daojia_benches::num(&args, "clients", 64)?;
    let seconds: f64 = daojia_benches::num(&args, "seconds", 10.0)?;
    if watchers == 0 || workers < 2 || clients == 0 || seconds <= 0.0 || back > order_events {
        return Err(
            "--watchers, --clients, --seconds must be positive, --workers at least 2 \
                    and --back at most --order-events"
                .into(),
        );
    }
    let base = args
        .get("data-dir")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("daojia-storm-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = bench(
        &dir,
        watchers,
        workers,
        order_events,
        back,
        clients,
        seconds,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let line = result?;
    println!("{line}");
    Ok(())
}

fn worker_id(n: u128) -> WorkerId {
    WorkerId::from_u128(0x5700_0000_0000 + n)
}

const COMPANY: CompanyId = CompanyId::from_u128(0xC0);
const REGISTRY: RegistryId = RegistryId::from_u128(0x4E6);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn proposed<E: DomainEvent>(id: u128, event: &E) -> Result<ProposedEvent, String> {
    let encoded = events::encode(event).map_err(|e| e.to_string())?;
    Ok(ProposedEvent::json(
        EventId::from_u128(id),
        encoded.event_type,
        serde_json::to_vec(&encoded.data).map_err(|e| e.to_string())?,
    ))
}

fn home() -> GeoPoint {
    GeoPoint::new(27.95, 116.36).unwrap_or_else(|_| unreachable!("a valid point"))
}

/// Registers the workers and writes the orders' events; returns the position `back` order
/// events before the end.
async fn fill(dir: &Path, workers: u128, order_events: u64, back: u64) -> Result<Position, String> {
    let store = EmbeddedStore::open(dir).map_err(|e| e.to_string())?;
    let now = Timestamp(now_ms());
    let mut ids = 0u128;
    let mut next_id = || {
        ids += 1;
        ids
    };
    let mut appends = Vec::new();
    for n in 0..workers {
        let w = worker_id(n);
        // Seeded as facts (no registration rule runs): one valid number serves them all.
        let identity = IdentityNumber::new("110105198001010016").map_err(|e| e.to_string())?;
        let event = WorkerEvent::WorkerRegistered {
            worker: w,
            company: COMPANY,
            identity,
            skills: Vec::new(),
            home: home(),
            registry: REGISTRY,
            at: now,
        };
        appends.push((
            worker::profile_stream(w),
            vec![proposed(next_id(), &event)?],
        ));
    }
    write(&store, appends).await?;

    // Five events per order: posted, offered to one worker who declines, offered to another
    // who accepts.
    let orders = order_events / 5;
    let mut position_back = Position::START;
    let mut written = 0u64;
    let mut wave = Vec::new();
    for k in 0..orders {
        let order_id = OrderId::from_u128(0x0D00_0000_0000 + u128::from(k));
        let start = Timestamp(now.0).plus(Minutes::days(1));
        let post = PostOrder {
            order_id,
            customer: CustomerId::from_u128(0xC1 + u128::from(k % 1000)),
            customer_standing: Standing::Good,
            service: "C01".parse().map_err(|_| "service C01")?,
            quantity: 3,
            workers: 1,
            window: ServiceWindow {
                start,
                end: start.plus(Minutes(180)),
            },
            location: home(),
            dispatch: DispatchMode::Platform,
            terms: OrderTerms::default(),
        };
        let mut events = order::decide(
            &OrderState::default(),
            OrderCommand::Post(Box::new(post)),
            now,
        )
        .map_err(|e| e.to_string())?;
        let w1 = worker_id(u128::from(k) * 2 % workers);
        let w2 = worker_id((u128::from(k) * 2 + 1) % workers);
        events.extend([
            OrderEvent::OrderOffered {
                slot: SlotIndex(0),
                worker: w1,
                offered_at: now,
                expires_at: now.plus(Minutes(5)),
            },
            OrderEvent::OfferDeclined {
                slot: SlotIndex(0),
                worker: w1,
                at: now,
            },
            OrderEvent::OrderOffered {
                slot: SlotIndex(0),
                worker: w2,
                offered_at: now,
                expires_at: now.plus(Minutes(5)),
            },
            OrderEvent::OrderAccepted {
                slot: SlotIndex(0),
                worker: w2,
                via: TakenVia::Offer,
                at: now,
            },
        ]);
        let batch = events
            .iter()
            .map(|e| proposed(next_id(), e))
            .collect::<Result<Vec<_>, _>>()?;
        written += batch.len() as u64;
        wave.push((order_id.stream_name(), batch));
        let crossing = written + 5 > order_events - back && written <= order_events - back;
        if wave.len() == 64 || crossing || k + 1 == orders {
            let last = write(&store, std::mem::take(&mut wave)).await?;
            if crossing || position_back == Position::START && written >= order_events - back {
                position_back = last;
            }
        }
    }
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .map_err(|e| e.to_string())?;
    Ok(position_back)
}

/// Appends the batches concurrently; returns the highest position written.
async fn write(
    store: &EmbeddedStore,
    batches: Vec<(String, Vec<ProposedEvent>)>,
) -> Result<Position, String> {
    let mut last = Position::START;
    for chunk in batches.chunks(256) {
        let tasks = chunk
            .iter()
            .cloned()
            .map(|(stream, batch)| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.append(&stream, ExpectedRevision::Any, batch).await },
                )
            })
            .collect::<Vec<_>>();
        for t in tasks {
            let appended = t
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            last = last.max(appended.position);
        }
    }
    Ok(last)
}

fn bench(
    dir: &Path,
    watchers: usize,
    workers: u128,
    order_events: u64,
    back: u64,
    clients: usize,
    seconds: f64,
) -> Result<serde_json::Value, String> {
    let rt = runtime()?;
    let t = Instant::now();
    let after = rt.block_on(fill(dir, workers, order_events, back))?;
    eprintln!(
        "filled {workers} workers and {order_events} order events in {:.1} s; storm from {after}",
        t.elapsed().as_secs_f64()
    );
    let child = ChildServer::start(dir)?;
    let out = rt.block_on(async {
        let endpoint = Endpoint::from_shared(format!("http://{}", child.addr))
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true);
        let mut channels = Vec::with_capacity(clients);
        for _ in 0..clients {
            channels.push(endpoint.connect().await.map_err(|e| e.to_string())?);
        }
        daojia_benches::settle(&channels[0]).await?;
        let duration = Duration::from_secs_f64(seconds);
        let quiet = post_orders(&channels, duration, 1).await?;
        eprintln!("quiet: {quiet:.0} orders/s");

        let connections = watchers.div_ceil(STREAMS_PER_CONNECTION);
        let mut watch_channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            watch_channels.push(endpoint.connect().await.map_err(|e| e.to_string())?);
        }
        let storm_start = Instant::now();
        let health_end = Instant::now() + duration;
        let health = tokio::spawn(sample_health(channels[0].clone(), move || {
            Instant::now() < health_end
        }));
        let posting = {
            let channels = channels.clone();
            tokio::spawn(async move { post_orders(&channels, duration, 2).await })
        };
        let notifications = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicU64::new(0));
        let mut opened = Vec::with_capacity(watchers);
        for i in 0..watchers {
            let channel = watch_channels[i / STREAMS_PER_CONNECTION].clone();
            let worker = worker_id(i as u128 % workers);
            let notifications = notifications.clone();
            let cut = cut.clone();
            opened.push(tokio::spawn(async move {
                watch(channel, worker, after, notifications, cut).await
            }));
        }
        // Every stream is open (registered with the server's hub): append the live markers.
        let mut live = Vec::with_capacity(watchers);
        for o in opened {
            live.push(o.await.map_err(|e| e.to_string())??);
        }
        let opened_s = storm_start.elapsed().as_secs_f64();
        let marked = (watchers as u128).min(workers);
        markers(&channels[0], marked).await?;
        for l in live {
            l.await.map_err(|e| e.to_string())??;
        }
        let catch_up_s = storm_start.elapsed().as_secs_f64();
        eprintln!("{watchers} streams opened in {opened_s:.2} s, all live after {catch_up_s:.2} s");
        let during = posting.await.map_err(|e| e.to_string())??;
        let mut health = health.await.map_err(|e| e.to_string())??;
        health.sort_unstable();
        eprintln!(
            "storm: {during:.0} orders/s, {} health checks",
            health.len()
        );
        Ok::<_, String>(serde_json::json!({
            "watchers": watchers,
            "health_p99_ms": percentile(&health, 99.0) as f64 / 1000.0,
            "health_max_ms": health.last().copied().unwrap_or(0) as f64 / 1000.0,
            "post_per_sec_during_storm": during.round(),
            "post_per_sec_quiet": quiet.round(),
            "catch_up_s": (catch_up_s * 100.0).round() / 100.0,
            "streams_opened_s": (opened_s * 100.0).round() / 100.0,
            "server_rss_peak_bytes": child.rss_peak(),
            "notifications": notifications.load(Ordering::Relaxed),
            "streams_cut": cut.load(Ordering::Relaxed),
            "workers": workers,
            "order_events": order_events,
            "back": back,
            "clients": clients,
            "seconds": seconds,
        }))
    });
    let stopped = child.stop();
    let out = out?;
    stopped?;
    Ok(out)
}

/// Every client posts orders, one at a time, for `duration`; returns orders per second.
/// `round` keeps order ids apart between runs.
async fn post_orders(channels: &[Channel], duration: Duration, round: u128) -> Result<f64, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = channels
        .iter()
        .enumerate()
        .map(|(client, channel)| {
            let mut customer = CustomerAppClient::new(channel.clone());
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut posted = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let n = round << 96 | (client as u128) << 64 | u128::from(posted + 1);
                    let request = daojia_benches::child::post_order_request(n, client as u128);
                    customer
                        .post_order(request)
                        .await
                        .map_err(|e| format!("PostOrder: {e}"))?;
                    posted += 1;
                }
                Ok::<_, String>(posted)
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0u64;
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

type Live = tokio::task::JoinHandle<Result<(), String>>;

/// Opens one stream; returns the task reading it until its worker's live marker arrives.
async fn watch(
    channel: Channel,
    worker: WorkerId,
    after: Position,
    notifications: Arc<AtomicU64>,
    cut: Arc<AtomicU64>,
) -> Result<Live, String> {
    let mut stream = WorkerAppClient::new(channel)
        .watch_notifications(pb::WatchNotificationsRequest {
            worker_id: worker.to_string(),
            after_position: Some(after.0),
        })
        .await
        .map_err(|e| format!("WatchNotifications: {e}"))?
        .into_inner();
    Ok(tokio::spawn(async move {
        while let Some(n) = stream.next().await {
            match n {
                Ok(n) => {
                    notifications.fetch_add(1, Ordering::Relaxed);
                    if n.event_type == "TrainingCompleted" {
                        return Ok(());
                    }
                }
                Err(status) => {
                    cut.fetch_add(1, Ordering::Relaxed);
                    return Err(format!("a stream of {worker} ended: {status}"));
                }
            }
        }
        Err(format!("a stream of {worker} ended without its marker"))
    }))
}

fn wire_uuid(n: u128) -> Uuid {
    let b = n.to_be_bytes();
    let (hi, lo) = b.split_at(8);
    Uuid {
        value: Some(uuid::Value::Structured(uuid::Structured {
            most_significant_bits: i64::from_be_bytes(hi.try_into().unwrap_or_default()),
            least_significant_bits: i64::from_be_bytes(lo.try_into().unwrap_or_default()),
        })),
    }
}

/// Appends one credit event (a completed training) to each of the first `workers` workers'
/// credit streams through the EventStoreDB protocol.
async fn markers(channel: &Channel, workers: u128) -> Result<(), String> {
    let mut streams = StreamsClient::new(channel.clone());
    let (tx, rx) = tokio::sync::mpsc::channel::<BatchAppendReq>(1024);
    let mut responses = streams
        .batch_append(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    let sender = tokio::spawn(async move {
        for n in 0..workers {
            let w = worker_id(n);
            let event = CreditEvent::TrainingCompleted {
                subject: Subject::Worker(w),
                course: "storm-bench marker".into(),
                at: Timestamp(now_ms()),
            };
            let encoded = events::encode(&event).map_err(|e| e.to_string())?;
            let mut metadata = std::collections::HashMap::new();
            metadata.insert("type".to_string(), encoded.event_type.clone());
            metadata.insert("content-type".to_string(), "application/json".to_string());
            let request = BatchAppendReq {
                correlation_id: Some(wire_uuid(0x3A4C_0000_0000 + n)),
                options: Some(batch_append_req::Options {
                    stream_identifier: Some(StreamIdentifier {
                        stream_name: w.stream_name().into_bytes().into(),
                    }),
                    expected_stream_position: Some(
                        batch_append_req::options::ExpectedStreamPosition::Any(()),
                    ),
                    deadline_option: None,
                }),
                proposed_messages: vec![batch_append_req::ProposedMessage {
                    id: Some(wire_uuid(0x3A4D_0000_0000 + n)),
                    metadata,
                    custom_metadata: Default::default(),
                    data: serde_json::to_vec(&encoded.data)
                        .map_err(|e| e.to_string())?
                        .into(),
                }],
                is_final: true,
            };
            tx.send(request).await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    });
    for _ in 0..workers {
        let resp = responses
            .next()
            .await
            .ok_or("the BatchAppend stream ended early")?
            .map_err(|e| e.to_string())?;
        match resp.result {
            Some(batch_append_resp::Result::Success(_)) => {}
            other => return Err(format!("marker append failed: {other:?}")),
        }
    }
    sender.await.map_err(|e| e.to_string())?
}
