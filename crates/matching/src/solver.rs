//! Exact batch assignment on the pruned candidate graph: fill as many order slots as possible,
//! then minimise the total cost.
//!
//! Model: one row per order slot (an order needing n workers has n rows sharing one edge list),
//! one column per candidate worker. A worker takes at most one row in the batch, so the slots
//! of one order always get distinct workers.
//!
//! Algorithm: shortest augmenting paths with dual variables (Jonker–Volgenant; the sparse form
//! of Crouse 2016), in two phases.
//!
//! 1. **Rows.** A greedy warm start gives each row its cheapest candidate when that worker is
//!    still free (row duals = row minima, column duals = 0: dual feasible, matched edges tight).
//!    Each remaining row runs Dijkstra with a binary heap over reduced costs, stops at the first
//!    free column and updates the duals of the scanned nodes only, so an augmentation costs
//!    what it explored. This keeps the assignment least-cost for the rows covered so far. A
//!    search that finds no free column proves its row cannot be filled, and everything it
//!    scanned is *dead*: no augmenting path will ever pass through it (its columns are all
//!    taken, and its rows reach no other column), so later searches skip it and every failure
//!    explores new ground only. At the end the number of filled slots is maximum.
//! 2. **Dead part.** Which rows of the dead part stay unfilled is still open: there every
//!    column is taken, and the cheapest way to take them all is a separate assignment problem
//!    with the dead columns as rows (each must be assigned) and the dead rows as columns, solved
//!    the same way. Nothing connects it to the rest without losing a filled slot, so the two
//!    parts together are a least-cost maximum assignment: exactly the objective.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

const NONE: u32 = u32::MAX;
const INF: i64 = i64::MAX;

/// A bipartite graph of orders (with slot counts) and candidate columns (workers).
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// Per order: (slots, first edge, end of edges).
    orders: Vec<(u32, u32, u32)>,
    edges: Vec<(u32, i64)>,
    cols: u32,
}

/// One filled slot: (order index, column, cost).
pub(crate) type Filled = (u32, u32, i64);

impl Graph {
    /// An empty graph.
    pub(crate) fn new() -> Self {
        Graph::default()
    }

    /// Adds an order with `slots` slots and its candidate edges `(column, cost)`: each column
    /// at most once per order. Columns are numbered densely by the caller.
    pub(crate) fn push_order(&mut self, slots: u32, edges: impl IntoIterator<Item = (u32, i64)>) {
        let start = self.edges.len() as u32;
        for (col, cost) in edges {
            self.cols = self.cols.max(col.saturating_add(1));
            self.edges.push((col, cost));
        }
        let end = self.edges.len() as u32;
        self.orders.push((slots, start, end));
    }

    /// Number of edges.
    pub(crate) fn edges(&self) -> usize {
        self.edges.len()
    }

    fn edges_of(&self, order: u32) -> &[(u32, i64)] {
        let (_, start, end) = self
            .orders
            .get(order as usize)
            .copied()
            .unwrap_or((0, 0, 0));
        self.edges.get(start as usize..end as usize).unwrap_or(&[])
    }
}

/// An exact solution.
#[derive(Debug)]
pub(crate) struct Solution {
    /// The filled slots.
    pub(crate) filled: Vec<Filled>,
    /// Orders with a slot in the dead part (reachable from a slot left unfilled): the only
    /// orders whose extra candidates could fill more slots.
    pub(crate) contested: Vec<u32>,
}

/// Why the exact solver gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GaveUp {
    /// The deadline passed.
    Deadline,
}

