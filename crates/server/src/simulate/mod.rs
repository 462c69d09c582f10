//! `daojia simulate`: drives a Fuzhou-like day of orders through the public gRPC API at
//! accelerated simulated time and reports the platform's KPIs.
//!
//! It starts the server in-process on `127.0.0.1:0` (or targets `--server`), builds a city
//! ([`city`]), onboards companies' workers through `Admin`, then steps a manual clock one
//! simulated minute at a time ([`driver`]): customers post, cancel, review and complain,
//! workers answer offers, grab pool orders, check in and complete, and after each wave of
//! commands `Admin.WaitSettled` lets the reactor and the dispatcher catch up, so that each wave
//! starts from a state that depends only on the seed. The end is a KPI table and one JSON line
//! ([`report`]).
//!
//! Determinism: every decision draws from a generator derived from the seed and the decision's
//! subject ([`rng`]); commands whose relative order could change what the dispatcher does
//! (declines, cancellations, posts) are sent one at a time in a fixed order, the others
//! (accepts, grabs, visits, reviews) concurrently across orders but in a fixed order within one.

pub mod city;
pub mod driver;
pub mod report;
pub mod rng;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

pub use driver::run;
pub use report::Report;

/// The environment variable `--token` falls back to.
pub const TOKEN_ENV: &str = "DAOJIA_TOKEN";

/// `daojia simulate` options, as given.
#[derive(Clone, Debug, Args)]
pub struct SimulateArgs {
    /// Workers to onboard (with skills, certificates and contracts).
    #[arg(long, default_value_t = 200)]
    pub workers: usize,
    /// Households placing orders (default: two thirds of --orders, at least 1).
    #[arg(long)]
    pub customers: Option<usize>,
    /// Orders posted over the day.
    #[arg(long, default_value_t = 500)]
    pub orders: usize,
    /// Seed of every random choice: the same seed gives the same day.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated seconds per wall-clock second; 0 runs as fast as the server allows. Only
    /// throttles, never changes a decision.
    #[arg(long, default_value_t = 0.0)]
    pub speed: f64,
    /// Workers (the first N) whose app keeps a notification stream open
    /// (`WorkerApp.WatchNotifications`) and answers an offer only once the stream delivered it.
    /// Every stream is a filtered subscription on the server, so this stays a sample.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub watch: usize,
    /// Drive a running server at this address (`host:port` or `http://host:port`) instead of
    /// starting one in-process. It must run with `--simulated-clock`.
    #[arg(long, value_name = "ADDR")]
    pub server: Option<String>,
    /// Admin bearer token for `--server` (default: the DAOJIA_TOKEN environment variable).
    #[arg(long, requires = "server")]
    pub token: Option<String>,
    /// Data directory of the in-process server (default: a temporary directory, removed at the
    /// end). Must be new or empty.
    #[arg(long, value_name = "DIR", conflicts_with = "server")]
    pub data_dir: Option<PathBuf>,
}

impl SimulateArgs {
    /// Sizes after defaults, checked.
    pub fn sizes(&self) -> Result<Sizes, SimulateError> {
        let customers = self.customers.unwrap_or(self.orders * 2 / 3).max(1);
        if self.workers == 0 || self.orders == 0 {
            return Err(SimulateError::Args(
                "--workers and --orders must be at least 1".into(),
            ));
        }
        if self.workers > 99_999 {
            return Err(SimulateError::Args("--workers is at most 99999".into()));
        }
        if !(self.speed >= 0.0 && self.speed.is_finite()) {
            return Err(SimulateError::Args("--speed must be 0 or positive".into()));
        }
        Ok(Sizes {
            workers: self.workers,
            customers,
            orders: self.orders,
        })
    }
}

/// How big the simulated city and day are.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Workers.
    pub workers: usize,
    /// Customers.
    pub customers: usize,
    /// Orders.
    pub orders: usize,
}

/// Why a simulation stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// Bad options.
    #[error("{0}")]
    Args(String),
    /// The embedded reference data is unusable.
    #[error("reference data: {0}")]
    Data(String),
    /// The target server does not run on a simulated clock.
    #[error(
        "the server at {0} runs on the system clock; start it with `daojia serve \
         --simulated-clock 2027-01-15T06:00:00Z ...` so that the simulation can drive time"
    )]
    ClockNotSimulated(String),
    /// The in-process server could not start or stop.
    #[error("in-process server: {0}")]
    Server(String),
    /// A call failed in a way the simulation cannot treat as a refusal.
    #[error("{call} failed: {status}")]
    Rpc {
        /// The RPC.
        call: &'static str,
        /// The status.
        status: Box<tonic::Status>,
    },
    /// The server could not be reached.
    #[error("cannot connect to {addr}: {message}")]
    Connect {
        /// The address.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// Reading the data directory after the run failed.
    #[error("reading the event log: {0}")]
    Store(String),
}

/// Where the simulation's server runs.
#[derive(Debug)]
pub enum Target {
    /// In-process, on this loopback address, with this data directory.
    InProcess {
        /// The bound address.
        addr: SocketAddr,
        /// The data directory.
        data_dir: PathBuf,
    },
    /// A running server.
    Remote(String),
}
