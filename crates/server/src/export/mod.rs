//! `daojia export`: copies the event log out of a server, over the EventStoreDB protocol (so
//! it works against daojia and against KurrentDB alike), into a JSON-lines file or a
//! directory of parquet files, resumably.
//!
//! The export reads `$all` forwards in pages from `--from` (inclusive), optionally filtered on
//! the server by stream or event-type prefix or regex, skips system events (stream or type
//! starting with `$`) unless `--include-system`, and hands every record to a [`sink::Sink`].
//! Sinks commit (data fsynced, then the checkpoint replaced atomically) every so many
//! events; a rerun of the same command resumes after the last committed position. The file
//! formats and the checkpoint are described in [`sink`], [`record`] and [`checkpoint`], and
//! for users in the server crate's README.

pub mod checkpoint;
mod driver;
pub mod progress;
pub mod record;
pub mod sink;
pub mod source;

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::json;

pub use self::driver::run;

/// The environment variable holding the bearer token when `--token` is not given.
pub const TOKEN_ENV: &str = "DAOJIA_TOKEN";

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per event and line, in one file (`--out FILE`).
    Jsonl,
    /// Parquet part files with typed columns, in a directory (`--out DIR`).
    Parquet,
}

impl Format {
    /// The name on the command line and in the checkpoint.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

/// `daojia export` options, as given.
#[derive(Clone, Debug, Args)]
pub struct ExportArgs {
    /// The server: `host:port`, `http://host:port`, `https://host:port`, or an EventStoreDB
    /// connection string such as `esdb://host:2113?tls=false`; `user:password@` before the
    /// host sends Basic credentials.
    #[arg(long, value_name = "ADDR", default_value = "http://127.0.0.1:2113")]
    pub server: String,
    /// Bearer token (default: the DAOJIA_TOKEN environment variable; none is needed against a
    /// server run with `--insecure`).
    #[arg(long)]
    pub token: Option<String>,
    /// PEM file of the CA that signed the server's certificate (for https / TLS).
    #[arg(long, alias = "tls-ca", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// The `$all` position to start at (inclusive), or `start`.
    #[arg(long, value_name = "POSITION", default_value = "start", value_parser = parse_position)]
    pub from: u64,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Output: a file for jsonl (with a sidecar `FILE.checkpoint`), a directory for parquet.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Only streams whose name starts with PREFIX (repeatable; filtered by the server).
    #[arg(long, value_name = "PREFIX", group = "filter")]
    pub stream_prefix: Vec<String>,
    /// Only streams whose name matches REGEX (filtered by the server).
    #[arg(long, value_name = "REGEX", group = "filter")]
    pub stream_regex: Option<String>,
    /// Only events whose type starts with PREFIX (repeatable; filtered by the server).
    #[arg(long, value_name = "PREFIX", group = "filter")]
    pub event_type_prefix: Vec<String>,
    /// Only events whose type matches REGEX (filtered by the server).
    #[arg(long, value_name = "REGEX", group = "filter")]
    pub event_type_regex: Option<String>,
    /// Also export system events (stream or type starting with `$`), skipped by default.
    #[arg(long)]
    pub include_system: bool,
    /// Ignore an existing checkpoint and output and start again from --from.
    #[arg(long)]
    pub restart: bool,
    /// Stop after exporting this many events in this run (a rerun continues).
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
    /// Events per `$all` read request.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub page_size: u64,
    /// jsonl: commit (fsync, then checkpoint) at least every N events (and every second).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub commit_every: u64,
    /// parquet: events per part file (each part is one commit).
    #[arg(long, value_name = "N", default_value_t = 500_000)]
    pub part_events: u64,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_position(value: &str) -> Result<u64, String> {
    if value == "start" {
        return Ok(0);
    }
    value
        .parse()
        .map_err(|_| format!("{value:?} is not a position (a non-negative integer or `start`)"))
}

/// Why an export stopped. Whatever was committed before stays, and a rerun continues there.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The checkpoint cannot be trusted.
    #[error(
        "the checkpoint {} is corrupted: {reason}; rerun with --restart to export again from \
         --from", path.display()
    )]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The output exists but no checkpoint says what it holds.
    #[error(
        "{} already exists but {} does not: it was not written by a resumable export; \
         remove it, choose another --out, or pass --restart to overwrite it",
        out.display(), checkpoint.display()
    )]
    ForeignOutput {
        /// The output.
        out: PathBuf,
        /// The checkpoint that is missing.
        checkpoint: PathBuf,
    },
    /// The command differs from the one that wrote the checkpoint.
    #[error(
        "{} was written with {what} {was:?}, this command asks for {now:?}: rerun the same \
         command to resume, or pass --restart to export again from --from",
        checkpoint.display()
    )]
    Mismatch {
        /// The checkpoint file.
        checkpoint: PathBuf,
        /// Which option.
        what: String,
        /// The checkpoint's value.
        was: String,
        /// This command's value.
        now: String,
    },
    /// The server could not be reached.
    #[error("cannot connect to {server}: {message}")]
    Connect {
        /// The --server value (credentials removed).
        server: String,
        /// Why.
        message: String,
    },
    /// The server refused the credentials.
    #[error("{server} refused the credentials ({code}): {message}")]
    Credentials {
        /// The --server value (credentials removed).
        server: String,
        /// The gRPC code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// A read failed.
    #[error("reading $all from {server} failed ({code}): {message}")]
    Read {
        /// The --server value (credentials removed).
        server: String,
        /// The gRPC code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server sent something the export cannot use.
    #[error("unexpected answer from {server}: {message}")]
    Protocol {
        /// The --server value (credentials removed).
        server: String,
        /// What was wrong.
        message: String,
    },
    /// The parquet writer failed.
    #[error("parquet: {0}")]
    Parquet(String),
}

impl ExportError {
    pub(crate) fn io(what: &'static str, path: &Path, source: std::io::Error) -> ExportError {
        ExportError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Events exported by this run.
    pub events: u64,
    /// Bytes added to the output by this run.
    pub bytes: u64,
    /// Where this run started (`--from`, or the position after the checkpoint's).
    pub from: u64,
    /// The last position dealt with (`None` if the log had nothing from `from` on).
    pub to: Option<u64>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Events in the whole output, earlier runs included.
    pub total_events: u64,
    /// Whether this run resumed a checkpoint.
    pub resumed: bool,
}

impl Summary {
    /// Events per second of this run.
    pub fn events_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.events as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The one-line JSON form (`--json`).
    pub fn json(&self) -> String {
        json!({
            "events": self.events,
            "bytes": self.bytes,
            "from": self.from,
            "to": self.to,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "events_per_sec": self.events_per_second().round(),
            "total_events": self.total_events,
            "resumed": self.resumed,
        })
        .to_string()
    }

    /// The human-readable line.
    pub fn line(&self) -> String {
        let to = self.to.map_or("-".to_owned(), |p| p.to_string());
        format!(
            "exported {} events ({} bytes) from position {} to {} in {:.2} s ({:.0} events/s); \
             the output holds {} events{}",
            self.events,
            self.bytes,
            self.from,
            to,
            self.seconds,
            self.events_per_second(),
            self.total_events,
            if self.resumed { " (resumed)" } else { "" },
        )
    }
}

/// Which events the server sends (one filter kind at a time, as the protocol allows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Every event.
    None,
    /// Streams whose name starts with one of these.
    StreamPrefix(Vec<String>),
    /// Streams whose name matches this regex.
    StreamRegex(String),
    /// Events whose type starts with one of these.
    EventTypePrefix(Vec<String>),
    /// Events whose type matches this regex.
    EventTypeRegex(String),
}

impl Filter {
    /// A stable description, recorded in the checkpoint.
    pub fn describe(&self) -> String {
        match self {
            Filter::None => "all events".into(),
            Filter::StreamPrefix(p) => format!("stream prefix {p:?}"),
            Filter::StreamRegex(r) => format!("stream regex {r:?}"),
            Filter::EventTypePrefix(p) => format!("event type prefix {p:?}"),
            Filter::EventTypeRegex(r) => format!("event type regex {r:?}"),
        }
    }
}

impl ExportArgs {
    /// The filter the options ask for.
    pub fn filter(&self) -> Filter {
        if !self.stream_prefix.is_empty() {
            Filter::StreamPrefix(self.stream_prefix.clone())
        } else if let Some(r) = &self.stream_regex {
            Filter::StreamRegex(r.clone())
        } else if !self.event_type_prefix.is_empty() {
            Filter::EventTypePrefix(self.event_type_prefix.clone())
        } else if let Some(r) = &self.event_type_regex {
            Filter::EventTypeRegex(r.clone())
        } else {
            Filter::None
        }
    }

    /// The filter options as recorded in the checkpoint.
    pub fn selection(&self) -> String {
        let system = if self.include_system {
            "with system events"
        } else {
            "without system events"
        };
        format!("{}, {system}", self.filter().describe())
    }
}
