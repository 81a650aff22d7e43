//! The running application: in-application streams, pumps, and the clock the host drives.
//!
//! Time model (KDA's): ROWTIME is processing time and never goes backwards. The host inserts rows
//! with a ROWTIME (a virtual clock in tests, the wall clock in production) and may advance the
//! clock without rows. Windows close when the clock reaches their end, so a tumbling window's row
//! appears when the next row or `advance_to` passes the boundary, never before.

use crate::ast::Statement;
use crate::error::{EngineError, EvalError, SqlError};
use crate::eval::Ctx;
use crate::functions::{Acc, AggFunc};
use crate::parser::parse;
use crate::plan::*;
use crate::value::{SqlType, Value};
use std::collections::{HashMap, VecDeque};

/// A row of an in-application stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Milliseconds since the epoch.
    pub rowtime: i64,
    pub values: Vec<Value>,
}

/// The name KDA gives the stream of rows that failed.
pub const ERROR_STREAM: &str = "error_stream";

/// The columns of `error_stream`, as AWS documents them.
pub fn error_stream_columns() -> Vec<Column> {
    vec![
        Column::new("ERROR_TIME", SqlType::Timestamp),
        Column::new("ERROR_LEVEL", SqlType::Varchar(10)),
        Column::new("ERROR_NAME", SqlType::Varchar(32)),
        Column::new("MESSAGE", SqlType::Varchar(4096)),
        Column::new("DATA_ROWTIME", SqlType::Timestamp),
        Column::new("DATA_ROW", SqlType::Varchar(49152)),
        Column::new("PUMP_NAME", SqlType::Varchar(128)),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Fed by the host from an input (`SOURCE_SQL_STREAM_001`).
    Input,
    /// Created by `CREATE OR REPLACE STREAM`, written by pumps.
    Application,
    /// `error_stream`.
    Error,
    /// A reference table (`ReferenceDataSource`): joined by queries, never streamed.
    Table,
}

#[derive(Debug, Clone)]
pub struct StreamDef {
    pub name: String,
    pub columns: Vec<Column>,
    pub kind: StreamKind,
}

/// A row that failed inside a query, with the row it was working on.
pub(crate) struct Failure {
    error: EvalError,
    rowtime: i64,
    data: Vec<Value>,
}

struct Pump {
    name: String,
    plan: QueryPlan,
    /// The streams the query reads (two for a stream-to-stream join).
    sources: Vec<usize>,
    target: usize,
    /// For each target column, the query output column that fills it (`None`: NULL).
    mapping: Vec<Option<usize>>,
}

pub struct Application {
    streams: Vec<StreamDef>,
    index: HashMap<String, usize>,
    pumps: Vec<Pump>,
    /// Pumps in dependency order: a pump runs after every pump that writes its source.
    order: Vec<usize>,
    clock: i64,
    taps: HashMap<usize, Vec<Row>>,
    tables: Tables,
}

struct CatalogView<'a>(&'a [StreamDef], &'a HashMap<String, usize>);

impl Catalog for CatalogView<'_> {
    fn stream(&self, name: &str) -> Option<&[Column]> {
        self.1.get(name).map(|i| self.0[*i].columns.as_slice())
    }
    fn readable(&self, name: &str) -> bool {
        self.1
            .get(name)
            .is_some_and(|i| self.0[*i].kind != StreamKind::Error)
    }
    fn is_table(&self, name: &str) -> bool {
        self.1
            .get(name)
            .is_some_and(|i| self.0[*i].kind == StreamKind::Table)
    }
}

impl Application {
    /// Compiles application code against its input streams. Every error in the code is found
    /// here, with its position; a running application never fails on its SQL.
    pub fn new(code: &str, inputs: &[(String, Vec<Column>)]) -> Result<Self, SqlError> {
        Self::with_tables(code, inputs, &[])
    }

