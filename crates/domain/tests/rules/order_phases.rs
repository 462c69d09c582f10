//! Every order command in every phase where `decide` refuses it, table by table: the exact
//! error, its reason code, and no events.

use daojia_domain::order::{
    ComplaintCategory, DispatchMode, GeoPoint, NoShow, OrderCommand, OrderEvent, OrderPhase, Party,
    ReviewTag, Stars,
};
use daojia_domain::{DomainError, Fen, Minutes, Timestamp};

use crate::order_lifecycle::*;

/// A named history that leaves the order in a known phase.
struct Phase {
    name: &'static str,
    phase: OrderPhase,
    history: Vec<OrderEvent>,
    /// A time after every event in `history`.
    now: Timestamp,
}

fn in_service() -> Phase {
    Phase {
        name: "in service",
        phase: OrderPhase::InService,
        history: [accepted_order(), vec![checked_in(S0, W1, start(), 0)]].concat(),
        now: start().plus(Minutes(10)),
    }
}

/// Cancelled by ops before the service, so no fee was charged.
fn cancelled() -> Phase {
    let cancel = OrderCommand::Cancel {
        by: Party::Ops,
        reason: "duplicate".into(),
    };
    let events = case().given(&accepted_order()).when(cancel, T0).events();
    Phase {
        name: "cancelled",
        phase: OrderPhase::Cancelled,
        history: [accepted_order(), events].concat(),
        now: T0.plus(Minutes(1)),
    }
}

/// The worker reported the customer absent; the terms' fee was charged.
fn customer_no_show() -> Phase {
    let at = start().plus(Minutes(30));
    let report = OrderCommand::ReportNoShow(NoShow::Customer { reported_by: W1 });
    let events = case().given(&accepted_order()).when(report, at).events();
    Phase {
        name: "customer no-show",
        phase: OrderPhase::CustomerNoShow,
        history: [accepted_order(), events].concat(),
        now: at.plus(Minutes(1)),
    }
}

fn served_phase() -> Phase {
    Phase {
        name: "served",
        phase: OrderPhase::Served,
        history: served(),
        now: served_at(),
    }
}

fn reviewed() -> Phase {
    let events = case()
        .given(&served())
        .when(review_command(), served_at())
        .events();
    Phase {
        name: "reviewed",
        phase: OrderPhase::Reviewed,
        history: [served(), events].concat(),
        now: served_at().plus(Minutes(1)),
    }
}

fn review_command() -> OrderCommand {
    OrderCommand::Review {
        customer: CUSTOMER,
        stars: Stars::new(5).unwrap(),
        tags: vec![ReviewTag::Punctual],
        text: "spotless".into(),
    }
}

/// Checks that each phase fixture really is in the phase it claims (a wrong fixture would make
/// every table below vacuous).
#[test]
fn the_phase_fixtures_are_in_the_phases_they_name() {
    for p in [
        in_service(),
        cancelled(),
        customer_no_show(),
        served_phase(),
        reviewed(),
    ] {
        // Replanning is refused in every phase but Open, and the error names the phase.
        let outcome = case()
            .given(&p.history)
            .when(
                OrderCommand::Replan {
                    customer: CUSTOMER,
                    workers: 2,
                },
                p.now,
            )
            .error();
        assert_eq!(
            outcome,
            DomainError::WrongOrderPhase {
                order: ORDER,
                phase: p.phase
            },
            "{}",
            p.name
        );
    }
}

/// Asserts `command` on `phase` is refused with exactly `expected` (whose reason code is
/// `reason`) and yields no events.
#[track_caller]
fn refused(phase: &Phase, command: OrderCommand, expected: DomainError, reason: &str) {
    assert_eq!(expected.reason(), reason, "{}: {expected:?}", phase.name);
    let got = case()
        .given(&phase.history)
        .when(command, phase.now)
        .error();
    assert_eq!(got, expected, "{}", phase.name);
}

fn wrong_phase(p: &Phase) -> DomainError {
    DomainError::WrongOrderPhase {
        order: ORDER,
        phase: p.phase,
    }
}

/// The phases after the order ended (no slot can change any more).
fn ended() -> [Phase; 4] {
    [cancelled(), customer_no_show(), served_phase(), reviewed()]
}

#[test]
fn offers_are_refused_once_the_order_ended() {
    for p in ended() {
        let offer = OrderCommand::Offer {
            slot: S0,
            worker: creds(W2),
        };
        refused(&p, offer, wrong_phase(&p), "WRONG_ORDER_PHASE");
    }
}

