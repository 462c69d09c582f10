//! The order lifecycle, transition by transition, and the fixtures the order tests share.

use daojia_domain::credit::Standing;
use daojia_domain::order::{
    self, Checklist, ComplaintCategory, ComplaintOutcome, DispatchMode, DisputeOutcome, Fault,
    GeoPoint, NoShow, OrderCommand, OrderEvent, OrderState, Party, PostOrder, ReviewTag,
    ServiceWindow, Severity, SlotIndex, Stars, TakenVia, WorkerCredentials,
};
use daojia_domain::{
    ComplaintId, CustomerId, DisputeId, Fen, Minutes, OrderId, OrderTerms, PricingUnit, Quote,
    Timestamp, WorkerId,
};

use crate::framework::Case;

pub const T0: Timestamp = Timestamp(1_767_225_600_000);
pub const CUSTOMER: CustomerId = CustomerId::from_u128(0xC1);
pub const ORDER: OrderId = OrderId::from_u128(0x01);
pub const W1: WorkerId = WorkerId::from_u128(0xA1);
pub const W2: WorkerId = WorkerId::from_u128(0xA2);
pub const W3: WorkerId = WorkerId::from_u128(0xA3);
pub const S0: SlotIndex = SlotIndex(0);
pub const S1: SlotIndex = SlotIndex(1);

pub fn start() -> Timestamp {
    T0.plus(Minutes::days(1))
}

pub fn home() -> GeoPoint {
    GeoPoint::new(27.9480, 116.3580).unwrap()
}

pub fn case() -> Case<OrderState, OrderCommand, OrderEvent> {
    Case::new(
        OrderState::default(),
        Box::new(order::decide),
        order::evolve,
    )
}

pub fn post_command(service: &str, workers: u32, dispatch: DispatchMode) -> PostOrder {
    PostOrder {
        order_id: ORDER,
        customer: CUSTOMER,
        customer_standing: Standing::Good,
        service: service.parse().unwrap(),
        quantity: 3,
        workers,
        window: ServiceWindow {
            start: start(),
            end: start().plus(Minutes(180)),
        },
        location: home(),
        dispatch,
        terms: OrderTerms::default(),
    }
}

/// The `OrderPosted` event of a C01 (routine cleaning, 3 h) order.
pub fn posted(workers: u32, dispatch: DispatchMode) -> Vec<OrderEvent> {
    case()
        .when(
            OrderCommand::Post(Box::new(post_command("C01", workers, dispatch))),
            T0,
        )
        .events()
}

pub fn creds(worker: WorkerId) -> WorkerCredentials {
    WorkerCredentials {
        worker,
        standing: Standing::Good,
        home_visit_certificate_valid: true,
        skills: vec![],
        contract_signed: true,
    }
}

pub fn offered(slot: SlotIndex, worker: WorkerId, at: Timestamp) -> OrderEvent {
    OrderEvent::OrderOffered {
        slot,
        worker,
        offered_at: at,
        expires_at: at.plus(Minutes(5)),
    }
}

pub fn accepted(slot: SlotIndex, worker: WorkerId, at: Timestamp) -> OrderEvent {
    OrderEvent::OrderAccepted {
        slot,
        worker,
        via: TakenVia::Offer,
        at,
    }
}

pub fn checked_in(slot: SlotIndex, worker: WorkerId, at: Timestamp, late: u32) -> OrderEvent {
    OrderEvent::WorkerCheckedIn {
        slot,
        worker,
        at,
        location: home(),
        late_by: Minutes(late),
    }
}

pub const CLEAN: Checklist = Checklist {
    tools_disinfected: true,
    area_tidied: true,
    customer_confirmed: true,
};

/// Posted, offered, accepted by W1, checked in on time, completed and served.
pub fn served() -> Vec<OrderEvent> {
    let mut h = posted(1, DispatchMode::Platform);
    h.push(offered(S0, W1, T0));
    h.push(accepted(S0, W1, T0.plus(Minutes(1))));
    h.push(checked_in(S0, W1, start(), 0));
    let done = start().plus(Minutes(180));
    h.push(OrderEvent::ServiceCompleted {
        slot: S0,
        worker: W1,
        at: done,
        checklist: CLEAN,
    });
    h.push(OrderEvent::OrderServed { at: done });
    h
}

pub fn served_at() -> Timestamp {
    start().plus(Minutes(180))
}

