//! Validation of configuration members (inputs, outputs, schemas, reference sources, logging
//! options) with AWS's constraint messages, and the checks AWS makes beyond the model
//! (InvalidArgumentException): one streaming source, at most three outputs, streams that exist.

use super::AnalyticsService;
use crate::analytics::compile::{input_schema, stream_name_of};
use crate::analytics::errors;
use crate::analytics::model::*;
use crate::protocol::AwsError;
use crate::services::validate::{Pattern, Validator};

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

pub fn resource_role(v: &mut Validator, path: &str, r: &ResourceRole) {
    v.not_null(&format!("{path}.resourceARN"), &r.resource_arn);
    v.string(
        &format!("{path}.resourceARN"),
        r.resource_arn.as_deref(),
        Some(RESOURCE_ARN),
        1,
        2048,
    );
    v.not_null(&format!("{path}.roleARN"), &r.role_arn);
    v.string(
        &format!("{path}.roleARN"),
        r.role_arn.as_deref(),
        Some(ROLE_ARN),
        1,
        2048,
    );
}

pub fn processing(v: &mut Validator, path: &str, p: &InputProcessingConfiguration) {
    let path = format!("{path}.inputLambdaProcessor");
    v.not_null(&path, &p.input_lambda_processor);
    if let Some(l) = &p.input_lambda_processor {
        resource_role(v, &path, l);
    }
}

pub fn record_format(v: &mut Validator, path: &str, f: &RecordFormat) {
    let t = format!("{path}.recordFormatType");
    v.not_null(&t, &f.record_format_type);
    v.enumeration(&t, f.record_format_type.as_deref(), &["JSON", "CSV"]);
    if let Some(m) = &f.mapping_parameters {
        if let Some(j) = &m.json {
            let p = format!("{path}.mappingParameters.jSONMappingParameters.recordRowPath");
            v.not_null(&p, &j.record_row_path);
            v.string(&p, j.record_row_path.as_deref(), Some(ROW_PATH), 1, 65535);
        }
        if let Some(c) = &m.csv {
            let base = format!("{path}.mappingParameters.cSVMappingParameters");
            v.not_null(
                &format!("{base}.recordRowDelimiter"),
                &c.record_row_delimiter,
            );
            v.string(
                &format!("{base}.recordRowDelimiter"),
                c.record_row_delimiter.as_deref(),
                None,
                1,
                usize::MAX,
            );
            v.not_null(
                &format!("{base}.recordColumnDelimiter"),
                &c.record_column_delimiter,
            );
            v.string(
                &format!("{base}.recordColumnDelimiter"),
                c.record_column_delimiter.as_deref(),
                None,
                1,
                usize::MAX,
            );
        }
    }
}

pub fn schema(v: &mut Validator, path: &str, s: &SourceSchema) {
    let rf = format!("{path}.recordFormat");
    v.not_null(&rf, &s.record_format);
    if let Some(f) = &s.record_format {
        record_format(v, &rf, f);
    }
    v.string(
        &format!("{path}.recordEncoding"),
        s.record_encoding.as_deref(),
        Some(ENCODING),
        0,
        usize::MAX,
    );
    let cols = format!("{path}.recordColumns");
    v.not_null(&cols, &s.record_columns);
    if let Some(c) = &s.record_columns {
        v.count(&cols, "[]", c.len(), 1, 1000);
        for (i, col) in c.iter().enumerate() {
            let p = format!("{cols}.{}.member", i + 1);
            v.not_null(&format!("{p}.name"), &col.name);
            v.string(
                &format!("{p}.name"),
                col.name.as_deref(),
                Some(IN_APP_NAME),
                0,
                usize::MAX,
            );
            v.not_null(&format!("{p}.sqlType"), &col.sql_type);
            v.string(
                &format!("{p}.sqlType"),
                col.sql_type.as_deref(),
                None,
                1,
                usize::MAX,
            );
        }
    }
}

pub fn input(v: &mut Validator, path: &str, i: &Input) {
    let np = format!("{path}.namePrefix");
    v.not_null(&np, &i.name_prefix);
    v.string(&np, i.name_prefix.as_deref(), Some(IN_APP_NAME), 1, 32);
    if let Some(p) = &i.input_processing_configuration {
        processing(v, &format!("{path}.inputProcessingConfiguration"), p);
    }
    if let Some(k) = &i.kinesis_streams_input {
        resource_role(v, &format!("{path}.kinesisStreamsInput"), k);
    }
    if let Some(k) = &i.kinesis_firehose_input {
        resource_role(v, &format!("{path}.kinesisFirehoseInput"), k);
    }
    if let Some(p) = &i.input_parallelism {
        v.range(&format!("{path}.inputParallelism.count"), p.count, 1, 64);
    }
    let sp = format!("{path}.inputSchema");
    v.not_null(&sp, &i.input_schema);
    if let Some(s) = &i.input_schema {
        schema(v, &sp, s);
    }
}

