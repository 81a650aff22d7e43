//! Validation of configuration members (inputs, outputs, schemas, reference sources, logging
//! options) with AWS's constraint messages, and the checks AWS makes beyond the model
//! (InvalidArgumentException): one streaming source, at most three outputs, streams that exist.

use super::AnalyticsService;
use crate::analytics::compile::{input_schema, stream_name_of};
use crate::analytics::errors;
use crate::analytics::model::*;
use crate::protocol::AwsError;
use crate::services::validate::{Pattern, Text, Validator};

pub const APP_NAME: Pattern<'static> = ("[a-zA-Z0-9_.-]+", crate::services::validate::is_name);
pub const ID: Pattern<'static> = ("[a-zA-Z0-9_.-]+", crate::services::validate::is_name);
/// In-application stream, table and column names.
pub const IN_APP_NAME: Pattern<'static> = ("[^-\\s<>&]*", is_in_app_name);
pub const RESOURCE_ARN: Pattern<'static> = ("arn:.*", is_arn);
pub const ROLE_ARN: Pattern<'static> = (
    "arn:.*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
    is_role_arn,
);
pub const ROW_PATH: Pattern<'static> = ("^(?=^\\$)(?=^\\S+$).*$", is_row_path);
pub const ENCODING: Pattern<'static> = ("UTF-8", is_utf8_name);
pub const APP_ARN: Pattern<'static> = (
    "arn:aws:kinesisanalytics:[a-z]{2}-[a-z]+-\\d{1}+:\\d{12}+:application/[a-zA-Z0-9_.-]{1,128}",
    is_app_arn,
);

fn is_in_app_name(s: &str) -> bool {
    !s.chars()
        .any(|c| c == '-' || c.is_whitespace() || c == '<' || c == '>' || c == '&')
}

fn is_arn(s: &str) -> bool {
    s.starts_with("arn:")
}

fn is_role_arn(s: &str) -> bool {
    let Some((head, role)) = s.split_once(":role") else {
        return false;
    };
    let Some((start, account)) = head.rsplit_once(":iam::") else {
        return false;
    };
    let role = role.strip_prefix('/').unwrap_or(role);
    start.starts_with("arn:")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !role.is_empty()
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c))
}

fn is_row_path(s: &str) -> bool {
    s.starts_with('$') && !s.chars().any(char::is_whitespace)
}

fn is_utf8_name(s: &str) -> bool {
    s == "UTF-8"
}

fn is_app_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:aws:kinesisanalytics:") else {
        return false;
    };
    let parts: Vec<&str> = rest.splitn(3, ':').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && parts[1].len() == 12
        && parts[1].bytes().all(|b| b.is_ascii_digit())
        && parts[2]
            .strip_prefix("application/")
            .is_some_and(|n| crate::services::validate::is_name(n) && n.len() <= 128)
}

/// Resource and log stream ARNs.
const ARN: Text = Text::matching(RESOURCE_ARN, 1, 2048);
/// The IAM role KDA assumes.
const ROLE: Text = Text::matching(ROLE_ARN, 1, 2048);
/// Input name prefixes, output names and reference table names.
pub const IN_APP_OBJECT: Text = Text::matching(IN_APP_NAME, 1, 32);
/// Input, output, reference and logging option ids.
const CONFIGURATION_ID: Text = Text::matching(ID, 1, 50);
const RECORD_FORMAT_TYPES: &[&str] = &["JSON", "CSV"];

pub fn resource_role(v: &mut Validator, path: &str, r: &ResourceRole) {
    v.required_texts(
        path,
        &[
            ("resourceARN", &r.resource_arn, ARN),
            ("roleARN", &r.role_arn, ROLE),
        ],
    );
}

pub fn processing(v: &mut Validator, path: &str, p: &InputProcessingConfiguration) {
    v.required(
        &format!("{path}.inputLambdaProcessor"),
        &p.input_lambda_processor,
        resource_role,
    );
}

pub fn record_format(v: &mut Validator, path: &str, f: &RecordFormat) {
    record_format_type(v, path, &f.record_format_type);
    let mapping = format!("{path}.mappingParameters");
    if let Some(m) = &f.mapping_parameters {
        v.nested(&mapping, m.json.as_ref(), |v, path, j| {
            v.required_texts(
                &format!("{path}.jSONMappingParameters"),
                &[(
                    "recordRowPath",
                    &j.record_row_path,
                    Text::matching(ROW_PATH, 1, 65535),
                )],
            );
        });
        v.nested(&mapping, m.csv.as_ref(), |v, path, c| {
            let delimiter = Text::len(1, usize::MAX);
            v.required_texts(
                &format!("{path}.cSVMappingParameters"),
                &[
                    ("recordRowDelimiter", &c.record_row_delimiter, delimiter),
                    (
                        "recordColumnDelimiter",
                        &c.record_column_delimiter,
                        delimiter,
                    ),
                ],
            );
        });
    }
}