    /// Like [`Application::new`], with reference tables that queries may join. Their rows are
    /// loaded with [`Application::load_table`].
    pub fn with_tables(
        code: &str,
        inputs: &[(String, Vec<Column>)],
        tables: &[(String, Vec<Column>)],
    ) -> Result<Self, SqlError> {
        let mut app = Application {
            tables: Tables::new(),
            streams: Vec::new(),
            index: HashMap::new(),
            pumps: Vec::new(),
            order: Vec::new(),
            clock: i64::MIN,
            taps: HashMap::new(),
        };
        for (name, columns) in inputs {
            app.add_stream(name.clone(), columns.clone(), StreamKind::Input);
        }
        for (name, columns) in tables {
            app.add_stream(name.clone(), columns.clone(), StreamKind::Table);
        }
        app.add_stream(
            ERROR_STREAM.into(),
            error_stream_columns(),
            StreamKind::Error,
        );
        for stmt in parse(code)? {
            match stmt {
                Statement::CreateStream { name, columns, .. } => {
                    if let Some(i) = app.index.get(&name.name) {
                        if app.streams[*i].kind != StreamKind::Application {
                            return Err(SqlError::semantic(name.span, format!("Stream '{}' is defined by the application's configuration and cannot be replaced", name.name)));
                        }
                        if let Some(p) = app
                            .pumps
                            .iter()
                            .find(|p| p.sources.contains(i) || p.target == *i)
                        {
                            return Err(SqlError::semantic(
                                name.span,
                                format!(
                                    "Stream '{}' cannot be replaced while pump '{}' uses it",
                                    name.name, p.name
                                ),
                            ));
                        }
                    }
                    let mut seen = std::collections::HashSet::new();
                    for c in &columns {
                        if c.name.name == "ROWTIME" || !seen.insert(c.name.name.clone()) {
                            return Err(SqlError::semantic(
                                c.name.span,
                                format!(
                                    "Duplicate column name '{}' in stream '{}'",
                                    c.name.name, name.name
                                ),
                            ));
                        }
                    }
                    let cols = columns
                        .into_iter()
                        .map(|c| Column::new(c.name.name, c.ty))
                        .collect();
                    app.add_stream(name.name, cols, StreamKind::Application);
                }
                Statement::CreatePump {
                    name,
                    target,
                    columns,
                    query,
                    union_all,
                    span,
                } => {
                    // `UNION ALL`: each branch is a pump of the same name into the target.
                    let mut branches = Vec::new();
                    for query in std::iter::once(*query).chain(union_all) {
                        let plan = plan_query(&query, &CatalogView(&app.streams, &app.index))?;
                        let t = *app.index.get(&target.name).ok_or_else(|| {
                            SqlError::unknown(
                                target.span,
                                format!("Object '{}' not found", target.name),
                            )
                        })?;
                        if app.streams[t].kind != StreamKind::Application {
                            return Err(SqlError::semantic(
                                target.span,
                                format!("Stream '{}' cannot be the target of a pump", target.name),
                            ));
                        }
                        let tcols = app.streams[t].columns.clone();
                        let targets: Vec<usize> = match &columns {
                            Some(names) => names
                                .iter()
                                .map(|n| {
                                    tcols.iter().position(|c| c.name == n.name).ok_or_else(|| {
                                        SqlError::unknown(
                                            n.span,
                                            format!("Unknown target column '{}'", n.name),
                                        )
                                    })
                                })
                                .collect::<Result<_, _>>()?,
                            None => (0..tcols.len()).collect(),
                        };
                        if targets.len() != plan.output.len() {
                            return Err(SqlError::semantic(
                                query.span,
                                format!("Number of INSERT target columns ({}) does not equal number of source items ({})", targets.len(), plan.output.len()),
                            ));
                        }
                        let mut mapping = vec![None; tcols.len()];
                        for (src, &dst) in targets.iter().enumerate() {
                            let (from, to) = (&plan.output[src], &tcols[dst]);
                            if !from.ty.assignable_to(&to.ty) {
                                return Err(SqlError::typ(
                                    query.span,
                                    format!("Cannot assign to target field '{}' of type {} from source field '{}' of type {}", to.name, to.ty, from.name, from.ty),
                                ));
                            }
                            mapping[dst] = Some(src);
                        }
                        let mut sources: Vec<usize> =
                            plan.sources().iter().map(|s| app.index[*s]).collect();
                        sources.dedup();
                        if let Some(source) = sources.iter().find(|s| app.reaches(t, **s)) {
                            return Err(SqlError::semantic(
                                span,
                                format!(
                                    "Pump '{}' would feed its own input stream '{}' in a cycle",
                                    name.name, app.streams[*source].name
                                ),
                            ));
                        }
                        branches.push(Pump {
                            name: name.name.clone(),
                            plan,
                            sources,
                            target: t,
                            mapping,
                        });
                    }
                    // CREATE OR REPLACE: the new branches take the old pump's place.
                    match app.pumps.iter().position(|p| p.name == name.name) {
                        Some(i) => {
                            app.pumps.retain(|p| p.name != name.name);
                            let at = i.min(app.pumps.len());
                            app.pumps.splice(at..at, branches);
                        }
                        None => app.pumps.extend(branches),
                    }
                }
            }
        }
        app.order = app.dependency_order();
        Ok(app)
    }

    fn add_stream(&mut self, name: String, columns: Vec<Column>, kind: StreamKind) {
        let def = StreamDef {
            name: name.clone(),
            columns,
            kind,
        };
        match self.index.get(&name) {
            Some(i) => self.streams[*i] = def,
            None => {
                self.index.insert(name, self.streams.len());
                self.streams.push(def);
            }
        }
    }

