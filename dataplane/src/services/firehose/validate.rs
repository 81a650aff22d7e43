//! Checks of delivery stream names, tags and destination configurations, in two passes as
//! Firehose makes them: the model's constraints (ValidationException, all at once), then the
//! service's rules (InvalidArgumentException, first failure).

use super::errors::invalid_argument;
use super::model::Tag;
use std::path::Path;

use crate::delivery::compress;
use crate::delivery::config::{HttpDestination, ProcessingConfiguration, S3Destination};
use crate::delivery::convert::{self, ConversionConfig};
use crate::delivery::postgres::{self, RedshiftDestination};
use crate::delivery::prefix::Prefix;
use crate::protocol::AwsError;
use crate::services::validate::{is_name, Validator, NAME_PATTERN};

pub fn name(v: &mut Validator, path: &str, value: &Option<String>) {
    if v.not_null(path, value) {
        v.string(path, value.as_deref(), Some((NAME_PATTERN, is_name)), 1, 64);
    }
}

fn is_bucket_arn(s: &str) -> bool {
    // arn:.*:s3:::[\w\.\-]{1,255}
    let Some(i) = s.find(":s3:::") else {
        return false;
    };
    let bucket = &s[i + 6..];
    s.starts_with("arn:")
        && (1..=255).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn is_role_arn(s: &str) -> bool {
    s.starts_with("arn:") && s.contains(":iam::")
}

fn is_file_extension(s: &str) -> bool {
    s.is_empty()
        || (s.starts_with('.')
            && s.len() > 1
            && s[1..]
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"!-_.*'()".contains(&b)))
}

fn is_url(s: &str) -> bool {
    // Firehose requires https://; plain http:// is a Tributary extension for in-cluster and
    // test endpoints.
    s.starts_with("https://") || s.starts_with("http://")
}

pub fn tags(v: &mut Validator, path: &str, tags: &Option<Vec<Tag>>, min: usize) {
    let Some(t) = tags else { return };
    v.count(path, &format!("{} tags", t.len()), t.len(), min, 50);
    for (i, tag) in t.iter().enumerate() {
        let p = format!("{path}.{}.member", i + 1);
        if v.not_null(&format!("{p}.key"), &tag.key) {
            v.string(&format!("{p}.key"), tag.key.as_deref(), None, 1, 128);
        }
        v.string(&format!("{p}.value"), tag.value.as_deref(), None, 0, 256);
    }
}

/// Tag keys starting with `aws:` are reserved.
pub fn tag_rules(tags: &[Tag]) -> Result<(), AwsError> {
    if tags
        .iter()
        .any(|t| t.key.as_deref().is_some_and(|k| k.starts_with("aws:")))
    {
        return Err(invalid_argument(
            "Tag keys must not start with 'aws:', which is reserved for AWS use.",
        ));
    }
    Ok(())
}

/// Decodes a destination configuration (a shape error is a SerializationException).
pub fn decode<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<T, AwsError> {
    serde_json::from_value(value.clone())
        .map_err(|e| AwsError::serialization(format!("Invalid destination configuration: {e}")))
}

fn hints(
    v: &mut Validator,
    path: &str,
    h: &Option<crate::delivery::config::BufferingHints>,
    max_mb: i64,
) {
    if let Some(h) = h {
        v.range(
            &format!("{path}.bufferingHints.sizeInMBs"),
            h.size_in_mbs,
            1,
            max_mb,
        );
        v.range(
            &format!("{path}.bufferingHints.intervalInSeconds"),
            h.interval_in_seconds,
            0,
            900,
        );
    }
}

