//! A hand-written recursive-descent parser for the KDA SQL dialect.
//!
//! Why not `sqlparser`: its AST cannot express `SELECT STREAM`, `CREATE OR REPLACE PUMP`,
//! `STEP(x BY INTERVAL ...)`, `WINDOWED BY STAGGER` or `TABLE(f(CURSOR(...)))`, and a custom
//! `Dialect` cannot add AST variants, so most of the dialect would be parsed by hand anyway.
//! KDA's grammar is frozen and small, so owning it costs little, keeps every error position exact,
//! and keeps a large dependency off the shared build machine.

use crate::ast::*;
use crate::error::{Span, SqlError};
use crate::lexer::{lex, Tok, Token};
use crate::time::{Unit, MS_DAY, MS_HOUR, MS_MINUTE, MS_SECOND};
use crate::value::{SqlType, Value};

/// Words that end an expression or select item, so they are never read as an implicit alias.
const RESERVED: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "HAVING",
    "WINDOW",
    "WINDOWED",
    "ORDER",
    "UNION",
    "AS",
    "ON",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "FULL",
    "CROSS",
    "AND",
    "OR",
    "NOT",
    "OVER",
    "BY",
    "PARTITION",
    "RANGE",
    "ROWS",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CASE",
    "IS",
    "IN",
    "LIKE",
    "SIMILAR",
    "BETWEEN",
    "ESCAPE",
    "PRECEDING",
    "INSERT",
    "INTO",
    "CREATE",
    "STREAM",
    "PUMP",
    "DISTINCT",
    "ALL",
    "NULL",
    "TRUE",
    "FALSE",
    "INTERVAL",
    "CAST",
    "TO",
    "FOR",
];

pub fn parse(src: &str) -> Result<Vec<Statement>, SqlError> {
    let mut p = Parser {
        toks: lex(src)?,
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        while p.eat_sym(";") {}
        if p.peek().tok == Tok::Eof {
            break;
        }
        out.push(p.statement()?);
        if p.peek().tok != Tok::Eof && !p.eat_sym(";") {
            return Err(p.unexpected(&["\";\""]));
        }
    }
    Ok(out)
}

/// Parses a single `SELECT` (used by tests and by the API's query validation).
pub fn parse_query(src: &str) -> Result<Query, SqlError> {
    let mut p = Parser {
        toks: lex(src)?,
        i: 0,
    };
    let q = p.query()?;
    p.eat_sym(";");
    if p.peek().tok != Tok::Eof {
        return Err(p.unexpected(&["<EOF>"]));
    }
    Ok(q)
}

/// One column of a log parser's column list: `NAME TYPE VARCHAR(16) [NOT NULL]
/// [START n [FOR m]] ['format']`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    pub ty: SqlType,
    pub start: Option<usize>,
    pub len: Option<usize>,
    pub format: Option<String>,
}

