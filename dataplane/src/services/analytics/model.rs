//! Request and response envelopes of the Kinesis Analytics API (`KinesisAnalytics_20150814`).
//! Configuration members (`Input`, `Output`, `SourceSchema`...) are the engine's
//! [`crate::analytics::model`] shapes, which are AWS's.

use serde::{Deserialize, Serialize};

use crate::analytics::model::*;
use crate::protocol::Timestamp;

#[derive(Serialize, Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CreateApplicationInput {
    pub application_name: Option<String>,
    pub application_description: Option<String>,
    pub inputs: Option<Vec<Input>>,
    pub outputs: Option<Vec<Output>>,
    pub cloud_watch_logging_options: Option<Vec<CloudWatchLoggingOption>>,
    pub application_code: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApplicationSummary {
    pub application_name: String,
    #[serde(rename = "ApplicationARN")]
    pub application_arn: String,
    pub application_status: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateApplicationOutput {
    pub application_summary: ApplicationSummary,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ApplicationNameInput {
    pub application_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteApplicationInput {
    pub application_name: Option<String>,
    pub create_timestamp: Option<Timestamp>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListApplicationsInput {
    pub limit: Option<i64>,
    pub exclusive_start_application_name: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListApplicationsOutput {
    pub application_summaries: Vec<ApplicationSummary>,
    pub has_more_applications: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputProcessingConfigurationDescription {
    pub input_lambda_processor_description: Option<ResourceRole>,
}

#[derive(Serialize, Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct InputStartingPositionConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_starting_position: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputDescription {
    pub input_id: String,
    pub name_prefix: Option<String>,
    pub in_app_stream_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_processing_configuration_description: Option<InputProcessingConfigurationDescription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_streams_input_description: Option<ResourceRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_firehose_input_description: Option<ResourceRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<SourceSchema>,
    pub input_parallelism: InputParallelism,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_starting_position_configuration: Option<InputStartingPositionConfiguration>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputDescription {
    pub output_id: String,
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_streams_output_description: Option<ResourceRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_firehose_output_description: Option<ResourceRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda_output_description: Option<ResourceRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_schema: Option<DestinationSchema>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReferenceDataSourceDescription {
    pub reference_id: String,
    pub table_name: Option<String>,
    #[serde(rename = "S3ReferenceDataSourceDescription")]
    pub s3: Option<S3ReferenceDataSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_schema: Option<SourceSchema>,
}

#[derive(Serialize)]
pub struct CloudWatchLoggingOptionDescription {
    #[serde(rename = "CloudWatchLoggingOptionId")]
    pub id: String,
    #[serde(rename = "LogStreamARN")]
    pub log_stream_arn: Option<String>,
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApplicationDetail {
    pub application_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_description: Option<String>,
    #[serde(rename = "ApplicationARN")]
    pub application_arn: String,
    pub application_status: &'static str,
    pub create_timestamp: Timestamp,
    pub last_update_timestamp: Timestamp,
    pub input_descriptions: Vec<InputDescription>,
    pub output_descriptions: Vec<OutputDescription>,
    pub reference_data_source_descriptions: Vec<ReferenceDataSourceDescription>,
    pub cloud_watch_logging_option_descriptions: Vec<CloudWatchLoggingOptionDescription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_code: Option<String>,
    pub application_version_id: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeApplicationOutput {
    pub application_detail: ApplicationDetail,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct InputConfiguration {
    pub id: Option<String>,
    pub input_starting_position_configuration: Option<InputStartingPositionConfiguration>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StartApplicationInput {
    pub application_name: Option<String>,
    pub input_configurations: Option<Vec<InputConfiguration>>,
}

/// `{ResourceARNUpdate, RoleARNUpdate}` (stream, Firehose, Lambda updates).
#[derive(Deserialize, Default, Clone)]
pub struct ResourceRoleUpdate {
    #[serde(rename = "ResourceARNUpdate")]
    pub resource_arn_update: Option<String>,
    #[serde(rename = "RoleARNUpdate")]
    pub role_arn_update: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct InputProcessingConfigurationUpdate {
    pub input_lambda_processor_update: Option<ResourceRoleUpdate>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct InputSchemaUpdate {
    pub record_format_update: Option<RecordFormat>,
    pub record_encoding_update: Option<String>,
    pub record_column_updates: Option<Vec<RecordColumn>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct InputParallelismUpdate {
    pub count_update: Option<i64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct InputUpdate {
    pub input_id: Option<String>,
    pub name_prefix_update: Option<String>,
    pub input_processing_configuration_update: Option<InputProcessingConfigurationUpdate>,
    pub kinesis_streams_input_update: Option<ResourceRoleUpdate>,
    pub kinesis_firehose_input_update: Option<ResourceRoleUpdate>,
    pub input_schema_update: Option<InputSchemaUpdate>,
    pub input_parallelism_update: Option<InputParallelismUpdate>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct OutputUpdate {
    pub output_id: Option<String>,
    pub name_update: Option<String>,
    pub kinesis_streams_output_update: Option<ResourceRoleUpdate>,
    pub kinesis_firehose_output_update: Option<ResourceRoleUpdate>,
    pub lambda_output_update: Option<ResourceRoleUpdate>,
    pub destination_schema_update: Option<DestinationSchema>,
}

#[derive(Deserialize, Default, Clone)]
pub struct S3ReferenceDataSourceUpdate {
    #[serde(rename = "BucketARNUpdate")]
    pub bucket_arn_update: Option<String>,
    #[serde(rename = "FileKeyUpdate")]
    pub file_key_update: Option<String>,
    #[serde(rename = "ReferenceRoleARNUpdate")]
    pub reference_role_arn_update: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct ReferenceDataSourceUpdate {
    pub reference_id: Option<String>,
    pub table_name_update: Option<String>,
    #[serde(rename = "S3ReferenceDataSourceUpdate")]
    pub s3_update: Option<S3ReferenceDataSourceUpdate>,
    pub reference_schema_update: Option<SourceSchema>,
}

#[derive(Deserialize, Default, Clone)]
pub struct CloudWatchLoggingOptionUpdate {
    #[serde(rename = "CloudWatchLoggingOptionId")]
    pub id: Option<String>,
    #[serde(rename = "LogStreamARNUpdate")]
    pub log_stream_arn_update: Option<String>,
    #[serde(rename = "RoleARNUpdate")]
    pub role_arn_update: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct ApplicationUpdate {
    pub input_updates: Option<Vec<InputUpdate>>,
    pub application_code_update: Option<String>,
    pub output_updates: Option<Vec<OutputUpdate>>,
    pub reference_data_source_updates: Option<Vec<ReferenceDataSourceUpdate>>,
    pub cloud_watch_logging_option_updates: Option<Vec<CloudWatchLoggingOptionUpdate>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateApplicationInput {
    pub application_name: Option<String>,
    pub current_application_version_id: Option<i64>,
    pub application_update: Option<ApplicationUpdate>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AddInputRequest {
    pub application_name: Option<String>,
    pub current_application_version_id: Option<i64>,
    pub input: Option<Input>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AddOutputRequest {
    pub application_name: Option<String>,
    pub current_application_version_id: Option<i64>,
    pub output: Option<Output>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteOutputRequest {
    pub application_name: Option<String>,
    pub current_application_version_id: Option<i64>,
    pub output_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AddReferenceRequest {
    pub application_name: Option<String>,
    pub current_application_version_id: Option<i64>,
    pub reference_data_source: Option<ReferenceDataSource>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteReferenceRequest {
    pub application_name: Option<String>,
    pub current_application_version_id: Option<i64>,
    pub reference_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AddProcessingRequest {
    pub application_name: Option<String>,
    pub current_application_version_id: Option<i64>,
    pub input_id: Option<String>,
    pub input_processing_configuration: Option<InputProcessingConfiguration>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteProcessingRequest {
    pub application_name: Option<String>,
    pub current_application_version_id: Option<i64>,
    pub input_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AddLoggingRequest {
    pub application_name: Option<String>,
    pub current_application_version_id: Option<i64>,
    pub cloud_watch_logging_option: Option<CloudWatchLoggingOption>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteLoggingRequest {
    pub application_name: Option<String>,
    pub current_application_version_id: Option<i64>,
    pub cloud_watch_logging_option_id: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct S3Configuration {
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
    #[serde(rename = "BucketARN")]
    pub bucket_arn: Option<String>,
    #[serde(rename = "FileKey")]
    pub file_key: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DiscoverInputSchemaInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
    pub input_starting_position_configuration: Option<InputStartingPositionConfiguration>,
    #[serde(rename = "S3Configuration")]
    pub s3_configuration: Option<S3Configuration>,
    pub input_processing_configuration: Option<InputProcessingConfiguration>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiscoverInputSchemaOutput {
    pub input_schema: SourceSchema,
    pub parsed_input_records: Vec<Vec<String>>,
    pub processed_input_records: Vec<String>,
    pub raw_input_records: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsOutput {
    pub tags: Vec<Tag>,
}

/// The empty `{}` most mutating operations answer.
#[derive(Serialize)]
pub struct Empty {}
