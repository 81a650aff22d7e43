//! The `DeliveryStream` custom resource: an Amazon Data Firehose delivery stream.
//!
//! The spec mirrors Firehose's `CreateDeliveryStream` request, field for field, with the AWS
//! names in lowerCamelCase (`BucketARN` becomes `bucketARN`, `SizeInMBs` becomes `sizeInMBs`).
//! Tributary extensions (a `Stream` reference instead of an ARN, an S3-compatible endpoint and
//! credentials from a Secret) are marked as such.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::consumer::StreamRef;
use crate::status::Condition;
use crate::stream::DeletionPolicy;

/// A Firehose delivery stream: reads records from a `Stream` (or takes direct PUTs), buffers,
/// transforms and compresses them, and writes them to exactly one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::CustomResource, kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    kube(
        group = "tributary.dev",
        version = "v1alpha1",
        kind = "DeliveryStream",
        namespaced,
        status = "DeliveryStreamStatus",
        shortname = "kds",
        category = "tributary",
        doc = "A Firehose delivery stream run by Tributary.",
        printcolumn(
            name = "Type",
            type_ = "string",
            json_path = ".spec.deliveryStreamType"
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
            "[has(self.extendedS3DestinationConfiguration), has(self.httpEndpointDestinationConfiguration), has(self.redshiftDestinationConfiguration)].filter(x, x).size() == 1"
        )
        .message("exactly one destination configuration is required"),
        validation = Rule::new(
            "(self.deliveryStreamType == 'KinesisStreamAsSource') == has(self.kinesisStreamSourceConfiguration)"
        )
        .message("kinesisStreamSourceConfiguration is required for, and only allowed with, deliveryStreamType KinesisStreamAsSource"),
        validation = Rule::new("self.deliveryStreamType == oldSelf.deliveryStreamType")
            .message("deliveryStreamType is immutable"),
        validation = Rule::new(
            "has(self.deliveryStreamName) == has(oldSelf.deliveryStreamName) && (!has(self.deliveryStreamName) || self.deliveryStreamName == oldSelf.deliveryStreamName)"
        )
        .message("deliveryStreamName is immutable")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryStreamSpec {
    /// Name of the delivery stream in the Firehose API. Defaults to `metadata.name`.
    /// Must match `[a-zA-Z0-9_.-]{1,64}`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 64), pattern(r"^[a-zA-Z0-9_.-]+$"))
    )]
    pub delivery_stream_name: Option<String>,

    /// `DirectPut` (producers call PutRecord/PutRecordBatch) or `KinesisStreamAsSource` (records
    /// are read from a stream). Immutable.
    #[serde(default)]
    pub delivery_stream_type: DeliveryStreamType,

    /// The stream to read from, for `KinesisStreamAsSource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_stream_source_configuration: Option<KinesisStreamSourceConfiguration>,

    /// Expected throughput of a `DirectPut` stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_put_source_configuration: Option<DirectPutSourceConfiguration>,

    /// Deliver to an S3-compatible object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_s3_destination_configuration: Option<ExtendedS3DestinationConfiguration>,

    /// Deliver to an HTTP endpoint speaking the Firehose HTTP endpoint protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_endpoint_destination_configuration: Option<HttpEndpointDestinationConfiguration>,

    /// Load into a PostgreSQL-compatible database with COPY semantics (the role Redshift plays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redshift_destination_configuration: Option<RedshiftDestinationConfiguration>,

    /// Tags of the delivery stream (at most 50).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        x_kube(validation = Rule::new("self.size() <= 50").message("at most 50 tags"))
    )]
    pub tags: BTreeMap<String, String>,

    /// `Delete` removes the delivery stream (and its undelivered buffer) when the resource is
    /// deleted; `Retain` keeps it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl DeliveryStreamSpec {
    /// The delivery stream name in the Firehose API for a resource called `resource_name`.
    pub fn effective_name<'a>(&'a self, resource_name: &'a str) -> &'a str {
        self.delivery_stream_name
            .as_deref()
            .unwrap_or(resource_name)
    }
}