/// The exact solution, or why there is none before `deadline`.
pub(crate) fn solve_exact(graph: &Graph, deadline: Option<Instant>) -> Result<Solution, GaveUp> {
    // Phase 1: rows are order slots.
    let mut row_order = Vec::new();
    let mut rows = Sparse {
        ranges: Vec::new(),
        edges: &graph.edges,
        cols: graph.cols as usize,
    };
    for (order, &(slots, start, end)) in graph.orders.iter().enumerate() {
        for _ in 0..slots {
            row_order.push(order as u32);
            rows.ranges.push((start, end));
        }
    }
    let mut phase1 = Sap::new(&rows);
    phase1.warm_start();
    let clock = Clock::new(deadline);
    for row in 0..rows.ranges.len() {
        if phase1.col4row.get(row) == Some(&NONE) {
            clock.check()?;
            phase1.augment(row);
        }
    }

    // Phase 2: the dead part, transposed: dead columns are rows that must all be assigned.
    let dead_cols: Vec<u32> = (0..rows.cols as u32)
        .filter(|&c| phase1.dead_col(c))
        .collect();
    let mut assignment = phase1.col4row;
    let dead_rows = phase1.dead_rows;
    let mut contested: Vec<u32> = dead_rows
        .iter()
        .map(|&r| at(&row_order, r as usize))
        .collect();
    contested.sort_unstable();
    contested.dedup();
    if !dead_cols.is_empty() {
        let mut b_row_of_col = vec![NONE; rows.cols];
        for (i, &c) in dead_cols.iter().enumerate() {
            set(&mut b_row_of_col, c as usize, i as u32);
        }
        // Transposed edges, grouped by dead column (counting sort).
        let mut count = vec![0u32; dead_cols.len() + 1];
        for &r in &dead_rows {
            for &(c, _) in rows.edges_of(r as usize) {
                let b = at(&b_row_of_col, c as usize);
                if b != NONE {
                    bump32(&mut count, b as usize + 1, 1);
                }
            }
        }
        for i in 1..count.len() {
            let previous = at(&count, i - 1);
            bump32(&mut count, i, previous);
        }
        let mut fill = count.clone();
        let mut edges = vec![(0u32, 0i64); at(&count, dead_cols.len()) as usize];
        for (b_col, &r) in dead_rows.iter().enumerate() {
            for &(c, cost) in rows.edges_of(r as usize) {
                let b = at(&b_row_of_col, c as usize);
                if b != NONE {
                    let slot = at(&fill, b as usize);
                    set(&mut edges, slot as usize, (b_col as u32, cost));
                    bump32(&mut fill, b as usize, 1);
                }
            }
        }
        let transposed = Sparse {
            ranges: (0..dead_cols.len())
                .map(|b| (at(&count, b), at(&count, b + 1)))
                .collect(),
            edges: &edges,
            cols: dead_rows.len(),
        };
        let mut phase2 = Sap::new(&transposed);
        phase2.warm_start();
        for b_row in 0..dead_cols.len() {
            if phase2.col4row.get(b_row) == Some(&NONE) {
                clock.check()?;
                phase2.augment(b_row);
            }
        }
        for &r in &dead_rows {
            set(&mut assignment, r as usize, NONE);
        }
        for (b_row, &b_col) in phase2.col4row.iter().enumerate() {
            // Every dead column has a dead row: phase 1's assignment is one. Should the search
            // ever fail, the column simply stays without a row (still a valid assignment).
            if b_col != NONE {
                let r = at(&dead_rows, b_col as usize);
                set(&mut assignment, r as usize, at(&dead_cols, b_row));
            }
        }
    }

    let mut filled = Vec::new();
    for (row, &col) in assignment.iter().enumerate() {
        if col == NONE {
            continue;
        }
        let order = at(&row_order, row);
        let cost = rows
            .edges_of(row)
            .iter()
            .find(|&&(c, _)| c == col)
            .map_or(0, |&(_, cost)| cost);
        filled.push((order, col, cost));
    }
    Ok(Solution { filled, contested })
}

/// Greedy on the same graph: orders in index order, each slot takes its cheapest free column.
pub(crate) fn solve_greedy(graph: &Graph) -> Vec<Filled> {
    let mut used = vec![false; graph.cols as usize];
    let mut filled = Vec::new();
    for (order, &(slots, _, _)) in graph.orders.iter().enumerate() {
        let order = order as u32;
        let mut edges: Vec<(i64, u32)> = graph
            .edges_of(order)
            .iter()
            .map(|&(col, c)| (c, col))
            .collect();
        edges.sort_unstable();
        let mut left = slots;
        for (cost, col) in edges {
            if left == 0 {
                break;
            }
            if let Some(slot @ false) = used.get_mut(col as usize) {
                *slot = true;
                left -= 1;
                filled.push((order, col, cost));
            }
        }
    }
    filled
}

/// Checks the deadline every few searches.
struct Clock {
    deadline: Option<Instant>,
    calls: std::cell::Cell<u32>,
}

impl Clock {
    fn new(deadline: Option<Instant>) -> Self {
        Clock {
            deadline,
            calls: std::cell::Cell::new(0),
        }
    }

