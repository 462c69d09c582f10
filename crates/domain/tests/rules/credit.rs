//! Credit: rule sets as data, adjustments with rule and evidence, the sanction ladder,
//! retraining leaving the matching pool, appeals, repair, red and black lists.

use daojia_domain::credit::{
    self, Assessment, CreditCommand, CreditEvent, CreditState, RuleSet, RuleSetEvent, RuleSetState,
    SanctionCause, VisitFact,
};
use daojia_domain::error::Ineligibility;
use daojia_domain::order::{self, OrderCommand, OrderEvent, Party, PostOrder, ReviewTag, Stars};
use daojia_domain::{
    AppealId, CompanyId, CustomerId, DomainError, EventId, Fen, Minutes, RuleId, Standing, Subject,
    Timestamp,
};

use crate::framework::Case;
use crate::order_lifecycle::{self as lc, T0, W1};

const WORKER: Subject = Subject::Worker(W1);
const E1: EventId = EventId::from_u128(0xE1);
const E2: EventId = EventId::from_u128(0xE2);
const E3: EventId = EventId::from_u128(0xE3);
const E4: EventId = EventId::from_u128(0xE4);

fn rule(id: &str) -> RuleId {
    RuleId::new(id).unwrap()
}

fn case(subject: Subject) -> Case<CreditState, CreditCommand, CreditEvent> {
    let rules = RuleSet::proposal();
    Case::new(
        CreditState::new(subject),
        Box::new(move |s, c, now| credit::decide(s, &rules, c, now)),
        credit::evolve,
    )
}

fn apply(r: &str, evidence: EventId) -> CreditCommand {
    CreditCommand::ApplyRule {
        rule: rule(r),
        evidence,
        order: None,
        fact: None,
    }
}

fn adjusted(
    subject: Subject,
    r: &str,
    evidence: EventId,
    delta: i32,
    score_after: i32,
) -> CreditEvent {
    CreditEvent::CreditAdjusted {
        subject,
        rule: rule(r),
        rule_set_version: 1,
        evidence,
        delta,
        score_after,
        at: T0,
        order: None,
        fact: None,
    }
}

fn cause(r: &str, evidence: EventId) -> SanctionCause {
    SanctionCause::Rule {
        rule: rule(r),
        evidence,
    }
}

fn fold(subject: Subject, events: &[CreditEvent]) -> CreditState {
    events
        .iter()
        .fold(CreditState::new(subject), credit::evolve)
}

#[test]
fn proposal_rule_set_is_valid_and_published_as_an_event() {
    let rules = RuleSet::proposal();
    assert_eq!(rules.validate(), Ok(()));
    let events = credit::publish_rule_set(&RuleSetState::default(), rules.clone(), T0).unwrap();
    assert_eq!(
        events,
        vec![RuleSetEvent::CreditRuleSetPublished {
            rule_set: rules.clone(),
            at: T0
        }]
    );
    let state = events
        .iter()
        .fold(RuleSetState::default(), credit::evolve_rule_set);
    assert_eq!(
        credit::publish_rule_set(&state, rules.clone(), T0),
        Err(DomainError::RuleSetVersionNotNewer {
            current: 1,
            proposed: 1
        })
    );
    let v2 = RuleSet {
        version: 2,
        ..rules.clone()
    };
    assert!(credit::publish_rule_set(&state, v2, T0).is_ok());
}

#[test]
fn invalid_rule_sets_are_refused() {
    let mut dup = RuleSet::proposal();
    dup.rules.push(dup.rules.first().cloned().unwrap());
    assert!(matches!(
        dup.validate(),
        Err(DomainError::InvalidRuleSet { .. })
    ));
    let thresholds = RuleSet {
        black_list_below: 120,
        ..RuleSet::proposal()
    };
    assert!(matches!(
        thresholds.validate(),
        Err(DomainError::InvalidRuleSet { .. })
    ));
    let mut reserved = RuleSet::proposal();
    if let Some(r) = reserved.rules.first_mut() {
        r.id = rule("ops.manual");
    }
    assert!(matches!(
        reserved.validate(),
        Err(DomainError::InvalidRuleSet { .. })
    ));
}