/// Source of a delivery stream: `DirectPut` or `KinesisStreamAsSource`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub enum DeliveryStreamType {
    #[default]
    DirectPut,
    KinesisStreamAsSource,
}

/// Where a `KinesisStreamAsSource` delivery stream reads from: a `Stream` resource or an ARN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new("has(self.streamRef) != has(self.kinesisStreamARN)")
            .message("set exactly one of streamRef and kinesisStreamARN")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KinesisStreamSourceConfiguration {
    /// A `Stream` resource in the same namespace (Tributary extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_ref: Option<StreamRef>,
    /// ARN of the source stream, for a stream not managed here.
    #[serde(
        rename = "kinesisStreamARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kinesis_stream_arn: Option<String>,
    /// IAM role Firehose would assume; recorded, not enforced.
    #[serde(rename = "roleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// Throughput hint of a `DirectPut` delivery stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectPutSourceConfiguration {
    /// Expected throughput in MB/s (1 to 100).
    #[serde(rename = "throughputHintInMBs")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 100)))]
    pub throughput_hint_in_mbs: i32,
}

/// When a buffer is flushed: after `sizeInMBs` or `intervalInSeconds`, whichever comes first.
/// Set both or neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new("has(self.sizeInMBs) == has(self.intervalInSeconds)")
            .message("set both sizeInMBs and intervalInSeconds, or neither")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BufferingHints {
    /// Buffer size in MiB (1 to 128 for S3, 1 to 64 for HTTP endpoints; default 5).
    #[serde(rename = "sizeInMBs", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 128)))]
    pub size_in_mbs: Option<i32>,
    /// Buffer interval in seconds (0 to 900; default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 0, max = 900)))]
    pub interval_in_seconds: Option<i32>,
}

/// Compression of delivered objects: `UNCOMPRESSED`, `GZIP`, `ZIP`, `Snappy` or `HADOOP_SNAPPY`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub enum CompressionFormat {
    #[default]
    #[serde(rename = "UNCOMPRESSED")]
    Uncompressed,
    #[serde(rename = "GZIP")]
    Gzip,
    #[serde(rename = "ZIP")]
    Zip,
    #[serde(rename = "Snappy")]
    Snappy,
    #[serde(rename = "HADOOP_SNAPPY")]
    HadoopSnappy,
}

/// Credentials for an S3-compatible store, from a Secret in the same namespace with the keys
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (Tributary extension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// Name of the Secret.
    pub name: String,
}

/// A record transformation step, in Firehose's `ProcessingConfiguration` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessingConfiguration {
    /// Whether the processors run.
    #[serde(default)]
    pub enabled: bool,
    /// The processors, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<Processor>,
}

/// One processor: `RecordDeAggregation`, `Lambda` (an HTTP endpoint speaking the Lambda JSON
/// contract), `MetadataExtraction` (jq expressions for dynamic partitioning),
/// `AppendDelimiterToRecord`...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Processor {
    /// The processor type, as Firehose names it.
    #[serde(rename = "type")]
    #[cfg_attr(
        feature = "kube",
        schemars(pattern(
            r"^(RecordDeAggregation|Decompression|CloudWatchLogProcessing|Lambda|MetadataExtraction|AppendDelimiterToRecord)$"
        ))
    )]
    pub processor_type: String,
    /// Parameters such as `LambdaArn`, `MetadataExtractionQuery`, `Delimiter`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ProcessorParameter>,
}

/// A processor parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessorParameter {
    /// Parameter name, for example `MetadataExtractionQuery`.
    pub parameter_name: String,
    /// Parameter value (1 to 5120 characters).
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 5120)))]
    pub parameter_value: String,
}

