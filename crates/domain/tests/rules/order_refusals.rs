//! Every refused order transition, each with its precise error.

use daojia_domain::credit::Standing;
use daojia_domain::error::Ineligibility;
use daojia_domain::order::{
    ComplaintCategory, ComplaintOutcome, DispatchMode, DisputeOutcome, Fault, GeoPoint, NoShow,
    OrderCommand, OrderEvent, OrderPhase, Party, ReviewTag, Severity, SlotIndex, Stars, TakenVia,
};
use daojia_domain::{CustomerId, DisputeId, DomainError, Fen, Minutes, Timestamp};

use crate::order_lifecycle::*;

fn post(cmd: daojia_domain::order::PostOrder) -> OrderCommand {
    OrderCommand::Post(Box::new(cmd))
}

#[test]
fn black_listed_customer_cannot_post() {
    let cmd = daojia_domain::order::PostOrder {
        customer_standing: Standing::BlackListed,
        ..post_command("C01", 1, DispatchMode::Platform)
    };
    case()
        .when(post(cmd), T0)
        .then_error(DomainError::CustomerMayNotPost {
            customer: CUSTOMER,
            standing: Standing::BlackListed,
        });
    let cmd = daojia_domain::order::PostOrder {
        customer_standing: Standing::Suspended,
        ..post_command("C01", 1, DispatchMode::Platform)
    };
    case().when(post(cmd), T0).then_reason("CUSTOMER_SUSPENDED");
}

#[test]
fn warned_customer_may_still_post() {
    let cmd = daojia_domain::order::PostOrder {
        customer_standing: Standing::Warned,
        ..post_command("C01", 1, DispatchMode::Platform)
    };
    assert_eq!(case().when(post(cmd), T0).events().len(), 1);
}

#[test]
fn bad_post_inputs_are_refused_precisely() {
    let base = || post_command("C01", 1, DispatchMode::Platform);
    case()
        .when(
            post(daojia_domain::order::PostOrder {
                service: "Z99".parse().unwrap(),
                ..base()
            }),
            T0,
        )
        .then_reason("UNKNOWN_SERVICE");
    case()
        .when(
            post(daojia_domain::order::PostOrder {
                quantity: 0,
                ..base()
            }),
            T0,
        )
        .then_error(DomainError::QuantityOutOfRange {
            quantity: 0,
            max: 24,
        });
    case()
        .when(
            post(daojia_domain::order::PostOrder {
                quantity: 25,
                ..base()
            }),
            T0,
        )
        .then_error(DomainError::QuantityOutOfRange {
            quantity: 25,
            max: 24,
        });
    case()
        .when(
            post(daojia_domain::order::PostOrder {
                workers: 0,
                ..base()
            }),
            T0,
        )
        .then_error(DomainError::WorkersOutOfRange {
            workers: 0,
            max: 20,
        });
    case()
        .when(
            post(daojia_domain::order::PostOrder {
                workers: 21,
                ..base()
            }),
            T0,
        )
        .then_reason("WORKERS_OUT_OF_RANGE");
    let mut c = base();
    c.window.end = c.window.start;
    case().when(post(c), T0).then_reason("INVALID_WINDOW");
    case()
        .when(post(base()), start())
        .then_error(DomainError::WindowInPast {
            start: start(),
            now: start(),
        });
    let c = daojia_domain::order::PostOrder {
        location: GeoPoint {
            lat: 91.0,
            lon: 0.0,
        },
        ..base()
    };
    case().when(post(c), T0).then_reason("INVALID_LOCATION");
    let c = daojia_domain::order::PostOrder {
        location: GeoPoint {
            lat: f64::NAN,
            lon: 0.0,
        },
        ..base()
    };
    case().when(post(c), T0).then_reason("INVALID_LOCATION");
    let c = daojia_domain::order::PostOrder {
        dispatch: DispatchMode::GrabPool { deadline: T0 },
        ..base()
    };
    case()
        .when(post(c), T0)
        .then_error(DomainError::InvalidGrabDeadline { deadline: T0 });
    let c = daojia_domain::order::PostOrder {
        dispatch: DispatchMode::GrabPool {
            deadline: start().plus(Minutes(1)),
        },
        ..base()
    };
    case()
        .when(post(c), T0)
        .then_reason("INVALID_GRAB_DEADLINE");
    let mut c = base();
    c.terms.offer_ttl = Minutes(0);
    case().when(post(c), T0).then_reason("INVALID_TERMS");
}