/// Model constraints of an S3 configuration; `update` relaxes the required members.
pub fn s3(v: &mut Validator, path: &str, c: &S3Destination, update: bool) {
    if !update {
        v.not_null(&format!("{path}.roleARN"), &c.role_arn);
        v.not_null(&format!("{path}.bucketARN"), &c.bucket_arn);
    }
    v.string(
        &format!("{path}.roleARN"),
        c.role_arn.as_deref(),
        Some((
            "arn:.*:iam::\\d{12}:role/[a-zA-Z_0-9+=,.@\\-_/]+",
            is_role_arn,
        )),
        1,
        512,
    );
    v.string(
        &format!("{path}.bucketARN"),
        c.bucket_arn.as_deref(),
        Some(("arn:.*:s3:::[\\w\\.\\-]{1,255}", is_bucket_arn)),
        1,
        2048,
    );
    v.string(
        &format!("{path}.prefix"),
        c.prefix.as_deref(),
        None,
        0,
        1024,
    );
    v.string(
        &format!("{path}.errorOutputPrefix"),
        c.error_output_prefix.as_deref(),
        None,
        0,
        1024,
    );
    hints(v, path, &c.buffering_hints, 128);
    v.enumeration(
        &format!("{path}.compressionFormat"),
        c.compression_format.as_deref(),
        compress::FORMATS,
    );
    v.string(
        &format!("{path}.fileExtension"),
        c.file_extension.as_deref(),
        Some(("^$|\\.[0-9a-z!\\-_.*'()]+", is_file_extension)),
        0,
        128,
    );
    v.string(
        &format!("{path}.customTimeZone"),
        c.custom_time_zone.as_deref(),
        None,
        0,
        50,
    );
    v.enumeration(
        &format!("{path}.s3BackupMode"),
        c.s3_backup_mode.as_deref(),
        &["Disabled", "Enabled"],
    );
    if let Some(b) = &c.s3_backup_configuration {
        s3(v, &format!("{path}.s3BackupConfiguration"), b, update);
    }
    processing_model(
        v,
        &format!("{path}.processingConfiguration"),
        &c.processing_configuration,
    );
    if let Some(d) = &c.data_format_conversion_configuration {
        conversion_model(v, &format!("{path}.dataFormatConversionConfiguration"), d);
    }
}

pub const PROCESSOR_TYPES: &[&str] = &[
    "RecordDeAggregation",
    "Decompression",
    "CloudWatchLogProcessing",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
];

pub const PARAMETER_NAMES: &[&str] = &[
    "LambdaArn",
    "NumberOfRetries",
    "MetadataExtractionQuery",
    "JsonParsingEngine",
    "RoleArn",
    "BufferSizeInMBs",
    "BufferIntervalInSeconds",
    "SubRecordType",
    "Delimiter",
    "CompressionFormat",
    "DataMessageExtraction",
];

/// Model constraints of a `ProcessingConfiguration`: processor types, parameter names and
/// 1–5120-character values.
fn processing_model(v: &mut Validator, path: &str, p: &Option<ProcessingConfiguration>) {
    let Some(p) = p else { return };
    for (i, proc) in p.processors.iter().flatten().enumerate() {
        let pp = format!("{path}.processors.{}.member", i + 1);
        if v.not_null(&format!("{pp}.type"), &proc.kind) {
            v.enumeration(&format!("{pp}.type"), proc.kind.as_deref(), PROCESSOR_TYPES);
        }
        for (j, param) in proc.parameters.iter().flatten().enumerate() {
            let mp = format!("{pp}.parameters.{}.member", j + 1);
            if v.not_null(&format!("{mp}.parameterName"), &param.parameter_name) {
                v.enumeration(
                    &format!("{mp}.parameterName"),
                    param.parameter_name.as_deref(),
                    PARAMETER_NAMES,
                );
            }
            if v.not_null(&format!("{mp}.parameterValue"), &param.parameter_value) {
                v.string(
                    &format!("{mp}.parameterValue"),
                    param.parameter_value.as_deref(),
                    Some(("^(?!\\s*$).+", |s: &str| !s.trim().is_empty())),
                    1,
                    5120,
                );
            }
        }
    }
}

