//! SQL types and values.
//!
//! Exact numerics are `i64`; REAL, DOUBLE and DECIMAL are `f64` (DECIMAL rounds to its scale on
//! assignment; exact decimal arithmetic is future work). Timestamps are epoch milliseconds, the
//! precision KDA has.

use crate::error::EvalError;
use crate::time;
use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SqlType {
    Boolean,
    TinyInt,
    SmallInt,
    Integer,
    BigInt,
    Decimal(u32, u32),
    Real,
    Double,
    Char(u32),
    Varchar(u32),
    Binary(u32),
    Varbinary(u32),
    Date,
    Time,
    Timestamp,
    /// A day-time interval, such as `INTERVAL '1' MINUTE`.
    Interval,
    /// The type of the literal NULL, assignable to anything.
    Null,
    /// The row a log-parsing function returns (`W3C_LOG_PARSE(...)`), read with `r.COLUMN1`.
    Row(Vec<(String, SqlType)>),
}

impl SqlType {
    pub fn is_numeric(&self) -> bool {
        self.is_exact() || matches!(self, SqlType::Decimal(..) | SqlType::Real | SqlType::Double)
    }

    pub fn is_exact(&self) -> bool {
        matches!(
            self,
            SqlType::TinyInt | SqlType::SmallInt | SqlType::Integer | SqlType::BigInt
        )
    }

    pub fn is_string(&self) -> bool {
        matches!(self, SqlType::Char(_) | SqlType::Varchar(_))
    }

    pub fn is_binary(&self) -> bool {
        matches!(self, SqlType::Binary(_) | SqlType::Varbinary(_))
    }

    pub fn is_datetime(&self) -> bool {
        matches!(self, SqlType::Date | SqlType::Time | SqlType::Timestamp)
    }

    /// Whether values of the two types can be compared or unified (in CASE, COALESCE, UNION).
    pub fn comparable(&self, other: &SqlType) -> bool {
        *self == SqlType::Null
            || *other == SqlType::Null
            || (self.is_numeric() && other.is_numeric())
            || (self.is_string() && other.is_string())
            || (self.is_binary() && other.is_binary())
            || self == other
    }

    /// Whether a value of type `self` may be stored in a column of type `target` (by INSERT).
    pub fn assignable_to(&self, target: &SqlType) -> bool {
        self.comparable(target)
    }

