//! KDA's table functions, called as `FROM TABLE(F(CURSOR(SELECT STREAM ...), params...))`:
//! `TOP_K_ITEMS_TUMBLING`, `COUNT_DISTINCT_ITEMS_TUMBLING`, `HOTSPOTS`, `RANDOM_CUT_FOREST` and
//! `RANDOM_CUT_FOREST_WITH_EXPLANATION`. Each is a stateful operator over the cursor's rows.
//!
//! Tumbling functions emit when the clock reaches the end of their window (windows are aligned
//! to multiples of the window size, as STEP windows are), with the window end as ROWTIME.
//! Per-row functions (RCF, HOTSPOTS) append their columns to each row at once.

use crate::ast::Expr;
use crate::error::{Span, SqlError};
use crate::exec::Row;
use crate::plan::Column;
use crate::value::{SqlType, Value};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
pub enum TableOp {
    TopK(TopK),
    CountDistinct(CountDistinct),
    Hotspots(Box<Hotspots>),
    Rcf(Box<Rcf>),
}

/// A numeric literal argument, with its position for errors.
fn number(args: &[Expr], i: usize, name: &str, what: &str, span: Span) -> Result<f64, SqlError> {
    use crate::ast::ExprKind;
    let a = args.get(i).ok_or_else(|| {
        SqlError::typ(
            span,
            format!("Invalid number of arguments to function '{name}': {what} is missing"),
        )
    })?;
    let v = match &a.kind {
        ExprKind::Literal(Value::Integer(n), _) => *n as f64,
        ExprKind::Literal(Value::Double(d), _) => *d,
        ExprKind::Neg(x) => match &x.kind {
            ExprKind::Literal(Value::Integer(n), _) => -(*n as f64),
            ExprKind::Literal(Value::Double(d), _) => -*d,
            _ => f64::NAN,
        },
        _ => f64::NAN,
    };
    if v.is_nan() {
        return Err(SqlError::typ(
            a.span,
            format!("Parameter '{what}' of '{name}' must be a numeric literal"),
        ));
    }
    Ok(v)
}

/// A numeric parameter within `(lo, hi)`, or `default` when it is left out.
fn in_range(
    args: &[Expr],
    i: usize,
    name: &str,
    what: &str,
    (lo, hi, default): (f64, f64, Option<f64>),
    span: Span,
) -> Result<f64, SqlError> {
    if args.get(i).is_none() {
        if let Some(d) = default {
            return Ok(d);
        }
    }
    let v = number(args, i, name, what, span)?;
    if v < lo || v > hi {
        return Err(SqlError::semantic(
            args[i].span,
            format!("Parameter '{what}' of '{name}' must be between {lo} and {hi}, not {v}"),
        ));
    }
    Ok(v)
}

/// `'columnName'`: a string literal naming a column of the cursor.
fn column_arg(
    args: &[Expr],
    i: usize,
    name: &str,
    cols: &[Column],
    span: Span,
) -> Result<usize, SqlError> {
    use crate::ast::ExprKind;
    let a = args.get(i).ok_or_else(|| {
        SqlError::typ(
            span,
            format!("Invalid number of arguments to function '{name}': columnName is missing"),
        )
    })?;
    let ExprKind::Literal(Value::Varchar(col), _) = &a.kind else {
        return Err(SqlError::typ(
            a.span,
            format!("Parameter 'columnName' of '{name}' must be a column name in single quotes"),
        ));
    };
    cols.iter().position(|c| c.name == *col).ok_or_else(|| {
        let hint = cols
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(col))
            .map(|c| format!("; did you mean '{}'?", c.name))
            .unwrap_or_default();
        SqlError::unknown(
            a.span,
            format!("Column '{col}' not found in any table{hint}"),
        )
    })
}

fn numeric_dims(name: &str, cols: &[Column], span: Span) -> Result<Vec<usize>, SqlError> {
    if let Some(c) = cols.iter().find(|c| matches!(c.ty, SqlType::Decimal(..))) {
        return Err(SqlError::typ(
            span,
            format!(
                "'{name}' does not accept DECIMAL column '{}'; cast it to DOUBLE",
                c.name
            ),
        ));
    }
    let dims: Vec<usize> = (0..cols.len())
        .filter(|i| cols[*i].ty.is_numeric())
        .collect();
    if dims.is_empty() {
        return Err(SqlError::typ(
            span,
            format!("'{name}' needs at least one numeric column in its cursor"),
        ));
    }
    Ok(dims)
}

