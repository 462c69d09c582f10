//! [`ReadModelsSlot`]: the one projector feeding every read model (`daojia_projections::ReadModels`),
//! as the query service sees it; empty while the store opens.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use daojia_projections::kpis::{County, KpisView};
use daojia_projections::{Projector, ReadModels, counties};

use crate::status::ApiError;
use crate::store_backend::Store;

/// The projector over the server's store.
pub type ReadModelsProjector = Projector<ReadModels, Store>;

/// A shared, set-once handle to the running projector.
///
/// A `OnceLock` for the same reason as [`StoreSlot`](crate::store_slot::StoreSlot): it is set
/// once, when the store opens, and then only read on every query.
#[derive(Clone, Debug, Default)]
pub struct ReadModelsSlot(Arc<OnceLock<ReadModelsProjector>>);

impl ReadModelsSlot {
    /// The projector, or UNAVAILABLE while the store is still opening.
    pub fn get(&self) -> Result<&ReadModelsProjector, ApiError> {
        self.0.get().ok_or(ApiError::StoreOpening)
    }

    /// Fills the slot; a second call is ignored.
    pub(crate) fn set(&self, projector: ReadModelsProjector) {
        let _ = self.0.set(projector);
    }

    /// Stops the projector (so that it releases the store) if this is the last handle to the
    /// slot; returns `false` when a service still holds it.
    pub(crate) async fn stop(self) -> bool {
        match Arc::try_unwrap(self.0) {
            Ok(cell) => {
                if let Some(projector) = cell.into_inner() {
                    // A last checkpoint, so that the next start resumes from here.
                    if let Err(e) = projector.checkpoint().await {
                        tracing::warn!(error = %e, "no final read-model checkpoint");
                    }
                    projector.stop().await;
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// The file in the projections directory that lists the KPI counties (the shape of
/// `shared/data/fuzhou.json`, see `daojia_projections::counties`).
pub const COUNTIES_FILE: &str = "counties.json";

/// The empty KPI model for the projector in `dir` (`<data_dir>/projections`): by the counties of
/// `dir/counties.json` if there is one, else by Fuzhou's built-in counties. A file that cannot be
/// read is reported and the built-in list used, so the server still starts.
pub fn kpis_view(dir: &Path) -> KpisView {
    let path = dir.join(COUNTIES_FILE);
    let list: Vec<County> = match std::fs::read(&path) {
        Ok(bytes) => match counties::from_json(&bytes) {
            Ok(list) => {
                tracing::info!(file = %path.display(), counties = list.len(), "KPI counties from file");
                list
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "KPI counties file ignored, using Fuzhou's");
                counties::fuzhou()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => counties::fuzhou(),
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "KPI counties file unreadable, using Fuzhou's");
            counties::fuzhou()
        }
    };
    KpisView::new(list)
}
