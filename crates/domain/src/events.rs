//! The serialization boundary: every event is JSON with a past-tense type name and a schema
//! version, and old versions are upcast to the current one when read. The store keeps
//! `event_type`, `schema_version` (in metadata) and `data` (the JSON payload) side by side,
//! which is exactly [`EncodedEvent`].
//!
//! Version history:
//! - `OrderReviewed` v1 → v2: the single free-text `comment` became `text`, and `tags` was added
//!   (v1 reviews carry no tags).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::certificates::CertificateEvent;
use crate::credit::{CreditEvent, RuleSetEvent};
use crate::error::DomainError;
use crate::followups::FollowUpEvent;
use crate::order::OrderEvent;
use crate::worker::WorkerEvent;

/// An event type of some aggregate's stream.
pub trait DomainEvent: Serialize + DeserializeOwned {
    /// The stored type name (past tense).
    fn event_type(&self) -> &'static str;
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        OrderEvent::event_type(self)
    }
}

impl DomainEvent for CreditEvent {
    fn event_type(&self) -> &'static str {
        CreditEvent::event_type(self)
    }
}

impl DomainEvent for RuleSetEvent {
    fn event_type(&self) -> &'static str {
        RuleSetEvent::event_type(self)
    }
}

impl DomainEvent for CertificateEvent {
    fn event_type(&self) -> &'static str {
        CertificateEvent::event_type(self)
    }
}

impl DomainEvent for FollowUpEvent {
    fn event_type(&self) -> &'static str {
        FollowUpEvent::event_type(self)
    }
}

impl DomainEvent for WorkerEvent {
    fn event_type(&self) -> &'static str {
        WorkerEvent::event_type(self)
    }
}

/// The current schema version of an event type (1 unless the type has been changed).
pub fn current_schema_version(event_type: &str) -> u32 {
    match event_type {
        "OrderReviewed" => 2,
        _ => 1,
    }
}

/// An event as stored: type, schema version and JSON payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedEvent {
    /// Type name.
    pub event_type: String,
    /// Schema version of `data`.
    pub schema_version: u32,
    /// The payload.
    pub data: Value,
}

fn malformed(event_type: &str, reason: impl ToString) -> DomainError {
    DomainError::MalformedEvent {
        event_type: event_type.chars().take(64).collect(),
        reason: reason.to_string(),
    }
}

/// Encodes an event at its current schema version.
pub fn encode<E: DomainEvent>(event: &E) -> Result<EncodedEvent, DomainError> {
    let event_type = event.event_type();
    let value = serde_json::to_value(event).map_err(|e| malformed(event_type, e))?;
    let data = match value {
        Value::Object(mut map) => map.remove("data").unwrap_or(Value::Object(Map::new())),
        _ => return Err(malformed(event_type, "events serialize as objects")),
    };
    Ok(EncodedEvent {
        event_type: event_type.to_owned(),
        schema_version: current_schema_version(event_type),
        data,
    })
}

/// Decodes a stored event, upcasting old schema versions first.
pub fn decode<E: DomainEvent>(encoded: &EncodedEvent) -> Result<E, DomainError> {
    let data = upcast(
        &encoded.event_type,
        encoded.schema_version,
        encoded.data.clone(),
    )?;
    let mut envelope = Map::new();
    envelope.insert("type".to_owned(), Value::String(encoded.event_type.clone()));
    envelope.insert("data".to_owned(), data);
    serde_json::from_value(Value::Object(envelope)).map_err(|e| malformed(&encoded.event_type, e))
}

/// Brings `data` of `event_type` from `version` to the current version, one step at a time.
pub fn upcast(event_type: &str, version: u32, mut data: Value) -> Result<Value, DomainError> {
    let current = current_schema_version(event_type);
    if version == 0 || version > current {
        return Err(DomainError::UnsupportedSchemaVersion {
            event_type: event_type.chars().take(64).collect(),
            version,
            current,
        });
    }
    for from in version..current {
        data = match (event_type, from) {
            ("OrderReviewed", 1) => order_reviewed_v1_to_v2(data)?,
            _ => {
                return Err(DomainError::UnsupportedSchemaVersion {
                    event_type: event_type.to_owned(),
                    version: from,
                    current,
                });
            }
        };
    }
    Ok(data)
}

/// `OrderReviewed` v1 `{customer, stars, comment, workers, at}` → v2 `{customer, stars, tags,
/// text, workers, at}`: `comment` is renamed `text` and `tags` starts empty.
fn order_reviewed_v1_to_v2(data: Value) -> Result<Value, DomainError> {
    let Value::Object(mut map) = data else {
        return Err(malformed("OrderReviewed", "v1 payload is not an object"));
    };
    let comment = map
        .remove("comment")
        .unwrap_or(Value::String(String::new()));
    map.insert("text".to_owned(), comment);
    map.entry("tags").or_insert(Value::Array(Vec::new()));
    Ok(Value::Object(map))
}