/// Checks a table function's parameters against the cursor's columns and returns the operator
/// and the function's output columns.
pub fn plan(
    name: &str,
    args: &[Expr],
    cols: &[Column],
    span: Span,
) -> Result<(TableOp, Vec<Column>), SqlError> {
    let max_args = |n: usize| -> Result<(), SqlError> {
        match args.get(n) {
            Some(extra) => Err(SqlError::typ(
                extra.span,
                format!("Invalid number of arguments to function '{name}'. Was expecting at most {} arguments", n + 1),
            )),
            None => Ok(()),
        }
    };
    match name {
        "TOP_K_ITEMS_TUMBLING" => {
            max_args(3)?;
            let column = column_arg(args, 0, name, cols, span)?;
            let k = in_range(args, 1, name, "K", (1.0, 100_000.0, None), span)? as usize;
            let window = in_range(args, 2, name, "windowSize", (1.0, 3600.0, None), span)?;
            let out = vec![
                cols[column].clone(),
                Column::new("MOST_FREQUENT_VALUES", SqlType::BigInt),
            ];
            Ok((
                TableOp::TopK(TopK {
                    column,
                    k,
                    window_ms: (window * 1000.0) as i64,
                    windows: Vec::new(),
                }),
                out,
            ))
        }
        "COUNT_DISTINCT_ITEMS_TUMBLING" => {
            max_args(2)?;
            let column = column_arg(args, 0, name, cols, span)?;
            let window = in_range(args, 1, name, "windowSize", (1.0, 3600.0, None), span)?;
            Ok((
                TableOp::CountDistinct(CountDistinct {
                    column,
                    window_ms: (window * 1000.0) as i64,
                    windows: Vec::new(),
                }),
                vec![Column::new("NUMBER_OF_DISTINCT_ITEMS", SqlType::BigInt)],
            ))
        }
        "HOTSPOTS" => {
            max_args(3)?;
            let dims = numeric_dims(name, cols, span)?;
            let window = in_range(args, 0, name, "windowSize", (1.0, 1_000_000.0, None), span)?;
            let radius = number(args, 1, name, "scanRadius", span)?;
            if radius <= 0.0 {
                return Err(SqlError::semantic(
                    args[1].span,
                    format!("Parameter 'scanRadius' of '{name}' must be positive"),
                ));
            }
            let min_points = in_range(
                args,
                2,
                name,
                "minimumNumberOfPointsInAHotspot",
                (2.0, 1_000_000.0, Some(2.0)),
                span,
            )?;
            let mut out = cols.to_vec();
            out.push(Column::new("HOTSPOTS_RESULT", SqlType::Varchar(10_000)));
            Ok((
                TableOp::Hotspots(Box::new(Hotspots {
                    dims,
                    window: window as usize,
                    radius,
                    min_points: min_points as usize,
                    points: Default::default(),
                    cells: HashMap::new(),
                    around: HashMap::new(),
                })),
                out,
            ))
        }
        "RANDOM_CUT_FOREST" | "RANDOM_CUT_FOREST_WITH_EXPLANATION" => {
            let explain = name == "RANDOM_CUT_FOREST_WITH_EXPLANATION";
            max_args(if explain { 5 } else { 4 })?;
            let dims = numeric_dims(name, cols, span)?;
            let trees = in_range(
                args,
                0,
                name,
                "numberOfTrees",
                (1.0, 1000.0, Some(100.0)),
                span,
            )?;
            let sample = in_range(
                args,
                1,
                name,
                "subSampleSize",
                (10.0, 1000.0, Some(256.0)),
                span,
            )?;
            let decay = in_range(
                args,
                2,
                name,
                "timeDecay",
                (1.0, 2_147_483_647.0, Some(100_000.0)),
                span,
            )?;
            let shingle = in_range(args, 3, name, "shingleSize", (1.0, 30.0, Some(1.0)), span)?;
            if sample >= decay {
                return Err(SqlError::semantic(
                    args.get(2).map(|a| a.span).unwrap_or(span),
                    format!("Parameter 'subSampleSize' of '{name}' must be less than 'timeDecay'"),
                ));
            }
            let directional = match args.get(4) {
                None => false,
                Some(a) => match &a.kind {
                    crate::ast::ExprKind::Literal(Value::Boolean(b), _) => *b,
                    _ => {
                        return Err(SqlError::typ(
                            a.span,
                            format!(
                                "Parameter 'withDirectionality' of '{name}' must be TRUE or FALSE"
                            ),
                        ))
                    }
                },
            };
            let mut out = cols.to_vec();
            out.push(Column::new("ANOMALY_SCORE", SqlType::Double));
            if explain {
                out.push(Column::new("ANOMALY_EXPLANATION", SqlType::Varchar(20_480)));
            }
            let names = dims.iter().map(|d| cols[*d].name.clone()).collect();
            Ok((
                TableOp::Rcf(Box::new(Rcf::new(
                    dims,
                    names,
                    trees as usize,
                    sample as usize,
                    1.0 / decay,
                    shingle as usize,
                    explain.then_some(directional),
                ))),
                out,
            ))
        }
        _ => Err(SqlError::unknown(
            span,
            format!("No match found for function signature {name}(<CURSOR>, ...)"),
        )),
    }
}

