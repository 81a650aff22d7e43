//! KDA's log-parsing functions. Each returns a row-typed value whose fields are read with
//! `alias.rec.COLUMN1` (or named fields from a column list):
//!
//! - `REGEX_LOG_PARSE(s, regex[, columns])` and `FAST_REGEX_LOG_PARSE(s, regex)`: a field per
//!   capture group (`COLUMN1..n VARCHAR(1024)`); NULL when the pattern does not match the whole
//!   string. FAST_REGEX_LOG_PARSE matches lazily: each quantifier takes as little as it can.
//! - `W3C_LOG_PARSE(s, format)`: Apache/W3C access logs, `COMMON`, `COMMON WITH VHOST`,
//!   `NCSA EXTENDED`, `REFERER`, `AGENT` or a format of `%` specifiers; a field per specifier.
//! - `VARIABLE_COLUMN_LOG_PARSE(s, n | 'NAME TYPE t, ...', delimiter[, escape[, quotes]])`.
//! - `FIXED_COLUMN_LOG_PARSE(s, 'NAME TYPE t START n [FOR m], ...')` (positions from 0).
//! - `SYS_LOG_PARSE(s)`: `Mon DD HH:MM:SS rest` → `COLUMN1 TIMESTAMP`, `COLUMN2 VARCHAR(1024)`.
//!
//! Fields with a type other than VARCHAR are converted as CAST would; DATE, TIME and TIMESTAMP
//! fields may carry a Java date pattern (`"t" TYPE TIMESTAMP 'dd/MMM/yyyy:HH:mm:ss'`). A field
//! that does not convert fails the row, which goes to `error_stream`.

use crate::ast::{Expr, ExprKind};
use crate::error::{EvalError, Span, SqlError};
use crate::parser::{column_specs, ColumnSpec};
use crate::time;
use crate::value::{SqlType, Value};

pub const FUNCTIONS: &[&str] = &[
    "REGEX_LOG_PARSE",
    "FAST_REGEX_LOG_PARSE",
    "FAST_REGEX_LOG_PARSER",
    "W3C_LOG_PARSE",
    "VARIABLE_COLUMN_LOG_PARSE",
    "FIXED_COLUMN_LOG_PARSE",
    "SYS_LOG_PARSE",
];

const FIELD: SqlType = SqlType::Varchar(1024);

#[derive(Debug, Clone)]
enum Kind {
    Regex(regex_lite::Regex),
    Variable {
        delimiter: String,
        escape: Option<char>,
        quotes: Option<(char, char)>,
    },
    Fixed(Vec<(usize, Option<usize>)>),
    Syslog,
}

#[derive(Debug, Clone)]
pub struct LogParser {
    kind: Kind,
    fields: Vec<ColumnSpec>,
}

fn literal<'a>(name: &str, args: &'a [Expr], i: usize, what: &str) -> Result<&'a str, SqlError> {
    match args.get(i).map(|a| &a.kind) {
        Some(ExprKind::Literal(Value::Varchar(s), _)) => Ok(s),
        _ => Err(SqlError::typ(
            args.get(i).map(|a| a.span).unwrap_or_default(),
            format!("The {what} of '{name}' must be a character literal"),
        )),
    }
}

fn default_fields(n: usize) -> Vec<ColumnSpec> {
    (1..=n)
        .map(|i| ColumnSpec {
            name: format!("COLUMN{i}"),
            ty: FIELD,
            start: None,
            len: None,
            format: None,
        })
        .collect()
}

/// A column list literal, with errors placed at the literal.
fn specs(name: &str, arg: &Expr, text: &str) -> Result<Vec<ColumnSpec>, SqlError> {
    column_specs(text).map_err(|e| {
        SqlError::syntax(
            arg.span,
            format!("Invalid column list of '{name}': {}", e.message),
        )
    })
}

/// Java's regex syntax, as far as regex-lite shares it: the pattern must match the whole input.
fn compile(name: &str, arg: &Expr, pattern: &str) -> Result<regex_lite::Regex, SqlError> {
    regex_lite::Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| {
        SqlError::typ(
            arg.span,
            format!("Invalid regular expression '{pattern}' in '{name}': {e}"),
        )
    })
}

