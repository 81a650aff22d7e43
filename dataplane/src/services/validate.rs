//! AWS's (Coral's) constraint validation messages.
//!
//! Members are checked in the operation model's order; within a member: not-null, value range,
//! pattern, length, enum. At most 10 errors are reported:
//! `2 validation errors detected: Value '' at 'streamName' failed to satisfy constraint: ...; ...`

use crate::protocol::error::codes;
use crate::protocol::AwsError;

const MAX_ERRORS: usize = 10;

/// A pattern as AWS prints it, with the check that implements it.
pub type Pattern<'a> = (&'a str, fn(&str) -> bool);

/// A string member's constraints: an optional pattern (checked first), then a length range in
/// characters. Written once per rule and shared by every member that follows it.
#[derive(Clone, Copy)]
pub struct Text {
    pattern: Option<Pattern<'static>>,
    min: usize,
    max: usize,
}

impl Text {
    /// Only a length range.
    pub const fn len(min: usize, max: usize) -> Text {
        Text {
            pattern: None,
            min,
            max,
        }
    }

    /// A pattern and a length range.
    pub const fn matching(pattern: Pattern<'static>, min: usize, max: usize) -> Text {
        Text {
            pattern: Some(pattern),
            min,
            max,
        }
    }
}

#[derive(Default)]
pub struct Validator {
    errors: Vec<String>,
}

/// The regular expression AWS prints for stream, consumer and shard names.
pub const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";
pub const HASH_KEY_PATTERN: &str = "0|([1-9]\\d{0,38})";
pub const SEQUENCE_PATTERN: &str = "0|([1-9]\\d{0,128})";
pub const STREAM_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";

pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// `0|([1-9]\d{0,max_digits-1})`
pub fn is_decimal(s: &str, max_digits: usize) -> bool {
    s == "0"
        || (!s.is_empty()
            && s.len() <= max_digits
            && s.as_bytes()[0] != b'0'
            && s.bytes().all(|b| b.is_ascii_digit()))
}

