//! Where exported records go: a JSON-lines file or a directory of parquet part files, each
//! with its checkpoint, so that a rerun of the same command continues where the last durable
//! checkpoint left off (no duplicate, no gap), even after `kill -9` in the middle of a write.
//!
//! - JSON lines, `--out FILE`: the data file and a sidecar `FILE.checkpoint`. After every
//!   commit the data is fsynced first, then the checkpoint (position, byte length) replaced
//!   atomically. A resume truncates the file to the recorded length (dropping a torn or
//!   uncommitted tail) and appends from the next position.
//! - Parquet, `--out DIR`: `DIR/part-000000.parquet`, `part-000001.parquet`, … and
//!   `DIR/_checkpoint`. A part is written as `part-N.parquet.tmp`, closed (footer), fsynced,
//!   renamed, and only then counted in the checkpoint; a resume deletes temporary parts and
//!   parts the checkpoint does not count. Every run that exports something ends its last part,
//!   so a finished export rerun adds a part holding only the new events.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::Type;

use super::ExportError;
use super::checkpoint::{Checkpoint, sync_dir, temporary};
use super::record::Record;

/// The parquet schema of an exported event (see the crate README).
pub const PARQUET_SCHEMA: &str = "message daojia_event {
  REQUIRED INT64 position (INTEGER(64,false));
  REQUIRED BYTE_ARRAY stream (UTF8);
  REQUIRED INT64 revision (INTEGER(64,false));
  REQUIRED BYTE_ARRAY event_id (UTF8);
  REQUIRED BYTE_ARRAY event_type (UTF8);
  REQUIRED INT64 created (TIMESTAMP(MICROS,true));
  REQUIRED INT64 created_ticks;
  REQUIRED BYTE_ARRAY content_type (UTF8);
  REQUIRED BYTE_ARRAY data;
  REQUIRED BYTE_ARRAY metadata;
}";

/// The JSON-lines checkpoint's path for data file `out`.
pub fn jsonl_checkpoint_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".checkpoint");
    PathBuf::from(name)
}

/// The parquet checkpoint's path in directory `out`.
pub fn parquet_checkpoint_path(out: &Path) -> PathBuf {
    out.join("_checkpoint")
}

/// The name of parquet part `index`.
pub fn part_name(index: u64) -> String {
    format!("part-{index:06}.parquet")
}

/// What a run asks for, compared with a checkpoint on resume.
#[derive(Clone, Debug)]
pub struct Identity {
    /// `--from`.
    pub from: u64,
    /// The filter options, described.
    pub selection: String,
    /// Start over (`--restart`).
    pub restart: bool,
}

/// A destination for records.
pub trait Sink {
    /// Buffers `record`.
    fn write(&mut self, record: &Record) -> Result<(), ExportError>;
    /// Whether enough is buffered that the driver should commit now.
    fn wants_commit(&self) -> bool;
    /// Makes everything written durable and records `position` as dealt with.
    fn commit(&mut self, position: Option<u64>) -> Result<(), ExportError>;
    /// The checkpoint as of the last commit (or as found on resume).
    fn checkpoint(&self) -> &Checkpoint;
}

fn fresh(format: &str, identity: &Identity) -> Checkpoint {
    Checkpoint {
        format: format.into(),
        from: identity.from,
        selection: identity.selection.clone(),
        position: None,
        events: 0,
        bytes: 0,
        parts: 0,
    }
}

fn check_matches(
    found: &Checkpoint,
    format: &str,
    identity: &Identity,
    path: &Path,
) -> Result<(), ExportError> {
    let differs = |what: &str, was: String, now: String| ExportError::Mismatch {
        checkpoint: path.to_path_buf(),
        what: what.into(),
        was,
        now,
    };
    if found.format != format {
        return Err(differs("--format", found.format.clone(), format.into()));
    }
    if found.from != identity.from {
        return Err(differs(
            "--from",
            found.from.to_string(),
            identity.from.to_string(),
        ));
    }
    if found.selection != identity.selection {
        return Err(differs(
            "the filter",
            found.selection.clone(),
            identity.selection.clone(),
        ));
    }
    Ok(())
}

/// JSON lines into one file.
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    checkpoint_path: PathBuf,
    out: BufWriter<File>,
    /// Bytes written (buffered included).
    length: u64,
    pending_events: u64,
    commit_every: u64,
    last_commit: Instant,
    checkpoint: Checkpoint,
}