#[test]
fn review_tags_without_a_visit_record_are_their_own_evidence_of_the_visit_facts() {
    let review = OrderEvent::OrderReviewed {
        customer: lc::CUSTOMER,
        stars: Stars::new(2).unwrap(),
        tags: vec![ReviewTag::Late, ReviewTag::ToolsNotDisinfected],
        text: String::new(),
        workers: vec![W1],
        at: T0,
    };
    let found = credit::assess(&RuleSet::proposal(), lc::ORDER, E1, &review, &[]);
    let ids: Vec<&str> = found.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "worker.poor_review",
            "worker.review_late",
            "worker.review_tools_not_disinfected"
        ]
    );
    assert!(
        found
            .iter()
            .all(|a| a.subject == WORKER && a.evidence == E1 && a.order == Some(lc::ORDER))
    );
    let facts: Vec<_> = found.iter().map(|a| a.fact).collect();
    assert_eq!(
        facts,
        vec![
            None,
            Some(VisitFact::LateCheckIn),
            Some(VisitFact::ToolsNotDisinfected)
        ]
    );
}

#[test]
fn assessment_of_lifecycle_facts() {
    let rules = RuleSet::proposal();
    let one = |e: &OrderEvent| credit::assess(&rules, lc::ORDER, E1, e, &[]);
    let late = OrderEvent::WorkerCheckedIn {
        slot: lc::S0,
        worker: W1,
        at: T0,
        location: lc::home(),
        late_by: Minutes(15),
    };
    assert_eq!(
        one(&late),
        vec![Assessment {
            subject: WORKER,
            rule: rule("worker.late_check_in"),
            evidence: E1,
            order: Some(lc::ORDER),
            fact: Some(VisitFact::LateCheckIn),
        }]
    );
    let on_time = OrderEvent::WorkerCheckedIn {
        slot: lc::S0,
        worker: W1,
        at: T0,
        location: lc::home(),
        late_by: Minutes(14),
    };
    assert!(one(&on_time).is_empty());
    let dirty = OrderEvent::ServiceCompleted {
        slot: lc::S0,
        worker: W1,
        at: T0,
        checklist: order::Checklist {
            tools_disinfected: false,
            ..lc::CLEAN
        },
    };
    assert_eq!(
        one(&dirty).first().map(|a| a.rule.as_str()),
        Some("worker.tools_not_disinfected")
    );
    let cancel = OrderEvent::OrderCancelled {
        by: Party::Customer(lc::CUSTOMER),
        reason: "x".into(),
        notice: Minutes(5),
        fee: Fen(100),
        at: T0,
    };
    assert_eq!(
        one(&cancel),
        vec![Assessment {
            subject: Subject::Customer(lc::CUSTOMER),
            rule: rule("customer.late_cancellation"),
            evidence: E1,
            order: Some(lc::ORDER),
            fact: None,
        }]
    );
    let free = OrderEvent::OrderCancelled {
        by: Party::Customer(lc::CUSTOMER),
        reason: "x".into(),
        notice: Minutes(5),
        fee: Fen(0),
        at: T0,
    };
    assert!(one(&free).is_empty());
    let severe = OrderEvent::ComplaintResolved {
        complaint_id: lc::COMPLAINT,
        against: W1,
        outcome: order::ComplaintOutcome::Upheld {
            severity: order::Severity::Severe,
            refund: Fen(0),
        },
        at: T0,
    };
    assert_eq!(
        one(&severe)
            .iter()
            .map(|a| a.rule.as_str())
            .collect::<Vec<_>>(),
        vec!["worker.complaint_severe"]
    );
    let no_show = OrderEvent::CustomerNoShowRecorded {
        customer: lc::CUSTOMER,
        reported_by: W1,
        fee: Fen(1),
        at: T0,
    };
    assert_eq!(
        one(&no_show).first().map(|a| a.rule.as_str()),
        Some("customer.no_show")
    );
}

#[test]
fn late_check_in_costs_points_and_a_warning() {
    case(WORKER)
        .when(apply("worker.late_check_in", E1), T0)
        .then(vec![
            adjusted(WORKER, "worker.late_check_in", E1, -2, 98),
            CreditEvent::WarningIssued {
                subject: WORKER,
                cause: cause("worker.late_check_in", E1),
                at: T0,
            },
        ]);
}

