//! Records in and out: KDA's input mapping (JSON with JSONPath, CSV by position) with AWS's type
//! coercion rules, DiscoverInputSchema-style inference, and JSON/CSV output serialisation.

use crate::error::EvalError;
use crate::exec::Row;
use crate::parser;
use crate::plan::Column;
use crate::time;
use crate::value::{SqlType, Value};
use serde_json::Value as Json;

/// The column every input stream carries after its mapped columns: when the record arrived in
/// the source stream (Kinesis `ApproximateArrivalTimestamp`).
pub const APPROXIMATE_ARRIVAL_TIME: &str = "APPROXIMATE_ARRIVAL_TIME";

#[derive(Debug, Clone, PartialEq)]
pub enum RecordFormat {
    /// `JSONMappingParameters.RecordRowPath`, such as `$` or `$.Records[0:]`.
    Json { row_path: String },
    /// `CSVMappingParameters`.
    Csv {
        column_delimiter: String,
        row_delimiter: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordColumn {
    pub name: String,
    /// The JSONPath of the column (JSON only).
    pub mapping: Option<String>,
    pub sql_type: SqlType,
}

/// An `InputSchema`: how records become rows of `SOURCE_SQL_STREAM_001`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSchema {
    pub format: RecordFormat,
    pub columns: Vec<RecordColumn>,
}

/// Parses an API `SqlType` string such as `VARCHAR(4)` or `DECIMAL(10, 2)`.
pub fn parse_sql_type(text: &str) -> Option<SqlType> {
    let q = parser::parse_query(&format!("SELECT STREAM CAST(NULL AS {text}) FROM S")).ok()?;
    match &q.items[0] {
        crate::ast::SelectItem::Expr {
            expr:
                crate::ast::Expr {
                    kind: crate::ast::ExprKind::Cast { ty, .. },
                    ..
                },
            ..
        } => Some(ty.clone()),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    /// `[n:]` or `[*]`: every element from `n` on, each its own row.
    From(usize),
}

fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let p = path.trim();
    let rest = p
        .strip_prefix('$')
        .ok_or_else(|| format!("JSONPath '{path}' must start with '$'"))?;
    let chars: Vec<char> = rest.chars().collect();
    let mut segs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                if i == start {
                    return Err(format!("Empty field name in JSONPath '{path}'"));
                }
                segs.push(Seg::Key(chars[start..i].iter().collect()));
            }
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or_else(|| format!("Unclosed '[' in JSONPath '{path}'"))?
                    + i;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if let Some(q) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    segs.push(Seg::Key(q.to_string()));
                } else if inner == "*" {
                    segs.push(Seg::From(0));
                } else if let Some(from) = inner.strip_suffix(':') {
                    segs.push(Seg::From(
                        from.parse()
                            .map_err(|_| format!("Bad slice in JSONPath '{path}'"))?,
                    ));
                } else {
                    segs.push(Seg::Index(
                        inner
                            .parse()
                            .map_err(|_| format!("Bad index in JSONPath '{path}'"))?,
                    ));
                }
                i = close + 1;
            }
            _ => return Err(format!("Unexpected '{}' in JSONPath '{path}'", chars[i])),
        }
    }
    Ok(segs)
}

fn select<'a>(node: &'a Json, segs: &[Seg], out: &mut Vec<&'a Json>) {
    let Some((first, rest)) = segs.split_first() else {
        out.push(node);
        return;
    };
    match (first, node) {
        (Seg::Key(k), Json::Object(m)) => {
            if let Some(v) = m.get(k) {
                select(v, rest, out);
            }
        }
        (Seg::Index(n), Json::Array(a)) => {
            if let Some(v) = a.get(*n) {
                select(v, rest, out);
            }
        }
        (Seg::From(n), Json::Array(a)) => {
            for v in a.iter().skip(*n) {
                select(v, rest, out);
            }
        }
        _ => {}
    }
}

fn mapping_error(message: impl Into<String>) -> EvalError {
    EvalError::new("Mapping_Error", message)
}