impl TableOp {
    /// Rows the function yields for rows of its cursor.
    pub fn process(&mut self, rows: Vec<Row>, out: &mut Vec<Row>) {
        for row in rows {
            match self {
                TableOp::TopK(t) => {
                    let start = row.rowtime.div_euclid(t.window_ms) * t.window_ms;
                    let v = &row.values[t.column];
                    if v.is_null() {
                        continue;
                    }
                    let w = window_for(&mut t.windows, start, || SpaceSaving::new(t.k));
                    w.add(v);
                }
                TableOp::CountDistinct(c) => {
                    let start = row.rowtime.div_euclid(c.window_ms) * c.window_ms;
                    let v = &row.values[c.column];
                    if v.is_null() {
                        continue;
                    }
                    window_for(&mut c.windows, start, DistinctCounter::new).add(v);
                }
                TableOp::Hotspots(h) => out.push(h.row(row)),
                TableOp::Rcf(r) => out.push(r.row(row)),
            }
        }
    }

    /// Windows that end by `t` come out.
    pub fn close(&mut self, t: i64, out: &mut Vec<Row>) {
        match self {
            TableOp::TopK(top) => {
                let ms = top.window_ms;
                for (start, w) in take_closed(&mut top.windows, t, ms) {
                    for (item, count) in w.top(top.k) {
                        out.push(Row {
                            rowtime: start + ms,
                            values: vec![item, Value::Integer(count as i64)],
                        });
                    }
                }
            }
            TableOp::CountDistinct(c) => {
                let ms = c.window_ms;
                for (start, w) in take_closed(&mut c.windows, t, ms) {
                    out.push(Row {
                        rowtime: start + ms,
                        values: vec![Value::Integer(w.count() as i64)],
                    });
                }
            }
            TableOp::Hotspots(_) | TableOp::Rcf(_) => {}
        }
    }
}

fn window_for<T>(windows: &mut Vec<(i64, T)>, start: i64, new: impl FnOnce() -> T) -> &mut T {
    let i = match windows.iter().position(|(s, _)| *s == start) {
        Some(i) => i,
        None => {
            windows.push((start, new()));
            windows.len() - 1
        }
    };
    &mut windows[i].1
}

fn take_closed<T>(windows: &mut Vec<(i64, T)>, t: i64, ms: i64) -> Vec<(i64, T)> {
    let (closed, open): (Vec<_>, Vec<_>) = std::mem::take(windows)
        .into_iter()
        .partition(|(s, _)| s + ms <= t);
    *windows = open;
    closed
}

/// `TOP_K_ITEMS_TUMBLING`: Space-Saving heavy hitters per window (exact while the window has
/// at most `capacity` distinct items).
#[derive(Debug, Clone)]
pub struct TopK {
    column: usize,
    k: usize,
    window_ms: i64,
    windows: Vec<(i64, SpaceSaving)>,
}

impl TopK {
    /// The tumbling window's length.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }
}

#[derive(Debug, Clone)]
pub struct SpaceSaving {
    capacity: usize,
    /// Item key → (item, count, order of first arrival).
    counts: HashMap<String, (Value, u64, u64)>,
    seq: u64,
}

impl SpaceSaving {
    fn new(k: usize) -> Self {
        SpaceSaving {
            capacity: (k * 10).max(10_000),
            counts: HashMap::new(),
            seq: 0,
        }
    }

    fn add(&mut self, v: &Value) {
        self.seq += 1;
        let key = v.key();
        if let Some(e) = self.counts.get_mut(&key) {
            e.1 += 1;
            return;
        }
        if self.counts.len() < self.capacity {
            self.counts.insert(key, (v.clone(), 1, self.seq));
            return;
        }
        // Replace the least frequent item, inheriting its count (Space-Saving).
        let (victim, min) = self
            .counts
            .iter()
            .min_by_key(|(_, (_, c, s))| (*c, *s))
            .map(|(k, (_, c, _))| (k.clone(), *c))
            .expect("the table is full");
        self.counts.remove(&victim);
        self.counts.insert(key, (v.clone(), min + 1, self.seq));
    }

    /// The `k` most frequent items, most frequent first (ties by first arrival).
    fn top(&self, k: usize) -> Vec<(Value, u64)> {
        let mut all: Vec<&(Value, u64, u64)> = self.counts.values().collect();
        all.sort_by_key(|(_, c, s)| (std::cmp::Reverse(*c), *s));
        all.into_iter()
            .take(k)
            .map(|(v, c, _)| (v.clone(), *c))
            .collect()
    }
}

/// `COUNT_DISTINCT_ITEMS_TUMBLING`: exact up to 10,000 distinct items per window, then
/// HyperLogLog (2^14 registers, about 0.8 % standard error), as KDA documents.
#[derive(Debug, Clone)]
pub struct CountDistinct {
    column: usize,
    window_ms: i64,
    windows: Vec<(i64, DistinctCounter)>,
}

