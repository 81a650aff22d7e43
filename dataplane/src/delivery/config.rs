//! Typed views of a delivery stream's destination configuration.
//!
//! The configuration is kept as the JSON the client sent (so DescribeDeliveryStream returns
//! every member, including ones this engine only records), and read through these shapes by
//! validation and by the worker. Member names are Firehose's.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BufferingHints {
    #[serde(rename = "SizeInMBs")]
    pub size_in_mbs: Option<i64>,
    pub interval_in_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessorParameter {
    pub parameter_name: Option<String>,
    pub parameter_value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Processor {
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    pub parameters: Option<Vec<ProcessorParameter>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessingConfiguration {
    pub enabled: Option<bool>,
    pub processors: Option<Vec<Processor>>,
}

impl Processor {
    /// The value of the parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        self.parameters
            .iter()
            .flatten()
            .find(|x| x.parameter_name.as_deref() == Some(name))
            .and_then(|x| x.parameter_value.clone())
    }
}

impl ProcessingConfiguration {
    fn active(&self) -> impl Iterator<Item = &Processor> {
        self.processors
            .iter()
            .flatten()
            .filter(move |_| self.enabled.unwrap_or(false))
    }

    /// The active processors of type `kind`.
    pub fn processors_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Processor> {
        self.active()
            .filter(move |p| p.kind.as_deref() == Some(kind))
    }

    /// The `Lambda` processor's function and retry count (`NumberOfRetries`, default 3).
    pub fn lambda(&self) -> Option<(String, u32)> {
        let p = self
            .active()
            .find(|p| p.kind.as_deref() == Some("Lambda"))?;
        let param = |name: &str| {
            p.parameters
                .iter()
                .flatten()
                .find(|x| x.parameter_name.as_deref() == Some(name))
                .and_then(|x| x.parameter_value.clone())
        };
        let arn = param("LambdaArn")?;
        let retries = param("NumberOfRetries")
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        Some((arn, retries))
    }

    /// The jq query of a `MetadataExtraction` processor.
    pub fn metadata_query(&self) -> Option<String> {
        self.active()
            .filter(|p| p.kind.as_deref() == Some("MetadataExtraction"))
            .flat_map(|p| p.parameters.iter().flatten())
            .find(|x| x.parameter_name.as_deref() == Some("MetadataExtractionQuery"))
            .and_then(|x| x.parameter_value.clone())
    }

    /// Whether an `AppendDelimiterToRecord` processor adds `\n` after every record.
    pub fn appends_newline(&self) -> bool {
        self.active()
            .any(|p| p.kind.as_deref() == Some("AppendDelimiterToRecord"))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetryOptions {
    pub duration_in_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DynamicPartitioning {
    pub enabled: Option<bool>,
    pub retry_options: Option<RetryOptions>,
}

/// `ExtendedS3DestinationConfiguration` and `S3DestinationConfiguration` (the latter is the
/// subset without processing, partitioning and backup).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3Destination {
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
    #[serde(rename = "BucketARN")]
    pub bucket_arn: Option<String>,
    pub prefix: Option<String>,
    pub error_output_prefix: Option<String>,
    pub buffering_hints: Option<BufferingHints>,
    pub compression_format: Option<String>,
    pub file_extension: Option<String>,
    pub custom_time_zone: Option<String>,
    pub processing_configuration: Option<ProcessingConfiguration>,
    pub dynamic_partitioning_configuration: Option<DynamicPartitioning>,
    pub s3_backup_mode: Option<String>,
    /// Where source records are backed up with `S3BackupMode: Enabled`.
    pub s3_backup_configuration: Option<Box<S3Destination>>,
    pub data_format_conversion_configuration: Option<serde_json::Value>,
}

impl S3Destination {
    /// The source-record backup configuration, when `S3BackupMode` is `Enabled`.
    pub fn source_backup(&self) -> Option<&S3Destination> {
        (self.s3_backup_mode.as_deref() == Some("Enabled"))
            .then_some(self.s3_backup_configuration.as_deref())
            .flatten()
    }

    pub fn dynamic_partitioning(&self) -> bool {
        self.dynamic_partitioning_configuration
            .as_ref()
            .is_some_and(|d| d.enabled.unwrap_or(false))
    }

    /// The bucket name of `arn:aws:s3:::bucket`.
    pub fn bucket(&self) -> &str {
        bucket_of(self.bucket_arn.as_deref().unwrap_or_default())
    }
}

pub fn bucket_of(arn: &str) -> &str {
    arn.rsplit(":::").next().unwrap_or(arn)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpEndpointConfiguration {
    pub url: Option<String>,
    pub name: Option<String>,
    pub access_key: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CommonAttribute {
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestConfiguration {
    pub content_encoding: Option<String>,
    pub common_attributes: Option<Vec<CommonAttribute>>,
}

/// `HttpEndpointDestinationConfiguration`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpDestination {
    pub endpoint_configuration: Option<HttpEndpointConfiguration>,
    pub buffering_hints: Option<BufferingHints>,
    pub request_configuration: Option<RequestConfiguration>,
    pub retry_options: Option<RetryOptions>,
    pub processing_configuration: Option<ProcessingConfiguration>,
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
    pub s3_backup_mode: Option<String>,
    pub s3_configuration: Option<S3Destination>,
}

/// Firehose's defaults: S3 flushes at 5 MiB or 300 s, HTTP endpoints at 5 MiB or 300 s, and
/// HTTP deliveries are retried for 300 s.
pub const DEFAULT_SIZE_MB: i64 = 5;
pub const DEFAULT_INTERVAL_S: i64 = 300;
pub const DEFAULT_HTTP_RETRY_S: i64 = 300;

impl BufferingHints {
    /// (bytes, milliseconds) with defaults filled in.
    pub fn resolved(hints: Option<&BufferingHints>) -> (usize, i64) {
        let h = hints.cloned().unwrap_or_default();
        let mb = h.size_in_mbs.unwrap_or(DEFAULT_SIZE_MB).max(1) as usize;
        let s = h.interval_in_seconds.unwrap_or(DEFAULT_INTERVAL_S).max(0);
        (mb * 1024 * 1024, s * 1000)
    }
}
