//! The syntax tree of KDA application code, as parsed, before names are resolved.

use crate::error::Span;
use crate::time::Unit;
use crate::value::{SqlType, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// Upper-cased when written unquoted; exact when quoted.
    pub name: String,
    pub quoted: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateStream {
        name: Ident,
        columns: Vec<ColumnDef>,
        span: Span,
    },
    CreatePump {
        name: Ident,
        target: Ident,
        columns: Option<Vec<Ident>>,
        query: Box<Query>,
        /// The queries after `UNION ALL`: each feeds the target like `query`, so the pump's
        /// output is the merge of their rows.
        union_all: Vec<Query>,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: Ident,
    pub ty: SqlType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub span: Span,
    pub stream: bool,
    pub distinct: bool,
    pub items: Vec<SelectItem>,
    pub from: FromItem,
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub stagger: Option<Stagger>,
    pub having: Option<Expr>,
    pub windows: Vec<NamedWindow>,
    pub order_by: Vec<OrderItem>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Star {
        qualifier: Option<Ident>,
        span: Span,
    },
    Expr {
        expr: Expr,
        alias: Option<Ident>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum FromItem {
    Stream {
        name: Ident,
        alias: Option<Ident>,
        /// `"S" OVER (RANGE INTERVAL '1' MINUTE PRECEDING)`: the window of a stream-to-stream
        /// join's side.
        over: Option<Over>,
    },
    Subquery {
        query: Box<Query>,
        alias: Option<Ident>,
        /// `AS l(r)`: names for the subquery's columns.
        column_aliases: Vec<Ident>,
        span: Span,
    },
    /// `TABLE(F(CURSOR(SELECT STREAM ...), args...))`: a table function over a query.
    TableFunction {
        name: Ident,
        cursor: Box<Query>,
        args: Vec<Expr>,
        alias: Option<Ident>,
        span: Span,
    },
    /// `left [LEFT [OUTER] | INNER] JOIN right ON condition`.
    Join {
        left: Box<FromItem>,
        right: Box<FromItem>,
        outer: bool,
        /// `RIGHT` or `FULL [OUTER] JOIN`: unmatched right rows are kept too (stream joins).
        keep_right: bool,
        on: Expr,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stagger {
    pub partition: Vec<Expr>,
    pub range_ms: i64,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NamedWindow {
    pub name: Ident,
    pub spec: WindowSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    pub partition: Vec<Expr>,
    pub frame: Frame,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `RANGE INTERVAL ... PRECEDING`: rows whose ROWTIME is at most this many ms older.
    Range(i64),
    /// `ROWS n PRECEDING`: the current row and the `n` before it.
    Rows(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Over {
    Named(Ident),
    Inline(WindowSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub expr: Expr,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Concat => "||",
            BinOp::Eq => "=",
            BinOp::Ne => "<>",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimSpec {
    Both,
    Leading,
    Trailing,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Column {
        qualifier: Option<Ident>,
        name: Ident,
    },
    Literal(Value, SqlType),
    /// `t.r.COLUMN1`: a field of a row-typed value (what the log-parsing functions return).
    Field {
        expr: Box<Expr>,
        field: Ident,
    },
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Function {
        name: String,
        args: Vec<Expr>,
        star: bool,
        distinct: bool,
        /// `IGNORE NULLS` after the arguments (LAG, NTH_VALUE).
        ignore_nulls: bool,
        over: Option<Over>,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast {
        expr: Box<Expr>,
        ty: SqlType,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<Box<Expr>>,
        negated: bool,
        similar: bool,
    },
    /// `STEP(expr BY INTERVAL ...)`: rounds down to a multiple of the interval.
    Step {
        expr: Box<Expr>,
        interval: Box<Expr>,
    },
    /// `FLOOR(expr TO unit)` and `CEIL(expr TO unit)`.
    FloorCeil {
        expr: Box<Expr>,
        unit: Unit,
        ceil: bool,
    },
    Extract {
        unit: Unit,
        expr: Box<Expr>,
    },
    Position {
        needle: Box<Expr>,
        haystack: Box<Expr>,
    },
    Substring {
        expr: Box<Expr>,
        from: Box<Expr>,
        len: Option<Box<Expr>>,
    },
    Trim {
        spec: TrimSpec,
        chars: Option<Box<Expr>>,
        expr: Box<Expr>,
    },
}

impl Expr {
    /// Structural equality that ignores positions, for matching select items to GROUP BY and
    /// PARTITION BY expressions.
    pub fn same_as(&self, other: &Expr) -> bool {
        strip(self) == strip(other)
    }

    /// The SQL text of the expression, for messages like `Expression 'X' is not being grouped`.
    pub fn text(&self) -> String {
        match &self.kind {
            ExprKind::Column {
                qualifier: Some(q),
                name,
            } => format!("{}.{}", q.name, name.name),
            ExprKind::Column { name, .. } => name.name.clone(),
            ExprKind::Field { expr, field } => format!("{}.{}", expr.text(), field.name),
            ExprKind::Literal(v, _) => v.to_text(),
            ExprKind::Binary { op, left, right } => {
                format!("{} {} {}", left.text(), op.symbol(), right.text())
            }
            ExprKind::Function {
                name, args, star, ..
            } => {
                if *star {
                    format!("{name}(*)")
                } else {
                    let a: Vec<String> = args.iter().map(Expr::text).collect();
                    format!("{name}({})", a.join(", "))
                }
            }
            ExprKind::FloorCeil { expr, unit, ceil } => format!(
                "{}({} TO {unit:?})",
                if *ceil { "CEIL" } else { "FLOOR" },
                expr.text()
            )
            .to_uppercase(),
            ExprKind::Step { expr, .. } => format!("STEP({} BY ...)", expr.text()),
            _ => "expression".into(),
        }
    }
}

fn strip(e: &Expr) -> Expr {
    let zero = Span::default();
    // Quoting only decides case, which the name already reflects.
    let id = |i: &Ident| Ident {
        span: zero,
        quoted: false,
        name: i.name.clone(),
    };
    let b = |e: &Expr| Box::new(strip(e));
    let kind = match &e.kind {
        ExprKind::Column { qualifier, name } => {
            // Qualifiers are dropped: `"S".ROWTIME` and `ROWTIME` name the same column when they
            // match at all, which name resolution has already checked.
            let _ = qualifier;
            ExprKind::Column {
                qualifier: None,
                name: id(name),
            }
        }
        ExprKind::Literal(v, t) => ExprKind::Literal(v.clone(), t.clone()),
        ExprKind::Field { expr, field } => ExprKind::Field {
            expr: b(expr),
            field: id(field),
        },
        ExprKind::Binary { op, left, right } => ExprKind::Binary {
            op: *op,
            left: b(left),
            right: b(right),
        },
        ExprKind::Neg(x) => ExprKind::Neg(b(x)),
        ExprKind::Not(x) => ExprKind::Not(b(x)),
        ExprKind::Function {
            name,
            args,
            star,
            distinct,
            ignore_nulls,
            over,
        } => ExprKind::Function {
            name: name.clone(),
            args: args.iter().map(strip).collect(),
            star: *star,
            distinct: *distinct,
            ignore_nulls: *ignore_nulls,
            over: over.as_ref().map(|o| match o {
                Over::Named(n) => Over::Named(id(n)),
                Over::Inline(w) => Over::Inline(WindowSpec {
                    partition: w.partition.iter().map(strip).collect(),
                    frame: w.frame,
                    span: zero,
                }),
            }),
        },
        ExprKind::Case {
            operand,
            whens,
            otherwise,
        } => ExprKind::Case {
            operand: operand.as_deref().map(b),
            whens: whens.iter().map(|(w, t)| (strip(w), strip(t))).collect(),
            otherwise: otherwise.as_deref().map(b),
        },
        ExprKind::Cast { expr, ty } => ExprKind::Cast {
            expr: b(expr),
            ty: ty.clone(),
        },
        ExprKind::IsNull { expr, negated } => ExprKind::IsNull {
            expr: b(expr),
            negated: *negated,
        },
        ExprKind::Between {
            expr,
            low,
            high,
            negated,
        } => ExprKind::Between {
            expr: b(expr),
            low: b(low),
            high: b(high),
            negated: *negated,
        },
        ExprKind::InList {
            expr,
            list,
            negated,
        } => ExprKind::InList {
            expr: b(expr),
            list: list.iter().map(strip).collect(),
            negated: *negated,
        },
        ExprKind::Like {
            expr,
            pattern,
            escape,
            negated,
            similar,
        } => ExprKind::Like {
            expr: b(expr),
            pattern: b(pattern),
            escape: escape.as_deref().map(b),
            negated: *negated,
            similar: *similar,
        },
        ExprKind::Step { expr, interval } => ExprKind::Step {
            expr: b(expr),
            interval: b(interval),
        },
        ExprKind::FloorCeil { expr, unit, ceil } => ExprKind::FloorCeil {
            expr: b(expr),
            unit: *unit,
            ceil: *ceil,
        },
        ExprKind::Extract { unit, expr } => ExprKind::Extract {
            unit: *unit,
            expr: b(expr),
        },
        ExprKind::Position { needle, haystack } => ExprKind::Position {
            needle: b(needle),
            haystack: b(haystack),
        },
        ExprKind::Substring { expr, from, len } => ExprKind::Substring {
            expr: b(expr),
            from: b(from),
            len: len.as_deref().map(b),
        },
        ExprKind::Trim { spec, chars, expr } => ExprKind::Trim {
            spec: *spec,
            chars: chars.as_deref().map(b),
            expr: b(expr),
        },
    };
    Expr { kind, span: zero }
}