    /// Whether rows written to `from` can flow, through pumps, into `to`.
    fn reaches(&self, from: usize, to: usize) -> bool {
        let mut seen = vec![false; self.streams.len()];
        let mut stack = vec![from];
        while let Some(s) = stack.pop() {
            if s == to {
                return true;
            }
            if std::mem::replace(&mut seen[s], true) {
                continue;
            }
            stack.extend(
                self.pumps
                    .iter()
                    .filter(|p| p.sources.contains(&s))
                    .map(|p| p.target),
            );
        }
        false
    }

    fn dependency_order(&self) -> Vec<usize> {
        let mut order = Vec::new();
        let mut done = vec![false; self.pumps.len()];
        while order.len() < self.pumps.len() {
            for (i, p) in self.pumps.iter().enumerate() {
                let ready = !done[i]
                    && self
                        .pumps
                        .iter()
                        .enumerate()
                        .all(|(j, q)| done[j] || !p.sources.contains(&q.target));
                if ready {
                    done[i] = true;
                    order.push(i);
                }
            }
        }
        order
    }

    pub fn streams(&self) -> &[StreamDef] {
        &self.streams
    }

    pub fn stream(&self, name: &str) -> Option<&StreamDef> {
        self.index.get(name).map(|i| &self.streams[*i])
    }

    /// The engine's clock: the ROWTIME of the latest row or `advance_to`.
    pub fn now(&self) -> i64 {
        self.clock
    }

    /// Starts collecting the rows written to a stream, for [`Application::take`]. Outputs (and
    /// tests) tap the streams they deliver.
    pub fn tap(&mut self, stream: &str) -> Result<(), EngineError> {
        let i = *self
            .index
            .get(stream)
            .ok_or_else(|| EngineError::UnknownStream(stream.into()))?;
        self.taps.entry(i).or_default();
        Ok(())
    }

    /// Rows written to a tapped stream since the last call.
    pub fn take(&mut self, stream: &str) -> Vec<Row> {
        match self.index.get(stream).and_then(|i| self.taps.get_mut(i)) {
            Some(rows) => std::mem::take(rows),
            None => Vec::new(),
        }
    }

    /// Inserts a row into an input stream. The clock first advances to `rowtime` (closing the
    /// windows that end by then); a `rowtime` behind the clock is raised to it, since ROWTIME is
    /// processing time and monotonic.
    pub fn insert(
        &mut self,
        stream: &str,
        rowtime: i64,
        values: Vec<Value>,
    ) -> Result<(), EngineError> {
        let i = *self
            .index
            .get(stream)
            .ok_or_else(|| EngineError::UnknownStream(stream.into()))?;
        let def = &self.streams[i];
        if def.kind != StreamKind::Input {
            return Err(EngineError::NotAnInput(stream.into()));
        }
        if values.len() != def.columns.len() {
            return Err(EngineError::Arity {
                stream: stream.into(),
                expected: def.columns.len(),
                actual: values.len(),
            });
        }
        let rowtime = rowtime.max(self.clock);
        self.advance_to(rowtime);
        let columns = self.streams[i].columns.clone();
        let mut cast = Vec::with_capacity(values.len());
        for (v, c) in values.into_iter().zip(&columns) {
            match v.clone().cast(&c.ty) {
                Ok(v) => cast.push(v),
                Err(error) => {
                    let data = hex(&serde_json::to_vec(&v.to_json()).unwrap_or_default());
                    self.emit_error(error, rowtime, data, "");
                    return Ok(());
                }
            }
        }
        let mut queue = VecDeque::from([(
            i,
            Row {
                rowtime,
                values: cast,
            },
        )]);
        self.drain(&mut queue);
        Ok(())
    }

    /// Replaces a reference table's rows, as starting or updating a KDA application reloads its
    /// reference data. Values are cast to the table's column types; a row that does not fit
    /// is an error naming it, and the table is left as it was.
    pub fn load_table(&mut self, table: &str, rows: Vec<Vec<Value>>) -> Result<(), EngineError> {
        let i = *self
            .index
            .get(table)
            .ok_or_else(|| EngineError::UnknownStream(table.into()))?;
        let def = &self.streams[i];
        if def.kind != StreamKind::Table {
            return Err(EngineError::UnknownStream(table.into()));
        }
        let mut cast_rows = Vec::with_capacity(rows.len());
        for (n, row) in rows.into_iter().enumerate() {
            if row.len() != def.columns.len() {
                return Err(EngineError::Arity {
                    stream: table.into(),
                    expected: def.columns.len(),
                    actual: row.len(),
                });
            }
            let cast: Result<Vec<Value>, EvalError> = row
                .into_iter()
                .zip(&def.columns)
                .map(|(v, c)| v.cast(&c.ty))
                .collect();
            cast_rows.push(cast.map_err(|e| EngineError::TableRow {
                table: table.into(),
                row: n,
                message: e.message,
            })?);
        }
        self.tables.insert(table.into(), cast_rows);
        Ok(())
    }

