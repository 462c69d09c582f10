//! A flood of orders: far more concurrent calls than the server admits, at once.
//!
//! `cargo run --release -p daojia-benches --bin flood-bench -- --calls N --data-dir DIR`
//! starts `daojia serve --insecure` on an empty data directory as a child process (this
//! binary again, `--serve`; dispatcher and reactor off) so that its memory is measured alone,
//! then sends N `CustomerApp.PostOrder` calls at once (default 100,000) over `--connections`
//! HTTP/2 connections (default 64) while one client checks health every 10 ms on its own
//! connection. Every call is answered: admitted ones with the order's position, the others at
//! once with RESOURCE_EXHAUSTED and retry advice (`--max-inflight-commands`, default 1,024).
//!
//! Reported: `ok` and `shed` (RESOURCE_EXHAUSTED) counts, `other` (any other status; expected
//! 0), `shed_with_retry_info` (shed answers carrying `retry-after-ms`), `shed_p50_ms` /
//! `shed_p99_ms` and `ok_p99_ms` (call latencies from the flood's start), `flood_s` (until
//! the last answer), `health_p99_ms` / `health_max_ms` during the flood (health checks
//! every 10 ms until the last answer), `ok_with_position` (admitted answers carrying a commit
//! position; equal to `ok`), `server_rss_peak_bytes` (VmHWM).
//!
//! The last line of output is one JSON object.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use daojia_benches::child::{ChildServer, post_order_request, runtime, sample_health, serve};
use daojia_benches::{parse_args, percentile};
use daojia_server::pb::customer_app_client::CustomerAppClient;
use tonic::Code;
use tonic::transport::Endpoint;

fn main() {
    if let Err(e) = run() {
        eprintln!("flood-bench: {e}");
        std::process::exit(2);
    }
}

#[allow(clippy::print_stdout)]
fn run() -> Result<(), String> {
    let args = parse_args(&["calls", "connections", "data-dir", "serve"])?;
    if let Some(dir) = args.get("serve") {
        return serve(Path::new(dir));
    }
    let calls: usize = daojia_benches::num(&args, "calls", 100_000)?;
    let connections: usize = daojia_benches::num(&args, "connections", 64)?;
    if calls == 0 || connections == 0 {
        return Err("--calls and --connections must be positive".into());
    }
    let base = args
        .get("data-dir")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("daojia-flood-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = bench(&dir, calls, connections);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", result?);
    Ok(())
}

/// What became of one call: its status code (`Ok` for success), whether it carried retry
/// advice, and when it was answered (microseconds from the flood's start).
type Answer = (Code, bool, u64);

fn bench(dir: &Path, calls: usize, connections: usize) -> Result<serde_json::Value, String> {
    let rt = runtime()?;
    let child = ChildServer::start(dir)?;
    let out = rt.block_on(async {
        let endpoint = Endpoint::from_shared(format!("http://{}", child.addr))
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true);
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            channels.push(endpoint.connect().await.map_err(|e| e.to_string())?);
        }
        daojia_benches::settle(&channels[0]).await?;

        // The health client runs on a thread and runtime of its own, so that its figures are
        // the server's answer times and not this process's 100,000 tasks queueing.
        let start = Instant::now();
        let flooding = Arc::new(AtomicBool::new(true));
        let health = {
            let flooding = flooding.clone();
            let endpoint = endpoint.clone();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?
                    .block_on(async {
                        let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
                        sample_health(channel, || flooding.load(Ordering::Relaxed)).await
                    })
            })
        };
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..calls {
            let mut customer = CustomerAppClient::new(channels[i % connections].clone());
            let request = post_order_request(0xF1_00D0 << 64 | i as u128, (i % 1000) as u128);
            tasks.spawn(async move {
                let answer = customer.post_order(request).await;
                let at = start.elapsed().as_micros() as u64;
                let answer: Answer = match answer {
                    Ok(reply) => (Code::Ok, reply.into_inner().commit_position > 0, at),
                    Err(status) => (
                        status.code(),
                        status.metadata().get("retry-after-ms").is_some(),
                        at,
                    ),
                };
                answer
            });
        }
        let mut answers = Vec::with_capacity(calls);
        while let Some(answer) = tasks.join_next().await {
            answers.push(answer.map_err(|e| e.to_string())?);
        }
        let flood_s = start.elapsed().as_secs_f64();
        flooding.store(false, Ordering::Relaxed);
        let mut health = health.join().map_err(|_| "the health thread panicked")??;
        health.sort_unstable();

        let mut codes: BTreeMap<String, u64> = BTreeMap::new();
        let mut ok = Vec::new();
        let mut shed = Vec::new();
        let mut shed_with_retry = 0u64;
        let mut ok_with_position = 0u64;
        for (code, flag, at) in &answers {
            *codes.entry(format!("{code:?}")).or_default() += 1;
            match code {
                Code::Ok => {
                    ok.push(*at);
                    ok_with_position += u64::from(*flag);
                }
                Code::ResourceExhausted => {
                    shed.push(*at);
                    shed_with_retry += u64::from(*flag);
                }
                _ => {}
            }
        }
        ok.sort_unstable();
        shed.sort_unstable();
        let ms = |v: u64| (v as f64 / 100.0).round() / 10.0;
        let other = calls - ok.len() - shed.len();
        eprintln!(
            "{calls} calls: {} ok, {} shed, {other} other ({codes:?}) in {flood_s:.2} s",
            ok.len(),
            shed.len()
        );
        Ok::<_, String>(serde_json::json!({
            "calls": calls,
            "connections": connections,
            "ok": ok.len(),
            "ok_with_position": ok_with_position,
            "shed": shed.len(),
            "other": other,
            "codes": codes,
            "shed_with_retry_info": shed_with_retry,
            "shed_p50_ms": ms(percentile(&shed, 50.0)),
            "shed_p99_ms": ms(percentile(&shed, 99.0)),
            "ok_p99_ms": ms(percentile(&ok, 99.0)),
            "flood_s": (flood_s * 100.0).round() / 100.0,
            "health_p99_ms": ms(percentile(&health, 99.0)),
            "health_max_ms": ms(health.last().copied().unwrap_or(0)),
            "server_rss_peak_bytes": child.rss_peak(),
        }))
    });
    let stopped = child.stop();
    let out = out?;
    stopped?;
    Ok(out)
}
