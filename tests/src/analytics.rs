//! Kinesis Data Analytics pieces the tests share, through `aws-sdk-kinesisanalytics`: the
//! client, JSON source schemas, stream inputs and outputs, and StartApplication.

use crate::stream_arn;
use aws_sdk_kinesisanalytics as kda;
use kda::operation::discover_input_schema::DiscoverInputSchemaOutput;
use kda::types::{
    DestinationSchema, Input, InputConfiguration, InputStartingPosition,
    InputStartingPositionConfiguration, JsonMappingParameters, KinesisStreamsInput,
    KinesisStreamsOutput, MappingParameters, Output, RecordColumn, RecordFormat, RecordFormatType,
    SourceSchema,
};

/// The IAM role the tests name wherever Kinesis Data Analytics asks for one.
pub const KDA_ROLE: &str = "arn:aws:iam::000000000000:role/kda";

/// An `aws-sdk-kinesisanalytics` client for a local server (see [`crate::local_config!`]).
pub fn analytics_client(endpoint: &str) -> kda::Client {
    kda::Client::from_conf(crate::local_config!(kda, endpoint).build())
}

/// A JSON source schema (UTF-8, one row a record) mapping each `(name, SQL type)` column from
/// the top-level field of the same name.
pub fn json_schema(columns: &[(&str, &str)]) -> SourceSchema {
    let col = |name: &str, ty: &str| {
        RecordColumn::builder()
            .name(name)
            .mapping(format!("$.{name}"))
            .sql_type(ty)
            .build()
            .unwrap()
    };
    SourceSchema::builder()
        .record_format(
            RecordFormat::builder()
                .record_format_type(RecordFormatType::Json)
                .mapping_parameters(
                    MappingParameters::builder()
                        .json_mapping_parameters(
                            JsonMappingParameters::builder()
                                .record_row_path("$")
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .record_encoding("UTF-8")
        .set_record_columns(Some(columns.iter().map(|(n, t)| col(n, t)).collect()))
        .build()
        .unwrap()
}

/// An application input reading Kinesis stream `stream` with `schema`, as the in-application
/// stream `SOURCE_SQL_STREAM_001`.
pub fn stream_input(stream: &str, schema: SourceSchema) -> Input {
    Input::builder()
        .name_prefix("SOURCE_SQL_STREAM")
        .kinesis_streams_input(
            KinesisStreamsInput::builder()
                .resource_arn(stream_arn(stream))
                .role_arn(KDA_ROLE)
                .build()
                .unwrap(),
        )
        .input_schema(schema)
        .build()
        .unwrap()
}

/// An application output writing the in-application stream `in_app` to Kinesis stream
/// `stream` in `format`.
pub fn stream_output(in_app: &str, stream: &str, format: RecordFormatType) -> Output {
    Output::builder()
        .name(in_app)
        .kinesis_streams_output(
            KinesisStreamsOutput::builder()
                .resource_arn(stream_arn(stream))
                .role_arn(KDA_ROLE)
                .build()
                .unwrap(),
        )
        .destination_schema(
            DestinationSchema::builder()
                .record_format_type(format)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// StartApplication for `name`, its input `1.1` starting at `position`.
pub async fn start_application(a: &kda::Client, name: &str, position: InputStartingPosition) {
    a.start_application()
        .application_name(name)
        .input_configurations(
            InputConfiguration::builder()
                .id("1.1")
                .input_starting_position_configuration(
                    InputStartingPositionConfiguration::builder()
                        .input_starting_position(position)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("StartApplication");
}

/// DiscoverInputSchema of the stream or delivery stream `resource_arn`, sampled from
/// TRIM_HORIZON.
pub async fn discover_input_schema(
    a: &kda::Client,
    resource_arn: &str,
) -> DiscoverInputSchemaOutput {
    a.discover_input_schema()
        .resource_arn(resource_arn)
        .role_arn(KDA_ROLE)
        .input_starting_position_configuration(
            InputStartingPositionConfiguration::builder()
                .input_starting_position(InputStartingPosition::TrimHorizon)
                .build(),
        )
        .send()
        .await
        .expect("DiscoverInputSchema")
}