#[test]
fn posting_twice_and_acting_before_posting_are_refused() {
    case()
        .given(&posted(1, DispatchMode::Platform))
        .when(post(post_command("C01", 1, DispatchMode::Platform)), T0)
        .then_error(DomainError::OrderAlreadyPosted { order: ORDER });
    case()
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W1),
            },
            T0,
        )
        .then_error(DomainError::OrderNotPosted);
}

#[test]
fn ineligible_workers_are_not_offered() {
    let h = posted(1, DispatchMode::Platform);
    let cases = [
        (
            daojia_domain::order::WorkerCredentials {
                standing: Standing::InRetraining,
                ..creds(W1)
            },
            Ineligibility::InRetraining,
        ),
        (
            daojia_domain::order::WorkerCredentials {
                standing: Standing::Suspended,
                ..creds(W1)
            },
            Ineligibility::Suspended,
        ),
        (
            daojia_domain::order::WorkerCredentials {
                standing: Standing::BlackListed,
                ..creds(W1)
            },
            Ineligibility::BlackListed,
        ),
        (
            daojia_domain::order::WorkerCredentials {
                home_visit_certificate_valid: false,
                ..creds(W1)
            },
            Ineligibility::NoValidHomeVisitCertificate,
        ),
        (
            daojia_domain::order::WorkerCredentials {
                contract_signed: false,
                ..creds(W1)
            },
            Ineligibility::NoContract,
        ),
    ];
    for (worker, reason) in cases {
        case()
            .given(&h)
            .when(OrderCommand::Offer { slot: S0, worker }, T0)
            .then_error(DomainError::WorkerNotEligible { worker: W1, reason });
    }
}

#[test]
fn worker_without_the_required_skill_certificate_is_not_offered() {
    let h = case()
        .when(post(post_command("E01", 1, DispatchMode::Platform)), T0)
        .events();
    case()
        .given(&h)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W1),
            },
            T0,
        )
        .then_error(DomainError::WorkerNotEligible {
            worker: W1,
            reason: Ineligibility::MissingCertificate("elder_carer".parse().unwrap()),
        });
    let skilled = daojia_domain::order::WorkerCredentials {
        skills: vec!["elder_carer".parse().unwrap()],
        ..creds(W1)
    };
    case()
        .given(&h)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: skilled,
            },
            T0,
        )
        .then(vec![offered(S0, W1, T0)]);
}

#[test]
fn offers_are_refused_for_taken_pending_unknown_or_passed_over_slots() {
    let h = posted(1, DispatchMode::Platform);
    case()
        .given(&h)
        .when(
            OrderCommand::Offer {
                slot: SlotIndex(5),
                worker: creds(W1),
            },
            T0,
        )
        .then_error(DomainError::UnknownSlot {
            order: ORDER,
            slot: 5,
        });
    let pending = [h.clone(), vec![offered(S0, W1, T0)]].concat();
    case()
        .given(&pending)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W2),
            },
            T0,
        )
        .then_error(DomainError::OfferAlreadyPending { slot: 0 });
    let taken = [pending.clone(), vec![accepted(S0, W1, T0)]].concat();
    case()
        .given(&taken)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W2),
            },
            T0,
        )
        .then_error(DomainError::SlotAlreadyTaken {
            slot: 0,
            worker: W1,
        });
    let declined = [
        pending,
        vec![OrderEvent::OfferDeclined {
            slot: S0,
            worker: W1,
            at: T0,
        }],
    ]
    .concat();
    case()
        .given(&declined)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W1),
            },
            T0,
        )
        .then_error(DomainError::WorkerPassedOver { worker: W1 });
}

#[test]
fn a_worker_holds_at_most_one_slot_of_an_order() {
    let h = [posted(2, DispatchMode::Platform), vec![offered(S0, W1, T0)]].concat();
    case()
        .given(&h)
        .when(
            OrderCommand::Offer {
                slot: S1,
                worker: creds(W1),
            },
            T0,
        )
        .then_error(DomainError::WorkerAlreadyOnOrder { worker: W1 });
}