    /// Records a row that never reached an input stream (for example a record the input mapping
    /// could not coerce) in `error_stream`, with the raw record hex-encoded as KDA does.
    pub fn reject_input(&mut self, error: EvalError, rowtime: i64, raw: &[u8]) {
        let rowtime = rowtime.max(self.clock);
        self.advance_to(rowtime);
        self.emit_error(error, rowtime, hex(raw), "");
    }

    /// How much input, in ROWTIME, rebuilds every window of the application: the longest state
    /// a pump keeps, plus what the pumps feeding it keep (a window over a window needs both).
    /// Windows bounded by row counts or not at all count as `cap`; the result is at most `cap`.
    /// A host that lost the engine's state (a restart) replays this much of its input, with
    /// output suppressed, to refill the windows that are still open.
    pub fn state_horizon_ms(&self, cap: i64) -> i64 {
        let mut reach = vec![0i64; self.streams.len()];
        for &p in &self.order {
            let pump = &self.pumps[p];
            let upstream = pump.sources.iter().map(|&s| reach[s]).max().unwrap_or(0);
            let total = (upstream + pump.plan.state_ms(cap)).min(cap);
            reach[pump.target] = reach[pump.target].max(total);
        }
        reach.into_iter().max().unwrap_or(0).min(cap)
    }

    /// Moves the clock forward, closing every window that ends at or before `t`.
    pub fn advance_to(&mut self, t: i64) {
        if t <= self.clock {
            return;
        }
        self.clock = t;
        let mut queue = VecDeque::new();
        for k in 0..self.order.len() {
            let p = self.order[k];
            let mut out = Vec::new();
            let mut fails = Vec::new();
            self.pumps[p]
                .plan
                .on_advance(t, t, &self.tables, &mut out, &mut fails);
            self.route(p, out, fails, &mut queue);
            // Deliver now, so downstream pumps see these rows before their own windows close.
            self.drain(&mut queue);
        }
    }

    fn route(
        &mut self,
        p: usize,
        out: Vec<Row>,
        fails: Vec<Failure>,
        queue: &mut VecDeque<(usize, Row)>,
    ) {
        let name = self.pumps[p].name.clone();
        for f in fails {
            let data = hex(&serde_json::to_vec(
                &f.data.iter().map(Value::to_json).collect::<Vec<_>>(),
            )
            .unwrap_or_default());
            self.emit_error(f.error, f.rowtime, data, &name);
        }
        let target = self.pumps[p].target;
        for row in out {
            let pump = &self.pumps[p];
            let mut values = Vec::with_capacity(pump.mapping.len());
            let mut failed = None;
            for (dst, src) in pump.mapping.iter().enumerate() {
                let v = src.map(|s| row.values[s].clone()).unwrap_or(Value::Null);
                match v.cast(&self.streams[target].columns[dst].ty) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                Some(e) => {
                    let data = hex(&serde_json::to_vec(
                        &row.values.iter().map(Value::to_json).collect::<Vec<_>>(),
                    )
                    .unwrap_or_default());
                    self.emit_error(e, row.rowtime, data, &name);
                }
                None => queue.push_back((
                    target,
                    Row {
                        rowtime: row.rowtime,
                        values,
                    },
                )),
            }
        }
    }

    fn drain(&mut self, queue: &mut VecDeque<(usize, Row)>) {
        while let Some((s, row)) = queue.pop_front() {
            if let Some(tap) = self.taps.get_mut(&s) {
                tap.push(row.clone());
            }
            for k in 0..self.order.len() {
                let p = self.order[k];
                if !self.pumps[p].sources.contains(&s) {
                    continue;
                }
                let mut out = Vec::new();
                let mut fails = Vec::new();
                let from = &self.streams[s].name;
                self.pumps[p].plan.on_row(
                    &row,
                    from,
                    self.clock,
                    &self.tables,
                    &mut out,
                    &mut fails,
                );
                self.route(p, out, fails, queue);
            }
        }
    }