    /// The least type holding both, for CASE branches and arithmetic.
    pub fn unify(&self, other: &SqlType) -> SqlType {
        use SqlType::*;
        match (self, other) {
            (Null, t) | (t, Null) => t.clone(),
            (a, b) if a == b => a.clone(),
            (Real | Double, _) | (_, Real | Double) => Double,
            (Decimal(p1, s1), Decimal(p2, s2)) => Decimal(*p1.max(p2), *s1.max(s2)),
            (Decimal(p, s), _) | (_, Decimal(p, s)) => Decimal(*p, *s),
            (a, b) if a.is_exact() && b.is_exact() => {
                if *a == BigInt || *b == BigInt {
                    BigInt
                } else {
                    Integer
                }
            }
            (Char(a) | Varchar(a), Char(b) | Varchar(b)) => Varchar(*a.max(b)),
            (a, _) => a.clone(),
        }
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => write!(f, "BOOLEAN"),
            SqlType::TinyInt => write!(f, "TINYINT"),
            SqlType::SmallInt => write!(f, "SMALLINT"),
            SqlType::Integer => write!(f, "INTEGER"),
            SqlType::BigInt => write!(f, "BIGINT"),
            SqlType::Decimal(p, s) => write!(f, "DECIMAL({p}, {s})"),
            SqlType::Real => write!(f, "REAL"),
            SqlType::Double => write!(f, "DOUBLE"),
            SqlType::Char(n) => write!(f, "CHAR({n})"),
            SqlType::Varchar(n) => write!(f, "VARCHAR({n})"),
            SqlType::Binary(n) => write!(f, "BINARY({n})"),
            SqlType::Varbinary(n) => write!(f, "VARBINARY({n})"),
            SqlType::Date => write!(f, "DATE"),
            SqlType::Time => write!(f, "TIME"),
            SqlType::Timestamp => write!(f, "TIMESTAMP"),
            SqlType::Interval => write!(f, "INTERVAL"),
            SqlType::Null => write!(f, "NULL"),
            SqlType::Row(fields) => {
                let f2: Vec<String> = fields.iter().map(|(n, t)| format!("{n} {t}")).collect();
                write!(f, "RecordType({})", f2.join(", "))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Integer(i64),
    Double(f64),
    Varchar(String),
    Binary(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i64),
    /// Milliseconds since midnight.
    Time(i64),
    /// Milliseconds since 1970-01-01 00:00:00 UTC.
    Timestamp(i64),
    /// Milliseconds.
    Interval(i64),
    /// The fields of a row-typed value, in the order of its [`SqlType::Row`].
    Row(Vec<Value>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Varchar(s) => Some(s),
            _ => None,
        }
    }

    /// SQL ordering; `None` when either side is NULL or the kinds differ.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Integer(a), Integer(b)) => Some(a.cmp(b)),
            (Integer(_) | Double(_), Integer(_) | Double(_)) => {
                self.as_f64()?.partial_cmp(&other.as_f64()?)
            }
            (Varchar(a), Varchar(b)) => Some(a.cmp(b)),
            (Boolean(a), Boolean(b)) => Some(a.cmp(b)),
            (Binary(a), Binary(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) | (Time(a), Time(b)) | (Timestamp(a), Timestamp(b)) => {
                Some(a.cmp(b))
            }
            (Interval(a), Interval(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// A key for hashing group and partition values: equal SQL values give equal keys.
    pub fn key(&self) -> String {
        match self {
            Value::Double(d) if d.fract() == 0.0 && d.abs() < 9e15 => format!("n{}", *d as i64),
            Value::Integer(i) => format!("n{i}"),
            other => format!("{other:?}"),
        }
    }

    /// Text for CSV output and string casts.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Boolean(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Value::Integer(i) => i.to_string(),
            Value::Double(d) => format_double(*d),
            Value::Varchar(s) => s.clone(),
            Value::Binary(b) => b.iter().map(|x| format!("{x:02X}")).collect(),
            Value::Date(d) => time::format_date(*d),
            Value::Time(t) => time::format_time(*t),
            Value::Timestamp(t) => time::format_timestamp(*t),
            Value::Interval(ms) => format!("{}", ms / 1000),
            Value::Row(fields) => {
                let f: Vec<String> = fields.iter().map(Value::to_text).collect();
                format!("{{{}}}", f.join(", "))
            }
        }
    }

    /// Converts to the declared type of a column, as INSERT and CAST do.
    pub fn cast(self, to: &SqlType) -> Result<Value, EvalError> {
        use SqlType as T;
        if self.is_null() {
            return Ok(Value::Null);
        }
        Ok(match to {
            T::Null => Value::Null,
            T::Boolean => match self {
                Value::Boolean(b) => Value::Boolean(b),
                Value::Varchar(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" => Value::Boolean(true),
                    "false" => Value::Boolean(false),
                    _ => return Err(cast_err(&s, to)),
                },
                Value::Integer(i) => Value::Boolean(i != 0),
                other => return Err(cast_err(&other.to_text(), to)),
            },
            T::TinyInt | T::SmallInt | T::Integer | T::BigInt => {
                let i = match self {
                    Value::Integer(i) => i,
                    Value::Double(d) => {
                        if !d.is_finite() || d.abs() >= 9.3e18 {
                            return Err(overflow(to));
                        }
                        // SQL casts from approximate to exact round half away from zero.
                        d.round() as i64
                    }
                    Value::Boolean(b) => b as i64,
                    Value::Varchar(s) => {
                        let t = s.trim();
                        match t.parse::<i64>() {
                            Ok(i) => i,
                            Err(_) => match t.parse::<f64>() {
                                Ok(d) if d.is_finite() && d.fract() == 0.0 && d.abs() < 9.3e18 => {
                                    d as i64
                                }
                                _ => return Err(cast_err(&s, to)),
                            },
                        }
                    }
                    other => return Err(cast_err(&other.to_text(), to)),
                };
                let (lo, hi) = match to {
                    T::TinyInt => (i8::MIN as i64, i8::MAX as i64),
                    T::SmallInt => (i16::MIN as i64, i16::MAX as i64),
                    T::Integer => (i32::MIN as i64, i32::MAX as i64),
                    _ => (i64::MIN, i64::MAX),
                };
                if i < lo || i > hi {
                    return Err(overflow(to));
                }
                Value::Integer(i)
            }
            T::Real | T::Double | T::Decimal(..) => {
                let d = match self {
                    Value::Integer(i) => i as f64,
                    Value::Double(d) => d,
                    Value::Boolean(b) => b as i64 as f64,
                    Value::Varchar(s) => match s.trim().parse::<f64>() {
                        Ok(d) => d,
                        Err(_) => return Err(cast_err(&s, to)),
                    },
                    other => return Err(cast_err(&other.to_text(), to)),
                };
                match to {
                    // REAL is kept at double precision so that values print as they were
                    // written (84.51, not 84.51000213623047) in JSON and CSV outputs.
                    T::Decimal(p, s) => {
                        let scale = 10f64.powi(*s as i32);
                        let r = (d * scale).round() / scale;
                        if r.abs() >= 10f64.powi((*p as i32) - (*s as i32)) {
                            return Err(overflow(to));
                        }
                        Value::Double(r)
                    }
                    _ => Value::Double(d),
                }
            }
            T::Char(n) | T::Varchar(n) => {
                let s = match self {
                    Value::Varchar(s) => s,
                    Value::Boolean(b) => if b { "true" } else { "false" }.to_string(),
                    other => other.to_text(),
                };
                // KDA truncates strings to the column width rather than failing the row.
                Value::Varchar(s.chars().take(*n as usize).collect())
            }
            T::Binary(n) | T::Varbinary(n) => match self {
                Value::Binary(mut b) => {
                    b.truncate(*n as usize);
                    Value::Binary(b)
                }
                Value::Varchar(s) => {
                    let mut b = parse_hex(&s).ok_or_else(|| cast_err(&s, to))?;
                    b.truncate(*n as usize);
                    Value::Binary(b)
                }
                other => return Err(cast_err(&other.to_text(), to)),
            },
            T::Timestamp => match self {
                Value::Timestamp(t) => Value::Timestamp(t),
                Value::Date(d) => Value::Timestamp(d * time::MS_DAY),
                Value::Varchar(s) => {
                    Value::Timestamp(time::parse_timestamp(&s).ok_or_else(|| cast_err(&s, to))?)
                }
                // Numbers are read as epoch milliseconds, like a Kinesis arrival timestamp.
                Value::Integer(i) => Value::Timestamp(i),
                other => return Err(cast_err(&other.to_text(), to)),
            },
            T::Date => match self {
                Value::Date(d) => Value::Date(d),
                Value::Timestamp(t) => Value::Date(t.div_euclid(time::MS_DAY)),
                Value::Varchar(s) => Value::Date(
                    time::parse_timestamp(&s)
                        .ok_or_else(|| cast_err(&s, to))?
                        .div_euclid(time::MS_DAY),
                ),
                other => return Err(cast_err(&other.to_text(), to)),
            },
            T::Time => match self {
                Value::Time(t) => Value::Time(t),
                Value::Timestamp(t) => Value::Time(t.rem_euclid(time::MS_DAY)),
                Value::Varchar(s) => {
                    let ms = time::parse_timestamp(&format!("1970-01-01 {}", s.trim()))
                        .ok_or_else(|| cast_err(&s, to))?;
                    Value::Time(ms)
                }
                other => return Err(cast_err(&other.to_text(), to)),
            },
            T::Interval => match self {
                Value::Interval(i) => Value::Interval(i),
                other => return Err(cast_err(&other.to_text(), to)),
            },
            T::Row(_) => match self {
                Value::Row(f) => Value::Row(f),
                other => return Err(cast_err(&other.to_text(), to)),
            },
        })
    }

    /// The JSON form used by JSON output and the hex `DATA_ROW` of `error_stream`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Boolean(b) => (*b).into(),
            Value::Integer(i) => (*i).into(),
            Value::Double(d) => serde_json::Number::from_f64(*d)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Row(fields) => fields.iter().map(Value::to_json).collect(),
            other => other.to_text().into(),
        }
    }
}