/// Posted and accepted by W1 (slot 0 of a one-worker order).
pub fn accepted_order() -> Vec<OrderEvent> {
    let mut h = posted(1, DispatchMode::Platform);
    h.push(offered(S0, W1, T0));
    h.push(accepted(S0, W1, T0.plus(Minutes(1))));
    h
}

#[test]
fn posting_fixes_the_quote_in_the_event() {
    let events = posted(1, DispatchMode::Platform);
    let [
        OrderEvent::OrderPosted {
            quote,
            required_certificates,
            posted_at,
            ..
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(
        quote,
        &Quote {
            unit: PricingUnit::Hour,
            unit_price: Fen(3_500),
            quantity: 3,
            workers: 1,
            total: Fen(10_500)
        }
    );
    assert!(required_certificates.is_empty());
    assert_eq!(*posted_at, T0);
}

#[test]
fn posting_copies_required_certificates_and_prices_every_worker() {
    let cmd = post_command("E01", 2, DispatchMode::Platform);
    let events = case().when(OrderCommand::Post(Box::new(cmd)), T0).events();
    let [
        OrderEvent::OrderPosted {
            quote,
            required_certificates,
            ..
        },
    ] = events.as_slice()
    else {
        panic!()
    };
    assert_eq!(required_certificates, &vec!["elder_carer".parse().unwrap()]);
    assert_eq!(quote.total, Fen(4_500 * 3 * 2));
}

#[test]
fn offer_is_made_to_one_worker_with_expiry() {
    case()
        .given(&posted(1, DispatchMode::Platform))
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W1),
            },
            T0,
        )
        .then(vec![offered(S0, W1, T0)]);
}

#[test]
fn offered_worker_accepts_before_expiry() {
    case()
        .given(&[posted(1, DispatchMode::Platform), vec![offered(S0, W1, T0)]].concat())
        .when(
            OrderCommand::Accept {
                slot: S0,
                worker: creds(W1),
            },
            T0.plus(Minutes(4)),
        )
        .then(vec![accepted(S0, W1, T0.plus(Minutes(4)))]);
}

#[test]
fn declined_offer_is_reoffered_to_the_next_worker() {
    let mut h = posted(1, DispatchMode::Platform);
    h.push(offered(S0, W1, T0));
    case()
        .given(&h)
        .when(
            OrderCommand::Decline {
                slot: S0,
                worker: W1,
            },
            T0.plus(Minutes(1)),
        )
        .then(vec![OrderEvent::OfferDeclined {
            slot: S0,
            worker: W1,
            at: T0.plus(Minutes(1)),
        }]);
    h.push(OrderEvent::OfferDeclined {
        slot: S0,
        worker: W1,
        at: T0.plus(Minutes(1)),
    });
    case()
        .given(&h)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W2),
            },
            T0.plus(Minutes(2)),
        )
        .then(vec![offered(S0, W2, T0.plus(Minutes(2)))]);
}

#[test]
fn lapsed_offer_expires_and_is_reoffered() {
    let mut h = posted(1, DispatchMode::Platform);
    h.push(offered(S0, W1, T0));
    let lapse = T0.plus(Minutes(5));
    case()
        .given(&h)
        .when(
            OrderCommand::ExpireOffer {
                slot: S0,
                worker: W1,
            },
            lapse,
        )
        .then(vec![OrderEvent::OfferExpired {
            slot: S0,
            worker: W1,
            at: lapse,
        }]);
    h.push(OrderEvent::OfferExpired {
        slot: S0,
        worker: W1,
        at: lapse,
    });
    case()
        .given(&h)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W2),
            },
            lapse,
        )
        .then(vec![offered(S0, W2, lapse)]);
}

#[test]
fn first_valid_grab_wins() {
    let pool = DispatchMode::GrabPool {
        deadline: T0.plus(Minutes(60)),
    };
    let h = posted(1, pool);
    let grab = OrderEvent::OrderAccepted {
        slot: S0,
        worker: W1,
        via: TakenVia::Grab,
        at: T0.plus(Minutes(3)),
    };
    case()
        .given(&h)
        .when(
            OrderCommand::Grab { worker: creds(W1) },
            T0.plus(Minutes(3)),
        )
        .then(vec![grab.clone()]);
    case()
        .given(&[h, vec![grab]].concat())
        .when(
            OrderCommand::Grab { worker: creds(W2) },
            T0.plus(Minutes(3)),
        )
        .then_error(daojia_domain::DomainError::OrderAlreadyTaken { order: ORDER });
}

