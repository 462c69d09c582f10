//! Credit as evidence, counted once (issue 12): a fact the visit records is deducted once,
//! from the visit; a review tag restating it deducts nothing more; a tag the record
//! contradicts deducts nothing and is kept for ops; escalation needs repeated violations
//! within the ladder's window; owed training stays owed through suspension and reinstatement.

use daojia_domain::credit::{
    self, ContestedTag, CreditCommand, CreditEvent, CreditState, RuleSet, SanctionCause, VisitFact,
    VisitRecord,
};
use daojia_domain::error::Ineligibility;
use daojia_domain::events;
use daojia_domain::followups::{self, FollowUpKind, FollowUpPolicy, FollowUpReason, TriggerEvent};
use daojia_domain::order::{self, Checklist, OrderEvent, ReviewTag, Stars};
use daojia_domain::{
    DomainError, EventId, Minutes, OrderId, RuleId, Standing, Subject, Timestamp, WorkerId,
};

use crate::framework::Case;
use crate::order_lifecycle::{self as lc, T0, W1};

const WORKER: Subject = Subject::Worker(W1);
const O1: OrderId = OrderId::from_u128(0x0A01);
const O2: OrderId = OrderId::from_u128(0x0A02);
const O3: OrderId = OrderId::from_u128(0x0A03);
const CHECK_IN: EventId = EventId::from_u128(0xC1);
const DONE: EventId = EventId::from_u128(0xD1);
const REVIEW: EventId = EventId::from_u128(0xF1);

fn rule(id: &str) -> RuleId {
    RuleId::new(id).unwrap()
}

fn case() -> Case<CreditState, CreditCommand, CreditEvent> {
    let rules = RuleSet::proposal();
    Case::new(
        CreditState::new(WORKER),
        Box::new(move |s, c, now| credit::decide(s, &rules, c, now)),
        credit::evolve,
    )
}

fn fold(events: &[CreditEvent]) -> CreditState {
    events.iter().fold(CreditState::new(WORKER), credit::evolve)
}

fn apply(r: &str, evidence: EventId, order: OrderId, fact: Option<VisitFact>) -> CreditCommand {
    CreditCommand::ApplyRule {
        rule: rule(r),
        evidence,
        order: Some(order),
        fact,
    }
}

fn adjusted(
    r: &str,
    evidence: EventId,
    order: OrderId,
    fact: Option<VisitFact>,
    delta: i32,
    score_after: i32,
    at: Timestamp,
) -> CreditEvent {
    CreditEvent::CreditAdjusted {
        subject: WORKER,
        rule: rule(r),
        rule_set_version: 1,
        evidence,
        delta,
        score_after,
        at,
        order: Some(order),
        fact,
    }
}

fn cause(r: &str, evidence: EventId) -> SanctionCause {
    SanctionCause::Rule {
        rule: rule(r),
        evidence,
    }
}

fn ops(reason: &str) -> SanctionCause {
    SanctionCause::Ops {
        reason: reason.into(),
    }
}

/// One order's visit by W1: posted, offered, accepted, checked in `late` minutes late,
/// completed with `disinfected` tools, served.
fn visit(late: u32, disinfected: bool) -> Vec<OrderEvent> {
    let mut h = lc::accepted_order();
    h.push(lc::checked_in(
        lc::S0,
        W1,
        lc::start().plus(Minutes(late)),
        late,
    ));
    h.push(OrderEvent::ServiceCompleted {
        slot: lc::S0,
        worker: W1,
        at: lc::served_at(),
        checklist: Checklist {
            tools_disinfected: disinfected,
            ..lc::CLEAN
        },
    });
    h.push(OrderEvent::OrderServed {
        at: lc::served_at(),
    });
    h
}

fn records(history: &[OrderEvent]) -> Vec<VisitRecord> {
    let state = history
        .iter()
        .fold(order::OrderState::default(), order::evolve);
    state
        .order
        .as_ref()
        .map(VisitRecord::of_order)
        .unwrap_or_default()
}

fn review(stars: u8, tags: &[ReviewTag]) -> OrderEvent {
    OrderEvent::OrderReviewed {
        customer: lc::CUSTOMER,
        stars: Stars::new(stars).unwrap(),
        tags: tags.to_vec(),
        text: String::new(),
        workers: vec![W1],
        at: lc::served_at(),
    }
}