pub fn record_format_type(v: &mut Validator, path: &str, t: &Option<String>) {
    v.required_enumeration(&format!("{path}.recordFormatType"), t, RECORD_FORMAT_TYPES);
}

pub fn schema(v: &mut Validator, path: &str, s: &SourceSchema) {
    v.required(
        &format!("{path}.recordFormat"),
        &s.record_format,
        record_format,
    );
    v.text(
        &format!("{path}.recordEncoding"),
        s.record_encoding.as_deref(),
        Text::matching(ENCODING, 0, usize::MAX),
    );
    v.required(
        &format!("{path}.recordColumns"),
        &s.record_columns,
        |v, cols, c| {
            v.count(cols, "[]", c.len(), 1, 1000);
            v.each(cols, c, |v, p, col| {
                v.required_texts(
                    p,
                    &[
                        (
                            "name",
                            &col.name,
                            Text::matching(IN_APP_NAME, 0, usize::MAX),
                        ),
                        ("sqlType", &col.sql_type, Text::len(1, usize::MAX)),
                    ],
                );
            });
        },
    );
}

pub fn input(v: &mut Validator, path: &str, i: &Input) {
    v.required_texts(path, &[("namePrefix", &i.name_prefix, IN_APP_OBJECT)]);
    v.nested(
        &format!("{path}.inputProcessingConfiguration"),
        i.input_processing_configuration.as_ref(),
        processing,
    );
    for (member, r) in [
        ("kinesisStreamsInput", &i.kinesis_streams_input),
        ("kinesisFirehoseInput", &i.kinesis_firehose_input),
    ] {
        v.nested(&format!("{path}.{member}"), r.as_ref(), resource_role);
    }
    if let Some(p) = &i.input_parallelism {
        v.range(&format!("{path}.inputParallelism.count"), p.count, 1, 64);
    }
    v.required(&format!("{path}.inputSchema"), &i.input_schema, schema);
}

pub fn output(v: &mut Validator, path: &str, o: &Output) {
    v.required_texts(path, &[("name", &o.name, IN_APP_OBJECT)]);
    for (member, r) in [
        ("kinesisStreamsOutput", &o.kinesis_streams_output),
        ("kinesisFirehoseOutput", &o.kinesis_firehose_output),
        ("lambdaOutput", &o.lambda_output),
    ] {
        v.nested(&format!("{path}.{member}"), r.as_ref(), resource_role);
    }
    v.required(
        &format!("{path}.destinationSchema"),
        &o.destination_schema,
        |v, d, s| record_format_type(v, d, &s.record_format_type),
    );
}

pub fn reference(v: &mut Validator, path: &str, r: &ReferenceDataSource) {
    v.required_texts(path, &[("tableName", &r.table_name, IN_APP_OBJECT)]);
    v.nested(
        &format!("{path}.s3ReferenceDataSource"),
        r.s3.as_ref(),
        |v, p, s3| {
            v.required_texts(
                p,
                &[
                    ("bucketARN", &s3.bucket_arn, ARN),
                    ("fileKey", &s3.file_key, Text::len(1, 1024)),
                    ("referenceRoleARN", &s3.reference_role_arn, ROLE),
                ],
            );
        },
    );
    v.required(
        &format!("{path}.referenceSchema"),
        &r.reference_schema,
        schema,
    );
}

pub fn logging(v: &mut Validator, path: &str, l: &CloudWatchLoggingOption) {
    v.required_texts(
        path,
        &[
            ("logStreamARN", &l.log_stream_arn, ARN),
            ("roleARN", &l.role_arn, ROLE),
        ],
    );
}

pub fn version(v: &mut Validator, value: Option<i64>) {
    v.not_null("currentApplicationVersionId", &value);
    v.range("currentApplicationVersionId", value, 1, 999_999_999);
}

pub fn app_name(v: &mut Validator, name: Option<&str>) {
    v.text("applicationName", name, APP_NAME_RULE);
}

/// The required `ApplicationName` member.
pub fn application_name(v: &mut Validator, name: &Option<String>) {
    v.required_text("applicationName", name, APP_NAME_RULE);
}

const APP_NAME_RULE: Text = Text::matching(APP_NAME, 1, 128);

