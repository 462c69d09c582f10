//! A full disk under the real server: on a small tmpfs as the data directory, filled up, health
//! turns NOT_SERVING (on the main port and on `--health-listen`) and writes get UNAVAILABLE; once space is freed the log recovers by itself,
//! health turns SERVING again (seen through the health Watch stream), writes succeed, and every
//! acknowledged order is there exactly once.
//!
//! Mounting needs root and a working `mount`; without them the test prints why (mount's own
//! message) and returns.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;
use daojia_domain::Timestamp;
use daojia_server::pb;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::{Cli, Clock, Command};
use daojia_store::{Direction, EmbeddedStore, EventStore, StreamStart};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::as_;
use crate::store::tempdir;

const CUSTOMER_TOKEN: &str = "customer-token-0123456789";

/// 2027-01-15T08:00:00Z, the manual clock's reading.
const NOW: Timestamp = Timestamp(1_800_000_000_000);
const DAY_MS: i64 = 86_400_000;

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) on `dir`, or says why not.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn id(n: u128) -> String {
    daojia_domain::OrderId::from_u128(n).to_string()
}

/// A valid PostOrder (command `n`, order `1000 + n`) with a description long enough that the
/// disk fills in a few hundred of them.
fn post(n: u128) -> pb::PostOrderRequest {
    let at = |ms: i64| {
        Some(pb::Timestamp {
            seconds: ms / 1_000,
            nanos: 0,
        })
    };
    pb::PostOrderRequest {
        command_id: id(n),
        order_id: id(1000 + n),
        customer_id: id(0xC0),
        service_code: "C01".into(),
        quantity: 3,
        workers: 1,
        window_start: at(NOW.0 + DAY_MS),
        window_end: at(NOW.0 + DAY_MS + 3 * 3_600_000),
        location: Some(pb::LatLon {
            lat: 27.95,
            lon: 116.36,
        }),
        dispatch: None,
    }
}

/// Reads the health Watch stream until it says `want`. The bound only turns a server that
/// never changes its health (as before the fix) into a failure rather than a hang.
async fn until(
    watch: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
    want: ServingStatus,
) {
    let wait = async {
        while let Some(item) = watch.next().await {
            if item.unwrap().status == want as i32 {
                return;
            }
        }
        panic!("the health stream ended before {want:?}");
    };
    if tokio::time::timeout(std::time::Duration::from_secs(60), wait)
        .await
        .is_err()
    {
        panic!("health never turned {want:?}");
    }
}

/// Writes to `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xA5u8; 64 << 10];
    loop {
        match f.write(&chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_not_serving_until_space_is_freed_and_loses_nothing() {
    if crate::harness::kurrent_mode() {
        eprintln!("skipped: the disk under test is the embedded store's");
        return;
    }
    let dir = tempdir();
    let mnt = dir.path().join("small");
    let tmpfs = match Tmpfs::mount(&mnt, "8m") {
        Ok(t) => t,
        Err(why) => {
            eprintln!("skipped: cannot mount a small tmpfs as the data directory: {why}");
            return;
        }
    };
    let datadir = mnt.join("data");
    let tokens = format!("customer-app:{CUSTOMER_TOKEN}:shop-backend");
    let argv = [
        "daojia",
        "serve",
        "--data-dir",
        datadir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--health-listen",
        "127.0.0.1:0",
    ];
    let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
        panic!("not serve")
    };
    let mut config = args.resolve(Some(&tokens)).unwrap();
    config.dispatch = None;
    config.reactor = false;
    config.clock = Clock::manual(NOW);
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let probe_listener = tokio::net::TcpListener::bind(config.health_listen.unwrap())
        .await
        .unwrap();
    let probe_addr = probe_listener.local_addr().unwrap();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daojia_server::run_with(
        listener,
        Some(probe_listener),
        config,
        async {
            let _ = stopped.await;
        },
    ));
    let connect = |addr: std::net::SocketAddr| async move {
        Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    let channel = connect(addr).await;
    let mut customer = CustomerAppClient::new(channel.clone());
    let mut health = HealthClient::new(channel);
    let watch_of = |channel: Channel| async move {
        HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    };
    // Health on the main port and on `--health-listen`, as a Kubernetes probe sees it.
    let mut watch = watch_of(connect(addr).await).await;
    let mut probe = watch_of(connect(probe_addr).await).await;
    until(&mut watch, ServingStatus::Serving).await;
    until(&mut probe, ServingStatus::Serving).await;

    let mut acked: Vec<u128> = Vec::new();
    for n in 1..=20 {
        customer
            .post_order(as_(CUSTOMER_TOKEN, post(n)))
            .await
            .unwrap();
        acked.push(n);
    }

    // The disk fills: writes fail with UNAVAILABLE and health turns NOT_SERVING.
    let filler = mnt.join("filler");
    fill(&filler);
    let mut failed = None;
    for n in 21..=2000 {
        match customer.post_order(as_(CUSTOMER_TOKEN, post(n))).await {
            Ok(_) => acked.push(n),
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                failed = Some(n);
                break;
            }
        }
    }
    let failed = failed.expect("the disk never filled");
    eprintln!("the disk filled after {} acknowledged orders", acked.len());
    until(&mut watch, ServingStatus::NotServing).await;
    until(&mut probe, ServingStatus::NotServing).await;
    let status = health
        .check(HealthCheckRequest {
            service: "daojia.v1.CustomerApp".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, ServingStatus::NotServing as i32);
    let again = customer
        .post_order(as_(CUSTOMER_TOKEN, post(failed)))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::Unavailable, "{again:?}");

    // Space is freed: the log recovers by itself and writes succeed again.
    std::fs::remove_file(&filler).unwrap();
    until(&mut watch, ServingStatus::Serving).await;
    until(&mut probe, ServingStatus::Serving).await;
    let retried = customer
        .post_order(as_(CUSTOMER_TOKEN, post(failed)))
        .await
        .unwrap()
        .into_inner();
    assert!(!retried.replayed, "the failed post was not written before");
    acked.push(failed);
    for n in 2001..=2010 {
        customer
            .post_order(as_(CUSTOMER_TOKEN, post(n)))
            .await
            .unwrap();
        acked.push(n);
    }

    // The open Watch streams would hold their connections (and the store) past the drain.
    drop((watch, probe, health, customer));
    shutdown.send(()).unwrap();
    task.await.unwrap().unwrap();
    let store = EmbeddedStore::open(&datadir).unwrap();
    for n in acked {
        let events = store
            .read_stream(
                &format!("order-{}", id(1000 + n)),
                Direction::Forwards,
                StreamStart::Edge,
                10,
            )
            .await
            .unwrap_or_else(|e| panic!("acknowledged order {n}: {e}"));
        assert_eq!(events.len(), 1, "order {n}");
        assert_eq!(events[0].event_type(), "OrderPosted", "order {n}");
    }
    drop(store);
    drop(tmpfs);
}