/// Makes every greedy quantifier lazy (outside character classes and escapes), which is how
/// FAST_REGEX_LOG_PARSE evaluates its pattern.
fn lazy(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        out.push(c);
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '*' | '+' | '?' | '}' if !in_class => {
                // `x??` is already lazy, and `(?` opens a group rather than quantifying.
                let opens_group = c == '?' && out.len() >= 2 && out.ends_with("(?");
                if opens_group {
                    continue;
                }
                if chars.peek() == Some(&'?') {
                    chars.next();
                }
                out.push('?');
            }
            _ => {}
        }
    }
    out
}

/// W3C/Apache `LogFormat` specifiers → a regular expression and the fields' types.
fn w3c(
    name: &str,
    arg: &Expr,
    format: &str,
) -> Result<(regex_lite::Regex, Vec<ColumnSpec>), SqlError> {
    let format = match format.trim().to_ascii_uppercase().as_str() {
        "COMMON" => "%h %l %u %t \"%r\" %>s %b".to_string(),
        "COMMON WITH VHOST" => "%v %h %l %u %t \"%r\" %>s %b".to_string(),
        "NCSA EXTENDED" | "COMBINED" => {
            "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\"".to_string()
        }
        "REFERER" => "%{Referer}i -> %U".to_string(),
        "AGENT" => "%{User-agent}i".to_string(),
        _ if format.contains('%') => format.to_string(),
        _ => {
            return Err(SqlError::semantic(
                arg.span,
                format!("Unknown log format '{format}' for '{name}'; use COMMON, COMMON WITH VHOST, NCSA EXTENDED, REFERER, AGENT or % specifiers"),
            ))
        }
    };
    let chars: Vec<char> = format.chars().collect();
    let mut re = String::new();
    let mut types = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            re.push_str(&regex_lite::escape(&c.to_string()));
            i += 1;
            continue;
        }
        i += 1;
        if chars.get(i) == Some(&'%') {
            re.push('%');
            i += 1;
            continue;
        }
        // Conditions (`400,501` or `!200`), redirection (`<`, `>`) and `{name}` / `[name]`.
        while i < chars.len()
            && (chars[i].is_ascii_digit() || matches!(chars[i], ',' | '!' | '<' | '>'))
        {
            i += 1;
        }
        if matches!(chars.get(i), Some('{') | Some('[')) {
            let close = if chars[i] == '{' { '}' } else { ']' };
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
        }
        let Some(&spec) = chars.get(i) else {
            return Err(SqlError::semantic(
                arg.span,
                format!("Incomplete format specifier at the end of '{format}' for '{name}'"),
            ));
        };
        i += 1;
        let quoted = re.ends_with('"') && chars.get(i) == Some(&'"');
        let group = if quoted {
            "((?:[^\"\\\\]|\\\\.)*)"
        } else if spec == 't' && !re.ends_with("\\[") {
            "(\\[[^\\]]*\\])"
        } else if spec == 't' {
            "([^\\]]*)"
        } else if i >= chars.len() {
            "(.*)"
        } else {
            "(\\S*)"
        };
        re.push_str(group);
        types.push(match spec {
            's' => SqlType::Integer,
            'b' | 'B' | 'D' | 'T' | 'I' | 'O' => SqlType::BigInt,
            _ => FIELD,
        });
    }
    let regex = compile(name, arg, &re)?;
    let mut fields = default_fields(types.len());
    for (f, t) in fields.iter_mut().zip(types) {
        f.ty = t;
    }
    Ok((regex, fields))
}

/// Plans a log-parsing call: `None` when `name` is not one, otherwise the parser and its row
/// type, or an error placed at the offending argument.
pub fn plan(
    name: &str,
    args: &[Expr],
    types: &[SqlType],
    span: Span,
) -> Option<Result<(LogParser, SqlType), SqlError>> {
    if !FUNCTIONS.contains(&name) {
        return None;
    }
    Some(plan_known(name, args, types, span))
}