#[test]
fn third_warning_escalates_to_mandatory_retraining() {
    let history = vec![
        adjusted(WORKER, "worker.late_check_in", E1, -2, 98),
        CreditEvent::WarningIssued {
            subject: WORKER,
            cause: cause("worker.late_check_in", E1),
            at: T0,
        },
        adjusted(WORKER, "worker.late_check_in", E2, -2, 96),
        CreditEvent::WarningIssued {
            subject: WORKER,
            cause: cause("worker.late_check_in", E2),
            at: T0,
        },
    ];
    case(WORKER)
        .given(&history)
        .when(apply("worker.review_late", E3), T0)
        .then(vec![
            adjusted(WORKER, "worker.review_late", E3, -2, 94),
            CreditEvent::RetrainingRequired {
                subject: WORKER,
                cause: cause("worker.review_late", E3),
                at: T0,
            },
        ]);
}

#[test]
fn undisinfected_tools_send_the_worker_to_retraining_and_out_of_the_pool_until_trained() {
    let events = case(WORKER)
        .when(apply("worker.tools_not_disinfected", E1), T0)
        .events();
    assert_eq!(
        events,
        vec![
            adjusted(WORKER, "worker.tools_not_disinfected", E1, -5, 95),
            CreditEvent::RetrainingRequired {
                subject: WORKER,
                cause: cause("worker.tools_not_disinfected", E1),
                at: T0
            },
        ]
    );
    let state = fold(WORKER, &events);
    assert_eq!(state.standing, Standing::InRetraining);

    // Out of the matching pool: an offer is refused.
    let creds = order::WorkerCredentials {
        standing: state.standing,
        ..lc::creds(W1)
    };
    lc::case()
        .given(&lc::posted(1, order::DispatchMode::Platform))
        .when(
            OrderCommand::Offer {
                slot: lc::S0,
                worker: creds,
            },
            T0,
        )
        .then_error(DomainError::WorkerNotEligible {
            worker: W1,
            reason: Ineligibility::InRetraining,
        });

    // Training brings the worker back.
    let trained = CreditEvent::TrainingCompleted {
        subject: WORKER,
        course: "hygiene".into(),
        at: T0,
    };
    case(WORKER)
        .given(&events)
        .when(
            CreditCommand::CompleteTraining {
                course: "hygiene".into(),
            },
            T0,
        )
        .then(vec![trained.clone()]);
    let state = fold(WORKER, &[events, vec![trained]].concat());
    assert_eq!(state.standing, Standing::Good);
    assert_eq!(state.standing.may_take_orders(), Ok(()));
}

#[test]
fn training_is_only_recorded_for_workers_in_retraining() {
    case(WORKER)
        .when(
            CreditCommand::CompleteTraining {
                course: "hygiene".into(),
            },
            T0,
        )
        .then_error(DomainError::NotInRetraining {
            standing: Standing::Good,
        });
}

#[test]
fn a_suspension_after_a_suspension_black_lists() {
    let suspended = vec![
        adjusted(WORKER, "worker.complaint_severe", E1, -20, 80),
        CreditEvent::SubjectSuspended {
            subject: WORKER,
            cause: cause("worker.complaint_severe", E1),
            at: T0,
        },
        CreditEvent::SubjectReinstated {
            subject: WORKER,
            cause: SanctionCause::Ops {
                reason: "served".into(),
            },
            at: T0,
        },
    ];
    case(WORKER)
        .given(&suspended)
        .when(apply("worker.complaint_severe", E2), T0)
        .then(vec![
            adjusted(WORKER, "worker.complaint_severe", E2, -20, 60),
            CreditEvent::BlackListed {
                subject: WORKER,
                cause: cause("worker.complaint_severe", E2),
                at: T0,
            },
        ]);
}

#[test]
fn score_below_the_threshold_black_lists() {
    let low = vec![adjusted(WORKER, "ops.manual", E1, -35, 65)];
    case(WORKER)
        .given(&low)
        .when(apply("worker.late_withdrawal", E2), T0)
        .then(vec![adjusted(WORKER, "worker.late_withdrawal", E2, -3, 62)]);
    case(WORKER)
        .given(&low)
        .when(apply("worker.no_show", E2), T0)
        .then(vec![
            adjusted(WORKER, "worker.no_show", E2, -10, 55),
            CreditEvent::WarningIssued {
                subject: WORKER,
                cause: cause("worker.no_show", E2),
                at: T0,
            },
            CreditEvent::BlackListed {
                subject: WORKER,
                cause: cause("worker.no_show", E2),
                at: T0,
            },
        ]);
}