/// Doubles print as Java prints them in KDA output: integral values keep a `.0`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if d.fract() == 0.0 && d.abs() < 1e16 {
        format!("{d:.1}")
    } else {
        format!("{d}")
    }
}

pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn cast_err(text: &str, to: &SqlType) -> EvalError {
    EvalError::cast(format!("Cannot convert '{text}' to {to}"))
}

fn overflow(to: &SqlType) -> EvalError {
    EvalError::overflow(format!("Value out of range for type {to}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_to_narrow_integers_fail_on_overflow_instead_of_wrapping() {
        assert!(Value::Integer(300).cast(&SqlType::TinyInt).is_err());
        assert_eq!(
            Value::Integer(100).cast(&SqlType::TinyInt),
            Ok(Value::Integer(100))
        );
    }

    #[test]
    fn strings_are_truncated_to_the_column_width() {
        let v = Value::Varchar("AMZN.X".into())
            .cast(&SqlType::Varchar(4))
            .unwrap();
        assert_eq!(v, Value::Varchar("AMZN".into()));
    }

    #[test]
    fn decimal_casts_round_to_the_scale() {
        let v = Value::Double(12.345_6)
            .cast(&SqlType::Decimal(8, 2))
            .unwrap();
        assert_eq!(v, Value::Double(12.35));
        assert!(Value::Double(1234.5).cast(&SqlType::Decimal(4, 2)).is_err());
    }

    #[test]
    fn integer_and_double_keys_agree_for_equal_values() {
        assert_eq!(Value::Integer(3).key(), Value::Double(3.0).key());
    }
}
