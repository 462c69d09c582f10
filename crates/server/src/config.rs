//! Configuration in two stages (STYLE.md rule 18): the command line as parsed by clap
//! ([`Cli`], [`ServeArgs`]), then [`ServeArgs::resolve`] into a checked [`ServerConfig`] that
//! holds everything the server needs (token table, TLS key material) and nothing to re-check.
//!
//! Transport security is one of three modes ([`Security`]):
//! - `--insecure`: plaintext, no authentication, loopback addresses only (local development);
//! - `--tls-cert` and `--tls-key`: TLS, bearer tokens required, any address;
//! - neither: plaintext with bearer tokens required, loopback addresses only (a TLS-terminating
//!   proxy or ops tooling on the same host). A non-loopback address without TLS is refused, so
//!   tokens never cross a network in clear.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::auth::{TokenError, TokenTable};
use crate::clock::Clock;
use crate::dispatcher::DispatchConfig;
use crate::end_user::{EndUserKeys, EndUserPolicy, KeyFileError};
use crate::notify_hub::NotifyConfig;

/// The environment variable holding `ROLE:TOKEN[:ACTOR]` entries, comma-separated.
pub const TOKENS_ENV: &str = "DAOJIA_TOKENS";

/// `daojia`: the home-services order-matching server.
#[derive(Debug, Parser)]
#[command(name = "daojia", version, about)]
pub struct Cli {
    /// Log lines on stderr as readable text or as one JSON object per line (for log
    /// collectors); the level comes from RUST_LOG (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines with key=value fields.
    Text,
    /// One JSON object per line: timestamp, level, target, message, fields and spans.
    Json,
}

/// `daojia` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API (daojia.v1, health, reflection) over the embedded event store.
    Serve(ServeArgs),
    /// Ops commands and queries against a running server (`daojia admin --help`).
    Admin(crate::admin_cli::AdminArgs),
    /// Drive a simulated Fuzhou day of orders through the API and print its KPIs
    /// (`daojia simulate --help`).
    Simulate(crate::simulate::SimulateArgs),
    /// Export the event log over the EventStoreDB protocol to JSON lines or parquet,
    /// resumably (`daojia export --help`).
    Export(crate::export::ExportArgs),
    /// Offline tools for the embedded event log, with the server stopped: `verify` reports
    /// every damaged record, `truncate --at POSITION` cuts the log and moves the cut bytes
    /// aside (`daojia log --help`).
    Log(crate::log_cli::LogArgs),
}

