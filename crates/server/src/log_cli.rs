//! `daojia log ...`: offline tools for the embedded event log, run while the server is stopped
//! (both take the data directory's lock and refuse a log that is open).
//!
//! - `daojia log verify --data-dir DIR` checks every record and prints every damaged one (file,
//!   offset, log position, what is wrong) and a summary; the exit code is non-zero if any
//!   damage was found.
//! - `daojia log truncate --data-dir DIR --at POSITION` cuts the log at a global position (the
//!   end of a whole batch), moving every cut byte into `DIR/truncated-<POSITION>-<secs>.bin`;
//!   nothing is deleted.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use daojia_store::eventlog::{self, VerifyReport};

/// `daojia log` options.
#[derive(Clone, Debug, Args)]
pub struct LogArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LogCommand,
}

/// `daojia log` subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum LogCommand {
    /// Check every record; print each damaged one and a summary (exit code 1 if any).
    Verify {
        /// Directory of the embedded event store.
        #[arg(long, value_name = "DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Cut the log at POSITION (the end of a whole batch, e.g. a damaged record's position
    /// from `verify`), moving the cut bytes into DIR/truncated-POSITION-SECS.bin.
    Truncate {
        /// Directory of the embedded event store.
        #[arg(long, value_name = "DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The global log position to cut at.
        #[arg(long, value_name = "POSITION")]
        at: u64,
    },
}

/// Runs the command, writing its report to `out`; returns the process exit code: 0 done and
/// no damage, 1 damage found, 2 the command could not run.
pub fn run(args: &LogArgs, out: &mut dyn Write) -> u8 {
    let result = match &args.command {
        LogCommand::Verify { data_dir } => eventlog::verify(data_dir)
            .map_err(|e| e.to_string())
            .and_then(|r| print_report(&r, out).map(|()| u8::from(!r.damage.is_empty()))),
        LogCommand::Truncate { data_dir, at } => eventlog::truncate_at(data_dir, *at)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                writeln!(
                    out,
                    "cut the log at position {at}: {} bytes moved to {} ({} later segment files removed: {})",
                    t.bytes,
                    t.moved_to.display(),
                    t.segments_removed.len(),
                    t.segments_removed.join(", ")
                )
                .map(|()| 0)
                .map_err(|e| e.to_string())
            }),
    };
    result.unwrap_or_else(|e| {
        let _ = writeln!(out, "daojia log: {e}");
        2
    })
}

fn print_report(r: &VerifyReport, out: &mut dyn Write) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    for d in &r.damage {
        let zone = if d.durable {
            "proven durable: open refuses it"
        } else {
            "past the durable end: open cuts it as a torn tail"
        };
        writeln!(
            out,
            "DAMAGED {} offset {} (position {}, {} bytes): {} [{zone}]",
            d.file, d.offset, d.position, d.len, d.what
        )
        .map_err(io)?;
    }
    let durable = r.durable_end.map_or_else(
        || "unknown (no intact index.snap)".to_string(),
        |d| d.to_string(),
    );
    writeln!(
        out,
        "{} segments, {} valid records, log end {}, durable end {durable}: {} damaged ({} bytes)",
        r.segments,
        r.records,
        r.end,
        r.damage.len(),
        r.damaged_bytes()
    )
    .map_err(io)
}