impl CountDistinct {
    /// The tumbling window's length.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }
}

const EXACT_LIMIT: usize = 10_000;
const HLL_BITS: u32 = 14;

#[derive(Debug, Clone)]
pub enum DistinctCounter {
    Exact(HashSet<u64>),
    Sketch(Vec<u8>),
}

impl DistinctCounter {
    fn new() -> Self {
        DistinctCounter::Exact(HashSet::new())
    }

    fn add(&mut self, v: &Value) {
        let h = hash64(v.key().as_bytes());
        match self {
            DistinctCounter::Exact(set) => {
                set.insert(h);
                if set.len() > EXACT_LIMIT {
                    let mut regs = vec![0u8; 1 << HLL_BITS];
                    for h in set.iter() {
                        hll_add(&mut regs, *h);
                    }
                    *self = DistinctCounter::Sketch(regs);
                }
            }
            DistinctCounter::Sketch(regs) => hll_add(regs, h),
        }
    }

    fn count(&self) -> u64 {
        match self {
            DistinctCounter::Exact(set) => set.len() as u64,
            DistinctCounter::Sketch(regs) => {
                let m = regs.len() as f64;
                let alpha = 0.7213 / (1.0 + 1.079 / m);
                let sum: f64 = regs.iter().map(|r| 2f64.powi(-(*r as i32))).sum();
                let estimate = alpha * m * m / sum;
                let zeros = regs.iter().filter(|r| **r == 0).count();
                if estimate <= 2.5 * m && zeros > 0 {
                    (m * (m / zeros as f64).ln()).round() as u64
                } else {
                    estimate.round() as u64
                }
            }
        }
    }
}

fn hll_add(regs: &mut [u8], h: u64) {
    let idx = (h >> (64 - HLL_BITS)) as usize;
    let rest = (h << HLL_BITS) | (1 << (HLL_BITS - 1));
    let rank = rest.leading_zeros() as u8 + 1;
    regs[idx] = regs[idx].max(rank);
}

/// FNV-1a followed by a SplitMix64 finaliser: stable across runs and platforms.
fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    mix(h)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small deterministic generator (SplitMix64), so forests are reproducible.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// `HOTSPOTS`: dense regions among the last `window` points. Points are binned into cells of
/// side `scanRadius`; a cell is dense when it and its neighbours hold at least
/// `minimumNumberOfPointsInAHotspot` points, and touching dense cells form one hotspot. Each
/// hotspot reports its bounds and its density relative to the window's points spread evenly
/// over their bounding box.
#[derive(Debug, Clone)]
pub struct Hotspots {
    dims: Vec<usize>,
    window: usize,
    radius: f64,
    min_points: usize,
    points: std::collections::VecDeque<(Vec<f64>, Vec<i64>)>,
    /// Points per occupied cell.
    cells: HashMap<Vec<i64>, usize>,
    /// Points in each cell's neighbourhood (itself and the cells around it), kept up to date
    /// as points come and go.
    around: HashMap<Vec<i64>, usize>,
}