impl JsonlSink {
    /// Opens (or resumes) the export into `path`; commits every `commit_every` events or
    /// second.
    pub fn open(
        path: &Path,
        identity: &Identity,
        commit_every: u64,
    ) -> Result<JsonlSink, ExportError> {
        let checkpoint_path = jsonl_checkpoint_path(path);
        if identity.restart {
            remove_if_exists(&checkpoint_path)?;
        }
        let found = Checkpoint::load(&checkpoint_path)?;
        let open = |truncate: bool| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(truncate)
                .open(path)
                .map_err(|e| ExportError::io("cannot open the output", path, e))
        };
        let (file, checkpoint) = match found {
            Some(found) => {
                check_matches(&found, "jsonl", identity, &checkpoint_path)?;
                let mut file = open(false)?;
                let length = file
                    .metadata()
                    .map_err(|e| ExportError::io("cannot read the output", path, e))?
                    .len();
                if length < found.bytes {
                    return Err(ExportError::CorruptCheckpoint {
                        path: checkpoint_path,
                        reason: format!(
                            "it records {} bytes of {} but the file has {length}: the output \
                             was changed outside the export",
                            found.bytes,
                            path.display()
                        ),
                    });
                }
                // Drop whatever a killed run wrote after its last checkpoint.
                file.set_len(found.bytes)
                    .and_then(|()| file.sync_data())
                    .and_then(|()| file.seek(SeekFrom::End(0)).map(drop))
                    .map_err(|e| ExportError::io("cannot truncate the output", path, e))?;
                (file, found)
            }
            None => {
                let existing = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                if existing > 0 && !identity.restart {
                    return Err(ExportError::ForeignOutput {
                        out: path.to_path_buf(),
                        checkpoint: checkpoint_path,
                    });
                }
                let file = open(true)?;
                let checkpoint = fresh("jsonl", identity);
                file.sync_all()
                    .map_err(|e| ExportError::io("cannot write the output", path, e))?;
                checkpoint.store(&checkpoint_path)?;
                (file, checkpoint)
            }
        };
        Ok(JsonlSink {
            path: path.to_path_buf(),
            checkpoint_path,
            out: BufWriter::with_capacity(1 << 20, file),
            length: checkpoint.bytes,
            pending_events: 0,
            commit_every: commit_every.max(1),
            last_commit: Instant::now(),
            checkpoint,
        })
    }
}

/// Counts what goes through.
struct Counting<'a, W> {
    inner: &'a mut W,
    count: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Sink for JsonlSink {
    fn write(&mut self, record: &Record) -> Result<(), ExportError> {
        let mut counting = Counting {
            inner: &mut self.out,
            count: 0,
        };
        let result = record.write_json_line(&mut counting);
        self.length += counting.count;
        result.map_err(|e| ExportError::io("cannot write the output", &self.path, e))?;
        self.pending_events += 1;
        Ok(())
    }

    fn wants_commit(&self) -> bool {
        self.pending_events >= self.commit_every
            || (self.pending_events.is_multiple_of(1024)
                && self.pending_events > 0
                && self.last_commit.elapsed() >= Duration::from_secs(1))
    }

    fn commit(&mut self, position: Option<u64>) -> Result<(), ExportError> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_data())
            .map_err(|e| ExportError::io("cannot write the output", &self.path, e))?;
        let next = Checkpoint {
            position: position.or(self.checkpoint.position),
            events: self.checkpoint.events + self.pending_events,
            bytes: self.length,
            ..self.checkpoint.clone()
        };
        next.store(&self.checkpoint_path)?;
        self.checkpoint = next;
        self.pending_events = 0;
        self.last_commit = Instant::now();
        Ok(())
    }

    fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }
}

/// Parquet part files in a directory.
pub struct ParquetSink {
    dir: PathBuf,
    checkpoint_path: PathBuf,
    schema: Arc<Type>,
    properties: Arc<WriterProperties>,
    part_events: u64,
    row_group_rows: usize,
    columns: Columns,
    /// The open part: its temporary path, writer and rows already in row groups.
    part: Option<(PathBuf, SerializedFileWriter<File>, u64)>,
    checkpoint: Checkpoint,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("dir", &self.dir)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Columns {
    position: Vec<i64>,
    stream: Vec<ByteArray>,
    revision: Vec<i64>,
    event_id: Vec<ByteArray>,
    event_type: Vec<ByteArray>,
    created: Vec<i64>,
    created_ticks: Vec<i64>,
    content_type: Vec<ByteArray>,
    data: Vec<ByteArray>,
    metadata: Vec<ByteArray>,
}

impl Columns {
    fn len(&self) -> usize {
        self.position.len()
    }

