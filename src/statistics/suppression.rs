//! Cell suppression for published tables of counts.
//!
//! A table is rows × columns of counts published with its row totals, column totals and grand
//! total. Seen as one `(R+1) × (C+1)` grid (the totals as an extra column and row), every line
//! of the grid is an equation: its cells add up to its total. A count from 1 to `minimum - 1`
//! is hidden (primary suppression). Then more cells are hidden (complementary suppression) until
//! no hidden cell can be worked out from what is shown:
//!
//! - no line holds exactly one hidden cell (else it is its total minus the others), and
//! - no hidden cell is a *bridge* of the graph whose nodes are the lines and whose edges are
//!   the hidden cells: adding up the equations of the lines on one side of a bridge gives its
//!   value exactly. A hidden cell lies on a cycle of hidden cells iff it is not a bridge, and
//!   then its value can move along the cycle (+1, −1, …) with every total unchanged.
//!
//! Complements are chosen smallest first among non-zero inner cells, so as little as possible
//! disappears; totals only when a line has nothing else. This guards against exact
//! recomputation, the published meaning of 秘匿; it does not promise intervals (a hidden cell
//! is still known to lie between 0 and its row total).

/// Which cells of the `(R+1) × (C+1)` grid are hidden: `hidden[r][c]` for an inner cell,
/// `hidden[r][C]` for row `r`'s total, `hidden[R][c]` for column `c`'s, `hidden[R][C]` for the
/// grand total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub hidden: Vec<Vec<bool>>,
}

impl Mask {
    pub fn cell(&self, row: usize, column: usize) -> bool {
        self.hidden[row][column]
    }

    pub fn row_total(&self, row: usize) -> bool {
        let columns = self.hidden[row].len() - 1;
        self.hidden[row][columns]
    }

    pub fn column_total(&self, column: usize) -> bool {
        self.hidden[self.hidden.len() - 1][column]
    }

    pub fn grand_total(&self) -> bool {
        let last = self.hidden.len() - 1;
        self.hidden[last][self.hidden[last].len() - 1]
    }

    pub fn count(&self) -> usize {
        self.hidden
            .iter()
            .flatten()
            .filter(|hidden| **hidden)
            .count()
    }
}

/// The grid with its totals: `values` is rows × columns (every row the same length).
pub fn with_totals(values: &[Vec<i64>]) -> Vec<Vec<i64>> {
    let columns = values.first().map_or(0, Vec::len);
    let mut grid: Vec<Vec<i64>> = values
        .iter()
        .map(|row| {
            let mut line = row.clone();
            line.push(row.iter().sum());
            line
        })
        .collect();
    let totals: Vec<i64> = (0..=columns)
        .map(|column| grid.iter().map(|row| row[column]).sum())
        .collect();
    grid.push(totals);
    grid
}

fn sensitive(value: i64, minimum: i64) -> bool {
    value > 0 && value < minimum
}

/// Hides the small cells of `values` (and of its totals) and their complements.
pub fn suppress(values: &[Vec<i64>], minimum: i64) -> Mask {
    suppress_with(values, minimum, None)
}

/// As [`suppress`], with cells that must be hidden whatever their value (`forced`, the shape of
/// the grid with totals): a share's numerator where its denominator is hidden.
pub fn suppress_with(values: &[Vec<i64>], minimum: i64, forced: Option<&Mask>) -> Mask {
    let grid = with_totals(values);
    let rows = grid.len();
    let columns = grid[0].len();
    let mut hidden: Vec<Vec<bool>> = grid
        .iter()
        .enumerate()
        .map(|(r, row)| {
            row.iter()
                .enumerate()
                .map(|(c, value)| {
                    sensitive(*value, minimum) || forced.is_some_and(|mask| mask.hidden[r][c])
                })
                .collect()
        })
        .collect();
    if rows < 2 || columns < 2 {
        return Mask { hidden };
    }
    // Cheapest complement first: an inner cell before a total, one that also mends its
    // crossing line (which holds a single hidden cell) before one that does not, a non-zero
    // before a zero, a small count before a large one.
    let cost = |hidden: &[Vec<bool>], row: usize, column: usize| {
        let total = row == rows - 1 || column == columns - 1;
        let value = grid[row][column];
        let in_row = hidden[row].iter().filter(|h| **h).count();
        let in_column = hidden.iter().filter(|line| line[column]).count();
        let mends = u8::from(in_row == 1) + u8::from(in_column == 1);
        (u8::from(total), 2 - mends, u8::from(value == 0), value)
    };
    loop {
        if let Some((row, column)) = lonely_cell_fix(&hidden, &cost) {
            hidden[row][column] = true;
            continue;
        }
        if let Some((row, column)) = bridge_fix(&hidden, &cost) {
            hidden[row][column] = true;
            continue;
        }
        return Mask { hidden };
    }
}

