//! [`StoreSlot`]: the event store as services see it, empty while the store opens.
//!
//! The server answers health checks (NOT_SERVING) while the store opens (the embedded log
//! recovers, which can take a while for a large log, or a KurrentDB server is being reached);
//! services answer UNAVAILABLE until the slot is filled.

use std::sync::{Arc, OnceLock};

use crate::status::ApiError;
use crate::store_backend::Store;

/// The store type services hold (cloning it is cheap: a handle).
pub type SlotStore = Store;

/// A shared, set-once handle to the open store.
///
/// A `OnceLock` because the store is written once (when it opens) and then only read, on
/// every request, without taking a lock.
#[derive(Clone, Debug, Default)]
pub struct StoreSlot(Arc<OnceLock<Store>>);

impl StoreSlot {
    /// The store, or UNAVAILABLE while it is still opening.
    pub fn get(&self) -> Result<&Store, ApiError> {
        self.0.get().ok_or(ApiError::StoreOpening)
    }

    /// Fills the slot; a second call is ignored (the server opens the store once).
    pub(crate) fn set(&self, store: Store) {
        let _ = self.0.set(store);
    }

    /// The store, if this is the last handle to the slot (every service has been dropped);
    /// `Err(self)` otherwise.
    pub(crate) fn into_store(self) -> Result<Option<Store>, Self> {
        Arc::try_unwrap(self.0)
            .map(OnceLock::into_inner)
            .map_err(StoreSlot)
    }
}