    fn push(&mut self, r: &Record) {
        // The unsigned columns are stored as the same 64 bits (INTEGER(64,false)).
        self.position.push(r.position as i64);
        self.stream.push(ByteArray::from(r.stream.as_str()));
        self.revision.push(r.revision as i64);
        self.event_id.push(ByteArray::from(r.event_id.as_str()));
        self.event_type.push(ByteArray::from(r.event_type.as_str()));
        self.created.push(r.created_micros());
        self.created_ticks.push(r.created_ticks);
        self.content_type
            .push(ByteArray::from(r.content_type.as_str()));
        self.data.push(ByteArray::from(r.data.clone()));
        self.metadata.push(ByteArray::from(r.metadata.clone()));
    }

    /// Writes the buffered rows as one row group and empties the buffers.
    fn write_row_group(
        &mut self,
        writer: &mut SerializedFileWriter<File>,
    ) -> parquet::errors::Result<()> {
        let mut group = writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = group.next_column()? {
            let ints = |v: &mut Vec<i64>| std::mem::take(v);
            match index {
                0 | 2 | 5 | 6 => {
                    let values = match index {
                        0 => ints(&mut self.position),
                        2 => ints(&mut self.revision),
                        5 => ints(&mut self.created),
                        _ => ints(&mut self.created_ticks),
                    };
                    column
                        .typed::<Int64Type>()
                        .write_batch(&values, None, None)?;
                }
                _ => {
                    let values = match index {
                        1 => std::mem::take(&mut self.stream),
                        3 => std::mem::take(&mut self.event_id),
                        4 => std::mem::take(&mut self.event_type),
                        7 => std::mem::take(&mut self.content_type),
                        8 => std::mem::take(&mut self.data),
                        _ => std::mem::take(&mut self.metadata),
                    };
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&values, None, None)?;
                }
            }
            column.close()?;
            index += 1;
        }
        group.close()?;
        Ok(())
    }
}

impl ParquetSink {
    /// Opens (or resumes) the export into directory `dir`, ending a part file every
    /// `part_events` events.
    pub fn open(
        dir: &Path,
        identity: &Identity,
        part_events: u64,
    ) -> Result<ParquetSink, ExportError> {
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ExportError::Usage(format!(
                    "--out {} exists and is not a directory: parquet output is a directory of \
                     part files",
                    dir.display()
                )));
            }
            Err(e) => {
                return Err(ExportError::io(
                    "cannot create the output directory",
                    dir,
                    e,
                ));
            }
        }
        let checkpoint_path = parquet_checkpoint_path(dir);
        if identity.restart {
            remove_if_exists(&checkpoint_path)?;
            for (path, _) in part_files(dir)? {
                remove_if_exists(&path)?;
            }
        }
        let checkpoint = match Checkpoint::load(&checkpoint_path)? {
            Some(found) => {
                check_matches(&found, "parquet", identity, &checkpoint_path)?;
                for index in 0..found.parts {
                    if !dir.join(part_name(index)).is_file() {
                        return Err(ExportError::CorruptCheckpoint {
                            path: checkpoint_path,
                            reason: format!(
                                "it counts {} parts but {} is missing",
                                found.parts,
                                part_name(index)
                            ),
                        });
                    }
                }
                // Parts a killed run did not get to count: written again from the checkpoint.
                for (path, index) in part_files(dir)? {
                    if index.is_none_or(|i| i >= found.parts) {
                        remove_if_exists(&path)?;
                    }
                }
                found
            }
            None => {
                if !part_files(dir)?.is_empty() {
                    return Err(ExportError::ForeignOutput {
                        out: dir.to_path_buf(),
                        checkpoint: checkpoint_path,
                    });
                }
                let checkpoint = fresh("parquet", identity);
                checkpoint.store(&checkpoint_path)?;
                checkpoint
            }
        };
        let schema = parse_message_type(PARQUET_SCHEMA)
            .map_err(|e| ExportError::Parquet(format!("schema: {e}")))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("daojia export {}", env!("CARGO_PKG_VERSION")))
            .build();
        let part_events = part_events.max(1);
        Ok(ParquetSink {
            dir: dir.to_path_buf(),
            checkpoint_path,
            schema: Arc::new(schema),
            properties: Arc::new(properties),
            part_events,
            row_group_rows: usize::try_from(part_events.min(64 * 1024)).unwrap_or(64 * 1024),
            columns: Columns::default(),
            part: None,
            checkpoint,
        })
    }

    fn part_rows(&self) -> u64 {
        self.part.as_ref().map_or(0, |p| p.2) + self.columns.len() as u64
    }

    fn flush_row_group(&mut self) -> Result<(), ExportError> {
        if self.columns.len() == 0 {
            return Ok(());
        }
        if self.part.is_none() {
            let path = temporary(&self.dir.join(part_name(self.checkpoint.parts)));
            let file = File::create(&path)
                .map_err(|e| ExportError::io("cannot create a part file", &path, e))?;
            let writer =
                SerializedFileWriter::new(file, self.schema.clone(), self.properties.clone())
                    .map_err(|e| ExportError::Parquet(e.to_string()))?;
            self.part = Some((path, writer, 0));
        }
        let rows = self.columns.len() as u64;
        let Some((path, writer, written)) = self.part.as_mut() else {
            unreachable!("opened above")
        };
        self.columns
            .write_row_group(writer)
            .map_err(|e| ExportError::Parquet(format!("{}: {e}", path.display())))?;
        *written += rows;
        Ok(())
    }
}

