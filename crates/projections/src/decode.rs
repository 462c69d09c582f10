//! Turning a stored event into a domain event: routing by stream category, reading the schema
//! version from the metadata, and upcasting through [`daojia_domain::events::decode`].
//!
//! The schema version is the `schema_version` field of the event's JSON metadata. An event
//! without it (or without JSON metadata) is taken to be at the current version of its type:
//! writers that predate versioning wrote nothing else, and guessing "1" would upcast a current
//! payload a second time.

use daojia_domain::certificates::CertificateEvent;
use daojia_domain::credit::{CreditEvent, RuleSetEvent};
use daojia_domain::events::{self, EncodedEvent};
use daojia_domain::followups::FollowUpEvent;
use daojia_domain::ids::CREDIT_RULES_STREAM;
use daojia_domain::worker::{self, WorkerEvent};
use daojia_domain::{CompanyId, CustomerId, EventId, FollowUpId, OrderEvent, OrderId, WorkerId};
use daojia_store::RecordedEvent;

/// The metadata field holding an event's schema version.
pub const SCHEMA_VERSION_FIELD: &str = "schema_version";

/// A decoded domain event with the aggregate id taken from its stream name.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DomainRecord {
    /// An event of stream `order-<uuid>`.
    Order(OrderId, OrderEvent),
    /// An event of a credit stream (`worker-`, `customer-` or `company-<uuid>`).
    Credit(CreditEvent),
    /// An event of `creditrules-global`.
    RuleSet(RuleSetEvent),
    /// An event of a certificate registry (`certificates-<uuid>`).
    Certificate(CertificateEvent),
    /// An event of stream `followup-<uuid>`.
    FollowUp(FollowUpId, FollowUpEvent),
    /// An event of a worker profile stream (`workerprofile-<uuid>`: registration, contracts).
    Worker(WorkerId, WorkerEvent),
}

/// Why a stored event was not turned into a [`DomainRecord`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A system stream (`$…`) or a stream category the read models do not know.
    NotDomain,
    /// A domain stream, but the payload or its version could not be read.
    Malformed(String),
}

/// The domain event id of a stored event (same UUID).
pub fn event_id(event: &RecordedEvent) -> EventId {
    EventId::from_u128(event.id.as_u128())
}

/// The creation time of a stored event in unix milliseconds (the log keeps 100 ns ticks).
pub fn created_at(event: &RecordedEvent) -> daojia_domain::Timestamp {
    daojia_domain::Timestamp(event.created_ticks / 10_000)
}

fn schema_version(event: &RecordedEvent) -> u32 {
    serde_json::from_slice::<serde_json::Value>(event.metadata_slice())
        .ok()
        .and_then(|m| m.get(SCHEMA_VERSION_FIELD).and_then(|v| v.as_u64()))
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or_else(|| events::current_schema_version(event.event_type()))
}

fn decode_as<E: events::DomainEvent>(event: &RecordedEvent) -> Result<E, Skip> {
    let data = serde_json::from_slice(event.data_slice())
        .map_err(|e| Skip::Malformed(format!("{} data is not JSON: {e}", event.event_type())))?;
    let encoded = EncodedEvent {
        event_type: event.event_type().to_owned(),
        schema_version: schema_version(event),
        data,
    };
    events::decode(&encoded).map_err(|e| Skip::Malformed(e.to_string()))
}

/// Decodes `event` if it belongs to a domain stream.
pub fn decode(event: &RecordedEvent) -> Result<DomainRecord, Skip> {
    let stream = event.stream();
    let category = stream.split_once('-').map_or(stream, |(c, _)| c);
    let bad_id = |e: daojia_domain::DomainError| Skip::Malformed(e.to_string());
    match category {
        _ if stream.starts_with('$') => Err(Skip::NotDomain),
        OrderId::CATEGORY => {
            let id = OrderId::from_stream_name(stream).map_err(bad_id)?;
            Ok(DomainRecord::Order(id, decode_as(event)?))
        }
        WorkerId::CATEGORY | CustomerId::CATEGORY | CompanyId::CATEGORY => {
            Ok(DomainRecord::Credit(decode_as(event)?))
        }
        _ if stream == CREDIT_RULES_STREAM => Ok(DomainRecord::RuleSet(decode_as(event)?)),
        daojia_domain::RegistryId::CATEGORY => Ok(DomainRecord::Certificate(decode_as(event)?)),
        worker::PROFILE_CATEGORY => {
            let id = stream
                .strip_prefix(worker::PROFILE_CATEGORY)
                .and_then(|rest| rest.strip_prefix('-'))
                .unwrap_or_default()
                .parse::<WorkerId>()
                .map_err(bad_id)?;
            Ok(DomainRecord::Worker(id, decode_as(event)?))
        }
        FollowUpId::CATEGORY => {
            let id = FollowUpId::from_stream_name(stream).map_err(bad_id)?;
            Ok(DomainRecord::FollowUp(id, decode_as(event)?))
        }
        _ => Err(Skip::NotDomain),
    }
}
