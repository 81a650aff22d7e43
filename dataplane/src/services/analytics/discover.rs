//! DiscoverInputSchema: samples records of a stream and infers an input schema with the SQL
//! engine's discovery (`tributary_sql::format::discover`), returning the records raw and parsed.

use tributary_sql::format::{self, RecordFormat as EngineFormat};

use super::checks;
use super::model::*;
use super::AnalyticsService;
use crate::analytics::compile::stream_name_of;
use crate::analytics::errors;
use crate::analytics::model::*;
use crate::protocol::AwsError;
use crate::services::validate::Validator;

/// Records sampled, in all (KDA samples about 100).
const SAMPLE: usize = 100;

/// The engine's schema in the API's shape.
pub fn source_schema(s: &format::InputSchema) -> SourceSchema {
    let (kind, params) = match &s.format {
        EngineFormat::Json { row_path } => (
            "JSON",
            MappingParameters {
                json: Some(JsonMappingParameters {
                    record_row_path: Some(row_path.clone()),
                }),
                csv: None,
            },
        ),
        EngineFormat::Csv {
            column_delimiter,
            row_delimiter,
        } => (
            "CSV",
            MappingParameters {
                json: None,
                csv: Some(CsvMappingParameters {
                    record_row_delimiter: Some(row_delimiter.clone()),
                    record_column_delimiter: Some(column_delimiter.clone()),
                }),
            },
        ),
    };
    SourceSchema {
        record_format: Some(RecordFormat {
            record_format_type: Some(kind.into()),
            mapping_parameters: Some(params),
        }),
        record_encoding: Some("UTF-8".into()),
        record_columns: Some(
            s.columns
                .iter()
                .map(|c| RecordColumn {
                    name: Some(c.name.clone()),
                    mapping: c.mapping.clone(),
                    sql_type: Some(c.sql_type.to_string()),
                })
                .collect(),
        ),
    }
}

pub async fn discover(
    a: &AnalyticsService,
    i: DiscoverInputSchemaInput,
) -> Result<DiscoverInputSchemaOutput, AwsError> {
    let mut v = Validator::new();
    v.string(
        "resourceARN",
        i.resource_arn.as_deref(),
        Some(checks::RESOURCE_ARN),
        1,
        2048,
    );
    v.string(
        "roleARN",
        i.role_arn.as_deref(),
        Some(checks::ROLE_ARN),
        1,
        2048,
    );
    if let Some(p) = &i.input_starting_position_configuration {
        v.enumeration(
            "inputStartingPositionConfiguration.inputStartingPosition",
            p.input_starting_position.as_deref(),
            &["NOW", "TRIM_HORIZON", "LAST_STOPPED_POINT"],
        );
    }
    v.finish()?;
    if i.s3_configuration.is_some() {
        return Err(AwsError::new(
            errors::UNSUPPORTED_OPERATION,
            "Discovering a schema from an S3 object is not supported by this server yet; sample a stream with ResourceARN.",
        ));
    }
    if i.input_processing_configuration.is_some() {
        return Err(AwsError::new(
            errors::UNSUPPORTED_OPERATION,
            "InputLambdaProcessor is not supported by this server: Tributary cannot invoke AWS Lambda functions.",
        ));
    }
    let Some(arn) = i.resource_arn else {
        return Err(errors::invalid(
            "Either ResourceARN or S3Configuration must be provided.",
        ));
    };
    if let Some(remote) = stream_name_of(&arn).and_then(|n| a.engine.streams.remote.get(n)) {
        return Err(AwsError::new(
            errors::UNSUPPORTED_OPERATION,
            format!(
                "Stream {} is served by {} (--stream-endpoint); this server samples only its own streams. Call DiscoverInputSchema on that endpoint.",
                remote.name,
                remote.client.endpoint()
            ),
        ));
    }
    let stream = stream_name_of(&arn)
        .and_then(|n| a.engine.streams.find(n))
        .ok_or_else(|| {
            AwsError::new(
                errors::RESOURCE_NOT_FOUND,
                format!("Stream {arn} is not found."),
            )
        })?;
    let newest = matches!(
        i.input_starting_position_configuration
            .and_then(|p| p.input_starting_position)
            .as_deref(),
        Some("NOW") | Some("LAST_STOPPED_POINT")
    );
    let shards = stream.all_shards();
    let per_shard = SAMPLE.div_ceil(shards.len().max(1));
    let mut raw: Vec<bytes::Bytes> = Vec::new();
    for shard in shards {
        let from = if newest {
            shard.log.end_offset().saturating_sub(per_shard as u64)
        } else {
            shard.log.start_offset()
        };
        let log = shard.log.clone();
        let batch = tokio::task::spawn_blocking(move || log.read(from, per_shard, 1024 * 1024))
            .await
            .map_err(|_| AwsError::internal(""))?
            .map_err(crate::streams::storage_error)?;
        raw.extend(batch.records.into_iter().map(|r| r.data));
    }
    let raw_text: Vec<String> = raw
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect();
    let samples: Vec<&[u8]> = raw.iter().map(|r| r.as_ref()).collect();
    let schema = format::discover(&samples).map_err(|e| {
        let message = match e {
            format::DiscoveryError::NoRecords => {
                "No data was found in the stream to discover a schema from.".to_string()
            }
            other => other.to_string(),
        };
        AwsError::new(errors::UNABLE_TO_DETECT_SCHEMA, message)
    })?;
    let width = schema.columns.len();
    let parsed = raw
        .iter()
        .filter_map(|r| schema.map_record(r, 0).ok())
        .flatten()
        .map(|row| row.iter().take(width).map(|v| v.to_text()).collect())
        .collect();
    Ok(DiscoverInputSchemaOutput {
        input_schema: source_schema(&schema),
        parsed_input_records: parsed,
        processed_input_records: raw_text.clone(),
        raw_input_records: raw_text,
    })
}
