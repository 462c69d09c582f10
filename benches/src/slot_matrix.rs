//! The dense view of a matching instance that the benchmark checks the matcher against: one row
//! per order slot (orders in id order, an order's `workers_needed` slots together), one column
//! per worker (by dense id), every pair's `pair_cost`. It is the exact solver's input and the
//! `--dump` file's layout.

use std::collections::HashSet;
use std::io::{self, Write};

use daojia_matching::{BatchResult, MatchConfig, Order, Worker, pair_cost};

use crate::lapjv::CostMatrix;

/// Which order each row belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRows {
    /// The order index (= dense `OrderId`) of each row.
    pub order_of_row: Vec<usize>,
    /// The first row of each order.
    pub first_row: Vec<usize>,
}

impl SlotRows {
    /// The rows of `orders`.
    pub fn new(orders: &[Order]) -> Self {
        let mut order_of_row = Vec::new();
        let mut first_row = Vec::with_capacity(orders.len());
        for (i, o) in orders.iter().enumerate() {
            first_row.push(order_of_row.len());
            order_of_row.extend(std::iter::repeat_n(i, usize::from(o.workers_needed)));
        }
        SlotRows {
            order_of_row,
            first_row,
        }
    }

    /// Number of rows (slots).
    pub fn len(&self) -> usize {
        self.order_of_row.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.order_of_row.is_empty()
    }
}

/// Every pair's cost (`pair_cost` once per order and worker, copied to the order's other slots).
pub fn dense_costs(
    orders: &[Order],
    workers: &[Worker],
    slots: &SlotRows,
    config: &MatchConfig,
) -> CostMatrix {
    let mut m = CostMatrix::forbidden(slots.len(), workers.len());
    for (o, order) in orders.iter().enumerate() {
        let first = slots.first_row[o];
        if order.workers_needed == 0 {
            continue;
        }
        for (c, w) in workers.iter().enumerate() {
            m.set(first, c, pair_cost(order, w, config));
        }
        for r in first + 1..first + usize::from(order.workers_needed) {
            m.copy_row(first, r);
        }
    }
    m
}

/// The `[row, column]` cells of a batch result: the k-th worker of an order (in the result's
/// order) takes the order's k-th slot. Errors name the first assignment that fits no slot.
pub fn assignment_cells(
    slots: &SlotRows,
    orders: &[Order],
    workers: &[Worker],
    result: &BatchResult,
) -> Result<Vec<(usize, usize)>, String> {
    let mut taken = vec![0usize; orders.len()];
    let mut cells = Vec::with_capacity(result.assignments.len());
    for a in &result.assignments {
        let o = a.order.0 as usize;
        let w = a.worker.0 as usize;
        let order = orders
            .get(o)
            .ok_or_else(|| format!("assignment to unknown order {}", a.order))?;
        if w >= workers.len() {
            return Err(format!("assignment of unknown worker {}", a.worker));
        }
        if taken[o] >= usize::from(order.workers_needed) {
            return Err(format!(
                "order {} got more than its {} slots",
                a.order, order.workers_needed
            ));
        }
        cells.push((slots.first_row[o] + taken[o], w));
        taken[o] += 1;
    }
    Ok(cells)
}

/// Everything wrong with a batch result, checked independently of the matcher: forbidden pairs,
/// costs that differ from `pair_cost`, a worker twice in the batch, an order over-filled, a total
/// that is not the sum.
pub fn violations(
    orders: &[Order],
    workers: &[Worker],
    config: &MatchConfig,
    result: &BatchResult,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut per_order = vec![0usize; orders.len()];
    let mut total = 0i64;
    for a in &result.assignments {
        total += a.cost;
        let (Some(o), Some(w)) = (
            orders.get(a.order.0 as usize),
            workers.get(a.worker.0 as usize),
        ) else {
            out.push(format!(
                "unknown order or worker in {}-{}",
                a.order, a.worker
            ));
            continue;
        };
        match pair_cost(o, w, config) {
            None => out.push(format!(
                "{} was given forbidden worker {}",
                a.order, a.worker
            )),
            Some(c) if c != a.cost => out.push(format!(
                "{}-{} costs {} by pair_cost but {} in the result",
                a.order, a.worker, c, a.cost
            )),
            Some(_) => {}
        }
        if !seen.insert(a.worker) {
            out.push(format!("{} has two slots in one batch", a.worker));
        }
        per_order[a.order.0 as usize] += 1;
        if per_order[a.order.0 as usize] > usize::from(o.workers_needed) {
            out.push(format!(
                "{} got more than {} workers",
                a.order, o.workers_needed
            ));
        }
    }
    if total != result.total_cost {
        out.push(format!(
            "total_cost {} is not the sum of the assignments' costs {total}",
            result.total_cost
        ));
    }
    out
}

