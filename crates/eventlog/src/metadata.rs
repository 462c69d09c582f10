//! Stream metadata: the `$metadata` events of `$$<stream>` and the limits they put on reads.

use serde_json::{Map, Value};

/// Prefix of metadata streams.
pub const METASTREAM_PREFIX: &str = "$$";
/// Event type of metadata events.
pub const METADATA_EVENT_TYPE: &str = "$metadata";
/// `$tb` value written by a soft delete: every revision is truncated.
pub const DELETED_TRUNCATE_BEFORE: u64 = i64::MAX as u64;

/// The limits a stream's metadata puts on its reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamMetadata {
    /// Revisions below this are hidden (`$tb`).
    pub truncate_before: Option<u64>,
    /// Only the last this-many events are visible (`$maxCount`).
    pub max_count: Option<u64>,
    /// Events older than this many seconds are hidden (`$maxAge`).
    pub max_age_secs: Option<u64>,
    /// The whole JSON object, custom keys included.
    pub raw: Map<String, Value>,
}

impl StreamMetadata {
    /// Parses a metadata event's data.
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(data)
            .map_err(|e| format!("stream metadata is not valid JSON: {e}"))?;
        let Value::Object(raw) = value else {
            return Err("stream metadata must be a JSON object".into());
        };
        let int = |key: &str, min: u64| -> Result<Option<u64>, String> {
            match raw.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if n >= min => Ok(Some(n)),
                    _ => Err(format!(
                        "stream metadata {key} must be an integer of at least {min}, not {v}"
                    )),
                },
            }
        };
        Ok(StreamMetadata {
            truncate_before: int("$tb", 0)?,
            max_count: int("$maxCount", 1)?,
            max_age_secs: int("$maxAge", 1)?,
            raw,
        })
    }

    /// Whether the metadata marks the stream as soft-deleted.
    pub fn is_deleted_marker(&self) -> bool {
        self.truncate_before == Some(DELETED_TRUNCATE_BEFORE)
    }

    /// The JSON of this metadata with `$tb` replaced.
    pub fn with_truncate_before(&self, tb: u64) -> Vec<u8> {
        let mut raw = self.raw.clone();
        raw.insert("$tb".into(), Value::from(tb));
        serde_json::to_vec(&Value::Object(raw)).unwrap_or_default()
    }
}

/// The stream a metadata stream describes, if `name` is one.
pub fn target_of(name: &str) -> Option<&str> {
    name.strip_prefix(METASTREAM_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limits_and_keeps_custom_keys() {
        let m = StreamMetadata::parse(br#"{"$tb":3,"$maxCount":10,"$maxAge":60,"owner":"ops"}"#)
            .unwrap();
        assert_eq!(m.truncate_before, Some(3));
        assert_eq!(m.max_count, Some(10));
        assert_eq!(m.max_age_secs, Some(60));
        assert_eq!(m.raw["owner"], "ops");
        let again = StreamMetadata::parse(&m.with_truncate_before(9)).unwrap();
        assert_eq!(again.truncate_before, Some(9));
        assert_eq!(again.raw["owner"], "ops");
    }

    #[test]
    fn rejects_bad_metadata() {
        for bad in [
            &b"[]"[..],
            b"nope",
            br#"{"$maxCount":0}"#,
            br#"{"$tb":-1}"#,
            br#"{"$maxAge":"1h"}"#,
        ] {
            assert!(
                StreamMetadata::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