#[test]
fn grab_pool_orders_take_no_offers_before_the_deadline() {
    let deadline = T0.plus(Minutes(60));
    case()
        .given(&posted(1, DispatchMode::GrabPool { deadline }))
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W1),
            },
            T0,
        )
        .then_error(DomainError::GrabPoolStillOpen { until: deadline });
}

#[test]
fn preferred_worker_must_be_offered_first() {
    case()
        .given(&posted(1, DispatchMode::Preferred { worker: W2 }))
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(W1),
            },
            T0,
        )
        .then_error(DomainError::PreferredWorkerFirst { preferred: W2 });
}

#[test]
fn emergency_parallel_offers_are_capped_by_the_terms() {
    let h = [
        posted(1, DispatchMode::Emergency),
        vec![
            offered(S0, W1, T0),
            offered(S0, W2, T0),
            offered(S0, W3, T0),
        ],
    ]
    .concat();
    case()
        .given(&h)
        .when(
            OrderCommand::Offer {
                slot: S0,
                worker: creds(daojia_domain::WorkerId::from_u128(0xA4)),
            },
            T0,
        )
        .then_error(DomainError::OfferAlreadyPending { slot: 0 });
}

#[test]
fn accept_is_refused_without_offer_after_expiry_or_when_ineligible() {
    let h = [posted(1, DispatchMode::Platform), vec![offered(S0, W1, T0)]].concat();
    case()
        .given(&h)
        .when(
            OrderCommand::Accept {
                slot: S0,
                worker: creds(W2),
            },
            T0,
        )
        .then_error(DomainError::NoOfferForWorker {
            worker: W2,
            slot: 0,
        });
    case()
        .given(&h)
        .when(
            OrderCommand::Accept {
                slot: S0,
                worker: creds(W1),
            },
            T0.plus(Minutes(5)),
        )
        .then_error(DomainError::OfferExpired {
            worker: W1,
            expired_at: T0.plus(Minutes(5)),
        });
    let retraining = daojia_domain::order::WorkerCredentials {
        standing: Standing::InRetraining,
        ..creds(W1)
    };
    case()
        .given(&h)
        .when(
            OrderCommand::Accept {
                slot: S0,
                worker: retraining,
            },
            T0,
        )
        .then_error(DomainError::WorkerNotEligible {
            worker: W1,
            reason: Ineligibility::InRetraining,
        });
}

#[test]
fn decline_and_expiry_need_a_pending_offer_and_expiry_waits_for_the_deadline() {
    let h = [posted(1, DispatchMode::Platform), vec![offered(S0, W1, T0)]].concat();
    case()
        .given(&h)
        .when(
            OrderCommand::Decline {
                slot: S0,
                worker: W2,
            },
            T0,
        )
        .then_reason("NO_OFFER_FOR_WORKER");
    case()
        .given(&h)
        .when(
            OrderCommand::ExpireOffer {
                slot: S0,
                worker: W1,
            },
            T0.plus(Minutes(4)),
        )
        .then_error(DomainError::OfferNotYetExpired {
            worker: W1,
            expires_at: T0.plus(Minutes(5)),
        });
    case()
        .given(&posted(1, DispatchMode::Platform))
        .when(
            OrderCommand::ExpireOffer {
                slot: S0,
                worker: W1,
            },
            T0,
        )
        .then_reason("NO_OFFER_FOR_WORKER");
}

#[test]
fn grabs_are_refused_outside_an_open_grab_pool() {
    case()
        .given(&posted(1, DispatchMode::Platform))
        .when(OrderCommand::Grab { worker: creds(W1) }, T0)
        .then_error(DomainError::NotAGrabOrder { order: ORDER });
    let deadline = T0.plus(Minutes(60));
    case()
        .given(&posted(1, DispatchMode::GrabPool { deadline }))
        .when(OrderCommand::Grab { worker: creds(W1) }, deadline)
        .then_error(DomainError::GrabPoolClosed {
            closed_at: deadline,
        });
    let grabbed = OrderEvent::OrderAccepted {
        slot: S0,
        worker: W1,
        via: TakenVia::Grab,
        at: T0,
    };
    case()
        .given(
            &[
                posted(2, DispatchMode::GrabPool { deadline }),
                vec![grabbed],
            ]
            .concat(),
        )
        .when(OrderCommand::Grab { worker: creds(W1) }, T0)
        .then_error(DomainError::WorkerAlreadyOnOrder { worker: W1 });
    let suspended = daojia_domain::order::WorkerCredentials {
        standing: Standing::Suspended,
        ..creds(W2)
    };
    case()
        .given(&posted(1, DispatchMode::GrabPool { deadline }))
        .when(OrderCommand::Grab { worker: suspended }, T0)
        .then_reason("WORKER_SUSPENDED");
}