#[test]
fn grab_pool_falls_back_to_offers_after_its_deadline() {
    let deadline = T0.plus(Minutes(60));
    case()
        .given(&posted(1, DispatchMode::GrabPool { deadline }))
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W1),
            },
            deadline,
        )
        .then(vec![offered(S0, W1, deadline)]);
}

#[test]
fn preferred_worker_is_offered_first_then_anyone() {
    let h = posted(1, DispatchMode::Preferred { worker: W2 });
    case()
        .given(&h)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W2),
            },
            T0,
        )
        .then(vec![offered(S0, W2, T0)]);
    let declined = OrderEvent::OfferDeclined {
        slot: S0,
        worker: W2,
        at: T0.plus(Minutes(1)),
    };
    case()
        .given(&[h, vec![offered(S0, W2, T0), declined]].concat())
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W1),
            },
            T0.plus(Minutes(1)),
        )
        .then(vec![offered(S0, W1, T0.plus(Minutes(1)))]);
}

#[test]
fn emergency_calls_offer_in_parallel_and_the_first_accept_wins() {
    let mut h = posted(1, DispatchMode::Emergency);
    h.push(offered(S0, W1, T0));
    case()
        .given(&h)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W2),
            },
            T0,
        )
        .then(vec![offered(S0, W2, T0)]);
    h.push(offered(S0, W2, T0));
    h.push(accepted(S0, W2, T0.plus(Minutes(1))));
    case()
        .given(&h)
        .when(
            OrderCommand::Accept {
                slot: S0,
                worker: creds(W1),
            },
            T0.plus(Minutes(1)),
        )
        .then_reason("NO_OFFER_FOR_WORKER");
}

#[test]
fn an_unanswered_emergency_call_is_escalated_to_ops_once() {
    let mut h = posted(1, DispatchMode::Emergency);
    h.push(offered(S0, W1, T0));
    h.push(offered(S0, W2, T0));
    let at = T0.plus(Minutes(1));
    let escalated = OrderEvent::EmergencyEscalated { at };
    case()
        .given(&h)
        .when(OrderCommand::Escalate, at)
        .then(vec![escalated.clone()]);
    // Once per order: escalating again records nothing.
    h.push(escalated);
    case()
        .given(&h)
        .when(OrderCommand::Escalate, at.plus(Minutes(1)))
        .then(vec![]);
    // Offers still proceed after the escalation.
    case()
        .given(&h)
        .when(
            OrderCommand::Accept {
                slot: S0,
                worker: creds(W1),
            },
            at,
        )
        .then(vec![accepted(S0, W1, at)]);
}

#[test]
fn only_an_open_emergency_call_is_escalated() {
    case()
        .given(&posted(1, DispatchMode::Platform))
        .when(OrderCommand::Escalate, T0)
        .then_reason("NOT_AN_EMERGENCY");
    let mut h = posted(1, DispatchMode::Emergency);
    h.push(offered(S0, W1, T0));
    h.push(accepted(S0, W1, T0));
    case()
        .given(&h)
        .when(OrderCommand::Escalate, T0.plus(Minutes(1)))
        .then_reason("ORDER_ALREADY_TAKEN");
}

#[test]
fn check_in_records_lateness() {
    let at = start().plus(Minutes(20));
    case()
        .given(&accepted_order())
        .when(
            OrderCommand::CheckIn {
                slot: S0,
                worker: W1,
                location: home(),
            },
            at,
        )
        .then(vec![checked_in(S0, W1, at, 20)]);
}

#[test]
fn early_check_in_within_tolerance_is_on_time() {
    let at = start().minus(Minutes(10));
    case()
        .given(&accepted_order())
        .when(
            OrderCommand::CheckIn {
                slot: S0,
                worker: W1,
                location: home(),
            },
            at,
        )
        .then(vec![checked_in(S0, W1, at, 0)]);
}