impl Sink for ParquetSink {
    fn write(&mut self, record: &Record) -> Result<(), ExportError> {
        self.columns.push(record);
        if self.columns.len() >= self.row_group_rows {
            self.flush_row_group()?;
        }
        Ok(())
    }

    fn wants_commit(&self) -> bool {
        self.part_rows() >= self.part_events
    }

    fn commit(&mut self, position: Option<u64>) -> Result<(), ExportError> {
        self.flush_row_group()?;
        let mut next = Checkpoint {
            position: position.or(self.checkpoint.position),
            ..self.checkpoint.clone()
        };
        if let Some((tmp, writer, rows)) = self.part.take() {
            writer
                .close()
                .map_err(|e| ExportError::Parquet(format!("{}: {e}", tmp.display())))?;
            let done = self.dir.join(part_name(self.checkpoint.parts));
            let size = File::open(&tmp)
                .and_then(|f| f.sync_all().and_then(|()| f.metadata()))
                .and_then(|m| fs::rename(&tmp, &done).map(|()| m.len()))
                .and_then(|len| sync_dir(&done).map(|()| len))
                .map_err(|e| ExportError::io("cannot finish a part file", &tmp, e))?;
            next.parts += 1;
            next.events += rows;
            next.bytes += size;
        }
        next.store(&self.checkpoint_path)?;
        self.checkpoint = next;
        Ok(())
    }

    fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }
}

/// The part files (finished or temporary) in `dir`, with the index of finished ones.
fn part_files(dir: &Path) -> Result<Vec<(PathBuf, Option<u64>)>, ExportError> {
    let entries = fs::read_dir(dir).map_err(|e| ExportError::io("cannot list", dir, e))?;
    let mut parts = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ExportError::io("cannot list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix("part-") else {
            continue;
        };
        if let Some(number) = rest.strip_suffix(".parquet") {
            parts.push((entry.path(), number.parse().ok()));
        } else if rest.ends_with(".parquet.tmp") {
            parts.push((entry.path(), None));
        }
    }
    Ok(parts)
}