/// `daojia serve` options, as given.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Directory of the embedded event store (created if missing) and of local state such as
    /// the read models' checkpoints (also with --store).
    #[arg(long, value_name = "DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Keep events on a KurrentDB (or EventStoreDB) server instead of the embedded store:
    /// `kurrentdb://HOST:PORT?tls=false`, also `kurrent://`, `kdb://`, `esdb://` (each with
    /// `+discover` for a cluster's gossip), with optional `USER:PASSWORD@`.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// With --store: how long startup keeps trying to reach the store before it gives up.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, requires = "store")]
    pub store_connect_timeout: u64,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2113")]
    pub listen: SocketAddr,
    /// Bearer tokens file: one `ROLE TOKEN [ACTOR]` per line, `#` comments. Adds to the
    /// tokens in the DAOJIA_TOKENS environment variable (`ROLE:TOKEN[:ACTOR],...`).
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Local development: no TLS, no authentication (every caller is admin); only on a
    /// loopback address.
    #[arg(long, conflicts_with_all = ["tokens", "tls_cert", "tls_key"])]
    pub insecure: bool,
    /// End-user binding, off by default: a keys file (one `KEY_ID ALGORITHM KEY` per line,
    /// HS256 secrets or EdDSA public keys in base64url). Every customer-app and worker-app
    /// call must then carry an `x-daojia-user` JWT signed with one of them whose `sub` is the
    /// customer or worker id the call is for, and may touch only that user's ids and orders.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub end_user_keys: Option<PathBuf>,
    /// With --end-user-keys: the longest an assertion may live; one whose `exp` is further
    /// ahead is refused.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 300,
        requires = "end_user_keys"
    )]
    pub end_user_max_age: u64,
    /// With --end-user-keys: the `aud` every assertion must name (without it, assertions must
    /// have no `aud`).
    #[arg(long, value_name = "AUDIENCE", requires = "end_user_keys")]
    pub end_user_audience: Option<String>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// On SIGINT/SIGTERM, how long in-flight requests may take to finish before their
    /// connections are closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub shutdown_grace: u64,
    /// The longest a query waits for the read models to reach its `min_position` before it
    /// answers UNAVAILABLE (POSITION_NOT_REACHED).
    #[arg(long, value_name = "MILLISECONDS", default_value_t = 2_000)]
    pub query_wait_ms: u64,
    /// How much `Admin.ResolveDispute`'s refund plus compensation may exceed what the order's
    /// customer paid, in fen (INVALID_ARGUMENT past it).
    #[arg(long, value_name = "FEN", default_value_t = crate::limits::DEFAULT_COMPENSATION_CEILING_FEN,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub compensation_ceiling_fen: i64,
    /// How far ahead of now a posted order's window may start, in days (INVALID_ARGUMENT past
    /// it).
    #[arg(long, value_name = "DAYS", default_value_t = crate::limits::DEFAULT_ORDER_HORIZON_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub order_horizon_days: u32,
    /// Most bytes of notifications one `WatchNotifications` stream may have waiting for its
    /// client; past it the stream ends with RESOURCE_EXHAUSTED saying where to resume.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 10)]
    pub notification_stream_budget: usize,
    /// Most bytes of notifications all `WatchNotifications` streams together may have waiting
    /// for their clients; past it a stream with notifications waiting ends with
    /// RESOURCE_EXHAUSTED (NOTIFICATIONS_FULL) saying where to resume.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub notification_buffer_bytes: usize,
    /// Most notification catch-ups (streams opened with an `after_position` in the past,
    /// gathered in batches) reading history at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub notification_catch_ups: usize,
    /// Do not run the built-in dispatcher (no offers are made; for an external dispatcher, or
    /// to drive offers by hand).
    #[arg(long)]
    pub no_dispatch: bool,
    /// Do not run the reactor (no credit rules applied, no follow-ups opened): for a daojia
    /// that only serves as another daojia's event store (`--store`), whose reactor does that.
    #[arg(long)]
    pub no_reactor: bool,
    /// How long the dispatcher collects new instant orders before matching them as one batch.
    #[arg(long, value_name = "MILLISECONDS", default_value_t = 2_000)]
    pub batch_window_ms: u64,
    /// How long the dispatcher collects new scheduled orders of one time slot (the hour their
    /// window starts in) before matching them as one batch; 0 matches them as soon as seen.
    #[arg(long, value_name = "MILLISECONDS", default_value_t = 0)]
    pub slot_batch_window_ms: u64,
    /// Also serve grpc.health.v1 alone on this address, in plaintext and without
    /// authentication, for probes that cannot speak TLS (Kubernetes `grpc:` probes); nothing
    /// else is reachable there, so any address is allowed.
    #[arg(long, value_name = "ADDR")]
    pub health_listen: Option<SocketAddr>,
    /// Run on a simulated clock starting at this instant (RFC 3339, e.g.
    /// 2027-01-15T06:00:00Z) that only `Admin.SetClock` moves, instead of the system clock:
    /// for simulations (`daojia simulate --server`) and demos, never for production.
    #[arg(long, value_name = "RFC3339", value_parser = simulated_start)]
    pub simulated_clock: Option<daojia_domain::Timestamp>,
    /// Bytes of events buffered for one live subscriber (EventStoreDB-protocol subscriptions
    /// and the server's own) that has not taken them yet; a network subscriber past it is cut
    /// with RESOURCE_EXHAUSTED and the position to resubscribe from.
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
    pub subscriber_buffer_bytes: u64,
    /// Bytes of events buffered across all live subscribers; past it, the subscribers that
    /// hold more than their share are cut (or fall back to reading the disk), biggest first.
    #[arg(long, value_name = "BYTES", default_value_t = 512 << 20)]
    pub subscribers_buffer_bytes: u64,
    /// Bytes of EventStoreDB-protocol appends (Append and BatchAppend) received and not yet
    /// answered, across all calls; past it an append answers RESOURCE_EXHAUSTED with retry
    /// advice and nothing of it is written. Raised to at least 17 MiB (one largest append).
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub append_buffer_bytes: usize,
    /// Bytes of batches one BatchAppend call may have received and not yet answered; past it
    /// a batch answers RESOURCE_EXHAUSTED and the call goes on. Raised to at least 17 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub batch_append_call_bytes: usize,
    /// Overload protection and connection limits (see crates/server/README.md, "Overload and
    /// connection limits").
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// `daojia serve` options bounding what clients can hold: connections, time before the first
/// bytes, idle connections, requests in flight per service class and message sizes.
#[derive(Clone, Debug, Args)]
pub struct TransportArgs {
    /// The most TCP connections served at once; past it a new connection is closed as soon as
    /// it is accepted (and a warning is logged, at most once per 10 seconds).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,
    /// How long a new connection may take to complete its handshake: the TLS handshake (with
    /// TLS), or the HTTP/2 client preface and first SETTINGS frame (plaintext); past it the
    /// connection is closed.
    #[arg(long, value_name = "MILLISECONDS", default_value_t = 10_000)]
    pub handshake_timeout_ms: u64,
    /// A connection with no call in progress for this long is closed; 0 never closes idle
    /// connections.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub idle_timeout: u64,
    /// How often the server pings a connection that has sent nothing (HTTP/2 keep-alive).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub keepalive_interval: u64,
    /// How long the server waits for the answer to a keep-alive ping before it closes the
    /// connection.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    pub keepalive_timeout: u64,
    /// The largest request message accepted (bytes, after decompression) by the daojia.v1
    /// services; larger ones answer RESOURCE_EXHAUSTED with the limit. The EventStoreDB
    /// protocol's Streams service accepts at least its 16 MiB append limit plus 1 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub max_message_bytes: usize,
    /// Commands in flight at once (CustomerApp, WorkerApp except WatchNotifications, Admin);
    /// past it a command answers RESOURCE_EXHAUSTED at once, with retry advice.
    #[arg(long, value_name = "N", default_value_t = 1_024)]
    pub max_inflight_commands: usize,
    /// Queries in flight at once (Queries); past it RESOURCE_EXHAUSTED at once.
    #[arg(long, value_name = "N", default_value_t = 1_024)]
    pub max_inflight_queries: usize,
    /// Long-lived streams open at once (WorkerApp.WatchNotifications, persistent-subscription
    /// reads); past it a new stream answers RESOURCE_EXHAUSTED at once.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub max_streams: usize,
    /// EventStoreDB-protocol calls in flight at once (Streams reads, appends and subscriptions,
    /// and the other event_store.client services); past it RESOURCE_EXHAUSTED at once.
    #[arg(long, value_name = "N", default_value_t = 4_096)]
    pub max_inflight_protocol: usize,
    /// HTTP/2 streams (calls) one connection may have open at once, announced to the client
    /// in SETTINGS; a client past it waits for a stream to end before starting a call.
    #[arg(long, value_name = "N", default_value_t = 1_024)]
    pub max_concurrent_streams: u32,
}

