//! Dispatch policies (DESIGN.md, "Dispatch modes") on top of candidate search: who is offered
//! an order next, who may see and grab it, the preferred worker first, and the emergency call.
//! Each is a pure query of the matcher's state; the dispatcher turns answers into events.

use crate::candidates::{Exclude, FIRST_REACH_KM, Hit, Query, Rank, search};
use crate::cost::cost_of;
use crate::eligibility::{Ineligible, eligibility};
use crate::matcher::Matcher;
use crate::model::{Category, Order, WorkerId};

/// An eligible worker for an order, as a policy ranks her.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The worker.
    pub worker: WorkerId,
    /// The pair's cost ([`crate::pair_cost`] with the matcher's travel time).
    pub cost: i64,
    /// Great-circle distance from the worker to the order, km.
    pub distance_km: f64,
}

impl From<Hit> for Candidate {
    fn from(hit: Hit) -> Self {
        Candidate {
            worker: hit.worker,
            cost: hit.cost,
            distance_km: hit.km,
        }
    }
}

/// Preferred worker first (复购): the order's preferred worker if she is eligible now; she is
/// offered the order before anyone else. `None`: no preference, or she cannot take it.
pub fn preferred_first(matcher: &Matcher, order: &Order) -> Option<Candidate> {
    let id = order.preferred?;
    let worker = matcher.worker(id)?;
    let distance_km = eligibility(order, worker, matcher.config()).ok()?;
    Some(Candidate {
        worker: id,
        cost: cost_of(
            order,
            worker,
            distance_km,
            &matcher.config().weights,
            matcher.travel(),
        ),
        distance_km,
    })
}

/// Offer cascade (一键接单): the next worker to offer `order` to after `offered` (workers
/// already offered it, whether they declined, let the offer expire or are still thinking):
/// the preferred worker if eligible and not yet offered, otherwise the cheapest eligible worker
/// not yet offered (ties: lowest id). `None`: nobody is left within the radius.
pub fn next_offer(matcher: &Matcher, order: &Order, offered: &[WorkerId]) -> Option<Candidate> {
    if let Some(favourite) = preferred_first(matcher, order)
        && !offered.contains(&favourite.worker)
    {
        return Some(favourite);
    }
    ranked(matcher, order, 1, Rank::Cost, Exclude::Ids(offered))
        .into_iter()
        .find(|c| Some(c.worker) != order.preferred)
}

/// Grab pool (抢单): the workers who may see the order and grab it: every eligible worker within
/// the category radius, cheapest first (the preferred worker by her cost, bonus included).
pub fn grab_pool(matcher: &Matcher, order: &Order) -> Vec<Candidate> {
    let found = search(
        matcher.pool(),
        matcher.config(),
        matcher.travel(),
        order,
        &Query {
            limit: usize::MAX,
            rank: Rank::Cost,
            keep_preferred: true,
            exclude: Exclude::None,
            first_reach_km: FIRST_REACH_KM,
        },
    );
    found.candidates.into_iter().map(Candidate::from).collect()
}

/// Whether a grab of `order` by `worker` is valid now: the first valid grab wins, an invalid one
/// says why.
pub fn check_grab(
    matcher: &Matcher,
    order: &Order,
    worker: WorkerId,
) -> Result<Candidate, Ineligible> {
    let w = matcher
        .worker(worker)
        .ok_or(Ineligible::UnknownWorker(worker))?;
    let distance_km = eligibility(order, w, matcher.config())?;
    Ok(Candidate {
        worker,
        cost: cost_of(
            order,
            w,
            distance_km,
            &matcher.config().weights,
            matcher.travel(),
        ),
        distance_km,
    })
}

/// Emergency (一键呼叫): the `k` nearest eligible workers (ties: lowest id), to be offered the
/// call in parallel; for an elder's call the service is an eldercare one, so these are the
/// nearest eligible elder carers. Nearness alone ranks them: no credit, load or preference terms.
/// Empty: nobody eligible within the radius (the caller alerts ops at once), or the order is
/// not an eldercare one.
pub fn emergency_offers(matcher: &Matcher, order: &Order, k: usize) -> Vec<Candidate> {
    if order.category != Category::Eldercare {
        return Vec::new();
    }
    ranked(
        matcher,
        order,
        k,
        Rank::Distance,
        Exclude::Ids(&order.declined),
    )
}

fn ranked(
    matcher: &Matcher,
    order: &Order,
    limit: usize,
    rank: Rank,
    exclude: Exclude<'_>,
) -> Vec<Candidate> {
    let found = search(
        matcher.pool(),
        matcher.config(),
        matcher.travel(),
        order,
        &Query {
            limit,
            rank,
            keep_preferred: false,
            exclude,
            first_reach_km: FIRST_REACH_KM,
        },
    );
    found.candidates.into_iter().map(Candidate::from).collect()
}
