//! From syntax to runnable query plans: resolves names, checks types, recognises windows, and
//! reports errors with positions and Calcite's wording, all when the application is created.

use crate::ast::*;
use crate::error::{Span, SqlError};
use crate::eval::{pattern_regex, CExpr, Pattern};
use crate::functions::{self, AggFunc};
use crate::time::{self, Unit};
use crate::value::{SqlType, Value};
use std::collections::HashMap;

/// A column of an in-application stream. ROWTIME is implicit and never listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: SqlType) -> Self {
        Column {
            name: name.into(),
            ty,
        }
    }
}

/// An aggregate of a GROUP BY, stagger or sliding window query.
#[derive(Debug, Clone)]
pub struct AggSpec {
    pub func: AggFunc,
    /// `None` for `COUNT(*)`.
    pub arg: Option<CExpr>,
    /// For sliding windows: which window of [`Sliding::windows`] it runs over.
    pub window: usize,
    /// LAG's rows back (default 1) and NTH_VALUE's position (from 1).
    pub offset: u64,
    /// LAG's value when the window holds no row that far back (default NULL), evaluated on
    /// the current row.
    pub default: Option<CExpr>,
    /// `IGNORE NULLS`: LAG and NTH_VALUE count only rows where the value is not NULL.
    pub ignore_nulls: bool,
    /// `COUNT(DISTINCT x)` and friends: each value counts once.
    pub distinct: bool,
}

/// How a tumbling window's ROWTIME key is computed, which also says when the window ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TumbleFn {
    Step(i64),
    Floor(Unit),
}

impl TumbleFn {
    pub fn start(self, rowtime: i64) -> i64 {
        match self {
            TumbleFn::Step(ms) => rowtime.div_euclid(ms) * ms,
            TumbleFn::Floor(unit) => time::floor_to(rowtime, unit),
        }
    }

    pub fn end(self, start: i64) -> i64 {
        match self {
            TumbleFn::Step(ms) => start + ms,
            TumbleFn::Floor(unit) => time::next_boundary(start, unit),
        }
    }
}

/// The state of one open group (tumbling) or window (stagger).
#[derive(Debug, Clone)]
pub struct Group {
    pub keys: Vec<Value>,
    pub accs: Vec<functions::Acc>,
    /// The ROWTIME at which the group closes and its row is emitted.
    pub end: i64,
    /// Arrival order, so that groups closing together come out in the order they opened.
    pub seq: u64,
}

/// `GROUP BY ..., STEP(ROWTIME BY ...)` or `WINDOWED BY STAGGER(...)`: one row per group when it
/// closes.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub keys: Vec<CExpr>,
    pub aggs: Vec<AggSpec>,
    pub having: Option<CExpr>,
    pub items: Vec<CExpr>,
    pub window: AggWindow,
    pub groups: HashMap<String, Group>,
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggWindow {
    /// Fixed windows on ROWTIME; `key` is the GROUP BY position of the ROWTIME expression.
    Tumbling { key: usize, func: TumbleFn },
    /// Windows that open with the first row of a partition and last `range_ms`.
    Stagger { range_ms: i64 },
}

/// A window of a sliding query with its rows per partition.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    pub partition: Vec<CExpr>,
    pub frame: Frame,
    /// Per partition: (ROWTIME, the argument of each aggregate on this window) of each row.
    pub rows: HashMap<String, std::collections::VecDeque<(i64, Vec<Value>)>>,
}

#[derive(Debug, Clone)]
pub struct Sliding {
    pub windows: Vec<SlidingWindow>,
    pub aggs: Vec<AggSpec>,
    pub items: Vec<CExpr>,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Project(Vec<CExpr>),
    Aggregate(Aggregate),
    Sliding(Sliding),
}

#[derive(Debug, Clone)]
pub enum Input {
    Stream(String),
    Subquery(Box<QueryPlan>),
    /// A stream (or subquery) joined to a reference table; rows are the left columns followed
    /// by the table's `width` columns.
    Join {
        left: Box<Input>,
        table: String,
        on: CExpr,
        outer: bool,
        width: usize,
    },
    /// Two streams joined over windows; rows are the left columns followed by the right ones.
    StreamJoin(Box<StreamJoin>),
    /// `TABLE(F(CURSOR(query), ...))`.
    TableFunction {
        cursor: Box<QueryPlan>,
        op: crate::tablefn::TableOp,
    },
}

/// Which rows of one side of a stream-to-stream join can still be joined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JoinWindow {
    /// No OVER: only rows with the current ROWTIME.
    Current,
    /// `RANGE INTERVAL ... PRECEDING`: rows with ROWTIME in `(now - range, now]`.
    Range(i64),
    /// `ROWS n PRECEDING`: the side's last `n + 1` rows.
    Rows(u64),
}

#[derive(Debug, Clone)]
pub struct JoinSide {
    pub window: JoinWindow,
    /// The rows in the window, each with whether it has matched (for LEFT OUTER JOIN).
    pub rows: std::collections::VecDeque<(crate::exec::Row, bool)>,
}

/// `FROM a [OVER w] [LEFT [OUTER]] JOIN b OVER w ON ...`. A row arriving on one side is joined
/// with the rows in the other side's window, so each pair is produced once, when its later row
/// arrives, with that row's ROWTIME. For a LEFT OUTER JOIN a left row that no right row can
/// match any more comes out with NULLs once it leaves the window.
#[derive(Debug, Clone)]
pub struct StreamJoin {
    pub left: Input,
    pub right: Input,
    pub sides: [JoinSide; 2],
    pub on: CExpr,
    /// LEFT or FULL: left rows without a match come out with NULLs.
    pub outer: bool,
    /// RIGHT or FULL: right rows without a match come out with NULLs.
    pub keep_right: bool,
    pub left_width: usize,
    pub right_width: usize,
}

