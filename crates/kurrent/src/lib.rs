//! [`KurrentStore`]: daojia's [`EventStore`](daojia_store::EventStore) trait over a KurrentDB
//! (or EventStoreDB) server, through the official `kurrentdb` client.
//!
//! ```no_run
//! # async fn demo() -> Result<(), daojia_store::StoreError> {
//! use daojia_kurrent::KurrentStore;
//! use daojia_store::{EventId, EventStore, ExpectedRevision, ProposedEvent};
//! let store = KurrentStore::connect("kurrentdb://127.0.0.1:2113?tls=false").await?;
//! let event = ProposedEvent::json(EventId::from_u128(1), "OrderPosted", &b"{}"[..]);
//! store.append("order-1", ExpectedRevision::NoStream, vec![event]).await?;
//! # Ok(()) }
//! ```
//!
//! The connection string is the client's: `kurrentdb://`, `kurrent://`, `kdb://` or `esdb://`
//! (each also with `+discover` for gossip discovery), `host:port` (several, comma-separated, for
//! a cluster's seeds), optional `user:password@` (sent as Basic credentials), and the client's
//! query settings (`tls=false`, `tlsCAFile=…`, `nodePreference=…`, …).
//!
//! The client's own types (it pins tonic and prost versions of its own) never appear in this
//! crate's API: everything goes in and out as `daojia_store` types.
//!
//! # What differs from the embedded store
//!
//! - **Idempotent retries are the server's.** Appending the same event ids again with an
//!   exact or no-stream expectation returns the original result on KurrentDB as on the
//!   embedded log; with `Any` or `StreamExists` KurrentDB only recognises ids it still holds in
//!   its cache of recent writes.
//! - **Durability and ordering are the server's** (a cluster acknowledges after a quorum has
//!   the write); nothing is stored locally.
//! - **Positions** are KurrentDB commit positions. `head()` is the last event's position plus
//!   one (one backwards `$all` read), not the end of a record; the `next` of an `$all` page read
//!   forwards is likewise the page's last position plus one. The store remembers the
//!   continuations it handed out and reads such a page from that last event's own position
//!   (skipping it), so no server is ever asked for a position inside a record; reads that
//!   start from an event's own position are exact as they are.
//! - **`created`** is the server's clock, in 100 ns ticks since the Unix epoch (read from the
//!   event's `created` property, so it keeps the server's precision).
//! - **`stream_revision`** of a soft-deleted stream is `NoStream` (KurrentDB reads it as not
//!   found; an append expecting no stream reopens it and revisions continue), where the
//!   embedded log still reports the last revision.
//! - **Errors** map onto [`StoreError`](daojia_store::StoreError): wrong expected version (also
//!   for delete and tombstone, parsed from the server's message), stream deleted, stream not
//!   found, invalid argument; an unreachable server, a lost connection, a timeout, a
//!   non-leader node or refused credentials are `Unavailable`.
//! - **JSON events** must hold valid JSON (they are sent as `application/json`); binary events
//!   are sent as `application/octet-stream`.
//! - **Subscriptions** are server-side catch-up subscriptions. A filtered `$all` subscription
//!   asks the server for a checkpoint every `checkpoint_interval` considered events; with an
//!   interval of 0 the server's checkpoints are dropped.
//! - **Regex filters** are evaluated by the server (.NET syntax on KurrentDB).

mod convert;
mod errors;
mod store;
mod subscription;

pub use store::{KurrentStore, redacted};
pub use subscription::KurrentSubscription;