/// Delivery to an S3-compatible object store (Firehose `ExtendedS3DestinationConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtendedS3DestinationConfiguration {
    /// The bucket, as `arn:aws:s3:::BUCKET`.
    #[serde(rename = "bucketARN")]
    #[cfg_attr(feature = "kube", schemars(pattern(r"^arn:.*:s3:::[\w\.\-]{1,255}$")))]
    pub bucket_arn: String,
    /// IAM role Firehose would assume; recorded, not enforced.
    #[serde(rename = "roleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Object key prefix; may use `!{timestamp:...}`, `!{firehose:...}` and
    /// `!{partitionKeyFromQuery:...}` expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 1024)))]
    pub prefix: Option<String>,
    /// Key prefix for records that failed processing or delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 1024)))]
    pub error_output_prefix: Option<String>,
    /// When to flush a buffer into an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    /// Compression of the objects.
    #[serde(default)]
    pub compression_format: CompressionFormat,
    /// Extension of object keys, for example `.json.gz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 128)))]
    pub file_extension: Option<String>,
    /// Time zone of the `!{timestamp:...}` prefix expressions (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 50)))]
    pub custom_time_zone: Option<String>,
    /// Record transformation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<ProcessingConfiguration>,
    /// Dynamic partitioning by `partitionKeyFromQuery` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_partitioning_configuration: Option<DynamicPartitioningConfiguration>,
    /// `Disabled` or `Enabled`: also keep the untransformed records in `s3BackupConfiguration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(r"^(Disabled|Enabled)$")))]
    pub s3_backup_mode: Option<String>,
    /// Where backups go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_backup_configuration: Option<S3DestinationConfiguration>,
    /// Endpoint of the S3-compatible store, for example `http://garage.storage.svc:3900`
    /// (Tributary extension; AWS S3 when empty).
    #[serde(
        rename = "endpointURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_url: Option<String>,
    /// Credentials for the store (Tributary extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// Convert JSON records to Apache Parquet with a Glue table's schema before they are
    /// written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_format_conversion_configuration: Option<DataFormatConversionConfiguration>,
}

/// Record format conversion (Firehose `DataFormatConversionConfiguration`): JSON records are
/// read with a JSON SerDe and written as Parquet, with the columns of a Glue table. Tributary
/// reads the table definition from a ConfigMap (`schemaConfiguration.glueCatalogConfigMapRef`)
/// instead of AWS Glue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new("(has(self.enabled) && !self.enabled) || (has(self.schemaConfiguration) && has(self.inputFormatConfiguration) && has(self.outputFormatConfiguration))")
            .message("an enabled conversion needs schemaConfiguration, inputFormatConfiguration and outputFormatConfiguration")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataFormatConversionConfiguration {
    /// Whether records are converted (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The Glue table whose columns the output has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_configuration: Option<SchemaConfiguration>,
    /// How the JSON records are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_format_configuration: Option<InputFormatConfiguration>,
    /// How the output is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format_configuration: Option<OutputFormatConfiguration>,
}

/// The Glue table of a conversion (Firehose `SchemaConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaConfiguration {
    /// Glue database.
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 1024), pattern(r"^[^/\\\s]+$"))
    )]
    pub database_name: String,
    /// Glue table.
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 1024), pattern(r"^[^/\\\s]+$"))
    )]
    pub table_name: String,
    /// Glue catalog id (the account); recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    /// Region of the catalog; recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Table version; recorded (`LATEST` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// IAM role Firehose would assume to read the table; recorded, not enforced.
    #[serde(rename = "roleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// ConfigMap in the same namespace holding the table definition, as
    /// `aws glue get-table --database-name DB --name TABLE` prints it, under the key
    /// `<databaseName>.<tableName>.json` (Tributary extension; the pod gets it as its
    /// `--glue-catalog`). Without it, the pod has no catalog and creating the delivery stream
    /// fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glue_catalog_config_map_ref: Option<ConfigMapRef>,
}

/// A ConfigMap in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapRef {
    /// Name of the ConfigMap.
    pub name: String,
}

/// How records are read (Firehose `InputFormatConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputFormatConfiguration {
    /// The JSON SerDe.
    pub deserializer: Deserializer,
}