/// What the reactor does with one order event for W1: assess, then decide each rule found.
struct Reactions {
    rules: RuleSet,
    state: CreditState,
    log: Vec<CreditEvent>,
    refused: Vec<DomainError>,
}

impl Reactions {
    fn new() -> Self {
        Self {
            rules: RuleSet::proposal(),
            state: CreditState::new(WORKER),
            log: Vec::new(),
            refused: Vec::new(),
        }
    }

    fn react(
        &mut self,
        order: OrderId,
        evidence: EventId,
        event: &OrderEvent,
        visits: &[VisitRecord],
        now: Timestamp,
    ) {
        for found in credit::assess(&self.rules, order, evidence, event, visits) {
            match credit::decide(&self.state, &self.rules, CreditCommand::from(&found), now) {
                Ok(events) => {
                    for e in events {
                        self.state = credit::evolve(self.state.clone(), &e);
                        self.log.push(e);
                    }
                }
                Err(e) => self.refused.push(e),
            }
        }
    }

    fn deducted(&self) -> i32 {
        self.log
            .iter()
            .map(|e| match e {
                CreditEvent::CreditAdjusted { delta, .. } => *delta,
                _ => 0,
            })
            .sum()
    }
}

#[test]
fn one_late_undisinfected_visit_reviewed_with_both_tags_is_retraining_not_suspension() {
    // The example: checked in 40 min late, tools not disinfected, reviewed 1 star with
    // the tags `late` and `tools_not_disinfected`.
    let history = visit(40, false);
    let checked_in = history.get(3).unwrap().clone();
    let completed = history.get(4).unwrap().clone();
    let reviewed = review(1, &[ReviewTag::Late, ReviewTag::ToolsNotDisinfected]);
    let visits = records(&history);
    assert_eq!(
        visits,
        vec![VisitRecord {
            worker: W1,
            late_by: Some(Minutes(40)),
            tools_disinfected: Some(false),
        }]
    );
    let mut r = Reactions::new();
    r.react(O1, CHECK_IN, &checked_in, &[], T0);
    r.react(O1, DONE, &completed, &[], T0);
    r.react(O1, REVIEW, &reviewed, &visits, T0);
    let late = Some(VisitFact::LateCheckIn);
    let tools = Some(VisitFact::ToolsNotDisinfected);
    assert_eq!(
        r.log,
        vec![
            adjusted("worker.late_check_in", CHECK_IN, O1, late, -2, 98, T0),
            CreditEvent::WarningIssued {
                subject: WORKER,
                cause: cause("worker.late_check_in", CHECK_IN),
                at: T0,
            },
            adjusted("worker.tools_not_disinfected", DONE, O1, tools, -5, 93, T0),
            CreditEvent::RetrainingRequired {
                subject: WORKER,
                cause: cause("worker.tools_not_disinfected", DONE),
                at: T0,
            },
            // The rating is the review's own fact.
            adjusted("worker.poor_review", REVIEW, O1, None, -2, 91, T0),
        ]
    );
    assert_eq!(
        r.refused,
        vec![
            DomainError::FactAlreadyCounted {
                rule: rule("worker.review_late"),
                counted_by: rule("worker.late_check_in"),
                evidence: CHECK_IN,
            },
            DomainError::FactAlreadyCounted {
                rule: rule("worker.review_tools_not_disinfected"),
                counted_by: rule("worker.tools_not_disinfected"),
                evidence: DONE,
            },
        ]
    );
    assert_eq!(r.state.standing, Standing::InRetraining);
    assert!(r.state.training_owed);
    assert!(credit::contested_tags(&r.rules, &reviewed, &visits).is_empty());
}

#[test]
fn a_review_tag_restating_a_counted_visit_fact_deducts_nothing() {
    let late = Some(VisitFact::LateCheckIn);
    let given = vec![
        adjusted("worker.late_check_in", CHECK_IN, O1, late, -2, 98, T0),
        CreditEvent::WarningIssued {
            subject: WORKER,
            cause: cause("worker.late_check_in", CHECK_IN),
            at: T0,
        },
    ];
    case()
        .given(&given)
        .when(apply("worker.review_late", REVIEW, O1, late), T0)
        .then_error(DomainError::FactAlreadyCounted {
            rule: rule("worker.review_late"),
            counted_by: rule("worker.late_check_in"),
            evidence: CHECK_IN,
        });
    // The same fact of another order is another fact.
    case()
        .given(&given)
        .when(apply("worker.review_late", REVIEW, O2, late), T0)
        .then(vec![
            adjusted("worker.review_late", REVIEW, O2, late, -2, 96, T0),
            CreditEvent::WarningIssued {
                subject: WORKER,
                cause: cause("worker.review_late", REVIEW),
                at: T0,
            },
        ]);
}

