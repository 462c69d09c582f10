//! Every read model behind one projector: one `$all` subscription, one decode per event, and one
//! position, so a read-your-writes wait covers every query at once.

use daojia_store::RecordedEvent;
use serde::{Deserialize, Serialize};

use crate::credit::CreditView;
use crate::decode::DomainRecord;
use crate::kpis::KpisView;
use crate::matching_view::MatchingView;
use crate::ops::OpsView;
use crate::orders::OrdersView;
use crate::runtime::ReadModel;
use crate::workers::WorkersView;

/// All read models, fed together.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadModels {
    /// Orders by id, customer, worker and phase.
    pub orders: OrdersView,
    /// Worker profiles and schedules.
    pub workers: WorkersView,
    /// Credit scores, histories, red and black lists.
    pub credit: CreditView,
    /// Open complaints, disputes and follow-ups.
    pub ops: OpsView,
    /// KPIs.
    pub kpis: KpisView,
    /// What the dispatcher matches from: workers' standing, certificates, contracts, homes and
    /// booked windows, and the orders awaiting workers.
    pub matching: MatchingView,
}

impl ReadModels {
    /// All models, with KPIs attributed by `kpis` (its county configuration).
    pub fn new(kpis: KpisView) -> Self {
        ReadModels {
            kpis,
            ..Self::default()
        }
    }
}

impl ReadModel for ReadModels {
    const NAME: &'static str = "all";

    fn apply_record(&mut self, record: &DomainRecord, event: &RecordedEvent) {
        self.orders.apply_record(record, event);
        self.workers.apply_record(record, event);
        self.credit.apply_record(record, event);
        self.ops.apply_record(record, event);
        self.kpis.apply_record(record, event);
        self.matching.apply_record(record, event);
    }
}