/// Writes `{"cost": [[...], ...], "assignment": [[row, column], ...]}`: every pair's cost,
/// `null` where `pair_cost` forbids the pair, one row per slot and one column per worker.
pub fn write_dump<W: Write>(
    out: &mut W,
    orders: &[Order],
    workers: &[Worker],
    config: &MatchConfig,
    assignment: &[(usize, usize)],
) -> io::Result<()> {
    let mut line = String::new();
    out.write_all(b"{\"cost\":[")?;
    let mut first_row = true;
    for order in orders {
        if order.workers_needed == 0 {
            continue;
        }
        line.clear();
        line.push('[');
        for (c, w) in workers.iter().enumerate() {
            if c > 0 {
                line.push(',');
            }
            match pair_cost(order, w, config) {
                Some(x) => line.push_str(&x.to_string()),
                None => line.push_str("null"),
            }
        }
        line.push(']');
        for _ in 0..order.workers_needed {
            if !first_row {
                out.write_all(b",\n")?;
            }
            first_row = false;
            out.write_all(line.as_bytes())?;
        }
    }
    out.write_all(b"],\n\"assignment\":[")?;
    for (i, (r, c)) in assignment.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(out, "[{r},{c}]")?;
    }
    out.write_all(b"]}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzhou::generate;
    use crate::lapjv::solve;
    use daojia_matching::greedy_nearest;

    #[test]
    fn the_dump_is_json_with_one_row_per_slot_and_matches_the_dense_costs() {
        let inst = generate(40, 120, 11);
        let config = MatchConfig::default();
        let slots = SlotRows::new(&inst.orders);
        let costs = dense_costs(&inst.orders, &inst.workers, &slots, &config);
        let greedy = greedy_nearest(&inst.orders, &inst.workers, &config);
        let cells = assignment_cells(&slots, &inst.orders, &inst.workers, &greedy).unwrap();
        let mut buf = Vec::new();
        write_dump(&mut buf, &inst.orders, &inst.workers, &config, &cells).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let rows = v["cost"].as_array().unwrap();
        assert_eq!(rows.len(), slots.len());
        for (r, row) in rows.iter().enumerate() {
            let row = row.as_array().unwrap();
            assert_eq!(row.len(), inst.workers.len());
            for (c, x) in row.iter().enumerate() {
                assert_eq!(x.as_i64(), costs.get(r, c), "cell ({r}, {c})");
            }
        }
        let dumped: Vec<(usize, usize)> = v["assignment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_u64().unwrap() as usize,
                    p[1].as_u64().unwrap() as usize,
                )
            })
            .collect();
        assert_eq!(dumped, cells);
        for &(r, c) in &cells {
            assert!(costs.get(r, c).is_some());
        }
    }

    #[test]
    fn slot_rows_keep_an_orders_slots_together() {
        let inst = generate(2_000, 10, 5);
        let slots = SlotRows::new(&inst.orders);
        assert_eq!(slots.len(), inst.slots());
        for (o, order) in inst.orders.iter().enumerate() {
            let first = slots.first_row[o];
            for r in first..first + usize::from(order.workers_needed) {
                assert_eq!(slots.order_of_row[r], o);
            }
        }
    }

    #[test]
    fn greedy_is_never_better_than_the_exact_optimum() {
        let inst = generate(60, 150, 9);
        let config = MatchConfig::default();
        let slots = SlotRows::new(&inst.orders);
        let exact = solve(&dense_costs(&inst.orders, &inst.workers, &slots, &config));
        let greedy = greedy_nearest(&inst.orders, &inst.workers, &config);
        assert!(violations(&inst.orders, &inst.workers, &config, &greedy).is_empty());
        assert!(
            exact.assigned > greedy.assignments.len()
                || (exact.assigned == greedy.assignments.len() && exact.cost <= greedy.total_cost)
        );
    }
}