impl Input {
    /// The in-application streams the input reads.
    pub fn sources(&self) -> Vec<&str> {
        match self {
            Input::Stream(s) => vec![s.as_str()],
            Input::Subquery(q) => q.input.sources(),
            Input::Join { left, .. } => left.sources(),
            Input::TableFunction { cursor, .. } => cursor.sources(),
            Input::StreamJoin(j) => {
                let mut v = j.left.sources();
                v.extend(j.right.sources());
                v
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueryPlan {
    pub input: Input,
    pub filter: Option<CExpr>,
    pub kind: Kind,
    pub output: Vec<Column>,
    /// Output columns that hold the row's ROWTIME (`rowtime AS window_time`).
    pub rowtime_columns: Vec<usize>,
    pub distinct: Option<Distinct>,
    pub order: Option<OrderBy>,
}

/// `SELECT STREAM DISTINCT`: a row is emitted the first time it is seen within its ROWTIME
/// bucket (the values of the select list's ROWTIME-based items), at once.
#[derive(Debug, Clone)]
pub struct Distinct {
    /// Output columns that are monotonic in ROWTIME (`FLOOR(ROWTIME TO MINUTE)`, `ROWTIME AS t`).
    pub monotonic: Vec<usize>,
    /// Whether the bucket includes the row's ROWTIME itself (bare `ROWTIME` selected, or the
    /// rows of a GROUP BY, which all close at their window's end).
    pub rowtime: bool,
    pub bucket: Option<String>,
    pub seen: std::collections::HashSet<String>,
}

/// The leading, ROWTIME-based expression of a streaming ORDER BY, which says when a bucket of
/// rows is complete and can be sorted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OrderLead {
    Rowtime,
    Tumble(TumbleFn),
}

impl OrderLead {
    /// The clock time at which the bucket holding `rowtime` is complete.
    pub fn end(self, rowtime: i64) -> i64 {
        match self {
            OrderLead::Rowtime => rowtime + 1,
            OrderLead::Tumble(f) => f.end(f.start(rowtime)),
        }
    }
}

/// `ORDER BY rowtime-expression, keys...`: rows are held until their ROWTIME bucket is complete,
/// then sorted. The sort keys are computed as extra items after the output columns.
#[derive(Debug, Clone)]
pub struct OrderBy {
    pub lead: OrderLead,
    /// Per sort key: descending?
    pub descending: Vec<bool>,
    /// The number of real output columns; sort keys follow them.
    pub width: usize,
    /// Rows of a GROUP BY come out of a window all at once and are sorted per batch.
    pub batch: bool,
    pub buffer: Vec<(i64, crate::exec::Row)>,
}

impl QueryPlan {
    /// The in-application streams the query reads.
    pub fn sources(&self) -> Vec<&str> {
        self.input.sources()
    }
}

impl TumbleFn {
    /// The longest a window lasts (calendar months count as 31 days).
    pub fn length_ms(self) -> i64 {
        match self {
            TumbleFn::Step(ms) => ms,
            TumbleFn::Floor(unit) => unit.fixed_ms().unwrap_or(31 * 86_400_000),
        }
    }
}

impl QueryPlan {
    /// How far back in ROWTIME the rows that make up this query's state can reach: the longest
    /// window it (or a query it reads from) keeps, chained windows adding up. Windows that are
    /// not bounded in time (`ROWS n PRECEDING`, RANDOM_CUT_FOREST, HOTSPOTS) count as `cap`, and
    /// so does anything longer. A stateless query needs 0.
    pub fn state_ms(&self, cap: i64) -> i64 {
        let own = match &self.kind {
            Kind::Project(_) => 0,
            Kind::Aggregate(a) => match a.window {
                AggWindow::Tumbling { func, .. } => func.length_ms(),
                AggWindow::Stagger { range_ms } => range_ms,
            },
            Kind::Sliding(s) => s
                .windows
                .iter()
                .map(|w| match w.frame {
                    Frame::Range(ms) => ms,
                    Frame::Rows(_) => cap,
                })
                .max()
                .unwrap_or(0),
        };
        let distinct = match &self.distinct {
            Some(d) if !d.monotonic.is_empty() => cap,
            _ => 0,
        };
        let order = match &self.order {
            Some(o) => match o.lead {
                OrderLead::Rowtime => 0,
                OrderLead::Tumble(f) => f.length_ms(),
            },
            None => 0,
        };
        let total = self.input.state_ms(cap) + own.max(distinct).max(order);
        total.min(cap)
    }
}

impl Input {
    fn state_ms(&self, cap: i64) -> i64 {
        match self {
            Input::Stream(_) => 0,
            Input::Subquery(q) => q.state_ms(cap),
            Input::Join { left, .. } => left.state_ms(cap),
            Input::StreamJoin(j) => {
                let window = j
                    .sides
                    .iter()
                    .map(|s| match s.window {
                        JoinWindow::Current => 0,
                        JoinWindow::Range(ms) => ms,
                        JoinWindow::Rows(_) => cap,
                    })
                    .max()
                    .unwrap_or(0);
                window + j.left.state_ms(cap).max(j.right.state_ms(cap))
            }
            Input::TableFunction { cursor, op } => {
                let own = match op {
                    crate::tablefn::TableOp::TopK(t) => t.window_ms(),
                    crate::tablefn::TableOp::CountDistinct(c) => c.window_ms(),
                    _ => cap,
                };
                cursor.state_ms(cap) + own
            }
        }
        .min(cap)
    }
}

/// The streams visible to a query.
pub trait Catalog {
    fn stream(&self, name: &str) -> Option<&[Column]>;
    /// Whether the stream may be read by queries (`error_stream` may not).
    fn readable(&self, name: &str) -> bool;
    /// Whether the name is a reference table rather than a stream.
    fn is_table(&self, _name: &str) -> bool {
        false
    }
}

struct Scope {
    /// Each FROM item: the names it answers to and where its columns sit in `columns`.
    entries: Vec<(Vec<String>, std::ops::Range<usize>)>,
    columns: Vec<Column>,
    /// The sides of a stream-to-stream join: the names each answers to and the hidden column
    /// (after the visible ones) holding its row's ROWTIME, for `o.ROWTIME`.
    rowtimes: Vec<(Vec<String>, usize)>,
    /// Columns of a subquery that hold its rows' ROWTIME (`rowtime AS window_time`), so they are
    /// as monotonic as ROWTIME itself.
    rowtime_columns: Vec<usize>,
}

impl Scope {
    /// `ROWTIME`, or a column that holds it.
    fn is_rowtime(&self, e: &Expr) -> bool {
        if is_rowtime(e) {
            return true;
        }
        let ExprKind::Column { qualifier, name } = &e.kind else {
            return false;
        };
        let range = match qualifier {
            Some(q) => match self.range(q) {
                Ok(r) => r,
                Err(_) => return false,
            },
            None => 0..self.visible(),
        };
        let hits: Vec<usize> = range
            .filter(|i| self.columns[*i].name == name.name)
            .collect();
        matches!(hits.as_slice(), [i] if self.rowtime_columns.contains(i))
    }

    /// The columns `*` expands to: all but the hidden ROWTIMEs of joined streams.
    fn visible(&self) -> usize {
        self.columns.len() - self.rowtimes.len()
    }
}

impl Scope {
    fn range(&self, qualifier: &Ident) -> Result<std::ops::Range<usize>, SqlError> {
        self.entries
            .iter()
            .find(|(names, _)| names.contains(&qualifier.name))
            .map(|(_, r)| r.clone())
            .ok_or_else(|| {
                SqlError::unknown(
                    qualifier.span,
                    format!("Table '{}' not found", qualifier.name),
                )
            })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Evaluated against one input row.
    Row,
    /// Evaluated against a finished group: only keys, aggregates and literals.
    Group,
    /// Inside an aggregate's argument: another aggregate would nest.
    AggArg,
}

struct Binder<'a> {
    scope: &'a Scope,
    group: Vec<(Expr, SqlType)>,
    aggs: Vec<AggSpec>,
    named_windows: &'a [NamedWindow],
    windows: Vec<SlidingWindow>,
    window_names: HashMap<String, usize>,
    sliding: bool,
}

fn is_agg_call(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Function { name, .. } if functions::lookup_agg(name).is_some())
}

/// Walks an expression tree, calling `f` on each node until it returns true.
fn any_node(e: &Expr, f: &dyn Fn(&Expr) -> bool) -> bool {
    if f(e) {
        return true;
    }
    let kids: Vec<&Expr> = match &e.kind {
        ExprKind::Column { .. } | ExprKind::Literal(..) => vec![],
        ExprKind::Field { expr, .. } => vec![expr],
        ExprKind::Binary { left, right, .. } => vec![left, right],
        ExprKind::Neg(x) | ExprKind::Not(x) => vec![x],
        ExprKind::Function { args, .. } => args.iter().collect(),
        ExprKind::Case {
            operand,
            whens,
            otherwise,
        } => {
            let mut v: Vec<&Expr> = operand.iter().map(|b| &**b).collect();
            for (w, t) in whens {
                v.push(w);
                v.push(t);
            }
            v.extend(otherwise.iter().map(|b| &**b));
            v
        }
        ExprKind::Cast { expr, .. } | ExprKind::IsNull { expr, .. } => vec![expr],
        ExprKind::Between {
            expr, low, high, ..
        } => vec![expr, low, high],
        ExprKind::InList { expr, list, .. } => {
            std::iter::once(&**expr).chain(list.iter()).collect()
        }
        ExprKind::Like {
            expr,
            pattern,
            escape,
            ..
        } => std::iter::once(&**expr)
            .chain(std::iter::once(&**pattern))
            .chain(escape.iter().map(|b| &**b))
            .collect(),
        ExprKind::Step { expr, interval } => vec![expr, interval],
        ExprKind::FloorCeil { expr, .. } | ExprKind::Extract { expr, .. } => vec![expr],
        ExprKind::Position { needle, haystack } => vec![needle, haystack],
        ExprKind::Substring { expr, from, len } => std::iter::once(&**expr)
            .chain(std::iter::once(&**from))
            .chain(len.iter().map(|b| &**b))
            .collect(),
        ExprKind::Trim { chars, expr, .. } => chars
            .iter()
            .map(|b| &**b)
            .chain(std::iter::once(&**expr))
            .collect(),
    };
    kids.into_iter().any(|k| any_node(k, f))
}

fn ty_list(a: &SqlType, op: &str, b: &SqlType) -> String {
    format!("'<{a}> {op} <{b}>'")
}

/// `ROWTIME`, `STEP(ROWTIME BY ...)` or `FLOOR(ROWTIME TO unit)`: expressions that only grow
/// and so can lead a streaming ORDER BY or bucket a DISTINCT.
fn rowtime_lead(e: &Expr, scope: &Scope) -> Option<OrderLead> {
    let is_rowtime = |e: &Expr| scope.is_rowtime(e);
    match &e.kind {
        _ if is_rowtime(e) => Some(OrderLead::Rowtime),
        ExprKind::Step { expr, interval } if is_rowtime(expr) => match &interval.kind {
            ExprKind::Literal(Value::Interval(ms), _) if *ms > 0 => {
                Some(OrderLead::Tumble(TumbleFn::Step(*ms)))
            }
            _ => None,
        },
        ExprKind::FloorCeil {
            expr,
            unit,
            ceil: false,
        } if is_rowtime(expr) => Some(OrderLead::Tumble(TumbleFn::Floor(*unit))),
        ExprKind::Function { name, args, .. } if name == "MONOTONIC" && args.len() == 1 => {
            rowtime_lead(&args[0], scope)
        }
        _ => None,
    }
}

fn is_rowtime(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Column { name, .. } if name.name == "ROWTIME")
}

impl<'a> Binder<'a> {
    fn resolve(
        &self,
        qualifier: Option<&Ident>,
        name: &Ident,
        span: Span,
    ) -> Result<(CExpr, SqlType), SqlError> {
        let range = match qualifier {
            Some(q) => self.scope.range(q)?,
            None => 0..self.scope.visible(),
        };
        if name.name == "ROWTIME" {
            let side = qualifier.and_then(|q| {
                self.scope
                    .rowtimes
                    .iter()
                    .find(|(names, _)| names.contains(&q.name))
            });
            if let Some((_, col)) = side {
                return Ok((CExpr::Col(*col), SqlType::Timestamp));
            }
            return Ok((CExpr::Rowtime, SqlType::Timestamp));
        }
        let hits: Vec<usize> = range
            .clone()
            .filter(|i| self.scope.columns[*i].name == name.name)
            .collect();
        match hits.as_slice() {
            [i] => return Ok((CExpr::Col(*i), self.scope.columns[*i].ty.clone())),
            [_, _, ..] => {
                return Err(SqlError::unknown(
                    span,
                    format!("Column '{}' is ambiguous", name.name),
                ));
            }
            [] => {}
        }
        // Most misses in KDA code are case mismatches against quoted input columns.
        let hint = self
            .scope
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&name.name))
            .map(|c| format!("; did you mean '{}'?", c.name))
            .unwrap_or_default();
        let msg = match qualifier {
            Some(q) => format!(
                "Column '{}' not found in table '{}'{hint}",
                name.name, q.name
            ),
            None => format!("Column '{}' not found in any table{hint}", name.name),
        };
        Err(SqlError::unknown(span, msg))
    }

    fn window_index(&mut self, over: &Over) -> Result<usize, SqlError> {
        let spec = match over {
            Over::Inline(spec) => spec.clone(),
            Over::Named(name) => {
                if let Some(i) = self.window_names.get(&name.name) {
                    return Ok(*i);
                }
                let w = self
                    .named_windows
                    .iter()
                    .find(|w| w.name.name == name.name)
                    .ok_or_else(|| {
                        SqlError::unknown(name.span, format!("Window '{}' not found", name.name))
                    })?;
                w.spec.clone()
            }
        };
        let mut partition = Vec::new();
        for p in &spec.partition {
            partition.push(self.compile(p, Mode::AggArg)?.0);
        }
        self.windows.push(SlidingWindow {
            partition,
            frame: spec.frame,
            rows: HashMap::new(),
        });
        let i = self.windows.len() - 1;
        if let Over::Named(name) = over {
            self.window_names.insert(name.name.clone(), i);
        }
        Ok(i)
    }

    fn boolean(&mut self, e: &Expr, mode: Mode, what: &str) -> Result<CExpr, SqlError> {
        let (c, t) = self.compile(e, mode)?;
        if t != SqlType::Boolean && t != SqlType::Null {
            return Err(SqlError::typ(e.span, format!("{what} must be a condition")));
        }
        Ok(c)
    }

    fn compile(&mut self, e: &Expr, mode: Mode) -> Result<(CExpr, SqlType), SqlError> {
        if mode == Mode::Group {
            if let Some(i) = self.group.iter().position(|(g, _)| g.same_as(e)) {
                return Ok((CExpr::Key(i), self.group[i].1.clone()));
            }
        }
        let b = |c: CExpr| Box::new(c);
        Ok(match &e.kind {
            ExprKind::Column {
                qualifier: Some(q),
                name,
            } if !self
                .scope
                .entries
                .iter()
                .any(|(names, _)| names.contains(&q.name))
                && self.resolve(None, q, q.span).is_ok() =>
            {
                // `rec.COLUMN1`: a field of a row-typed column rather than a qualified column.
                let inner = Expr {
                    kind: ExprKind::Column {
                        qualifier: None,
                        name: q.clone(),
                    },
                    span: q.span,
                };
                let field = Expr {
                    kind: ExprKind::Field {
                        expr: Box::new(inner),
                        field: name.clone(),
                    },
                    span: e.span,
                };
                self.compile(&field, mode)?
            }
            ExprKind::Field { expr, field } => {
                let (x, xt) = self.compile(expr, mode)?;
                let SqlType::Row(fields) = &xt else {
                    return Err(SqlError::typ(
                        e.span,
                        format!("'{}' is not a row; it has type {xt}", expr.text()),
                    ));
                };
                let i = fields
                    .iter()
                    .position(|(n, _)| *n == field.name)
                    .ok_or_else(|| {
                        SqlError::unknown(
                            field.span,
                            format!("Unknown field '{}' of '{}'", field.name, expr.text()),
                        )
                    })?;
                (CExpr::Field(b(x), i), fields[i].1.clone())
            }
            ExprKind::Column { qualifier, name } => {
                let (c, t) = self.resolve(qualifier.as_ref(), name, e.span)?;
                if mode == Mode::Group && !matches!(c, CExpr::Rowtime) {
                    return Err(SqlError::semantic(
                        e.span,
                        format!("Expression '{}' is not being grouped", e.text()),
                    ));
                }
                (c, t)
            }
            ExprKind::Literal(v, t) => (CExpr::Lit(v.clone()), t.clone()),
            ExprKind::Function {
                name,
                args,
                star,
                distinct,
                over,
                ..
            } if functions::lookup_agg(name).is_some() => {
                let func = functions::lookup_agg(name).expect("checked by the guard");
                let positional = matches!(func, AggFunc::Lag | AggFunc::NthValue);
                if positional && over.is_none() {
                    return Err(SqlError::semantic(
                        e.span,
                        format!("Function '{name}' requires an OVER clause"),
                    ));
                }
                if *distinct && (positional || *star) {
                    return Err(SqlError::semantic(
                        e.span,
                        format!("DISTINCT is not allowed in '{name}'"),
                    ));
                }
                let window = match (over, mode) {
                    (Some(o), Mode::Row) if self.sliding => self.window_index(o)?,
                    (Some(_), _) => {
                        return Err(SqlError::semantic(e.span, "OVER is only allowed in the select list of a query without GROUP BY"))
                    }
                    (None, Mode::Group) => 0,
                    (None, Mode::AggArg) => {
                        return Err(SqlError::semantic(e.span, "Aggregate expressions cannot be nested"))
                    }
                    (None, Mode::Row) => {
                        return Err(SqlError::semantic(
                            e.span,
                            "Aggregate functions on a stream need GROUP BY with a monotonic expression based on ROWTIME \
                             (for example STEP(\"S\".ROWTIME BY INTERVAL '1' MINUTE)), WINDOWED BY STAGGER, or an OVER window",
                        ))
                    }
                };
                let arity_ok = match func {
                    AggFunc::Count => *star && args.is_empty() || !*star && args.len() == 1,
                    AggFunc::Lag => !*star && (1..=3).contains(&args.len()),
                    AggFunc::NthValue => !*star && args.len() == 2,
                    _ => !*star && args.len() == 1,
                };
                if !arity_ok {
                    let expecting = match func {
                        AggFunc::Lag => "1, 2 or 3",
                        AggFunc::NthValue => "2",
                        _ => "1",
                    };
                    return Err(SqlError::typ(e.span, format!("Invalid number of arguments to function '{name}'. Was expecting {expecting} arguments")));
                }
                let (arg, arg_ty) = match args.first() {
                    Some(a) if !*star => {
                        let (c, t) = self.compile(a, Mode::AggArg)?;
                        (Some(c), Some(t))
                    }
                    _ => (None, None),
                };
                let ty = func.result_type(arg_ty.as_ref()).ok_or_else(|| {
                    SqlError::typ(
                        e.span,
                        format!(
                            "Cannot apply '{name}' to arguments of type '{name}(<{}>)'. Supported form(s): '{name}(<NUMERIC>)'",
                            arg_ty.clone().unwrap_or(SqlType::Null)
                        ),
                    )
                })?;
                let mut offset = if func == AggFunc::Lag { 1 } else { 0 };
                if let Some(n) = args.get(1) {
                    offset = match &n.kind {
                        ExprKind::Literal(Value::Integer(k), _)
                            if *k >= 0 && (func == AggFunc::Lag || *k >= 1) =>
                        {
                            *k as u64
                        }
                        _ => {
                            return Err(SqlError::typ(
                                n.span,
                                format!(
                                    "The offset of '{name}' must be a {} integer literal",
                                    if func == AggFunc::Lag {
                                        "non-negative"
                                    } else {
                                        "positive"
                                    }
                                ),
                            ))
                        }
                    };
                }
                let default = match args.get(2) {
                    Some(d) => {
                        let (c, t) = self.compile(d, Mode::AggArg)?;
                        if !ty.comparable(&t) {
                            return Err(SqlError::typ(d.span, format!("Cannot apply '{name}' to arguments of type '{name}(<{ty}>, <INTEGER>, <{t}>)'")));
                        }
                        Some(c)
                    }
                    None => None,
                };
                let ignore_nulls = matches!(
                    &e.kind,
                    ExprKind::Function {
                        ignore_nulls: true,
                        ..
                    }
                );
                self.aggs.push(AggSpec {
                    func,
                    arg,
                    window,
                    offset,
                    default,
                    ignore_nulls,
                    distinct: *distinct,
                });
                (CExpr::Agg(self.aggs.len() - 1), ty)
            }
            ExprKind::Function {
                name,
                args,
                star,
                over,
                ..
            } => {
                let f = functions::lookup(name);
                let mut cargs = Vec::new();
                let mut types = Vec::new();
                for a in args {
                    let (c, t) = self.compile(a, mode)?;
                    cargs.push(c);
                    types.push(t);
                }
                let sig_err = || {
                    SqlError::unknown(
                        e.span,
                        format!(
                            "No match found for function signature {name}({})",
                            functions::describe_args(&types)
                        ),
                    )
                };
                if let Some(planned) = crate::logparse::plan(name, args, &types, e.span) {
                    let (parser, ty) = planned?;
                    let input = cargs.into_iter().next().unwrap_or(CExpr::Lit(Value::Null));
                    return Ok((CExpr::LogParse(Box::new(parser), b(input)), ty));
                }
                let f = match f {
                    Some(f) if !*star && over.is_none() => f,
                    _ => return Err(sig_err()),
                };
                let ty = functions::signature(f, &types).ok_or_else(sig_err)?;
                (CExpr::Func(f, cargs), ty)
            }
            ExprKind::Binary { op, left, right } => {
                let (l, lt) = self.compile(left, mode)?;
                let (r, rt) = self.compile(right, mode)?;
                let bad = |forms: &str| {
                    SqlError::typ(
                        e.span,
                        format!(
                            "Cannot apply '{}' to arguments of type {}. Supported form(s): {forms}",
                            op.symbol(),
                            ty_list(&lt, op.symbol(), &rt)
                        ),
                    )
                };
                let null = |t: &SqlType| *t == SqlType::Null;
                let ty = match op {
                    BinOp::And | BinOp::Or => {
                        let ok = |t: &SqlType| *t == SqlType::Boolean || null(t);
                        if !ok(&lt) || !ok(&rt) {
                            return Err(bad("'<BOOLEAN> AND <BOOLEAN>'"));
                        }
                        SqlType::Boolean
                    }
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                        if !lt.comparable(&rt) {
                            return Err(bad("'<COMPARABLE_TYPE> = <COMPARABLE_TYPE>'"));
                        }
                        SqlType::Boolean
                    }
                    BinOp::Concat => {
                        if !(lt.is_string() || null(&lt)) || !(rt.is_string() || null(&rt)) {
                            return Err(bad("'<STRING> || <STRING>'"));
                        }
                        let len = |t: &SqlType| match t {
                            SqlType::Char(n) | SqlType::Varchar(n) => *n,
                            _ => 0,
                        };
                        SqlType::Varchar(len(&lt) + len(&rt))
                    }
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                        let num = |t: &SqlType| t.is_numeric() || null(t);
                        if num(&lt) && num(&rt) {
                            lt.unify(&rt)
                        } else if (matches!(op, BinOp::Add | BinOp::Sub)
                            && lt == SqlType::Timestamp
                            && (rt == SqlType::Interval || null(&rt)))
                            || (*op == BinOp::Add
                                && lt == SqlType::Interval
                                && rt == SqlType::Timestamp)
                        {
                            SqlType::Timestamp
                        } else if (*op == BinOp::Sub
                            && lt == SqlType::Timestamp
                            && rt == SqlType::Timestamp)
                            || (matches!(op, BinOp::Add | BinOp::Sub)
                                && lt == SqlType::Interval
                                && rt == SqlType::Interval)
                        {
                            SqlType::Interval
                        } else {
                            return Err(bad(&format!(
                                "'<NUMERIC> {0} <NUMERIC>'\n'<DATETIME> {0} <INTERVAL>'",
                                op.symbol()
                            )));
                        }
                    }
                };
                (CExpr::Binary(*op, b(l), b(r)), ty)
            }
            ExprKind::Neg(x) => {
                let (c, t) = self.compile(x, mode)?;
                if !(t.is_numeric() || t == SqlType::Interval || t == SqlType::Null) {
                    return Err(SqlError::typ(e.span, format!("Cannot apply '-' to arguments of type '-<{t}>'. Supported form(s): '-<NUMERIC>'")));
                }
                (CExpr::Neg(b(c)), t)
            }
            ExprKind::Not(x) => (
                CExpr::Not(b(self.boolean(x, mode, "NOT operand")?)),
                SqlType::Boolean,
            ),
            ExprKind::Case {
                operand,
                whens,
                otherwise,
            } => {
                let op = match operand {
                    Some(o) => Some(self.compile(o, mode)?),
                    None => None,
                };
                let mut cw = Vec::new();
                let mut ty = SqlType::Null;
                for (w, t) in whens {
                    let wc = match &op {
                        Some((_, ot)) => {
                            let (c, wt) = self.compile(w, mode)?;
                            if !ot.comparable(&wt) {
                                return Err(SqlError::typ(w.span, format!("Cannot compare CASE operand of type {ot} with WHEN value of type {wt}")));
                            }
                            c
                        }
                        None => self.boolean(w, mode, "WHEN condition")?,
                    };
                    let (tc, tt) = self.compile(t, mode)?;
                    if !ty.comparable(&tt) {
                        return Err(SqlError::typ(t.span, format!("Illegal mixing of types in CASE or COALESCE statement: {ty} and {tt}")));
                    }
                    ty = ty.unify(&tt);
                    cw.push((wc, tc));
                }
                let other = match otherwise {
                    Some(o) => {
                        let (oc, ot) = self.compile(o, mode)?;
                        if !ty.comparable(&ot) {
                            return Err(SqlError::typ(o.span, format!("Illegal mixing of types in CASE or COALESCE statement: {ty} and {ot}")));
                        }
                        ty = ty.unify(&ot);
                        Some(b(oc))
                    }
                    None => None,
                };
                (
                    CExpr::Case {
                        operand: op.map(|(c, _)| b(c)),
                        whens: cw,
                        otherwise: other,
                    },
                    ty,
                )
            }
            ExprKind::Cast { expr, ty } => {
                let (c, from) = self.compile(expr, mode)?;
                let ok = from == SqlType::Null
                    || ty.is_string()
                    || from.is_string()
                    || (from.is_numeric() && (ty.is_numeric() || *ty == SqlType::Boolean))
                    || (from.is_datetime() && ty.is_datetime())
                    || (from == SqlType::Boolean && (*ty == SqlType::Boolean || ty.is_numeric()))
                    || (from.is_binary() && ty.is_binary())
                    || (from.is_exact() && *ty == SqlType::Timestamp);
                if !ok {
                    return Err(SqlError::typ(
                        e.span,
                        format!("Cast function cannot convert value of type {from} to type {ty}"),
                    ));
                }
                (CExpr::Cast(b(c), ty.clone()), ty.clone())
            }
            ExprKind::IsNull { expr, negated } => (
                CExpr::IsNull(b(self.compile(expr, mode)?.0), *negated),
                SqlType::Boolean,
            ),
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let (x, xt) = self.compile(expr, mode)?;
                let (l, lt) = self.compile(low, mode)?;
                let (h, ht) = self.compile(high, mode)?;
                if !xt.comparable(&lt) || !xt.comparable(&ht) {
                    return Err(SqlError::typ(e.span, format!("Cannot apply 'BETWEEN' to arguments of type '<{xt}> BETWEEN <{lt}> AND <{ht}>'")));
                }
                (CExpr::Between(b(x), b(l), b(h), *negated), SqlType::Boolean)
            }
            ExprKind::InList {
                expr,
                list,
                negated,
            } => {
                let (x, xt) = self.compile(expr, mode)?;
                let mut items = Vec::new();
                for i in list {
                    let (c, t) = self.compile(i, mode)?;
                    if !xt.comparable(&t) {
                        return Err(SqlError::typ(i.span, format!("Values in expression list must have compatible types: {xt} and {t}")));
                    }
                    items.push(c);
                }
                (CExpr::InList(b(x), items, *negated), SqlType::Boolean)
            }
            ExprKind::Like {
                expr,
                pattern,
                escape,
                negated,
                similar,
            } => {
                let (x, xt) = self.compile(expr, mode)?;
                let (p, pt) = self.compile(pattern, mode)?;
                let word = if *similar { "SIMILAR TO" } else { "LIKE" };
                if !(xt.is_string() || xt == SqlType::Null)
                    || !(pt.is_string() || pt == SqlType::Null)
                {
                    return Err(SqlError::typ(e.span, format!("Cannot apply '{word}' to arguments of type '<{xt}> {word} <{pt}>'. Supported form(s): '<STRING> {word} <STRING>'")));
                }
                let esc = match escape {
                    Some(x) => Some(self.compile(x, mode)?.0),
                    None => None,
                };
                let compiled = match (&p, &esc) {
                    (CExpr::Lit(Value::Varchar(text)), None)
                    | (CExpr::Lit(Value::Varchar(text)), Some(CExpr::Lit(Value::Varchar(_)))) => {
                        let esc_char = match &esc {
                            Some(CExpr::Lit(Value::Varchar(s))) => s.chars().next(),
                            _ => None,
                        };
                        let re = pattern_regex(text, esc_char, *similar).map_err(|m| {
                            SqlError::typ(
                                pattern.span,
                                format!("Invalid regular expression '{text}': {m}"),
                            )
                        })?;
                        Pattern::Fixed(re)
                    }
                    _ => Pattern::Dynamic {
                        pattern: b(p),
                        escape: esc.map(b),
                        similar: *similar,
                    },
                };
                (
                    CExpr::Like {
                        expr: b(x),
                        pattern: compiled,
                        negated: *negated,
                    },
                    SqlType::Boolean,
                )
            }
            ExprKind::Step { expr, interval } => {
                let (x, xt) = self.compile(expr, mode)?;
                let ms =
                    match &interval.kind {
                        ExprKind::Literal(Value::Interval(ms), _) if *ms > 0 => *ms,
                        ExprKind::Literal(Value::Integer(n), _) if *n > 0 && xt.is_exact() => *n,
                        _ => return Err(SqlError::typ(
                            interval.span,
                            "STEP needs a positive interval literal, such as INTERVAL '60' SECOND",
                        )),
                    };
                if xt != SqlType::Timestamp && !xt.is_exact() {
                    return Err(SqlError::typ(
                        e.span,
                        format!(
                            "Cannot apply 'STEP' to arguments of type 'STEP(<{xt}> BY <INTERVAL>)'"
                        ),
                    ));
                }
                (CExpr::Step(b(x), ms), xt)
            }
            ExprKind::FloorCeil { expr, unit, ceil } => {
                let (x, xt) = self.compile(expr, mode)?;
                if !xt.is_datetime() && xt != SqlType::Null {
                    let f = if *ceil { "CEIL" } else { "FLOOR" };
                    return Err(SqlError::typ(
                        e.span,
                        format!(
                            "Cannot apply '{f}' to arguments of type '{f}(<{xt}> TO <TIME UNIT>)'"
                        ),
                    ));
                }
                (CExpr::FloorCeil(b(x), *unit, *ceil), xt)
            }
            ExprKind::Extract { unit, expr } => {
                let (x, xt) = self.compile(expr, mode)?;
                if !xt.is_datetime() && xt != SqlType::Interval && xt != SqlType::Null {
                    return Err(SqlError::typ(e.span, format!("Cannot apply 'EXTRACT' to arguments of type 'EXTRACT(<INTERVAL SYMBOL> FROM <{xt}>)'")));
                }
                (CExpr::Extract(*unit, b(x)), SqlType::BigInt)
            }
            ExprKind::Position { needle, haystack } => {
                let (n, nt) = self.compile(needle, mode)?;
                let (h, ht) = self.compile(haystack, mode)?;
                if !nt.is_string() || !ht.is_string() {
                    return Err(SqlError::typ(e.span, format!("Cannot apply 'POSITION' to arguments of type 'POSITION(<{nt}> IN <{ht}>)'")));
                }
                (CExpr::Position(b(n), b(h)), SqlType::Integer)
            }
            ExprKind::Substring { expr, from, len } => {
                let (x, xt) = self.compile(expr, mode)?;
                let (f, ft) = self.compile(from, mode)?;
                let l = match len {
                    Some(l) => Some(self.compile(l, mode)?),
                    None => None,
                };
                if !xt.is_string()
                    || !ft.is_exact()
                    || l.as_ref().is_some_and(|(_, t)| !t.is_exact())
                {
                    return Err(SqlError::typ(e.span, format!("Cannot apply 'SUBSTRING' to arguments of type 'SUBSTRING(<{xt}> FROM <{ft}>)'")));
                }
                let n = match xt {
                    SqlType::Char(n) | SqlType::Varchar(n) => n,
                    _ => 65_535,
                };
                (
                    CExpr::Substring(b(x), b(f), l.map(|(c, _)| b(c))),
                    SqlType::Varchar(n),
                )
            }
            ExprKind::Trim { spec, chars, expr } => {
                let (x, xt) = self.compile(expr, mode)?;
                let c = match chars {
                    Some(c) => Some(b(self.compile(c, mode)?.0)),
                    None => None,
                };
                if !xt.is_string() {
                    return Err(SqlError::typ(
                        e.span,
                        format!("Cannot apply 'TRIM' to arguments of type 'TRIM(<{xt}>)'"),
                    ));
                }
                (
                    CExpr::Trim(*spec, c, b(x)),
                    SqlType::Varchar(match xt {
                        SqlType::Char(n) | SqlType::Varchar(n) => n,
                        _ => 65_535,
                    }),
                )
            }
        })
    }
}

