//! The `AnalyticsApp` custom resource: a Kinesis Data Analytics for SQL application (API v1).
//!
//! The spec mirrors `KinesisAnalytics_20150814.CreateApplication` with the AWS names in
//! lowerCamelCase (`ApplicationCode` becomes `applicationCode`, `ResourceARN` becomes
//! `resourceARN`, `JSONMappingParameters` becomes `jsonMappingParameters`). Inputs and outputs
//! may name a `Stream` or `DeliveryStream` resource instead of an ARN (a Tributary extension).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::consumer::StreamRef;
use crate::status::Condition;
use crate::stream::DeletionPolicy;

/// A streaming SQL application: reads one input stream into an in-application stream, runs
/// `applicationCode` (pumps, windows, RANDOM_CUT_FOREST...) and writes in-application streams
/// to outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::CustomResource, kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    kube(
        group = "tributary.dev",
        version = "v1alpha1",
        kind = "AnalyticsApp",
        namespaced,
        status = "AnalyticsAppStatus",
        shortname = "kaa",
        category = "tributary",
        doc = "A Kinesis Data Analytics SQL application run by Tributary.",
        printcolumn(
            name = "App",
            type_ = "string",
            json_path = ".status.applicationStatus"
        ),
        printcolumn(
            name = "Ready",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].status"
        ),
        printcolumn(
            name = "Status",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
        ),
        printcolumn(
            name = "Age",
            type_ = "date",
            json_path = ".metadata.creationTimestamp"
        )
    )
)]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new(
            "has(self.applicationName) == has(oldSelf.applicationName) && (!has(self.applicationName) || self.applicationName == oldSelf.applicationName)"
        )
        .message("applicationName is immutable")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalyticsAppSpec {
    /// Name of the application in the Analytics API. Defaults to `metadata.name`.
    /// Must match `[a-zA-Z0-9_.-]{1,128}`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 128), pattern(r"^[a-zA-Z0-9_.-]+$"))
    )]
    pub application_name: Option<String>,

    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 1024)))]
    pub application_description: Option<String>,

    /// The SQL: `CREATE OR REPLACE STREAM`, `CREATE OR REPLACE PUMP ... AS INSERT INTO ...
    /// SELECT STREAM ...` statements (at most 102400 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 102400)))]
    pub application_code: Option<String>,

    /// The streaming source (Kinesis Data Analytics allows one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(length(max = 1)))]
    pub inputs: Vec<Input>,

    /// Destinations of in-application streams (at most 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(length(max = 3)))]
    pub outputs: Vec<Output>,

    /// Reference tables loaded from an object store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(length(max = 1)))]
    pub reference_data_sources: Vec<ReferenceDataSource>,

    /// Tags of the application (at most 50).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        x_kube(validation = Rule::new("self.size() <= 50").message("at most 50 tags"))
    )]
    pub tags: BTreeMap<String, String>,

    /// `Delete` removes the application when the resource is deleted; `Retain` keeps it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl AnalyticsAppSpec {
    /// The application name in the Analytics API for a resource called `resource_name`.
    pub fn effective_name<'a>(&'a self, resource_name: &'a str) -> &'a str {
        self.application_name.as_deref().unwrap_or(resource_name)
    }
}

/// A streaming source, mapped into in-application streams `<namePrefix>_001`...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new("has(self.kinesisStreamsInput) != has(self.kinesisFirehoseInput)")
            .message("set exactly one of kinesisStreamsInput and kinesisFirehoseInput")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    /// Prefix of the in-application stream names, for example `SOURCE_SQL_STREAM`.
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 32)))]
    pub name_prefix: String,
    /// Read from a Kinesis stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_streams_input: Option<StreamSource>,
    /// Read from a delivery stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_firehose_input: Option<StreamSource>,
    /// Number of in-application streams to create (1 to 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_parallelism: Option<InputParallelism>,
    /// How records map to columns.
    pub input_schema: SourceSchema,
    /// Where reading starts when the application starts: `NOW`, `TRIM_HORIZON` or
    /// `LAST_STOPPED_POINT` (StartApplication's `InputStartingPositionConfiguration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "kube",
        schemars(pattern(r"^(NOW|TRIM_HORIZON|LAST_STOPPED_POINT)$"))
    )]
    pub input_starting_position: Option<String>,
}