impl TransportArgs {
    /// The checked settings.
    pub fn resolve(&self) -> Result<TransportConfig, ConfigError> {
        let positive = [
            ("--max-connections", self.max_connections),
            ("--max-message-bytes", self.max_message_bytes),
            ("--max-inflight-commands", self.max_inflight_commands),
            ("--max-inflight-queries", self.max_inflight_queries),
            ("--max-streams", self.max_streams),
            ("--max-inflight-protocol", self.max_inflight_protocol),
            (
                "--max-concurrent-streams",
                self.max_concurrent_streams as usize,
            ),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(flag));
        }
        if self.handshake_timeout_ms == 0 {
            return Err(ConfigError::Zero("--handshake-timeout-ms"));
        }
        Ok(TransportConfig {
            max_connections: self.max_connections,
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
            idle_timeout: (self.idle_timeout > 0).then(|| Duration::from_secs(self.idle_timeout)),
            keepalive_interval: Duration::from_secs(self.keepalive_interval.max(1)),
            keepalive_timeout: Duration::from_secs(self.keepalive_timeout.max(1)),
            max_message_bytes: self.max_message_bytes,
            max_concurrent_streams: self.max_concurrent_streams,
            admission: AdmissionLimits {
                commands: self.max_inflight_commands,
                queries: self.max_inflight_queries,
                streams: self.max_streams,
                protocol: self.max_inflight_protocol,
            },
        })
    }
}

