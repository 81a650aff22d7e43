//! S3 key prefixes with Firehose's `!{namespace:value}` expressions, and object names.
//!
//! Supported namespaces: `timestamp` (a Java `DateTimeFormatter` pattern, evaluated at the
//! arrival time of the oldest record in the object, in UTC), `firehose:random-string` (11
//! characters) and `firehose:error-output-type` (error prefixes only). A prefix without a
//! `timestamp` expression gets `yyyy/MM/dd/HH/` appended, as Firehose does.
//!
//! Nothing here is random: the "random" parts are drawn from a per-batch seed, so delivering
//! the same batch again (after a crash or a failed attempt) produces the same key and
//! overwrites the earlier object instead of duplicating it.

use super::partition::Keys;

/// Why a prefix is refused at CreateDeliveryStream/UpdateDestination time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// `!{` without a closing `}`, or an expression outside the known namespaces.
    #[error("{0}")]
    Invalid(String),
}

/// One piece of a parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Timestamp(String),
    RandomString,
    ErrorOutputType,
    PartitionKeyFromQuery(String),
    PartitionKeyFromLambda(String),
}

/// A parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    parts: Vec<Part>,
}

/// The default time folders Firehose adds to a prefix that has no timestamp expression.
const DEFAULT_TIME_FOLDERS: &str = "yyyy/MM/dd/HH/";

impl Prefix {
    /// Parses `text`. An absent prefix is the empty prefix.
    pub fn parse(text: &str) -> Result<Prefix, PrefixError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("!{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| {
                PrefixError::Invalid(format!(
                    "The expression in the prefix {text} is missing a closing brace."
                ))
            })?;
            let expr = &after[..end];
            let (ns, value) = expr.split_once(':').unwrap_or((expr, ""));
            let part = match (ns.trim(), value.trim()) {
                ("timestamp", v) if !v.is_empty() => Part::Timestamp(v.to_string()),
                ("firehose", "random-string") => Part::RandomString,
                ("firehose", "error-output-type") => Part::ErrorOutputType,
                ("partitionKeyFromQuery", k) if !k.is_empty() => {
                    Part::PartitionKeyFromQuery(k.to_string())
                }
                ("partitionKeyFromLambda", k) if !k.is_empty() => {
                    Part::PartitionKeyFromLambda(k.to_string())
                }
                _ => {
                    return Err(PrefixError::Invalid(format!(
                        "The expression {{{expr}}} in the prefix is not supported. Supported namespaces are timestamp, firehose, partitionKeyFromQuery and partitionKeyFromLambda."
                    )))
                }
            };
            parts.push(part);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Prefix { parts })
    }

    pub fn has_expressions(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Literal(_)))
    }

    pub fn has_error_output_type(&self) -> bool {
        self.parts.contains(&Part::ErrorOutputType)
    }

    pub fn has_partition_keys(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(
                p,
                Part::PartitionKeyFromQuery(_) | Part::PartitionKeyFromLambda(_)
            )
        })
    }

    fn has_timestamp(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Timestamp(_)))
    }

    /// Evaluates the prefix for an object whose oldest record arrived at `arrival_ms`.
    pub fn evaluate(&self, arrival_ms: i64, seed: u128, error_output_type: Option<&str>) -> String {
        self.evaluate_with(
            arrival_ms,
            seed,
            error_output_type,
            &Keys::new(),
            &Keys::new(),
        )
    }

    /// The partition key names the prefix needs from the jq query and from Lambda.
    pub fn key_names(&self) -> (Vec<&str>, Vec<&str>) {
        let mut query = Vec::new();
        let mut lambda = Vec::new();
        for p in &self.parts {
            match p {
                Part::PartitionKeyFromQuery(k) => query.push(k.as_str()),
                Part::PartitionKeyFromLambda(k) => lambda.push(k.as_str()),
                _ => {}
            }
        }
        (query, lambda)
    }

    /// Evaluates the prefix with dynamic partition keys (absent keys evaluate to nothing;
    /// callers check [`Prefix::key_names`] first).
    pub fn evaluate_with(
        &self,
        arrival_ms: i64,
        seed: u128,
        error_output_type: Option<&str>,
        query_keys: &Keys,
        lambda_keys: &Keys,
    ) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp(pattern) => out.push_str(&format_timestamp(pattern, arrival_ms)),
                Part::RandomString => out.push_str(&random_string(seed)),
                Part::ErrorOutputType => out.push_str(error_output_type.unwrap_or("")),
                Part::PartitionKeyFromQuery(k) => {
                    out.push_str(query_keys.get(k).map(String::as_str).unwrap_or(""))
                }
                Part::PartitionKeyFromLambda(k) => {
                    out.push_str(lambda_keys.get(k).map(String::as_str).unwrap_or(""))
                }
            }
        }
        if !self.has_timestamp() {
            out.push_str(&format_timestamp(DEFAULT_TIME_FOLDERS, arrival_ms));
        }
        out
    }
}

/// The key prefix of an error object: the ErrorOutputPrefix if set, else
/// `<error-output-type>/yyyy/MM/dd/HH/` (Firehose's default error folder).
pub fn error_prefix(
    configured: Option<&Prefix>,
    arrival_ms: i64,
    seed: u128,
    error_output_type: &str,
) -> String {
    match configured {
        Some(p) if !p.parts.is_empty() => p.evaluate(arrival_ms, seed, Some(error_output_type)),
        _ => format!(
            "{error_output_type}/{}",
            format_timestamp(DEFAULT_TIME_FOLDERS, arrival_ms)
        ),
    }
}