type Cost = (u8, u8, u8, i64);

/// A cell to hide in the first line that has exactly one hidden cell.
fn lonely_cell_fix(
    hidden: &[Vec<bool>],
    cost: &impl Fn(&[Vec<bool>], usize, usize) -> Cost,
) -> Option<(usize, usize)> {
    let rows = hidden.len();
    let columns = hidden[0].len();
    for row in 0..rows {
        if hidden[row].iter().filter(|h| **h).count() == 1 {
            return (0..columns)
                .filter(|column| !hidden[row][*column])
                .min_by_key(|column| cost(hidden, row, *column))
                .map(|column| (row, column));
        }
    }
    for column in 0..columns {
        if (0..rows).filter(|row| hidden[*row][column]).count() == 1 {
            return (0..rows)
                .filter(|row| !hidden[*row][column])
                .min_by_key(|row| cost(hidden, *row, column))
                .map(|row| (row, column));
        }
    }
    None
}

/// Nodes `0..rows` are row lines, `rows..rows + columns` column lines; each hidden cell is an
/// edge. The nodes reachable from `start` without using the edge `skip`.
fn reachable(hidden: &[Vec<bool>], start: usize, skip: (usize, usize)) -> Vec<bool> {
    let rows = hidden.len();
    let columns = hidden[0].len();
    let mut seen = vec![false; rows + columns];
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(node) = stack.pop() {
        let neighbours: Vec<usize> = if node < rows {
            (0..columns)
                .filter(|column| hidden[node][*column] && (node, *column) != skip)
                .map(|column| rows + column)
                .collect()
        } else {
            let column = node - rows;
            (0..rows)
                .filter(|row| hidden[*row][column] && (*row, column) != skip)
                .collect()
        };
        for next in neighbours {
            if !seen[next] {
                seen[next] = true;
                stack.push(next);
            }
        }
    }
    seen
}

/// The hidden cells that are bridges (each could be worked out exactly), in order: Tarjan's
/// low-link search, linear in the size of the graph.
pub fn bridges(hidden: &[Vec<bool>]) -> Vec<(usize, usize)> {
    struct Search {
        adjacency: Vec<Vec<(usize, (usize, usize))>>,
        order: Vec<usize>,
        low: Vec<usize>,
        next: usize,
        found: Vec<(usize, usize)>,
    }
    fn visit(search: &mut Search, node: usize, via: Option<(usize, usize)>) {
        search.order[node] = search.next;
        search.low[node] = search.next;
        search.next += 1;
        for index in 0..search.adjacency[node].len() {
            let (neighbour, edge) = search.adjacency[node][index];
            if via == Some(edge) {
                continue;
            }
            if search.order[neighbour] == usize::MAX {
                visit(search, neighbour, Some(edge));
                search.low[node] = search.low[node].min(search.low[neighbour]);
                if search.low[neighbour] > search.order[node] {
                    search.found.push(edge);
                }
            } else {
                search.low[node] = search.low[node].min(search.order[neighbour]);
            }
        }
    }
    let rows = hidden.len();
    let columns = hidden.first().map_or(0, Vec::len);
    let mut search = Search {
        adjacency: vec![Vec::new(); rows + columns],
        order: vec![usize::MAX; rows + columns],
        low: vec![0; rows + columns],
        next: 0,
        found: Vec::new(),
    };
    for (row, line) in hidden.iter().enumerate() {
        for (column, is_hidden) in line.iter().enumerate() {
            if *is_hidden {
                search.adjacency[row].push((rows + column, (row, column)));
                search.adjacency[rows + column].push((row, (row, column)));
            }
        }
    }
    for node in 0..rows + columns {
        if search.order[node] == usize::MAX {
            visit(&mut search, node, None);
        }
    }
    search.found.sort_unstable();
    search.found
}