#[test]
fn a_review_tag_the_record_contradicts_deducts_nothing_and_opens_a_follow_up() {
    let history = visit(0, true);
    let visits = records(&history);
    let reviewed = review(1, &[ReviewTag::Late, ReviewTag::ToolsNotDisinfected]);
    let mut r = Reactions::new();
    r.react(O1, REVIEW, &reviewed, &visits, T0);
    assert_eq!(
        r.log,
        vec![adjusted("worker.poor_review", REVIEW, O1, None, -2, 98, T0)]
    );
    assert_eq!(r.state.standing, Standing::Good, "no warning");
    let record = VisitRecord {
        worker: W1,
        late_by: Some(Minutes(0)),
        tools_disinfected: Some(true),
    };
    let contested = credit::contested_tags(&r.rules, &reviewed, &visits);
    assert_eq!(
        contested,
        vec![
            ContestedTag {
                tag: ReviewTag::Late,
                record
            },
            ContestedTag {
                tag: ReviewTag::ToolsNotDisinfected,
                record
            },
        ]
    );
    let task = followups::follow_up_for(
        REVIEW,
        TriggerEvent::ContestedReview(O1, &contested),
        FollowUpPolicy::default(),
        T0,
    )
    .unwrap();
    assert_eq!(
        (task.kind, task.reason, task.about, task.order, task.trigger),
        (
            FollowUpKind::Talk,
            FollowUpReason::ReviewContradictsRecord,
            Some(WORKER),
            Some(O1),
            REVIEW
        )
    );
    let note = followups::contested_note(&contested);
    assert!(note.contains("`late`"), "{note}");
    assert!(note.contains("checked in 0 min after"), "{note}");
    assert!(note.contains("tools disinfected"), "{note}");
    // Nothing to keep: no follow-up.
    assert_eq!(
        followups::follow_up_for(
            REVIEW,
            TriggerEvent::ContestedReview(O1, &[]),
            FollowUpPolicy::default(),
            T0
        ),
        None
    );
}

#[test]
fn lateness_below_the_rule_threshold_does_not_support_a_late_tag() {
    let visits = records(&visit(10, true));
    let reviewed = review(4, &[ReviewTag::Late]);
    let rules = RuleSet::proposal();
    assert!(credit::assess(&rules, O1, REVIEW, &reviewed, &visits).is_empty());
    let contested = credit::contested_tags(&rules, &reviewed, &visits);
    assert_eq!(contested.len(), 1);
    assert!(followups::contested_note(&contested).contains("10 min"));
}

#[test]
fn ladder_one_visit_is_one_violation_at_its_worst_step() {
    let late = Some(VisitFact::LateCheckIn);
    let tools = Some(VisitFact::ToolsNotDisinfected);
    let e = |n: u128| EventId::from_u128(0x100 + n);
    let warned = |order, ev: EventId, score| {
        vec![
            adjusted("worker.late_check_in", ev, order, late, -2, score, T0),
            CreditEvent::WarningIssued {
                subject: WORKER,
                cause: cause("worker.late_check_in", ev),
                at: T0,
            },
        ]
    };
    // Two earlier warned visits: the third late visit is retraining.
    let given = [warned(O1, e(1), 98), warned(O2, e(2), 96)].concat();
    let third = vec![
        adjusted("worker.late_check_in", e(3), O3, late, -2, 94, T0),
        CreditEvent::RetrainingRequired {
            subject: WORKER,
            cause: cause("worker.late_check_in", e(3)),
            at: T0,
        },
    ];
    case()
        .given(&given)
        .when(apply("worker.late_check_in", e(3), O3, late), T0)
        .then(third.clone());
    // The same visit's undisinfected tools count their points, not another violation.
    let given = [given, third].concat();
    case()
        .given(&given)
        .when(apply("worker.tools_not_disinfected", e(4), O3, tools), T0)
        .then(vec![adjusted(
            "worker.tools_not_disinfected",
            e(4),
            O3,
            tools,
            -5,
            89,
            T0,
        )]);
}