    fn emit_error(&mut self, error: EvalError, rowtime: i64, data_hex: String, pump: &str) {
        let i = self.index[ERROR_STREAM];
        let row = Row {
            rowtime: self.clock,
            values: vec![
                Value::Timestamp(self.clock),
                Value::Varchar("Error".into()),
                Value::Varchar(error.name.into()),
                Value::Varchar(error.message),
                Value::Timestamp(rowtime),
                Value::Varchar(data_hex),
                Value::Varchar(pump.into()),
            ],
        };
        if let Some(tap) = self.taps.get_mut(&i) {
            tap.push(row);
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn group_key(keys: &[Value]) -> String {
    keys.iter()
        .map(Value::key)
        .collect::<Vec<_>>()
        .join("\u{1}")
}

/// Reference tables by name: their rows, already cast to the table's column types.
pub type Tables = HashMap<String, Vec<Vec<Value>>>;

impl Input {
    /// The rows this input yields for one row of its source stream.
    fn on_row(
        &mut self,
        row: &Row,
        from: &str,
        clock: i64,
        tables: &Tables,
        fails: &mut Vec<Failure>,
    ) -> Vec<Row> {
        match self {
            Input::Stream(s) if s == from => vec![row.clone()],
            Input::Stream(_) => Vec::new(),
            Input::Subquery(inner) => {
                let mut rows = Vec::new();
                inner.on_row(row, from, clock, tables, &mut rows, fails);
                rows
            }
            Input::Join { left, .. } => {
                let rows = left.on_row(row, from, clock, tables, fails);
                self.join(rows, clock, tables, fails)
            }
            Input::TableFunction { cursor, op } => {
                let mut rows = Vec::new();
                cursor.on_row(row, from, clock, tables, &mut rows, fails);
                let mut out = Vec::new();
                op.process(rows, &mut out);
                out
            }
            Input::StreamJoin(j) => {
                let left = j.left.on_row(row, from, clock, tables, fails);
                let right = j.right.on_row(row, from, clock, tables, fails);
                let mut out = Vec::new();
                for r in left {
                    j.arrive(0, r, clock, &mut out, fails);
                }
                for r in right {
                    j.arrive(1, r, clock, &mut out, fails);
                }
                out
            }
        }
    }

    /// The rows this input yields when the clock advances (closed windows of subqueries).
    fn on_advance(
        &mut self,
        t: i64,
        clock: i64,
        tables: &Tables,
        fails: &mut Vec<Failure>,
    ) -> Vec<Row> {
        match self {
            Input::Stream(_) => Vec::new(),
            Input::Subquery(inner) => {
                let mut rows = Vec::new();
                inner.on_advance(t, clock, tables, &mut rows, fails);
                rows
            }
            Input::Join { left, .. } => {
                let rows = left.on_advance(t, clock, tables, fails);
                self.join(rows, clock, tables, fails)
            }
            Input::TableFunction { cursor, op } => {
                let mut rows = Vec::new();
                cursor.on_advance(t, clock, tables, &mut rows, fails);
                let mut out = Vec::new();
                op.process(rows, &mut out);
                op.close(t, &mut out);
                out
            }
            Input::StreamJoin(j) => {
                let left = j.left.on_advance(t, clock, tables, fails);
                let right = j.right.on_advance(t, clock, tables, fails);
                let mut out = Vec::new();
                j.evict(t, &mut out);
                for r in left {
                    j.arrive(0, r, clock, &mut out, fails);
                }
                for r in right {
                    j.arrive(1, r, clock, &mut out, fails);
                }
                out
            }
        }
    }

    /// Joins stream rows to a reference table by scanning it: tables are small (KDA caps them at
    /// one S3 object) and the condition may be any predicate, not only an equality.
    fn join(
        &self,
        rows: Vec<Row>,
        clock: i64,
        tables: &Tables,
        fails: &mut Vec<Failure>,
    ) -> Vec<Row> {
        let Input::Join {
            table,
            on,
            outer,
            width,
            ..
        } = self
        else {
            return rows;
        };
        let empty = Vec::new();
        let table_rows = tables.get(table).unwrap_or(&empty);
        let mut out = Vec::new();
        for row in rows {
            let mut matched = false;
            for t in table_rows {
                let mut values = row.values.clone();
                values.extend(t.iter().cloned());
                let cx = Ctx {
                    row: &values,
                    rowtime: row.rowtime,
                    keys: &[],
                    aggs: &[],
                    clock,
                };
                match on.test(&cx) {
                    Ok(true) => {
                        matched = true;
                        out.push(Row {
                            rowtime: row.rowtime,
                            values,
                        });
                    }
                    Ok(false) => {}
                    Err(error) => {
                        fails.push(Failure {
                            error,
                            rowtime: row.rowtime,
                            data: row.values.clone(),
                        });
                        matched = true;
                        break;
                    }
                }
            }
            if !matched && *outer {
                let mut values = row.values;
                values.extend(std::iter::repeat_n(Value::Null, *width));
                out.push(Row {
                    rowtime: row.rowtime,
                    values,
                });
            }
        }
        out
    }
}

impl StreamJoin {
    /// Drops the rows that have left their side's window by time `t`; rows that never matched
    /// come out of an outer join with NULLs, at the time they left.
    fn evict(&mut self, t: i64, out: &mut Vec<Row>) {
        // Rows leave both sides; they come out in ROWTIME order.
        let mut left_over = Vec::new();
        for side in 0..2 {
            let window = self.sides[side].window;
            while let Some((front, _)) = self.sides[side].rows.front() {
                let expired = match window {
                    JoinWindow::Current => front.rowtime < t,
                    JoinWindow::Range(ms) => front.rowtime <= t - ms,
                    JoinWindow::Rows(_) => false,
                };
                if !expired {
                    break;
                }
                let (row, matched) = self.sides[side].rows.pop_front().expect("front exists");
                let at = match window {
                    JoinWindow::Range(ms) => row.rowtime + ms,
                    _ => row.rowtime,
                };
                self.unmatched(side, row, matched, at, &mut left_over);
            }
        }
        left_over.sort_by_key(|r| r.rowtime);
        out.extend(left_over);
    }

    /// A row of `side` that can no longer match: with NULLs for the other side when the join
    /// keeps that side's unmatched rows (LEFT, RIGHT, FULL).
    fn unmatched(&self, side: usize, row: Row, matched: bool, at: i64, out: &mut Vec<Row>) {
        let keep = if side == 0 {
            self.outer
        } else {
            self.keep_right
        };
        if !keep || matched {
            return;
        }
        let rowtime = Value::Timestamp(row.rowtime);
        let values = if side == 0 {
            let mut v = row.values;
            v.extend(std::iter::repeat_n(Value::Null, self.right_width));
            v.push(rowtime);
            v.push(Value::Null);
            v
        } else {
            let mut v = vec![Value::Null; self.left_width];
            v.extend(row.values);
            v.push(Value::Null);
            v.push(rowtime);
            v
        };
        out.push(Row {
            rowtime: at,
            values,
        });
    }

    /// A row arrives on `side` (0 left, 1 right): it is joined with the other side's window,
    /// then joins its own.
    fn arrive(
        &mut self,
        side: usize,
        row: Row,
        clock: i64,
        out: &mut Vec<Row>,
        fails: &mut Vec<Failure>,
    ) {
        self.evict(row.rowtime, out);
        let other = 1 - side;
        let mut matched = false;
        let mut marks = Vec::new();
        for (k, (o, _)) in self.sides[other].rows.iter().enumerate() {
            let (l, r) = if side == 0 { (&row, o) } else { (o, &row) };
            let mut values = l.values.clone();
            values.extend(r.values.iter().cloned());
            values.push(Value::Timestamp(l.rowtime));
            values.push(Value::Timestamp(r.rowtime));
            let cx = Ctx {
                row: &values,
                rowtime: row.rowtime,
                keys: &[],
                aggs: &[],
                clock,
            };
            match self.on.test(&cx) {
                Ok(true) => {
                    matched = true;
                    marks.push(k);
                    out.push(Row {
                        rowtime: row.rowtime.max(o.rowtime),
                        values,
                    });
                }
                Ok(false) => {}
                Err(error) => fails.push(Failure {
                    error,
                    rowtime: row.rowtime,
                    data: values,
                }),
            }
        }
        for k in marks {
            self.sides[other].rows[k].1 = true;
        }
        let me = &mut self.sides[side];
        me.rows.push_back((row, matched));
        if let JoinWindow::Rows(n) = me.window {
            if me.rows.len() as u64 > n + 1 {
                let (row, matched) = me.rows.pop_front().expect("longer than n + 1");
                let at = row.rowtime.max(clock);
                self.unmatched(side, row, matched, at, out);
            }
        }
    }
}

impl QueryPlan {
    /// Runs one input row through the query.
    pub(crate) fn on_row(
        &mut self,
        row: &Row,
        from: &str,
        clock: i64,
        tables: &Tables,
        out: &mut Vec<Row>,
        fails: &mut Vec<Failure>,
    ) {
        let mut produced = Vec::new();
        for r in self.input.on_row(row, from, clock, tables, fails) {
            self.process(&r, clock, &mut produced, fails);
        }
        self.finish(produced, None, out);
    }

    /// Advances the query's clock, emitting the groups that close by `t`.
    pub(crate) fn on_advance(
        &mut self,
        t: i64,
        clock: i64,
        tables: &Tables,
        out: &mut Vec<Row>,
        fails: &mut Vec<Failure>,
    ) {
        let mut produced = Vec::new();
        for r in self.input.on_advance(t, clock, tables, fails) {
            self.process(&r, clock, &mut produced, fails);
        }
        if let Kind::Aggregate(agg) = &mut self.kind {
            agg.close(t, clock, &mut produced, fails);
        }
        self.finish(produced, Some(t), out);
    }

    /// DISTINCT and ORDER BY over the rows the query produced; `t` is the clock when it advanced.
    fn finish(&mut self, produced: Vec<Row>, t: Option<i64>, out: &mut Vec<Row>) {
        let mut rows = produced;
        if let Some(d) = &mut self.distinct {
            let width = self.order.as_ref().map(|o| o.width);
            rows.retain(|r| {
                let mut bucket: Vec<String> =
                    d.monotonic.iter().map(|i| r.values[*i].key()).collect();
                if d.rowtime {
                    bucket.push(r.rowtime.to_string());
                }
                let bucket = bucket.join("\u{1}");
                if d.bucket.as_deref() != Some(bucket.as_str()) {
                    d.bucket = Some(bucket);
                    d.seen.clear();
                }
                let shown = &r.values[..width.unwrap_or(r.values.len())];
                d.seen.insert(group_key(shown))
            });
        }
        let Some(o) = &mut self.order else {
            out.extend(rows);
            return;
        };
        let sort = |rows: &mut Vec<Row>, o: &OrderBy| {
            rows.sort_by(|a, b| {
                for (k, desc) in o.descending.iter().enumerate() {
                    let (x, y) = (&a.values[o.width + k], &b.values[o.width + k]);
                    let ord = match (x.is_null(), y.is_null()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Less,
                        (false, true) => std::cmp::Ordering::Greater,
                        _ => x.sql_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
                    };
                    let ord = if *desc { ord.reverse() } else { ord };
                    if ord != std::cmp::Ordering::Equal {
                        return ord;
                    }
                }
                std::cmp::Ordering::Equal
            });
        };
        let mut ready = if o.batch {
            let mut batch = rows;
            sort(&mut batch, o);
            batch
        } else {
            for r in rows {
                o.buffer.push((o.lead.end(r.rowtime), r));
            }
            let Some(t) = t else { return };
            let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut o.buffer)
                .into_iter()
                .partition(|(end, _)| *end <= t);
            o.buffer = waiting;
            let mut done: Vec<Row> = done.into_iter().map(|(_, r)| r).collect();
            sort(&mut done, o);
            done
        };
        for r in &mut ready {
            r.values.truncate(o.width);
        }
        out.extend(ready);
    }

    fn process(&mut self, row: &Row, clock: i64, out: &mut Vec<Row>, fails: &mut Vec<Failure>) {
        let cx = Ctx {
            row: &row.values,
            rowtime: row.rowtime,
            keys: &[],
            aggs: &[],
            clock,
        };
        let fail = |error: EvalError, fails: &mut Vec<Failure>| {
            fails.push(Failure {
                error,
                rowtime: row.rowtime,
                data: row.values.clone(),
            })
        };
        if let Some(f) = &self.filter {
            match f.test(&cx) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => return fail(e, fails),
            }
        }
        match &mut self.kind {
            Kind::Project(items) => match items
                .iter()
                .map(|e| e.eval(&cx))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(values) => out.push(Row {
                    rowtime: row.rowtime,
                    values,
                }),
                Err(e) => fail(e, fails),
            },
            Kind::Aggregate(agg) => {
                let computed = (|| -> Result<(Vec<Value>, Vec<Option<Value>>), EvalError> {
                    let keys = agg
                        .keys
                        .iter()
                        .map(|k| k.eval(&cx))
                        .collect::<Result<Vec<_>, _>>()?;
                    let args = agg
                        .aggs
                        .iter()
                        .map(|a| a.arg.as_ref().map(|e| e.eval(&cx)).transpose())
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((keys, args))
                })();
                let (keys, args) = match computed {
                    Ok(x) => x,
                    Err(e) => return fail(e, fails),
                };
                let key = group_key(&keys);
                let end = match agg.window {
                    AggWindow::Tumbling { key: k, func } => match &keys[k] {
                        Value::Timestamp(start) => func.end(*start),
                        _ => row.rowtime,
                    },
                    AggWindow::Stagger { range_ms } => row.rowtime + range_ms,
                };
                let seq = agg.seq;
                let group = agg.groups.entry(key).or_insert_with(|| Group {
                    keys,
                    accs: agg
                        .aggs
                        .iter()
                        .map(|a| Acc::for_spec(a.func, a.distinct))
                        .collect(),
                    end,
                    seq,
                });
                if group.seq == seq {
                    agg.seq += 1;
                }
                for (acc, arg) in group.accs.iter_mut().zip(&args) {
                    if let Err(e) = acc.add(arg.as_ref()) {
                        return fail(e, fails);
                    }
                }
            }
            Kind::Sliding(s) => {
                let args = match s
                    .aggs
                    .iter()
                    .map(|a| a.arg.as_ref().map(|e| e.eval(&cx)).transpose())
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(a) => a,
                    Err(e) => return fail(e, fails),
                };
                let mut results = vec![Value::Null; s.aggs.len()];
                for (w, win) in s.windows.iter_mut().enumerate() {
                    let keys = match win
                        .partition
                        .iter()
                        .map(|k| k.eval(&cx))
                        .collect::<Result<Vec<_>, _>>()
                    {
                        Ok(k) => k,
                        Err(e) => return fail(e, fails),
                    };
                    let mine: Vec<usize> = (0..s.aggs.len())
                        .filter(|a| s.aggs[*a].window == w)
                        .collect();
                    let rows = win.rows.entry(group_key(&keys)).or_default();
                    // COUNT(*) has no argument; it stores a non-null marker so it counts the row.
                    let stored = mine
                        .iter()
                        .map(|a| args[*a].clone().unwrap_or(Value::Boolean(true)))
                        .collect();
                    rows.push_back((row.rowtime, stored));
                    match win.frame {
                        // AWS's worked example (5-second window, rows at t1 and t6) drops a row
                        // exactly one range old, so the window is (t - range, t].
                        crate::ast::Frame::Range(ms) => {
                            while rows.front().is_some_and(|(t, _)| *t <= row.rowtime - ms) {
                                rows.pop_front();
                            }
                        }
                        crate::ast::Frame::Rows(n) => {
                            while rows.len() as u64 > n + 1 {
                                rows.pop_front();
                            }
                        }
                    }
                    for (slot, a) in mine.iter().enumerate() {
                        let spec = &s.aggs[*a];
                        let value = |(_, vals): &(i64, Vec<Value>)| vals[slot].clone();
                        let kept = |v: &Value| !spec.ignore_nulls || !v.is_null();
                        results[*a] = match spec.func {
                            AggFunc::Lag => {
                                let back = if spec.offset == 0 {
                                    rows.back().map(value)
                                } else {
                                    rows.iter()
                                        .rev()
                                        .skip(1)
                                        .map(value)
                                        .filter(kept)
                                        .nth(spec.offset as usize - 1)
                                };
                                match (back, &spec.default) {
                                    (Some(v), _) => v,
                                    (None, Some(d)) => match d.eval(&cx) {
                                        Ok(v) => v,
                                        Err(e) => return fail(e, fails),
                                    },
                                    (None, None) => Value::Null,
                                }
                            }
                            AggFunc::NthValue => rows
                                .iter()
                                .map(value)
                                .filter(kept)
                                .nth(spec.offset as usize - 1)
                                .unwrap_or(Value::Null),
                            func => {
                                let mut acc = Acc::for_spec(func, spec.distinct);
                                for (_, vals) in rows.iter() {
                                    if let Err(e) = acc.add(Some(&vals[slot])) {
                                        return fail(e, fails);
                                    }
                                }
                                acc.result()
                            }
                        };
                    }
                }
                let cx = Ctx {
                    aggs: &results,
                    ..cx
                };
                match s
                    .items
                    .iter()
                    .map(|e| e.eval(&cx))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(values) => out.push(Row {
                        rowtime: row.rowtime,
                        values,
                    }),
                    Err(e) => fail(e, fails),
                }
            }
        }
    }
}