/// For the first bridge (r, c): the cheapest shown cell joining a row on c's side to a column
/// on r's side, which closes a cycle through the bridge.
fn bridge_fix(
    hidden: &[Vec<bool>],
    cost: &impl Fn(&[Vec<bool>], usize, usize) -> Cost,
) -> Option<(usize, usize)> {
    let rows = hidden.len();
    let columns = hidden[0].len();
    let (row, column) = *bridges(hidden).first()?;
    let row_side = reachable(hidden, row, (row, column));
    let column_side = reachable(hidden, rows + column, (row, column));
    let mut best: Option<(Cost, (usize, usize))> = None;
    for candidate_row in (0..rows).filter(|r| column_side[*r]) {
        for candidate_column in (0..columns).filter(|c| row_side[rows + c]) {
            if hidden[candidate_row][candidate_column] {
                continue;
            }
            let candidate_cost = cost(hidden, candidate_row, candidate_column);
            if best.is_none_or(|(current, _)| candidate_cost < current) {
                best = Some((candidate_cost, (candidate_row, candidate_column)));
            }
        }
    }
    best.map(|(_, cell)| cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hidden cells of `grid` that the shown cells and the line equations determine
    /// exactly: Gaussian elimination over the unknowns (the equations have ±1 coefficients and
    /// the tables are small, so f64 is exact enough).
    fn determined(grid: &[Vec<i64>], hidden: &[Vec<bool>]) -> Vec<(usize, usize)> {
        let rows = grid.len();
        let columns = grid[0].len();
        let unknowns: Vec<(usize, usize)> = (0..rows)
            .flat_map(|r| (0..columns).map(move |c| (r, c)))
            .filter(|(r, c)| hidden[*r][*c])
            .collect();
        let index = |cell: (usize, usize)| unknowns.iter().position(|u| *u == cell);
        // One equation per line: inner cells minus the total = 0.
        let mut equations: Vec<Vec<f64>> = Vec::new();
        for row in 0..rows {
            let mut equation = vec![0.0; unknowns.len()];
            for column in 0..columns {
                let sign = if column == columns - 1 { -1.0 } else { 1.0 };
                if let Some(i) = index((row, column)) {
                    equation[i] += sign;
                }
            }
            equations.push(equation);
        }
        for column in 0..columns {
            let mut equation = vec![0.0; unknowns.len()];
            for row in 0..rows {
                let sign = if row == rows - 1 { -1.0 } else { 1.0 };
                if let Some(i) = index((row, column)) {
                    equation[i] += sign;
                }
            }
            equations.push(equation);
        }
        // Reduced row echelon form.
        let mut pivots = Vec::new();
        let mut top = 0;
        for variable in 0..unknowns.len() {
            let Some(pivot) = (top..equations.len()).find(|e| equations[*e][variable].abs() > 1e-9)
            else {
                continue;
            };
            equations.swap(top, pivot);
            let scale = equations[top][variable];
            for value in &mut equations[top] {
                *value /= scale;
            }
            for other in 0..equations.len() {
                if other != top && equations[other][variable].abs() > 1e-9 {
                    let factor = equations[other][variable];
                    let pivot_row = equations[top].clone();
                    for (value, p) in equations[other].iter_mut().zip(pivot_row) {
                        *value -= factor * p;
                    }
                }
            }
            pivots.push((top, variable));
            top += 1;
        }
        // A variable is fixed iff it is a pivot whose row has no free variable in it.
        let pivot_variables: Vec<usize> = pivots.iter().map(|(_, v)| *v).collect();
        pivots
            .iter()
            .filter(|(row, _)| {
                (0..unknowns.len())
                    .filter(|v| !pivot_variables.contains(v))
                    .all(|free| equations[*row][free].abs() < 1e-9)
            })
            .map(|(_, variable)| unknowns[*variable])
            .collect()
    }

    fn check(values: &[Vec<i64>], minimum: i64) -> Mask {
        let mask = suppress(values, minimum);
        let grid = with_totals(values);
        for (r, row) in grid.iter().enumerate() {
            for (c, value) in row.iter().enumerate() {
                if sensitive(*value, minimum) {
                    assert!(
                        mask.hidden[r][c],
                        "small cell ({r},{c})={value} shown in {values:?}"
                    );
                }
            }
        }
        let exposed = determined(&grid, &mask.hidden);
        assert!(
            exposed.is_empty(),
            "cells {exposed:?} can be recomputed in {values:?} / {mask:?}"
        );
        mask
    }

    #[test]
    fn a_cell_of_nine_is_hidden_with_its_complements() {
        let values = vec![vec![9, 40, 55], vec![30, 25, 60], vec![70, 12, 33]];
        let mask = check(&values, 10);
        assert!(mask.cell(0, 0));
        // Its row and its column each lose another cell: the smallest others.
        assert!(
            mask.cell(0, 1),
            "row complement: 40 is the smallest other in row 0"
        );
        assert!(
            mask.cell(1, 0),
            "column complement: 30 is the smallest other in column 0"
        );
        // …and the cycle closes on (1, 1), so no total is touched.
        assert!(mask.cell(1, 1));
        assert_eq!(mask.count(), 4);
        assert!(!mask.grand_total() && !mask.row_total(0) && !mask.column_total(0));
    }

    #[test]
    fn forced_cells_are_hidden_and_protected() {
        let values = vec![vec![40, 50, 60], vec![30, 25, 70]];
        let mut forced = suppress(&[vec![0, 0, 0], vec![0, 0, 0]], 10);
        forced.hidden[0][2] = true;
        let mask = suppress_with(&values, 10, Some(&forced));
        assert!(mask.cell(0, 2));
        assert!(determined(&with_totals(&values), &mask.hidden).is_empty());
        assert!(mask.count() >= 4);
    }

    #[test]
    fn nothing_small_nothing_hidden() {
        let mask = check(&[vec![10, 20], vec![30, 40]], 10);
        assert_eq!(mask.count(), 0);
    }

    #[test]
    fn zeros_are_not_sensitive() {
        let mask = check(&[vec![0, 20], vec![30, 0]], 10);
        assert_eq!(mask.count(), 0);
    }

    #[test]
    fn a_row_with_one_count_hides_its_total_too() {
        // Row 0's only count is small: its total equals it, so the total goes as well.
        let values = vec![vec![0, 3, 0], vec![15, 20, 25], vec![18, 11, 40]];
        let mask = check(&values, 10);
        assert!(mask.cell(0, 1));
        assert!(mask.row_total(0), "the row total is the cell");
    }

    #[test]
    fn a_small_total_is_hidden() {
        let values = vec![vec![4, 4], vec![20, 30]];
        let mask = check(&values, 10);
        assert!(mask.row_total(0));
        assert!(mask.cell(0, 0) && mask.cell(0, 1));
    }

    #[test]
    fn a_single_column_table() {
        let values = vec![vec![5], vec![50], vec![60]];
        let mask = check(&values, 10);
        assert!(mask.cell(0, 0));
    }

    #[test]
    fn a_single_row_table() {
        let values = vec![vec![5, 50, 60]];
        let mask = check(&values, 10);
        assert!(mask.cell(0, 0));
    }

    #[test]
    fn two_small_cells_in_one_row_still_need_column_complements() {
        let values = vec![vec![3, 4, 100], vec![50, 60, 70], vec![80, 90, 20]];
        check(&values, 10);
    }

    #[test]
    fn a_bridge_between_two_cycles_is_closed() {
        // Two blocks of small cells sharing no line would be safe; joined by one hidden cell
        // they make it a bridge, which the algorithm must not leave.
        let hidden = vec![
            vec![true, true, false, false, false],
            vec![true, true, true, false, false],
            vec![false, false, true, true, false],
            vec![false, false, true, true, false],
            vec![false, false, false, false, false],
        ];
        assert_eq!(bridges(&hidden), vec![(1, 2)]);
    }

    #[test]
    fn many_generated_tables_leave_nothing_recomputable() {
        // A small linear congruential generator: deterministic, many shapes, many small counts.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        for _ in 0..300 {
            let rows = 1 + next(6) as usize;
            let columns = 1 + next(6) as usize;
            let values: Vec<Vec<i64>> = (0..rows)
                .map(|_| {
                    (0..columns)
                        .map(|_| match next(4) {
                            0 => 0,
                            1 => 1 + next(9) as i64,
                            _ => 10 + next(90) as i64,
                        })
                        .collect()
                })
                .collect();
            check(&values, 10);
        }
    }
}