#[test]
fn completing_the_last_slot_serves_the_order_with_the_checklist() {
    let mut h = accepted_order();
    h.push(checked_in(S0, W1, start(), 0));
    let done = served_at();
    let checklist = Checklist {
        tools_disinfected: false,
        ..CLEAN
    };
    case()
        .given(&h)
        .when(
            OrderCommand::Complete {
                slot: S0,
                worker: W1,
                checklist,
            },
            done,
        )
        .then(vec![
            OrderEvent::ServiceCompleted {
                slot: S0,
                worker: W1,
                at: done,
                checklist,
            },
            OrderEvent::OrderServed { at: done },
        ]);
}

#[test]
fn big_order_slots_fill_independently_and_serve_when_all_complete() {
    let mut h = posted(2, DispatchMode::Platform);
    h.extend([
        offered(S0, W1, T0),
        offered(S1, W2, T0),
        accepted(S1, W2, T0),
        accepted(S0, W1, T0),
    ]);
    h.extend([
        checked_in(S0, W1, start(), 0),
        checked_in(S1, W2, start(), 0),
    ]);
    let done = served_at();
    case()
        .given(&h)
        .when(
            OrderCommand::Complete {
                slot: S0,
                worker: W1,
                checklist: CLEAN,
            },
            done,
        )
        .then(vec![OrderEvent::ServiceCompleted {
            slot: S0,
            worker: W1,
            at: done,
            checklist: CLEAN,
        }]);
    h.push(OrderEvent::ServiceCompleted {
        slot: S0,
        worker: W1,
        at: done,
        checklist: CLEAN,
    });
    case()
        .given(&h)
        .when(
            OrderCommand::Complete {
                slot: S1,
                worker: W2,
                checklist: CLEAN,
            },
            done,
        )
        .then(vec![
            OrderEvent::ServiceCompleted {
                slot: S1,
                worker: W2,
                at: done,
                checklist: CLEAN,
            },
            OrderEvent::OrderServed { at: done },
        ]);
}

#[test]
fn customer_reviews_once_after_service_with_tags_and_text() {
    let at = served_at().plus(Minutes(60));
    case()
        .given(&served())
        .when(
            OrderCommand::Review {
                customer: CUSTOMER,
                stars: Stars::new(2).unwrap(),
                tags: vec![
                    ReviewTag::Late,
                    ReviewTag::ToolsNotDisinfected,
                    ReviewTag::Late,
                ],
                text: "迟到了，工具没消毒".into(),
            },
            at,
        )
        .then(vec![OrderEvent::OrderReviewed {
            customer: CUSTOMER,
            stars: Stars::new(2).unwrap(),
            tags: vec![ReviewTag::Late, ReviewTag::ToolsNotDisinfected],
            text: "迟到了，工具没消毒".into(),
            workers: vec![W1],
            at,
        }]);
}

#[test]
fn review_is_accepted_on_the_last_moment_of_the_window() {
    let at = served_at().plus(Minutes::days(7));
    let review = OrderCommand::Review {
        customer: CUSTOMER,
        stars: Stars::new(5).unwrap(),
        tags: vec![],
        text: String::new(),
    };
    let events = case().given(&served()).when(review, at).events();
    assert_eq!(events.len(), 1);
}

#[test]
fn customer_cancellation_is_free_before_a_worker_commits() {
    let at = start().minus(Minutes(30));
    case()
        .given(&posted(1, DispatchMode::Platform))
        .when(
            OrderCommand::Cancel {
                by: Party::Customer(CUSTOMER),
                reason: "plans changed".into(),
            },
            at,
        )
        .then(vec![OrderEvent::OrderCancelled {
            by: Party::Customer(CUSTOMER),
            reason: "plans changed".into(),
            notice: Minutes(30),
            fee: Fen(0),
            at,
        }]);
}

#[test]
fn customer_cancellation_fee_follows_the_notice_table() {
    for (notice, fee) in [
        (Minutes::hours(25), Fen(0)),
        (Minutes::hours(3), Fen(2_100)),
        (Minutes(60), Fen(5_250)),
    ] {
        let at = start().minus(notice);
        case()
            .given(&accepted_order())
            .when(
                OrderCommand::Cancel {
                    by: Party::Customer(CUSTOMER),
                    reason: "plans changed".into(),
                },
                at,
            )
            .then(vec![OrderEvent::OrderCancelled {
                by: Party::Customer(CUSTOMER),
                reason: "plans changed".into(),
                notice,
                fee,
                at,
            }]);
    }
}