#[test]
fn check_in_refusals() {
    let h = accepted_order();
    let at_door = |w| OrderCommand::CheckIn {
        slot: S0,
        worker: w,
        location: home(),
    };
    case()
        .given(&h)
        .when(at_door(W2), start())
        .then_error(DomainError::SlotNotHeldByWorker {
            worker: W2,
            slot: 0,
        });
    case()
        .given(&h)
        .when(at_door(W1), start().minus(Minutes(31)))
        .then_error(DomainError::CheckInTooEarly {
            earliest: start().minus(Minutes(30)),
        });
    let far = GeoPoint::new(27.9580, 116.3580).unwrap();
    case()
        .given(&h)
        .when(
            OrderCommand::CheckIn {
                slot: S0,
                worker: W1,
                location: far,
            },
            start(),
        )
        .then_error(DomainError::CheckInTooFar {
            distance_m: 1_112,
            max_m: 300,
        });
    let done = [h.clone(), vec![checked_in(S0, W1, start(), 0)]].concat();
    case()
        .given(&done)
        .when(at_door(W1), start())
        .then_error(DomainError::AlreadyCheckedIn { worker: W1 });
    let big = [
        posted(2, DispatchMode::Platform),
        vec![offered(S0, W1, T0), accepted(S0, W1, T0)],
    ]
    .concat();
    case()
        .given(&big)
        .when(at_door(W1), start())
        .then_error(DomainError::SlotsNotFilled { open: 1 });
}

#[test]
fn completion_refusals() {
    let h = accepted_order();
    let complete = |w| OrderCommand::Complete {
        slot: S0,
        worker: w,
        checklist: CLEAN,
    };
    case()
        .given(&h)
        .when(complete(W1), start())
        .then_error(DomainError::WrongOrderPhase {
            order: ORDER,
            phase: OrderPhase::Open,
        });
    let mut big = posted(2, DispatchMode::Platform);
    big.extend([
        offered(S0, W1, T0),
        accepted(S0, W1, T0),
        offered(S1, W2, T0),
        accepted(S1, W2, T0),
        checked_in(S0, W1, start(), 0),
    ]);
    case()
        .given(&big)
        .when(
            OrderCommand::Complete {
                slot: S1,
                worker: W2,
                checklist: CLEAN,
            },
            start(),
        )
        .then_error(DomainError::NotCheckedIn { worker: W2 });
    case()
        .given(&big)
        .when(complete(W2), start())
        .then_error(DomainError::SlotNotHeldByWorker {
            worker: W2,
            slot: 0,
        });
    big.push(OrderEvent::ServiceCompleted {
        slot: S0,
        worker: W1,
        at: start(),
        checklist: CLEAN,
    });
    case()
        .given(&big)
        .when(complete(W1), start())
        .then_error(DomainError::AlreadyCompleted { worker: W1 });
    case()
        .given(&served())
        .when(complete(W1), served_at())
        .then_reason("WRONG_ORDER_PHASE");
}

fn review(customer: CustomerId) -> OrderCommand {
    OrderCommand::Review {
        customer,
        stars: Stars::new(4).unwrap(),
        tags: vec![ReviewTag::Punctual],
        text: "good".into(),
    }
}

