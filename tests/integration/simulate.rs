//! `daojia simulate` through the library: a small day against an in-process server, checked
//! against its own event log: every order ends in a terminal or legitimately open state, the
//! KPI projection equals KPIs recomputed from the raw order events, the last line is the JSON
//! object with every key and rates in 0..1, and the same seed gives the same day.

use std::collections::{BTreeMap, BTreeSet};

use daojia_domain::events::{self, EncodedEvent};
use daojia_domain::order::OrderEvent;
use daojia_domain::{CustomerId, OrderId};
use daojia_server::simulate::{self, SimulateArgs};
use daojia_store::{AllStart, Direction, EmbeddedStore, EventStore, RecordedEvent};

use crate::store::tempdir;

const KEYS: [&str; 13] = [
    "orders_posted",
    "orders_filled",
    "fill_rate",
    "median_accept_s",
    "good_review_rate",
    "satisfaction",
    "repurchase_rate",
    "complaint_rate",
    "lateness_rate",
    "credit_adjustments",
    "workers_in_retraining",
    "events_appended",
    "wall_s",
];
const RATES: [&str; 6] = [
    "fill_rate",
    "good_review_rate",
    "satisfaction",
    "repurchase_rate",
    "complaint_rate",
    "lateness_rate",
];

fn args(data_dir: std::path::PathBuf, seed: u64) -> SimulateArgs {
    SimulateArgs {
        workers: 30,
        customers: None,
        orders: 60,
        seed,
        speed: 0.0,
        watch: 10,
        server: None,
        token: None,
        data_dir: Some(data_dir),
    }
}

/// What one order's events say, folded independently of the projections crate.
#[derive(Default)]
struct Folded {
    customer: Option<CustomerId>,
    slots: u32,
    taken: BTreeSet<u32>,
    served: bool,
    reviewed: bool,
    cancelled: bool,
    repurchased: bool,
}

/// The KPI totals, recomputed from the raw order events in log order.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    posted: u64,
    filled: u64,
    first_accepts: u64,
    check_ins: u64,
    late_check_ins: u64,
    served: u64,
    reviews: u64,
    good_reviews: u64,
    stars: u64,
    complaints: u64,
    repurchased: u64,
}

fn order_event(event: &RecordedEvent) -> Option<(OrderId, OrderEvent)> {
    let id = OrderId::from_stream_name(event.stream()).ok()?;
    let metadata: serde_json::Value = serde_json::from_slice(event.metadata_slice()).ok()?;
    let encoded = EncodedEvent {
        event_type: event.event_type().to_owned(),
        schema_version: metadata
            .get("schema_version")
            .and_then(|v| v.as_u64())
            .map_or_else(
                || events::current_schema_version(event.event_type()),
                |v| v as u32,
            ),
        data: serde_json::from_slice(event.data_slice()).unwrap(),
    };
    Some((id, events::decode(&encoded).unwrap()))
}