/// A retraining-level visit at `at` (undisinfected tools), with the training recorded.
fn retrained(order: OrderId, ev: EventId, score: i32, at: Timestamp) -> Vec<CreditEvent> {
    vec![
        adjusted(
            "worker.tools_not_disinfected",
            ev,
            order,
            Some(VisitFact::ToolsNotDisinfected),
            -5,
            score,
            at,
        ),
        CreditEvent::RetrainingRequired {
            subject: WORKER,
            cause: cause("worker.tools_not_disinfected", ev),
            at,
        },
        CreditEvent::TrainingCompleted {
            subject: WORKER,
            course: "hygiene".into(),
            at,
        },
    ]
}

#[test]
fn ladder_third_retraining_level_violation_within_the_window_suspends() {
    let (e1, e2, e3) = (
        EventId::from_u128(0x201),
        EventId::from_u128(0x202),
        EventId::from_u128(0x203),
    );
    let tools = Some(VisitFact::ToolsNotDisinfected);
    let day = |d| T0.plus(Minutes::days(d));
    let given = [
        retrained(O1, e1, 95, day(0)),
        retrained(O2, e2, 90, day(30)),
    ]
    .concat();
    case()
        .given(&given)
        .when(
            apply("worker.tools_not_disinfected", e3, O3, tools),
            day(80),
        )
        .then(vec![
            adjusted(
                "worker.tools_not_disinfected",
                e3,
                O3,
                tools,
                -5,
                85,
                day(80),
            ),
            CreditEvent::SubjectSuspended {
                subject: WORKER,
                cause: cause("worker.tools_not_disinfected", e3),
                at: day(80),
            },
        ]);
    // The second one was retraining, not suspension.
    case()
        .given(&retrained(O1, e1, 95, day(0)))
        .when(
            apply("worker.tools_not_disinfected", e2, O2, tools),
            day(30),
        )
        .then(retrained(O2, e2, 90, day(30)).into_iter().take(2).collect());
}

#[test]
fn ladder_violations_older_than_the_window_do_not_escalate() {
    let (e1, e2, e3) = (
        EventId::from_u128(0x301),
        EventId::from_u128(0x302),
        EventId::from_u128(0x303),
    );
    let tools = Some(VisitFact::ToolsNotDisinfected);
    let day = |d| T0.plus(Minutes::days(d));
    let given = [
        retrained(O1, e1, 95, day(0)),
        retrained(O2, e2, 90, day(60)),
    ]
    .concat();
    // Day 90: the first violation is out of the 90-day window.
    case()
        .given(&given)
        .when(
            apply("worker.tools_not_disinfected", e3, O3, tools),
            day(90),
        )
        .then(vec![
            adjusted(
                "worker.tools_not_disinfected",
                e3,
                O3,
                tools,
                -5,
                85,
                day(90),
            ),
            CreditEvent::RetrainingRequired {
                subject: WORKER,
                cause: cause("worker.tools_not_disinfected", e3),
                at: day(90),
            },
        ]);
}

fn owing_and_suspended() -> Vec<CreditEvent> {
    vec![
        adjusted(
            "worker.tools_not_disinfected",
            DONE,
            O1,
            Some(VisitFact::ToolsNotDisinfected),
            -5,
            95,
            T0,
        ),
        CreditEvent::RetrainingRequired {
            subject: WORKER,
            cause: cause("worker.tools_not_disinfected", DONE),
            at: T0,
        },
        CreditEvent::SubjectSuspended {
            subject: WORKER,
            cause: ops("investigation"),
            at: T0,
        },
    ]
}

fn complete_training() -> CreditCommand {
    CreditCommand::CompleteTraining {
        course: "hygiene".into(),
    }
}

fn trained() -> CreditEvent {
    CreditEvent::TrainingCompleted {
        subject: WORKER,
        course: "hygiene".into(),
        at: T0,
    }
}

#[test]
fn owed_training_is_recorded_while_suspended() {
    let given = owing_and_suspended();
    case()
        .given(&given)
        .when(complete_training(), T0)
        .then(vec![trained()]);
    let after = [given, vec![trained()]].concat();
    let state = fold(&after);
    assert_eq!(
        (state.standing, state.training_owed),
        (Standing::Suspended, false)
    );
    let reinstated = CreditEvent::SubjectReinstated {
        subject: WORKER,
        cause: ops("cleared"),
        at: T0,
    };
    case()
        .given(&after)
        .when(
            CreditCommand::Reinstate {
                reason: "cleared".into(),
            },
            T0,
        )
        .then(vec![reinstated.clone()]);
    let state = fold(&[after, vec![reinstated]].concat());
    assert_eq!(state.standing, Standing::Good);
    assert_eq!(state.standing.may_take_orders(), Ok(()));
}