fn plan_known(
    name: &str,
    args: &[Expr],
    types: &[SqlType],
    span: Span,
) -> Result<(LogParser, SqlType), SqlError> {
    let (min, max) = match name {
        "SYS_LOG_PARSE" => (1, 1),
        "REGEX_LOG_PARSE" => (2, 3),
        "VARIABLE_COLUMN_LOG_PARSE" => (3, 5),
        _ => (2, 2),
    };
    if args.len() < min || args.len() > max {
        return Err(SqlError::typ(
            span,
            format!(
                "Invalid number of arguments to function '{name}'. Was expecting {min}{} arguments",
                if max > min {
                    format!(" to {max}")
                } else {
                    String::new()
                }
            ),
        ));
    }
    if !(types[0].is_string() || types[0] == SqlType::Null) {
        return Err(SqlError::typ(
            args[0].span,
            format!("Cannot apply '{name}' to arguments of type '{name}(<{}>, ...)'. Supported form(s): '{name}(<CHARACTER>, ...)'", types[0]),
        ));
    }
    let (kind, fields) = match name {
        "REGEX_LOG_PARSE" | "FAST_REGEX_LOG_PARSE" | "FAST_REGEX_LOG_PARSER" => {
            let pattern = literal(name, args, 1, "pattern")?;
            let pattern = if name == "REGEX_LOG_PARSE" {
                pattern.to_string()
            } else {
                lazy(pattern)
            };
            let re = compile(name, &args[1], &pattern)?;
            let groups = re.captures_len() - 1;
            let fields = match args.get(2) {
                Some(a) => {
                    let f = specs(name, a, literal(name, args, 2, "column list")?)?;
                    if f.len() != groups {
                        return Err(SqlError::semantic(
                            a.span,
                            format!(
                                "'{name}' has {} columns for {groups} groups of its pattern",
                                f.len()
                            ),
                        ));
                    }
                    f
                }
                None => default_fields(groups),
            };
            (Kind::Regex(re), fields)
        }
        "W3C_LOG_PARSE" => {
            let (re, fields) = w3c(name, &args[1], literal(name, args, 1, "format")?)?;
            (Kind::Regex(re), fields)
        }
        "VARIABLE_COLUMN_LOG_PARSE" => {
            let fields = match &args[1].kind {
                ExprKind::Literal(Value::Integer(n), _) if *n > 0 && *n <= 1000 => {
                    default_fields(*n as usize)
                }
                ExprKind::Literal(Value::Varchar(text), _) => specs(name, &args[1], text)?,
                _ => {
                    return Err(SqlError::typ(
                        args[1].span,
                        format!("The columns of '{name}' must be a number of columns or a column list literal"),
                    ))
                }
            };
            let delimiter = literal(name, args, 2, "delimiter")?.to_string();
            if delimiter.is_empty() {
                return Err(SqlError::semantic(
                    args[2].span,
                    format!("The delimiter of '{name}' must not be empty"),
                ));
            }
            let escape = match args.get(3) {
                Some(_) => literal(name, args, 3, "escape string")?.chars().next(),
                None => None,
            };
            let quotes = match args.get(4) {
                Some(_) => {
                    let q: Vec<char> = literal(name, args, 4, "quote string")?.chars().collect();
                    match q.as_slice() {
                        [] => None,
                        [c] => Some((*c, *c)),
                        [a, b, ..] => Some((*a, *b)),
                    }
                }
                None => None,
            };
            (
                Kind::Variable {
                    delimiter,
                    escape,
                    quotes,
                },
                fields,
            )
        }
        "FIXED_COLUMN_LOG_PARSE" => {
            let fields = specs(name, &args[1], literal(name, args, 1, "column list")?)?;
            let mut spans = Vec::new();
            for f in &fields {
                let Some(start) = f.start else {
                    return Err(SqlError::semantic(
                        args[1].span,
                        format!("Column '{}' of '{name}' needs START", f.name),
                    ));
                };
                spans.push((start, f.len));
            }
            (Kind::Fixed(spans), fields)
        }
        _ => {
            let mut fields = default_fields(2);
            fields[0].ty = SqlType::Timestamp;
            (Kind::Syslog, fields)
        }
    };
    let ty = SqlType::Row(
        fields
            .iter()
            .map(|f| (f.name.clone(), f.ty.clone()))
            .collect(),
    );
    Ok((LogParser { kind, fields }, ty))
}