impl Hotspots {
    fn row(&mut self, mut row: Row) -> Row {
        let point: Option<Vec<f64>> = self.dims.iter().map(|d| row.values[*d].as_f64()).collect();
        if let Some(p) = point {
            let cell: Vec<i64> = p.iter().map(|x| (x / self.radius).floor() as i64).collect();
            *self.cells.entry(cell.clone()).or_default() += 1;
            for n in Self::neighbours(&cell) {
                *self.around.entry(n).or_default() += 1;
            }
            self.points.push_back((p, cell));
            if self.points.len() > self.window {
                let (_, old) = self.points.pop_front().expect("longer than the window");
                if let Some(n) = self.cells.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        self.cells.remove(&old);
                    }
                }
                for n in Self::neighbours(&old) {
                    if let Some(k) = self.around.get_mut(&n) {
                        *k -= 1;
                        if *k == 0 {
                            self.around.remove(&n);
                        }
                    }
                }
            }
        }
        row.values.push(Value::Varchar(self.result()));
        row
    }

    fn neighbours(cell: &[i64]) -> Vec<Vec<i64>> {
        let mut out = vec![Vec::with_capacity(cell.len())];
        for c in cell {
            out = out
                .into_iter()
                .flat_map(|prefix| {
                    (-1..=1).map(move |d| {
                        let mut p = prefix.clone();
                        p.push(c + d);
                        p
                    })
                })
                .collect();
        }
        out
    }

    fn result(&self) -> String {
        let dense: HashSet<&Vec<i64>> = self
            .cells
            .keys()
            .filter(|c| self.around.get(*c).copied().unwrap_or(0) >= self.min_points)
            .collect();
        // Touching dense cells form one hotspot.
        let mut label: HashMap<&Vec<i64>, usize> = HashMap::new();
        let mut n_spots = 0;
        let mut cells: Vec<&&Vec<i64>> = dense.iter().collect();
        cells.sort();
        for start in cells {
            if label.contains_key(*start) {
                continue;
            }
            let mut stack = vec![*start];
            label.insert(start, n_spots);
            while let Some(c) = stack.pop() {
                for n in Self::neighbours(c) {
                    if let Some(nc) = dense.get(&n) {
                        if !label.contains_key(*nc) {
                            label.insert(nc, n_spots);
                            stack.push(nc);
                        }
                    }
                }
            }
            n_spots += 1;
        }
        let dim = self.dims.len();
        let mut all_min = vec![f64::INFINITY; dim];
        let mut all_max = vec![f64::NEG_INFINITY; dim];
        let mut spots = vec![
            (
                0usize,
                vec![f64::INFINITY; dim],
                vec![f64::NEG_INFINITY; dim]
            );
            n_spots
        ];
        let widen = |lo: &mut [f64], hi: &mut [f64], p: &[f64]| {
            for ((l, h), x) in lo.iter_mut().zip(hi.iter_mut()).zip(p) {
                *l = l.min(*x);
                *h = h.max(*x);
            }
        };
        for (p, cell) in &self.points {
            widen(&mut all_min, &mut all_max, p);
            if let Some(s) = label.get(cell) {
                let spot = &mut spots[*s];
                spot.0 += 1;
                widen(&mut spot.1, &mut spot.2, p);
            }
        }
        // Volumes use at least the scan radius per side, so a hotspot of identical points has
        // a finite density.
        let volume = |lo: &[f64], hi: &[f64]| -> f64 {
            lo.iter()
                .zip(hi)
                .map(|(l, h)| (h - l).max(self.radius))
                .product()
        };
        let total = self.points.len().max(1) as f64;
        let all_volume = volume(&all_min, &all_max);
        let mut list: Vec<serde_json::Value> = spots
            .into_iter()
            .filter(|(n, _, _)| *n >= self.min_points)
            .map(|(n, lo, hi)| {
                let density = (n as f64 / total) / (volume(&lo, &hi) / all_volume);
                let nums = |v: &[f64]| -> Vec<serde_json::Value> {
                    v.iter().map(|x| json_number(*x)).collect()
                };
                serde_json::json!({
                    "density": json_number(density),
                    "minValues": nums(&lo),
                    "maxValues": nums(&hi),
                })
            })
            .collect();
        list.sort_by(|a, b| {
            let d = |v: &serde_json::Value| v["density"].as_f64().unwrap_or(0.0);
            d(b).total_cmp(&d(a))
        });
        serde_json::json!({ "hotspots": list }).to_string()
    }
}