#[test]
fn rule_application_refusals() {
    let h = vec![adjusted(WORKER, "worker.late_check_in", E1, -2, 98)];
    case(WORKER)
        .given(&h)
        .when(apply("worker.late_check_in", E1), T0)
        .then_error(DomainError::RuleAlreadyApplied {
            rule: rule("worker.late_check_in"),
            evidence: E1,
        });
    case(WORKER)
        .when(apply("worker.nope", E1), T0)
        .then_error(DomainError::UnknownRule {
            rule: rule("worker.nope"),
            version: 1,
        });
    case(WORKER)
        .when(apply("customer.no_show", E1), T0)
        .then_error(DomainError::RuleNotForSubject {
            rule: rule("customer.no_show"),
            subject: credit::SubjectKind::Worker,
        });
    case(WORKER)
        .when(
            CreditCommand::AdjustManually {
                points: 0,
                reason: "x".into(),
                evidence: E1,
            },
            T0,
        )
        .then_error(DomainError::ZeroAdjustment);
    case(WORKER)
        .when(
            CreditCommand::AdjustManually {
                points: 3,
                reason: " ".into(),
                evidence: E1,
            },
            T0,
        )
        .then_error(DomainError::EmptyText { field: "reason" });
    assert!(RuleId::new("Bad Rule").is_err());
}

#[test]
fn ops_suspend_reinstate_and_black_list() {
    let suspended = CreditEvent::SubjectSuspended {
        subject: WORKER,
        cause: SanctionCause::Ops {
            reason: "investigation".into(),
        },
        at: T0,
    };
    case(WORKER)
        .when(
            CreditCommand::Suspend {
                reason: "investigation".into(),
            },
            T0,
        )
        .then(vec![suspended.clone()]);
    case(WORKER)
        .given(std::slice::from_ref(&suspended))
        .when(
            CreditCommand::Suspend {
                reason: "again".into(),
            },
            T0,
        )
        .then_error(DomainError::AlreadySanctioned {
            standing: Standing::Suspended,
        });
    case(WORKER)
        .when(
            CreditCommand::Reinstate {
                reason: "cleared".into(),
            },
            T0,
        )
        .then_error(DomainError::NotSuspended {
            standing: Standing::Good,
        });
    case(WORKER)
        .given(&[suspended])
        .when(
            CreditCommand::Reinstate {
                reason: "cleared".into(),
            },
            T0,
        )
        .then(vec![CreditEvent::SubjectReinstated {
            subject: WORKER,
            cause: SanctionCause::Ops {
                reason: "cleared".into(),
            },
            at: T0,
        }]);
    let bl = CreditEvent::BlackListed {
        subject: WORKER,
        cause: SanctionCause::Ops {
            reason: "theft".into(),
        },
        at: T0,
    };
    case(WORKER)
        .when(
            CreditCommand::BlackList {
                reason: "theft".into(),
            },
            T0,
        )
        .then(vec![bl.clone()]);
    case(WORKER)
        .given(&[bl])
        .when(
            CreditCommand::BlackList {
                reason: "theft".into(),
            },
            T0,
        )
        .then_error(DomainError::AlreadySanctioned {
            standing: Standing::BlackListed,
        });
}