/// Exactly one JSON SerDe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new("has(self.openXJsonSerDe) != has(self.hiveJsonSerDe)")
            .message("set exactly one of openXJsonSerDe and hiveJsonSerDe")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deserializer {
    /// The OpenX JSON SerDe.
    #[serde(
        rename = "openXJsonSerDe",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub open_x_json_ser_de: Option<OpenXJsonSerDe>,
    /// The Apache Hive JSON SerDe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hive_json_ser_de: Option<HiveJsonSerDe>,
}

/// OpenX JSON SerDe options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenXJsonSerDe {
    /// Replace dots in JSON keys with underscores (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert_dots_in_json_keys_to_underscores: Option<bool>,
    /// Match JSON keys to columns case-insensitively (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_insensitive: Option<bool>,
    /// Column name → JSON key, for keys that are not valid column names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub column_to_json_key_mappings: BTreeMap<String, String>,
}

/// Apache Hive JSON SerDe options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HiveJsonSerDe {
    /// Joda-Time patterns (and `millis`) of timestamp strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timestamp_formats: Vec<String>,
}

/// How the output is written (Firehose `OutputFormatConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputFormatConfiguration {
    /// The serializer; Tributary writes Parquet (Firehose's `orcSerDe` is not supported).
    pub serializer: Serializer,
}

/// The output SerDe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Serializer {
    /// Apache Parquet.
    pub parquet_ser_de: ParquetSerDe,
}

/// Parquet writer options (Firehose `ParquetSerDe`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParquetSerDe {
    /// Row group size in bytes (at least 64 MiB; default 256 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 67108864)))]
    pub block_size_bytes: Option<i64>,
    /// Page size in bytes (at least 64 KiB; default 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 65536)))]
    pub page_size_bytes: Option<i64>,
    /// `UNCOMPRESSED`, `GZIP` or `SNAPPY` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(r"^(UNCOMPRESSED|GZIP|SNAPPY)$")))]
    pub compression: Option<String>,
    /// Dictionary encoding (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dictionary_compression: Option<bool>,
    /// Padding for block alignment; recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 0)))]
    pub max_padding_bytes: Option<i64>,
    /// `V1` (default) or `V2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(r"^(V1|V2)$")))]
    pub writer_version: Option<String>,
}

/// A plain S3 destination (Firehose `S3DestinationConfiguration`), used for backups and for
/// staging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3DestinationConfiguration {
    /// The bucket, as `arn:aws:s3:::BUCKET`.
    #[serde(rename = "bucketARN")]
    #[cfg_attr(feature = "kube", schemars(pattern(r"^arn:.*:s3:::[\w\.\-]{1,255}$")))]
    pub bucket_arn: String,
    /// IAM role Firehose would assume; recorded, not enforced.
    #[serde(rename = "roleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Object key prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 1024)))]
    pub prefix: Option<String>,
    /// Key prefix for failed records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 1024)))]
    pub error_output_prefix: Option<String>,
    /// When to flush a buffer into an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    /// Compression of the objects.
    #[serde(default)]
    pub compression_format: CompressionFormat,
    /// Endpoint of the S3-compatible store (Tributary extension).
    #[serde(
        rename = "endpointURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_url: Option<String>,
    /// Credentials for the store (Tributary extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
}

/// Dynamic partitioning settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicPartitioningConfiguration {
    /// Whether records are partitioned by the keys the MetadataExtraction processor computes.
    #[serde(default)]
    pub enabled: bool,
    /// How long to retry a failed delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
}

/// Retry duration of failed deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryOptions {
    /// Seconds to keep retrying (0 to 7200).
    #[cfg_attr(feature = "kube", schemars(range(min = 0, max = 7200)))]
    pub duration_in_seconds: i32,
}

