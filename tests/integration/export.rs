//! `daojia export` against a real server on port 0: every event once and in order in JSON
//! lines and in parquet (read back with the parquet reader), resuming after a run killed
//! between writing data and its checkpoint, server-side filters, and bad input.

use std::fs;
use std::path::{Path, PathBuf};

use clap::Parser;
use daojia_server::esdb::proto::event_store::client::streams::append_req::{self, options};
use daojia_server::esdb::proto::event_store::client::streams::streams_client::StreamsClient;
use daojia_server::esdb::proto::event_store::client::streams::{AppendReq, append_resp};
use daojia_server::esdb::proto::event_store::client::{Empty, StreamIdentifier, Uuid, uuid};
use daojia_server::export::{ExportError, Summary};
use daojia_server::{Cli, Clock, Command};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{Serve, Started, as_};
use crate::store::{TempDir, tempdir};

const ADMIN_TOKEN: &str = "admin-token-0123456789abcd";
const ANALYTICS_TOKEN: &str = "analytics-token-0123456789";

/// An appended event: stream, type, id, content type, data.
#[derive(Clone, Debug)]
struct Sent {
    stream: String,
    event_type: String,
    id: String,
    content_type: &'static str,
    data: Vec<u8>,
}

struct Fixture {
    server: Started,
    _data: TempDir,
    out: TempDir,
    sent: Vec<Sent>,
}

impl Fixture {
    async fn start() -> Fixture {
        let data = tempdir();
        let tokens = format!("admin:{ADMIN_TOKEN}:root,analytics:{ANALYTICS_TOKEN}:ana");
        let server = Serve {
            datadir: data.path(),
            tokens: &tokens,
            clock: Clock::system(),
            dispatch: false,
            reactor: false,
            args: &[],
            service: "",
        }
        .start()
        .await;
        Fixture {
            server,
            _data: data,
            out: tempdir(),
            sent: Vec::new(),
        }
    }

    fn server(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }

    /// Appends `count` JSON events of `event_type` to `stream`, one call each.
    async fn append(&mut self, stream: &str, event_type: &str, count: usize) {
        for _ in 0..count {
            let n = self.sent.len();
            let data = serde_json::to_vec(&json!({ "n": n, "stream": stream })).unwrap();
            self.append_raw(stream, event_type, "application/json", data)
                .await;
        }
    }

    async fn append_raw(
        &mut self,
        stream: &str,
        event_type: &str,
        content_type: &'static str,
        data: Vec<u8>,
    ) {
        let id = format!("00000000-0000-4000-8000-{:012}", self.sent.len() + 1);
        let messages = vec![
            AppendReq {
                content: Some(append_req::Content::Options(append_req::Options {
                    stream_identifier: Some(StreamIdentifier {
                        stream_name: stream.as_bytes().to_vec().into(),
                    }),
                    expected_stream_revision: Some(options::ExpectedStreamRevision::Any(Empty {})),
                })),
            },
            AppendReq {
                content: Some(append_req::Content::ProposedMessage(
                    append_req::ProposedMessage {
                        id: Some(Uuid {
                            value: Some(uuid::Value::String(id.clone())),
                        }),
                        metadata: [
                            ("type".to_owned(), event_type.to_owned()),
                            ("content-type".to_owned(), content_type.to_owned()),
                        ]
                        .into(),
                        custom_metadata: br#"{"actor":"test"}"#.to_vec().into(),
                        data: data.clone().into(),
                    },
                )),
            },
        ];
        append_one(&self.server.channel, messages).await;
        self.sent.push(Sent {
            stream: stream.into(),
            event_type: event_type.into(),
            id,
            content_type,
            data,
        });
    }

    /// The events an unfiltered export without system events must hold, in order.
    fn expected(&self) -> Vec<&Sent> {
        self.sent
            .iter()
            .filter(|s| !s.stream.starts_with('$') && !s.event_type.starts_with('$'))
            .collect()
    }

    /// A small log: three streams, a binary event and a system event.
    async fn seed(&mut self) {
        self.append("order-a", "OrderPosted", 4).await;
        self.append("worker-b", "WorkerJoined", 3).await;
        self.append_raw(
            "$$order-a",
            "$metadata",
            "application/json",
            b"{\"$tb\":0}".to_vec(),
        )
        .await;
        self.append_raw(
            "blob-c",
            "BlobStored",
            "application/octet-stream",
            vec![0, 255, 10, 13],
        )
        .await;
        self.append("order-a", "OrderTaken", 2).await;
    }

