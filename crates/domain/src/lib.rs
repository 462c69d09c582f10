//! daojia's domain: the pure rules of the home-services platform. Typed ids, money in fen, the
//! service catalogue, certificates, the order aggregate, credit with its versioned rule sets,
//! ops follow-ups, and the event serialization boundary.
//!
//! Pure: no async runtime, no I/O, no clock, no randomness. Time (`now`) and fresh ids are
//! arguments. Each aggregate has `decide(&state, command, now) -> Result<Vec<Event>,
//! DomainError>` holding every rule and `evolve(state, &event) -> state` that never judges.
//!
//! Code map: [`ids`], [`time`], [`money`], [`catalog`], [`certificates`], [`order_terms`],
//! [`order`], [`credit`], [`followups`], [`worker`], [`events`], [`error`].
//!
//! ```
//! use daojia_domain::order::{self, DispatchMode, GeoPoint, OrderCommand, OrderEvent, PostOrder, ServiceWindow};
//! use daojia_domain::{CustomerId, Fen, Minutes, OrderId, OrderTerms, Standing, Timestamp};
//!
//! let now = Timestamp(1_700_000_000_000);
//! let post = PostOrder {
//!     order_id: OrderId::from_u128(1),
//!     customer: CustomerId::from_u128(2),
//!     customer_standing: Standing::Good,
//!     service: "C01".parse()?,
//!     quantity: 3,
//!     workers: 1,
//!     window: ServiceWindow { start: now.plus(Minutes::days(1)), end: now.plus(Minutes::days(1)).plus(Minutes(180)) },
//!     location: GeoPoint::new(27.95, 116.36)?,
//!     dispatch: DispatchMode::Platform,
//!     terms: OrderTerms::default(),
//! };
//! let events = order::decide(&Default::default(), OrderCommand::Post(Box::new(post)), now)?;
//! let Some(OrderEvent::OrderPosted { quote, .. }) = events.first() else { unreachable!() };
//! assert_eq!(quote.total, Fen(10_500));
//! # Ok::<(), daojia_domain::DomainError>(())
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod catalog;
pub mod certificates;
pub mod credit;
pub mod error;
pub mod events;
pub mod followups;
pub mod ids;
pub mod money;
pub mod order;
pub mod order_terms;
pub mod time;
pub mod worker;

pub use catalog::{Catalog, Category, PricingUnit, Quote, ServiceCode, ServiceType, SkillKind};
pub use credit::{RuleId, RuleSet, Standing, Subject};
pub use error::{DomainError, ErrorKind, Ineligibility};
pub use events::{DomainEvent, EncodedEvent};
pub use ids::{
    AppealId, AssociationId, CertificateId, CompanyId, ComplaintId, CustomerId, DisputeId, EventId,
    FollowUpId, OrderId, RegistryId, WorkerId,
};
pub use money::{BasisPoints, Fen};
pub use order::{OrderCommand, OrderEvent, OrderPhase, OrderState};
pub use order_terms::{CancellationPolicy, CancellationTier, OrderTerms};
pub use time::{Minutes, Timestamp};