/// Model constraints of a `DataFormatConversionConfiguration`.
fn conversion_model(v: &mut Validator, path: &str, raw: &serde_json::Value) {
    let Ok(c) = serde_json::from_value::<ConversionConfig>(raw.clone()) else {
        return;
    };
    if let Some(s) = &c.schema_configuration {
        let sp = format!("{path}.schemaConfiguration");
        for (member, value) in [
            ("roleARN", &s.role_arn),
            ("catalogId", &s.catalog_id),
            ("databaseName", &s.database_name),
            ("tableName", &s.table_name),
            ("region", &s.region),
            ("versionId", &s.version_id),
        ] {
            v.string(
                &format!("{sp}.{member}"),
                value.as_deref(),
                Some(("^\\S+$", |s: &str| !s.chars().any(char::is_whitespace))),
                1,
                if member == "roleARN" { 512 } else { 1024 },
            );
        }
    }
    if let Some(p) = c
        .output_format_configuration
        .as_ref()
        .and_then(|o| o.serializer.as_ref())
        .and_then(|s| s.parquet.as_ref())
    {
        let pp = format!("{path}.outputFormatConfiguration.serializer.parquetSerDe");
        v.min(
            &format!("{pp}.blockSizeBytes"),
            p.block_size_bytes,
            67_108_864,
        );
        v.min(&format!("{pp}.pageSizeBytes"), p.page_size_bytes, 65_536);
        v.min(&format!("{pp}.maxPaddingBytes"), p.max_padding_bytes, 0);
        v.enumeration(
            &format!("{pp}.compression"),
            p.compression.as_deref(),
            &["UNCOMPRESSED", "GZIP", "SNAPPY"],
        );
        v.enumeration(
            &format!("{pp}.writerVersion"),
            p.writer_version.as_deref(),
            &["V1", "V2"],
        );
    }
}

/// Model constraints of an HTTP endpoint configuration.
pub fn http(v: &mut Validator, path: &str, c: &HttpDestination, update: bool) {
    let ep = format!("{path}.endpointConfiguration");
    if !update {
        v.not_null(&ep, &c.endpoint_configuration);
        v.not_null(&format!("{path}.s3Configuration"), &c.s3_configuration);
    }
    if let Some(e) = &c.endpoint_configuration {
        if v.not_null(&format!("{ep}.url"), &e.url) {
            v.string(
                &format!("{ep}.url"),
                e.url.as_deref(),
                Some(("https://.*", is_url)),
                1,
                1000,
            );
        }
        v.string(&format!("{ep}.name"), e.name.as_deref(), None, 1, 256);
        v.string(
            &format!("{ep}.accessKey"),
            e.access_key.as_deref(),
            None,
            0,
            4096,
        );
    }
    hints(v, path, &c.buffering_hints, 64);
    if let Some(r) = &c.retry_options {
        v.range(
            &format!("{path}.retryOptions.durationInSeconds"),
            r.duration_in_seconds,
            0,
            7200,
        );
    }
    if let Some(rc) = &c.request_configuration {
        v.enumeration(
            &format!("{path}.requestConfiguration.contentEncoding"),
            rc.content_encoding.as_deref(),
            &["NONE", "GZIP"],
        );
        if let Some(a) = &rc.common_attributes {
            v.count(
                &format!("{path}.requestConfiguration.commonAttributes"),
                &format!("{} attributes", a.len()),
                a.len(),
                0,
                50,
            );
        }
    }
    v.enumeration(
        &format!("{path}.s3BackupMode"),
        c.s3_backup_mode.as_deref(),
        &["FailedDataOnly", "AllData"],
    );
    processing_model(
        v,
        &format!("{path}.processingConfiguration"),
        &c.processing_configuration,
    );
    if let Some(s) = &c.s3_configuration {
        s3(v, &format!("{path}.s3Configuration"), s, update);
    }
}