#[test]
fn accept_decline_and_expire_are_refused_once_the_order_ended() {
    for p in ended() {
        let accept = OrderCommand::Accept {
            slot: S0,
            worker: creds(W1),
        };
        refused(&p, accept, wrong_phase(&p), "WRONG_ORDER_PHASE");
        let decline = OrderCommand::Decline {
            slot: S0,
            worker: W1,
        };
        refused(&p, decline, wrong_phase(&p), "WRONG_ORDER_PHASE");
        let expire = OrderCommand::ExpireOffer {
            slot: S0,
            worker: W1,
        };
        refused(&p, expire, wrong_phase(&p), "WRONG_ORDER_PHASE");
    }
}

#[test]
fn grabs_are_refused_in_every_phase_but_open() {
    // A grab-pool order that W1 grabbed, then moved into each later phase.
    let deadline = start().minus(Minutes(60));
    let pool = || {
        let mut h = posted(1, DispatchMode::GrabPool { deadline });
        h.push(OrderEvent::OrderAccepted {
            slot: S0,
            worker: W1,
            via: daojia_domain::order::TakenVia::Grab,
            at: T0,
        });
        h
    };
    let grab = || OrderCommand::Grab { worker: creds(W2) };
    // Before the deadline, while Open, the same grab is refused only because the slot is taken.
    case()
        .given(&pool())
        .when(grab(), T0)
        .then_error(DomainError::OrderAlreadyTaken { order: ORDER });
    let later = |extra: Vec<OrderEvent>, phase| Phase {
        name: "grab pool",
        phase,
        history: [pool(), extra].concat(),
        now: T0.plus(Minutes(1)),
    };
    let cancelled = OrderEvent::OrderCancelled {
        by: Party::Ops,
        reason: "duplicate".into(),
        notice: Minutes(0),
        fee: Fen::ZERO,
        at: T0,
    };
    let no_show = OrderEvent::CustomerNoShowRecorded {
        customer: CUSTOMER,
        reported_by: W1,
        fee: Fen(5_250),
        at: T0,
    };
    let checked = checked_in(S0, W1, T0, 0);
    let done = OrderEvent::ServiceCompleted {
        slot: S0,
        worker: W1,
        at: T0,
        checklist: CLEAN,
    };
    let served = OrderEvent::OrderServed { at: T0 };
    let reviewed = OrderEvent::OrderReviewed {
        customer: CUSTOMER,
        stars: Stars::new(5).unwrap(),
        tags: vec![],
        text: String::new(),
        workers: vec![W1],
        at: T0,
    };
    for p in [
        later(vec![checked.clone()], OrderPhase::InService),
        later(vec![cancelled], OrderPhase::Cancelled),
        later(vec![no_show], OrderPhase::CustomerNoShow),
        later(
            vec![checked.clone(), done.clone(), served.clone()],
            OrderPhase::Served,
        ),
        later(vec![checked, done, served, reviewed], OrderPhase::Reviewed),
    ] {
        refused(&p, grab(), wrong_phase(&p), "WRONG_ORDER_PHASE");
    }
}

#[test]
fn check_in_is_refused_once_the_order_ended() {
    for p in ended() {
        let check_in = OrderCommand::CheckIn {
            slot: S0,
            worker: W1,
            location: home(),
        };
        refused(&p, check_in, wrong_phase(&p), "WRONG_ORDER_PHASE");
    }
}

#[test]
fn no_shows_are_refused_once_the_order_ended() {
    for p in ended() {
        let worker = OrderCommand::ReportNoShow(NoShow::Worker { slot: S0 });
        refused(&p, worker, wrong_phase(&p), "WRONG_ORDER_PHASE");
        let customer = OrderCommand::ReportNoShow(NoShow::Customer { reported_by: W1 });
        refused(&p, customer, wrong_phase(&p), "WRONG_ORDER_PHASE");
    }
}

#[test]
fn replans_are_refused_in_every_phase_but_open() {
    for p in [
        in_service(),
        cancelled(),
        customer_no_show(),
        served_phase(),
        reviewed(),
    ] {
        let replan = OrderCommand::Replan {
            customer: CUSTOMER,
            workers: 2,
        };
        refused(&p, replan, wrong_phase(&p), "WRONG_ORDER_PHASE");
    }
}

#[test]
fn reviews_are_refused_in_every_phase_but_served() {
    let open = Phase {
        name: "open",
        phase: OrderPhase::Open,
        history: accepted_order(),
        now: T0,
    };
    for p in [open, in_service(), cancelled(), customer_no_show()] {
        let expected = DomainError::ReviewBeforeService {
            order: ORDER,
            phase: p.phase,
        };
        refused(&p, review_command(), expected, "REVIEW_BEFORE_SERVICE");
    }
    let p = reviewed();
    refused(
        &p,
        review_command(),
        DomainError::AlreadyReviewed { order: ORDER },
        "ALREADY_REVIEWED",
    );
}