impl Aggregate {
    fn close(&mut self, t: i64, clock: i64, out: &mut Vec<Row>, fails: &mut Vec<Failure>) {
        let mut closing: Vec<(String, i64, u64)> = self
            .groups
            .iter()
            .filter(|(_, g)| g.end <= t)
            .map(|(k, g)| (k.clone(), g.end, g.seq))
            .collect();
        closing.sort_by_key(|(_, end, seq)| (*end, *seq));
        for (key, _, _) in closing {
            let g = self.groups.remove(&key).expect("key was just listed");
            let aggs: Vec<Value> = g.accs.iter().map(Acc::result).collect();
            let cx = Ctx {
                row: &[],
                rowtime: g.end,
                keys: &g.keys,
                aggs: &aggs,
                clock,
            };
            let result = (|| -> Result<Option<Vec<Value>>, EvalError> {
                if let Some(h) = &self.having {
                    if !h.test(&cx)? {
                        return Ok(None);
                    }
                }
                Ok(Some(
                    self.items
                        .iter()
                        .map(|e| e.eval(&cx))
                        .collect::<Result<Vec<_>, _>>()?,
                ))
            })();
            match result {
                Ok(Some(values)) => out.push(Row {
                    rowtime: g.end,
                    values,
                }),
                Ok(None) => {}
                Err(error) => fails.push(Failure {
                    error,
                    rowtime: g.end,
                    data: g.keys.clone(),
                }),
            }
        }
    }
}