fn item_span(item: &FromItem) -> Span {
    match item {
        FromItem::Stream { name, .. } => name.span,
        FromItem::Subquery { span, .. }
        | FromItem::Join { span, .. }
        | FromItem::TableFunction { span, .. } => *span,
    }
}

/// The window of one side of a stream-to-stream join: `OVER (...)` or the current row.
fn join_window(item: &FromItem, windows: &[NamedWindow]) -> Result<JoinWindow, SqlError> {
    let FromItem::Stream {
        over: Some(over), ..
    } = item
    else {
        return Ok(JoinWindow::Current);
    };
    let spec = match over {
        Over::Inline(spec) => spec,
        Over::Named(name) => {
            &windows
                .iter()
                .find(|w| w.name.name == name.name)
                .ok_or_else(|| {
                    SqlError::unknown(name.span, format!("Window '{}' not found", name.name))
                })?
                .spec
        }
    };
    if let Some(p) = spec.partition.first() {
        return Err(SqlError::semantic(
            p.span,
            "PARTITION BY is not allowed in the window of a join",
        ));
    }
    Ok(match spec.frame {
        Frame::Range(ms) => JoinWindow::Range(ms),
        Frame::Rows(n) => JoinWindow::Rows(n),
    })
}

/// Plans a query over the catalog's streams.
fn plan_from(
    item: &FromItem,
    catalog: &dyn Catalog,
    windows: &[NamedWindow],
    in_join: bool,
) -> Result<(Input, Scope), SqlError> {
    match item {
        FromItem::Stream { name, alias, over } => {
            if let (Some(o), false) = (over, in_join) {
                let span = match o {
                    Over::Named(n) => n.span,
                    Over::Inline(w) => w.span,
                };
                return Err(SqlError::semantic(
                    span,
                    "A window on a stream in FROM is only allowed on a side of a stream-to-stream JOIN",
                ));
            }
            let cols = catalog.stream(&name.name).ok_or_else(|| {
                SqlError::unknown(name.span, format!("Object '{}' not found", name.name))
            })?;
            if catalog.is_table(&name.name) {
                return Err(SqlError::semantic(
                    name.span,
                    format!(
                        "Reference table '{}' can only be joined to a stream",
                        name.name
                    ),
                ));
            }
            if !catalog.readable(&name.name) {
                return Err(SqlError::semantic(
                    name.span,
                    format!("Stream '{}' cannot be read by application code", name.name),
                ));
            }
            let mut names = vec![name.name.clone()];
            names.extend(alias.iter().map(|a| a.name.clone()));
            // `JOIN "S" OVER t ... WINDOW t AS (...)`: the window's name also names the side.
            if let (None, Some(Over::Named(w))) = (alias, over) {
                names.push(w.name.clone());
            }
            let scope = Scope {
                entries: vec![(names, 0..cols.len())],
                columns: cols.to_vec(),
                rowtimes: Vec::new(),
                rowtime_columns: Vec::new(),
            };
            Ok((Input::Stream(name.name.clone()), scope))
        }
        FromItem::TableFunction {
            name,
            cursor,
            args,
            alias,
            span,
        } => {
            let inner = plan_query(cursor, catalog)?;
            let (op, columns) = crate::tablefn::plan(&name.name, args, &inner.output, *span)
                .map_err(|mut e| {
                    if e.span == *span {
                        e.span = name.span;
                    }
                    e
                })?;
            let names = alias.iter().map(|a| a.name.clone()).collect();
            let scope = Scope {
                entries: vec![(names, 0..columns.len())],
                columns,
                rowtimes: Vec::new(),
                rowtime_columns: Vec::new(),
            };
            Ok((
                Input::TableFunction {
                    cursor: Box::new(inner),
                    op,
                },
                scope,
            ))
        }
        FromItem::Subquery {
            query,
            alias,
            column_aliases,
            ..
        } => {
            let mut inner = plan_query(query, catalog)?;
            if !column_aliases.is_empty() {
                if column_aliases.len() != inner.output.len() {
                    return Err(SqlError::semantic(
                        column_aliases[0].span.to(column_aliases[column_aliases.len() - 1].span),
                        format!(
                            "List of column aliases must have same degree as table; table has {} columns, whereas alias list has {} columns",
                            inner.output.len(),
                            column_aliases.len()
                        ),
                    ));
                }
                for (c, a) in inner.output.iter_mut().zip(column_aliases) {
                    c.name = a.name.clone();
                }
            }
            if inner.order.is_some() && in_join {
                return Err(SqlError::semantic(
                    query.span,
                    "ORDER BY is not allowed in a subquery of a JOIN",
                ));
            }
            let names = alias.iter().map(|a| a.name.clone()).collect();
            let columns = inner.output.clone();
            let scope = Scope {
                entries: vec![(names, 0..columns.len())],
                columns,
                rowtimes: Vec::new(),
                rowtime_columns: inner.rowtime_columns.clone(),
            };
            Ok((Input::Subquery(Box::new(inner)), scope))
        }
        FromItem::Join {
            left,
            right,
            outer,
            keep_right,
            on,
            span,
        } => {
            let left_window = join_window(left, windows)?;
            let (left, mut scope) = plan_from(left, catalog, windows, true)?;
            let (table, alias) = match &**right {
                FromItem::Stream { name, alias, .. } if catalog.is_table(&name.name) => {
                    (name, alias)
                }
                FromItem::Stream { .. }
                | FromItem::Subquery { .. }
                | FromItem::TableFunction { .. } => {
                    let right_window = join_window(right, windows)?;
                    if left_window == JoinWindow::Current && right_window == JoinWindow::Current {
                        return Err(SqlError::semantic(
                            item_span(right).to(on.span),
                            "A join of two streams needs a window on at least one side, such as \
                             JOIN \"S\" OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS s",
                        ));
                    }
                    let (right, right_scope) = plan_from(right, catalog, windows, true)?;
                    let left_width = scope.columns.len();
                    for (names, r) in right_scope.entries.clone() {
                        scope
                            .entries
                            .push((names, r.start + left_width..r.end + left_width));
                    }
                    let right_width = right_scope.columns.len();
                    let left_names: Vec<String> =
                        scope.entries.iter().flat_map(|(n, _)| n.clone()).collect();
                    let right_names: Vec<String> = right_scope
                        .entries
                        .iter()
                        .flat_map(|(n, _)| n.clone())
                        .collect();
                    scope.columns.extend(right_scope.columns);
                    // Each side's ROWTIME rides along after the visible columns.
                    let hidden = scope.columns.len();
                    scope.rowtimes = vec![(left_names, hidden), (right_names, hidden + 1)];
                    scope
                        .columns
                        .push(Column::new("ROWTIME", SqlType::Timestamp));
                    scope
                        .columns
                        .push(Column::new("ROWTIME", SqlType::Timestamp));
                    let mut binder = Binder {
                        scope: &scope,
                        group: Vec::new(),
                        aggs: Vec::new(),
                        named_windows: &[],
                        windows: Vec::new(),
                        window_names: HashMap::new(),
                        sliding: false,
                    };
                    let on = binder.boolean(on, Mode::AggArg, "JOIN condition")?;
                    let input = Input::StreamJoin(Box::new(StreamJoin {
                        left,
                        right,
                        sides: [
                            JoinSide {
                                window: left_window,
                                rows: Default::default(),
                            },
                            JoinSide {
                                window: right_window,
                                rows: Default::default(),
                            },
                        ],
                        on,
                        outer: *outer,
                        keep_right: *keep_right,
                        left_width,
                        right_width,
                    }));
                    return Ok((input, scope));
                }
                FromItem::Join { span, .. } => {
                    return Err(SqlError::semantic(
                        *span,
                        "A JOIN on the right of a JOIN must be a reference table or a stream",
                    ))
                }
            };
            if *keep_right {
                return Err(SqlError::semantic(
                    *span,
                    "RIGHT and FULL joins need a stream on both sides; a reference table can only be joined to a stream with [LEFT] JOIN",
                ));
            }
            let cols = catalog.stream(&table.name).unwrap_or_default();
            let start = scope.columns.len();
            let mut names = vec![table.name.clone()];
            names.extend(alias.iter().map(|a| a.name.clone()));
            scope.entries.push((names, start..start + cols.len()));
            scope.columns.extend(cols.iter().cloned());
            let mut binder = Binder {
                scope: &scope,
                group: Vec::new(),
                aggs: Vec::new(),
                named_windows: &[],
                windows: Vec::new(),
                window_names: HashMap::new(),
                sliding: false,
            };
            let on = binder.boolean(on, Mode::AggArg, "JOIN condition")?;
            let input = Input::Join {
                left: Box::new(left),
                table: table.name.clone(),
                on,
                outer: *outer,
                width: cols.len(),
            };
            Ok((input, scope))
        }
    }
}

