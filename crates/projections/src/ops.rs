//! The ops read model: open complaints (投诉), open disputes (纠纷) and open follow-up tasks
//! (三必访四必谈), each removed when ops resolves or closes it.

use std::collections::BTreeMap;

use daojia_domain::followups::{FollowUpEvent, FollowUpTask};
use daojia_domain::order::{ComplaintCategory, Party};
use daojia_domain::{
    ComplaintId, CustomerId, DisputeId, FollowUpId, OrderEvent, OrderId, Timestamp, WorkerId,
};
use daojia_store::RecordedEvent;
use serde::{Deserialize, Serialize};

use crate::decode::DomainRecord;
use crate::runtime::ReadModel;

/// A complaint awaiting a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenComplaint {
    /// Complaint.
    pub id: ComplaintId,
    /// Order.
    pub order: OrderId,
    /// Who complained.
    pub customer: CustomerId,
    /// About whom.
    pub against: WorkerId,
    /// Category.
    pub category: ComplaintCategory,
    /// Details.
    pub text: String,
    /// When filed.
    pub filed_at: Timestamp,
}

/// A dispute awaiting mediation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDispute {
    /// Dispute.
    pub id: DisputeId,
    /// Order.
    pub order: OrderId,
    /// Who raised it.
    pub by: Party,
    /// Why.
    pub reason: String,
    /// When raised.
    pub raised_at: Timestamp,
}

/// A follow-up task not yet closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFollowUp {
    /// The task.
    pub task: FollowUpTask,
    /// When opened.
    pub opened_at: Timestamp,
    /// Notes recorded so far (when, text).
    pub notes: Vec<(Timestamp, String)>,
}

/// What ops has on its desk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpsView {
    complaints: BTreeMap<ComplaintId, OpenComplaint>,
    disputes: BTreeMap<DisputeId, OpenDispute>,
    follow_ups: BTreeMap<FollowUpId, OpenFollowUp>,
    /// Complaints decided so far.
    pub complaints_resolved: u64,
    /// Disputes resolved so far.
    pub disputes_resolved: u64,
    /// Follow-ups closed so far.
    pub follow_ups_closed: u64,
}

impl OpsView {
    /// Open complaints, oldest first.
    pub fn open_complaints(&self) -> Vec<&OpenComplaint> {
        let mut v: Vec<_> = self.complaints.values().collect();
        v.sort_by_key(|c| (c.filed_at, c.id));
        v
    }

    /// Open disputes, oldest first.
    pub fn open_disputes(&self) -> Vec<&OpenDispute> {
        let mut v: Vec<_> = self.disputes.values().collect();
        v.sort_by_key(|d| (d.raised_at, d.id));
        v
    }

    /// Open follow-ups, soonest due first.
    pub fn open_follow_ups(&self) -> Vec<&OpenFollowUp> {
        let mut v: Vec<_> = self.follow_ups.values().collect();
        v.sort_by_key(|f| (f.task.due_at, f.task.id));
        v
    }

    /// Open follow-ups already overdue at `now`, soonest due first.
    pub fn overdue_follow_ups(&self, now: Timestamp) -> Vec<&OpenFollowUp> {
        let mut v = self.open_follow_ups();
        v.retain(|f| f.task.due_at < now);
        v
    }

    fn apply_order(&mut self, order: OrderId, event: &OrderEvent) {
        match event {
            OrderEvent::ComplaintFiled {
                complaint_id,
                customer,
                against,
                category,
                text,
                at,
            } => {
                self.complaints.insert(
                    *complaint_id,
                    OpenComplaint {
                        id: *complaint_id,
                        order,
                        customer: *customer,
                        against: *against,
                        category: *category,
                        text: text.clone(),
                        filed_at: *at,
                    },
                );
            }
            OrderEvent::ComplaintResolved { complaint_id, .. } => {
                let removed = self.complaints.remove(complaint_id).is_some();
                self.complaints_resolved += u64::from(removed);
            }
            OrderEvent::DisputeRaised {
                dispute_id,
                by,
                reason,
                at,
            } => {
                self.disputes.insert(
                    *dispute_id,
                    OpenDispute {
                        id: *dispute_id,
                        order,
                        by: *by,
                        reason: reason.clone(),
                        raised_at: *at,
                    },
                );
            }
            OrderEvent::DisputeResolved { dispute_id, .. } => {
                let removed = self.disputes.remove(dispute_id).is_some();
                self.disputes_resolved += u64::from(removed);
            }
            _ => {}
        }
    }

    fn apply_follow_up(&mut self, id: FollowUpId, event: &FollowUpEvent) {
        match event {
            FollowUpEvent::FollowUpOpened { task, at } => {
                self.follow_ups.entry(id).or_insert_with(|| OpenFollowUp {
                    task: task.clone(),
                    opened_at: *at,
                    notes: Vec::new(),
                });
            }
            FollowUpEvent::FollowUpNoted { text, at } => {
                if let Some(f) = self.follow_ups.get_mut(&id) {
                    f.notes.push((*at, text.clone()));
                }
            }
            FollowUpEvent::FollowUpClosed { .. } => {
                let removed = self.follow_ups.remove(&id).is_some();
                self.follow_ups_closed += u64::from(removed);
            }
        }
    }
}

impl ReadModel for OpsView {
    const NAME: &'static str = "ops";

    fn apply_record(&mut self, record: &DomainRecord, _event: &RecordedEvent) {
        match record {
            DomainRecord::Order(id, e) => self.apply_order(*id, e),
            DomainRecord::FollowUp(id, e) => self.apply_follow_up(*id, e),
            _ => {}
        }
    }
}