#[test]
fn reinstatement_keeps_owed_training_and_the_worker_out_of_the_pool() {
    let given = owing_and_suspended();
    let reinstated = CreditEvent::SubjectReinstated {
        subject: WORKER,
        cause: ops("cleared"),
        at: T0,
    };
    case()
        .given(&given)
        .when(
            CreditCommand::Reinstate {
                reason: "cleared".into(),
            },
            T0,
        )
        .then(vec![reinstated.clone()]);
    let after = [given, vec![reinstated]].concat();
    let state = fold(&after);
    assert_eq!(
        (state.standing, state.training_owed),
        (Standing::InRetraining, true)
    );
    assert_eq!(
        state.standing.may_take_orders(),
        Err(Ineligibility::InRetraining)
    );
    case()
        .given(&after)
        .when(CreditCommand::RepairCredit, T0.plus(Minutes::days(365)))
        .then_error(DomainError::TrainingRequiredForRepair);
    case()
        .given(&after)
        .when(complete_training(), T0)
        .then(vec![trained()]);
    let state = fold(&[after, vec![trained()]].concat());
    assert_eq!(state.standing, Standing::Good);
}

#[test]
fn a_retraining_level_violation_while_suspended_makes_training_owed() {
    let suspended = vec![CreditEvent::SubjectSuspended {
        subject: WORKER,
        cause: ops("investigation"),
        at: T0,
    }];
    let tools = Some(VisitFact::ToolsNotDisinfected);
    let events = vec![
        adjusted("worker.tools_not_disinfected", DONE, O1, tools, -5, 95, T0),
        CreditEvent::RetrainingRequired {
            subject: WORKER,
            cause: cause("worker.tools_not_disinfected", DONE),
            at: T0,
        },
    ];
    case()
        .given(&suspended)
        .when(apply("worker.tools_not_disinfected", DONE, O1, tools), T0)
        .then(events.clone());
    let state = fold(&[suspended, events].concat());
    assert_eq!(
        (state.standing, state.training_owed),
        (Standing::Suspended, true)
    );
}

#[test]
fn rule_sets_and_adjustments_stored_before_the_window_and_facts_still_read() {
    // A rule set published before `ladder.window` existed.
    let mut json = serde_json::to_value(RuleSet::proposal()).unwrap();
    let ladder = json.get_mut("ladder").unwrap().as_object_mut().unwrap();
    assert!(ladder.remove("window").is_some());
    let old: RuleSet = serde_json::from_value(json).unwrap();
    assert_eq!(old.ladder.window, None);
    assert_eq!(old.validate(), Ok(()));
    let zero = RuleSet {
        ladder: credit::Ladder {
            window: Some(Minutes(0)),
            ..RuleSet::proposal().ladder
        },
        ..RuleSet::proposal()
    };
    assert!(matches!(
        zero.validate(),
        Err(DomainError::InvalidRuleSet { .. })
    ));
    // A `CreditAdjusted` stored before `order` and `fact` existed.
    let event = adjusted("worker.poor_review", REVIEW, O1, None, -2, 98, T0);
    let mut encoded = events::encode(&event).unwrap();
    let data = encoded.data.as_object_mut().unwrap();
    assert!(data.remove("order").is_some());
    assert!(!data.contains_key("fact"));
    let back = events::decode::<CreditEvent>(&encoded).unwrap();
    assert!(matches!(
        back,
        CreditEvent::CreditAdjusted {
            order: None,
            fact: None,
            ..
        }
    ));
}