#[test]
fn review_refusals() {
    let mut before = accepted_order();
    before.push(checked_in(S0, W1, start(), 0));
    case()
        .given(&before)
        .when(review(CUSTOMER), start())
        .then_error(DomainError::ReviewBeforeService {
            order: ORDER,
            phase: OrderPhase::InService,
        });
    case()
        .given(&served())
        .when(review(CustomerId::from_u128(0xC2)), served_at())
        .then_error(DomainError::NotOrderCustomer {
            customer: CustomerId::from_u128(0xC2),
        });
    let closes = served_at().plus(Minutes::days(7));
    case()
        .given(&served())
        .when(review(CUSTOMER), Timestamp(closes.0 + 1))
        .then_error(DomainError::ReviewWindowClosed { closed_at: closes });
    let reviewed = OrderEvent::OrderReviewed {
        customer: CUSTOMER,
        stars: Stars::new(5).unwrap(),
        tags: vec![],
        text: String::new(),
        workers: vec![W1],
        at: served_at(),
    };
    case()
        .given(&[served(), vec![reviewed]].concat())
        .when(review(CUSTOMER), served_at())
        .then_error(DomainError::AlreadyReviewed { order: ORDER });
    let long = OrderCommand::Review {
        customer: CUSTOMER,
        stars: Stars::new(4).unwrap(),
        tags: vec![],
        text: "字".repeat(1_001),
    };
    case()
        .given(&served())
        .when(long, served_at())
        .then_error(DomainError::TextTooLong {
            field: "text",
            max: 1_000,
        });
    assert_eq!(Stars::new(0), Err(DomainError::InvalidRating { stars: 0 }));
    assert_eq!(Stars::new(6), Err(DomainError::InvalidRating { stars: 6 }));
    assert!(serde_json::from_str::<Stars>("9").is_err());
}

#[test]
fn what_a_command_says_on_its_own_is_refused_before_the_orders_state() {
    let reviewed = OrderEvent::OrderReviewed {
        customer: CUSTOMER,
        stars: Stars::new(5).unwrap(),
        tags: vec![],
        text: String::new(),
        workers: vec![W1],
        at: served_at(),
    };
    let long = OrderCommand::Review {
        customer: CustomerId::from_u128(0xC2),
        stars: Stars::new(4).unwrap(),
        tags: vec![],
        text: "字".repeat(350_000),
    };
    // Already reviewed and not the order's customer, but the text is what to fix first.
    case()
        .given(&[served(), vec![reviewed]].concat())
        .when(long.clone(), served_at())
        .then_error(DomainError::TextTooLong {
            field: "text",
            max: 1_000,
        });
    // Not even posted: still the text.
    case()
        .when(long, served_at())
        .then_error(DomainError::TextTooLong {
            field: "text",
            max: 1_000,
        });
    // A black-listed customer asking for too many workers hears about the workers first.
    let cmd = daojia_domain::order::PostOrder {
        customer_standing: Standing::BlackListed,
        workers: 1_000,
        ..post_command("C01", 1, DispatchMode::Platform)
    };
    case()
        .when(post(cmd), T0)
        .then_error(DomainError::WorkersOutOfRange {
            workers: 1_000,
            max: 20,
        });
}

#[test]
fn cancellation_refusals() {
    let mut started = accepted_order();
    started.push(checked_in(S0, W1, start(), 0));
    let cancel = |by| OrderCommand::Cancel {
        by,
        reason: "changed".into(),
    };
    case()
        .given(&started)
        .when(cancel(Party::Customer(CUSTOMER)), start())
        .then_error(DomainError::WrongOrderPhase {
            order: ORDER,
            phase: OrderPhase::InService,
        });
    case()
        .given(&accepted_order())
        .when(cancel(Party::Customer(CustomerId::from_u128(0xC2))), T0)
        .then_reason("NOT_ORDER_CUSTOMER");
    case()
        .given(&accepted_order())
        .when(cancel(Party::Worker(W2)), T0)
        .then_error(DomainError::WorkerNotOnOrder { worker: W2 });
    case()
        .given(&accepted_order())
        .when(
            OrderCommand::Cancel {
                by: Party::Ops,
                reason: "  ".into(),
            },
            T0,
        )
        .then_error(DomainError::EmptyText { field: "reason" });
    let cancelled = OrderEvent::OrderCancelled {
        by: Party::Ops,
        reason: "x".into(),
        notice: Minutes(0),
        fee: Fen(0),
        at: T0,
    };
    case()
        .given(&[accepted_order(), vec![cancelled]].concat())
        .when(cancel(Party::Customer(CUSTOMER)), T0)
        .then_error(DomainError::WrongOrderPhase {
            order: ORDER,
            phase: OrderPhase::Cancelled,
        });
}