impl LogParser {
    /// Parses one string into the row value; NULL when it does not have the expected shape.
    pub fn parse(&self, text: &str, clock: i64) -> Result<Value, EvalError> {
        let raw: Vec<Option<String>> = match &self.kind {
            Kind::Regex(re) => match re.captures(text) {
                None => return Ok(Value::Null),
                Some(c) => (1..c.len())
                    .map(|i| c.get(i).map(|m| m.as_str().to_string()))
                    .collect(),
            },
            Kind::Variable {
                delimiter,
                escape,
                quotes,
            } => split(text, delimiter, *escape, *quotes)
                .into_iter()
                .map(Some)
                .collect(),
            Kind::Fixed(spans) => {
                let chars: Vec<char> = text.chars().collect();
                spans
                    .iter()
                    .map(|(start, len)| {
                        if *start >= chars.len() {
                            return None;
                        }
                        let end = len.map_or(chars.len(), |l| (start + l).min(chars.len()));
                        Some(chars[*start..end].iter().collect())
                    })
                    .collect()
            }
            Kind::Syslog => {
                // `Mon DD HH:MM:SS rest`; syslog has no year, so the clock's year is used.
                let head: String = text.chars().take(15).collect();
                let rest: String = text.chars().skip(15).collect();
                let year = time::to_civil(clock).year;
                match time::parse_java(
                    &format!("{year} {}", head.replace("  ", " 0")),
                    "yyyy MMM dd HH:mm:ss",
                ) {
                    Some(ts) => vec![Some(ts.to_string()), Some(rest.trim_start().to_string())],
                    None => return Ok(Value::Null),
                }
            }
        };
        let mut out = Vec::with_capacity(self.fields.len());
        for (i, f) in self.fields.iter().enumerate() {
            let Some(text) = raw.get(i).cloned().flatten() else {
                out.push(Value::Null);
                continue;
            };
            out.push(self.convert(f, text)?);
        }
        Ok(Value::Row(out))
    }

    fn convert(&self, f: &ColumnSpec, text: String) -> Result<Value, EvalError> {
        if matches!(self.kind, Kind::Syslog) && f.ty == SqlType::Timestamp {
            return Ok(Value::Timestamp(text.parse().unwrap_or_default()));
        }
        if f.ty.is_string() {
            return Value::Varchar(text).cast(&f.ty);
        }
        let t = text.trim();
        if t.is_empty() || t == "-" {
            return Ok(Value::Null);
        }
        if let (Some(pattern), true) = (&f.format, f.ty.is_datetime()) {
            let ms = time::parse_java(t, pattern).ok_or_else(|| {
                EvalError::new(
                    "Invalid_Timestamp",
                    format!("Cannot parse '{t}' as {} with pattern '{pattern}'", f.ty),
                )
            })?;
            return Value::Timestamp(ms).cast(&f.ty);
        }
        Value::Varchar(t.to_string()).cast(&f.ty)
    }
}

/// Splits on `delimiter`, keeping escaped delimiters and quoted text in one field.
fn split(
    text: &str,
    delimiter: &str,
    escape: Option<char>,
    quotes: Option<(char, char)>,
) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if Some(c) == escape {
            rest = &rest[c.len_utf8()..];
            if let Some(n) = rest.chars().next() {
                cur.push(n);
                rest = &rest[n.len_utf8()..];
            }
            continue;
        }
        if let Some((open, close)) = quotes {
            if quoted && c == close {
                quoted = false;
                rest = &rest[c.len_utf8()..];
                continue;
            }
            if !quoted && c == open {
                quoted = true;
                rest = &rest[c.len_utf8()..];
                continue;
            }
        }
        if !quoted && rest.starts_with(delimiter) {
            fields.push(std::mem::take(&mut cur));
            rest = &rest[delimiter.len()..];
            continue;
        }
        cur.push(c);
        rest = &rest[c.len_utf8()..];
    }
    fields.push(cur);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_quantifiers_leave_classes_escapes_and_groups_alone() {
        assert_eq!(lazy(r"(\w+) [a-z+]* (?:x)?"), r"(\w+?) [a-z+]*? (?:x)??");
        assert_eq!(lazy("a{2,3}b*?"), "a{2,3}?b*?");
    }

    #[test]
    fn split_honours_escapes_and_quotes() {
        assert_eq!(split(r"a\,b,c", ",", Some('\\'), None), ["a,b", "c"]);
        assert_eq!(
            split("'x,y',z", ",", None, Some(('\'', '\''))),
            ["x,y", "z"]
        );
        assert_eq!(split("a||b||", "||", None, None), ["a", "b", ""]);
    }
}