/// xorshift64*: a small seeded generator, so that a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn deductions_sum_over_distinct_facts_for_random_visits_and_reviews() {
    const TAGS: [ReviewTag; 6] = [
        ReviewTag::Late,
        ReviewTag::ToolsNotDisinfected,
        ReviewTag::Careless,
        ReviewTag::Rude,
        ReviewTag::Punctual,
        ReviewTag::Excellent,
    ];
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let orders = 1 + rng.below(6);
        struct Plan {
            order: OrderId,
            record: VisitRecord,
            review: Option<OrderEvent>,
            next: usize,
        }
        let mut plans: Vec<Plan> = (0..orders)
            .map(|i| {
                let late = u32::try_from(rng.below(50)).unwrap();
                let disinfected = rng.below(3) != 0;
                let reviewed = rng.below(4) != 0;
                let stars = u8::try_from(1 + rng.below(5)).unwrap();
                let tags: Vec<ReviewTag> =
                    TAGS.iter().copied().filter(|_| rng.below(2) == 0).collect();
                Plan {
                    order: OrderId::from_u128(0x1000 + u128::from(i)),
                    record: VisitRecord {
                        worker: W1,
                        late_by: Some(Minutes(late)),
                        tools_disinfected: Some(disinfected),
                    },
                    review: reviewed.then(|| review(stars, &tags)),
                    next: 0,
                }
            })
            .collect();
        // Expected: each distinct fact once, at its rule's points.
        let expected: i32 = plans
            .iter()
            .map(|p| {
                let late = p.record.late_by.unwrap() >= Minutes(15);
                let dirty = p.record.tools_disinfected == Some(false);
                let rating = match &p.review {
                    Some(OrderEvent::OrderReviewed { stars, .. }) if stars.get() <= 2 => -2,
                    Some(OrderEvent::OrderReviewed { stars, .. }) if stars.get() == 5 => 1,
                    _ => 0,
                };
                i32::from(late) * -2 + i32::from(dirty) * -5 + rating
            })
            .sum();
        let mut r = Reactions::new();
        let mut now = T0;
        let mut contradicted = 0;
        let mut contested = 0;
        // Interleave the orders' events (check-in, completion, review), each order in its
        // own order, and sometimes react to an event twice (a retried reaction).
        while plans.iter().any(|p| p.next < 3) {
            let open: Vec<usize> = (0..plans.len())
                .filter(|&i| plans.get(i).is_some_and(|p| p.next < 3))
                .collect();
            let pick = *open
                .get(usize::try_from(rng.below(open.len() as u64)).unwrap())
                .unwrap();
            let p = plans.get_mut(pick).unwrap();
            let step = p.next;
            p.next += 1;
            let worker: WorkerId = W1;
            let event = match step {
                0 => Some(lc::checked_in(
                    lc::S0,
                    worker,
                    now,
                    p.record.late_by.unwrap().0,
                )),
                1 => Some(OrderEvent::ServiceCompleted {
                    slot: lc::S0,
                    worker,
                    at: now,
                    checklist: Checklist {
                        tools_disinfected: p.record.tools_disinfected.unwrap(),
                        ..lc::CLEAN
                    },
                }),
                _ => p.review.clone(),
            };
            let Some(event) = event else { continue };
            let step_id = u128::try_from(step).unwrap();
            let evidence = EventId::from_u128((p.order.uuid().as_u128() << 4) + step_id);
            let visits = [p.record];
            let times = 1 + rng.below(2);
            for _ in 0..times {
                r.react(p.order, evidence, &event, &visits, now);
            }
            if let OrderEvent::OrderReviewed { tags, .. } = &event {
                contradicted += tags
                    .iter()
                    .filter(|t| match VisitFact::restated_by(**t) {
                        Some(VisitFact::LateCheckIn) => p.record.late_by < Some(Minutes(15)),
                        Some(VisitFact::ToolsNotDisinfected) => {
                            p.record.tools_disinfected == Some(true)
                        }
                        None => false,
                    })
                    .count();
                contested += credit::contested_tags(&r.rules, &event, &visits).len();
            }
            now = now.plus(Minutes(60 * 24));
        }
        assert_eq!(r.deducted(), expected, "seed {seed}");
        // Never a sanction caused by a review tag restating the record.
        assert!(
            !r.log.iter().any(|e| matches!(
                e,
                CreditEvent::WarningIssued { cause: SanctionCause::Rule { rule, .. }, .. }
                | CreditEvent::RetrainingRequired { cause: SanctionCause::Rule { rule, .. }, .. }
                | CreditEvent::SubjectSuspended { cause: SanctionCause::Rule { rule, .. }, .. }
                if rule.as_str().starts_with("worker.review_")
            )),
            "seed {seed}: {:?}",
            r.log
        );
        assert!(
            r.refused.iter().all(|e| matches!(
                e,
                DomainError::FactAlreadyCounted { .. } | DomainError::RuleAlreadyApplied { .. }
            )),
            "seed {seed}: {:?}",
            r.refused
        );
        assert_eq!(contested, contradicted, "seed {seed}");
    }
}
