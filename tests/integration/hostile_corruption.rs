//! A bit flipped in the last record after a clean shutdown: the index snapshot written at the
//! close proves that record durable, so the next start fails naming the segment file instead of
//! cutting an acknowledged event as a torn tail; `daojia log verify` reports the record, and
//! nothing was cut.

use std::path::{Path, PathBuf};

use clap::Parser;
use daojia_server::{Cli, Command, ServeError};
use tokio::sync::oneshot;
use tokio_stream::StreamExt;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::lifecycle::Platform;

/// The newest segment file of the log in `dir`.
fn newest_segment(dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("segment-") && name.ends_with(".log")
        })
        .collect();
    segments.sort();
    segments.pop().unwrap()
}

/// Offset of the last record of a segment file (FORMAT.md: a 32-byte header, then frames of
/// `len: u32, crc: u32, payload (len bytes), len: u32`).
fn last_record_offset(bytes: &[u8]) -> usize {
    let mut at = 32;
    let mut last = None;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        last = Some(at);
        at += len + 12;
    }
    assert_eq!(at, bytes.len(), "the segment ends with a whole record");
    last.expect("the segment holds a record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bit_flipped_in_the_last_record_after_a_clean_stop_fails_the_start_naming_the_file() {
    let platform = Platform::start().await;
    let position = platform.post(0xA1, 0x0A1).await;
    assert!(position > 0);
    let dir = platform.stop().await;
    let data = dir.path().join("data");

    let segment = newest_segment(&data);
    let mut bytes = std::fs::read(&segment).unwrap();
    let last = last_record_offset(&bytes);
    bytes[last + 40] ^= 0x04;
    std::fs::write(&segment, &bytes).unwrap();

    // Start again on the embedded store: the open must fail and say where.
    let argv = [
        "daojia",
        "serve",
        "--insecure",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--shutdown-grace",
        "0",
    ];
    let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
        panic!("not serve")
    };
    let config = args.resolve(None).unwrap();
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut task = tokio::spawn(daojia_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    // Should the server come up anyway (the bug: the record cut as a torn tail), it is
    // stopped as soon as it says SERVING, and the check below fails instead of hanging.
    let serving = async {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .ok()?;
        let mut updates = HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?
            .into_inner();
        while let Some(Ok(update)) = updates.next().await {
            if update.status == ServingStatus::Serving as i32 {
                return Some(());
            }
        }
        None
    };
    let served = tokio::select! {
        served = &mut task => served.unwrap(),
        Some(()) = serving => {
            let _ = stop.send(());
            task.await.unwrap()
        }
    };
    let file = segment.file_name().unwrap().to_str().unwrap().to_string();
    match served {
        Err(e @ ServeError::OpenStore { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&file), "{message}");
            assert!(message.contains(&format!("offset {last}")), "{message}");
        }
        Err(e) => panic!("expected the store open to fail, got {e}"),
        Ok(()) => panic!("the server started on a damaged durable record"),
    }
    // Nothing was cut.
    assert_eq!(std::fs::read(&segment).unwrap(), bytes);

    // The operator's check names the record and exits non-zero.
    let argv = [
        "daojia",
        "log",
        "verify",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let Command::Log(args) = Cli::try_parse_from(argv).unwrap().command else {
        panic!("not log")
    };
    let mut out = Vec::new();
    let code = daojia_server::log_cli::run(&args, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("DAMAGED {file} offset {last} ")),
        "{out}"
    );
    assert!(out.contains("1 damaged"), "{out}");
}
