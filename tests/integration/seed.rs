//! Seeding a data directory through the domain before the server starts: workers with their
//! profile, contract and home-visit certificate, and any other domain events.

use daojia_domain::certificates::{CertificateEvent, CertificateKind, IdentityNumber};
use daojia_domain::events::{self, DomainEvent};
use daojia_domain::order::GeoPoint;
use daojia_domain::worker::{self, ContractNumber, WorkerEvent};
use daojia_domain::{CertificateId, CompanyId, RegistryId, Timestamp, WorkerId};
use daojia_store::{EmbeddedStore, EventId, EventStore, ExpectedRevision, ProposedEvent};

/// Appends domain events through the store, with fresh event ids.
pub(crate) struct Seeder {
    pub(crate) store: EmbeddedStore,
    next_id: u128,
    /// The company and registry of the workers registered.
    pub(crate) company: CompanyId,
    pub(crate) registry: RegistryId,
    /// Registration, contracts and certificates start here and last a year past it.
    pub(crate) since: Timestamp,
}

/// A worker to register.
pub(crate) struct NewWorker<'a> {
    pub(crate) id: WorkerId,
    pub(crate) identity: &'a str,
    pub(crate) home: GeoPoint,
    pub(crate) contract: bool,
    pub(crate) certified: bool,
}

const YEAR_MS: i64 = 365 * 24 * 3_600_000;

impl Seeder {
    /// A seeder over `store`.
    pub(crate) fn new(
        store: EmbeddedStore,
        company: CompanyId,
        registry: RegistryId,
        since: Timestamp,
    ) -> Self {
        Seeder {
            store,
            next_id: 0,
            company,
            registry,
            since,
        }
    }

    pub(crate) async fn append<E: DomainEvent>(&mut self, stream: &str, events: &[E]) {
        let proposed = events
            .iter()
            .map(|event| {
                let encoded = events::encode(event).unwrap();
                self.next_id += 1;
                ProposedEvent::json(
                    EventId::from_u128(self.next_id),
                    encoded.event_type,
                    serde_json::to_vec(&encoded.data).unwrap(),
                )
            })
            .collect();
        self.store
            .append(stream, ExpectedRevision::Any, proposed)
            .await
            .unwrap();
    }

    /// Registers a worker, optionally with a contract in force and a home-visit certificate.
    pub(crate) async fn worker(&mut self, w: NewWorker<'_>) {
        let identity = IdentityNumber::new(w.identity).unwrap();
        let until = Timestamp(self.since.0 + YEAR_MS);
        let mut profile = vec![WorkerEvent::WorkerRegistered {
            worker: w.id,
            company: self.company,
            identity: identity.clone(),
            skills: Vec::new(),
            home: w.home,
            registry: self.registry,
            at: self.since,
        }];
        if w.contract {
            profile.push(WorkerEvent::ContractSigned {
                contract: ContractNumber::new(&format!("HT-{}", w.id)).unwrap(),
                valid_from: self.since,
                valid_until: until,
                at: self.since,
            });
        }
        self.append(&worker::profile_stream(w.id), &profile).await;
        if w.certified {
            let issued = CertificateEvent::CertificateIssued {
                certificate_id: CertificateId::new(w.id.uuid()),
                worker: w.id,
                identity,
                company: self.company,
                kind: CertificateKind::HomeVisit,
                issued_at: self.since,
                valid_until: until,
            };
            let registry = self.registry.stream_name();
            self.append(&registry, &[issued]).await;
        }
    }
}