    /// Runs `daojia export --server <this server> ARGS` with the analytics token.
    async fn export(&self, args: &[&str]) -> Result<Summary, ExportError> {
        let server = self.server();
        let mut argv = vec!["daojia", "export", "--server", &server];
        if !args
            .iter()
            .any(|a| a.starts_with("--server") || *a == "--token")
        {
            argv.extend(["--token", ANALYTICS_TOKEN]);
        }
        argv.extend(args);
        run_export(&argv).await
    }
}

async fn append_one(channel: &Channel, messages: Vec<AppendReq>) {
    let reply = StreamsClient::new(channel.clone())
        .append(as_(ADMIN_TOKEN, tokio_stream::iter(messages)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(reply.result, Some(append_resp::Result::Success(_))),
        "{reply:?}"
    );
}

async fn run_export(argv: &[&str]) -> Result<Summary, ExportError> {
    let Command::Export(args) = Cli::try_parse_from(argv).unwrap().command else {
        panic!("not export")
    };
    daojia_server::export::run(args, None, false).await
}

fn jsonl(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Asserts that `lines` are exactly `expected`, in order, with increasing positions.
fn assert_same_events(lines: &[Value], expected: &[&Sent]) {
    let got: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["stream"].as_str().unwrap(),
                l["event_type"].as_str().unwrap(),
                l["event_id"].as_str().unwrap(),
            )
        })
        .collect();
    let want: Vec<(&str, &str, &str)> = expected
        .iter()
        .map(|s| (s.stream.as_str(), s.event_type.as_str(), s.id.as_str()))
        .collect();
    assert_eq!(got, want);
    let positions: Vec<u64> = lines
        .iter()
        .map(|l| l["position"].as_u64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions not increasing: {positions:?}"
    );
}

/// Rows of every part file in order: (position, stream, event type, event id, data).
fn parquet_rows(dir: &Path) -> Vec<(u64, String, String, String, Vec<u8>)> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    names.sort();
    let mut rows = Vec::new();
    for name in names {
        let reader = SerializedFileReader::new(fs::File::open(dir.join(name)).unwrap()).unwrap();
        for row in reader.get_row_iter(None).unwrap() {
            let row = row.unwrap();
            rows.push((
                row.get_ulong(0).unwrap(),
                row.get_string(1).unwrap().clone(),
                row.get_string(4).unwrap().clone(),
                row.get_string(3).unwrap().clone(),
                row.get_bytes(8).unwrap().data().to_vec(),
            ));
        }
    }
    rows
}