#[test]
fn no_show_refusals() {
    let h = accepted_order();
    case()
        .given(&h)
        .when(
            OrderCommand::ReportNoShow(NoShow::Worker { slot: S0 }),
            start().plus(Minutes(29)),
        )
        .then_error(DomainError::NoShowTooEarly {
            from: start().plus(Minutes(30)),
        });
    case()
        .given(&posted(1, DispatchMode::Platform))
        .when(
            OrderCommand::ReportNoShow(NoShow::Worker { slot: S0 }),
            start().plus(Minutes(30)),
        )
        .then_error(DomainError::SlotNotTaken { slot: 0 });
    let arrived = [h.clone(), vec![checked_in(S0, W1, start(), 0)]].concat();
    case()
        .given(&arrived)
        .when(
            OrderCommand::ReportNoShow(NoShow::Worker { slot: S0 }),
            start().plus(Minutes(40)),
        )
        .then_error(DomainError::AlreadyCheckedIn { worker: W1 });
    case()
        .given(&h)
        .when(
            OrderCommand::ReportNoShow(NoShow::Customer { reported_by: W2 }),
            start().plus(Minutes(40)),
        )
        .then_error(DomainError::WorkerNotOnOrder { worker: W2 });
    case()
        .given(&h)
        .when(
            OrderCommand::ReportNoShow(NoShow::Customer { reported_by: W1 }),
            start(),
        )
        .then_reason("NO_SHOW_TOO_EARLY");
    case()
        .given(&served())
        .when(
            OrderCommand::ReportNoShow(NoShow::Customer { reported_by: W1 }),
            served_at(),
        )
        .then_reason("WRONG_ORDER_PHASE");
}

#[test]
fn replan_refusals() {
    let h = [
        posted(2, DispatchMode::Platform),
        vec![offered(S0, W1, T0), offered(S1, W2, T0)],
    ]
    .concat();
    case()
        .given(&h)
        .when(
            OrderCommand::Replan {
                customer: CUSTOMER,
                workers: 1,
            },
            T0,
        )
        .then_error(DomainError::ReplanBelowCommitted {
            workers: 1,
            committed: 2,
        });
    case()
        .given(&h)
        .when(
            OrderCommand::Replan {
                customer: CUSTOMER,
                workers: 2,
            },
            T0,
        )
        .then_error(DomainError::ReplanUnchanged { workers: 2 });
    case()
        .given(&h)
        .when(
            OrderCommand::Replan {
                customer: CUSTOMER,
                workers: 0,
            },
            T0,
        )
        .then_reason("WORKERS_OUT_OF_RANGE");
    case()
        .given(&h)
        .when(
            OrderCommand::Replan {
                customer: CustomerId::from_u128(0xC2),
                workers: 3,
            },
            T0,
        )
        .then_reason("NOT_ORDER_CUSTOMER");
}

#[test]
fn dispute_refusals() {
    let raise = |id, by| OrderCommand::RaiseDispute {
        dispute_id: id,
        by,
        reason: "problem".into(),
    };
    case()
        .given(&accepted_order())
        .when(raise(DISPUTE, Party::Customer(CUSTOMER)), T0)
        .then_error(DomainError::NothingToDispute {
            order: ORDER,
            phase: OrderPhase::Open,
        });
    case()
        .given(&served())
        .when(raise(DISPUTE, Party::Worker(W2)), served_at())
        .then_reason("WORKER_NOT_ON_ORDER");
    let raised = OrderEvent::DisputeRaised {
        dispute_id: DISPUTE,
        by: Party::Worker(W1),
        reason: "abuse".into(),
        at: served_at(),
    };
    let h = [served(), vec![raised]].concat();
    case()
        .given(&h)
        .when(
            raise(DisputeId::from_u128(0xD2), Party::Customer(CUSTOMER)),
            served_at(),
        )
        .then_error(DomainError::DisputeAlreadyOpen { dispute: DISPUTE });
    let outcome = |refund| DisputeOutcome {
        refund: Fen(refund),
        compensation: Fen(0),
        fault: Fault::Nobody,
        note: "mediated".into(),
    };
    case()
        .given(&h)
        .when(
            OrderCommand::ResolveDispute {
                dispute_id: DisputeId::from_u128(0xD9),
                outcome: outcome(0),
            },
            served_at(),
        )
        .then_error(DomainError::UnknownDispute {
            dispute: DisputeId::from_u128(0xD9),
        });
    case()
        .given(&h)
        .when(
            OrderCommand::ResolveDispute {
                dispute_id: DISPUTE,
                outcome: outcome(10_501),
            },
            served_at(),
        )
        .then_error(DomainError::RefundExceedsPaid {
            refund: Fen(10_501),
            already_refunded: Fen(0),
            paid: Fen(10_500),
        });
    case()
        .given(&h)
        .when(
            OrderCommand::ResolveDispute {
                dispute_id: DISPUTE,
                outcome: outcome(-1),
            },
            served_at(),
        )
        .then_error(DomainError::NegativeMoney {
            field: "refund",
            fen: -1,
        });
    let wrong_fault = DisputeOutcome {
        fault: Fault::Worker(W2),
        ..outcome(0)
    };
    case()
        .given(&h)
        .when(
            OrderCommand::ResolveDispute {
                dispute_id: DISPUTE,
                outcome: wrong_fault,
            },
            served_at(),
        )
        .then_error(DomainError::WorkerNotOnOrder { worker: W2 });
    let resolved = OrderEvent::DisputeResolved {
        dispute_id: DISPUTE,
        outcome: outcome(100),
        at: served_at(),
    };
    case()
        .given(&[h, vec![resolved]].concat())
        .when(
            OrderCommand::ResolveDispute {
                dispute_id: DISPUTE,
                outcome: outcome(0),
            },
            served_at(),
        )
        .then_error(DomainError::DisputeAlreadyResolved { dispute: DISPUTE });
}