/// A required input, output, reference or logging option id.
pub fn id(v: &mut Validator, path: &str, id: &Option<String>) {
    v.required_text(path, id, CONFIGURATION_ID);
}

/// A schema whose SQL types parse (checked after the model constraints).
pub fn schema_types(s: &SourceSchema) -> Result<(), AwsError> {
    input_schema(s)
        .map(|_| ())
        .map_err(|e| errors::invalid(e.to_string()))
}

/// Checks beyond the model for an input: a Kinesis stream or DirectPut delivery stream source
/// that exists, types that parse.
/// (Lambda preprocessing is recorded, and refused when the application starts.)
pub fn input_semantics(a: &AnalyticsService, i: &Input) -> Result<(), AwsError> {
    match (&i.kinesis_streams_input, &i.kinesis_firehose_input) {
        (None, None) | (Some(_), Some(_)) => {
            return Err(errors::invalid(
                "Exactly one of KinesisStreamsInput or KinesisFirehoseInput must be provided.",
            ))
        }
        (None, Some(f)) => {
            delivery_stream_exists(a, f.resource_arn.as_deref().unwrap_or_default())?
        }
        (Some(k), None) => stream_exists(a, k.resource_arn.as_deref().unwrap_or_default())?,
    }
    schema_types(i.input_schema.as_ref().unwrap_or(&Default::default()))
}

pub fn output_semantics(a: &AnalyticsService, o: &Output) -> Result<(), AwsError> {
    let given = [
        o.kinesis_streams_output.is_some(),
        o.kinesis_firehose_output.is_some(),
        o.lambda_output.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        return Err(errors::invalid(
            "Exactly one of KinesisStreamsOutput, KinesisFirehoseOutput or LambdaOutput must be provided.",
        ));
    }
    match (&o.kinesis_streams_output, &o.kinesis_firehose_output) {
        (Some(k), _) => stream_exists(a, k.resource_arn.as_deref().unwrap_or_default()),
        (None, Some(f)) => delivery_stream_exists(a, f.resource_arn.as_deref().unwrap_or_default()),
        (None, None) => Err(AwsError::new(
            errors::UNSUPPORTED_OPERATION,
            "LambdaOutput is not supported by this server: Tributary cannot invoke AWS Lambda functions.",
        )),
    }
}

/// A Firehose input or output needs a DirectPut delivery stream of this server.
fn delivery_stream_exists(a: &AnalyticsService, arn: &str) -> Result<(), AwsError> {
    let found = crate::analytics::compile::delivery_stream_name_of(arn)
        .filter(|_| arn.contains(":firehose:"))
        .and_then(|n| a.engine.delivery.as_ref()?.find(n));
    match found {
        Some(ds) if ds.meta().source == crate::delivery::SourceKind::DirectPut => Ok(()),
        Some(_) => Err(errors::invalid(format!(
            "Delivery stream {arn} reads a Kinesis stream; an application can only use a DirectPut delivery stream."
        ))),
        None => Err(errors::invalid(format!(
            "Kinesis Analytics cannot find the delivery stream {arn}. Make sure the delivery stream exists and the ARN is correct."
        ))),
    }
}

fn stream_exists(a: &AnalyticsService, arn: &str) -> Result<(), AwsError> {
    let name = stream_name_of(arn).filter(|_| arn.contains(":kinesis:"));
    match name {
        Some(n) if a.engine.streams.find(n).is_some() => Ok(()),
        // Served by another endpoint (--stream-endpoint); reached when the application runs.
        Some(n) if a.engine.streams.remote.get(n).is_some() => Ok(()),
        _ => Err(errors::invalid(format!(
            "Kinesis Analytics cannot find the stream {arn}. Make sure the stream exists and the ARN is correct."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_follow_the_iam_pattern() {
        assert!(is_role_arn(
            "arn:aws:iam::000000000000:role/service-role/kda"
        ));
        assert!(!is_role_arn("arn:aws:iam::0:role/x"));
        assert!(!is_role_arn("role/x"));
    }

    #[test]
    fn application_arns_follow_the_kinesisanalytics_pattern() {
        assert!(is_app_arn(
            "arn:aws:kinesisanalytics:us-east-1:000000000000:application/app"
        ));
        assert!(!is_app_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/s"
        ));
    }

    #[test]
    fn in_app_names_refuse_dashes_and_spaces() {
        assert!(is_in_app_name("SOURCE_SQL_STREAM"));
        assert!(!is_in_app_name("a-b"));
        assert!(!is_in_app_name("a b"));
    }
}
