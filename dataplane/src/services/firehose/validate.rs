//! Checks of delivery stream names, tags and destination configurations, in two passes as
//! Firehose makes them: the model's constraints (ValidationException, all at once), then the
//! service's rules (InvalidArgumentException, first failure).

use super::errors::invalid_argument;
use super::model::Tag;
use crate::delivery::compress;
use crate::delivery::config::{HttpDestination, ProcessingConfiguration, S3Destination};
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

/// Processors this engine runs. Others are refused rather than silently skipped.
fn processing(p: &Option<ProcessingConfiguration>) -> Result<(), AwsError> {
    let Some(p) = p else { return Ok(()) };
    for proc in p.processors.iter().flatten() {
        match proc.kind.as_deref() {
            Some("AppendDelimiterToRecord") => {}
            Some("Lambda") => {
                let has_arn = proc.parameters.iter().flatten().any(|p| {
                    p.parameter_name.as_deref() == Some("LambdaArn")
                        && p.parameter_value.as_deref().is_some_and(|v| !v.is_empty())
                });
                if !has_arn {
                    return Err(invalid_argument(
                        "The Lambda processor requires the LambdaArn parameter.",
                    ));
                }
            }
            Some("MetadataExtraction") => {
                let param = |name: &str| {
                    proc.parameters
                        .iter()
                        .flatten()
                        .find(|p| p.parameter_name.as_deref() == Some(name))
                        .and_then(|p| p.parameter_value.clone())
                };
                let Some(query) = param("MetadataExtractionQuery") else {
                    return Err(invalid_argument(
                        "The MetadataExtraction processor requires the MetadataExtractionQuery parameter.",
                    ));
                };
                if param("JsonParsingEngine").is_some_and(|e| e != "JQ-1.6") {
                    return Err(invalid_argument(
                        "JsonParsingEngine must be JQ-1.6.",
                    ));
                }
                crate::delivery::partition::check(&query).map_err(invalid_argument)?;
            }
            Some(other) => {
                return Err(invalid_argument(format!(
                    "Processor type {other} is not supported by this Tributary version; supported: Lambda, MetadataExtraction and AppendDelimiterToRecord."
                )))
            }
            None => return Err(invalid_argument("Processor type must not be null.")),
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

/// Service rules of an S3 configuration.
pub fn s3_rules(c: &S3Destination) -> Result<(), AwsError> {
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
    let conversion = c
        .data_format_conversion_configuration
        .as_ref()
        .and_then(|d| d.get("Enabled"))
        .and_then(|e| e.as_bool())
        .unwrap_or(false);
    if conversion {
        return Err(invalid_argument(
            "Record format conversion is not supported by this Tributary version.",
        ));
    }
    backup_rules(
        c.s3_backup_mode.as_deref(),
        c.s3_backup_configuration.as_deref(),
    )
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