/// Parses the column list string of VARIABLE_COLUMN_LOG_PARSE, FIXED_COLUMN_LOG_PARSE and
/// REGEX_LOG_PARSE. Positions in errors are within `src`.
pub fn column_specs(src: &str) -> Result<Vec<ColumnSpec>, SqlError> {
    let mut p = Parser {
        toks: lex(src)?,
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        let name = p.ident()?.name;
        p.expect_kw("TYPE")?;
        let ty = p.data_type()?;
        if p.eat_kw("NOT") {
            p.expect_kw("NULL")?;
        }
        let (mut start, mut len, mut format) = (None, None, None);
        if p.eat_kw("START") {
            start = Some(p.unsigned_int()? as usize);
            if p.eat_kw("FOR") {
                len = Some(p.unsigned_int()? as usize);
            }
        }
        if let Tok::Str(f) = &p.peek().tok {
            format = Some(f.clone());
            p.next();
        }
        out.push(ColumnSpec {
            name,
            ty,
            start,
            len,
            format,
        });
        if !p.eat_sym(",") {
            break;
        }
    }
    if p.peek().tok != Tok::Eof {
        return Err(p.unexpected(&["\",\"", "<EOF>"]));
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.i]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.i + n).min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn prev_span(&self) -> Span {
        self.toks[self.i.saturating_sub(1)].span
    }

    fn is_kw(&self, kw: &str) -> bool {
        is_kw(self.peek(), kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<Span, SqlError> {
        if self.is_kw(kw) {
            Ok(self.next().span)
        } else {
            Err(self.unexpected(&[&format!("\"{kw}\"")]))
        }
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if self.peek().tok == Tok::Sym(sym(s)) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> Result<Span, SqlError> {
        if self.peek().tok == Tok::Sym(sym(s)) {
            Ok(self.next().span)
        } else {
            Err(self.unexpected(&[&format!("\"{s}\"")]))
        }
    }

    /// Calcite's wording: `Encountered "FORM" at line 1, column 20. Was expecting one of: ...`.
    fn unexpected(&self, expected: &[&str]) -> SqlError {
        let t = self.peek();
        SqlError::syntax(
            t.span,
            format!(
                "Encountered {} at line {}, column {}.\nWas expecting one of:\n    {}",
                t.describe(),
                t.span.start.line,
                t.span.start.column,
                expected.join(" ...\n    ") + " ..."
            ),
        )
    }

    fn ident(&mut self) -> Result<Ident, SqlError> {
        match &self.peek().tok {
            Tok::Ident { name, quoted } if *quoted || !RESERVED.contains(&name.as_str()) => {
                let (name, quoted) = (name.clone(), *quoted);
                let span = self.next().span;
                Ok(Ident { name, quoted, span })
            }
            _ => Err(self.unexpected(&["<IDENTIFIER>", "<QUOTED_IDENTIFIER>"])),
        }
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        let start = self.expect_kw("CREATE")?;
        if self.eat_kw("OR") {
            self.expect_kw("REPLACE")?;
        }
        if self.eat_kw("STREAM") {
            let name = self.ident()?;
            self.expect_sym("(")?;
            let mut columns = Vec::new();
            loop {
                let name = self.ident()?;
                let ty = self.data_type()?;
                if self.eat_kw("NOT") {
                    self.expect_kw("NULL")?;
                }
                columns.push(ColumnDef { name, ty });
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
            // KDA accepts (and ignores) a trailing `DESCRIPTION '...'` on streams.
            if self.eat_kw("DESCRIPTION") {
                self.string_literal()?;
            }
            Ok(Statement::CreateStream {
                name,
                columns,
                span: start.to(self.prev_span()),
            })
        } else if self.eat_kw("PUMP") {
            let name = self.ident()?;
            self.expect_kw("AS")?;
            self.expect_kw("INSERT")?;
            self.expect_kw("INTO")?;
            let target = self.ident()?;
            let columns = if self.peek().tok == Tok::Sym("(") && !is_kw(self.peek_at(1), "SELECT") {
                self.next();
                let mut cols = vec![self.ident()?];
                while self.eat_sym(",") {
                    cols.push(self.ident()?);
                }
                self.expect_sym(")")?;
                Some(cols)
            } else {
                None
            };
            let query = Box::new(self.query()?);
            let mut union_all = Vec::new();
            while self.eat_kw("UNION") {
                self.expect_kw("ALL")?;
                union_all.push(self.query()?);
            }
            Ok(Statement::CreatePump {
                name,
                target,
                columns,
                query,
                union_all,
                span: start.to(self.prev_span()),
            })
        } else {
            Err(self.unexpected(&["\"STREAM\"", "\"PUMP\""]))
        }
    }

    fn string_literal(&mut self) -> Result<String, SqlError> {
        match self.peek().tok.clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(&["<STRING_LITERAL>"])),
        }
    }

    fn unsigned_int(&mut self) -> Result<u64, SqlError> {
        match self.peek().tok.clone() {
            Tok::Number(n) if n.bytes().all(|b| b.is_ascii_digit()) => {
                let span = self.next().span;
                n.parse().map_err(|_| {
                    SqlError::syntax(span, format!("Numeric literal '{n}' out of range"))
                })
            }
            _ => Err(self.unexpected(&["<UNSIGNED_INTEGER_LITERAL>"])),
        }
    }

    fn data_type(&mut self) -> Result<SqlType, SqlError> {
        let word = match &self.peek().tok {
            Tok::Ident {
                name,
                quoted: false,
            } => name.clone(),
            _ => return Err(self.unexpected(&["<DATA_TYPE>"])),
        };
        let span = self.next().span;
        let args = |p: &mut Parser| -> Result<Vec<u64>, SqlError> {
            let mut v = Vec::new();
            if p.eat_sym("(") {
                v.push(p.unsigned_int()?);
                while p.eat_sym(",") {
                    v.push(p.unsigned_int()?);
                }
                p.expect_sym(")")?;
            }
            Ok(v)
        };
        let len = |v: &[u64], default: u32| v.first().map(|n| *n as u32).unwrap_or(default);
        Ok(match word.as_str() {
            "BOOLEAN" => SqlType::Boolean,
            "TINYINT" => SqlType::TinyInt,
            "SMALLINT" => SqlType::SmallInt,
            "INTEGER" | "INT" => SqlType::Integer,
            "BIGINT" => SqlType::BigInt,
            "DECIMAL" | "NUMERIC" | "DEC" => {
                let a = args(self)?;
                SqlType::Decimal(len(&a, 19), a.get(1).map(|s| *s as u32).unwrap_or(0))
            }
            "REAL" => SqlType::Real,
            "FLOAT" => SqlType::Double,
            "DOUBLE" => {
                self.eat_kw("PRECISION");
                SqlType::Double
            }
            "CHAR" | "CHARACTER" => {
                if self.eat_kw("VARYING") {
                    SqlType::Varchar(len(&args(self)?, 1))
                } else {
                    SqlType::Char(len(&args(self)?, 1))
                }
            }
            "VARCHAR" => SqlType::Varchar(len(&args(self)?, 1)),
            "BINARY" => SqlType::Binary(len(&args(self)?, 1)),
            "VARBINARY" => SqlType::Varbinary(len(&args(self)?, 1)),
            "DATE" => SqlType::Date,
            "TIME" => {
                args(self)?;
                SqlType::Time
            }
            "TIMESTAMP" => {
                args(self)?;
                SqlType::Timestamp
            }
            other => {
                return Err(SqlError::unknown(
                    span,
                    format!("Unknown datatype name '{other}'"),
                ));
            }
        })
    }

    fn query(&mut self) -> Result<Query, SqlError> {
        let start = self.expect_kw("SELECT")?;
        let stream = self.eat_kw("STREAM");
        let distinct = self.eat_kw("DISTINCT");
        if !distinct {
            self.eat_kw("ALL");
        }
        let mut items = vec![self.select_item()?];
        while self.eat_sym(",") {
            items.push(self.select_item()?);
        }
        self.expect_kw("FROM")?;
        let mut from = self.table_ref()?;
        loop {
            let start = self.peek().span;
            let mut cross = false;
            let (outer, keep_right) = if self.eat_kw("LEFT") {
                self.eat_kw("OUTER");
                (true, false)
            } else if self.eat_kw("RIGHT") {
                self.eat_kw("OUTER");
                (false, true)
            } else if self.eat_kw("FULL") {
                self.eat_kw("OUTER");
                (true, true)
            } else if self.eat_kw("CROSS") {
                cross = true;
                (false, false)
            } else if self.eat_kw("INNER") || self.is_kw("JOIN") {
                (false, false)
            } else {
                break;
            };
            self.expect_kw("JOIN")?;
            let right = self.table_ref()?;
            // CROSS JOIN pairs every row with every row: a condition that always holds.
            let on = if cross {
                Expr {
                    kind: ExprKind::Literal(Value::Boolean(true), SqlType::Boolean),
                    span: self.prev_span(),
                }
            } else {
                self.expect_kw("ON")?;
                self.expr()?
            };
            let span = start.to(on.span);
            from = FromItem::Join {
                left: Box::new(from),
                right: Box::new(right),
                outer,
                keep_right,
                on,
                span,
            };
        }
        let filter = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut group_by = Vec::new();
        let mut stagger = None;
        if self.eat_kw("GROUP") {
            self.expect_kw("BY")?;
            group_by.push(self.expr()?);
            while self.eat_sym(",") {
                group_by.push(self.expr()?);
            }
        } else if self.is_kw("WINDOWED") {
            let s = self.next().span;
            self.expect_kw("BY")?;
            self.expect_kw("STAGGER")?;
            self.expect_sym("(")?;
            self.expect_kw("PARTITION")?;
            self.expect_kw("BY")?;
            let mut partition = vec![self.expr()?];
            while self.eat_sym(",") {
                partition.push(self.expr()?);
            }
            self.expect_kw("RANGE")?;
            let range_ms = self.interval_literal()?.0;
            self.expect_sym(")")?;
            stagger = Some(Stagger {
                partition,
                range_ms,
                span: s.to(self.prev_span()),
            });
        }
        let having = if self.eat_kw("HAVING") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut windows = Vec::new();
        if self.eat_kw("WINDOW") {
            loop {
                let name = self.ident()?;
                self.expect_kw("AS")?;
                let spec = self.window_spec()?;
                windows.push(NamedWindow { name, spec });
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let mut order_by = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let expr = self.expr()?;
                let descending = if self.eat_kw("DESC") {
                    true
                } else {
                    self.eat_kw("ASC");
                    false
                };
                order_by.push(OrderItem { expr, descending });
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        Ok(Query {
            span: start.to(self.prev_span()),
            stream,
            distinct,
            items,
            from,
            filter,
            group_by,
            stagger,
            having,
            windows,
            order_by,
        })
    }

    fn select_item(&mut self) -> Result<SelectItem, SqlError> {
        if self.peek().tok == Tok::Sym("*") {
            let span = self.next().span;
            return Ok(SelectItem::Star {
                qualifier: None,
                span,
            });
        }
        if matches!(self.peek().tok, Tok::Ident { .. })
            && self.peek_at(1).tok == Tok::Sym(".")
            && self.peek_at(2).tok == Tok::Sym("*")
        {
            let q = self.ident()?;
            self.next();
            let span = q.span.to(self.next().span);
            return Ok(SelectItem::Star {
                qualifier: Some(q),
                span,
            });
        }
        let expr = self.expr()?;
        let alias = self.alias()?;
        Ok(SelectItem::Expr { expr, alias })
    }

    fn alias(&mut self) -> Result<Option<Ident>, SqlError> {
        if self.eat_kw("AS") {
            return Ok(Some(self.ident()?));
        }
        match &self.peek().tok {
            Tok::Ident { name, quoted } if *quoted || !RESERVED.contains(&name.as_str()) => {
                Ok(Some(self.ident()?))
            }
            _ => Ok(None),
        }
    }

    fn table_ref(&mut self) -> Result<FromItem, SqlError> {
        if self.is_kw("TABLE") && self.peek_at(1).tok == Tok::Sym("(") {
            let start = self.next().span;
            self.expect_sym("(")?;
            let name = self.ident()?;
            self.expect_sym("(")?;
            self.expect_kw("CURSOR")?;
            self.expect_sym("(")?;
            let cursor = self.query()?;
            self.expect_sym(")")?;
            let mut args = Vec::new();
            while self.eat_sym(",") {
                args.push(self.expr()?);
            }
            self.expect_sym(")")?;
            self.expect_sym(")")?;
            let span = start.to(self.prev_span());
            let alias = self.alias()?;
            return Ok(FromItem::TableFunction {
                name,
                cursor: Box::new(cursor),
                args,
                alias,
                span,
            });
        }
        if self.peek().tok == Tok::Sym("(") {
            let start = self.next().span;
            let query = self.query()?;
            self.expect_sym(")")?;
            let span = start.to(self.prev_span());
            let alias = self.alias()?;
            let mut column_aliases = Vec::new();
            if alias.is_some() && self.eat_sym("(") {
                column_aliases.push(self.ident()?);
                while self.eat_sym(",") {
                    column_aliases.push(self.ident()?);
                }
                self.expect_sym(")")?;
            }
            return Ok(FromItem::Subquery {
                query: Box::new(query),
                alias,
                column_aliases,
                span,
            });
        }
        let name = self.ident()?;
        let over = if self.eat_kw("OVER") {
            if self.peek().tok == Tok::Sym("(") {
                Some(Over::Inline(self.window_spec()?))
            } else {
                Some(Over::Named(self.ident()?))
            }
        } else {
            None
        };
        let alias = self.alias()?;
        Ok(FromItem::Stream { name, alias, over })
    }

    fn window_spec(&mut self) -> Result<WindowSpec, SqlError> {
        let start = self.expect_sym("(")?;
        let mut partition = Vec::new();
        if self.eat_kw("PARTITION") {
            self.expect_kw("BY")?;
            partition.push(self.expr()?);
            while self.eat_sym(",") {
                partition.push(self.expr()?);
            }
        }
        let frame = if self.eat_kw("RANGE") {
            let ms = self.interval_literal()?.0;
            self.expect_kw("PRECEDING")?;
            Frame::Range(ms)
        } else if self.eat_kw("ROWS") {
            let n = self.unsigned_int()?;
            self.expect_kw("PRECEDING")?;
            Frame::Rows(n)
        } else {
            return Err(self.unexpected(&["\"RANGE\"", "\"ROWS\""]));
        };
        self.expect_sym(")")?;
        Ok(WindowSpec {
            partition,
            frame,
            span: start.to(self.prev_span()),
        })
    }

    /// `INTERVAL '60' SECOND`, `INTERVAL '1' MINUTE`, `INTERVAL '1:30' MINUTE TO SECOND`.
    fn interval_literal(&mut self) -> Result<(i64, Span), SqlError> {
        let start = self.expect_kw("INTERVAL")?;
        let negative = self.eat_sym("-");
        let text = self.string_literal()?;
        let unit_tok = self.peek().clone();
        let unit = match &unit_tok.tok {
            Tok::Ident {
                name,
                quoted: false,
            } => Unit::parse(name),
            _ => None,
        }
        .ok_or_else(|| self.unexpected(&["\"SECOND\"", "\"MINUTE\"", "\"HOUR\"", "\"DAY\""]))?;
        self.next();
        // An optional leading precision, as in `INTERVAL '100' SECOND(3)`.
        if self.peek().tok == Tok::Sym("(") {
            self.next();
            self.unsigned_int()?;
            self.expect_sym(")")?;
        }
        let mut units = vec![unit];
        if self.eat_kw("TO") {
            let t = self.peek().clone();
            match &t.tok {
                Tok::Ident {
                    name,
                    quoted: false,
                } if Unit::parse(name).is_some() => {
                    units.push(Unit::parse(name).unwrap_or(Unit::Second));
                    self.next();
                }
                _ => return Err(self.unexpected(&["\"SECOND\"", "\"MINUTE\"", "\"HOUR\""])),
            }
        }
        let span = start.to(self.prev_span());
        let bad = || SqlError::syntax(span, format!("Illegal interval literal format '{text}'"));
        if units.iter().any(|u| u.fixed_ms().is_none()) {
            return Err(SqlError::semantic(
                span,
                "Year-month intervals are not supported; use DAY, HOUR, MINUTE or SECOND",
            ));
        }
        // Split the text on the separators of a compound literal: '1 02:30:00', '1:30', '10.5'.
        let parts: Vec<&str> = text.trim().split([' ', ':']).collect();
        let all_units = [Unit::Day, Unit::Hour, Unit::Minute, Unit::Second];
        let first = all_units.iter().position(|u| *u == units[0]).unwrap_or(0);
        let last = all_units
            .iter()
            .position(|u| Some(u) == units.last())
            .unwrap_or(first);
        if last < first || parts.len() != last - first + 1 {
            return Err(bad());
        }
        let mut ms: i64 = 0;
        for (k, part) in parts.iter().enumerate() {
            let unit_ms = match all_units[first + k] {
                Unit::Day => MS_DAY,
                Unit::Hour => MS_HOUR,
                Unit::Minute => MS_MINUTE,
                _ => MS_SECOND,
            };
            let v: f64 = part.parse().map_err(|_| bad())?;
            ms += (v * unit_ms as f64).round() as i64;
        }
        Ok((if negative { -ms } else { ms }, span))
    }

    pub fn expr(&mut self) -> Result<Expr, SqlError> {
        self.or_expr()
    }

    fn or_expr(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.and_expr()?;
        while self.eat_kw("OR") {
            let right = self.and_expr()?;
            left = binary(BinOp::Or, left, right);
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.not_expr()?;
        while self.eat_kw("AND") {
            let right = self.not_expr()?;
            left = binary(BinOp::And, left, right);
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, SqlError> {
        if self.is_kw("NOT") {
            let start = self.next().span;
            let e = self.not_expr()?;
            let span = start.to(e.span);
            return Ok(Expr {
                kind: ExprKind::Not(Box::new(e)),
                span,
            });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SqlError> {
        let left = self.additive()?;
        let op = match &self.peek().tok {
            Tok::Sym("=") => Some(BinOp::Eq),
            Tok::Sym("<>") | Tok::Sym("!=") => Some(BinOp::Ne),
            Tok::Sym("<") => Some(BinOp::Lt),
            Tok::Sym("<=") => Some(BinOp::Le),
            Tok::Sym(">") => Some(BinOp::Gt),
            Tok::Sym(">=") => Some(BinOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.next();
            let right = self.additive()?;
            return Ok(binary(op, left, right));
        }
        if self.eat_kw("IS") {
            let negated = self.eat_kw("NOT");
            self.expect_kw("NULL")?;
            let span = left.span.to(self.prev_span());
            return Ok(Expr {
                kind: ExprKind::IsNull {
                    expr: Box::new(left),
                    negated,
                },
                span,
            });
        }
        let negated = if self.is_kw("NOT")
            && ["LIKE", "SIMILAR", "BETWEEN", "IN"]
                .iter()
                .any(|k| is_kw(self.peek_at(1), k))
        {
            self.next();
            true
        } else {
            false
        };
        if self.eat_kw("LIKE") || self.is_kw("SIMILAR") {
            let similar = self.eat_kw("SIMILAR");
            if similar {
                self.expect_kw("TO")?;
            }
            let pattern = self.additive()?;
            let escape = if self.eat_kw("ESCAPE") {
                Some(Box::new(self.additive()?))
            } else {
                None
            };
            let span = left.span.to(self.prev_span());
            return Ok(Expr {
                kind: ExprKind::Like {
                    expr: Box::new(left),
                    pattern: Box::new(pattern),
                    escape,
                    negated,
                    similar,
                },
                span,
            });
        }
        if self.eat_kw("BETWEEN") {
            self.eat_kw("ASYMMETRIC");
            let low = self.additive()?;
            self.expect_kw("AND")?;
            let high = self.additive()?;
            let span = left.span.to(high.span);
            return Ok(Expr {
                kind: ExprKind::Between {
                    expr: Box::new(left),
                    low: Box::new(low),
                    high: Box::new(high),
                    negated,
                },
                span,
            });
        }
        if self.eat_kw("IN") {
            self.expect_sym("(")?;
            let mut list = vec![self.expr()?];
            while self.eat_sym(",") {
                list.push(self.expr()?);
            }
            self.expect_sym(")")?;
            let span = left.span.to(self.prev_span());
            return Ok(Expr {
                kind: ExprKind::InList {
                    expr: Box::new(left),
                    list,
                    negated,
                },
                span,
            });
        }
        if negated {
            return Err(self.unexpected(&["\"LIKE\"", "\"SIMILAR\"", "\"BETWEEN\"", "\"IN\""]));
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match &self.peek().tok {
                Tok::Sym("+") => BinOp::Add,
                Tok::Sym("-") => BinOp::Sub,
                Tok::Sym("||") => BinOp::Concat,
                _ => return Ok(left),
            };
            self.next();
            let right = self.multiplicative()?;
            left = binary(op, left, right);
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.unary()?;
        loop {
            let op = match &self.peek().tok {
                Tok::Sym("*") => BinOp::Mul,
                Tok::Sym("/") => BinOp::Div,
                _ => return Ok(left),
            };
            self.next();
            let right = self.unary()?;
            left = binary(op, left, right);
        }
    }

    fn unary(&mut self) -> Result<Expr, SqlError> {
        if self.peek().tok == Tok::Sym("-") {
            let start = self.next().span;
            let e = self.unary()?;
            let span = start.to(e.span);
            // Fold negative numeric literals so that `-1` keeps its literal type.
            if let ExprKind::Literal(v, t) = &e.kind {
                match v {
                    Value::Integer(i) => {
                        return Ok(Expr {
                            kind: ExprKind::Literal(Value::Integer(-i), t.clone()),
                            span,
                        })
                    }
                    Value::Double(d) => {
                        return Ok(Expr {
                            kind: ExprKind::Literal(Value::Double(-d), t.clone()),
                            span,
                        })
                    }
                    _ => {}
                }
            }
            return Ok(Expr {
                kind: ExprKind::Neg(Box::new(e)),
                span,
            });
        }
        if self.eat_sym("+") {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        let t = self.peek().clone();
        let lit = |v: Value, ty: SqlType, span: Span| {
            Ok(Expr {
                kind: ExprKind::Literal(v, ty),
                span,
            })
        };
        match &t.tok {
            Tok::Number(n) => {
                self.next();
                if n.contains('E') {
                    let d: f64 = n
                        .parse()
                        .map_err(|_| SqlError::syntax(t.span, format!("Invalid number '{n}'")))?;
                    lit(Value::Double(d), SqlType::Double, t.span)
                } else if let Some(dot) = n.find('.') {
                    let d: f64 = n
                        .parse()
                        .map_err(|_| SqlError::syntax(t.span, format!("Invalid number '{n}'")))?;
                    let scale = (n.len() - dot - 1) as u32;
                    lit(
                        Value::Double(d),
                        SqlType::Decimal((n.len() - 1) as u32, scale),
                        t.span,
                    )
                } else {
                    match n.parse::<i64>() {
                        Ok(i) if i <= i32::MAX as i64 => {
                            lit(Value::Integer(i), SqlType::Integer, t.span)
                        }
                        Ok(i) => lit(Value::Integer(i), SqlType::BigInt, t.span),
                        Err(_) => Err(SqlError::syntax(
                            t.span,
                            format!("Numeric literal '{n}' out of range"),
                        )),
                    }
                }
            }
            Tok::Str(s) => {
                self.next();
                let n = s.chars().count() as u32;
                lit(Value::Varchar(s.clone()), SqlType::Char(n.max(1)), t.span)
            }
            Tok::Binary(s) => {
                self.next();
                let bytes = crate::value::parse_hex(s).ok_or_else(|| {
                    SqlError::syntax(
                        t.span,
                        format!(
                            "Binary literal string must contain an even number of hexits: '{s}'"
                        ),
                    )
                })?;
                let n = bytes.len() as u32;
                lit(Value::Binary(bytes), SqlType::Binary(n.max(1)), t.span)
            }
            Tok::Sym("(") => {
                self.next();
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(Expr {
                    kind: e.kind,
                    span: t.span.to(self.prev_span()),
                })
            }
            Tok::Ident {
                name,
                quoted: false,
            } => match name.as_str() {
                "NULL" => {
                    self.next();
                    lit(Value::Null, SqlType::Null, t.span)
                }
                "TRUE" | "FALSE" => {
                    self.next();
                    lit(Value::Boolean(name == "TRUE"), SqlType::Boolean, t.span)
                }
                "INTERVAL" => {
                    let (ms, span) = self.interval_literal()?;
                    lit(Value::Interval(ms), SqlType::Interval, span)
                }
                "TIMESTAMP" | "DATE" | "TIME" if matches!(self.peek_at(1).tok, Tok::Str(_)) => {
                    self.next();
                    let text = self.string_literal()?;
                    let span = t.span.to(self.prev_span());
                    let ty = match name.as_str() {
                        "TIMESTAMP" => SqlType::Timestamp,
                        "DATE" => SqlType::Date,
                        _ => SqlType::Time,
                    };
                    let v = Value::Varchar(text.clone()).cast(&ty).map_err(|_| {
                        SqlError::syntax(
                            span,
                            format!("Illegal {ty} literal '{text}': not in format"),
                        )
                    })?;
                    lit(v, ty, span)
                }
                "CASE" => self.case_expr(),
                "CAST" => {
                    self.next();
                    self.expect_sym("(")?;
                    let e = self.expr()?;
                    self.expect_kw("AS")?;
                    let ty = self.data_type()?;
                    self.expect_sym(")")?;
                    Ok(Expr {
                        kind: ExprKind::Cast {
                            expr: Box::new(e),
                            ty,
                        },
                        span: t.span.to(self.prev_span()),
                    })
                }
                _ if self.peek_at(1).tok == Tok::Sym("(") => self.function(),
                // Niladic functions, which SQL writes without parentheses.
                "CURRENT_ROW_TIMESTAMP"
                | "CURRENT_TIMESTAMP"
                | "LOCALTIMESTAMP"
                | "CURRENT_DATE"
                | "CURRENT_TIME"
                | "LOCALTIME" => {
                    self.next();
                    Ok(Expr {
                        kind: ExprKind::Function {
                            name: name.clone(),
                            args: vec![],
                            star: false,
                            distinct: false,
                            ignore_nulls: false,
                            over: None,
                        },
                        span: t.span,
                    })
                }
                _ => self.column_ref(),
            },
            Tok::Ident { quoted: true, .. } => self.column_ref(),
            _ => Err(self.unexpected(&["<IDENTIFIER>", "<LITERAL>", "\"(\""])),
        }
    }

    fn column_ref(&mut self) -> Result<Expr, SqlError> {
        let first = self.ident()?;
        if self.peek().tok == Tok::Sym(".") {
            self.next();
            let name = self.ident()?;
            let span = first.span.to(name.span);
            let mut e = Expr {
                kind: ExprKind::Column {
                    qualifier: Some(first),
                    name,
                },
                span,
            };
            // `t.r.COLUMN1`: fields of a row-typed column.
            while self.peek().tok == Tok::Sym(".") {
                self.next();
                let field = self.ident()?;
                let span = e.span.to(field.span);
                e = Expr {
                    kind: ExprKind::Field {
                        expr: Box::new(e),
                        field,
                    },
                    span,
                };
            }
            return Ok(e);
        }
        let span = first.span;
        Ok(Expr {
            kind: ExprKind::Column {
                qualifier: None,
                name: first,
            },
            span,
        })
    }

    fn case_expr(&mut self) -> Result<Expr, SqlError> {
        let start = self.expect_kw("CASE")?;
        let operand = if self.is_kw("WHEN") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut whens = Vec::new();
        while self.eat_kw("WHEN") {
            let w = self.expr()?;
            self.expect_kw("THEN")?;
            let r = self.expr()?;
            whens.push((w, r));
        }
        if whens.is_empty() {
            return Err(self.unexpected(&["\"WHEN\""]));
        }
        let otherwise = if self.eat_kw("ELSE") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        self.expect_kw("END")?;
        Ok(Expr {
            kind: ExprKind::Case {
                operand,
                whens,
                otherwise,
            },
            span: start.to(self.prev_span()),
        })
    }

    fn unit(&mut self) -> Result<Unit, SqlError> {
        let u = match &self.peek().tok {
            Tok::Ident {
                name,
                quoted: false,
            } => Unit::parse(name),
            _ => None,
        };
        match u {
            Some(u) => {
                self.next();
                Ok(u)
            }
            None => Err(self.unexpected(&[
                "\"YEAR\"",
                "\"MONTH\"",
                "\"DAY\"",
                "\"HOUR\"",
                "\"MINUTE\"",
                "\"SECOND\"",
            ])),
        }
    }

    fn function(&mut self) -> Result<Expr, SqlError> {
        let name_tok = self.next();
        let name = match &name_tok.tok {
            Tok::Ident { name, .. } => name.clone(),
            _ => unreachable!("function() is only called on an identifier"),
        };
        let start = name_tok.span;
        self.expect_sym("(")?;
        let done = |p: &mut Parser, kind: ExprKind| -> Result<Expr, SqlError> {
            p.expect_sym(")")?;
            Ok(Expr {
                kind,
                span: start.to(p.prev_span()),
            })
        };
        match name.as_str() {
            "STEP" => {
                let e = self.expr()?;
                self.expect_kw("BY")?;
                let interval = self.expr()?;
                return done(
                    self,
                    ExprKind::Step {
                        expr: Box::new(e),
                        interval: Box::new(interval),
                    },
                );
            }
            "FLOOR" | "CEIL" | "CEILING" => {
                let e = self.expr()?;
                if self.eat_kw("TO") {
                    let unit = self.unit()?;
                    return done(
                        self,
                        ExprKind::FloorCeil {
                            expr: Box::new(e),
                            unit,
                            ceil: name != "FLOOR",
                        },
                    );
                }
                let kind = ExprKind::Function {
                    name: if name == "FLOOR" { name } else { "CEIL".into() },
                    args: vec![e],
                    star: false,
                    distinct: false,
                    ignore_nulls: false,
                    over: None,
                };
                return done(self, kind);
            }
            "EXTRACT" => {
                let unit = self.unit()?;
                self.expect_kw("FROM")?;
                let e = self.expr()?;
                return done(
                    self,
                    ExprKind::Extract {
                        unit,
                        expr: Box::new(e),
                    },
                );
            }
            "POSITION" => {
                let needle = self.additive()?;
                self.expect_kw("IN")?;
                let haystack = self.expr()?;
                return done(
                    self,
                    ExprKind::Position {
                        needle: Box::new(needle),
                        haystack: Box::new(haystack),
                    },
                );
            }
            "SUBSTRING" => {
                let e = self.expr()?;
                let (from, len) = if self.eat_kw("FROM") {
                    let from = self.expr()?;
                    let len = if self.eat_kw("FOR") {
                        Some(Box::new(self.expr()?))
                    } else {
                        None
                    };
                    (from, len)
                } else {
                    self.expect_sym(",")?;
                    let from = self.expr()?;
                    let len = if self.eat_sym(",") {
                        Some(Box::new(self.expr()?))
                    } else {
                        None
                    };
                    (from, len)
                };
                return done(
                    self,
                    ExprKind::Substring {
                        expr: Box::new(e),
                        from: Box::new(from),
                        len,
                    },
                );
            }
            "TRIM" => {
                let spec = if self.eat_kw("BOTH") {
                    Some(TrimSpec::Both)
                } else if self.eat_kw("LEADING") {
                    Some(TrimSpec::Leading)
                } else if self.eat_kw("TRAILING") {
                    Some(TrimSpec::Trailing)
                } else {
                    None
                };
                let (chars, e) = if spec.is_some() && self.eat_kw("FROM") {
                    (None, self.expr()?)
                } else {
                    let first = self.expr()?;
                    if self.eat_kw("FROM") {
                        (Some(Box::new(first)), self.expr()?)
                    } else {
                        (None, first)
                    }
                };
                return done(
                    self,
                    ExprKind::Trim {
                        spec: spec.unwrap_or(TrimSpec::Both),
                        chars,
                        expr: Box::new(e),
                    },
                );
            }
            _ => {}
        }
        let mut args = Vec::new();
        let mut star = false;
        let distinct = self.eat_kw("DISTINCT");
        if self.peek().tok == Tok::Sym("*") {
            self.next();
            star = true;
        } else if self.peek().tok != Tok::Sym(")") {
            args.push(self.expr()?);
            while self.eat_sym(",") {
                args.push(self.expr()?);
            }
        }
        self.expect_sym(")")?;
        // `LAG(x) IGNORE NULLS OVER w` and friends take a null-treatment before OVER.
        let mut ignore_nulls = false;
        if (self.is_kw("IGNORE") || self.is_kw("RESPECT")) && is_kw(self.peek_at(1), "NULLS") {
            ignore_nulls = self.is_kw("IGNORE");
            self.next();
            self.next();
        }
        let over = if self.eat_kw("OVER") {
            if self.peek().tok == Tok::Sym("(") {
                Some(Over::Inline(self.window_spec()?))
            } else {
                Some(Over::Named(self.ident()?))
            }
        } else {
            None
        };
        Ok(Expr {
            kind: ExprKind::Function {
                name,
                args,
                star,
                distinct,
                ignore_nulls,
                over,
            },
            span: start.to(self.prev_span()),
        })
    }
}

fn is_kw(t: &Token, kw: &str) -> bool {
    matches!(&t.tok, Tok::Ident { name, quoted: false } if name == kw)
}

fn sym(s: &str) -> &'static str {
    // Symbols in the token stream are the lexer's static strings; map the caller's text to them.
    match s {
        "(" => "(",
        ")" => ")",
        "," => ",",
        ";" => ";",
        "." => ".",
        "*" => "*",
        "-" => "-",
        "+" => "+",
        _ => "?",
    }
}

fn binary(op: BinOp, left: Expr, right: Expr) -> Expr {
    let span = left.span.to(right.span);
    Expr {
        kind: ExprKind::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        },
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Pos;

    #[test]
    fn create_stream_and_pump_parse_with_quoted_and_unquoted_names() {
        let stmts = parse(
            r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), "Price" DOUBLE);
               CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
               SELECT STREAM ticker_symbol, price FROM "SOURCE_SQL_STREAM_001" WHERE sector SIMILAR TO '%TECH%';"#,
        )
        .unwrap();
        assert_eq!(stmts.len(), 2);
        match &stmts[0] {
            Statement::CreateStream { columns, .. } => {
                assert_eq!(columns[0].name.name, "TICKER_SYMBOL");
                assert_eq!(columns[1].name.name, "Price");
                assert_eq!(columns[0].ty, SqlType::Varchar(4));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn step_floor_and_stagger_parse() {
        let q = parse_query(
            "SELECT STREAM t, FLOOR(e TO MINUTE), COUNT(*) FROM s \
             WINDOWED BY STAGGER (PARTITION BY FLOOR(e TO MINUTE), t RANGE INTERVAL '1' MINUTE)",
        )
        .unwrap();
        assert_eq!(q.stagger.unwrap().range_ms, 60_000);
        let q = parse_query(
            "SELECT STREAM COUNT(*) FROM s GROUP BY STEP(s.ROWTIME BY INTERVAL '30' SECOND)",
        )
        .unwrap();
        assert!(matches!(q.group_by[0].kind, ExprKind::Step { .. }));
    }

    #[test]
    fn a_misspelled_keyword_reports_the_token_and_its_position() {
        // As in Calcite, `FORM` reads as an alias of `a`, so the error is at the stream name.
        let err = parse("CREATE OR REPLACE STREAM s (a INTEGER);\nCREATE PUMP p AS INSERT INTO s\n  SELECT STREAM a FORM x;").unwrap_err();
        assert_eq!(err.pos(), Pos::new(3, 24));
        assert!(
            err.message
                .starts_with("Encountered \"X\" at line 3, column 24."),
            "{}",
            err.message
        );
        assert!(err.message.contains("\"FROM\""), "{}", err.message);
    }

    #[test]
    fn compound_interval_literals_add_up() {
        let q = parse_query(
            "SELECT STREAM a FROM s WINDOW w AS (RANGE INTERVAL '1:30' MINUTE TO SECOND PRECEDING)",
        )
        .unwrap();
        assert_eq!(q.windows[0].spec.frame, Frame::Range(90_000));
    }
}

#[cfg(test)]
mod join_tests {
    use super::*;

    #[test]
    fn a_left_join_to_a_reference_table_parses() {
        let q = parse_query(
            r#"SELECT STREAM ticker_symbol, "c"."Company" FROM "SOURCE_SQL_STREAM_001" LEFT JOIN "CompanyName" as "c"
               ON "SOURCE_SQL_STREAM_001".ticker_symbol = "c"."Ticker""#,
        )
        .unwrap();
        assert!(matches!(q.from, FromItem::Join { outer: true, .. }));
    }
}
