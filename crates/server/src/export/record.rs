//! One exported event, independent of the wire types, and its JSON-lines form.

use std::io::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;

/// 100 ns ticks per second (EventStoreDB's `created` unit, counted from the Unix epoch).
pub const TICKS_PER_SECOND: i64 = 10_000_000;

/// One event of the log as the export writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Global (commit) position in `$all`.
    pub position: u64,
    /// Stream name.
    pub stream: String,
    /// Revision in its stream (0-based).
    pub revision: u64,
    /// The event's id as a UUID string.
    pub event_id: String,
    /// The event type (`OrderPosted`).
    pub event_type: String,
    /// Creation time in 100 ns ticks since the Unix epoch.
    pub created_ticks: i64,
    /// Content type of `data` (`application/json` or `application/octet-stream`).
    pub content_type: String,
    /// The payload bytes.
    pub data: Bytes,
    /// The custom metadata bytes.
    pub metadata: Bytes,
}

impl Record {
    /// Whether the event is a system event (its stream or type starts with `$`).
    pub fn is_system(&self) -> bool {
        self.stream.starts_with('$') || self.event_type.starts_with('$')
    }

    /// Whether `data` is declared as JSON.
    pub fn data_is_json(&self) -> bool {
        is_json_content_type(&self.content_type)
    }

    /// The creation time in microseconds since the Unix epoch (rounded down).
    pub fn created_micros(&self) -> i64 {
        self.created_ticks.div_euclid(10)
    }

    /// The creation time as RFC 3339 in UTC (`2027-01-15T06:00:00.123456700Z`: 0, 3, 6 or 9
    /// fraction digits as needed).
    pub fn created_rfc3339(&self) -> String {
        let t = prost_types::Timestamp {
            seconds: self.created_ticks.div_euclid(TICKS_PER_SECOND),
            // In 0..1e9, so the cast cannot truncate.
            nanos: (self.created_ticks.rem_euclid(TICKS_PER_SECOND) * 100) as i32,
        };
        t.to_string()
    }

    /// Writes the record as one JSON object and a newline (see the module docs of
    /// [`super`] for the fields). `data` is embedded as JSON when its content type says JSON
    /// and it parses; otherwise it is `data_base64`. `metadata` likewise, whenever it parses.
    pub fn write_json_line(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(b"{\"position\":")?;
        write!(out, "{}", self.position)?;
        out.write_all(b",\"stream\":")?;
        serde_json::to_writer(&mut *out, &self.stream)?;
        write!(out, ",\"revision\":{}", self.revision)?;
        out.write_all(b",\"event_id\":")?;
        serde_json::to_writer(&mut *out, &self.event_id)?;
        out.write_all(b",\"event_type\":")?;
        serde_json::to_writer(&mut *out, &self.event_type)?;
        write!(
            out,
            ",\"created\":\"{}\",\"created_ticks\":{}",
            self.created_rfc3339(),
            self.created_ticks
        )?;
        out.write_all(b",\"content_type\":")?;
        serde_json::to_writer(&mut *out, &self.content_type)?;
        write_payload(out, "data", &self.data, self.data_is_json())?;
        write_payload(out, "metadata", &self.metadata, true)?;
        out.write_all(b"}\n")
    }
}

/// Whether a content type declares JSON (`application/json`, `…+json`, parameters allowed).
pub fn is_json_content_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

fn write_payload(out: &mut impl Write, name: &str, bytes: &[u8], try_json: bool) -> io::Result<()> {
    if try_json && !bytes.is_empty() {
        // Parsed and written again compactly: a pretty-printed payload would break the
        // one-object-per-line framing.
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
            write!(out, ",\"{name}\":")?;
            return serde_json::to_writer(&mut *out, &value).map_err(io::Error::from);
        }
    }
    write!(out, ",\"{name}_base64\":\"{}\"", BASE64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            position: 42,
            stream: "order-1".into(),
            revision: 3,
            event_id: "0190a6a2-0000-7000-8000-000000000001".into(),
            event_type: "OrderPosted".into(),
            created_ticks: 17_999_928_001_234_567,
            content_type: "application/json".into(),
            data: Bytes::from_static(b"{\n  \"a\": [1, 2]\n}"),
            metadata: Bytes::from_static(b"{\"actor\":\"x\"}"),
        }
    }

    #[test]
    fn a_json_event_is_one_line_with_its_payloads_embedded() {
        let mut out = Vec::new();
        record().write_json_line(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["position"], 42);
        assert_eq!(v["revision"], 3);
        assert_eq!(v["data"]["a"][1], 2);
        assert_eq!(v["metadata"]["actor"], "x");
        assert_eq!(v["created"], "2027-01-15T06:00:00.123456700Z");
        assert_eq!(v["created_ticks"], 17_999_928_001_234_567_i64);
        assert!(v.get("data_base64").is_none());
    }

    #[test]
    fn binary_or_unparsable_payloads_are_base64() {
        let mut r = record();
        r.content_type = "application/octet-stream".into();
        r.data = Bytes::from_static(&[0, 159, 146, 150]);
        r.metadata = Bytes::from_static(b"not json");
        let mut out = Vec::new();
        r.write_json_line(&mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data_base64"], "AJ+Slg==");
        assert_eq!(v["metadata_base64"], "bm90IGpzb24=");
        assert!(v.get("data").is_none() && v.get("metadata").is_none());
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/vnd.daojia+json"));
        assert!(!is_json_content_type("application/octet-stream"));
        assert!(!is_json_content_type(""));
    }

    #[test]
    fn system_events_are_those_of_dollar_streams_or_types() {
        let mut r = record();
        assert!(!r.is_system());
        r.stream = "$$order-1".into();
        assert!(r.is_system());
        r.stream = "order-1".into();
        r.event_type = "$metadata".into();
        assert!(r.is_system());
    }
}
