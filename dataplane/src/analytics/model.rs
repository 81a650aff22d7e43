//! An application's configuration in AWS's own shapes (`KinesisAnalytics_20150814`).
//!
//! These structures are both what the API takes (CreateApplication's `Inputs`, AddApplicationOutput's
//! `Output`...) and what `application.json` persists, so a configuration is stored exactly as the
//! user gave it and described back the same way. Every member is optional here: the service
//! validates presence with AWS's messages before anything is stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A resource and the IAM role used to reach it (`KinesisStreamsInput`, `KinesisFirehoseOutput`,
/// `LambdaOutput`, `InputLambdaProcessor`...). Roles are recorded, never enforced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceRole {
    #[serde(rename = "ResourceARN", skip_serializing_if = "Option::is_none")]
    pub resource_arn: Option<String>,
    #[serde(rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputProcessingConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_lambda_processor: Option<ResourceRole>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputParallelism {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JsonMappingParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_row_path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CsvMappingParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_row_delimiter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_column_delimiter: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MappingParameters {
    #[serde(
        rename = "JSONMappingParameters",
        skip_serializing_if = "Option::is_none"
    )]
    pub json: Option<JsonMappingParameters>,
    #[serde(
        rename = "CSVMappingParameters",
        skip_serializing_if = "Option::is_none"
    )]
    pub csv: Option<CsvMappingParameters>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordFormat {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_format_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping_parameters: Option<MappingParameters>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordColumn {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql_type: Option<String>,
}

/// `SourceSchema` (an input's `InputSchema`, a reference source's `ReferenceSchema`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SourceSchema {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_format: Option<RecordFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_columns: Option<Vec<RecordColumn>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_processing_configuration: Option<InputProcessingConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_streams_input: Option<ResourceRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_firehose_input: Option<ResourceRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_parallelism: Option<InputParallelism>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<SourceSchema>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationSchema {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_format_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_streams_output: Option<ResourceRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_firehose_output: Option<ResourceRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda_output: Option<ResourceRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_schema: Option<DestinationSchema>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct S3ReferenceDataSource {
    #[serde(rename = "BucketARN", skip_serializing_if = "Option::is_none")]
    pub bucket_arn: Option<String>,
    #[serde(rename = "FileKey", skip_serializing_if = "Option::is_none")]
    pub file_key: Option<String>,
    #[serde(rename = "ReferenceRoleARN", skip_serializing_if = "Option::is_none")]
    pub reference_role_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReferenceDataSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    #[serde(
        rename = "S3ReferenceDataSource",
        skip_serializing_if = "Option::is_none"
    )]
    pub s3: Option<S3ReferenceDataSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_schema: Option<SourceSchema>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloudWatchLoggingOption {
    #[serde(rename = "LogStreamARN", skip_serializing_if = "Option::is_none")]
    pub log_stream_arn: Option<String>,
    #[serde(rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// `ApplicationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Deleting,
    Starting,
    Stopping,
    Ready,
    Running,
    Updating,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Deleting => "DELETING",
            Status::Starting => "STARTING",
            Status::Stopping => "STOPPING",
            Status::Ready => "READY",
            Status::Running => "RUNNING",
            Status::Updating => "UPDATING",
        }
    }
}

/// An input with the id DescribeApplication reports and where it starts reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredInput {
    pub id: String,
    pub input: Input,
    /// `NOW`, `TRIM_HORIZON` or `LAST_STOPPED_POINT`, from the last StartApplication.
    #[serde(default)]
    pub starting_position: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredOutput {
    pub id: String,
    pub output: Output,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReference {
    pub id: String,
    pub source: ReferenceDataSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLogging {
    pub id: String,
    pub option: CloudWatchLoggingOption,
}

/// Everything persisted about an application (`analytics/<name>/application.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationConfig {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    pub status: Status,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// `ApplicationVersionId`: 1 at creation, +1 on every configuration change.
    pub version: i64,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub inputs: Vec<StoredInput>,
    #[serde(default)]
    pub outputs: Vec<StoredOutput>,
    #[serde(default)]
    pub references: Vec<StoredReference>,
    #[serde(default)]
    pub logging: Vec<StoredLogging>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl ApplicationConfig {
    /// An id for the `n`th (1-based) item added by the change that produces the next version,
    /// in AWS's `<version>.<n>` form (`1.1` is the first input of a new application).
    pub fn next_id(&self, n: usize) -> String {
        format!("{}.{}", self.version + 1, n)
    }

    /// Id of an item created with the application itself.
    pub fn initial_id(n: usize) -> String {
        format!("1.{n}")
    }
}

/// The in-application stream names an input feeds: `<prefix>_001` ... `<prefix>_NNN`.
pub fn in_app_stream_names(input: &Input) -> Vec<String> {
    let prefix = input.name_prefix.clone().unwrap_or_default();
    let count = input
        .input_parallelism
        .as_ref()
        .and_then(|p| p.count)
        .unwrap_or(1)
        .clamp(1, 64);
    (1..=count).map(|i| format!("{prefix}_{i:03}")).collect()
}