/// Connection and overload limits, resolved from [`TransportArgs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// The most connections served at once.
    pub max_connections: usize,
    /// The longest a new connection may take to complete its (TLS or HTTP/2) handshake.
    pub handshake_timeout: Duration,
    /// A connection without a call for this long is closed; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// HTTP/2 keep-alive ping interval.
    pub keepalive_interval: Duration,
    /// How long a keep-alive ping may go unanswered.
    pub keepalive_timeout: Duration,
    /// The largest request message decoded by the daojia.v1 services.
    pub max_message_bytes: usize,
    /// HTTP/2 streams open at once on one connection.
    pub max_concurrent_streams: u32,
    /// Requests in flight per service class.
    pub admission: AdmissionLimits,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(300)),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            max_message_bytes: 4 << 20,
            max_concurrent_streams: 1_024,
            admission: AdmissionLimits::default(),
        }
    }
}

/// The most requests in flight at once in each service class (see [`crate::admission`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// CustomerApp, WorkerApp (except WatchNotifications) and Admin calls.
    pub commands: usize,
    /// Queries calls.
    pub queries: usize,
    /// Long-lived streams: WatchNotifications and persistent-subscription reads.
    pub streams: usize,
    /// Other EventStoreDB-protocol calls (Streams reads, appends, subscriptions, ...).
    pub protocol: usize,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            commands: 1_024,
            queries: 1_024,
            streams: 20_000,
            protocol: 4_096,
        }
    }
}

fn simulated_start(value: &str) -> Result<daojia_domain::Timestamp, String> {
    let t: prost_types::Timestamp = value
        .parse()
        .map_err(|_| format!("{value:?} is not an RFC 3339 time like 2027-01-15T06:00:00Z"))?;
    t.seconds
        .checked_mul(1_000)
        .map(|ms| daojia_domain::Timestamp(ms + i64::from(t.nanos / 1_000_000)))
        .ok_or_else(|| format!("{value:?} is out of range"))
}

/// Where the events are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded store, in the data directory.
    Embedded,
    /// A KurrentDB server.
    Kurrent {
        /// Its connection string (checked scheme).
        url: String,
        /// How long startup keeps trying to reach it.
        connect_timeout: Duration,
    },
}

/// The URL schemes `--store` accepts (those of the `kurrentdb` client).
const STORE_SCHEMES: [&str; 4] = ["kurrentdb", "kurrent", "kdb", "esdb"];

impl StoreConfig {
    /// Checks `--store URL`'s scheme; the rest of the URL is the client's to parse.
    pub fn kurrent(url: &str, connect_timeout: Duration) -> Result<StoreConfig, ConfigError> {
        let scheme = url.split_once("://").map(|(s, _)| s);
        let known = scheme.is_some_and(|s| {
            let base = s.strip_suffix("+discover").unwrap_or(s);
            STORE_SCHEMES.contains(&base.to_ascii_lowercase().as_str())
        });
        if !known {
            return Err(ConfigError::StoreUrl(scheme.unwrap_or(url).to_string()));
        }
        Ok(StoreConfig::Kurrent {
            url: url.to_string(),
            connect_timeout,
        })
    }
}