#[test]
fn ops_cancellation_charges_nothing() {
    let at = start().minus(Minutes(10));
    case()
        .given(&accepted_order())
        .when(
            OrderCommand::Cancel {
                by: Party::Ops,
                reason: "address unreachable".into(),
            },
            at,
        )
        .then(vec![OrderEvent::OrderCancelled {
            by: Party::Ops,
            reason: "address unreachable".into(),
            notice: Minutes(10),
            fee: Fen(0),
            at,
        }]);
}

#[test]
fn worker_cancellation_withdraws_from_the_slot_which_is_reoffered() {
    let at = start().minus(Minutes(90));
    let withdrew = OrderEvent::WorkerWithdrew {
        slot: S0,
        worker: W1,
        reason: "sick".into(),
        notice: Minutes(90),
        at,
    };
    case()
        .given(&accepted_order())
        .when(
            OrderCommand::Cancel {
                by: Party::Worker(W1),
                reason: "sick".into(),
            },
            at,
        )
        .then(vec![withdrew.clone()]);
    case()
        .given(&[accepted_order(), vec![withdrew]].concat())
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W2),
            },
            at,
        )
        .then(vec![offered(S0, W2, at)]);
}

#[test]
fn worker_no_show_reopens_the_slot() {
    let at = start().plus(Minutes(30));
    let no_show = OrderEvent::WorkerNoShowRecorded {
        slot: S0,
        worker: W1,
        at,
    };
    case()
        .given(&accepted_order())
        .when(OrderCommand::ReportNoShow(NoShow::Worker { slot: S0 }), at)
        .then(vec![no_show.clone()]);
    case()
        .given(&[accepted_order(), vec![no_show]].concat())
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W2),
            },
            at,
        )
        .then(vec![offered(S0, W2, at)]);
}

#[test]
fn customer_no_show_ends_the_order_with_the_configured_fee() {
    let at = start().plus(Minutes(40));
    let mut h = accepted_order();
    h.push(checked_in(S0, W1, start(), 0));
    case()
        .given(&h)
        .when(
            OrderCommand::ReportNoShow(NoShow::Customer { reported_by: W1 }),
            at,
        )
        .then(vec![OrderEvent::CustomerNoShowRecorded {
            customer: CUSTOMER,
            reported_by: W1,
            fee: Fen(5_250),
            at,
        }]);
}

#[test]
fn replanning_adds_and_removes_open_slots_with_a_new_quote() {
    let h = posted(2, DispatchMode::Platform);
    let events = case()
        .given(&h)
        .when(
            OrderCommand::Replan {
                customer: CUSTOMER,
                workers: 3,
            },
            T0,
        )
        .events();
    let [
        OrderEvent::OrderReplanned {
            workers: 3,
            quote,
            removed,
            added,
            ..
        },
    ] = events.as_slice()
    else {
        panic!()
    };
    assert_eq!(quote.total, Fen(31_500));
    assert!(removed.is_empty());
    assert_eq!(added, &vec![SlotIndex(2)]);

    let mut h2 = h.clone();
    h2.extend([offered(S0, W1, T0), accepted(S0, W1, T0)]);
    let events = case()
        .given(&h2)
        .when(
            OrderCommand::Replan {
                customer: CUSTOMER,
                workers: 1,
            },
            T0,
        )
        .events();
    let [
        OrderEvent::OrderReplanned {
            quote,
            removed,
            added,
            ..
        },
    ] = events.as_slice()
    else {
        panic!()
    };
    assert_eq!(
        (quote.total, removed.as_slice(), added.len()),
        (Fen(10_500), &[S1][..], 0)
    );

    // After re-planning to one worker, the order starts with W1 alone.
    h2.extend(events);
    case()
        .given(&h2)
        .when(
            OrderCommand::CheckIn {
                slot: S0,
                worker: W1,
                location: home(),
            },
            start(),
        )
        .then(vec![checked_in(S0, W1, start(), 0)]);
}

pub const DISPUTE: DisputeId = DisputeId::from_u128(0xD1);
pub const COMPLAINT: ComplaintId = ComplaintId::from_u128(0xF1);