fn json_number(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64((x * 1e6).round() / 1e6)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// `RANDOM_CUT_FOREST[_WITH_EXPLANATION]`: a forest of robust random cut trees (Guha et al.,
/// ICML 2016), each over a time-decayed reservoir sample of the stream. A row is scored before
/// it is sampled, with the score AWS's RCF library computes: per tree, walking from the point's
/// leaf to the root, the probability that a random cut separates the point from each box
/// weighted by `1/(depth+1)`, normalised by `log2(sampleSize+1)`, and averaged over the trees.
/// Typical points score below 1; outliers score several times higher. Rows score 0 until the
/// trees hold a quarter of their sample size.
#[derive(Debug, Clone)]
pub struct Rcf {
    dims: Vec<usize>,
    names: Vec<String>,
    trees: Vec<Tree>,
    sample: usize,
    lambda: f64,
    shingle: usize,
    /// `Some(directionality)` for WITH_EXPLANATION.
    explain: Option<bool>,
    recent: std::collections::VecDeque<Vec<f64>>,
    seen: u64,
    rng: Rng,
}

impl Rcf {
    fn new(
        dims: Vec<usize>,
        names: Vec<String>,
        trees: usize,
        sample: usize,
        lambda: f64,
        shingle: usize,
        explain: Option<bool>,
    ) -> Self {
        Rcf {
            dims,
            names,
            trees: (0..trees).map(|_| Tree::default()).collect(),
            sample,
            lambda,
            shingle,
            explain,
            recent: Default::default(),
            seen: 0,
            rng: Rng(0x5eed_0ff0_7e57),
        }
    }

    fn row(&mut self, mut row: Row) -> Row {
        let point: Option<Vec<f64>> = self.dims.iter().map(|d| row.values[*d].as_f64()).collect();
        let (score, attribution) = match point {
            Some(p) => {
                self.recent.push_back(p);
                if self.recent.len() > self.shingle {
                    self.recent.pop_front();
                }
                if self.recent.len() == self.shingle {
                    let shingled: Vec<f64> = self.recent.iter().flatten().copied().collect();
                    let scored = self.score(&shingled);
                    self.update(shingled);
                    scored
                } else {
                    (0.0, None)
                }
            }
            // A row with a NULL dimension is passed through unscored.
            None => (0.0, None),
        };
        row.values.push(Value::Double(score));
        if let Some(directional) = self.explain {
            row.values
                .push(Value::Varchar(self.explanation(attribution, directional)));
        }
        row
    }

    fn warmed_up(&self) -> bool {
        self.seen as usize > self.sample / 4
    }

    /// The anomaly score and, for explanations, the per-dimension (high, low) attribution.
    fn score(&self, p: &[f64]) -> (f64, Option<Vec<(f64, f64)>>) {
        if !self.warmed_up() {
            return (0.0, None);
        }
        let norm = ((self.sample + 1) as f64).log2();
        let n = self.trees.len() as f64;
        let mut total = 0.0;
        let mut attr = vec![(0.0, 0.0); p.len()];
        for t in &self.trees {
            let (s, a) = t.score(p);
            total += s;
            for (acc, x) in attr.iter_mut().zip(a) {
                acc.0 += x.0;
                acc.1 += x.1;
            }
        }
        for a in &mut attr {
            a.0 *= norm / n;
            a.1 *= norm / n;
        }
        (total * norm / n, Some(attr))
    }

    fn update(&mut self, p: Vec<f64>) {
        self.seen += 1;
        let seq = self.seen as f64;
        for t in &mut self.trees {
            // Time-decayed reservoir sampling: the lowest keys stay; newer points get lower
            // keys on average, at a rate of `1/timeDecay` per row.
            let key = -self.lambda * seq + (-self.rng.unit().ln()).ln();
            if t.sample.len() < self.sample {
                t.sample.push((key, p.clone()));
                t.insert(&p, &mut self.rng);
                if t.sample.len() == self.sample {
                    t.find_worst();
                }
            } else if key < t.sample[t.worst].0 {
                let worst = t.worst;
                let (_, old) = std::mem::replace(&mut t.sample[worst], (key, p.clone()));
                t.delete(&old);
                t.insert(&p, &mut self.rng);
                t.find_worst();
            }
        }
    }

    /// `{"col":{"DIRECTION":"HIGH","STRENGTH":"0.1234","ATTRIBUTION_SCORE":"0.5678"}, ...}`:
    /// per input column, its share of the score (summed over shingle positions); the shares
    /// add up to ANOMALY_SCORE.
    fn explanation(&self, attribution: Option<Vec<(f64, f64)>>, directional: bool) -> String {
        let k = self.dims.len();
        let mut obj = serde_json::Map::new();
        for (i, name) in self.names.iter().enumerate() {
            let (mut high, mut low) = (0.0, 0.0);
            if let Some(a) = &attribution {
                for s in 0..self.shingle {
                    high += a[s * k + i].0;
                    low += a[s * k + i].1;
                }
            }
            let total = high + low;
            let mut e = serde_json::Map::new();
            if directional {
                e.insert(
                    "DIRECTION".into(),
                    (if high >= low { "HIGH" } else { "LOW" }).into(),
                );
                let strength = if total > 0.0 {
                    (high - low).abs() / total
                } else {
                    0.0
                };
                e.insert("STRENGTH".into(), format!("{strength:.4}").into());
            }
            e.insert("ATTRIBUTION_SCORE".into(), format!("{total:.4}").into());
            obj.insert(name.clone(), serde_json::Value::Object(e));
        }
        serde_json::Value::Object(obj).to_string()
    }
}

#[derive(Debug, Clone)]
enum Node {
    Leaf {
        point: Vec<f64>,
        mass: usize,
        parent: Option<usize>,
    },
    Cut {
        dim: usize,
        value: f64,
        left: usize,
        right: usize,
        min: Vec<f64>,
        max: Vec<f64>,
        mass: usize,
        parent: Option<usize>,
    },
}

/// A robust random cut tree over one tree's sample, kept up to date by insertions and
/// deletions (which preserve the tree's distribution), in an arena with a free list.
#[derive(Debug, Clone, Default)]
struct Tree {
    nodes: Vec<Node>,
    free: Vec<usize>,
    root: Option<usize>,
    /// The sampled points with their keys; the highest key is evicted first.
    sample: Vec<(f64, Vec<f64>)>,
    /// The position of the highest key in a full sample.
    worst: usize,
}

impl Tree {
    fn find_worst(&mut self) {
        self.worst = self
            .sample
            .iter()
            .enumerate()
            .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
            .map(|(i, _)| i)
            .unwrap_or(0);
    }

    fn alloc(&mut self, n: Node) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i] = n;
                i
            }
            None => {
                self.nodes.push(n);
                self.nodes.len() - 1
            }
        }
    }

    fn bounds(&self, i: usize) -> (Vec<f64>, Vec<f64>) {
        match &self.nodes[i] {
            Node::Leaf { point, .. } => (point.clone(), point.clone()),
            Node::Cut { min, max, .. } => (min.clone(), max.clone()),
        }
    }

    fn mass(&self, i: usize) -> usize {
        match &self.nodes[i] {
            Node::Leaf { mass, .. } | Node::Cut { mass, .. } => *mass,
        }
    }

    fn parent(&self, i: usize) -> Option<usize> {
        match &self.nodes[i] {
            Node::Leaf { parent, .. } | Node::Cut { parent, .. } => *parent,
        }
    }

    fn set_parent(&mut self, i: usize, p: Option<usize>) {
        match &mut self.nodes[i] {
            Node::Leaf { parent, .. } | Node::Cut { parent, .. } => *parent = p,
        }
    }

    fn replace_child(&mut self, parent: Option<usize>, old: usize, new: usize) {
        match parent {
            None => self.root = Some(new),
            Some(p) => {
                if let Node::Cut { left, right, .. } = &mut self.nodes[p] {
                    if *left == old {
                        *left = new;
                    } else if *right == old {
                        *right = new;
                    }
                }
            }
        }
        self.set_parent(new, parent);
    }

    /// Recomputes boxes and masses from `i` up to the root.
    fn refresh_up(&mut self, mut at: Option<usize>) {
        while let Some(i) = at {
            if let Node::Cut { left, right, .. } = self.nodes[i] {
                let (lmin, lmax) = self.bounds(left);
                let (rmin, rmax) = self.bounds(right);
                let m = self.mass(left) + self.mass(right);
                if let Node::Cut { min, max, mass, .. } = &mut self.nodes[i] {
                    *min = lmin.iter().zip(&rmin).map(|(a, b)| a.min(*b)).collect();
                    *max = lmax.iter().zip(&rmax).map(|(a, b)| a.max(*b)).collect();
                    *mass = m;
                }
            } else if let Node::Leaf { .. } = self.nodes[i] {
                // Leaves carry their own mass.
            }
            at = self.parent(i);
        }
    }

    fn insert(&mut self, p: &[f64], rng: &mut Rng) {
        let Some(mut node) = self.root else {
            let leaf = self.alloc(Node::Leaf {
                point: p.to_vec(),
                mass: 1,
                parent: None,
            });
            self.root = Some(leaf);
            return;
        };
        loop {
            if let Node::Leaf { point, mass, .. } = &mut self.nodes[node] {
                if point.as_slice() == p {
                    *mass += 1;
                    let parent = self.parent(node);
                    self.refresh_up(parent);
                    return;
                }
            }
            let (min, max) = self.bounds(node);
            let lo: Vec<f64> = min.iter().zip(p).map(|(a, b)| a.min(*b)).collect();
            let hi: Vec<f64> = max.iter().zip(p).map(|(a, b)| a.max(*b)).collect();
            let span: f64 = lo.iter().zip(&hi).map(|(a, b)| b - a).sum();
            let mut r = rng.unit() * span;
            let mut dim = 0;
            for d in 0..p.len() {
                let w = hi[d] - lo[d];
                if r <= w && w > 0.0 {
                    dim = d;
                    break;
                }
                r -= w;
                dim = d;
            }
            let cut = lo[dim] + r.clamp(0.0, hi[dim] - lo[dim]);
            let separates_low = cut < min[dim] && p[dim] <= cut;
            let separates_high = cut >= max[dim] && p[dim] > cut;
            if separates_low || separates_high || matches!(self.nodes[node], Node::Leaf { .. }) {
                let parent = self.parent(node);
                let leaf = self.alloc(Node::Leaf {
                    point: p.to_vec(),
                    mass: 1,
                    parent: None,
                });
                // At a leaf with a different point the cut always falls between the two.
                let leaf_goes_left = p[dim] <= cut;
                let (left, right) = if leaf_goes_left {
                    (leaf, node)
                } else {
                    (node, leaf)
                };
                let cut_node = self.alloc(Node::Cut {
                    dim,
                    value: cut,
                    left,
                    right,
                    min: lo,
                    max: hi,
                    mass: 0,
                    parent: None,
                });
                self.replace_child(parent, node, cut_node);
                self.set_parent(leaf, Some(cut_node));
                self.set_parent(node, Some(cut_node));
                self.refresh_up(Some(cut_node));
                return;
            }
            node = match &self.nodes[node] {
                Node::Cut {
                    dim,
                    value,
                    left,
                    right,
                    ..
                } => {
                    if p[*dim] <= *value {
                        *left
                    } else {
                        *right
                    }
                }
                Node::Leaf { .. } => unreachable!("leaves are handled above"),
            };
        }
    }

    fn delete(&mut self, p: &[f64]) {
        let Some(mut node) = self.root else { return };
        loop {
            match &mut self.nodes[node] {
                Node::Cut {
                    dim,
                    value,
                    left,
                    right,
                    ..
                } => node = if p[*dim] <= *value { *left } else { *right },
                Node::Leaf {
                    point,
                    mass,
                    parent,
                } => {
                    if point.as_slice() != p {
                        return;
                    }
                    let parent = *parent;
                    if *mass > 1 {
                        *mass -= 1;
                        self.refresh_up(parent);
                        return;
                    }
                    self.free.push(node);
                    let Some(par) = parent else {
                        self.root = None;
                        return;
                    };
                    let sibling = match &self.nodes[par] {
                        Node::Cut { left, right, .. } => {
                            if *left == node {
                                *right
                            } else {
                                *left
                            }
                        }
                        Node::Leaf { .. } => unreachable!("a parent is a cut"),
                    };
                    let grand = self.parent(par);
                    self.free.push(par);
                    self.replace_child(grand, par, sibling);
                    self.refresh_up(grand);
                    return;
                }
            }
        }
    }

    /// The point's score in this tree (before normalisation) and its attribution per
    /// dimension as (high, low), which add up to the score.
    fn score(&self, p: &[f64]) -> (f64, Vec<(f64, f64)>) {
        let dims = p.len();
        let Some(root) = self.root else {
            return (0.0, vec![(0.0, 0.0); dims]);
        };
        let mut path = vec![root];
        let mut node = root;
        while let Node::Cut {
            dim,
            value,
            left,
            right,
            ..
        } = &self.nodes[node]
        {
            node = if p[*dim] <= *value { *left } else { *right };
            path.push(node);
        }
        let depth = path.len() - 1;
        let unseen = |d: usize| 1.0 / (d as f64 + 1.0);
        let mut attr = vec![(0.0, 0.0); dims];
        let mut score;
        match &self.nodes[node] {
            Node::Leaf { point, mass, .. } if point.as_slice() == p => {
                score = 1.0 / (depth as f64 + ((*mass + 1) as f64).log2());
                // A point already in the sample: its share per dimension follows how far it
                // lies outside the rest of the tree at its parent (the sibling's box), as
                // AWS's attribution does for duplicates.
                let sibling = path
                    .len()
                    .checked_sub(2)
                    .and_then(|i| match &self.nodes[path[i]] {
                        Node::Cut { left, right, .. } => {
                            Some(if *left == node { *right } else { *left })
                        }
                        Node::Leaf { .. } => None,
                    });
                let gaps: Vec<(f64, f64)> = match sibling {
                    Some(sib) => {
                        let (min, max) = self.bounds(sib);
                        (0..dims)
                            .map(|d| ((p[d] - max[d]).max(0.0), (min[d] - p[d]).max(0.0)))
                            .collect()
                    }
                    None => vec![(0.0, 0.0); dims],
                };
                let sum: f64 = gaps.iter().map(|(h, l)| h + l).sum();
                for (a, (h, l)) in attr.iter_mut().zip(gaps) {
                    *a = if sum > 0.0 {
                        (score * h / sum, score * l / sum)
                    } else {
                        (score / (2 * dims) as f64, score / (2 * dims) as f64)
                    };
                }
            }
            Node::Leaf { point, .. } => {
                score = unseen(depth);
                let gaps: Vec<(f64, f64)> = point
                    .iter()
                    .zip(p)
                    .map(|(q, x)| ((x - q).max(0.0), (q - x).max(0.0)))
                    .collect();
                let sum: f64 = gaps.iter().map(|(h, l)| h + l).sum();
                for (a, (h, l)) in attr.iter_mut().zip(gaps) {
                    *a = (score * h / sum, score * l / sum);
                }
            }
            Node::Cut { .. } => unreachable!("the walk ends at a leaf"),
        }
        for (level, &i) in path.iter().enumerate().rev().skip(1) {
            let Node::Cut { min, max, .. } = &self.nodes[i] else {
                continue;
            };
            let gaps: Vec<(f64, f64)> = (0..dims)
                .map(|d| ((p[d] - max[d]).max(0.0), (min[d] - p[d]).max(0.0)))
                .collect();
            let grown: f64 = gaps.iter().map(|(h, l)| h + l).sum();
            if grown == 0.0 {
                continue;
            }
            let range: f64 = (0..dims).map(|d| max[d] - min[d]).sum::<f64>() + grown;
            let prob = grown / range;
            let here = unseen(level);
            score = prob * here + (1.0 - prob) * score;
            for (a, (h, l)) in attr.iter_mut().zip(gaps) {
                a.0 = (h / range) * here + (1.0 - prob) * a.0;
                a.1 = (l / range) * here + (1.0 - prob) * a.1;
            }
        }
        (score, attr)
    }
}