async fn fold_log(dir: &std::path::Path) -> (BTreeMap<OrderId, Folded>, Totals) {
    let store = EmbeddedStore::open(dir).unwrap();
    let mut orders: BTreeMap<OrderId, Folded> = BTreeMap::new();
    let mut totals = Totals::default();
    let mut last_served: BTreeMap<CustomerId, OrderId> = BTreeMap::new();
    let mut start = AllStart::Edge;
    loop {
        let slice = store
            .read_all(Direction::Forwards, start, 1_000, None)
            .await
            .unwrap();
        for event in &slice.events {
            let Some((id, e)) = order_event(event) else {
                continue;
            };
            match e {
                OrderEvent::OrderPosted {
                    customer, quote, ..
                } => {
                    // Everything happens within a day: any new order repurchases the last one.
                    if let Some(previous) = last_served.get(&customer) {
                        let p = orders.get_mut(previous).unwrap();
                        if !p.repurchased {
                            p.repurchased = true;
                            totals.repurchased += 1;
                        }
                    }
                    totals.posted += 1;
                    let o = orders.entry(id).or_default();
                    o.customer = Some(customer);
                    o.slots = quote.workers;
                }
                OrderEvent::OrderAccepted { slot, .. } => {
                    let o = orders.get_mut(&id).unwrap();
                    let was_filled = o.taken.len() as u32 >= o.slots;
                    if o.taken.insert(slot.0) {
                        totals.first_accepts += 1;
                    }
                    if !was_filled && o.taken.len() as u32 >= o.slots {
                        totals.filled += 1;
                    }
                }
                OrderEvent::WorkerCheckedIn { late_by, .. } => {
                    totals.check_ins += 1;
                    totals.late_check_ins += u64::from(late_by.0 > 0);
                }
                OrderEvent::OrderServed { .. } => {
                    let o = orders.get_mut(&id).unwrap();
                    o.served = true;
                    totals.served += 1;
                    last_served.insert(o.customer.unwrap(), id);
                }
                OrderEvent::OrderReviewed { stars, .. } => {
                    orders.get_mut(&id).unwrap().reviewed = true;
                    totals.reviews += 1;
                    totals.good_reviews += u64::from(stars.get() >= 4);
                    totals.stars += u64::from(stars.get());
                }
                OrderEvent::ComplaintFiled { .. } => totals.complaints += 1,
                OrderEvent::OrderCancelled { .. } => {
                    orders.get_mut(&id).unwrap().cancelled = true;
                }
                _ => {}
            }
        }
        if slice.end_of_log {
            break;
        }
        start = AllStart::Position(slice.next);
    }
    (orders, totals)
}

fn json_line(report: &simulate::Report) -> serde_json::Value {
    let mut out = Vec::new();
    report.write(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let last = text.lines().last().unwrap();
    serde_json::from_str(last).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_day_keeps_its_invariants_and_the_same_seed_gives_the_same_day() {
    let dir = tempdir();
    let first = simulate::run(args(dir.path().join("first"), 7))
        .await
        .unwrap();
    let json = json_line(&first);

    // The last line has exactly the keys, with rates as fractions.
    let object = json.as_object().unwrap();
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys, KEYS.into_iter().collect());
    for key in RATES {
        let v = object[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    assert!(first.kpis.posted > 0 && first.kpis.served > 0 && first.kpis.reviews > 0);
    // The watched workers' streams delivered every offer they answered.
    assert!(first.counts.offers_streamed > 0);
    assert_eq!(first.counts.offers_not_streamed, 0);
    // The simulation never sends bad input.
    assert!(
        !first
            .counts
            .refused
            .keys()
            .any(|r| r.contains("INVALID") || r == "InvalidArgument"),
        "{:?}",
        first.counts.refused
    );

    // Every order ends served (reviewed or not), cancelled, or never taken.
    let (orders, totals) = fold_log(&dir.path().join("first")).await;
    assert_eq!(orders.len() as u64, first.kpis.posted);
    for (id, o) in &orders {
        let taken = !o.taken.is_empty();
        assert!(
            o.served || o.cancelled || !taken,
            "order {id} was taken but neither served nor cancelled"
        );
        assert!(
            !o.reviewed || o.served,
            "order {id} reviewed without service"
        );
    }

    // The KPI projection equals the KPIs recomputed from the raw events.
    let k = &first.kpis;
    let projected = Totals {
        posted: k.posted,
        filled: k.filled,
        first_accepts: k.first_accepts,
        check_ins: k.check_ins,
        late_check_ins: k.late_check_ins,
        served: k.served,
        reviews: k.reviews,
        good_reviews: k.good_reviews,
        stars: k.stars,
        complaints: k.complaints,
        repurchased: k.repurchased,
    };
    assert_eq!(projected, totals);
    assert_eq!(object["orders_posted"], totals.posted);
    assert_eq!(object["orders_filled"], totals.filled);

    // The same seed, another data directory: the same JSON but for the wall time.
    let second = simulate::run(args(dir.path().join("second"), 7))
        .await
        .unwrap();
    let mut a = json;
    let mut b = json_line(&second);
    a.as_object_mut().unwrap().remove("wall_s");
    b.as_object_mut().unwrap().remove("wall_s");
    assert_eq!(a, b);
    assert_eq!(first.counts, second.counts);
}
