//! Scalar and aggregate functions: their signatures (checked when a pump is created) and their
//! evaluation (per row).

use crate::error::EvalError;
use crate::time;
use crate::value::{SqlType, Value};

/// A scalar function known to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Abs,
    Upper,
    Lower,
    Initcap,
    CharLength,
    Coalesce,
    NullIf,
    Mod,
    Power,
    Sqrt,
    Ln,
    Log10,
    Exp,
    Round,
    FloorNum,
    CeilNum,
    Tsdiff,
    CharToTimestamp,
    CharToDate,
    CharToTime,
    TimestampToChar,
    DateToChar,
    TimeToChar,
    CurrentRowTimestamp,
    CurrentTimestamp,
    CurrentDate,
    RegexReplace,
    /// `MONOTONIC(x)`: x, declared monotonic.
    Monotonic,
}

/// Type classes of function parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Numeric,
    Exact,
    Str,
    Timestamp,
    Date,
    Time,
    Any,
}

impl Param {
    fn accepts(self, t: &SqlType) -> bool {
        *t == SqlType::Null
            || match self {
                Param::Numeric => t.is_numeric(),
                Param::Exact => t.is_exact(),
                Param::Str => t.is_string(),
                Param::Timestamp => *t == SqlType::Timestamp,
                Param::Date => *t == SqlType::Date,
                Param::Time => *t == SqlType::Time,
                Param::Any => true,
            }
    }

    fn name(self) -> &'static str {
        match self {
            Param::Numeric => "<NUMERIC>",
            Param::Exact => "<INTEGER>",
            Param::Str => "<CHARACTER>",
            Param::Timestamp => "<TIMESTAMP>",
            Param::Date => "<DATE>",
            Param::Time => "<TIME>",
            Param::Any => "<ANY>",
        }
    }
}

pub fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "ABS" => Func::Abs,
        "UPPER" => Func::Upper,
        "LOWER" => Func::Lower,
        "INITCAP" => Func::Initcap,
        "CHAR_LENGTH" | "CHARACTER_LENGTH" => Func::CharLength,
        "COALESCE" => Func::Coalesce,
        "NULLIF" => Func::NullIf,
        "MOD" => Func::Mod,
        "POWER" => Func::Power,
        "SQRT" => Func::Sqrt,
        "LN" => Func::Ln,
        "LOG10" => Func::Log10,
        "EXP" => Func::Exp,
        "ROUND" => Func::Round,
        "FLOOR" => Func::FloorNum,
        "CEIL" => Func::CeilNum,
        "TSDIFF" => Func::Tsdiff,
        "CHAR_TO_TIMESTAMP" => Func::CharToTimestamp,
        "CHAR_TO_DATE" => Func::CharToDate,
        "CHAR_TO_TIME" => Func::CharToTime,
        "TIMESTAMP_TO_CHAR" => Func::TimestampToChar,
        "DATE_TO_CHAR" => Func::DateToChar,
        "TIME_TO_CHAR" => Func::TimeToChar,
        "CURRENT_ROW_TIMESTAMP" => Func::CurrentRowTimestamp,
        "CURRENT_TIMESTAMP" | "LOCALTIMESTAMP" => Func::CurrentTimestamp,
        "CURRENT_DATE" => Func::CurrentDate,
        "REGEX_REPLACE" => Func::RegexReplace,
        "MONOTONIC" => Func::Monotonic,
        _ => return None,
    })
}