    fn check(&self) -> Result<(), GaveUp> {
        let calls = self.calls.get();
        self.calls.set(calls.wrapping_add(1));
        if calls.is_multiple_of(16) && self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(GaveUp::Deadline);
        }
        Ok(())
    }
}

/// Sparse rows: each row's edges `(column, cost)` are a range of a shared edge array (the slots
/// of one order share their order's range).
struct Sparse<'e> {
    ranges: Vec<(u32, u32)>,
    edges: &'e [(u32, i64)],
    cols: usize,
}

impl Sparse<'_> {
    fn edges_of(&self, row: usize) -> &[(u32, i64)] {
        let (start, end) = self.ranges.get(row).copied().unwrap_or((0, 0));
        self.edges.get(start as usize..end as usize).unwrap_or(&[])
    }
}

/// Shortest-augmenting-path state over one [`Sparse`] problem.
struct Sap<'s, 'e> {
    g: &'s Sparse<'e>,
    u: Vec<i64>,
    v: Vec<i64>,
    col4row: Vec<u32>,
    row4col: Vec<u32>,
    /// Per column: tentative distance in the current search (`INF`: not reached).
    dist: Vec<i64>,
    /// Per column: the row it was reached from.
    pred: Vec<u32>,
    /// Per column: 0 live, 1 finalised in the current search, 2 dead.
    state: Vec<u8>,
    /// Rows scanned by failed searches.
    dead_rows: Vec<u32>,
    touched: Vec<u32>,
    scanned: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, bool, u32)>>,
}

const LIVE: u8 = 0;
const DONE: u8 = 1;
const DEAD: u8 = 2;

impl<'s, 'e> Sap<'s, 'e> {
    fn new(g: &'s Sparse<'e>) -> Self {
        let (rows, cols) = (g.ranges.len(), g.cols);
        Sap {
            g,
            u: vec![0; rows],
            v: vec![0; cols],
            col4row: vec![NONE; rows],
            row4col: vec![NONE; cols],
            dist: vec![INF; cols],
            pred: vec![NONE; cols],
            state: vec![LIVE; cols],
            dead_rows: Vec::new(),
            touched: Vec::new(),
            scanned: Vec::new(),
            heap: BinaryHeap::new(),
        }
    }

    fn dead_col(&self, col: u32) -> bool {
        self.state.get(col as usize) == Some(&DEAD)
    }

    /// Each row takes its cheapest column if that column is still free; its dual is that cost.
    fn warm_start(&mut self) {
        for row in 0..self.g.ranges.len() {
            let edges = self.g.edges_of(row);
            let Some(min) = edges.iter().map(|&(_, c)| c).min() else {
                continue;
            };
            let free = edges
                .iter()
                .find(|&&(col, c)| c == min && at(&self.row4col, col as usize) == NONE);
            if let Some(&(col, _)) = free {
                set(&mut self.row4col, col as usize, row as u32);
                set(&mut self.col4row, row, col);
                set(&mut self.u, row, min);
            }
        }
    }

    /// One shortest augmenting path from the free row `cur`; false (and the scanned part marked
    /// dead) if no free column is reachable.
    fn augment(&mut self, cur: usize) -> bool {
        let mut min_val = 0i64;
        let mut row = cur;
        let sink = loop {
            self.scanned.push(row as u32);
            let u_row = at(&self.u, row);
            for &(col, cost) in self.g.edges_of(row) {
                let c = col as usize;
                if at(&self.state, c) != LIVE {
                    continue;
                }
                let reduced = min_val + cost - u_row - at(&self.v, c);
                let known = at(&self.dist, c);
                if reduced < known {
                    if known == INF {
                        self.touched.push(col);
                    }
                    set(&mut self.dist, c, reduced);
                    set(&mut self.pred, c, row as u32);
                    let taken = at(&self.row4col, c) != NONE;
                    self.heap.push(Reverse((reduced, taken, col)));
                }
            }
            let next = loop {
                let Some(Reverse((d, _, col))) = self.heap.pop() else {
                    break None;
                };
                let c = col as usize;
                if at(&self.state, c) == LIVE && d == at(&self.dist, c) {
                    break Some((d, col));
                }
            };
            let Some((d, col)) = next else {
                self.fail();
                return false;
            };
            set(&mut self.state, col as usize, DONE);
            min_val = d;
            let owner = at(&self.row4col, col as usize);
            if owner == NONE {
                break col;
            }
            row = owner as usize;
        };

        // Dual update of the scanned part only.
        for &r in &self.scanned {
            let r = r as usize;
            let delta = if r == cur {
                min_val
            } else {
                min_val - at(&self.dist, at(&self.col4row, r) as usize)
            };
            bump(&mut self.u, r, delta);
        }
        for &col in &self.touched {
            let c = col as usize;
            if at(&self.state, c) == DONE {
                bump(&mut self.v, c, at(&self.dist, c) - min_val);
            }
        }

        // Augment along the predecessor chain.
        let mut col = sink;
        loop {
            let r = at(&self.pred, col as usize);
            set(&mut self.row4col, col as usize, r);
            let previous = at(&self.col4row, r as usize);
            set(&mut self.col4row, r as usize, col);
            if r as usize == cur {
                break;
            }
            col = previous;
        }
        self.reset(LIVE);
        true
    }