/// The resolved configuration `run` takes.
#[derive(Debug)]
pub struct ServerConfig {
    /// Directory of the embedded event store and of local state (read-model checkpoints).
    pub data_dir: PathBuf,
    /// Where the events are kept.
    pub store: StoreConfig,
    /// The address to bind (the caller binds it; `run` takes the listener).
    pub listen: SocketAddr,
    /// Transport security and authentication.
    pub security: Security,
    /// How long draining may take on shutdown.
    pub shutdown_grace: Duration,
    /// Where commands get `now` (the system clock; tests set a manual one).
    pub clock: Clock,
    /// The longest a query waits for the read models to reach its `min_position`.
    pub query_wait: Duration,
    /// Bounds on figures clients send (`--compensation-ceiling-fen`, `--order-horizon-days`).
    pub limits: crate::limits::Limits,
    /// The built-in dispatcher's settings; `None` runs no dispatcher.
    pub dispatch: Option<DispatchConfig>,
    /// Where to serve health alone in plaintext, if anywhere (`--health-listen`).
    pub health_listen: Option<SocketAddr>,
    /// Run the reactor (credit rules and follow-ups). Always on for `daojia serve`; tests that
    /// check that a refused command appended nothing at all turn it off so that nothing else
    /// appends meanwhile.
    pub reactor: bool,
    /// Connection limits, timeouts, admission control and message sizes.
    pub transport: TransportConfig,
    /// Byte budgets of live subscribers' buffers.
    pub subscribers: SubscriberBudgets,
    /// Counters of the EventStoreDB-protocol reads, shared with whoever made the config (a
    /// test, an operator's tooling).
    pub esdb_reads: crate::esdb::ReadStats,
    /// The notification pipeline's budgets.
    pub notifications: NotifyConfig,
    /// Byte budgets of the EventStoreDB-protocol appends.
    pub appends: crate::esdb::budget::AppendBudgets,
    /// End-user binding of app-role calls (`--end-user-keys`); `None`: off.
    pub end_users: Option<EndUserPolicy>,
}

/// Byte budgets of live subscribers' buffers (`--subscriber-buffer-bytes`,
/// `--subscribers-buffer-bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriberBudgets {
    /// Per subscriber.
    pub per_subscriber: u64,
    /// Across all subscribers.
    pub total: u64,
}

impl Default for SubscriberBudgets {
    /// 8 MiB per subscriber, 512 MiB in all.
    fn default() -> Self {
        SubscriberBudgets {
            per_subscriber: 8 << 20,
            total: 512 << 20,
        }
    }
}

/// Transport security and authentication mode.
#[derive(Debug)]
pub enum Security {
    /// Plaintext, no authentication; loopback only.
    Insecure,
    /// Plaintext, bearer tokens required; loopback only.
    LoopbackPlaintext {
        /// The configured tokens (at least one).
        tokens: TokenTable,
    },
    /// TLS, bearer tokens required.
    Tls {
        /// The configured tokens (at least one).
        tokens: TokenTable,
        /// Certificate chain and key.
        identity: TlsIdentity,
    },
}

impl Security {
    /// Whether the mode only allows loopback addresses.
    pub fn loopback_only(&self) -> bool {
        !matches!(self, Security::Tls { .. })
    }
}