/// Checks argument types and returns the result type; `None` means the caller reports
/// `No match found for function signature F(<...>)`.
pub fn signature(f: Func, args: &[SqlType]) -> Option<SqlType> {
    use Param::*;
    let check = |params: &[Param]| {
        params.len() == args.len() && params.iter().zip(args).all(|(p, t)| p.accepts(t))
    };
    let first = args.first().cloned().unwrap_or(SqlType::Null);
    let str_len = match &first {
        SqlType::Char(n) | SqlType::Varchar(n) => *n,
        _ => 65_535,
    };
    let ok = |b: bool, t: SqlType| b.then_some(t);
    match f {
        Func::Abs => ok(check(&[Numeric]), first),
        Func::Upper | Func::Lower | Func::Initcap => ok(check(&[Str]), SqlType::Varchar(str_len)),
        Func::CharLength => ok(check(&[Str]), SqlType::Integer),
        Func::Coalesce => {
            if args.is_empty() || !args.iter().all(|a| a.comparable(&first)) {
                return None;
            }
            Some(args.iter().fold(SqlType::Null, |acc, t| acc.unify(t)))
        }
        Func::Monotonic => ok(args.len() == 1, first),
        Func::NullIf => ok(args.len() == 2 && args[0].comparable(&args[1]), first),
        Func::Mod => ok(
            check(&[Exact, Exact]),
            args.get(1).cloned().unwrap_or(SqlType::Integer),
        ),
        Func::Power => ok(check(&[Numeric, Numeric]), SqlType::Double),
        Func::Sqrt | Func::Ln | Func::Log10 | Func::Exp => ok(check(&[Numeric]), SqlType::Double),
        Func::Round => ok(check(&[Numeric]) || check(&[Numeric, Exact]), first),
        Func::FloorNum | Func::CeilNum => ok(check(&[Numeric]), first),
        Func::Tsdiff => ok(check(&[Timestamp, Timestamp]), SqlType::BigInt),
        Func::CharToTimestamp => ok(check(&[Str, Str]), SqlType::Timestamp),
        Func::CharToDate => ok(check(&[Str, Str]), SqlType::Date),
        Func::CharToTime => ok(check(&[Str, Str]), SqlType::Time),
        Func::TimestampToChar => ok(check(&[Str, Timestamp]), SqlType::Varchar(256)),
        Func::DateToChar => ok(check(&[Str, Date]), SqlType::Varchar(256)),
        Func::TimeToChar => ok(check(&[Str, Time]), SqlType::Varchar(256)),
        Func::CurrentRowTimestamp | Func::CurrentTimestamp => {
            ok(args.is_empty(), SqlType::Timestamp)
        }
        Func::CurrentDate => ok(args.is_empty(), SqlType::Date),
        Func::RegexReplace => ok(
            check(&[Str, Str, Str])
                || check(&[Str, Str, Str, Exact])
                || check(&[Str, Str, Str, Exact, Exact]),
            SqlType::Varchar(65_535),
        ),
    }
}

