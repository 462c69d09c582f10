//! The credit read model (诚信积分, 红黑榜): every subject's score, standing and history, the
//! current rule set, and the red and black lists.

use std::collections::HashMap;

use daojia_domain::credit::{
    self, CreditEvent, CreditState, RuleSet, RuleSetState, Standing, Subject, SubjectKind,
};
use daojia_store::{Position, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::decode::{DomainRecord, event_id};
use crate::runtime::ReadModel;

/// The subject a credit event is about.
pub fn subject_of(event: &CreditEvent) -> Subject {
    match event {
        CreditEvent::CreditAdjusted { subject, .. }
        | CreditEvent::WarningIssued { subject, .. }
        | CreditEvent::RetrainingRequired { subject, .. }
        | CreditEvent::TrainingCompleted { subject, .. }
        | CreditEvent::SubjectSuspended { subject, .. }
        | CreditEvent::SubjectReinstated { subject, .. }
        | CreditEvent::BlackListed { subject, .. }
        | CreditEvent::RedListed { subject, .. }
        | CreditEvent::RedListRemoved { subject, .. }
        | CreditEvent::AppealFiled { subject, .. }
        | CreditEvent::AppealDecided { subject, .. }
        | CreditEvent::CreditRepaired { subject, .. } => *subject,
    }
}

/// A total order on subjects (kind, then id) for stable listings.
fn sort_key(subject: &Subject) -> (u8, u128) {
    match subject {
        Subject::Worker(id) => (0, id.uuid().as_u128()),
        Subject::Company(id) => (1, id.uuid().as_u128()),
        Subject::Customer(id) => (2, id.uuid().as_u128()),
    }
}

/// One entry of a subject's credit history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Where the event is in `$all`.
    #[serde(with = "crate::state_repr::position")]
    pub position: Position,
    /// The stored event's id (what adjustments and appeals name as evidence).
    pub event_id: daojia_domain::EventId,
    /// The event.
    pub event: CreditEvent,
}

/// A subject's credit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditAccount {
    /// State as the credit aggregate folds it.
    #[serde(with = "crate::state_repr::credit_state")]
    pub state: CreditState,
    /// Every credit event of the subject, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// Scores, standings, histories and lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditView {
    #[serde(with = "crate::state_repr::pairs")]
    accounts: HashMap<Subject, CreditAccount>,
    #[serde(with = "crate::state_repr::rule_set_state")]
    rules: RuleSetState,
}

impl CreditView {
    /// A subject's account, if any credit event named them.
    pub fn account(&self, subject: Subject) -> Option<&CreditAccount> {
        self.accounts.get(&subject)
    }

    /// The current rule set, once one is published.
    pub fn rule_set(&self) -> Option<&RuleSet> {
        self.rules.current.as_ref()
    }

    /// A subject's score: its last score, or the current rule set's base score for a subject
    /// without adjustments; `None` when neither is known.
    pub fn score(&self, subject: Subject) -> Option<i32> {
        self.accounts
            .get(&subject)
            .and_then(|a| a.state.score)
            .or_else(|| self.rule_set().map(|r| r.base_score))
    }

    /// A subject's standing (good when nothing is recorded).
    pub fn standing(&self, subject: Subject) -> Standing {
        self.accounts
            .get(&subject)
            .map_or(Standing::Good, |a| a.state.standing)
    }

    /// A subject's credit history, oldest first.
    pub fn history(&self, subject: Subject) -> &[HistoryEntry] {
        self.accounts
            .get(&subject)
            .map_or(&[], |a| a.history.as_slice())
    }

    fn list(&self, kind: Option<SubjectKind>, pick: impl Fn(&CreditState) -> bool) -> Vec<Subject> {
        let mut subjects: Vec<Subject> = self
            .accounts
            .iter()
            .filter(|(s, a)| kind.is_none_or(|k| s.kind() == k) && pick(&a.state))
            .map(|(s, _)| *s)
            .collect();
        subjects.sort_by_key(sort_key);
        subjects
    }

    /// The red list (红榜), optionally of one kind of subject, by kind then id.
    pub fn red_list(&self, kind: Option<SubjectKind>) -> Vec<Subject> {
        self.list(kind, |s| s.red_listed)
    }

    /// The black list (黑榜), optionally of one kind of subject, by kind then id.
    pub fn black_list(&self, kind: Option<SubjectKind>) -> Vec<Subject> {
        self.list(kind, |s| s.standing == Standing::BlackListed)
    }

    fn apply_credit(
        &mut self,
        event: &CreditEvent,
        position: Position,
        id: daojia_domain::EventId,
    ) {
        let subject = subject_of(event);
        let account = self
            .accounts
            .entry(subject)
            .or_insert_with(|| CreditAccount {
                state: CreditState::new(subject),
                history: Vec::new(),
            });
        let state = std::mem::replace(&mut account.state, CreditState::new(subject));
        account.state = credit::evolve(state, event);
        account.history.push(HistoryEntry {
            position,
            event_id: id,
            event: event.clone(),
        });
    }
}

impl ReadModel for CreditView {
    const NAME: &'static str = "credit";

    fn apply_record(&mut self, record: &DomainRecord, event: &RecordedEvent) {
        match record {
            DomainRecord::Credit(e) => self.apply_credit(e, event.position, event_id(event)),
            DomainRecord::RuleSet(e) => {
                let rules = std::mem::take(&mut self.rules);
                self.rules = credit::evolve_rule_set(rules, e);
            }
            _ => {}
        }
    }
}