fn remove_if_exists(path: &Path) -> Result<(), ExportError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ExportError::io("cannot remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    /// A fresh directory under the system temporary directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "daojia-export-sink-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn record(position: u64) -> Record {
        Record {
            position,
            stream: format!("order-{}", position % 3),
            revision: position / 3,
            event_id: format!("00000000-0000-4000-8000-{position:012}"),
            event_type: "OrderPosted".into(),
            created_ticks: 17_999_928_000_000_000 + position as i64,
            content_type: "application/json".into(),
            data: format!("{{\"n\":{position}}}").into_bytes().into(),
            metadata: bytes::Bytes::from_static(b"{}"),
        }
    }

    fn identity() -> Identity {
        Identity {
            from: 0,
            selection: "all".into(),
            restart: false,
        }
    }

    fn positions_in_jsonl(path: &Path) -> Vec<u64> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["position"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn jsonl_resume_drops_an_uncommitted_tail_and_keeps_the_committed_events() {
        let dir = Scratch::new();
        let out = dir.0.join("events.jsonl");
        let mut sink = JsonlSink::open(&out, &identity(), 1_000).unwrap();
        for p in [10, 20, 30] {
            sink.write(&record(p)).unwrap();
        }
        sink.commit(Some(30)).unwrap();
        // A run killed mid-write: more lines flushed, the last one torn, no commit.
        sink.write(&record(40)).unwrap();
        drop(sink);
        let mut file = OpenOptions::new().append(true).open(&out).unwrap();
        file.write_all(b"{\"position\":50,\"stre").unwrap();
        drop(file);

        let sink = JsonlSink::open(&out, &identity(), 1_000).unwrap();
        assert_eq!(sink.checkpoint().position, Some(30));
        assert_eq!(sink.checkpoint().events, 3);
        assert_eq!(positions_in_jsonl(&out), [10, 20, 30]);
        assert_eq!(fs::metadata(&out).unwrap().len(), sink.checkpoint().bytes);
    }

    #[test]
    fn jsonl_refuses_a_foreign_file_a_short_file_and_a_different_command() {
        let dir = Scratch::new();
        let out = dir.0.join("events.jsonl");
        fs::write(&out, "someone else's data\n").unwrap();
        let err = JsonlSink::open(&out, &identity(), 10).unwrap_err();
        assert!(matches!(err, ExportError::ForeignOutput { .. }), "{err}");
        assert_eq!(fs::read_to_string(&out).unwrap(), "someone else's data\n");

        let restart = Identity {
            restart: true,
            ..identity()
        };
        let mut sink = JsonlSink::open(&out, &restart, 10).unwrap();
        sink.write(&record(1)).unwrap();
        sink.commit(Some(1)).unwrap();
        drop(sink);
        assert_eq!(positions_in_jsonl(&out), [1]);

        let other = Identity {
            from: 5,
            ..identity()
        };
        let err = JsonlSink::open(&out, &other, 10).unwrap_err();
        assert!(err.to_string().contains("--from"), "{err}");

        OpenOptions::new()
            .write(true)
            .open(&out)
            .unwrap()
            .set_len(3)
            .unwrap();
        let err = JsonlSink::open(&out, &identity(), 10).unwrap_err();
        assert!(
            matches!(err, ExportError::CorruptCheckpoint { .. }),
            "{err}"
        );
    }

    fn positions_in_parts(dir: &Path) -> Vec<u64> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".parquet"))
            .collect();
        names.sort();
        let mut positions = Vec::new();
        for name in names {
            let reader = SerializedFileReader::new(File::open(dir.join(name)).unwrap()).unwrap();
            for row in reader.get_row_iter(None).unwrap() {
                positions.push(parquet::record::RowAccessor::get_ulong(&row.unwrap(), 0).unwrap());
            }
        }
        positions
    }

    #[test]
    fn parquet_parts_close_every_n_events_and_resume_drops_uncounted_parts() {
        let dir = Scratch::new();
        let out = dir.0.join("events");
        let mut sink = ParquetSink::open(&out, &identity(), 2).unwrap();
        for p in 1..=5 {
            sink.write(&record(p)).unwrap();
            if sink.wants_commit() {
                sink.commit(Some(p)).unwrap();
            }
        }
        sink.commit(Some(5)).unwrap();
        assert_eq!(sink.checkpoint().parts, 3);
        assert_eq!(sink.checkpoint().events, 5);
        drop(sink);
        assert_eq!(positions_in_parts(&out), [1, 2, 3, 4, 5]);

        // A killed run: a finished part the checkpoint does not count, and a torn one.
        fs::copy(out.join(part_name(0)), out.join(part_name(3))).unwrap();
        fs::write(out.join("part-000004.parquet.tmp"), b"PAR1 torn").unwrap();
        let mut sink = ParquetSink::open(&out, &identity(), 2).unwrap();
        assert_eq!(sink.checkpoint().position, Some(5));
        assert_eq!(positions_in_parts(&out), [1, 2, 3, 4, 5]);
        assert!(!out.join("part-000004.parquet.tmp").exists());
        sink.write(&record(6)).unwrap();
        sink.commit(Some(6)).unwrap();
        assert_eq!(positions_in_parts(&out), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn parquet_columns_are_typed() {
        let dir = Scratch::new();
        let out = dir.0.join("typed");
        let mut sink = ParquetSink::open(&out, &identity(), 10).unwrap();
        sink.write(&record(7)).unwrap();
        sink.commit(Some(7)).unwrap();
        let reader =
            SerializedFileReader::new(File::open(out.join(part_name(0))).unwrap()).unwrap();
        let schema = reader.metadata().file_metadata().schema_descr();
        let column = |i: usize| schema.column(i).logical_type_ref().cloned();
        assert_eq!(
            column(0),
            Some(parquet::basic::LogicalType::integer(64, false))
        );
        assert!(matches!(
            column(5),
            Some(parquet::basic::LogicalType::Timestamp { .. })
        ));
        let row = reader.get_row_iter(None).unwrap().next().unwrap().unwrap();
        use parquet::record::RowAccessor;
        assert_eq!(row.get_string(1).unwrap(), "order-1");
        assert_eq!(row.get_ulong(2).unwrap(), 2);
        assert_eq!(row.get_timestamp_micros(5).unwrap(), 1_799_992_800_000_000);
        assert_eq!(row.get_bytes(8).unwrap().data(), b"{\"n\":7}");
    }
}