fn part_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_holds_every_event_once_in_order_and_a_rerun_adds_only_new_ones() {
    let mut f = Fixture::start().await;
    f.seed().await;
    let out = f.path("events.jsonl");
    let out_arg = out.to_str().unwrap();
    // Pages of 3 overlap by one event: every page boundary is crossed.
    let summary = f
        .export(&["--format", "jsonl", "--out", out_arg, "--page-size", "3"])
        .await
        .unwrap();
    let lines = jsonl(&out);
    assert_same_events(&lines, &f.expected());
    assert_eq!(summary.events, 10);
    assert_eq!(summary.total_events, 10);
    assert_eq!(summary.bytes, fs::metadata(&out).unwrap().len());
    assert!(!summary.resumed);

    // The fields of one JSON event and of the binary one.
    let first = &lines[0];
    assert_eq!(first["revision"], 0);
    assert_eq!(first["content_type"], "application/json");
    assert_eq!(first["data"], json!({"n": 0, "stream": "order-a"}));
    assert_eq!(first["metadata"], json!({"actor": "test"}));
    let ticks = first["created_ticks"].as_i64().unwrap();
    let now_ticks = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            / 100,
    )
    .unwrap();
    assert!(
        ticks > now_ticks - 600 * 10_000_000 && ticks <= now_ticks,
        "{ticks}"
    );
    let created = first["created"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.starts_with("20"),
        "{created}"
    );
    let blob = lines.iter().find(|l| l["stream"] == "blob-c").unwrap();
    assert_eq!(blob["data_base64"], "AP8KDQ==");
    assert!(blob.get("data").is_none());
    let taken = lines
        .iter()
        .find(|l| l["event_type"] == "OrderTaken")
        .unwrap();
    assert_eq!(taken["revision"], 4);

    // Nothing new: nothing written. New events: only they are added.
    let again = f
        .export(&["--format", "jsonl", "--out", out_arg, "--page-size", "3"])
        .await
        .unwrap();
    assert_eq!((again.events, again.bytes, again.resumed), (0, 0, true));
    assert_eq!(jsonl(&out).len(), 10);
    f.append("worker-b", "WorkerLeft", 2).await;
    let more = f
        .export(&[
            "--format",
            "jsonl",
            "--out",
            out_arg,
            "--page-size",
            "3",
            "--json",
        ])
        .await
        .unwrap();
    assert_eq!((more.events, more.total_events), (2, 12));
    assert!(more.from > summary.to.unwrap());
    assert_same_events(&jsonl(&out), &f.expected());
    let line: Value = serde_json::from_str(&more.json()).unwrap();
    assert_eq!(line["events"], 2);
    assert_eq!(line["to"], jsonl(&out)[11]["position"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_parts_read_back_with_every_event_once_and_a_rerun_adds_a_part() {
    let mut f = Fixture::start().await;
    f.seed().await;
    let out = f.path("events.parquet");
    let out_arg = out.to_str().unwrap();
    let args = [
        "--format",
        "parquet",
        "--out",
        out_arg,
        "--part-events",
        "4",
    ];
    let summary = f.export(&args).await.unwrap();
    assert_eq!(summary.events, 10);
    assert_eq!(
        part_names(&out),
        [
            "_checkpoint",
            "part-000000.parquet",
            "part-000001.parquet",
            "part-000002.parquet"
        ]
    );
    let rows = parquet_rows(&out);
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.1.as_str(), r.2.as_str(), r.3.as_str()))
        .collect();
    let want: Vec<(&str, &str, &str)> = f
        .expected()
        .iter()
        .map(|s| (s.stream.as_str(), s.event_type.as_str(), s.id.as_str()))
        .collect();
    assert_eq!(got, want);
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
    for (row, sent) in rows.iter().zip(f.expected()) {
        assert_eq!(row.4, sent.data, "{}", sent.content_type);
    }

    f.append("order-z", "OrderPosted", 3).await;
    let more = f.export(&args).await.unwrap();
    assert_eq!((more.events, more.total_events), (3, 13));
    assert!(part_names(&out).contains(&"part-000003.parquet".to_owned()));
    assert_eq!(parquet_rows(&out).len(), 13);
    assert_eq!(parquet_rows(&out)[12].1, "order-z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_between_data_and_checkpoint_resumes_without_duplicates_or_gaps() {
    let mut f = Fixture::start().await;
    f.seed().await;

    // JSON lines: a first run stops after 3 events (committed every 2).
    let out = f.path("killed.jsonl");
    let out_arg = out.to_str().unwrap();
    let args = ["--format", "jsonl", "--out", out_arg, "--page-size", "4"];
    let mut first: Vec<&str> = args.to_vec();
    first.extend(["--max-events", "3", "--commit-every", "2"]);
    assert_eq!(f.export(&first).await.unwrap().events, 3);
    let checkpoint = PathBuf::from(format!("{out_arg}.checkpoint"));
    let committed = fs::read(&checkpoint).unwrap();
    // The next run writes everything, then "dies" before its checkpoint lands: the old
    // checkpoint stays, and a torn line follows the data it did not commit.
    f.export(&args).await.unwrap();
    fs::write(&checkpoint, &committed).unwrap();
    let mut file = fs::OpenOptions::new().append(true).open(&out).unwrap();
    std::io::Write::write_all(&mut file, b"{\"position\":99999,\"str").unwrap();
    drop(file);
    let resumed = f.export(&args).await.unwrap();
    assert!(resumed.resumed);
    assert_eq!((resumed.events, resumed.total_events), (7, 10));
    assert_same_events(&jsonl(&out), &f.expected());

    // Parquet: two parts counted, a third finished but not counted, a fourth torn.
    let dir = f.path("killed.parquet");
    let dir_arg = dir.to_str().unwrap();
    let args = [
        "--format",
        "parquet",
        "--out",
        dir_arg,
        "--part-events",
        "2",
    ];
    let mut first: Vec<&str> = args.to_vec();
    first.extend(["--max-events", "4"]);
    assert_eq!(f.export(&first).await.unwrap().events, 4);
    let committed = fs::read(dir.join("_checkpoint")).unwrap();
    f.export(&args).await.unwrap();
    fs::write(dir.join("_checkpoint"), &committed).unwrap();
    fs::write(
        dir.join("part-000003.parquet.tmp"),
        b"PAR1 and then nothing",
    )
    .unwrap();
    assert!(dir.join("part-000004.parquet").exists());
    let resumed = f.export(&args).await.unwrap();
    assert_eq!((resumed.events, resumed.total_events), (6, 10));
    let ids: Vec<String> = parquet_rows(&dir).into_iter().map(|r| r.3).collect();
    let want: Vec<String> = f.expected().iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, want);
    assert!(!dir.join("part-000003.parquet.tmp").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_streams_or_event_types_and_system_events_are_opt_in() {
    let mut f = Fixture::start().await;
    f.seed().await;
    let export = async |name: &str, filter: &[&str]| {
        let out = f.path(name);
        let mut args = vec!["--format", "jsonl", "--out", out.to_str().unwrap()];
        args.extend(filter);
        f.export(&args).await.unwrap();
        jsonl(&out)
            .into_iter()
            .map(|l| {
                l["stream"].as_str().unwrap().to_owned() + "/" + l["event_type"].as_str().unwrap()
            })
            .collect::<Vec<_>>()
    };
    let streams = export(
        "s.jsonl",
        &["--stream-prefix", "worker-", "--stream-prefix", "blob-"],
    )
    .await;
    assert_eq!(
        streams,
        [
            "worker-b/WorkerJoined",
            "worker-b/WorkerJoined",
            "worker-b/WorkerJoined",
            "blob-c/BlobStored"
        ]
    );
    let types = export("t.jsonl", &["--event-type-regex", "^Order(Taken|Gone)$"]).await;
    assert_eq!(types, ["order-a/OrderTaken", "order-a/OrderTaken"]);
    let prefix = export("p.jsonl", &["--event-type-prefix", "Blob"]).await;
    assert_eq!(prefix, ["blob-c/BlobStored"]);
    let regex = export("r.jsonl", &["--stream-regex", "^order-"]).await;
    assert_eq!(regex.len(), 6);
    let all = export("all.jsonl", &["--include-system"]).await;
    assert_eq!(all.len(), 11);
    assert_eq!(all[7], "$$order-a/$metadata");

    // A different filter on the same output is refused, not mixed in.
    let out = f.path("s.jsonl");
    let err = f
        .export(&[
            "--format",
            "jsonl",
            "--out",
            out.to_str().unwrap(),
            "--stream-prefix",
            "order-",
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("--restart"), "{err}");

    // Two filter kinds at once cannot be asked for.
    let argv = [
        "daojia",
        "export",
        "--format",
        "jsonl",
        "--out",
        "x",
        "--stream-prefix",
        "a",
        "--event-type-prefix",
        "b",
    ];
    assert!(Cli::try_parse_from(argv).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_clearly_and_loses_nothing() {
    let mut f = Fixture::start().await;
    f.append("order-a", "OrderPosted", 3).await;
    let out = f.path("events.jsonl");
    let out_arg = out.to_str().unwrap();
    let args = ["--format", "jsonl", "--out", out_arg];
    f.export(&args).await.unwrap();
    let data = fs::read(&out).unwrap();
    let checkpoint = PathBuf::from(format!("{out_arg}.checkpoint"));

    // Unknown format.
    let err = Cli::try_parse_from(["daojia", "export", "--format", "csv", "--out", "x"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("csv"), "{err}");

    // An output that cannot be created.
    let missing = f.path("no/such/dir/events.jsonl");
    let err = f
        .export(&["--format", "jsonl", "--out", missing.to_str().unwrap()])
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::Io { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    let err = f
        .export(&["--format", "parquet", "--out", out_arg])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");

    // Wrong token, wrong Basic password, a server that is down: the output is untouched.
    let err = f
        .export(&[
            "--format",
            "jsonl",
            "--out",
            out_arg,
            "--token",
            "wrong-token-0123456789",
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::Credentials { .. }), "{err}");
    let basic = format!("http://ana:wrong-token-0123456789@{}", f.server.addr);
    let err = run_export(&[
        "daojia", "export", "--server", &basic, "--format", "jsonl", "--out", out_arg,
    ])
    .await
    .unwrap_err();
    assert!(matches!(err, ExportError::Credentials { .. }), "{err}");
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let down = format!("http://{down}");
    let err = run_export(&[
        "daojia", "export", "--server", &down, "--format", "jsonl", "--out", out_arg,
    ])
    .await
    .unwrap_err();
    assert!(matches!(err, ExportError::Connect { .. }), "{err}");
    assert_eq!(fs::read(&out).unwrap(), data);

    // The right Basic credentials work (nothing new to export).
    let basic = format!("http://ana:{ANALYTICS_TOKEN}@{}", f.server.addr);
    let ok = run_export(&[
        "daojia", "export", "--server", &basic, "--format", "jsonl", "--out", out_arg,
    ])
    .await
    .unwrap();
    assert_eq!((ok.events, ok.total_events), (0, 3));

    // --from that disagrees with the checkpoint, then --restart.
    let err = f
        .export(&["--format", "jsonl", "--out", out_arg, "--from", "1"])
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::Mismatch { .. }), "{err}");
    assert_eq!(fs::read(&out).unwrap(), data);

    // A corrupted checkpoint is refused and the data kept.
    let good = fs::read(&checkpoint).unwrap();
    fs::write(&checkpoint, b"{\"version\":1,\"form").unwrap();
    let err = f.export(&args).await.unwrap_err();
    assert!(
        matches!(err, ExportError::CorruptCheckpoint { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(".checkpoint"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), data);
    fs::write(&checkpoint, &good).unwrap();

    // A file no export wrote is not overwritten.
    let foreign = f.path("notes.txt");
    fs::write(&foreign, "keep me\n").unwrap();
    let err = f
        .export(&["--format", "jsonl", "--out", foreign.to_str().unwrap()])
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::ForeignOutput { .. }), "{err}");
    assert_eq!(fs::read_to_string(&foreign).unwrap(), "keep me\n");

    // --restart starts over from --from.
    let second = jsonl(&out)[1]["position"].as_u64().unwrap().to_string();
    let again = f
        .export(&[
            "--format",
            "jsonl",
            "--out",
            out_arg,
            "--from",
            &second,
            "--restart",
        ])
        .await
        .unwrap();
    assert_eq!(
        (again.events, again.total_events, again.resumed),
        (2, 2, false)
    );
    let lines = jsonl(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["position"].as_u64().unwrap().to_string(), second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_servers_are_exported_with_the_ca_certificate() {
    let dir = tempdir();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    fs::write(&cert_path, cert.pem()).unwrap();
    fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    let data = dir.path().join("data");
    let argv = [
        "daojia",
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ];
    let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
        panic!("not serve")
    };
    let tokens = format!("admin:{ADMIN_TOKEN}:root,analytics:{ANALYTICS_TOKEN}:ana");
    let config = args.resolve(Some(&tokens)).unwrap();
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daojia_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(cert.pem()))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut updates = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(update) = updates.next().await {
        if update.unwrap().status == ServingStatus::Serving as i32 {
            break;
        }
    }
    let messages = vec![
        AppendReq {
            content: Some(append_req::Content::Options(append_req::Options {
                stream_identifier: Some(StreamIdentifier {
                    stream_name: b"order-tls".to_vec().into(),
                }),
                expected_stream_revision: Some(options::ExpectedStreamRevision::NoStream(Empty {})),
            })),
        },
        AppendReq {
            content: Some(append_req::Content::ProposedMessage(
                append_req::ProposedMessage {
                    id: Some(Uuid {
                        value: Some(uuid::Value::String(
                            "00000000-0000-4000-8000-00000000aaaa".into(),
                        )),
                    }),
                    metadata: [
                        ("type".to_owned(), "OrderPosted".to_owned()),
                        ("content-type".to_owned(), "application/json".to_owned()),
                    ]
                    .into(),
                    custom_metadata: Default::default(),
                    data: b"{}".to_vec().into(),
                },
            )),
        },
    ];
    append_one(&channel, messages).await;

    let out = dir.path().join("tls.jsonl");
    let server = format!("https://localhost:{port}");
    let base = ["daojia", "export", "--server", &server, "--format", "jsonl"];
    let mut without_ca = base.to_vec();
    without_ca.extend(["--out", out.to_str().unwrap(), "--token", ANALYTICS_TOKEN]);
    let err = run_export(&without_ca).await.unwrap_err();
    assert!(err.to_string().contains("--ca-cert"), "{err}");

    let mut with_ca = without_ca.clone();
    with_ca.extend(["--tls-ca", cert_path.to_str().unwrap()]);
    let summary = run_export(&with_ca).await.unwrap();
    assert_eq!(summary.events, 1);
    assert_eq!(jsonl(&out)[0]["stream"], "order-tls");

    // Basic credentials in an EventStoreDB connection string, TLS by default.
    let esdb = format!("esdb://ana:{ANALYTICS_TOKEN}@localhost:{port}");
    let out2 = dir.path().join("esdb.jsonl");
    let argv = [
        "daojia",
        "export",
        "--server",
        &esdb,
        "--format",
        "jsonl",
        "--out",
        out2.to_str().unwrap(),
        "--ca-cert",
        cert_path.to_str().unwrap(),
    ];
    assert_eq!(run_export(&argv).await.unwrap().events, 1);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