#[test]
fn complaint_refusals() {
    let file = |customer, against| OrderCommand::FileComplaint {
        complaint_id: COMPLAINT,
        customer,
        against,
        category: ComplaintCategory::Quality,
        text: "sloppy".into(),
    };
    case()
        .given(&accepted_order())
        .when(file(CUSTOMER, W1), T0)
        .then_error(DomainError::ComplaintWithoutService { worker: W1 });
    case()
        .given(&served())
        .when(file(CustomerId::from_u128(0xC2), W1), served_at())
        .then_reason("NOT_ORDER_CUSTOMER");
    let filed = OrderEvent::ComplaintFiled {
        complaint_id: COMPLAINT,
        customer: CUSTOMER,
        against: W1,
        category: ComplaintCategory::Quality,
        text: "sloppy".into(),
        at: served_at(),
    };
    let h = [served(), vec![filed]].concat();
    case()
        .given(&h)
        .when(file(CUSTOMER, W1), served_at())
        .then_error(DomainError::ComplaintAlreadyOpen {
            complaint: COMPLAINT,
        });
    case()
        .given(&served())
        .when(
            OrderCommand::ResolveComplaint {
                complaint_id: COMPLAINT,
                outcome: ComplaintOutcome::Dismissed,
            },
            served_at(),
        )
        .then_error(DomainError::UnknownComplaint {
            complaint: COMPLAINT,
        });
    let too_much = ComplaintOutcome::Upheld {
        severity: Severity::Minor,
        refund: Fen(20_000),
    };
    case()
        .given(&h)
        .when(
            OrderCommand::ResolveComplaint {
                complaint_id: COMPLAINT,
                outcome: too_much,
            },
            served_at(),
        )
        .then_reason("REFUND_EXCEEDS_PAID");
    let done = OrderEvent::ComplaintResolved {
        complaint_id: COMPLAINT,
        against: W1,
        outcome: ComplaintOutcome::Dismissed,
        at: served_at(),
    };
    case()
        .given(&[h, vec![done]].concat())
        .when(
            OrderCommand::ResolveComplaint {
                complaint_id: COMPLAINT,
                outcome: ComplaintOutcome::Dismissed,
            },
            served_at(),
        )
        .then_error(DomainError::ComplaintAlreadyResolved {
            complaint: COMPLAINT,
        });
}

#[test]
fn every_refusal_maps_to_failed_precondition_or_not_found() {
    use daojia_domain::ErrorKind;
    assert_eq!(
        DomainError::OrderAlreadyTaken { order: ORDER }.kind(),
        ErrorKind::FailedPrecondition
    );
    assert_eq!(DomainError::OrderNotPosted.kind(), ErrorKind::NotFound);
    assert_eq!(
        DomainError::InvalidRating { stars: 9 }.kind(),
        ErrorKind::InvalidArgument
    );
}