#[test]
fn upheld_appeal_reverses_the_adjustment_and_lifts_its_sanction() {
    let appeal = AppealId::from_u128(0xAA);
    let h = vec![
        adjusted(WORKER, "worker.tools_not_disinfected", E1, -5, 95),
        CreditEvent::RetrainingRequired {
            subject: WORKER,
            cause: cause("worker.tools_not_disinfected", E1),
            at: T0,
        },
    ];
    let filed = CreditEvent::AppealFiled {
        subject: WORKER,
        appeal_id: appeal,
        evidence: E1,
        text: "I disinfected".into(),
        at: T0,
    };
    case(WORKER)
        .given(&h)
        .when(
            CreditCommand::FileAppeal {
                appeal_id: appeal,
                evidence: E1,
                text: "I disinfected".into(),
            },
            T0,
        )
        .then(vec![filed.clone()]);
    let h = [h, vec![filed]].concat();
    case(WORKER)
        .given(&h)
        .when(
            CreditCommand::DecideAppeal {
                appeal_id: appeal,
                upheld: true,
                note: "photo evidence".into(),
            },
            T0,
        )
        .then(vec![
            CreditEvent::AppealDecided {
                subject: WORKER,
                appeal_id: appeal,
                upheld: true,
                note: "photo evidence".into(),
                at: T0,
            },
            adjusted(WORKER, "appeal.reversal", E1, 5, 100),
            CreditEvent::SubjectReinstated {
                subject: WORKER,
                cause: SanctionCause::Appeal { appeal },
                at: T0,
            },
        ]);
    case(WORKER)
        .given(&h)
        .when(
            CreditCommand::DecideAppeal {
                appeal_id: appeal,
                upheld: false,
                note: "no evidence".into(),
            },
            T0,
        )
        .then(vec![CreditEvent::AppealDecided {
            subject: WORKER,
            appeal_id: appeal,
            upheld: false,
            note: "no evidence".into(),
            at: T0,
        }]);
}

#[test]
fn appeal_refusals() {
    let appeal = AppealId::from_u128(0xAA);
    let h = vec![adjusted(WORKER, "worker.five_star_review", E1, 1, 101)];
    case(WORKER)
        .given(&h)
        .when(
            CreditCommand::FileAppeal {
                appeal_id: appeal,
                evidence: E1,
                text: "x".into(),
            },
            T0,
        )
        .then_error(DomainError::NothingToAppeal { evidence: E1 });
    let h = vec![
        adjusted(WORKER, "worker.poor_review", E2, -2, 98),
        CreditEvent::AppealFiled {
            subject: WORKER,
            appeal_id: appeal,
            evidence: E2,
            text: "x".into(),
            at: T0,
        },
    ];
    case(WORKER)
        .given(&h)
        .when(
            CreditCommand::FileAppeal {
                appeal_id: AppealId::from_u128(0xAB),
                evidence: E2,
                text: "again".into(),
            },
            T0,
        )
        .then_error(DomainError::AppealAlreadyFiled { appeal });
    case(WORKER)
        .given(&h)
        .when(
            CreditCommand::DecideAppeal {
                appeal_id: AppealId::from_u128(0xAB),
                upheld: true,
                note: "x".into(),
            },
            T0,
        )
        .then_error(DomainError::UnknownAppeal {
            appeal: AppealId::from_u128(0xAB),
        });
    let decided = [
        h,
        vec![CreditEvent::AppealDecided {
            subject: WORKER,
            appeal_id: appeal,
            upheld: false,
            note: "x".into(),
            at: T0,
        }],
    ]
    .concat();
    case(WORKER)
        .given(&decided)
        .when(
            CreditCommand::DecideAppeal {
                appeal_id: appeal,
                upheld: true,
                note: "x".into(),
            },
            T0,
        )
        .then_error(DomainError::AppealAlreadyDecided { appeal });
}

#[test]
fn credit_repair_needs_retraining_and_a_clean_period() {
    let bl = vec![
        adjusted(WORKER, "worker.criminal_finding", E1, -40, 60),
        CreditEvent::BlackListed {
            subject: WORKER,
            cause: cause("worker.criminal_finding", E1),
            at: T0,
        },
    ];
    case(WORKER)
        .given(&bl)
        .when(CreditCommand::RepairCredit, T0)
        .then_error(DomainError::TrainingRequiredForRepair);
    let trained = [
        bl,
        vec![CreditEvent::TrainingCompleted {
            subject: WORKER,
            course: "ethics".into(),
            at: T0,
        }],
    ]
    .concat();
    let due = T0.plus(Minutes::days(90));
    case(WORKER)
        .given(&trained)
        .when(CreditCommand::RepairCredit, Timestamp(due.0 - 1))
        .then_error(DomainError::RepairNotYetDue { eligible_at: due });
    let repaired = CreditEvent::CreditRepaired {
        subject: WORKER,
        score_after: 80,
        at: due,
    };
    case(WORKER)
        .given(&trained)
        .when(CreditCommand::RepairCredit, due)
        .then(vec![repaired.clone()]);
    let state = fold(WORKER, &[trained, vec![repaired]].concat());
    assert_eq!(
        (state.standing, state.score, state.warnings),
        (Standing::Good, Some(80), 0)
    );
    case(WORKER)
        .when(CreditCommand::RepairCredit, due)
        .then_error(DomainError::NothingToRepair);
}