/// Coerces a JSON value into a column's type by KDA's rules: null is NULL; booleans are 1/0 for
/// numbers and `true`/`false` for text and cannot become dates; numbers convert directly (an
/// overflow is an error); strings are parsed, and a BOOLEAN is true only for "true"; objects and
/// arrays map to text as JSON.
pub fn coerce_json(v: &Json, ty: &SqlType) -> Result<Value, EvalError> {
    let value = match v {
        Json::Null => return Ok(Value::Null),
        Json::Bool(b) => {
            if ty.is_datetime() {
                return Err(EvalError::cast(format!(
                    "Cannot convert boolean '{b}' to {ty}"
                )));
            }
            if ty.is_numeric() {
                Value::Integer(*b as i64)
            } else {
                Value::Boolean(*b)
            }
        }
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => return coerce_text(s, ty),
        other => Value::Varchar(other.to_string()),
    };
    value.cast(ty)
}

/// Coerces text (a CSV field or a JSON string) into a column's type.
pub fn coerce_text(s: &str, ty: &SqlType) -> Result<Value, EvalError> {
    match ty {
        SqlType::Boolean => Ok(Value::Boolean(s.trim().eq_ignore_ascii_case("true"))),
        SqlType::Binary(_) | SqlType::Varbinary(_) => {
            let hex = s
                .trim()
                .strip_prefix("X'")
                .or_else(|| s.trim().strip_prefix("x'"))
                .and_then(|h| h.strip_suffix('\''))
                .unwrap_or(s);
            Value::Varchar(hex.to_string()).cast(ty)
        }
        _ => Value::Varchar(s.to_string()).cast(ty),
    }
}

impl InputSchema {
    /// The columns of the in-application input stream this schema feeds.
    pub fn stream_columns(&self) -> Vec<Column> {
        let mut cols: Vec<Column> = self
            .columns
            .iter()
            .map(|c| Column::new(c.name.clone(), c.sql_type.clone()))
            .collect();
        cols.push(Column::new(APPROXIMATE_ARRIVAL_TIME, SqlType::Timestamp));
        cols
    }

    /// Maps one record to rows (several when a JSON row path expands an array). An error means
    /// the record goes to `error_stream`.
    pub fn map_record(&self, data: &[u8], arrival_ms: i64) -> Result<Vec<Vec<Value>>, EvalError> {
        let text =
            std::str::from_utf8(data).map_err(|_| mapping_error("Record is not valid UTF-8"))?;
        let mut rows = Vec::new();
        match &self.format {
            RecordFormat::Json { row_path } => {
                let doc: Json = serde_json::from_str(text)
                    .map_err(|e| mapping_error(format!("Unable to parse JSON record: {e}")))?;
                let row_segs = parse_path(row_path).map_err(mapping_error)?;
                let mut nodes = Vec::new();
                select(&doc, &row_segs, &mut nodes);
                let prefix = row_path.trim().trim_end_matches('.');
                for node in nodes {
                    let mut values = Vec::with_capacity(self.columns.len() + 1);
                    for c in &self.columns {
                        let default_path = format!("$.{}", c.name);
                        let path = c.mapping.as_deref().unwrap_or(&default_path).trim();
                        // Column paths repeat the row path (`$.Records[0:].TICKER`); they are
                        // evaluated from the row they belong to.
                        let relative = match path.strip_prefix(prefix) {
                            Some(rest) if prefix != "$" => format!("${rest}"),
                            _ => path.to_string(),
                        };
                        let segs = parse_path(&relative).map_err(mapping_error)?;
                        let mut hits = Vec::new();
                        select(node, &segs, &mut hits);
                        let v = match hits.first() {
                            Some(j) => coerce_json(j, &c.sql_type)?,
                            None => Value::Null,
                        };
                        values.push(v);
                    }
                    values.push(Value::Timestamp(arrival_ms));
                    rows.push(values);
                }
            }
            RecordFormat::Csv {
                column_delimiter,
                row_delimiter,
            } => {
                for line in text
                    .split(row_delimiter.as_str())
                    .filter(|l| !l.trim().is_empty())
                {
                    let fields = split_csv(line, column_delimiter);
                    let mut values = Vec::with_capacity(self.columns.len() + 1);
                    for (k, c) in self.columns.iter().enumerate() {
                        // Columns map by position; missing trailing fields are NULL.
                        let v = match fields.get(k) {
                            None => Value::Null,
                            Some(f) if f.is_empty() && !c.sql_type.is_string() => Value::Null,
                            Some(f) => coerce_text(f, &c.sql_type)?,
                        };
                        values.push(v);
                    }
                    values.push(Value::Timestamp(arrival_ms));
                    rows.push(values);
                }
            }
        }
        Ok(rows)
    }
}