/// Model constraints of a Redshift (PostgreSQL) configuration.
pub fn redshift(v: &mut Validator, path: &str, c: &RedshiftDestination, update: bool) {
    if !update {
        v.not_null(&format!("{path}.roleARN"), &c.role_arn);
        v.not_null(&format!("{path}.clusterJDBCURL"), &c.cluster_jdbc_url);
        v.not_null(&format!("{path}.copyCommand"), &c.copy_command);
        v.not_null(&format!("{path}.s3Configuration"), &c.s3_configuration);
    }
    v.string(
        &format!("{path}.clusterJDBCURL"),
        c.cluster_jdbc_url.as_deref(),
        Some(("jdbc:(redshift|postgresql)://...", |s: &str| {
            postgres::parse_jdbc(s).is_ok()
        })),
        1,
        512,
    );
    if let Some(cmd) = &c.copy_command {
        let p = format!("{path}.copyCommand.dataTableName");
        if v.not_null(&p, &cmd.data_table_name) {
            v.string(&p, cmd.data_table_name.as_deref(), None, 1, 512);
        }
        v.string(
            &format!("{path}.copyCommand.copyOptions"),
            cmd.copy_options.as_deref(),
            None,
            0,
            204_800,
        );
    }
    v.string(
        &format!("{path}.username"),
        c.username.as_deref(),
        None,
        1,
        512,
    );
    v.string(
        &format!("{path}.password"),
        c.password.as_deref(),
        None,
        6,
        512,
    );
    if let Some(r) = &c.retry_options {
        v.range(
            &format!("{path}.retryOptions.durationInSeconds"),
            r.duration_in_seconds,
            0,
            7200,
        );
    }
    if let Some(s) = &c.s3_configuration {
        s3(v, &format!("{path}.s3Configuration"), s, update);
    }
    v.enumeration(
        &format!("{path}.s3BackupMode"),
        c.s3_backup_mode.as_deref(),
        &["Disabled", "Enabled"],
    );
    if let Some(b) = &c.s3_backup_configuration {
        s3(v, &format!("{path}.s3BackupConfiguration"), b, update);
    }
    processing_model(
        v,
        &format!("{path}.processingConfiguration"),
        &c.processing_configuration,
    );
}

/// Service rules of a Redshift configuration: Firehose requires a prefix without expressions,
/// no error prefix, and a compression COPY can read (not Snappy or ZIP).
pub fn redshift_rules(c: &RedshiftDestination) -> Result<(), AwsError> {
    processing(&c.processing_configuration)?;
    let cmd = c.copy_command.clone().unwrap_or_default();
    let table = cmd.data_table_name.unwrap_or_default();
    if !postgres::is_identifier(&table, true) {
        return Err(invalid_argument(format!(
            "DataTableName {table} must be a plain (optionally schema-qualified) table name."
        )));
    }
    for col in cmd.data_table_columns.as_deref().unwrap_or("").split(',') {
        let col = col.trim();
        if !col.is_empty() && !postgres::is_identifier(col, false) {
            return Err(invalid_argument(format!(
                "DataTableColumns entry {col} must be a plain column name."
            )));
        }
    }
    backup_rules(
        c.s3_backup_mode.as_deref(),
        c.s3_backup_configuration.as_ref(),
    )?;
    if let Some(s3) = &c.s3_configuration {
        if Prefix::parse(s3.prefix.as_deref().unwrap_or(""))
            .map(|p| p.has_expressions())
            .unwrap_or(true)
        {
            return Err(invalid_argument(
                "The Redshift destination's S3 prefix cannot contain expressions.",
            ));
        }
        if s3.error_output_prefix.is_some() {
            return Err(invalid_argument(
                "The Redshift destination's S3 configuration cannot have an ErrorOutputPrefix.",
            ));
        }
        if matches!(
            s3.compression_format.as_deref(),
            Some("Snappy" | "ZIP" | "HADOOP_SNAPPY")
        ) {
            return Err(invalid_argument(
                "CompressionFormat Snappy, ZIP and HADOOP_SNAPPY are not supported for the Redshift destination.",
            ));
        }
    }
    Ok(())
}

/// The parameters each processor type accepts.
fn allowed_parameters(kind: &str) -> &'static [&'static str] {
    match kind {
        "Lambda" => &[
            "LambdaArn",
            "NumberOfRetries",
            "RoleArn",
            "BufferSizeInMBs",
            "BufferIntervalInSeconds",
        ],
        "MetadataExtraction" => &["MetadataExtractionQuery", "JsonParsingEngine"],
        "RecordDeAggregation" => &["SubRecordType", "Delimiter"],
        "Decompression" => &["CompressionFormat"],
        "CloudWatchLogProcessing" => &["DataMessageExtraction"],
        _ => &[],
    }
}

