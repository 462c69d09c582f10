//! Test fixtures: a temporary store and a driver that decides domain commands and appends the
//! resulting events the way the command service will (JSON data, `schema_version` metadata).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use daojia_domain::credit::{self, CreditCommand, CreditState, RuleSet, Subject};
use daojia_domain::events::{self, DomainEvent};
use daojia_domain::ids::CREDIT_RULES_STREAM;
use daojia_domain::order::{
    self, Checklist, DispatchMode, GeoPoint, PostOrder, ReviewTag, ServiceWindow, SlotIndex, Stars,
    WorkerCredentials,
};
use daojia_domain::{
    CustomerId, Minutes, OrderCommand, OrderId, OrderState, OrderTerms, Standing, Timestamp,
    WorkerId,
};
use daojia_store::{EmbeddedStore, EventId, EventStore, ExpectedRevision, Position, ProposedEvent};

/// Generous bound for read-your-writes waits in tests (they return as soon as the event is in).
pub const WAIT: Duration = Duration::from_secs(10);

/// The first instant of the fixtures.
pub const T0: Timestamp = Timestamp(1_700_000_000_000);

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "daojia-projections-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a served order went.
#[derive(Clone, Debug)]
pub struct Visit {
    /// Minutes late at check-in.
    pub late: u32,
    /// Review stars.
    pub stars: u8,
    /// Review tags.
    pub tags: Vec<ReviewTag>,
}

impl Visit {
    pub fn good() -> Self {
        Visit {
            late: 0,
            stars: 5,
            tags: Vec::new(),
        }
    }
}

/// A store plus the order states needed to decide further commands.
pub struct World {
    pub store: Arc<EmbeddedStore>,
    orders: HashMap<OrderId, OrderState>,
    credit: HashMap<Subject, CreditState>,
    pub rules: RuleSet,
    next_event: u128,
    _dir: TempDir,
}

pub fn worker(n: u128) -> WorkerId {
    WorkerId::from_u128(0x_1000 + n)
}

pub fn customer(n: u128) -> CustomerId {
    CustomerId::from_u128(0x_2000 + n)
}

pub fn order_id(n: u128) -> OrderId {
    OrderId::from_u128(0x_3000 + n)
}

pub fn creds(worker: WorkerId) -> WorkerCredentials {
    WorkerCredentials {
        worker,
        standing: Standing::Good,
        home_visit_certificate_valid: true,
        skills: Vec::new(),
        contract_signed: true,
    }
}

pub const HOME: GeoPoint = GeoPoint {
    lat: 27.95,
    lon: 116.36,
};

impl World {
    pub fn new(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        let store = Arc::new(EmbeddedStore::open(&dir.0).unwrap());
        World {
            store,
            orders: HashMap::new(),
            credit: HashMap::new(),
            rules: RuleSet::proposal(),
            next_event: 1,
            _dir: dir,
        }
    }

    /// Appends domain events to `stream` with schema-version metadata; returns the commit
    /// position.
    pub async fn append<E: DomainEvent>(&mut self, stream: &str, events: &[E]) -> Position {
        let proposed = events
            .iter()
            .map(|e| {
                let encoded = events::encode(e).unwrap();
                self.next_event += 1;
                ProposedEvent::json(
                    EventId::from_u128(self.next_event),
                    encoded.event_type,
                    serde_json::to_vec(&encoded.data).unwrap(),
                )
                .with_metadata(
                    serde_json::to_vec(
                        &serde_json::json!({ "schema_version": encoded.schema_version }),
                    )
                    .unwrap(),
                )
            })
            .collect();
        self.store
            .append(stream, ExpectedRevision::Any, proposed)
            .await
            .unwrap()
            .position
    }

    /// Appends a raw event (for system streams and hand-written old versions).
    pub async fn append_raw(
        &mut self,
        stream: &str,
        event_type: &str,
        data: &str,
        meta: &str,
    ) -> Position {
        self.next_event += 1;
        let e = ProposedEvent::json(
            EventId::from_u128(self.next_event),
            event_type,
            data.as_bytes().to_vec(),
        )
        .with_metadata(meta.as_bytes().to_vec());
        self.store
            .append(stream, ExpectedRevision::Any, vec![e])
            .await
            .unwrap()
            .position
    }