    /// A failed search: everything it reached is dead for good.
    fn fail(&mut self) {
        self.dead_rows.extend_from_slice(&self.scanned);
        self.reset(DEAD);
    }

    fn reset(&mut self, touched_state: u8) {
        for &col in &self.touched {
            set(&mut self.dist, col as usize, INF);
            set(&mut self.state, col as usize, touched_state);
        }
        self.touched.clear();
        self.scanned.clear();
        self.heap.clear();
    }
}

/// `slice[index]` without a panic path: indices here come from the graph's own bounds.
fn at<T: Copy + Default>(slice: &[T], index: usize) -> T {
    slice.get(index).copied().unwrap_or_default()
}

fn set<T>(slice: &mut [T], index: usize, value: T) {
    if let Some(slot) = slice.get_mut(index) {
        *slot = value;
    }
}

fn bump(slice: &mut [i64], index: usize, delta: i64) {
    if let Some(value) = slice.get_mut(index) {
        *value += delta;
    }
}

fn bump32(slice: &mut [u32], index: usize, delta: u32) {
    if let Some(value) = slice.get_mut(index) {
        *value += delta;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve(g: &Graph) -> Vec<Filled> {
        let mut got = solve_exact(g, None).unwrap().filled;
        got.sort_unstable();
        got
    }

    #[test]
    fn unfilled_row_yields_its_worker_to_a_cheaper_row() {
        // One worker, two orders: the later order is cheaper, so it gets the worker.
        let mut g = Graph::new();
        g.push_order(1, [(0, 10)]);
        g.push_order(1, [(0, 1)]);
        assert_eq!(solve(&g), vec![(1, 0, 1)]);
    }

    #[test]
    fn cardinality_beats_cost() {
        // Order 0 could take worker 0 cheaply, but then order 1 would get nobody.
        let mut g = Graph::new();
        g.push_order(1, [(0, 1), (1, 100)]);
        g.push_order(1, [(0, 50)]);
        assert_eq!(solve(&g), vec![(0, 1, 100), (1, 0, 50)]);
    }

    #[test]
    fn multi_slot_order_gets_distinct_workers() {
        let mut g = Graph::new();
        g.push_order(2, [(0, 5), (1, 7), (2, 9)]);
        assert_eq!(solve(&g), vec![(0, 0, 5), (0, 1, 7)]);
    }

    #[test]
    fn dead_part_keeps_the_cheapest_rows() {
        // Three orders compete for two workers; the dearest one stays unfilled, although it
        // comes first and the warm start gives it a worker.
        let mut g = Graph::new();
        g.push_order(1, [(0, 90), (1, 95)]);
        g.push_order(1, [(0, 10), (1, 30)]);
        g.push_order(1, [(0, 20), (1, 15)]);
        assert_eq!(solve(&g), vec![(1, 0, 10), (2, 1, 15)]);
    }

    #[test]
    fn greedy_takes_cheapest_free_in_order() {
        let mut g = Graph::new();
        g.push_order(1, [(0, 5), (1, 6)]);
        g.push_order(1, [(0, 1)]);
        assert_eq!(solve_greedy(&g), vec![(0, 0, 5)]);
        assert_eq!(solve(&g), vec![(0, 1, 6), (1, 0, 1)]);
    }
}