/// Service rules of processors: each type at most once, its parameters known and valid.
fn processing(p: &Option<ProcessingConfiguration>) -> Result<(), AwsError> {
    let Some(p) = p else { return Ok(()) };
    let mut seen: Vec<&str> = Vec::new();
    for proc in p.processors.iter().flatten() {
        let Some(kind) = proc.kind.as_deref() else {
            return Err(invalid_argument("Processor type must not be null."));
        };
        if seen.contains(&kind) {
            return Err(invalid_argument(format!(
                "Processor type {kind} is specified more than once."
            )));
        }
        seen.push(kind);
        let mut names: Vec<&str> = Vec::new();
        for param in proc.parameters.iter().flatten() {
            let name = param.parameter_name.as_deref().unwrap_or_default();
            if !allowed_parameters(kind).contains(&name) {
                return Err(invalid_argument(format!(
                    "Processor parameter {name} is not valid for processor type {kind}."
                )));
            }
            if names.contains(&name) {
                return Err(invalid_argument(format!(
                    "Processor parameter {name} is specified more than once for processor type {kind}."
                )));
            }
            names.push(name);
        }
        let param = |name: &str| proc.param(name);
        let number = |name: &str, lo: f64, hi: f64| -> Result<(), AwsError> {
            match param(name) {
                None => Ok(()),
                Some(v) => match v.parse::<f64>() {
                    Ok(n) if (lo..=hi).contains(&n) => Ok(()),
                    _ => Err(invalid_argument(format!(
                        "{name} value {v} is invalid for processor type {kind}: it must be a number between {lo} and {hi}."
                    ))),
                },
            }
        };
        match kind {
            "AppendDelimiterToRecord" => {}
            "Lambda" => {
                if param("LambdaArn").is_none_or(|v| v.is_empty()) {
                    return Err(invalid_argument(
                        "The Lambda processor requires the LambdaArn parameter.",
                    ));
                }
                number("NumberOfRetries", 0.0, 300.0)?;
                if param("NumberOfRetries").is_some_and(|v| v.parse::<u32>().is_err()) {
                    return Err(invalid_argument(
                        "NumberOfRetries value must be an integer between 0 and 300.",
                    ));
                }
                number("BufferSizeInMBs", 0.2, 3.0)?;
                number("BufferIntervalInSeconds", 0.0, 900.0)?;
            }
            "MetadataExtraction" => {
                let Some(query) = param("MetadataExtractionQuery") else {
                    return Err(invalid_argument(
                        "The MetadataExtraction processor requires the MetadataExtractionQuery parameter.",
                    ));
                };
                match param("JsonParsingEngine").as_deref() {
                    Some("JQ-1.6") => {}
                    None => {
                        return Err(invalid_argument(
                            "The MetadataExtraction processor requires the JsonParsingEngine parameter.",
                        ))
                    }
                    Some(_) => return Err(invalid_argument("JsonParsingEngine must be JQ-1.6.")),
                }
                crate::delivery::partition::check(&query).map_err(invalid_argument)?;
            }
            "RecordDeAggregation" => match param("SubRecordType").as_deref() {
                Some("JSON") => {
                    if param("Delimiter").is_some() {
                        return Err(invalid_argument(
                            "Delimiter is only valid with SubRecordType DELIMITED.",
                        ));
                    }
                }
                Some("DELIMITED") => {
                    let delimiter = param("Delimiter").ok_or_else(|| {
                        invalid_argument("SubRecordType DELIMITED requires the Delimiter parameter.")
                    })?;
                    let decoded = base64::Engine::decode(
                        &base64::engine::general_purpose::STANDARD,
                        &delimiter,
                    );
                    if decoded.map_or(true, |d| d.is_empty()) {
                        return Err(invalid_argument(
                            "Delimiter must be a non-empty base64-encoded string.",
                        ));
                    }
                }
                Some(other) => {
                    return Err(invalid_argument(format!(
                        "SubRecordType {other} is invalid; valid values: JSON, DELIMITED."
                    )))
                }
                None => {
                    return Err(invalid_argument(
                        "The RecordDeAggregation processor requires the SubRecordType parameter.",
                    ))
                }
            },
            "Decompression" => match param("CompressionFormat").as_deref() {
                None | Some("GZIP") => {}
                Some(other) => {
                    return Err(invalid_argument(format!(
                        "CompressionFormat {other} is invalid for processor type Decompression; valid values: GZIP."
                    )))
                }
            },
            "CloudWatchLogProcessing" => {
                if param("DataMessageExtraction").is_none_or(|v| v != "true") {
                    return Err(invalid_argument(
                        "The CloudWatchLogProcessing processor requires DataMessageExtraction set to true.",
                    ));
                }
                if !p.processors.iter().flatten().any(|x| x.kind.as_deref() == Some("Decompression")) {
                    return Err(invalid_argument(
                        "The CloudWatchLogProcessing processor requires the Decompression processor.",
                    ));
                }
            }
            other => {
                return Err(invalid_argument(format!(
                    "Processor type {other} is not supported."
                )))
            }
        }
    }
    Ok(())
}