/// The object name Firehose appends to the prefix:
/// `DeliveryStreamName-DeliveryStreamVersion-yyyy-MM-dd-HH-mm-ss-<id>` plus the extension.
pub fn object_name(
    stream: &str,
    version: u64,
    arrival_ms: i64,
    seed: u128,
    extension: &str,
) -> String {
    format!(
        "{stream}-{version}-{}-{}{extension}",
        format_timestamp("yyyy-MM-dd-HH-mm-ss", arrival_ms),
        uuid_from(seed)
    )
}

/// A UUID-shaped rendering of `seed` (version 4 layout bits set), as Firehose's object names
/// end in a UUID.
pub fn uuid_from(seed: u128) -> String {
    let v = (seed & !(0xf000u128 << 64) & !(0xc000u128 << 48))
        | (0x4000u128 << 64)
        | (0x8000u128 << 48);
    let text = crate::protocol::types::uuid_text(&v.to_be_bytes());
    String::from_utf8(text.to_vec()).expect("hex digits and dashes are UTF-8")
}

/// 11 characters from `[a-zA-Z0-9]`, derived from `seed`.
pub fn random_string(seed: u128) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut n = seed;
    (0..11)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u128) as usize] as char;
            n /= ALPHABET.len() as u128;
            c
        })
        .collect()
}

/// Formats `ms` (UTC) with a Java `DateTimeFormatter` pattern: `yyyy`, `yy`, `MM`, `dd`, `HH`,
/// `mm`, `ss`, `SSS`, `'literal text'`; other characters are copied.
pub fn format_timestamp(pattern: &str, ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = crate::clock::civil_from_days(days);
    let (h, mi, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a single quote.
            let mut j = i + 1;
            if j < chars.len() && chars[j] == '\'' {
                out.push('\'');
                i += 2;
                continue;
            }
            while j < chars.len() && chars[j] != '\'' {
                out.push(chars[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        let mut run = 1;
        while i + run < chars.len() && chars[i + run] == c {
            run += 1;
        }
        let num = |v: i64, width: usize| format!("{v:0width$}");
        match c {
            'y' | 'u' if run == 2 => out.push_str(&num(y.rem_euclid(100), 2)),
            'y' | 'u' => out.push_str(&num(y, run.max(4))),
            'M' => out.push_str(&num(mo, run)),
            'd' => out.push_str(&num(d, run)),
            'H' => out.push_str(&num(h, run)),
            'm' => out.push_str(&num(mi, run)),
            's' => out.push_str(&num(s, run)),
            'S' => out.push_str(&format!("{millis:03}")[..run.min(3)]),
            _ => (0..run).for_each(|_| out.push(c)),
        }
        i += run;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2018-08-27 10:30:00 UTC, the instant of the worked examples in Firehose's guide.
    const EXAMPLE_MS: i64 = 1_535_365_800_000;

    #[test]
    fn guide_examples_evaluate_like_firehose() {
        let p = Prefix::parse("myPrefix/").unwrap();
        assert_eq!(p.evaluate(EXAMPLE_MS, 0, None), "myPrefix/2018/08/27/10/");
        let p = Prefix::parse(
            "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
        )
        .unwrap();
        assert_eq!(
            p.evaluate(EXAMPLE_MS, 0, None),
            "myPrefix/year=2018/month=08/day=27/hour=10/"
        );
        let p = Prefix::parse("!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/").unwrap();
        assert!(p.has_error_output_type());
        assert_eq!(
            p.evaluate(EXAMPLE_MS, 0, Some("processing-failed")),
            "processing-failed/2018/08/27/"
        );
        assert_eq!(
            Prefix::parse("").unwrap().evaluate(EXAMPLE_MS, 0, None),
            "2018/08/27/10/"
        );
    }

    #[test]
    fn quoted_text_in_timestamp_patterns_is_literal() {
        assert_eq!(
            format_timestamp("yyyy-MM-dd'T'HH:mm:ss.SSS", EXAMPLE_MS + 7),
            "2018-08-27T10:30:00.007"
        );
        assert_eq!(format_timestamp("yy", EXAMPLE_MS), "18");
    }

    #[test]
    fn random_parts_are_stable_for_a_batch_and_differ_between_batches() {
        let p = Prefix::parse("r=!{firehose:random-string}/").unwrap();
        let a = p.evaluate(EXAMPLE_MS, 42, None);
        assert_eq!(a, p.evaluate(EXAMPLE_MS, 42, None));
        assert_ne!(a, p.evaluate(EXAMPLE_MS, 43, None));
        assert_eq!(random_string(42).len(), 11);
        let name = object_name("ds", 1, EXAMPLE_MS, 7, ".gz");
        assert!(name.starts_with("ds-1-2018-08-27-10-30-00-"), "{name}");
        assert!(name.ends_with(".gz"));
        assert_eq!(uuid_from(7).len(), 36);
        assert_eq!(uuid_from(7), "00000000-0000-4000-8000-000000000007");
        assert_eq!(
            uuid_from(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
            "01234567-89ab-4def-bedc-ba9876543210"
        );
    }

    #[test]
    fn unknown_namespaces_and_unclosed_expressions_are_refused() {
        assert!(Prefix::parse("!{nope:x}/").is_err());
        assert!(Prefix::parse("!{timestamp:yyyy").is_err());
        assert!(Prefix::parse("!{firehose:other}").is_err());
    }

    #[test]
    fn default_error_folder_is_the_error_output_type() {
        assert_eq!(
            error_prefix(None, EXAMPLE_MS, 0, "http-endpoint-failed"),
            "http-endpoint-failed/2018/08/27/10/"
        );
    }
}
