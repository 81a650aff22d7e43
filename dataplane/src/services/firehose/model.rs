//! Request and response shapes of the Firehose API (`Firehose_20150804`). Destination
//! configurations stay JSON values: they are validated through `delivery::config` and stored
//! as sent, so DescribeDeliveryStream echoes every member.

use serde::{Deserialize, Serialize};

use crate::protocol::{Blob, Timestamp};

/// Output of operations whose response is an empty structure (`{}`).
#[derive(Serialize)]
pub struct Empty {}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagOut {
    pub key: String,
    pub value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct KinesisStreamSourceConfiguration {
    #[serde(rename = "KinesisStreamARN")]
    pub kinesis_stream_arn: Option<String>,
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DirectPutSourceConfiguration {
    #[serde(rename = "ThroughputHintInMBs")]
    pub throughput_hint_in_mbs: Option<i64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionInput {
    #[serde(rename = "KeyARN")]
    pub key_arn: Option<String>,
    pub key_type: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    pub delivery_stream_name: Option<String>,
    pub delivery_stream_type: Option<String>,
    pub direct_put_source_configuration: Option<DirectPutSourceConfiguration>,
    pub kinesis_stream_source_configuration: Option<KinesisStreamSourceConfiguration>,
    pub delivery_stream_encryption_configuration_input: Option<EncryptionInput>,
    pub s3_destination_configuration: Option<serde_json::Value>,
    pub extended_s3_destination_configuration: Option<serde_json::Value>,
    pub http_endpoint_destination_configuration: Option<serde_json::Value>,
    pub redshift_destination_configuration: Option<serde_json::Value>,
    pub elasticsearch_destination_configuration: Option<serde_json::Value>,
    pub amazonopensearchservice_destination_configuration: Option<serde_json::Value>,
    pub splunk_destination_configuration: Option<serde_json::Value>,
    pub amazon_open_search_serverless_destination_configuration: Option<serde_json::Value>,
    pub snowflake_destination_configuration: Option<serde_json::Value>,
    pub iceberg_destination_configuration: Option<serde_json::Value>,
    #[serde(rename = "MSKSourceConfiguration")]
    pub msk_source_configuration: Option<serde_json::Value>,
    pub database_source_configuration: Option<serde_json::Value>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateOutput {
    #[serde(rename = "DeliveryStreamARN")]
    pub delivery_stream_arn: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteInput {
    pub delivery_stream_name: Option<String>,
    pub allow_force_delete: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInput {
    pub delivery_stream_name: Option<String>,
    pub limit: Option<i64>,
    pub exclusive_start_destination_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionOut {
    #[serde(rename = "KeyARN", skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    pub status: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KinesisSourceDescription {
    #[serde(rename = "KinesisStreamARN")]
    pub kinesis_stream_arn: String,
    #[serde(rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub delivery_start_timestamp: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SourceDescription {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_stream_source_description: Option<KinesisSourceDescription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_put_source_description: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Description {
    pub delivery_stream_name: String,
    #[serde(rename = "DeliveryStreamARN")]
    pub delivery_stream_arn: String,
    pub delivery_stream_status: String,
    pub delivery_stream_encryption_configuration: EncryptionOut,
    pub delivery_stream_type: String,
    pub version_id: String,
    pub create_timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_timestamp: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceDescription>,
    pub destinations: Vec<serde_json::Value>,
    pub has_more_destinations: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOutput {
    pub delivery_stream_description: Description,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    pub limit: Option<i64>,
    pub delivery_stream_type: Option<String>,
    pub exclusive_start_delivery_stream_name: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOutput {
    pub delivery_stream_names: Vec<String>,
    pub has_more_delivery_streams: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateDestinationInput {
    pub delivery_stream_name: Option<String>,
    pub current_delivery_stream_version_id: Option<String>,
    pub destination_id: Option<String>,
    pub s3_destination_update: Option<serde_json::Value>,
    pub extended_s3_destination_update: Option<serde_json::Value>,
    pub http_endpoint_destination_update: Option<serde_json::Value>,
    pub redshift_destination_update: Option<serde_json::Value>,
    pub elasticsearch_destination_update: Option<serde_json::Value>,
    pub amazonopensearchservice_destination_update: Option<serde_json::Value>,
    pub splunk_destination_update: Option<serde_json::Value>,
    pub amazon_open_search_serverless_destination_update: Option<serde_json::Value>,
    pub snowflake_destination_update: Option<serde_json::Value>,
    pub iceberg_destination_update: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RecordIn {
    pub data: Option<Blob>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    pub delivery_stream_name: Option<String>,
    pub record: Option<RecordIn>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    pub record_id: String,
    pub encrypted: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchInput {
    pub delivery_stream_name: Option<String>,
    pub records: Option<Vec<RecordIn>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchEntryOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchOutput {
    pub failed_put_count: i64,
    pub encrypted: bool,
    pub request_responses: Vec<BatchEntryOut>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TagInput {
    pub delivery_stream_name: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UntagInput {
    pub delivery_stream_name: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsInput {
    pub delivery_stream_name: Option<String>,
    pub exclusive_start_tag_key: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsOutput {
    pub tags: Vec<TagOut>,
    pub has_more_tags: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StartEncryptionInput {
    pub delivery_stream_name: Option<String>,
    pub delivery_stream_encryption_configuration_input: Option<EncryptionInput>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StopEncryptionInput {
    pub delivery_stream_name: Option<String>,
}
