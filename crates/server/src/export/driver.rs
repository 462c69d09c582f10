//! The export loop: open the output (resuming its checkpoint), connect, read `$all` page by
//! page, write and commit.

use super::progress::Progress;
use super::sink::{Identity, JsonlSink, ParquetSink, Sink};
use super::source::Source;
use super::{ExportArgs, ExportError, Format, Summary};

/// Runs the export. `env_token` is the value of [`crate::admin_cli::TOKEN_ENV`]; `draw_progress` whether to
/// draw the progress line (stderr is a terminal).
pub async fn run(
    args: ExportArgs,
    env_token: Option<String>,
    draw_progress: bool,
) -> Result<Summary, ExportError> {
    if args.page_size < 2 {
        // Pages overlap by one event (reads are inclusive), so one-event pages never advance.
        return Err(ExportError::Usage("--page-size must be at least 2".into()));
    }
    let identity = Identity {
        from: args.from,
        selection: args.selection(),
        restart: args.restart,
    };
    // The output first: a bad path or checkpoint is reported before any network traffic.
    let mut sink: Box<dyn Sink + Send> = match args.format {
        Format::Jsonl => Box::new(JsonlSink::open(&args.out, &identity, args.commit_every)?),
        Format::Parquet => Box::new(ParquetSink::open(&args.out, &identity, args.part_events)?),
    };
    debug_assert_eq!(sink.checkpoint().format, args.format.name());
    let resumed_at = sink.checkpoint().position;
    let start_events = sink.checkpoint().events;
    let start_bytes = sink.checkpoint().bytes;

    let mut source = Source::connect(
        &args.server,
        args.token.clone(),
        env_token,
        args.ca_cert.as_deref(),
    )
    .await?;
    let head = source.head().await?;
    let from = resumed_at.map_or(args.from, |p| p.saturating_add(1));
    let mut progress = Progress::new(draw_progress, from, head);

    let filter = args.filter();
    let mut last_seen = resumed_at;
    let mut exported = 0_u64;
    let limit = args.max_events.unwrap_or(u64::MAX);
    let mut next = resumed_at.unwrap_or(args.from);
    // A failed read (server gone, stream cut) still commits what was written before it, so a
    // rerun continues from there; a failed write commits nothing more.
    let mut read_error = None;
    'pages: while exported < limit {
        let mut page = match source.read_page(next, args.page_size, &filter).await {
            Ok(page) => page,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        let mut received = 0_u64;
        let page_start = last_seen;
        loop {
            let record = match page.next().await {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(e);
                    break 'pages;
                }
            };
            received += 1;
            if last_seen.is_some_and(|p| record.position <= p) {
                continue; // the inclusive start of a page, or of a resume
            }
            last_seen = Some(record.position);
            if args.include_system || !record.is_system() {
                sink.write(&record)?;
                exported += 1;
                if sink.wants_commit() {
                    sink.commit(last_seen)?;
                }
            }
            progress.update(exported, record.position);
            if exported >= limit {
                break 'pages;
            }
        }
        match last_seen {
            Some(p) if received >= args.page_size && last_seen != page_start => next = p,
            _ => break,
        }
    }
    sink.commit(last_seen)?;
    progress.finish();
    if let Some(e) = read_error {
        return Err(e);
    }
    let checkpoint = sink.checkpoint();
    Ok(Summary {
        events: checkpoint.events - start_events,
        bytes: checkpoint.bytes - start_bytes,
        from,
        to: last_seen,
        seconds: progress.elapsed().as_secs_f64(),
        total_events: checkpoint.events,
        resumed: resumed_at.is_some(),
    })
}
