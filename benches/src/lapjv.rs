//! The benchmark's reference optimum: an exact dense rectangular assignment solver
//! (shortest augmenting paths with potentials, as in Jonker-Volgenant and the Hungarian method),
//! independent of the matcher's own solver so that it can check it.
//!
//! Objective: assign as many rows as possible, then minimise the total cost; each column is used
//! at most once. Forbidden cells get a penalty `BIG` larger than any sum of real costs, so a
//! full assignment of the smaller side minimises first the number of penalised cells (which is
//! the number of rows left unassigned by a maximum matching) and then the real cost.

/// A dense `rows × cols` cost matrix; `None` cells are forbidden.
#[derive(Clone, Debug, PartialEq)]
pub struct CostMatrix {
    rows: usize,
    cols: usize,
    /// Row-major; [`FORBIDDEN`] marks forbidden cells.
    cells: Vec<i64>,
}

/// The sentinel of a forbidden cell.
const FORBIDDEN: i64 = i64::MAX;

/// Real costs must lie within ±`COST_LIMIT` so that the penalties cannot overflow.
pub const COST_LIMIT: i64 = 1 << 40;

impl CostMatrix {
    /// A matrix with every cell forbidden.
    pub fn forbidden(rows: usize, cols: usize) -> Self {
        CostMatrix {
            rows,
            cols,
            cells: vec![FORBIDDEN; rows * cols],
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Sets a cell; panics when the cost is outside ±[`COST_LIMIT`] or the cell is outside.
    pub fn set(&mut self, row: usize, col: usize, cost: Option<i64>) {
        assert!(
            row < self.rows && col < self.cols,
            "cell ({row}, {col}) is outside"
        );
        self.cells[row * self.cols + col] = match cost {
            Some(c) => {
                assert!(c.abs() <= COST_LIMIT, "cost {c} is beyond ±2^40");
                c
            }
            None => FORBIDDEN,
        };
    }

    /// A cell (`None`: forbidden).
    pub fn get(&self, row: usize, col: usize) -> Option<i64> {
        let c = self.cells[row * self.cols + col];
        (c != FORBIDDEN).then_some(c)
    }

    /// A whole row, copied from another (rows of one order's slots are equal).
    pub fn copy_row(&mut self, from: usize, to: usize) {
        let cols = self.cols;
        self.cells
            .copy_within(from * cols..(from + 1) * cols, to * cols);
    }
}

/// An optimal assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Solution {
    /// The column of each row, if assigned.
    pub row_to_col: Vec<Option<usize>>,
    /// Rows assigned (the maximum possible).
    pub assigned: usize,
    /// Total cost of the assigned cells (the least among maximum assignments).
    pub cost: i64,
}

const NONE: usize = usize::MAX;
const INF: i64 = i64::MAX / 4;

/// Solves the assignment exactly. Time `O(n² m)` in the worst case for `n = min(rows, cols)`
/// and `m = max(rows, cols)`, much less when most rows find a free cheap column quickly; memory
/// one `i64` per cell.
pub fn solve(costs: &CostMatrix) -> Solution {
    let mut solution = Solution {
        row_to_col: vec![None; costs.rows],
        assigned: 0,
        cost: 0,
    };
    let real = costs.cells.iter().copied().filter(|&c| c != FORBIDDEN);
    let Some((lo, hi)) = real.fold(None, |acc: Option<(i64, i64)>, c| match acc {
        None => Some((c, c)),
        Some((lo, hi)) => Some((lo.min(c), hi.max(c))),
    }) else {
        return solution;
    };
    // The smaller side is the one fully assigned.
    let transposed = costs.rows > costs.cols;
    let (n, m) = if transposed {
        (costs.cols, costs.rows)
    } else {
        (costs.rows, costs.cols)
    };
    // Shifted costs are in 0..=span; BIG exceeds any sum of n of them.
    let span = hi - lo;
    let big = (span + 1) * n as i64 + 1;
    assert!(
        big.checked_mul(2 * n as i64 + 2).is_some(),
        "matrix too large for i64 penalties"
    );
    let mut a = vec![0i64; n * m];
    for r in 0..costs.rows {
        for c in 0..costs.cols {
            let x = costs.cells[r * costs.cols + c];
            let shifted = if x == FORBIDDEN { big } else { x - lo };
            let (i, j) = if transposed { (c, r) } else { (r, c) };
            a[i * m + j] = shifted;
        }
    }
    let col_of = shortest_augmenting_paths(&a, n, m);
    for (i, &j) in col_of.iter().enumerate() {
        let (r, c) = if transposed { (j, i) } else { (i, j) };
        if let Some(x) = costs.get(r, c) {
            solution.row_to_col[r] = Some(c);
            solution.assigned += 1;
            solution.cost += x;
        }
    }
    solution
}

/// Minimum-cost assignment of all `n` rows of `a` (`n × m`, `n <= m`, non-negative) to
/// distinct columns. Invariant: reduced costs `a[i][j] - u[i] - v[j]` are non-negative, zero on
/// assigned cells, and `v` is zero on unassigned columns, which makes a full assignment optimal
/// for the rectangular problem.
fn shortest_augmenting_paths(a: &[i64], n: usize, m: usize) -> Vec<usize> {
    let mut u = vec![0i64; n];
    let mut v = vec![0i64; m + 1];
    // row_on[j]: the row assigned to column j; column m is the search root.
    let mut row_on = vec![NONE; m + 1];
    let mut col_of = vec![NONE; n];
    // Start: each row's potential is its minimum; a row whose cheapest column is still free
    // takes it (the cell is tight and every other reduced cost is non-negative).
    for i in 0..n {
        let row = &a[i * m..(i + 1) * m];
        let (mut best_j, mut best) = (0, row[0]);
        for (j, &c) in row.iter().enumerate() {
            if c < best {
                (best_j, best) = (j, c);
            }
        }
        u[i] = best;
        if row_on[best_j] == NONE {
            row_on[best_j] = i;
            col_of[i] = best_j;
        }
    }
    let mut way = vec![m; m + 1];
    let mut minv = vec![INF; m + 1];
    let mut used = vec![false; m + 1];
    let mut used_list: Vec<usize> = Vec::new();
    // Rows once assigned stay assigned (perhaps elsewhere), so only these need a search.
    let unassigned: Vec<usize> = (0..n).filter(|&i| col_of[i] == NONE).collect();
    for i in unassigned {
        // Dijkstra over columns from row i, on reduced costs.
        row_on[m] = i;
        let mut j0 = m;
        minv.fill(INF);
        for &j in &used_list {
            used[j] = false;
        }
        used_list.clear();
        loop {
            used[j0] = true;
            used_list.push(j0);
            let i0 = row_on[j0];
            let row = &a[i0 * m..(i0 + 1) * m];
            let ui = u[i0];
            let mut delta = INF;
            let mut j1 = m;
            for j in 0..m {
                if !used[j] {
                    let cur = row[j] - ui - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for &j in &used_list {
                u[row_on[j]] += delta;
                v[j] -= delta;
            }
            for j in 0..m {
                if !used[j] {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if row_on[j0] == NONE {
                break;
            }
        }
        // Augment along the path back to the root.
        loop {
            let j1 = way[j0];
            row_on[j0] = row_on[j1];
            j0 = j1;
            if j0 == m {
                break;
            }
        }
    }
    for (j, &r) in row_on.iter().enumerate().take(m) {
        if r != NONE {
            col_of[r] = j;
        }
    }
    col_of
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splitmix::SplitMix64;

    /// Best (assigned, cost) over every partial injective assignment, by enumeration.
    fn brute_force(m: &CostMatrix) -> (usize, i64) {
        fn go(
            m: &CostMatrix,
            r: usize,
            used: &mut Vec<bool>,
            count: usize,
            cost: i64,
            best: &mut (usize, i64),
        ) {
            if r == m.rows() {
                if count > best.0 || (count == best.0 && cost < best.1) {
                    *best = (count, cost);
                }
                return;
            }
            go(m, r + 1, used, count, cost, best);
            for c in 0..m.cols() {
                if let (false, Some(x)) = (used[c], m.get(r, c)) {
                    used[c] = true;
                    go(m, r + 1, used, count + 1, cost + x, best);
                    used[c] = false;
                }
            }
        }
        let mut best = (0, 0);
        go(m, 0, &mut vec![false; m.cols()], 0, 0, &mut best);
        best
    }

    fn random_matrix(rng: &mut SplitMix64, rows: usize, cols: usize) -> CostMatrix {
        let forbidden = rng.next_f64() * 0.8;
        let negative = rng.chance(0.2);
        let mut m = CostMatrix::forbidden(rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                if !rng.chance(forbidden) {
                    let x = rng.range_i64(0, 30) - if negative { 15 } else { 0 };
                    m.set(r, c, Some(x));
                }
            }
        }
        m
    }

    fn check_valid(m: &CostMatrix, s: &Solution) {
        let mut seen = vec![false; m.cols()];
        let mut cost = 0;
        for (r, c) in s.row_to_col.iter().enumerate() {
            if let Some(c) = *c {
                assert!(!seen[c], "column {c} used twice");
                seen[c] = true;
                cost += m.get(r, c).expect("a forbidden cell was assigned");
            }
        }
        assert_eq!(s.row_to_col.iter().flatten().count(), s.assigned);
        assert_eq!(cost, s.cost);
    }

    #[test]
    fn agrees_with_brute_force_on_small_matrices() {
        let mut rng = SplitMix64::new(2024);
        for case in 0..3_000 {
            let rows = rng.index(6);
            let cols = rng.index(6);
            let m = random_matrix(&mut rng, rows, cols);
            let s = solve(&m);
            check_valid(&m, &s);
            assert_eq!((s.assigned, s.cost), brute_force(&m), "case {case}: {m:?}");
        }
    }

    #[test]
    fn prefers_more_assignments_over_lower_cost() {
        // Row 0 alone would take column 0 (cost 1); assigning both rows costs 1000 + 1000.
        let mut m = CostMatrix::forbidden(2, 2);
        m.set(0, 0, Some(1));
        m.set(0, 1, Some(1000));
        m.set(1, 0, Some(1000));
        let s = solve(&m);
        assert_eq!((s.assigned, s.cost), (2, 2000));
        assert_eq!(s.row_to_col, vec![Some(1), Some(0)]);
    }

    #[test]
    fn handles_empty_and_all_forbidden_matrices() {
        for (r, c) in [(0, 0), (0, 3), (3, 0), (2, 2)] {
            let s = solve(&CostMatrix::forbidden(r, c));
            assert_eq!((s.assigned, s.cost, s.row_to_col.len()), (0, 0, r));
        }
    }

    #[test]
    fn a_larger_sparse_instance_matches_a_greedy_lower_bound_check() {
        // 60 × 300 with equal rows in groups (like slots of one order): valid and never worse
        // than assigning each row its cheapest free column in turn.
        let mut rng = SplitMix64::new(5);
        let mut m = CostMatrix::forbidden(60, 300);
        for r in 0..60 {
            if r % 3 == 0 {
                for c in 0..300 {
                    if rng.chance(0.1) {
                        m.set(r, c, Some(rng.range_i64(0, 10_000)));
                    }
                }
            } else {
                m.copy_row(r - 1, r);
            }
        }
        let s = solve(&m);
        check_valid(&m, &s);
        let mut used = [false; 300];
        let (mut count, mut cost) = (0, 0);
        for r in 0..60 {
            let best = (0..300)
                .filter(|&c| !used[c])
                .filter_map(|c| m.get(r, c).map(|x| (x, c)))
                .min();
            if let Some((x, c)) = best {
                used[c] = true;
                count += 1;
                cost += x;
            }
        }
        assert!(s.assigned > count || (s.assigned == count && s.cost <= cost));
    }
}
