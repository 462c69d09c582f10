//! The serialization boundary: JSON round trips at the current schema version, and the stored
//! v1 `OrderReviewed` fixture upcast to v2.

use daojia_domain::credit::{CreditEvent, RuleSet, RuleSetEvent, SanctionCause};
use daojia_domain::events::{self, EncodedEvent};
use daojia_domain::order::{OrderEvent, Stars};
use daojia_domain::{CustomerId, DomainError, EventId, RuleId, Subject, Timestamp, WorkerId};

use crate::order_lifecycle::{self as lc, T0};

const V1_FIXTURE: &str = include_str!("fixtures/order_reviewed_v1.json");

#[test]
fn stored_v1_order_reviewed_upcasts_to_v2() {
    let stored: EncodedEvent = serde_json::from_str(V1_FIXTURE).unwrap();
    assert_eq!(stored.schema_version, 1);
    let event: OrderEvent = events::decode(&stored).unwrap();
    assert_eq!(
        event,
        OrderEvent::OrderReviewed {
            customer: CustomerId::from_u128(0xC1),
            stars: Stars::new(4).unwrap(),
            tags: vec![],
            text: "准时，干净".into(),
            workers: vec![WorkerId::from_u128(0xA1)],
            at: Timestamp(1_767_312_000_000),
        }
    );
    // Re-encoding writes the current version.
    let encoded = events::encode(&event).unwrap();
    assert_eq!(encoded.schema_version, 2);
    assert!(encoded.data.get("comment").is_none());
    assert_eq!(
        encoded.data.get("text").and_then(|t| t.as_str()),
        Some("准时，干净")
    );
}

#[test]
fn every_lifecycle_event_round_trips_through_json() {
    let mut all = lc::served();
    all.push(OrderEvent::OrderReviewed {
        customer: lc::CUSTOMER,
        stars: Stars::new(5).unwrap(),
        tags: vec![daojia_domain::order::ReviewTag::Excellent],
        text: "很好".into(),
        workers: vec![lc::W1],
        at: T0,
    });
    for event in &all {
        let encoded = events::encode(event).unwrap();
        assert_eq!(encoded.event_type, event.event_type());
        let json = serde_json::to_string(&encoded).unwrap();
        let back: EncodedEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(&events::decode::<OrderEvent>(&back).unwrap(), event);
    }
}

#[test]
fn credit_events_and_rule_sets_round_trip() {
    let adjusted = CreditEvent::CreditAdjusted {
        subject: Subject::Worker(lc::W1),
        rule: RuleId::new("worker.late_check_in").unwrap(),
        rule_set_version: 1,
        evidence: EventId::from_u128(0xE1),
        delta: -2,
        score_after: 98,
        at: T0,
        order: Some(lc::ORDER),
        fact: Some(daojia_domain::credit::VisitFact::LateCheckIn),
    };
    let warned = CreditEvent::WarningIssued {
        subject: Subject::Worker(lc::W1),
        cause: SanctionCause::Rule {
            rule: RuleId::new("worker.late_check_in").unwrap(),
            evidence: EventId::from_u128(0xE1),
        },
        at: T0,
    };
    for event in [adjusted, warned] {
        let encoded = events::encode(&event).unwrap();
        assert_eq!(events::decode::<CreditEvent>(&encoded).unwrap(), event);
    }
    let published = RuleSetEvent::CreditRuleSetPublished {
        rule_set: RuleSet::proposal(),
        at: T0,
    };
    let encoded = events::encode(&published).unwrap();
    assert_eq!(encoded.event_type, "CreditRuleSetPublished");
    assert_eq!(events::decode::<RuleSetEvent>(&encoded).unwrap(), published);
}

#[test]
fn unknown_versions_and_malformed_payloads_are_reported() {
    let stored: EncodedEvent = serde_json::from_str(V1_FIXTURE).unwrap();
    let future = EncodedEvent {
        schema_version: 3,
        ..stored.clone()
    };
    assert_eq!(
        events::decode::<OrderEvent>(&future),
        Err(DomainError::UnsupportedSchemaVersion {
            event_type: "OrderReviewed".into(),
            version: 3,
            current: 2
        })
    );
    let zero = EncodedEvent {
        schema_version: 0,
        ..stored.clone()
    };
    assert!(matches!(
        events::decode::<OrderEvent>(&zero),
        Err(DomainError::UnsupportedSchemaVersion { .. })
    ));
    let bad_stars = EncodedEvent {
        data: serde_json::json!({"customer": "00000000-0000-0000-0000-0000000000c1", "stars": 9, "tags": [], "text": "", "workers": [], "at": 0}),
        schema_version: 2,
        ..stored.clone()
    };
    assert!(matches!(
        events::decode::<OrderEvent>(&bad_stars),
        Err(DomainError::MalformedEvent { .. })
    ));
    let unknown = EncodedEvent {
        event_type: "OrderTeleported".into(),
        schema_version: 1,
        data: serde_json::json!({}),
    };
    assert!(matches!(
        events::decode::<OrderEvent>(&unknown),
        Err(DomainError::MalformedEvent { .. })
    ));
}

#[test]
fn event_type_names_are_past_tense() {
    let names: Vec<&str> = lc::served().iter().map(OrderEvent::event_type).collect();
    assert_eq!(
        names,
        vec![
            "OrderPosted",
            "OrderOffered",
            "OrderAccepted",
            "WorkerCheckedIn",
            "ServiceCompleted",
            "OrderServed"
        ]
    );
}