#[test]
fn disputes_need_a_service_or_a_charged_fee() {
    let raise = || OrderCommand::RaiseDispute {
        dispute_id: DISPUTE,
        by: Party::Customer(CUSTOMER),
        reason: "not fair".into(),
    };
    // Cancelled by ops: no fee, no service, nothing to dispute.
    let p = cancelled();
    refused(
        &p,
        raise(),
        DomainError::NothingToDispute {
            order: ORDER,
            phase: OrderPhase::Cancelled,
        },
        "NOTHING_TO_DISPUTE",
    );
    // A customer no-show without a fee (terms charging 0 %) has nothing to dispute either.
    let free_no_show = OrderEvent::CustomerNoShowRecorded {
        customer: CUSTOMER,
        reported_by: W1,
        fee: Fen::ZERO,
        at: start().plus(Minutes(30)),
    };
    let p = Phase {
        name: "free customer no-show",
        phase: OrderPhase::CustomerNoShow,
        history: [accepted_order(), vec![free_no_show]].concat(),
        now: start().plus(Minutes(31)),
    };
    refused(
        &p,
        raise(),
        DomainError::NothingToDispute {
            order: ORDER,
            phase: OrderPhase::CustomerNoShow,
        },
        "NOTHING_TO_DISPUTE",
    );
    // The charged no-show fee and every served phase can be disputed.
    for p in [customer_no_show(), in_service(), served_phase(), reviewed()] {
        let events = case().given(&p.history).when(raise(), p.now).events();
        assert_eq!(events.len(), 1, "{}", p.name);
    }
}

#[test]
fn complaints_need_a_worker_who_checked_in_whatever_the_phase() {
    let file = || OrderCommand::FileComplaint {
        complaint_id: COMPLAINT,
        customer: CUSTOMER,
        against: W1,
        category: ComplaintCategory::Quality,
        text: "sloppy".into(),
    };
    // FileComplaint has no phase check of its own: an order that ended before anyone checked in
    // is refused because nobody served it.
    for p in [cancelled(), customer_no_show()] {
        refused(
            &p,
            file(),
            DomainError::ComplaintWithoutService { worker: W1 },
            "COMPLAINT_WITHOUT_SERVICE",
        );
    }
    for p in [in_service(), served_phase(), reviewed()] {
        let events = case().given(&p.history).when(file(), p.now).events();
        assert_eq!(events.len(), 1, "{}", p.name);
    }
}

#[test]
fn check_in_far_off_the_globe_is_an_invalid_location() {
    // Coordinates are validated only after the phase and the slot: an out-of-range check-in by
    // the slot holder is refused as malformed input.
    let h = accepted_order();
    for (lat, lon) in [(91.0, 0.0), (0.0, 181.0), (-91.0, 0.0), (0.0, -180.5)] {
        let got = case()
            .given(&h)
            .when(
                OrderCommand::CheckIn {
                    slot: S0,
                    worker: W1,
                    location: GeoPoint { lat, lon },
                },
                start(),
            )
            .error();
        assert_eq!(got.reason(), "INVALID_LOCATION", "({lat}, {lon})");
        assert_eq!(got.kind(), daojia_domain::ErrorKind::InvalidArgument);
    }
}

#[test]
fn too_many_tags_cannot_happen_because_tags_are_deduplicated() {
    // `TooManyTags` is unreachable today: tags are deduplicated first and there are fewer tag
    // kinds (7) than the limit (10). Ten thousand repeated tags collapse to the distinct ones.
    let tags: Vec<ReviewTag> = [ReviewTag::Punctual, ReviewTag::Excellent]
        .into_iter()
        .cycle()
        .take(10_000)
        .collect();
    let events = case()
        .given(&served())
        .when(
            OrderCommand::Review {
                customer: CUSTOMER,
                stars: Stars::new(5).unwrap(),
                tags,
                text: String::new(),
            },
            served_at(),
        )
        .events();
    let [OrderEvent::OrderReviewed { tags, .. }] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(tags, &[ReviewTag::Punctual, ReviewTag::Excellent]);
    let kinds = [
        ReviewTag::Late,
        ReviewTag::ToolsNotDisinfected,
        ReviewTag::Careless,
        ReviewTag::Rude,
        ReviewTag::Excellent,
        ReviewTag::Punctual,
        ReviewTag::Professional,
    ];
    assert!(kinds.len() <= daojia_domain::order::MAX_REVIEW_TAGS);
}
