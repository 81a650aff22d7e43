//! Compiled expressions and their evaluation against one row.

use crate::ast::{BinOp, TrimSpec};
use crate::error::EvalError;
use crate::functions::{self, Func};
use crate::time::{self, Unit};
use crate::value::{SqlType, Value};
use std::cmp::Ordering;

/// An expression with names resolved to positions and types checked.
#[derive(Debug, Clone)]
pub enum CExpr {
    Col(usize),
    Rowtime,
    Lit(Value),
    Binary(BinOp, Box<CExpr>, Box<CExpr>),
    Neg(Box<CExpr>),
    Not(Box<CExpr>),
    Func(Func, Vec<CExpr>),
    Case {
        operand: Option<Box<CExpr>>,
        whens: Vec<(CExpr, CExpr)>,
        otherwise: Option<Box<CExpr>>,
    },
    Cast(Box<CExpr>, SqlType),
    IsNull(Box<CExpr>, bool),
    Between(Box<CExpr>, Box<CExpr>, Box<CExpr>, bool),
    InList(Box<CExpr>, Vec<CExpr>, bool),
    Like {
        expr: Box<CExpr>,
        pattern: Pattern,
        negated: bool,
    },
    Step(Box<CExpr>, i64),
    FloorCeil(Box<CExpr>, Unit, bool),
    Extract(Unit, Box<CExpr>),
    Position(Box<CExpr>, Box<CExpr>),
    Substring(Box<CExpr>, Box<CExpr>, Option<Box<CExpr>>),
    Trim(TrimSpec, Option<Box<CExpr>>, Box<CExpr>),
    /// The value of the i-th GROUP BY (or stagger PARTITION BY) expression of the group.
    Key(usize),
    /// The result of the i-th aggregate of the group or window.
    Agg(usize),
    /// A log-parsing function over a string: a row-typed value.
    LogParse(Box<crate::logparse::LogParser>, Box<CExpr>),
    /// The i-th field of a row-typed value.
    Field(Box<CExpr>, usize),
}

/// A LIKE or SIMILAR TO pattern, compiled once when it is a literal.
#[derive(Debug, Clone)]
pub enum Pattern {
    Fixed(regex_lite::Regex),
    Dynamic {
        pattern: Box<CExpr>,
        escape: Option<Box<CExpr>>,
        similar: bool,
    },
}

/// What an expression can see: the input row, and for aggregate outputs the group's keys and
/// aggregate results.
pub struct Ctx<'a> {
    pub row: &'a [Value],
    pub rowtime: i64,
    pub keys: &'a [Value],
    pub aggs: &'a [Value],
    pub clock: i64,
}

/// Translates a LIKE or SIMILAR TO pattern into an anchored regular expression.
pub fn pattern_regex(
    pattern: &str,
    escape: Option<char>,
    similar: bool,
) -> Result<regex_lite::Regex, String> {
    let mut re = String::from("^(?s:");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(n) = chars.next() {
                re.push_str(&regex_lite::escape(&n.to_string()));
            }
            continue;
        }
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            // SIMILAR TO is LIKE plus regular-expression alternation, repetition and classes.
            '|' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' if similar => re.push(c),
            _ => re.push_str(&regex_lite::escape(&c.to_string())),
        }
    }
    re.push_str(")$");
    regex_lite::Regex::new(&re).map_err(|e| e.to_string())
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Boolean(b) => Some(*b),
        _ => None,
    }
}

fn bool_val(b: Option<bool>) -> Value {
    b.map(Value::Boolean).unwrap_or(Value::Null)
}