/// A stream or delivery stream, by resource reference or ARN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new("has(self.resourceRef) != has(self.resourceARN)")
            .message("set exactly one of resourceRef and resourceARN")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamSource {
    /// A `Stream` (or, for Firehose inputs and outputs, `DeliveryStream`) resource in the same
    /// namespace (Tributary extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_ref: Option<StreamRef>,
    /// ARN of the stream or delivery stream.
    #[serde(
        rename = "resourceARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_arn: Option<String>,
    /// IAM role the application would assume; recorded, not enforced.
    #[serde(rename = "roleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// Number of in-application streams an input maps to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputParallelism {
    /// 1 to 64.
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 64)))]
    pub count: i32,
}

/// Schema of a source: record format, encoding and columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceSchema {
    /// JSON or CSV, and how to find rows in it.
    pub record_format: RecordFormat,
    /// Only `UTF-8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(r"^UTF-8$")))]
    pub record_encoding: Option<String>,
    /// The columns (1 to 1000).
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 1000)))]
    pub record_columns: Vec<RecordColumn>,
}

/// Format of source records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordFormat {
    /// `JSON` or `CSV`.
    #[cfg_attr(feature = "kube", schemars(pattern(r"^(JSON|CSV)$")))]
    pub record_format_type: String,
    /// Where rows and columns are in a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_parameters: Option<MappingParameters>,
}

/// Row mapping of JSON or CSV records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingParameters {
    /// JSON records: the JSONPath of a row, usually `$`.
    #[serde(
        rename = "jsonMappingParameters",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub json_mapping_parameters: Option<JsonMappingParameters>,
    /// CSV records: the delimiters.
    #[serde(
        rename = "csvMappingParameters",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub csv_mapping_parameters: Option<CsvMappingParameters>,
}

/// JSON row mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsonMappingParameters {
    /// JSONPath of a row, for example `$`.
    pub record_row_path: String,
}

/// CSV row mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CsvMappingParameters {
    /// Row delimiter, for example `"\n"`.
    pub record_row_delimiter: String,
    /// Column delimiter, for example `","`.
    pub record_column_delimiter: String,
}

/// One column of an in-application stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordColumn {
    /// Column name.
    pub name: String,
    /// JSONPath (JSON) or position (CSV) of the value, for example `$.ticker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
    /// SQL type, for example `VARCHAR(4)` or `DOUBLE`.
    pub sql_type: String,
}

/// A destination of an in-application stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new("has(self.kinesisStreamsOutput) != has(self.kinesisFirehoseOutput)")
            .message("set exactly one of kinesisStreamsOutput and kinesisFirehoseOutput")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Output {
    /// Name of the in-application stream, for example `DESTINATION_SQL_STREAM`.
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 32)))]
    pub name: String,
    /// Write to a Kinesis stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_streams_output: Option<StreamSource>,
    /// Write to a delivery stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_firehose_output: Option<StreamSource>,
    /// Format of the written records.
    pub destination_schema: DestinationSchema,
}

/// Format of output records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationSchema {
    /// `JSON` or `CSV`.
    #[cfg_attr(feature = "kube", schemars(pattern(r"^(JSON|CSV)$")))]
    pub record_format_type: String,
}

/// A reference table loaded from an object in an S3-compatible store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceDataSource {
    /// Name of the in-application table.
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 32)))]
    pub table_name: String,
    /// The object holding the table.
    pub s3_reference_data_source: S3ReferenceDataSource,
    /// How records map to columns.
    pub reference_schema: SourceSchema,
}

/// Location of a reference table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3ReferenceDataSource {
    /// The bucket, as `arn:aws:s3:::BUCKET`.
    #[serde(rename = "bucketARN")]
    pub bucket_arn: String,
    /// Key of the object.
    pub file_key: String,
    /// IAM role the application would assume; recorded, not enforced.
    #[serde(
        rename = "referenceRoleARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reference_role_arn: Option<String>,
}

/// Observed state of an analytics application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "kube", schemars(transform = crate::schema::default_status))]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsAppStatus {
    /// The `metadata.generation` the status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling` and `Stalled` (kstatus).
    #[serde(default)]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::status::conditions_schema")
    )]
    pub conditions: Vec<Condition>,
    /// The application's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_arn: Option<String>,
    /// DELETING, STARTING, STOPPING, READY, RUNNING or UPDATING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_status: Option<String>,
    /// Version of the application configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_version_id: Option<i64>,
    /// Analytics API endpoint of the application's pod
    /// (`http://<name>-analytics.<namespace>.svc:4567`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}