/// `<NUMERIC>, <CHARACTER>` for messages.
pub fn describe_args(args: &[SqlType]) -> String {
    args.iter()
        .map(|t| {
            if t.is_numeric() {
                Param::Numeric.name().to_string()
            } else if t.is_string() {
                Param::Str.name().to_string()
            } else {
                format!("<{t}>")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Evaluates a scalar function. `clock` is the engine's current time, the processing time that
/// `CURRENT_ROW_TIMESTAMP` reports.
pub fn call(f: Func, args: Vec<Value>, clock: i64) -> Result<Value, EvalError> {
    // COALESCE and NULLIF look at NULLs; every other function returns NULL for a NULL argument.
    match f {
        Func::Coalesce => {
            return Ok(args
                .into_iter()
                .find(|v| !v.is_null())
                .unwrap_or(Value::Null))
        }
        Func::NullIf => {
            let mut it = args.into_iter();
            let (a, b) = (
                it.next().unwrap_or(Value::Null),
                it.next().unwrap_or(Value::Null),
            );
            return Ok(if a.sql_cmp(&b) == Some(std::cmp::Ordering::Equal) {
                Value::Null
            } else {
                a
            });
        }
        Func::CurrentRowTimestamp | Func::CurrentTimestamp => return Ok(Value::Timestamp(clock)),
        Func::Monotonic => return Ok(args.into_iter().next().unwrap_or(Value::Null)),
        Func::CurrentDate => return Ok(Value::Date(clock.div_euclid(time::MS_DAY))),
        _ => {}
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let s = |i: usize| args[i].as_str().unwrap_or_default().to_string();
    let num = |i: usize| args[i].as_f64().unwrap_or(0.0);
    let int = |i: usize| match &args[i] {
        Value::Integer(n) => *n,
        _ => 0,
    };
    let ts = |i: usize| match &args[i] {
        Value::Timestamp(t) | Value::Time(t) => *t,
        Value::Date(d) => d * time::MS_DAY,
        _ => 0,
    };
    let real = |d: f64| -> Result<Value, EvalError> {
        if d.is_finite() {
            Ok(Value::Double(d))
        } else {
            Err(EvalError::new(
                "Invalid_Argument",
                format!("Invalid argument for {f:?}: result is not a number"),
            ))
        }
    };
    Ok(match f {
        Func::Abs => match &args[0] {
            Value::Integer(i) => Value::Integer(
                i.checked_abs()
                    .ok_or_else(|| EvalError::overflow("ABS overflow"))?,
            ),
            _ => Value::Double(num(0).abs()),
        },
        Func::Upper => Value::Varchar(s(0).to_uppercase()),
        Func::Lower => Value::Varchar(s(0).to_lowercase()),
        Func::Initcap => {
            let mut out = String::new();
            let mut start = true;
            for c in s(0).chars() {
                if c.is_alphanumeric() {
                    if start {
                        out.extend(c.to_uppercase());
                    } else {
                        out.extend(c.to_lowercase());
                    }
                    start = false;
                } else {
                    out.push(c);
                    start = true;
                }
            }
            Value::Varchar(out)
        }
        Func::CharLength => Value::Integer(s(0).chars().count() as i64),
        Func::Mod => {
            if int(1) == 0 {
                return Err(EvalError::division_by_zero());
            }
            Value::Integer(int(0) % int(1))
        }
        Func::Power => real(num(0).powf(num(1)))?,
        Func::Sqrt => real(num(0).sqrt())?,
        Func::Ln => real(num(0).ln())?,
        Func::Log10 => real(num(0).log10())?,
        Func::Exp => real(num(0).exp())?,
        Func::Round => {
            let places = if args.len() > 1 { int(1) } else { 0 };
            match &args[0] {
                Value::Integer(i) if places >= 0 => Value::Integer(*i),
                Value::Integer(i) => {
                    let p = 10i64.pow((-places) as u32);
                    Value::Integer((*i as f64 / p as f64).round() as i64 * p)
                }
                _ => {
                    let p = 10f64.powi(places as i32);
                    Value::Double((num(0) * p).round() / p)
                }
            }
        }
        Func::FloorNum => match &args[0] {
            Value::Integer(i) => Value::Integer(*i),
            _ => Value::Double(num(0).floor()),
        },
        Func::CeilNum => match &args[0] {
            Value::Integer(i) => Value::Integer(*i),
            _ => Value::Double(num(0).ceil()),
        },
        Func::Tsdiff => Value::Integer(ts(0) - ts(1)),
        Func::CharToTimestamp | Func::CharToDate | Func::CharToTime => {
            let (pattern, text) = (s(0), s(1));
            let ms = time::parse_java(&text, &pattern).ok_or_else(|| {
                EvalError::cast(format!("Cannot parse '{text}' with format '{pattern}'"))
            })?;
            match f {
                Func::CharToTimestamp => Value::Timestamp(ms),
                Func::CharToDate => Value::Date(ms.div_euclid(time::MS_DAY)),
                _ => Value::Time(ms.rem_euclid(time::MS_DAY)),
            }
        }
        Func::TimestampToChar | Func::DateToChar | Func::TimeToChar => {
            Value::Varchar(time::format_java(ts(1), &s(0)))
        }
        Func::Monotonic => args[0].clone(),
        Func::RegexReplace => {
            let (text, pattern, replacement) = (s(0), s(1), s(2));
            let start = if args.len() > 3 {
                int(3).max(1) as usize
            } else {
                1
            };
            let occurrence = if args.len() > 4 { int(4) } else { 0 };
            let re = regex_lite::Regex::new(&pattern).map_err(|e| {
                EvalError::new(
                    "Invalid_Argument",
                    format!("Invalid regular expression '{pattern}': {e}"),
                )
            })?;
            let split = text
                .char_indices()
                .nth(start - 1)
                .map(|(i, _)| i)
                .unwrap_or(text.len());
            let (head, tail) = text.split_at(split);
            // Java's replacement syntax uses $1 for groups, which regex-lite shares.
            let replaced = if occurrence == 0 {
                re.replace_all(tail, replacement.as_str()).into_owned()
            } else {
                let mut out = String::new();
                let mut last = 0;
                for (n, caps) in re.captures_iter(tail).enumerate() {
                    let m = caps.get(0).expect("group 0 always matches");
                    if n as i64 + 1 == occurrence {
                        out.push_str(&tail[last..m.start()]);
                        caps.expand(&replacement, &mut out);
                        last = m.end();
                        break;
                    }
                }
                out.push_str(&tail[last..]);
                out
            };
            Value::Varchar(format!("{head}{replaced}"))
        }
        Func::Coalesce
        | Func::NullIf
        | Func::CurrentRowTimestamp
        | Func::CurrentTimestamp
        | Func::CurrentDate => {
            unreachable!("handled before the NULL check")
        }
    })
}

/// An aggregate function, used by GROUP BY, stagger and sliding windows alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    FirstValue,
    LastValue,
    StddevPop,
    StddevSamp,
    VarPop,
    VarSamp,
    /// `LAG(x[, n[, default]]) OVER w`: the value `n` rows back in the window.
    Lag,
    /// `NTH_VALUE(x, n) OVER w`: the value of the window's `n`-th row.
    NthValue,
}

pub fn lookup_agg(name: &str) -> Option<AggFunc> {
    Some(match name {
        "COUNT" => AggFunc::Count,
        "SUM" => AggFunc::Sum,
        "AVG" => AggFunc::Avg,
        "MIN" => AggFunc::Min,
        "MAX" => AggFunc::Max,
        "FIRST_VALUE" => AggFunc::FirstValue,
        "LAST_VALUE" => AggFunc::LastValue,
        "STDDEV_POP" => AggFunc::StddevPop,
        "STDDEV_SAMP" | "STDDEV" => AggFunc::StddevSamp,
        "VAR_POP" => AggFunc::VarPop,
        "VAR_SAMP" | "VARIANCE" => AggFunc::VarSamp,
        "LAG" => AggFunc::Lag,
        "NTH_VALUE" => AggFunc::NthValue,
        _ => return None,
    })
}

impl AggFunc {
    /// The result type for an argument type; `None` when the argument does not fit.
    pub fn result_type(self, arg: Option<&SqlType>) -> Option<SqlType> {
        match (self, arg) {
            (AggFunc::Count, _) => Some(SqlType::BigInt),
            (_, None) => None,
            (AggFunc::Sum, Some(t)) if t.is_exact() => Some(SqlType::BigInt),
            // Calcite keeps the argument type for AVG, so AVG of an INTEGER column truncates.
            (AggFunc::Sum | AggFunc::Avg, Some(t)) if t.is_numeric() => Some(t.clone()),
            (
                AggFunc::StddevPop | AggFunc::StddevSamp | AggFunc::VarPop | AggFunc::VarSamp,
                Some(t),
            ) if t.is_numeric() => Some(SqlType::Double),
            (
                AggFunc::Min
                | AggFunc::Max
                | AggFunc::FirstValue
                | AggFunc::LastValue
                | AggFunc::Lag
                | AggFunc::NthValue,
                Some(t),
            ) => Some(t.clone()),
            _ => None,
        }
    }
}

/// Running state of one aggregate over a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Acc {
    func: AggFunc,
    count: i64,
    int_sum: i64,
    sum: f64,
    sum_sq: f64,
    all_int: bool,
    value: Option<Value>,
    /// For `AGG(DISTINCT x)`: the values seen, by [`Value::key`].
    seen: Option<std::collections::HashSet<String>>,
}

impl Acc {
    pub fn new(func: AggFunc) -> Self {
        Acc {
            func,
            count: 0,
            int_sum: 0,
            sum: 0.0,
            sum_sq: 0.0,
            all_int: true,
            value: None,
            seen: None,
        }
    }

    /// An accumulator for `AGG(DISTINCT x)`, which adds each distinct value once.
    pub fn new_distinct(func: AggFunc) -> Self {
        Acc {
            seen: Some(Default::default()),
            ..Acc::new(func)
        }
    }

    /// [`Acc::new`] or [`Acc::new_distinct`].
    pub fn for_spec(func: AggFunc, distinct: bool) -> Self {
        if distinct {
            Acc::new_distinct(func)
        } else {
            Acc::new(func)
        }
    }

    /// Adds one row. `v` is `None` for `COUNT(*)`; NULL values are skipped, as SQL requires.
    pub fn add(&mut self, v: Option<&Value>) -> Result<(), EvalError> {
        let v = match v {
            None => {
                self.count += 1;
                return Ok(());
            }
            Some(Value::Null) => return Ok(()),
            Some(v) => v,
        };
        if let Some(seen) = &mut self.seen {
            if !seen.insert(v.key()) {
                return Ok(());
            }
        }
        self.count += 1;
        match self.func {
            AggFunc::Count => {}
            AggFunc::Sum
            | AggFunc::Avg
            | AggFunc::StddevPop
            | AggFunc::StddevSamp
            | AggFunc::VarPop
            | AggFunc::VarSamp => {
                if let Value::Integer(i) = v {
                    self.int_sum = self
                        .int_sum
                        .checked_add(*i)
                        .ok_or_else(|| EvalError::overflow("SUM overflow"))?;
                } else {
                    self.all_int = false;
                }
                let d = v.as_f64().unwrap_or(0.0);
                self.sum += d;
                self.sum_sq += d * d;
            }
            AggFunc::Min => {
                if self
                    .value
                    .as_ref()
                    .is_none_or(|m| v.sql_cmp(m) == Some(std::cmp::Ordering::Less))
                {
                    self.value = Some(v.clone());
                }
            }
            AggFunc::Max => {
                if self
                    .value
                    .as_ref()
                    .is_none_or(|m| v.sql_cmp(m) == Some(std::cmp::Ordering::Greater))
                {
                    self.value = Some(v.clone());
                }
            }
            AggFunc::FirstValue => {
                if self.value.is_none() {
                    self.value = Some(v.clone());
                }
            }
            AggFunc::LastValue | AggFunc::Lag | AggFunc::NthValue => self.value = Some(v.clone()),
        }
        Ok(())
    }

    pub fn result(&self) -> Value {
        let n = self.count as f64;
        let var = |sample: bool| {
            let denom = if sample { n - 1.0 } else { n };
            if denom <= 0.0 {
                return None;
            }
            Some(((self.sum_sq - self.sum * self.sum / n) / denom).max(0.0))
        };
        match self.func {
            AggFunc::Count => Value::Integer(self.count),
            _ if self.count == 0 => Value::Null,
            AggFunc::Sum if self.all_int => Value::Integer(self.int_sum),
            AggFunc::Sum => Value::Double(self.sum),
            AggFunc::Avg if self.all_int => Value::Integer(self.int_sum / self.count),
            AggFunc::Avg => Value::Double(self.sum / n),
            AggFunc::VarPop => var(false).map(Value::Double).unwrap_or(Value::Null),
            AggFunc::VarSamp => var(true).map(Value::Double).unwrap_or(Value::Null),
            AggFunc::StddevPop => var(false)
                .map(|v| Value::Double(v.sqrt()))
                .unwrap_or(Value::Null),
            AggFunc::StddevSamp => var(true)
                .map(|v| Value::Double(v.sqrt()))
                .unwrap_or(Value::Null),
            AggFunc::Min
            | AggFunc::Max
            | AggFunc::FirstValue
            | AggFunc::LastValue
            | AggFunc::Lag
            | AggFunc::NthValue => self.value.clone().unwrap_or(Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_replace_honours_start_position_and_occurrence() {
        let v = |args: &[&str], extra: &[i64]| {
            let mut a: Vec<Value> = args.iter().map(|s| Value::Varchar(s.to_string())).collect();
            a.extend(extra.iter().map(|i| Value::Integer(*i)));
            call(Func::RegexReplace, a, 0).unwrap()
        };
        assert_eq!(
            v(&["http://a http://b", "http://", "https://"], &[]),
            Value::Varchar("https://a https://b".into())
        );
        assert_eq!(v(&["aaa", "a", "b"], &[1, 2]), Value::Varchar("aba".into()));
        assert_eq!(v(&["aaa", "a", "b"], &[2, 0]), Value::Varchar("abb".into()));
    }

    #[test]
    fn aggregates_skip_nulls_and_average_integers_as_integers() {
        let mut avg = Acc::new(AggFunc::Avg);
        for v in [Value::Integer(1), Value::Null, Value::Integer(2)] {
            avg.add(Some(&v)).unwrap();
        }
        assert_eq!(avg.result(), Value::Integer(1));
        let mut count = Acc::new(AggFunc::Count);
        count.add(Some(&Value::Null)).unwrap();
        assert_eq!(count.result(), Value::Integer(0));
    }

    #[test]
    fn initcap_capitalises_each_word() {
        let v = call(
            Func::Initcap,
            vec![Value::Varchar("hello wORLD-x".into())],
            0,
        )
        .unwrap();
        assert_eq!(v, Value::Varchar("Hello World-X".into()));
    }
}