pub fn output(v: &mut Validator, path: &str, o: &Output) {
    let n = format!("{path}.name");
    v.not_null(&n, &o.name);
    v.string(&n, o.name.as_deref(), Some(IN_APP_NAME), 1, 32);
    for (member, r) in [
        ("kinesisStreamsOutput", &o.kinesis_streams_output),
        ("kinesisFirehoseOutput", &o.kinesis_firehose_output),
        ("lambdaOutput", &o.lambda_output),
    ] {
        if let Some(r) = r {
            resource_role(v, &format!("{path}.{member}"), r);
        }
    }
    let d = format!("{path}.destinationSchema");
    v.not_null(&d, &o.destination_schema);
    if let Some(s) = &o.destination_schema {
        let t = format!("{d}.recordFormatType");
        v.not_null(&t, &s.record_format_type);
        v.enumeration(&t, s.record_format_type.as_deref(), &["JSON", "CSV"]);
    }
}

pub fn reference(v: &mut Validator, path: &str, r: &ReferenceDataSource) {
    let t = format!("{path}.tableName");
    v.not_null(&t, &r.table_name);
    v.string(&t, r.table_name.as_deref(), Some(IN_APP_NAME), 1, 32);
    if let Some(s3) = &r.s3 {
        let p = format!("{path}.s3ReferenceDataSource");
        v.not_null(&format!("{p}.bucketARN"), &s3.bucket_arn);
        v.string(
            &format!("{p}.bucketARN"),
            s3.bucket_arn.as_deref(),
            Some(RESOURCE_ARN),
            1,
            2048,
        );
        v.not_null(&format!("{p}.fileKey"), &s3.file_key);
        v.string(
            &format!("{p}.fileKey"),
            s3.file_key.as_deref(),
            None,
            1,
            1024,
        );
        v.not_null(&format!("{p}.referenceRoleARN"), &s3.reference_role_arn);
        v.string(
            &format!("{p}.referenceRoleARN"),
            s3.reference_role_arn.as_deref(),
            Some(ROLE_ARN),
            1,
            2048,
        );
    }
    let sp = format!("{path}.referenceSchema");
    v.not_null(&sp, &r.reference_schema);
    if let Some(s) = &r.reference_schema {
        schema(v, &sp, s);
    }
}

pub fn logging(v: &mut Validator, path: &str, l: &CloudWatchLoggingOption) {
    v.not_null(&format!("{path}.logStreamARN"), &l.log_stream_arn);
    v.string(
        &format!("{path}.logStreamARN"),
        l.log_stream_arn.as_deref(),
        Some(RESOURCE_ARN),
        1,
        2048,
    );
    v.not_null(&format!("{path}.roleARN"), &l.role_arn);
    v.string(
        &format!("{path}.roleARN"),
        l.role_arn.as_deref(),
        Some(ROLE_ARN),
        1,
        2048,
    );
}

pub fn version(v: &mut Validator, value: Option<i64>) {
    v.not_null("currentApplicationVersionId", &value);
    v.range("currentApplicationVersionId", value, 1, 999_999_999);
}

pub fn app_name(v: &mut Validator, name: Option<&str>) {
    v.string("applicationName", name, Some(APP_NAME), 1, 128);
}

/// A schema whose SQL types parse (checked after the model constraints).
pub fn schema_types(s: &SourceSchema) -> Result<(), AwsError> {
    input_schema(s)
        .map(|_| ())
        .map_err(|e| errors::invalid(e.to_string()))
}

/// Checks beyond the model for an input: a Kinesis stream source that exists, types that parse.
/// (Lambda preprocessing is recorded, and refused when the application starts.)
pub fn input_semantics(a: &AnalyticsService, i: &Input) -> Result<(), AwsError> {
    match (&i.kinesis_streams_input, &i.kinesis_firehose_input) {
        (None, None) | (Some(_), Some(_)) => {
            return Err(errors::invalid(
                "Exactly one of KinesisStreamsInput or KinesisFirehoseInput must be provided.",
            ))
        }
        (None, Some(_)) => return Err(AwsError::new(
            errors::UNSUPPORTED_OPERATION,
            "KinesisFirehoseInput is not supported by this server yet; use KinesisStreamsInput.",
        )),
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
    match &o.kinesis_streams_output {
        Some(k) => stream_exists(a, k.resource_arn.as_deref().unwrap_or_default()),
        None => Err(AwsError::new(
            errors::UNSUPPORTED_OPERATION,
            "Only KinesisStreamsOutput destinations are supported by this server yet.",
        )),
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