/// Firehose's rules for Prefix and ErrorOutputPrefix.
pub fn prefixes(
    prefix: Option<&str>,
    error_prefix: Option<&str>,
    dynamic_partitioning: bool,
) -> Result<(), AwsError> {
    let p = Prefix::parse(prefix.unwrap_or("")).map_err(|e| invalid_argument(e.to_string()))?;
    let e =
        Prefix::parse(error_prefix.unwrap_or("")).map_err(|e| invalid_argument(e.to_string()))?;
    if p.has_error_output_type() {
        return Err(invalid_argument(
            "The '!{firehose:error-output-type}' expression is only allowed in ErrorOutputPrefix.",
        ));
    }
    if e.has_partition_keys() {
        return Err(invalid_argument(
            "partitionKeyFromQuery and partitionKeyFromLambda expressions are not allowed in ErrorOutputPrefix.",
        ));
    }
    if p.has_partition_keys() && !dynamic_partitioning {
        return Err(invalid_argument(
            "partitionKeyFromQuery and partitionKeyFromLambda expressions require dynamic partitioning, which is not enabled.",
        ));
    }
    if dynamic_partitioning && error_prefix.is_none_or(str::is_empty) {
        return Err(invalid_argument(
            "ErrorOutputPrefix must be specified when dynamic partitioning is enabled.",
        ));
    }
    if p.has_expressions() && error_prefix.is_none_or(str::is_empty) {
        return Err(invalid_argument(
            "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions.",
        ));
    }
    if e.has_expressions() && !e.has_error_output_type() {
        return Err(invalid_argument(
            "ErrorOutputPrefix must contain the '!{firehose:error-output-type}' expression when it contains expressions.",
        ));
    }
    Ok(())
}

/// Service rules of an S3 configuration; `catalog` is where format conversion reads its
/// Glue tables.
pub fn s3_rules(c: &S3Destination, catalog: Option<&Path>) -> Result<(), AwsError> {
    let dp = c.dynamic_partitioning();
    prefixes(c.prefix.as_deref(), c.error_output_prefix.as_deref(), dp)?;
    processing(&c.processing_configuration)?;
    let query = c
        .processing_configuration
        .as_ref()
        .and_then(|p| p.metadata_query());
    if query.is_some() && !dp {
        return Err(invalid_argument(
            "The MetadataExtraction processor requires dynamic partitioning to be enabled.",
        ));
    }
    let p = Prefix::parse(c.prefix.as_deref().unwrap_or(""))
        .map_err(|e| invalid_argument(e.to_string()))?;
    if !p.key_names().0.is_empty() && query.is_none() {
        return Err(invalid_argument(
            "partitionKeyFromQuery expressions require a MetadataExtraction processor with a MetadataExtractionQuery.",
        ));
    }
    if !p.key_names().1.is_empty()
        && c.processing_configuration
            .as_ref()
            .and_then(|p| p.lambda())
            .is_none()
    {
        return Err(invalid_argument(
            "partitionKeyFromLambda expressions require a Lambda processor.",
        ));
    }
    if let Some(conv) = ConversionConfig::parse(c.data_format_conversion_configuration.as_ref()) {
        conversion_rules(c, &conv, catalog)?;
    }
    backup_rules(
        c.s3_backup_mode.as_deref(),
        c.s3_backup_configuration.as_deref(),
    )
}

