//! A daojia server in a child process (the benchmark binary itself, run with `--serve DIR`),
//! so that its memory is measured alone, and what the server benchmarks do to it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use daojia_server::pb;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A multi-threaded runtime with timers and I/O.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// `--serve DIR`, the child's side: serves [`crate::bench_server_config`] on `dir`, prints
/// `listening ADDR`, and serves until its stdin closes.
#[allow(clippy::print_stdout)]
pub fn serve(dir: &Path) -> Result<(), String> {
    let config = crate::bench_server_config(dir)?;
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening {addr}");
        let stdin_closed = async {
            // Blocking stdin read on the blocking pool: EOF means the parent is done.
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = String::new();
                while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
            })
            .await;
        };
        daojia_server::run(listener, config, stdin_closed)
            .await
            .map_err(|e| e.to_string())
    })
}

/// The parent's handle on the child server.
#[derive(Debug)]
pub struct ChildServer {
    process: std::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ChildServer {
    /// Starts this binary with `--serve dir` and waits until it listens. With
    /// `STORM_SERVER_WRAPPER` set (a profiler such as `heaptrack`), the child is started as
    /// `$STORM_SERVER_WRAPPER <binary> --serve DIR` (its RSS figure is then the wrapper's).
    pub fn start(dir: &Path) -> Result<ChildServer, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = match std::env::var_os("STORM_SERVER_WRAPPER") {
            Some(wrapper) => {
                let mut c = std::process::Command::new(wrapper);
                c.arg(exe);
                c
            }
            None => std::process::Command::new(exe),
        };
        let mut process = command
            .arg("--serve")
            .arg(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let stdout = process.stdout.take().ok_or("no stdout")?;
        // A profiler wrapping the server may print its own lines first.
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .ok_or("the server exited before listening")?
                .map_err(|e| e.to_string())?;
            if let Some(addr) = line.trim().strip_prefix("listening ") {
                break addr.parse().map_err(|e| format!("{e}"))?;
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Ok(ChildServer { process, addr })
    }

    /// The server's peak resident set (VmHWM), in bytes.
    pub fn rss_peak(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// Closes the child's stdin and waits for it to drain and exit; an unclean exit is an
    /// error.
    pub fn stop(mut self) -> Result<(), String> {
        drop(self.process.stdin.take());
        let status = self.process.wait().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the server exited with {status}"))
        }
    }
}

/// Health checks every 10 ms while `going()` holds; their latencies in microseconds.
pub async fn sample_health(channel: Channel, going: impl Fn() -> bool) -> Result<Vec<u64>, String> {
    let mut health = HealthClient::new(channel);
    let mut lat = Vec::new();
    while going() {
        let t = Instant::now();
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|e| format!("health: {e}"))?;
        lat.push(t.elapsed().as_micros() as u64);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(lat)
}

/// A PostOrder for tomorrow morning (wall clock: this is a load generator), order `n` of
/// customer `customer`: one worker, three hours of cleaning in Taining.
pub fn post_order_request(n: u128, customer: u128) -> pb::PostOrderRequest {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let tomorrow = now_ms / 1000 + 86_400;
    let id = |n: u128| daojia_domain::WorkerId::from_u128(n).to_string();
    pb::PostOrderRequest {
        command_id: id(n | 1 << 127),
        order_id: id(n),
        customer_id: id(0xC0 + customer),
        service_code: "C01".into(),
        quantity: 3,
        workers: 1,
        window_start: Some(pb::Timestamp {
            seconds: tomorrow,
            nanos: 0,
        }),
        window_end: Some(pb::Timestamp {
            seconds: tomorrow + 3 * 3600,
            nanos: 0,
        }),
        location: Some(pb::LatLon {
            lat: 27.95,
            lon: 116.36,
        }),
        dispatch: None,
    }
}
