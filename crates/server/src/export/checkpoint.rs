//! The export's checkpoint: how far a previous run got and what it was asked for, written
//! atomically (temporary file, fsync, rename, fsync of the directory) only after the data it
//! describes is on stable storage.
//!
//! It is one JSON object, for example
//! `{"version":1,"format":"jsonl","from":0,"selection":"all, no system events","position":1234,"events":10,"bytes":2048,"parts":0}`:
//! `position` is the last `$all` position the export has dealt with (written, or skipped by
//! the selection; `null` before any), `events` and `bytes` what the output holds, `parts` the
//! number of finished parquet part files.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::ExportError;

/// The checkpoint format version.
const VERSION: u64 = 1;

/// What a run has made durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// `jsonl` or `parquet`.
    pub format: String,
    /// The `--from` position the export started at.
    pub from: u64,
    /// A description of the filter options, compared on resume.
    pub selection: String,
    /// The last position dealt with, if any.
    pub position: Option<u64>,
    /// Events in the output.
    pub events: u64,
    /// Bytes of output (jsonl: the file's length; parquet: the finished parts' total).
    pub bytes: u64,
    /// Finished parquet part files (`part-000000.parquet` up to this count, excluded).
    pub parts: u64,
}

impl Checkpoint {
    /// Reads the checkpoint at `path`: `Ok(None)` if there is none.
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, ExportError> {
        let text = match fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ExportError::io("cannot read the checkpoint", path, e)),
        };
        Self::parse(&text)
            .map(Some)
            .map_err(|reason| ExportError::CorruptCheckpoint {
                path: path.to_path_buf(),
                reason,
            })
    }

    fn parse(bytes: &[u8]) -> Result<Checkpoint, String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON ({e})"))?;
        let object = value.as_object().ok_or("not a JSON object")?;
        let version = object.get("version").and_then(Value::as_u64);
        if version != Some(VERSION) {
            return Err(format!("unknown version {:?}", object.get("version")));
        }
        let u64_field = |name: &str| {
            object
                .get(name)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("field {name:?} is missing or not a non-negative integer"))
        };
        let str_field = |name: &str| {
            object
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("field {name:?} is missing or not a string"))
        };
        let position = match object.get("position") {
            Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or("field \"position\" is not a non-negative integer")?,
            ),
            None => return Err("field \"position\" is missing".into()),
        };
        let checkpoint = Checkpoint {
            format: str_field("format")?,
            from: u64_field("from")?,
            selection: str_field("selection")?,
            position,
            events: u64_field("events")?,
            bytes: u64_field("bytes")?,
            parts: u64_field("parts")?,
        };
        if checkpoint.position.is_none() && (checkpoint.events > 0 || checkpoint.bytes > 0) {
            return Err("it counts events but has no position".into());
        }
        Ok(checkpoint)
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        json!({
            "version": VERSION,
            "format": self.format,
            "from": self.from,
            "selection": self.selection,
            "position": self.position,
            "events": self.events,
            "bytes": self.bytes,
            "parts": self.parts,
        })
        .to_string()
    }

    /// Replaces the checkpoint at `path` atomically and durably.
    pub fn store(&self, path: &Path) -> Result<(), ExportError> {
        let tmp = temporary(path);
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(self.to_json().as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&tmp, path)?;
            sync_dir(path)
        };
        write().map_err(|e| ExportError::io("cannot write the checkpoint", path, e))
    }
}

/// `path` with `.tmp` appended.
pub fn temporary(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Fsyncs the directory holding `path`, so that a rename or a new file in it is durable.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            format: "jsonl".into(),
            from: 7,
            selection: "all".into(),
            position: Some(99),
            events: 3,
            bytes: 300,
            parts: 0,
        }
    }

    #[test]
    fn a_checkpoint_reads_back_as_written() {
        let text = sample().to_json();
        assert_eq!(Checkpoint::parse(text.as_bytes()).unwrap(), sample());
        let empty = Checkpoint {
            position: None,
            events: 0,
            bytes: 0,
            ..sample()
        };
        assert_eq!(
            Checkpoint::parse(empty.to_json().as_bytes()).unwrap(),
            empty
        );
    }

    #[test]
    fn damaged_checkpoints_are_refused_with_a_reason() {
        let good = sample().to_json();
        let cases = [
            good[..good.len() / 2].to_owned(),
            good.replace("\"events\":3", "\"events\":-3"),
            good.replace("\"version\":1", "\"version\":9"),
            good.replace("\"position\":99", "\"position\":null"),
            "[]".to_owned(),
            String::new(),
        ];
        for case in cases {
            assert!(Checkpoint::parse(case.as_bytes()).is_err(), "{case}");
        }
    }
}
