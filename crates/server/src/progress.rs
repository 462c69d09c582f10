//! [`Progress`]: where the server's background tasks are, for `Meta.ServerInfo` and
//! `Admin.WaitSettled`. Each task publishes its progress on a watch channel once it starts;
//! the slots stay empty for a task that is off (`--no-dispatch`, tests without the reactor).

use std::sync::{Arc, OnceLock};

use daojia_domain::Timestamp;
use daojia_store::Position;
use tokio::sync::watch;

/// Where the dispatcher is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchProgress {
    /// The last event it has taken in (none before the first).
    pub position: Option<Position>,
    /// The clock reading at the start of its last complete pass over the open orders (none
    /// before the first pass, which follows catching up with the log).
    pub settled_at: Option<Timestamp>,
}

/// The background tasks' progress channels, filled as the tasks start.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// The reactor: the last event it has reacted to.
    pub reactor: Arc<OnceLock<watch::Receiver<Option<Position>>>>,
    /// The dispatcher.
    pub dispatcher: Arc<OnceLock<watch::Receiver<DispatchProgress>>>,
}

impl Progress {
    /// The reactor's position, if it runs and has reacted to something.
    pub fn reactor_position(&self) -> Option<Position> {
        self.reactor.get().and_then(|r| *r.borrow())
    }

    /// The dispatcher's progress, if it runs.
    pub fn dispatcher(&self) -> Option<DispatchProgress> {
        self.dispatcher.get().map(|d| *d.borrow())
    }
}