#[test]
fn dispute_is_raised_after_service_and_resolved_by_ops() {
    let at = served_at().plus(Minutes(10));
    let raised = OrderEvent::DisputeRaised {
        dispute_id: DISPUTE,
        by: Party::Customer(CUSTOMER),
        reason: "broken vase".into(),
        at,
    };
    case()
        .given(&served())
        .when(
            OrderCommand::RaiseDispute {
                dispute_id: DISPUTE,
                by: Party::Customer(CUSTOMER),
                reason: "broken vase".into(),
            },
            at,
        )
        .then(vec![raised.clone()]);
    let outcome = DisputeOutcome {
        refund: Fen(3_000),
        compensation: Fen(20_000),
        fault: Fault::Worker(W1),
        note: "worker liable".into(),
    };
    case()
        .given(&[served(), vec![raised]].concat())
        .when(
            OrderCommand::ResolveDispute {
                dispute_id: DISPUTE,
                outcome: outcome.clone(),
            },
            at.plus(Minutes(60)),
        )
        .then(vec![OrderEvent::DisputeResolved {
            dispute_id: DISPUTE,
            outcome,
            at: at.plus(Minutes(60)),
        }]);
}

#[test]
fn fee_charged_on_cancellation_can_be_disputed() {
    let at = start().minus(Minutes(60));
    let cancelled = OrderEvent::OrderCancelled {
        by: Party::Customer(CUSTOMER),
        reason: "x".into(),
        notice: Minutes(60),
        fee: Fen(5_250),
        at,
    };
    case()
        .given(&[accepted_order(), vec![cancelled]].concat())
        .when(
            OrderCommand::RaiseDispute {
                dispute_id: DISPUTE,
                by: Party::Customer(CUSTOMER),
                reason: "worker told me to cancel".into(),
            },
            at,
        )
        .then(vec![OrderEvent::DisputeRaised {
            dispute_id: DISPUTE,
            by: Party::Customer(CUSTOMER),
            reason: "worker told me to cancel".into(),
            at,
        }]);
}

#[test]
fn complaint_is_filed_against_a_worker_who_served_and_upheld() {
    let at = served_at().plus(Minutes(5));
    let filed = OrderEvent::ComplaintFiled {
        complaint_id: COMPLAINT,
        customer: CUSTOMER,
        against: W1,
        category: ComplaintCategory::Conduct,
        text: "rude".into(),
        at,
    };
    case()
        .given(&served())
        .when(
            OrderCommand::FileComplaint {
                complaint_id: COMPLAINT,
                customer: CUSTOMER,
                against: W1,
                category: ComplaintCategory::Conduct,
                text: "rude".into(),
            },
            at,
        )
        .then(vec![filed.clone()]);
    let outcome = ComplaintOutcome::Upheld {
        severity: Severity::Major,
        refund: Fen(1_000),
    };
    case()
        .given(&[served(), vec![filed]].concat())
        .when(
            OrderCommand::ResolveComplaint {
                complaint_id: COMPLAINT,
                outcome,
            },
            at,
        )
        .then(vec![OrderEvent::ComplaintResolved {
            complaint_id: COMPLAINT,
            against: W1,
            outcome,
            at,
        }]);
}

#[test]
fn a_skipped_favourite_lets_anyone_be_offered_and_is_not_offered_again() {
    let h = posted(1, DispatchMode::Preferred { worker: W2 });
    let skipped = OrderEvent::PreferredWorkerSkipped {
        worker: W2,
        reason: "busy at that time".into(),
        at: T0,
    };
    case()
        .given(&h)
        .when(
            OrderCommand::SkipPreferred {
                reason: "busy at that time".into(),
            },
            T0,
        )
        .then(vec![skipped.clone()]);
    let after = [h.clone(), vec![skipped.clone()]].concat();
    case()
        .given(&after)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W1),
            },
            T0,
        )
        .then(vec![offered(S0, W1, T0)]);
    case()
        .given(&after)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W2),
            },
            T0,
        )
        .then_reason("WORKER_PASSED_OVER");
    // Skipping again, or on an order without a favourite, changes nothing.
    case()
        .given(&after)
        .when(
            OrderCommand::SkipPreferred {
                reason: "again".into(),
            },
            T0,
        )
        .then(vec![]);
    case()
        .given(&posted(1, DispatchMode::Platform))
        .when(
            OrderCommand::SkipPreferred {
                reason: "none".into(),
            },
            T0,
        )
        .then(vec![]);
    case()
        .given(&h)
        .when(OrderCommand::SkipPreferred { reason: " ".into() }, T0)
        .then_reason("EMPTY_TEXT");
}