/// Plans a query over the catalog's streams.
pub fn plan_query(q: &Query, catalog: &dyn Catalog) -> Result<QueryPlan, SqlError> {
    let (input, scope) = plan_from(&q.from, catalog, &q.windows, false)?;
    let mut binder = Binder {
        scope: &scope,
        group: Vec::new(),
        aggs: Vec::new(),
        named_windows: &q.windows,
        windows: Vec::new(),
        window_names: HashMap::new(),
        sliding: false,
    };
    let filter = match &q.filter {
        Some(f) => Some(binder.boolean(f, Mode::AggArg, "WHERE clause")?),
        None => None,
    };
    let has_plain_agg = q.items.iter().any(|i| match i {
        SelectItem::Expr { expr, .. } => any_node(expr, &|n| {
            matches!(&n.kind, ExprKind::Function { over: None, .. }) && is_agg_call(n)
        }),
        SelectItem::Star { .. } => false,
    });
    let grouped = !q.group_by.is_empty() || q.stagger.is_some();
    let mut window = None;
    if !q.group_by.is_empty() {
        let mut tumble = None;
        for (i, g) in q.group_by.iter().enumerate() {
            let (_, t) = binder.compile(g, Mode::AggArg)?;
            let f = match &g.kind {
                ExprKind::Step { expr, interval } if scope.is_rowtime(expr) => match &interval.kind
                {
                    ExprKind::Literal(Value::Interval(ms), _) => Some(TumbleFn::Step(*ms)),
                    _ => None,
                },
                ExprKind::FloorCeil {
                    expr,
                    unit,
                    ceil: false,
                } if scope.is_rowtime(expr) => Some(TumbleFn::Floor(*unit)),
                _ => None,
            };
            if tumble.is_none() {
                tumble = f.map(|f| (i, f));
            }
            binder.group.push((g.clone(), t));
        }
        let (key, func) = tumble.ok_or_else(|| {
            SqlError::semantic(
                q.group_by[0].span.to(q.group_by[q.group_by.len() - 1].span),
                "Streaming GROUP BY needs a monotonic expression based on ROWTIME, such as \
                 STEP(\"S\".ROWTIME BY INTERVAL '1' MINUTE) or FLOOR(\"S\".ROWTIME TO MINUTE)",
            )
        })?;
        window = Some(AggWindow::Tumbling { key, func });
    } else if let Some(s) = &q.stagger {
        for p in &s.partition {
            let (_, t) = binder.compile(p, Mode::AggArg)?;
            binder.group.push((p.clone(), t));
        }
        if s.range_ms <= 0 {
            return Err(SqlError::semantic(
                s.span,
                "The stagger window range must be positive",
            ));
        }
        window = Some(AggWindow::Stagger {
            range_ms: s.range_ms,
        });
    } else if !has_plain_agg {
        binder.sliding = true;
    }
    let item_mode = if grouped { Mode::Group } else { Mode::Row };
    let mut items = Vec::new();
    let mut output = Vec::new();
    let mut rowtime_columns = Vec::new();
    for (n, item) in q.items.iter().enumerate() {
        match item {
            SelectItem::Star { qualifier, span } => {
                let range = match qualifier {
                    Some(q) => scope.range(q)?,
                    None => 0..scope.visible(),
                };
                if grouped {
                    return Err(SqlError::semantic(
                        *span,
                        "Expression '*' is not being grouped",
                    ));
                }
                for i in range {
                    if scope.rowtime_columns.contains(&i) {
                        rowtime_columns.push(output.len());
                    }
                    items.push(CExpr::Col(i));
                    output.push(scope.columns[i].clone());
                }
            }
            SelectItem::Expr { expr, alias } => {
                let (c, t) = binder.compile(expr, item_mode)?;
                // A bare ROWTIME in the select list is the row's timestamp, not a column.
                if alias.is_none() && is_rowtime(expr) {
                    continue;
                }
                if scope.is_rowtime(expr) {
                    rowtime_columns.push(output.len());
                }
                let name = match (alias, &expr.kind) {
                    (Some(a), _) => a.name.clone(),
                    (None, ExprKind::Column { name, .. }) => name.name.clone(),
                    (None, ExprKind::Field { field, .. }) => field.name.clone(),
                    _ => format!("EXPR${n}"),
                };
                items.push(c);
                output.push(Column::new(name, t));
            }
        }
    }
    let width = items.len();
    let distinct = if q.distinct {
        let mut monotonic = Vec::new();
        let mut rowtime = grouped;
        let mut col = 0;
        for item in &q.items {
            match item {
                SelectItem::Star { qualifier, .. } => {
                    col += match qualifier {
                        Some(q) => scope.range(q)?.len(),
                        None => scope.visible(),
                    }
                }
                SelectItem::Expr { expr, alias } => {
                    if alias.is_none() && is_rowtime(expr) {
                        rowtime = true;
                        continue;
                    }
                    if rowtime_lead(expr, &scope).is_some() {
                        monotonic.push(col);
                    }
                    col += 1;
                }
            }
        }
        if monotonic.is_empty() && !rowtime {
            return Err(SqlError::semantic(
                q.span,
                "Streaming SELECT DISTINCT needs a monotonic expression based on ROWTIME in the \
                 select list, such as ROWTIME or FLOOR(\"S\".ROWTIME TO MINUTE)",
            ));
        }
        Some(Distinct {
            monotonic,
            rowtime,
            bucket: None,
            seen: Default::default(),
        })
    } else {
        None
    };
    let order = match q.order_by.first() {
        None => None,
        Some(first) => {
            let lead = rowtime_lead(&first.expr, &scope).ok_or_else(|| {
                SqlError::semantic(
                    first.expr.span,
                    "Streaming ORDER BY must start with a monotonic expression based on ROWTIME, \
                     such as ROWTIME or FLOOR(\"S\".ROWTIME TO SECOND)",
                )
            })?;
            let mut descending = Vec::new();
            for o in &q.order_by {
                // An output alias, as in `ORDER BY "ticker_count" DESC`.
                let by_alias = match &o.expr.kind {
                    ExprKind::Column {
                        qualifier: None,
                        name,
                    } if !scope.columns.iter().any(|c| c.name == name.name) => {
                        output.iter().position(|c| c.name == name.name)
                    }
                    _ => None,
                };
                let key = match by_alias {
                    Some(i) => items[i].clone(),
                    None => binder.compile(&o.expr, item_mode)?.0,
                };
                items.push(key);
                descending.push(o.descending);
            }
            Some(OrderBy {
                lead,
                descending,
                width,
                batch: grouped,
                buffer: Vec::new(),
            })
        }
    };
    let having = match &q.having {
        Some(h) if grouped => Some(binder.boolean(h, Mode::Group, "HAVING clause")?),
        Some(h) => {
            return Err(SqlError::semantic(
                h.span,
                "HAVING needs GROUP BY or WINDOWED BY",
            ))
        }
        None => None,
    };
    let kind = match window {
        Some(window) => Kind::Aggregate(Aggregate {
            keys: {
                let mut keys = Vec::new();
                let group = binder.group.clone();
                for (g, _) in &group {
                    keys.push(binder.compile(g, Mode::AggArg)?.0);
                }
                keys
            },
            aggs: binder.aggs,
            having,
            items,
            window,
            groups: HashMap::new(),
            seq: 0,
        }),
        None if !binder.windows.is_empty() => Kind::Sliding(Sliding {
            windows: binder.windows,
            aggs: binder.aggs,
            items,
        }),
        None => Kind::Project(items),
    };
    Ok(QueryPlan {
        input,
        filter,
        kind,
        output,
        rowtime_columns,
        distinct,
        order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_query;

    struct Cat(Vec<Column>);
    impl Catalog for Cat {
        fn stream(&self, name: &str) -> Option<&[Column]> {
            (name == "S").then_some(self.0.as_slice())
        }
        fn readable(&self, _: &str) -> bool {
            true
        }
    }

    fn plan(sql: &str) -> Result<QueryPlan, SqlError> {
        let cat = Cat(vec![
            Column::new("TICKER", SqlType::Varchar(4)),
            Column::new("PRICE", SqlType::Double),
        ]);
        plan_query(&parse_query(sql).unwrap(), &cat)
    }

    #[test]
    fn an_unknown_column_is_reported_at_its_position_with_a_case_hint() {
        let err = plan("SELECT STREAM \"ticker\" FROM S").unwrap_err();
        assert_eq!(err.to_string(), "From line 1, column 15 to line 1, column 22: Column 'ticker' not found in any table; did you mean 'TICKER'?");
    }

    #[test]
    fn adding_a_string_to_a_number_is_a_type_error() {
        let err = plan("SELECT STREAM ticker + 1 FROM S").unwrap_err();
        assert!(
            err.message
                .starts_with("Cannot apply '+' to arguments of type '<VARCHAR(4)> + <INTEGER>'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn aggregates_without_a_rowtime_group_are_rejected() {
        let err = plan("SELECT STREAM ticker, COUNT(*) FROM S GROUP BY ticker").unwrap_err();
        assert!(
            err.message
                .contains("monotonic expression based on ROWTIME"),
            "{}",
            err.message
        );
        let err = plan(
            "SELECT STREAM price, COUNT(*) FROM S GROUP BY ticker, FLOOR(S.ROWTIME TO MINUTE)",
        )
        .unwrap_err();
        assert_eq!(err.message, "Expression 'PRICE' is not being grouped");
    }

    #[test]
    fn an_unknown_function_names_its_signature() {
        let err = plan("SELECT STREAM FOO(price) FROM S").unwrap_err();
        assert_eq!(
            err.message,
            "No match found for function signature FOO(<NUMERIC>)"
        );
    }
}