    /// Publishes the proposed rule set.
    pub async fn publish_rules(&mut self, at: Timestamp) -> Position {
        let events = credit::publish_rule_set(&Default::default(), self.rules.clone(), at).unwrap();
        self.append(CREDIT_RULES_STREAM, &events).await
    }

    /// Decides a credit command for `subject` and appends the events.
    pub async fn credit(
        &mut self,
        subject: Subject,
        command: CreditCommand,
        now: Timestamp,
    ) -> Position {
        let state = self
            .credit
            .remove(&subject)
            .unwrap_or_else(|| CreditState::new(subject));
        let events = credit::decide(&state, &self.rules, command, now).unwrap();
        let state = events.iter().fold(state, credit::evolve);
        self.credit.insert(subject, state);
        self.append(&subject.stream_name(), &events).await
    }

    /// The id the next appended event will get.
    pub fn next_event_id(&self) -> daojia_domain::EventId {
        daojia_domain::EventId::from_u128(self.next_event + 1)
    }

    /// Decides `command` on order `id` at `now` and appends the events.
    pub async fn order(&mut self, id: OrderId, command: OrderCommand, now: Timestamp) -> Position {
        let state = self.orders.remove(&id).unwrap_or_default();
        let events = order::decide(&state, command, now).unwrap();
        let state = events.iter().fold(state, order::evolve);
        self.orders.insert(id, state);
        self.append(&id.stream_name(), &events).await
    }

    /// Posts a one-worker routine-cleaning order starting a day after `at`.
    pub async fn post(&mut self, id: OrderId, customer: CustomerId, at: Timestamp) -> Position {
        let start = at.plus(Minutes::days(1));
        let post = PostOrder {
            order_id: id,
            customer,
            customer_standing: Standing::Good,
            service: "C01".parse().unwrap(),
            quantity: 2,
            workers: 1,
            window: ServiceWindow {
                start,
                end: start.plus(Minutes(120)),
            },
            location: HOME,
            dispatch: DispatchMode::Platform,
            terms: OrderTerms::default(),
        };
        self.order(id, OrderCommand::Post(Box::new(post)), at).await
    }

    /// Offers slot 0 to `w` and has them accept.
    pub async fn assign(&mut self, id: OrderId, w: WorkerId, at: Timestamp) -> Position {
        let slot = SlotIndex(0);
        self.order(
            id,
            OrderCommand::Offer {
                slot,
                worker: creds(w),
            },
            at,
        )
        .await;
        self.order(
            id,
            OrderCommand::Accept {
                slot,
                worker: creds(w),
            },
            at.plus(Minutes(1)),
        )
        .await
    }

    /// Posts, assigns, serves (checking in `late` minutes late) and reviews an order.
    pub async fn full_order(
        &mut self,
        id: OrderId,
        c: CustomerId,
        w: WorkerId,
        at: Timestamp,
        visit: Visit,
    ) -> Position {
        let Visit { late, stars, tags } = visit;
        self.post(id, c, at).await;
        self.assign(id, w, at.plus(Minutes(1))).await;
        let start = at.plus(Minutes::days(1));
        let slot = SlotIndex(0);
        self.order(
            id,
            OrderCommand::CheckIn {
                slot,
                worker: w,
                location: HOME,
            },
            start.plus(Minutes(late)),
        )
        .await;
        self.order(
            id,
            OrderCommand::Complete {
                slot,
                worker: w,
                checklist: Checklist {
                    tools_disinfected: true,
                    area_tidied: true,
                    customer_confirmed: true,
                },
            },
            start.plus(Minutes(130)),
        )
        .await;
        self.order(
            id,
            OrderCommand::Review {
                customer: c,
                stars: Stars::new(stars).unwrap(),
                tags,
                text: "ok".into(),
            },
            start.plus(Minutes(200)),
        )
        .await
    }
}