impl CExpr {
    pub fn eval(&self, cx: &Ctx) -> Result<Value, EvalError> {
        Ok(match self {
            CExpr::Col(i) => cx.row[*i].clone(),
            CExpr::Rowtime => Value::Timestamp(cx.rowtime),
            CExpr::Lit(v) => v.clone(),
            CExpr::Key(i) => cx.keys[*i].clone(),
            CExpr::Agg(i) => cx.aggs[*i].clone(),
            CExpr::LogParse(p, x) => match x.eval(cx)? {
                Value::Null => Value::Null,
                v => p.parse(&v.to_text(), cx.clock)?,
            },
            CExpr::Field(x, i) => match x.eval(cx)? {
                Value::Row(mut fields) if *i < fields.len() => fields.swap_remove(*i),
                _ => Value::Null,
            },
            CExpr::Binary(op, l, r) => {
                match op {
                    // AND and OR follow three-valued logic and short-circuit.
                    BinOp::And => {
                        let a = truth(&l.eval(cx)?);
                        if a == Some(false) {
                            return Ok(Value::Boolean(false));
                        }
                        let b = truth(&r.eval(cx)?);
                        return Ok(match (a, b) {
                            (_, Some(false)) => Value::Boolean(false),
                            (Some(true), Some(true)) => Value::Boolean(true),
                            _ => Value::Null,
                        });
                    }
                    BinOp::Or => {
                        let a = truth(&l.eval(cx)?);
                        if a == Some(true) {
                            return Ok(Value::Boolean(true));
                        }
                        let b = truth(&r.eval(cx)?);
                        return Ok(match (a, b) {
                            (_, Some(true)) => Value::Boolean(true),
                            (Some(false), Some(false)) => Value::Boolean(false),
                            _ => Value::Null,
                        });
                    }
                    _ => {}
                }
                binary(*op, l.eval(cx)?, r.eval(cx)?)?
            }
            CExpr::Neg(e) => match e.eval(cx)? {
                Value::Integer(i) => Value::Integer(
                    i.checked_neg()
                        .ok_or_else(|| EvalError::overflow("Negation overflow"))?,
                ),
                Value::Double(d) => Value::Double(-d),
                Value::Interval(i) => Value::Interval(-i),
                other => other,
            },
            CExpr::Not(e) => bool_val(truth(&e.eval(cx)?).map(|b| !b)),
            CExpr::Func(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| a.eval(cx))
                    .collect::<Result<Vec<_>, _>>()?;
                functions::call(*f, vals, cx.clock)?
            }
            CExpr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let subject = operand.as_ref().map(|o| o.eval(cx)).transpose()?;
                for (w, then) in whens {
                    let w = w.eval(cx)?;
                    let hit = match &subject {
                        Some(s) => s.sql_cmp(&w) == Some(Ordering::Equal),
                        None => truth(&w) == Some(true),
                    };
                    if hit {
                        return then.eval(cx);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(cx)?,
                    None => Value::Null,
                }
            }
            CExpr::Cast(e, t) => e.eval(cx)?.cast(t)?,
            CExpr::IsNull(e, negated) => Value::Boolean(e.eval(cx)?.is_null() != *negated),
            CExpr::Between(e, lo, hi, negated) => {
                let v = e.eval(cx)?;
                let (lo, hi) = (lo.eval(cx)?, hi.eval(cx)?);
                let ge = v.sql_cmp(&lo).map(|o| o != Ordering::Less);
                let le = v.sql_cmp(&hi).map(|o| o != Ordering::Greater);
                let r = match (ge, le) {
                    (Some(a), Some(b)) => Some(a && b),
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    _ => None,
                };
                bool_val(r.map(|b| b != *negated))
            }
            CExpr::InList(e, list, negated) => {
                let v = e.eval(cx)?;
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for item in list {
                    let x = item.eval(cx)?;
                    match v.sql_cmp(&x) {
                        Some(Ordering::Equal) => return Ok(Value::Boolean(!*negated)),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                if saw_null {
                    Value::Null
                } else {
                    Value::Boolean(*negated)
                }
            }
            CExpr::Like {
                expr,
                pattern,
                negated,
            } => {
                let v = expr.eval(cx)?;
                let Value::Varchar(s) = v else {
                    return Ok(Value::Null);
                };
                let hit = match pattern {
                    Pattern::Fixed(re) => re.is_match(&s),
                    Pattern::Dynamic {
                        pattern,
                        escape,
                        similar,
                    } => {
                        let p = pattern.eval(cx)?;
                        let Value::Varchar(p) = p else {
                            return Ok(Value::Null);
                        };
                        let esc = match escape {
                            Some(e) => e.eval(cx)?.as_str().and_then(|s| s.chars().next()),
                            None => None,
                        };
                        pattern_regex(&p, esc, *similar)
                            .map_err(|e| {
                                EvalError::new(
                                    "Invalid_Argument",
                                    format!("Invalid pattern '{p}': {e}"),
                                )
                            })?
                            .is_match(&s)
                    }
                };
                Value::Boolean(hit != *negated)
            }
            CExpr::Step(e, ms) => match e.eval(cx)? {
                Value::Timestamp(t) => Value::Timestamp(t.div_euclid(*ms) * ms),
                Value::Integer(i) => Value::Integer(i.div_euclid(*ms) * ms),
                _ => Value::Null,
            },
            CExpr::FloorCeil(e, unit, ceil) => match e.eval(cx)? {
                Value::Timestamp(t) => Value::Timestamp(if *ceil {
                    time::ceil_to(t, *unit)
                } else {
                    time::floor_to(t, *unit)
                }),
                Value::Date(d) => {
                    let t = d * time::MS_DAY;
                    let r = if *ceil {
                        time::ceil_to(t, *unit)
                    } else {
                        time::floor_to(t, *unit)
                    };
                    Value::Date(r.div_euclid(time::MS_DAY))
                }
                Value::Time(t) => Value::Time(if *ceil {
                    time::ceil_to(t, *unit)
                } else {
                    time::floor_to(t, *unit)
                }),
                _ => Value::Null,
            },
            CExpr::Extract(unit, e) => {
                let ms = match e.eval(cx)? {
                    Value::Timestamp(t) | Value::Time(t) => t,
                    Value::Date(d) => d * time::MS_DAY,
                    Value::Interval(i) => {
                        return Ok(Value::Integer(match unit {
                            Unit::Day => i / time::MS_DAY,
                            Unit::Hour => i % time::MS_DAY / time::MS_HOUR,
                            Unit::Minute => i % time::MS_HOUR / time::MS_MINUTE,
                            Unit::Second => i % time::MS_MINUTE / time::MS_SECOND,
                            _ => 0,
                        }))
                    }
                    _ => return Ok(Value::Null),
                };
                let c = time::to_civil(ms);
                Value::Integer(match unit {
                    Unit::Year => c.year,
                    Unit::Month => c.month as i64,
                    Unit::Day => c.day as i64,
                    Unit::Hour => c.hour as i64,
                    Unit::Minute => c.minute as i64,
                    Unit::Second => c.second as i64,
                })
            }
            CExpr::Position(needle, hay) => match (needle.eval(cx)?, hay.eval(cx)?) {
                (Value::Varchar(n), Value::Varchar(h)) => Value::Integer(
                    h.find(&n)
                        .map(|b| h[..b].chars().count() as i64 + 1)
                        .unwrap_or(0),
                ),
                _ => Value::Null,
            },
            CExpr::Substring(e, from, len) => {
                let v = e.eval(cx)?;
                let from = from.eval(cx)?;
                let len = len.as_ref().map(|l| l.eval(cx)).transpose()?;
                match (v, from, len) {
                    (Value::Varchar(s), Value::Integer(f), None) => {
                        Value::Varchar(s.chars().skip((f.max(1) - 1) as usize).collect())
                    }
                    (Value::Varchar(s), Value::Integer(f), Some(Value::Integer(l))) => {
                        if l < 0 {
                            return Err(EvalError::new(
                                "Substring_Error",
                                "Negative substring length not allowed",
                            ));
                        }
                        // SQL counts from 1 and lets the window start before the string.
                        let end = f + l;
                        let start = f.max(1);
                        let take = (end - start).max(0) as usize;
                        Value::Varchar(s.chars().skip((start - 1) as usize).take(take).collect())
                    }
                    _ => Value::Null,
                }
            }
            CExpr::Trim(spec, chars, e) => {
                let v = e.eval(cx)?;
                let set: Vec<char> = match chars {
                    Some(c) => match c.eval(cx)? {
                        Value::Varchar(s) => s.chars().collect(),
                        _ => return Ok(Value::Null),
                    },
                    None => vec![' '],
                };
                match v {
                    Value::Varchar(s) => Value::Varchar(match spec {
                        TrimSpec::Both => s.trim_matches(set.as_slice()).to_string(),
                        TrimSpec::Leading => s.trim_start_matches(set.as_slice()).to_string(),
                        TrimSpec::Trailing => s.trim_end_matches(set.as_slice()).to_string(),
                    }),
                    _ => Value::Null,
                }
            }
        })
    }

    /// Evaluates a condition; NULL counts as false, as in WHERE and HAVING.
    pub fn test(&self, cx: &Ctx) -> Result<bool, EvalError> {
        Ok(truth(&self.eval(cx)?) == Some(true))
    }
}

fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, EvalError> {
    use Value::*;
    if a.is_null() || b.is_null() {
        return Ok(Null);
    }
    let cmp = |want: fn(Ordering) -> bool| Ok(bool_val(a.sql_cmp(&b).map(want)));
    match op {
        BinOp::Eq => return cmp(|o| o == Ordering::Equal),
        BinOp::Ne => return cmp(|o| o != Ordering::Equal),
        BinOp::Lt => return cmp(|o| o == Ordering::Less),
        BinOp::Le => return cmp(|o| o != Ordering::Greater),
        BinOp::Gt => return cmp(|o| o == Ordering::Greater),
        BinOp::Ge => return cmp(|o| o != Ordering::Less),
        BinOp::Concat => return Ok(Varchar(format!("{}{}", a.to_text(), b.to_text()))),
        _ => {}
    }
    let overflow = || EvalError::overflow(format!("Overflow in '{}'", op.symbol()));
    Ok(match (a, b) {
        (Integer(x), Integer(y)) => Integer(match op {
            BinOp::Add => x.checked_add(y).ok_or_else(overflow)?,
            BinOp::Sub => x.checked_sub(y).ok_or_else(overflow)?,
            BinOp::Mul => x.checked_mul(y).ok_or_else(overflow)?,
            BinOp::Div => {
                if y == 0 {
                    return Err(EvalError::division_by_zero());
                }
                x.checked_div(y).ok_or_else(overflow)?
            }
            _ => unreachable!("comparison handled above"),
        }),
        (Timestamp(t), Interval(i)) | (Interval(i), Timestamp(t)) if op == BinOp::Add => {
            Timestamp(t + i)
        }
        (Timestamp(t), Interval(i)) if op == BinOp::Sub => Timestamp(t - i),
        (Timestamp(t), Timestamp(u)) if op == BinOp::Sub => Interval(t - u),
        (Interval(x), Interval(y)) if op == BinOp::Add => Interval(x + y),
        (Interval(x), Interval(y)) if op == BinOp::Sub => Interval(x - y),
        (x, y) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            Double(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => {
                    // KDA sends rows that divide by zero to error_stream for approximate numbers
                    // too, rather than producing Infinity (AWS's own error-stream example).
                    if y == 0.0 {
                        return Err(EvalError::division_by_zero());
                    }
                    x / y
                }
                _ => unreachable!("comparison handled above"),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_to_allows_alternation_while_like_treats_it_literally() {
        assert!(pattern_regex("%(AMZN|TGT)%", None, true)
            .unwrap()
            .is_match("X AMZN Y"));
        assert!(!pattern_regex("%(AMZN|TGT)%", None, false)
            .unwrap()
            .is_match("X AMZN Y"));
        assert!(pattern_regex("a\\_%", Some('\\'), false)
            .unwrap()
            .is_match("a_bc"));
        assert!(!pattern_regex("a\\_%", Some('\\'), false)
            .unwrap()
            .is_match("abc"));
    }

    #[test]
    fn integer_division_truncates_and_division_by_zero_is_an_error() {
        assert_eq!(
            binary(BinOp::Div, Value::Integer(7), Value::Integer(2)),
            Ok(Value::Integer(3))
        );
        assert_eq!(
            binary(BinOp::Div, Value::Double(1.0), Value::Double(0.0)),
            Err(EvalError::division_by_zero())
        );
    }
}