/// Delivery to an HTTP endpoint (Firehose `HttpEndpointDestinationConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new("!has(self.bufferingHints) || !has(self.bufferingHints.sizeInMBs) || self.bufferingHints.sizeInMBs <= 64")
            .message("HTTP endpoint buffers are at most 64 MiB")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpEndpointDestinationConfiguration {
    /// The endpoint.
    pub endpoint_configuration: HttpEndpointConfiguration,
    /// When to flush a buffer into a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    /// Request encoding and common attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_configuration: Option<HttpEndpointRequestConfiguration>,
    /// How long to retry a failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// Record transformation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<ProcessingConfiguration>,
    /// `FailedDataOnly` or `AllData`: which records also go to `s3Configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(r"^(FailedDataOnly|AllData)$")))]
    pub s3_backup_mode: Option<String>,
    /// Where failed (or all) records are backed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_configuration: Option<S3DestinationConfiguration>,
}

/// An HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new("!(has(self.accessKey) && has(self.accessKeySecretRef))")
            .message("set at most one of accessKey and accessKeySecretRef")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpEndpointConfiguration {
    /// URL of the endpoint. Firehose requires `https://`; Tributary also allows `http://`
    /// inside a cluster.
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 1000), pattern(r"^https?://"))
    )]
    pub url: String,
    /// Display name of the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sent as the `X-Amz-Firehose-Access-Key` header. Set this or `accessKeySecretRef`, not
    /// both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 4096)))]
    pub access_key: Option<String>,
    /// Secret in the same namespace holding the access key under the key `accessKey`
    /// (Tributary extension): the key reaches the data plane through its environment, never
    /// through the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_secret_ref: Option<SecretRef>,
}

/// Encoding and attributes of HTTP endpoint requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpEndpointRequestConfiguration {
    /// `NONE` or `GZIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(r"^(NONE|GZIP)$")))]
    pub content_encoding: Option<String>,
    /// Sent in the `X-Amz-Firehose-Common-Attributes` header (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(length(max = 50)))]
    pub common_attributes: Vec<HttpEndpointCommonAttribute>,
}

/// One common attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpEndpointCommonAttribute {
    /// Attribute name.
    pub attribute_name: String,
    /// Attribute value.
    pub attribute_value: String,
}

/// Load into a PostgreSQL-compatible database (Firehose `RedshiftDestinationConfiguration`):
/// records are staged in `s3Configuration`, then copied into a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedshiftDestinationConfiguration {
    /// JDBC URL of the database, for example `jdbc:postgresql://pg.db.svc:5432/analytics`.
    #[serde(rename = "clusterJDBCURL")]
    #[cfg_attr(feature = "kube", schemars(pattern(r"^jdbc:(redshift|postgresql)://")))]
    pub cluster_jdbc_url: String,
    /// The table and columns to copy into.
    pub copy_command: CopyCommand,
    /// Database user.
    pub username: String,
    /// Secret in the same namespace holding the password under the key `password`
    /// (Tributary extension; Firehose takes the password inline).
    pub password_secret_ref: SecretRef,
    /// IAM role Firehose would assume; recorded, not enforced.
    #[serde(rename = "roleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// How long to retry a failed COPY (0 to 7200 seconds, default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// Staging bucket.
    pub s3_configuration: S3DestinationConfiguration,
    /// Record transformation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<ProcessingConfiguration>,
}

/// The COPY into the destination table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CopyCommand {
    /// Target table.
    #[cfg_attr(feature = "kube", schemars(length(min = 1)))]
    pub data_table_name: String,
    /// Comma-separated column list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_table_columns: Option<String>,
    /// COPY options, for example `JSON 'auto' GZIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_options: Option<String>,
}

/// Observed state of a delivery stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "kube", schemars(transform = crate::schema::default_status))]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStreamStatus {
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
    /// The delivery stream's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_stream_arn: Option<String>,
    /// CREATING, ACTIVE, DELETING, CREATING_FAILED or DELETING_FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_stream_status: Option<String>,
    /// Version of the destination configuration (Firehose `VersionId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Firehose endpoint of the delivery stream's pod (`http://<name>-firehose.<namespace>.svc:4567`):
    /// where DirectPut producers call PutRecord and PutRecordBatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}