fn split_csv(line: &str, delim: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut rest = line.trim_end_matches('\r');
    while !rest.is_empty() {
        if quoted {
            if let Some(r) = rest.strip_prefix("\"\"") {
                cur.push('"');
                rest = r;
            } else if let Some(r) = rest.strip_prefix('"') {
                quoted = false;
                rest = r;
            } else {
                let c = rest.chars().next().expect("rest is not empty");
                cur.push(c);
                rest = &rest[c.len_utf8()..];
            }
        } else if let Some(r) = rest.strip_prefix(delim) {
            out.push(std::mem::take(&mut cur));
            rest = r;
        } else if cur.is_empty() && rest.starts_with('"') {
            quoted = true;
            rest = &rest[1..];
        } else {
            let c = rest.chars().next().expect("rest is not empty");
            cur.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push(cur);
    out
}

/// Words KDA will not take as column names without the `COL_` prefix (`sch-dis.md` lists these).
const RESERVED_NAMES: &[&str] = &[
    "TIMESTAMP",
    "USER",
    "VALUES",
    "YEAR",
    "DATE",
    "TIME",
    "ROWTIME",
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "ORDER",
    "BY",
    "STREAM",
    "TABLE",
    "WINDOW",
    "COUNT",
    "MINUTE",
    "HOUR",
    "SECOND",
    "DAY",
    "MONTH",
    "CURRENT",
    "RANGE",
    "ROWS",
    "VALUE",
    "KEY",
    "LANGUAGE",
    "POSITION",
];

/// DiscoverInputSchema's column naming: invalid names get the `COL_` prefix; names that cannot be
/// salvaged become `COL_<n>`.
pub fn column_name(raw: &str, position: usize) -> String {
    let valid = !raw.is_empty()
        && raw.len() <= 100
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !raw.starts_with(|c: char| c.is_ascii_digit())
        && !RESERVED_NAMES.contains(&raw.to_ascii_uppercase().as_str());
    if valid {
        return raw.to_string();
    }
    let cleaned: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(96)
        .collect();
    if cleaned.is_empty() {
        format!("COL_{position}")
    } else {
        format!("COL_{cleaned}")
    }
}

/// Why a sample could not be turned into a schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// No sample records were given.
    #[error("No records were found to discover a schema from")]
    NoRecords,
    /// The records are neither JSON objects nor delimited text.
    #[error("Unable to determine the format of the records")]
    UnknownFormat,
}

/// A JSON value that keeps object keys in document order. serde_json's `Value` sorts them unless
/// its `preserve_order` feature is on, and turning that on here would change key order for every
/// crate in the workspace; discovery needs the order so columns come out as the records list them.
#[derive(Debug, Clone, PartialEq)]
enum Ordered {
    Leaf(Json),
    Object(Vec<(String, Ordered)>),
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
                Ok(Ordered::Leaf(Json::Bool(b)))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Ordered, E> {
                Ok(Ordered::Leaf(Json::from(i)))
            }
            fn visit_u64<E>(self, u: u64) -> Result<Ordered, E> {
                Ok(Ordered::Leaf(Json::from(u)))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Ordered, E> {
                Ok(Ordered::Leaf(
                    serde_json::Number::from_f64(f)
                        .map(Json::Number)
                        .unwrap_or(Json::Null),
                ))
            }
            fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
                Ok(Ordered::Leaf(Json::String(s.to_string())))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Leaf(Json::Null))
            }
            fn visit_none<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Leaf(Json::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Ordered, A::Error> {
                // Arrays are leaves for discovery; keep them as plain JSON.
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Json>()? {
                    items.push(v);
                }
                Ok(Ordered::Leaf(Json::Array(items)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
                    fields.push((k, v));
                }
                Ok(Ordered::Object(fields))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Null,
    Bool,
    Int(i64),
    Real,
    Timestamp,
    Text(usize),
}

fn widen(types: &[Seen]) -> SqlType {
    let mut text_len = 0;
    let (mut ints, mut reals, mut bools, mut stamps, mut texts) = (0, 0, 0, 0, 0);
    let mut big = false;
    for t in types {
        match t {
            Seen::Null => {}
            Seen::Bool => bools += 1,
            Seen::Int(i) => {
                ints += 1;
                big |= *i > i32::MAX as i64 || *i < i32::MIN as i64;
                text_len = text_len.max(i.to_string().len());
            }
            Seen::Real => {
                reals += 1;
                text_len = text_len.max(24);
            }
            Seen::Timestamp => {
                stamps += 1;
                text_len = text_len.max(29);
            }
            Seen::Text(n) => {
                texts += 1;
                text_len = text_len.max(*n);
            }
        }
    }
    // Text lengths round up to a power of two, as AWS's discovery does (AMZN → 4, TECHNOLOGY → 16).
    let varchar = SqlType::Varchar(text_len.max(1).next_power_of_two() as u32);
    match (ints, reals, bools, stamps, texts) {
        (0, 0, 0, 0, 0) => SqlType::Varchar(8),
        (_, 0, 0, 0, 0) if big => SqlType::BigInt,
        (_, 0, 0, 0, 0) => SqlType::Integer,
        (_, _, 0, 0, 0) => SqlType::Real,
        (0, 0, _, 0, 0) => SqlType::Boolean,
        (0, 0, 0, _, 0) => SqlType::Timestamp,
        _ => varchar,
    }
}

fn seen(v: &Json) -> Seen {
    match v {
        Json::Null => Seen::Null,
        Json::Bool(_) => Seen::Bool,
        Json::Number(n) => n.as_i64().map(Seen::Int).unwrap_or(Seen::Real),
        Json::String(s) if time::parse_timestamp(s).is_some() => Seen::Timestamp,
        Json::String(s) => Seen::Text(s.chars().count()),
        other => Seen::Text(other.to_string().len()),
    }
}

/// Infers an input schema from sample records, as DiscoverInputSchema does: JSON objects map
/// their fields (nested objects flattened, in order of first appearance), anything else is read
/// as comma-separated lines.
pub fn discover(samples: &[&[u8]]) -> Result<InputSchema, DiscoveryError> {
    if samples.is_empty() {
        return Err(DiscoveryError::NoRecords);
    }
    let docs: Option<Vec<Ordered>> = samples
        .iter()
        .map(|s| {
            serde_json::from_slice::<Ordered>(s)
                .ok()
                .filter(|j| matches!(j, Ordered::Object(_)))
        })
        .collect();
    if let Some(docs) = docs {
        let mut fields: Vec<(Vec<String>, Vec<Seen>)> = Vec::new();
        fn walk(prefix: &mut Vec<String>, v: &Ordered, fields: &mut Vec<(Vec<String>, Vec<Seen>)>) {
            match v {
                Ordered::Object(m) => {
                    for (k, child) in m {
                        prefix.push(k.clone());
                        walk(prefix, child, fields);
                        prefix.pop();
                    }
                }
                Ordered::Leaf(leaf) => match fields.iter_mut().find(|(p, _)| p == prefix) {
                    Some((_, seen_types)) => seen_types.push(seen(leaf)),
                    None => fields.push((prefix.clone(), vec![seen(leaf)])),
                },
            }
        }
        for d in &docs {
            walk(&mut Vec::new(), d, &mut fields);
        }
        let columns = fields
            .iter()
            .enumerate()
            .map(|(n, (path, types))| {
                let mapping = path.iter().fold(String::from("$"), |acc, k| {
                    if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !k.is_empty() {
                        format!("{acc}.{k}")
                    } else {
                        format!("{acc}['{k}']")
                    }
                });
                RecordColumn {
                    name: column_name(path.last().map(String::as_str).unwrap_or(""), n + 1),
                    mapping: Some(mapping),
                    sql_type: widen(types),
                }
            })
            .collect();
        return Ok(InputSchema {
            format: RecordFormat::Json {
                row_path: "$".into(),
            },
            columns,
        });
    }
    let texts: Vec<&str> = samples
        .iter()
        .map(|s| std::str::from_utf8(s))
        .collect::<Result<_, _>>()
        .map_err(|_| DiscoveryError::UnknownFormat)?;
    let mut cols: Vec<Vec<Seen>> = Vec::new();
    for t in &texts {
        for line in t.lines().filter(|l| !l.trim().is_empty()) {
            for (k, f) in split_csv(line, ",").iter().enumerate() {
                if cols.len() <= k {
                    cols.push(Vec::new());
                }
                let j = if f.is_empty() {
                    Json::Null
                } else if let Ok(i) = f.trim().parse::<i64>() {
                    Json::from(i)
                } else if let Some(n) = f
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    Json::Number(n)
                } else {
                    Json::String(f.clone())
                };
                cols[k].push(seen(&j));
            }
        }
    }
    if cols.is_empty() {
        return Err(DiscoveryError::UnknownFormat);
    }
    let columns = cols
        .iter()
        .enumerate()
        .map(|(k, types)| RecordColumn {
            name: format!("COL{}", k + 1),
            mapping: None,
            sql_type: widen(types),
        })
        .collect();
    Ok(InputSchema {
        format: RecordFormat::Csv {
            column_delimiter: ",".into(),
            row_delimiter: "\n".into(),
        },
        columns,
    })
}

/// `DestinationSchema.RecordFormatType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Csv,
}

/// Serialises an output row. JSON output is one object keyed by column name; CSV output quotes
/// fields that hold the delimiter, a quote or a newline. Both end with a newline, which is how
/// KDA separates records it writes to streams.
pub fn serialize(columns: &[Column], row: &Row, format: OutputFormat) -> Vec<u8> {
    let mut out = match format {
        OutputFormat::Json => {
            // Written by hand so keys keep the stream's column order (see `Ordered`).
            let fields: Vec<String> = columns
                .iter()
                .zip(&row.values)
                .map(|(c, v)| format!("{}:{}", Json::String(c.name.clone()), v.to_json()))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        OutputFormat::Csv => row
            .values
            .iter()
            .map(|v| {
                let t = v.to_text();
                if t.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", t.replace('"', "\"\""))
                } else {
                    t
                }
            })
            .collect::<Vec<_>>()
            .join(","),
    };
    out.push('\n');
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, mapping: &str, ty: SqlType) -> RecordColumn {
        RecordColumn {
            name: name.into(),
            mapping: Some(mapping.into()),
            sql_type: ty,
        }
    }

    #[test]
    fn json_records_map_through_jsonpath_with_kda_coercions() {
        let schema = InputSchema {
            format: RecordFormat::Json {
                row_path: "$".into(),
            },
            columns: vec![
                col("TICKER", "$.TICKER", SqlType::Varchar(4)),
                col("PRICE", "$.PRICE", SqlType::Real),
                col("FLAG", "$.flag", SqlType::Integer),
                col("OK", "$.ok", SqlType::Boolean),
                col("WHEN", "$.meta.when", SqlType::Timestamp),
                col("MISSING", "$.nope", SqlType::Integer),
            ],
        };
        let rows = schema
            .map_record(br#"{"TICKER":"AMZNX","PRICE":84.51,"flag":true,"ok":"yes","meta":{"when":"2017-05-01T11:00:20Z"}}"#, 7)
            .unwrap();
        assert_eq!(
            rows,
            vec![vec![
                Value::Varchar("AMZN".into()),
                Value::Double(84.51),
                Value::Integer(1),
                Value::Boolean(false),
                Value::Timestamp(time::parse_timestamp("2017-05-01 11:00:20").unwrap()),
                Value::Null,
                Value::Timestamp(7),
            ]]
        );
    }

    #[test]
    fn a_row_path_over_an_array_yields_a_row_per_element() {
        let schema = InputSchema {
            format: RecordFormat::Json {
                row_path: "$.Records[0:]".into(),
            },
            columns: vec![
                col("T", "$.Records[0:].t", SqlType::Varchar(8)),
                col("N", "$.Records[0:].n", SqlType::Integer),
            ],
        };
        let rows = schema
            .map_record(br#"{"Records":[{"t":"a","n":1},{"t":"b","n":2}]}"#, 0)
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][0], Value::Varchar("b".into()));
    }

    #[test]
    fn overflow_and_booleans_as_dates_are_coercion_errors() {
        assert!(coerce_json(&Json::from(300), &SqlType::TinyInt).is_err());
        assert!(coerce_json(&Json::Bool(true), &SqlType::Timestamp).is_err());
    }

    #[test]
    fn csv_columns_map_by_position_with_quotes_and_custom_delimiters() {
        let schema = InputSchema {
            format: RecordFormat::Csv {
                column_delimiter: "|".into(),
                row_delimiter: "\n".into(),
            },
            columns: vec![
                col("A", "", SqlType::Varchar(8)),
                col("B", "", SqlType::Integer),
                col("C", "", SqlType::Double),
            ],
        };
        let rows = schema.map_record(b"\"x|y\"|2\nz|\n", 0).unwrap();
        assert_eq!(
            rows[0][..3],
            [Value::Varchar("x|y".into()), Value::Integer(2), Value::Null]
        );
        assert_eq!(
            rows[1][..3],
            [Value::Varchar("z".into()), Value::Null, Value::Null]
        );
    }

    #[test]
    fn discovery_infers_the_demo_stream_schema() {
        let samples: Vec<&[u8]> = vec![
            br#"{"TICKER_SYMBOL":"AMZN","SECTOR":"TECHNOLOGY","CHANGE":-0.12,"PRICE":84.51}"#,
            br#"{"TICKER_SYMBOL":"TGT","SECTOR":"RETAIL","CHANGE":1,"PRICE":50.1}"#,
        ];
        let schema = discover(&samples).unwrap();
        let got: Vec<(String, String, SqlType)> = schema
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.mapping.clone().unwrap(),
                    c.sql_type.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "TICKER_SYMBOL".into(),
                    "$.TICKER_SYMBOL".into(),
                    SqlType::Varchar(4)
                ),
                ("SECTOR".into(), "$.SECTOR".into(), SqlType::Varchar(16)),
                ("CHANGE".into(), "$.CHANGE".into(), SqlType::Real),
                ("PRICE".into(), "$.PRICE".into(), SqlType::Real),
            ]
        );
    }

    #[test]
    fn discovery_renames_reserved_and_invalid_column_names() {
        assert_eq!(column_name("TIMESTAMP", 1), "COL_TIMESTAMP");
        assert_eq!(column_name("2fast", 2), "COL_2fast");
        assert_eq!(column_name("a-b", 3), "COL_ab");
        assert_eq!(column_name("$$", 4), "COL_4");
        assert_eq!(column_name("ticker", 5), "ticker");
    }

    #[test]
    fn discovery_reads_non_json_samples_as_csv() {
        let schema = discover(&[
            b"AMZN,84.5,2017-05-01 11:00:00",
            b"TGT,50,2017-05-01 11:00:01",
        ])
        .unwrap();
        let types: Vec<SqlType> = schema.columns.iter().map(|c| c.sql_type.clone()).collect();
        assert_eq!(
            types,
            vec![SqlType::Varchar(4), SqlType::Real, SqlType::Timestamp]
        );
    }

    #[test]
    fn rows_serialise_to_json_objects_and_quoted_csv() {
        let cols = vec![
            Column::new("T", SqlType::Varchar(8)),
            Column::new("P", SqlType::Double),
        ];
        let row = Row {
            rowtime: 0,
            values: vec![Value::Varchar("a,b".into()), Value::Double(2.0)],
        };
        assert_eq!(
            serialize(&cols, &row, OutputFormat::Json),
            b"{\"T\":\"a,b\",\"P\":2.0}\n"
        );
        assert_eq!(serialize(&cols, &row, OutputFormat::Csv), b"\"a,b\",2.0\n");
    }

    #[test]
    fn api_sql_type_strings_parse() {
        assert_eq!(parse_sql_type("VARCHAR(4)"), Some(SqlType::Varchar(4)));
        assert_eq!(
            parse_sql_type("DECIMAL(10, 2)"),
            Some(SqlType::Decimal(10, 2))
        );
        assert_eq!(parse_sql_type("nonsense"), None);
    }
}