/// PEM certificate chain and private key, read at startup.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// The private key, PEM.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<hidden>")
            .finish()
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--insecure` on a non-loopback address.
    #[error(
        "refusing to listen on {0} with --insecure: insecure mode (no TLS, no authentication) \
         only listens on a loopback address such as 127.0.0.1 or [::1]; for other addresses \
         drop --insecure and give --tls-cert, --tls-key and tokens"
    )]
    InsecureNotLoopback(SocketAddr),
    /// Plaintext on a non-loopback address.
    #[error(
        "refusing to serve plaintext on {0}: bearer tokens would cross the network in clear; \
         give --tls-cert and --tls-key, or listen on a loopback address"
    )]
    PlaintextNotLoopback(SocketAddr),
    /// Authentication is on but no token is configured.
    #[error(
        "no bearer tokens configured: give --tokens FILE or set {TOKENS_ENV}=role:token,... \
         (or use --insecure for local development)"
    )]
    NoTokens,
    /// A token entry is invalid.
    #[error("invalid token configuration: {0}")]
    Token(#[from] TokenError),
    /// The end-user keys file is invalid.
    #[error("invalid --end-user-keys file: {0}")]
    EndUserKeys(#[from] KeyFileError),
    /// `--store` names no event store daojia can use.
    #[error(
        "unsupported --store URL scheme {0:?}: use kurrentdb://HOST:PORT?tls=false (or \
         kurrent://, kdb://, esdb://, each also with +discover); leave --store out for the \
         embedded store in --data-dir"
    )]
    StoreUrl(String),
    /// A limit that must be positive is 0.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// What the file is for.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ServeArgs {
    /// Checks the options and reads the tokens and TLS files. `env_tokens` is the value of
    /// [`TOKENS_ENV`], passed in so that tests need not touch the process environment.
    pub fn resolve(self, env_tokens: Option<&str>) -> Result<ServerConfig, ConfigError> {
        let store = match &self.store {
            None => StoreConfig::Embedded,
            Some(url) => {
                StoreConfig::kurrent(url, Duration::from_secs(self.store_connect_timeout))?
            }
        };
        let security = if self.insecure {
            if !is_loopback(self.listen) {
                return Err(ConfigError::InsecureNotLoopback(self.listen));
            }
            if env_tokens.is_some_and(|v| !v.trim().is_empty()) {
                tracing::warn!("{TOKENS_ENV} is ignored with --insecure: nothing is authenticated");
            }
            Security::Insecure
        } else {
            let mut tokens = TokenTable::default();
            if let Some(path) = &self.tokens {
                let text = read_to_string("tokens file", path)?;
                tokens.add_file(&text, &path.display().to_string())?;
            }
            if let Some(value) = env_tokens {
                tokens.add_env(value, TOKENS_ENV)?;
            }
            if tokens.is_empty() {
                return Err(ConfigError::NoTokens);
            }
            match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Security::Tls {
                    tokens,
                    identity: TlsIdentity {
                        cert_pem: read("TLS certificate", cert)?,
                        key_pem: read("TLS key", key)?,
                    },
                },
                _ if is_loopback(self.listen) => Security::LoopbackPlaintext { tokens },
                _ => return Err(ConfigError::PlaintextNotLoopback(self.listen)),
            }
        };
        let end_users = match &self.end_user_keys {
            None => None,
            Some(path) => {
                if self.end_user_max_age == 0 {
                    return Err(ConfigError::Zero("--end-user-max-age"));
                }
                let text = read_to_string("end-user keys file", path)?;
                let keys = EndUserKeys::parse(&text, &path.display().to_string())?;
                Some(EndUserPolicy::new(
                    keys,
                    Duration::from_secs(self.end_user_max_age),
                    self.end_user_audience.clone(),
                ))
            }
        };
        Ok(ServerConfig {
            end_users,
            data_dir: self.data_dir,
            store,
            listen: self.listen,
            security,
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            clock: self
                .simulated_clock
                .map_or_else(Clock::system, Clock::manual),
            query_wait: Duration::from_millis(self.query_wait_ms),
            limits: crate::limits::Limits {
                compensation_ceiling: daojia_domain::Fen(self.compensation_ceiling_fen),
                order_horizon_days: self.order_horizon_days,
            },
            dispatch: (!self.no_dispatch).then(|| DispatchConfig {
                batch_window: Duration::from_millis(self.batch_window_ms),
                slot_batch_window: Duration::from_millis(self.slot_batch_window_ms),
                ..DispatchConfig::default()
            }),
            reactor: !self.no_reactor,
            health_listen: self.health_listen,
            transport: self.transport.resolve()?,
            subscribers: SubscriberBudgets {
                per_subscriber: self.subscriber_buffer_bytes.max(1),
                total: self.subscribers_buffer_bytes.max(1),
            },
            esdb_reads: crate::esdb::ReadStats::default(),
            appends: crate::esdb::budget::AppendBudgets {
                total: self.append_buffer_bytes,
                per_call: self.batch_append_call_bytes,
            },
            notifications: NotifyConfig {
                stream_budget_bytes: self.notification_stream_budget.max(1),
                total_budget_bytes: self.notification_buffer_bytes.max(1),
                catch_ups: self.notification_catch_ups.max(1),
            },
        })
    }
}

/// Whether `addr` is a loopback address (IPv4-mapped IPv6 included).
pub fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn read_to_string(what: &'static str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_format_is_text_unless_json_is_asked_for_and_nothing_else_is_accepted() {
        let parse = |argv: &[&str]| Cli::try_parse_from(argv).map(|c| c.log_format);
        assert_eq!(parse(&["daojia", "serve"]).unwrap(), LogFormat::Text);
        assert_eq!(
            parse(&["daojia", "--log-format", "json", "serve"]).unwrap(),
            LogFormat::Json
        );
        assert_eq!(
            parse(&["daojia", "serve", "--log-format", "json"]).unwrap(),
            LogFormat::Json
        );
        assert!(parse(&["daojia", "--log-format", "xml", "serve"]).is_err());
    }

    #[test]
    fn a_simulated_clock_starts_where_it_is_told_and_bad_times_are_refused() {
        let args = serve_args(&["--insecure", "--simulated-clock", "2027-01-15T06:00:00Z"]);
        let config = args.resolve(None).unwrap();
        assert!(config.clock.is_manual());
        assert_eq!(
            config.clock.now(),
            daojia_domain::Timestamp(1_799_992_800_000)
        );
        let argv = ["daojia", "serve", "--simulated-clock", "yesterday"];
        assert!(Cli::try_parse_from(argv).is_err());
        assert!(
            !serve_args(&["--insecure"])
                .resolve(None)
                .unwrap()
                .clock
                .is_manual()
        );
    }

    #[test]
    fn transport_limits_default_as_documented_and_zero_limits_are_refused() {
        let config = serve_args(&["--insecure"]).resolve(None).unwrap();
        assert_eq!(config.transport, TransportConfig::default());
        let config = serve_args(&[
            "--insecure",
            "--max-connections",
            "7",
            "--handshake-timeout-ms",
            "250",
            "--idle-timeout",
            "0",
            "--max-inflight-queries",
            "3",
        ])
        .resolve(None)
        .unwrap();
        assert_eq!(config.transport.max_connections, 7);
        assert_eq!(
            config.transport.handshake_timeout,
            Duration::from_millis(250)
        );
        assert_eq!(config.transport.idle_timeout, None);
        assert_eq!(config.transport.admission.queries, 3);
        let appends = serve_args(&["--insecure", "--batch-append-call-bytes", "1"])
            .resolve(None)
            .unwrap()
            .appends;
        assert_eq!(appends.per_call, 1, "raised where it is used, not here");
        assert_eq!(
            appends.at_least_one_append().per_call,
            17 << 20,
            "one largest append fits"
        );
        for flag in [
            "--max-connections",
            "--max-streams",
            "--max-message-bytes",
            "--max-concurrent-streams",
        ] {
            let refused = serve_args(&["--insecure", flag, "0"]).resolve(None);
            assert!(
                matches!(refused, Err(ConfigError::Zero(f)) if f == flag),
                "{flag}: {refused:?}"
            );
        }
    }

    fn serve_args(args: &[&str]) -> ServeArgs {
        let argv = ["daojia", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(a) => a,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn the_binary_parses_serve_admin_and_simulate() {
        let parse = |argv: &[&str]| Cli::try_parse_from(argv).map(|d| d.command);
        assert!(matches!(
            parse(&["daojia", "serve", "--insecure"]).unwrap(),
            Command::Serve(_)
        ));
        let Command::Simulate(sim) = parse(&[
            "daojia",
            "simulate",
            "--workers",
            "30",
            "--orders",
            "60",
            "--seed",
            "9",
        ])
        .unwrap() else {
            panic!("not simulate");
        };
        assert_eq!(
            (sim.workers, sim.orders, sim.seed, sim.speed),
            (30, 60, 9, 0.0)
        );
        assert!(sim.server.is_none() && sim.customers.is_none());
        assert!(parse(&["daojia", "simulate", "--token", "t"]).is_err());
        assert!(parse(&["daojia", "simulate", "--server", "x:1", "--data-dir", "d"]).is_err());
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = serve_args(&[]);
        assert_eq!(a.data_dir, PathBuf::from("./data"));
        assert_eq!(a.listen, "127.0.0.1:2113".parse().unwrap());
        let c = a.resolve(Some("ops:ops-token-0123456789")).unwrap();
        assert!(matches!(c.security, Security::LoopbackPlaintext { .. }));
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
        assert_eq!(c.query_wait, Duration::from_secs(2));
        assert_eq!(
            c.notifications,
            NotifyConfig {
                stream_budget_bytes: 256 << 10,
                total_budget_bytes: 256 << 20,
                catch_ups: 4,
            }
        );
    }

    #[test]
    fn the_store_is_embedded_unless_a_kurrentdb_url_is_given() {
        assert_eq!(
            serve_args(&["--insecure"]).resolve(None).unwrap().store,
            StoreConfig::Embedded
        );
        for url in [
            "kurrentdb://127.0.0.1:2113?tls=false",
            "kurrent://db:2113",
            "kdb://admin:changeit@db:2113",
            "esdb://db:2113?tls=false",
            "esdb+discover://db1:2113,db2:2113",
            "KurrentDB+discover://db:2113",
        ] {
            let c = serve_args(&["--insecure", "--store", url])
                .resolve(None)
                .unwrap();
            assert_eq!(
                c.store,
                StoreConfig::Kurrent {
                    url: url.into(),
                    connect_timeout: Duration::from_secs(30)
                },
                "{url}"
            );
        }
        let c = serve_args(&[
            "--insecure",
            "--store",
            "esdb://db",
            "--store-connect-timeout",
            "2",
        ])
        .resolve(None)
        .unwrap();
        assert!(
            matches!(c.store, StoreConfig::Kurrent { connect_timeout, .. } if connect_timeout == Duration::from_secs(2))
        );
        for url in [
            "postgres://db/events",
            "http://db:2113",
            "db:2113",
            "kurrentdb",
        ] {
            let err = serve_args(&["--insecure", "--store", url])
                .resolve(None)
                .unwrap_err();
            assert!(matches!(err, ConfigError::StoreUrl(_)), "{url}: {err}");
            assert!(err.to_string().contains("kurrentdb://"), "{err}");
        }
        assert!(Cli::try_parse_from(["daojia", "serve", "--store-connect-timeout", "3"]).is_err());
    }

    #[test]
    fn insecure_and_plaintext_refuse_non_loopback_addresses() {
        for addr in ["0.0.0.0:2113", "[::]:2113", "10.0.0.5:2113"] {
            let err = serve_args(&["--insecure", "--listen", addr])
                .resolve(None)
                .unwrap_err();
            assert!(matches!(err, ConfigError::InsecureNotLoopback(_)), "{err}");
            let err = serve_args(&["--listen", addr])
                .resolve(Some("ops:ops-token-0123456789"))
                .unwrap_err();
            assert!(matches!(err, ConfigError::PlaintextNotLoopback(_)), "{err}");
        }
        for addr in [
            "127.0.0.1:0",
            "[::1]:0",
            "127.8.9.10:2113",
            "[::ffff:127.0.0.1]:1",
        ] {
            let c = serve_args(&["--insecure", "--listen", addr])
                .resolve(None)
                .unwrap();
            assert!(matches!(c.security, Security::Insecure), "{addr}");
        }
    }

    #[test]
    fn authentication_needs_tokens_and_insecure_excludes_them() {
        let err = serve_args(&[]).resolve(None).unwrap_err();
        assert!(matches!(err, ConfigError::NoTokens), "{err}");
        let err = serve_args(&[]).resolve(Some(" ")).unwrap_err();
        assert!(matches!(err, ConfigError::NoTokens), "{err}");
        assert!(
            Cli::try_parse_from(["daojia", "serve", "--insecure", "--tokens", "t.txt"]).is_err()
        );
        assert!(Cli::try_parse_from(["daojia", "serve", "--tls-cert", "c.pem"]).is_err());
        let err = serve_args(&["--tokens", "/nonexistent/daojia-tokens.txt"])
            .resolve(None)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read tokens file /nonexistent/daojia-tokens.txt"),
            "{err}"
        );
    }
}