fn is_stream_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:aws") else {
        return false;
    };
    // rest = "<partition suffix>:kinesis:<region>:<account>:stream/<name>"
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    parts.len() == 5
        && parts[1] == "kinesis"
        && parts[3].len() == 12
        && parts[3].bytes().all(|b| b.is_ascii_digit())
        && parts[4]
            .strip_prefix("stream/")
            .is_some_and(|n| !n.is_empty() && !n.contains(char::is_whitespace))
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, value: &str, path: &str, constraint: &str) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(format!(
                "Value {value} at '{path}' failed to satisfy constraint: {constraint}"
            ));
        }
    }

    fn quoted(v: &str) -> String {
        format!("'{v}'")
    }

    /// A member that must be present.
    pub fn not_null<T>(&mut self, path: &str, v: &Option<T>) -> bool {
        if v.is_none() {
            self.push("null", path, "Member must not be null");
            false
        } else {
            true
        }
    }

    pub fn range(&mut self, path: &str, v: Option<i64>, min: i64, max: i64) {
        let Some(v) = v else { return };
        if v < min {
            self.push(
                &Self::quoted(&v.to_string()),
                path,
                &format!("Member must have value greater than or equal to {min}"),
            );
        } else if v > max {
            self.push(
                &Self::quoted(&v.to_string()),
                path,
                &format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    pub fn min(&mut self, path: &str, v: Option<i64>, min: i64) {
        self.range(path, v, min, i64::MAX)
    }

    /// String length (in characters) and, optionally, a pattern checked first.
    pub fn string(
        &mut self,
        path: &str,
        v: Option<&str>,
        pattern: Option<Pattern<'_>>,
        min: usize,
        max: usize,
    ) {
        let Some(s) = v else { return };
        if let Some((text, ok)) = pattern {
            if !ok(s) {
                self.push(
                    &Self::quoted(s),
                    path,
                    &format!("Member must satisfy regular expression pattern: {text}"),
                );
            }
        }
        let n = s.chars().count();
        if n < min {
            self.push(
                &Self::quoted(s),
                path,
                &format!("Member must have length greater than or equal to {min}"),
            );
        } else if n > max {
            self.push(
                &Self::quoted(s),
                path,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// A string member checked against `rule`.
    pub fn text(&mut self, path: &str, v: Option<&str>, rule: Text) {
        self.string(path, v, rule.pattern, rule.min, rule.max);
    }

    /// A required string member: not-null, then `rule` when present.
    pub fn required_text(&mut self, path: &str, v: &Option<String>, rule: Text) {
        if self.not_null(path, v) {
            self.text(path, v.as_deref(), rule);
        }
    }

    /// Optional string members of the structure at `path`, in the model's order.
    pub fn texts(&mut self, path: &str, members: &[(&str, Option<&str>, Text)]) {
        for (member, value, rule) in members {
            self.text(&format!("{path}.{member}"), *value, *rule);
        }
    }

    /// Required string members of the structure at `path`, in the model's order.
    pub fn required_texts(&mut self, path: &str, members: &[(&str, &Option<String>, Text)]) {
        for (member, value, rule) in members {
            self.required_text(&format!("{path}.{member}"), value, *rule);
        }
    }

    /// Not-null checks of several members of the structure at `path` (whether each is given),
    /// made before any of their other constraints.
    pub fn not_nulls(&mut self, path: &str, members: &[(&str, bool)]) {
        for (member, given) in members {
            if !given {
                self.push(
                    "null",
                    &format!("{path}.{member}"),
                    "Member must not be null",
                );
            }
        }
    }

    /// A required member that must be one of `allowed`.
    pub fn required_enumeration(&mut self, path: &str, v: &Option<String>, allowed: &[&str]) {
        if self.not_null(path, v) {
            self.enumeration(path, v.as_deref(), allowed);
        }
    }

    /// An optional nested structure, checked by `check` at `path` when present.
    pub fn nested<T: ?Sized>(
        &mut self,
        path: &str,
        value: Option<&T>,
        check: impl FnOnce(&mut Self, &str, &T),
    ) {
        if let Some(value) = value {
            check(self, path, value);
        }
    }

    /// A required nested structure: not-null, then `check` at `path` when present.
    pub fn required<T>(
        &mut self,
        path: &str,
        value: &Option<T>,
        check: impl FnOnce(&mut Self, &str, &T),
    ) {
        if self.not_null(path, value) {
            self.nested(path, value.as_ref(), check);
        }
    }

    /// Each member of a list, checked by `check` at `path.N.member` (N from 1), as AWS names
    /// list members.
    pub fn each<'a, T: 'a>(
        &mut self,
        path: &str,
        items: impl IntoIterator<Item = &'a T>,
        mut check: impl FnMut(&mut Self, &str, &T),
    ) {
        for (i, item) in items.into_iter().enumerate() {
            check(self, &format!("{path}.{}.member", i + 1), item);
        }
    }

    /// One member of a tag list: a key of 1–128 characters and a value of up to 256.
    pub fn tag(&mut self, path: &str, key: &Option<String>, value: Option<&str>) {
        self.required_texts(path, &[("key", key, Text::len(1, 128))]);
        self.texts(path, &[("value", value, Text::len(0, 256))]);
    }

    pub fn stream_name(&mut self, path: &str, v: Option<&str>) {
        self.string(path, v, Some((NAME_PATTERN, is_name)), 1, 128);
    }

    pub fn stream_arn(&mut self, path: &str, v: Option<&str>) {
        self.string(path, v, Some((STREAM_ARN_PATTERN, is_stream_arn)), 1, 2048);
    }

    pub fn enumeration(&mut self, path: &str, v: Option<&str>, allowed: &[&str]) {
        let Some(s) = v else { return };
        if !allowed.contains(&s) {
            self.push(
                &Self::quoted(s),
                path,
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
    }

    /// Length of a list or map, rendered as AWS does for lists of strings.
    pub fn count(&mut self, path: &str, rendered: &str, n: usize, min: usize, max: usize) {
        if n < min {
            self.push(
                &Self::quoted(rendered),
                path,
                &format!("Member must have length greater than or equal to {min}"),
            );
        } else if n > max {
            self.push(
                &Self::quoted(rendered),
                path,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// Blob size in bytes.
    pub fn blob(&mut self, path: &str, len: usize, max: usize) {
        if len > max {
            self.push(
                &Self::quoted(&format!(
                    "java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]"
                )),
                path,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    pub fn finish(self) -> Result<(), AwsError> {
        match self.errors.len() {
            0 => Ok(()),
            1 => Err(AwsError::new(
                codes::VALIDATION,
                format!("1 validation error detected: {}", self.errors[0]),
            )),
            n => Err(AwsError::new(
                codes::VALIDATION,
                format!("{n} validation errors detected: {}", self.errors.join("; ")),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stream_name_reports_pattern_and_length() {
        let mut v = Validator::new();
        v.stream_name("streamName", Some(""));
        let e = v.finish().unwrap_err();
        assert_eq!(
            e.message,
            "2 validation errors detected: Value '' at 'streamName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at \
             'streamName' failed to satisfy constraint: Member must have length greater than or \
             equal to 1"
        );
    }

    #[test]
    fn missing_member_is_not_null_error() {
        let mut v = Validator::new();
        v.not_null::<String>("streamName", &None);
        assert_eq!(
            v.finish().unwrap_err().message,
            "1 validation error detected: Value null at 'streamName' failed to satisfy \
             constraint: Member must not be null"
        );
    }

    #[test]
    fn decimal_patterns_follow_aws_regexes() {
        assert!(is_decimal("0", 39));
        assert!(is_decimal("340282366920938463463374607431768211455", 39));
        assert!(!is_decimal("01", 39));
        assert!(!is_decimal("", 39));
        assert!(!is_decimal("1a", 39));
        assert!(is_stream_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/s"
        ));
        assert!(!is_stream_arn("arn:aws:kinesis:us-east-1:0:stream/s"));
    }
}