#[test]
fn red_list_after_a_clean_period_and_off_it_on_a_violation() {
    let high = vec![adjusted(WORKER, "ops.manual", E1, 9, 109)];
    case(WORKER)
        .given(&high)
        .when(apply("worker.five_star_review", E2), T0)
        .then(vec![
            adjusted(WORKER, "worker.five_star_review", E2, 1, 110),
            CreditEvent::RedListed {
                subject: WORKER,
                at: T0,
            },
        ]);
    let red = [
        high,
        vec![
            adjusted(WORKER, "worker.five_star_review", E2, 1, 110),
            CreditEvent::RedListed {
                subject: WORKER,
                at: T0,
            },
        ],
    ]
    .concat();
    case(WORKER)
        .given(&red)
        .when(apply("worker.poor_review", E3), T0)
        .then(vec![
            adjusted(WORKER, "worker.poor_review", E3, -2, 108),
            CreditEvent::RedListRemoved {
                subject: WORKER,
                at: T0,
            },
        ]);
    // A recent violation keeps a subject off the red list.
    let recent = vec![
        adjusted(WORKER, "ops.manual", E1, 15, 115),
        adjusted(WORKER, "worker.poor_review", E3, -2, 113),
    ];
    case(WORKER)
        .given(&recent)
        .when(
            apply("worker.five_star_review", E4),
            T0.plus(Minutes::days(1)),
        )
        .then(vec![CreditEvent::CreditAdjusted {
            subject: WORKER,
            rule: rule("worker.five_star_review"),
            rule_set_version: 1,
            evidence: E4,
            delta: 1,
            score_after: 114,
            at: T0.plus(Minutes::days(1)),
            order: None,
            fact: None,
        }]);
}

#[test]
fn customer_late_cancellation_and_black_listed_customer_cannot_post() {
    let customer = Subject::Customer(CustomerId::from_u128(0xC1));
    case(customer)
        .when(apply("customer.late_cancellation", E1), T0)
        .then(vec![adjusted(
            customer,
            "customer.late_cancellation",
            E1,
            -2,
            98,
        )]);
    let bl = vec![CreditEvent::BlackListed {
        subject: customer,
        cause: SanctionCause::Ops {
            reason: "abuse of workers".into(),
        },
        at: T0,
    }];
    let state = fold(customer, &bl);
    let cmd = PostOrder {
        customer_standing: state.standing,
        ..lc::post_command("C01", 1, order::DispatchMode::Platform)
    };
    lc::case()
        .when(OrderCommand::Post(Box::new(cmd)), T0)
        .then_error(DomainError::CustomerMayNotPost {
            customer: lc::CUSTOMER,
            standing: Standing::BlackListed,
        });
}

#[test]
fn companies_are_suspended_not_retrained_for_their_own_violations() {
    let company = Subject::Company(CompanyId::from_u128(0xCC));
    case(company)
        .when(apply("company.unlicensed_operation", E1), T0)
        .then(vec![
            adjusted(company, "company.unlicensed_operation", E1, -30, 70),
            CreditEvent::SubjectSuspended {
                subject: company,
                cause: cause("company.unlicensed_operation", E1),
                at: T0,
            },
        ]);
    let warned = vec![
        adjusted(company, "company.false_advertising", E1, -10, 90),
        CreditEvent::WarningIssued {
            subject: company,
            cause: cause("company.false_advertising", E1),
            at: T0,
        },
        adjusted(company, "company.false_advertising", E2, -10, 80),
        CreditEvent::WarningIssued {
            subject: company,
            cause: cause("company.false_advertising", E2),
            at: T0,
        },
    ];
    case(company)
        .given(&warned)
        .when(apply("company.false_advertising", E3), T0)
        .then(vec![
            adjusted(company, "company.false_advertising", E3, -10, 70),
            CreditEvent::SubjectSuspended {
                subject: company,
                cause: cause("company.false_advertising", E3),
                at: T0,
            },
        ]);
}
