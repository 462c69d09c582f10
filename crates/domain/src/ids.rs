//! Typed identifiers: one UUID newtype per kind of thing, and the event-store stream names
//! (`<category>-<uuid>`) of the aggregates that own a stream.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// What this id names, as used in error messages (`"order"`, `"worker"`, …).
            pub const KIND: &'static str = $kind;

            /// Wraps a UUID chosen by the caller (fresh ids are arguments: the domain has no RNG).
            pub const fn new(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// A deterministic id, for tests and fixtures.
            pub const fn from_u128(value: u128) -> Self {
                Self(Uuid::from_u128(value))
            }

            /// The wrapped UUID.
            pub const fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;

            /// Parses the hyphenated, simple, braced or URN UUID forms; the nil UUID is refused.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match Uuid::parse_str(s) {
                    Ok(uuid) if !uuid.is_nil() => Ok(Self(uuid)),
                    _ => Err(DomainError::InvalidId { kind: $kind, value: s.chars().take(64).collect() }),
                }
            }
        }
    };
}

macro_rules! stream_id {
    ($name:ident, $category:literal) => {
        impl $name {
            /// The event-store category of this aggregate's streams.
            pub const CATEGORY: &'static str = $category;

            /// The name of this aggregate's stream: `<category>-<uuid>`.
            pub fn stream_name(self) -> String {
                format!("{}-{}", $category, self.0.hyphenated())
            }

            /// Parses a stream name of this category back into the id.
            pub fn from_stream_name(stream: &str) -> Result<Self, DomainError> {
                match stream.strip_prefix(concat!($category, "-")) {
                    Some(rest) => rest.parse(),
                    None => Err(DomainError::InvalidId {
                        kind: Self::KIND,
                        value: stream.chars().take(80).collect(),
                    }),
                }
            }
        }
    };
}

uuid_id!(
    /// An order (one customer need, one or more worker slots). Owns stream `order-<uuid>`.
    OrderId, "order"
);
uuid_id!(
    /// A home-service worker (家政从业人员). Owns stream `worker-<uuid>` (credit, training) and
    /// the profile stream `workerprofile-<uuid>` (registration, contracts; see `worker`).
    WorkerId, "worker"
);
uuid_id!(
    /// A household (雇主). Owns stream `customer-<uuid>` (credit).
    CustomerId, "customer"
);
uuid_id!(
    /// A home-service company (家政企业). Owns stream `company-<uuid>` (credit).
    CompanyId, "company"
);
uuid_id!(
    /// An industry association (协会) that takes big orders for its member companies.
    AssociationId, "association"
);
uuid_id!(
    /// A home-visit or skill certificate. Certificates live in stream `certificates-<uuid>`
    /// of the issuing registry.
    CertificateId, "certificate"
);
uuid_id!(
    /// A certificate registry (one per issuing authority), owning stream `certificates-<uuid>`.
    RegistryId, "registry"
);
uuid_id!(
    /// A complaint (投诉) filed against a worker on an order.
    ComplaintId, "complaint"
);
uuid_id!(
    /// A dispute (纠纷) on an order, mediated by ops.
    DisputeId, "dispute"
);
uuid_id!(
    /// An ops follow-up task (三必访四必谈). Owns stream `followup-<uuid>`.
    FollowUpId, "followup"
);
uuid_id!(
    /// An appeal against a credit adjustment or sanction.
    AppealId, "appeal"
);
uuid_id!(
    /// The client-chosen id of a stored event; credit adjustments and follow-ups name their
    /// evidence by it.
    EventId, "event"
);

stream_id!(OrderId, "order");
stream_id!(WorkerId, "worker");
stream_id!(CustomerId, "customer");
stream_id!(CompanyId, "company");
stream_id!(RegistryId, "certificates");
stream_id!(FollowUpId, "followup");

/// The stream holding every published credit rule set (`CreditRuleSetPublished` events).
pub const CREDIT_RULES_STREAM: &str = "creditrules-global";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_round_trip() {
        let id = OrderId::from_u128(0x1234);
        let stream = id.stream_name();
        assert_eq!(stream, "order-00000000-0000-0000-0000-000000001234");
        assert_eq!(OrderId::from_stream_name(&stream), Ok(id));
        assert!(OrderId::from_stream_name("worker-00000000-0000-0000-0000-000000001234").is_err());
    }

    #[test]
    fn nil_and_malformed_ids_are_refused() {
        assert_eq!(
            "00000000-0000-0000-0000-000000000000".parse::<WorkerId>(),
            Err(DomainError::InvalidId {
                kind: "worker",
                value: "00000000-0000-0000-0000-000000000000".into()
            })
        );
        assert!("not-a-uuid".parse::<CustomerId>().is_err());
        assert_eq!(
            "00000000-0000-0000-0000-000000000007".parse::<CustomerId>(),
            Ok(CustomerId::from_u128(7))
        );
    }

    #[test]
    fn ids_serialize_as_uuid_strings() {
        let json = serde_json::to_string(&WorkerId::from_u128(1)).unwrap();
        assert_eq!(json, "\"00000000-0000-0000-0000-000000000001\"");
    }
}