/// Firehose's rules for an enabled `DataFormatConversionConfiguration`.
fn conversion_rules(
    c: &S3Destination,
    conv: &ConversionConfig,
    catalog: Option<&Path>,
) -> Result<(), AwsError> {
    let schema = conv.schema_configuration.as_ref().ok_or_else(|| {
        invalid_argument("SchemaConfiguration is required when data format conversion is enabled.")
    })?;
    let de = conv
        .input_format_configuration
        .as_ref()
        .and_then(|i| i.deserializer.as_ref())
        .ok_or_else(|| {
            invalid_argument(
                "InputFormatConfiguration with a Deserializer is required when data format conversion is enabled.",
            )
        })?;
    if de.openx.is_some() == de.hive.is_some() {
        return Err(invalid_argument(
            "Exactly one deserializer (OpenXJsonSerDe or HiveJsonSerDe) must be specified.",
        ));
    }
    let ser = conv
        .output_format_configuration
        .as_ref()
        .and_then(|o| o.serializer.as_ref())
        .ok_or_else(|| {
            invalid_argument(
                "OutputFormatConfiguration with a Serializer is required when data format conversion is enabled.",
            )
        })?;
    if ser.parquet.is_some() == ser.orc.is_some() {
        return Err(invalid_argument(
            "Exactly one serializer (ParquetSerDe or OrcSerDe) must be specified.",
        ));
    }
    if ser.orc.is_some() {
        return Err(invalid_argument(
            "OrcSerDe is not supported by this Tributary version; use ParquetSerDe.",
        ));
    }
    if c.compression_format.as_deref().unwrap_or("UNCOMPRESSED") != "UNCOMPRESSED" {
        return Err(invalid_argument(
            "CompressionFormat must be UNCOMPRESSED when data format conversion is enabled; the serializer compresses the data.",
        ));
    }
    if c.buffering_hints
        .as_ref()
        .and_then(|h| h.size_in_mbs)
        .is_some_and(|mb| mb < 64)
    {
        return Err(invalid_argument(
            "BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled.",
        ));
    }
    let database = schema.database_name.clone().unwrap_or_default();
    let table = schema.table_name.clone().unwrap_or_default();
    if database.is_empty() || table.is_empty() {
        return Err(invalid_argument(
            "SchemaConfiguration requires DatabaseName and TableName.",
        ));
    }
    convert::load_table(catalog, &database, &table).map_err(invalid_argument)?;
    Ok(())
}

/// `S3BackupMode: Enabled` needs an `S3BackupConfiguration`, whose prefixes follow the usual
/// rules.
fn backup_rules(mode: Option<&str>, config: Option<&S3Destination>) -> Result<(), AwsError> {
    if mode != Some("Enabled") {
        return Ok(());
    }
    let Some(b) = config else {
        return Err(invalid_argument(
            "S3BackupConfiguration is required when S3BackupMode is Enabled.",
        ));
    };
    prefixes(b.prefix.as_deref(), b.error_output_prefix.as_deref(), false)
}

/// Service rules of an HTTP endpoint configuration.
pub fn http_rules(c: &HttpDestination) -> Result<(), AwsError> {
    processing(&c.processing_configuration)?;
    if let Some(s) = &c.s3_configuration {
        prefixes(s.prefix.as_deref(), s.error_output_prefix.as_deref(), false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_expressions_need_an_error_prefix_with_the_error_type() {
        assert!(prefixes(Some("a/"), None, false).is_ok());
        assert!(prefixes(Some("y=!{timestamp:yyyy}/"), None, false).is_err());
        assert!(prefixes(Some("y=!{timestamp:yyyy}/"), Some("errors/"), false).is_ok());
        assert!(prefixes(Some("a/"), Some("e/!{timestamp:yyyy}/"), false).is_err());
        assert!(prefixes(Some("a/"), Some("!{firehose:error-output-type}/"), false).is_ok());
        assert!(prefixes(Some("!{firehose:error-output-type}/"), Some("e/"), false).is_err());
        let keyed = Some("c=!{partitionKeyFromQuery:c}/");
        assert!(prefixes(keyed, Some("e/"), false).is_err());
        assert!(prefixes(keyed, Some("e/"), true).is_ok());
        assert!(prefixes(keyed, None, true).is_err());
    }

    #[test]
    fn bucket_arns_and_extensions_follow_the_model_patterns() {
        assert!(is_bucket_arn("arn:aws:s3:::my-bucket.1"));
        assert!(!is_bucket_arn("arn:aws:s3:::"));
        assert!(!is_bucket_arn("my-bucket"));
        assert!(is_file_extension(".json.gz"));
        assert!(!is_file_extension("json"));
        assert!(!is_file_extension(".JSON"));
    }
}
