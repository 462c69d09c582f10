//! Shared pieces of the benchmark binaries: argument parsing, percentiles, process memory and
//! the raw-disk baseline; for the matching benchmarks, the Fuzhou instance generator, the dense
//! exact assignment solver, the slot × worker cost matrix and the spatial indexes compared.

pub mod child;
pub mod fuzhou;
pub mod geo_index;
pub mod lapjv;
pub mod slot_matrix;
pub mod splitmix;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits until the server at `channel` serves and its read models have caught up with the
/// store, so that their catch-up does not run during a measurement (at most 10 minutes).
pub async fn settle(channel: &tonic::transport::Channel) -> Result<(), String> {
    use daojia_server::pb::ServerInfoRequest;
    use daojia_server::pb::meta_client::MetaClient;
    let mut meta = MetaClient::new(channel.clone());
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(info) = meta.server_info(ServerInfoRequest {}).await {
            let info = info.into_inner();
            if info
                .read_models
                .is_some_and(|r| r.caught_up && r.behind == 0)
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err("the server did not settle within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The configuration of a server benchmarked on `dir`: `daojia serve --insecure` on a
/// loopback port chosen by the system, with the dispatcher and the reactor off (the
/// benchmarks measure the API and the log, not background work).
pub fn bench_server_config(dir: &Path) -> Result<daojia_server::ServerConfig, String> {
    use clap::Parser;
    let argv = [
        "daojia",
        "serve",
        "--insecure",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().ok_or("data directory path is not UTF-8")?,
    ];
    let daojia_server::Command::Serve(args) = daojia_server::Cli::try_parse_from(argv)
        .map_err(|e| e.to_string())?
        .command
    else {
        return Err("not a serve command".into());
    };
    let mut config = args.resolve(None).map_err(|e| e.to_string())?;
    config.dispatch = None;
    config.reactor = false;
    Ok(config)
}

/// Parses `--name value` pairs; `flags` lists the accepted names.
pub fn parse_args(flags: &[&str]) -> Result<std::collections::HashMap<String, String>, String> {
    let mut out = std::collections::HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let Some(name) = a.strip_prefix("--") else {
            return Err(format!("unexpected argument {a:?}"));
        };
        if !flags.contains(&name) {
            return Err(format!(
                "unknown option --{name} (known: --{})",
                flags.join(", --")
            ));
        }
        let value = args
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// A numeric option with a default.
pub fn num<T: std::str::FromStr>(
    args: &std::collections::HashMap<String, String>,
    name: &str,
    default: T,
) -> Result<T, String> {
    match args.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("--{name} must be a number, not {v:?}")),
    }
}

/// The `p`-th percentile (0..=100) of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied().unwrap_or(0)
}

/// The median of some values (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Anonymous resident memory of this process (RssAnon), in bytes.
pub fn rss_anon_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The disk's durable-append baseline: 4 KiB appended to a new file in `dir`, each followed by
/// fdatasync, for `duration`. Returns (syncs per second, median latency in microseconds).
pub fn raw_fdatasync(dir: &Path, duration: Duration) -> std::io::Result<(f64, u64)> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("raw-fdatasync.tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)?;
    let block = vec![0x5au8; 4096];
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        lat.push(t.elapsed().as_micros() as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    lat.sort_unstable();
    Ok((lat.len() as f64 / secs, percentile(&lat, 50.0)))
}

/// A 200-byte-ish JSON event body like the order events daojia writes, padded to `bytes`.
pub fn json_body(seq: u64, bytes: usize) -> Vec<u8> {
    let mut s = format!(
        "{{\"order_id\":\"{seq:032x}\",\"service\":\"cleaning.deep\",\"county\":\"linchuan\",\"price_fen\":{},\"pad\":\"",
        15_000 + seq % 5_000
    );
    const PAD: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    let mut pad = bytes.saturating_sub(s.len() + 2);
    while pad > 0 {
        let n = pad.min(PAD.len());
        s.push_str(PAD.get(..n).unwrap_or_default());
        pad -= n;
    }
    s.push_str("\"}");
    s.into_bytes()
}
