//! DiscoverInputSchema: samples records of a stream and infers an input schema with the SQL
//! engine's discovery (`tributary_sql::format::discover`), returning the records raw and parsed.

use tributary_sql::format::{self, RecordFormat as EngineFormat};

use super::checks;
use super::model::*;
use super::AnalyticsService;
use crate::analytics::compile::{delivery_stream_name_of, stream_name_of};
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
    if i.input_processing_configuration.is_some() {
        return Err(AwsError::new(
            errors::UNSUPPORTED_OPERATION,
            "InputLambdaProcessor is not supported by this server: Tributary cannot invoke AWS Lambda functions.",
        ));
    }
    if let Some(s3) = &i.s3_configuration {
        let mut v = Validator::new();
        v.string(
            "s3Configuration.bucketARN",
            s3.bucket_arn.as_deref(),
            Some(checks::RESOURCE_ARN),
            1,
            2048,
        );
        v.string(
            "s3Configuration.fileKey",
            s3.file_key.as_deref(),
            None,
            1,
            1024,
        );
        v.finish()?;
        let arn = s3.bucket_arn.as_deref().unwrap_or_default();
        let bucket = arn.rsplit(':').next().unwrap_or(arn);
        let key = s3.file_key.as_deref().unwrap_or_default();
        let data = a.engine.read_object(bucket, key).await.map_err(|e| {
            AwsError::new(
                errors::RESOURCE_NOT_FOUND,
                format!("Unable to read s3://{bucket}/{key}: {e}"),
            )
        })?;
        // The object's lines are its records, as for a reference data source.
        let raw: Vec<bytes::Bytes> = data
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .take(SAMPLE)
            .map(|l| bytes::Bytes::copy_from_slice(l.strip_suffix(b"\r").unwrap_or(l)))
            .collect();
        return describe(
            raw,
            "No data was found in the object to discover a schema from.",
        );
    }
    let Some(arn) = i.resource_arn else {
        return Err(errors::invalid(
            "Either ResourceARN or S3Configuration must be provided.",
        ));
    };
    let newest = matches!(
        i.input_starting_position_configuration
            .as_ref()
            .and_then(|p| p.input_starting_position.as_deref()),
        Some("NOW") | Some("LAST_STOPPED_POINT")
    );
    if let Some(remote) = stream_name_of(&arn).and_then(|n| a.engine.streams.remote.get(n)) {
        let raw = sample_remote(&remote, newest)
            .await
            .map_err(|e| match e.code() {
                Some("ResourceNotFoundException") => AwsError::new(
                    errors::RESOURCE_NOT_FOUND,
                    format!("Stream {arn} is not found."),
                ),
                _ => AwsError::new(
                    errors::SERVICE_UNAVAILABLE,
                    format!(
                        "Could not sample stream {} at {}: {e}",
                        remote.name,
                        remote.client.endpoint()
                    ),
                )
                .with_status(503),
            })?;
        return describe(
            raw,
            "No data was found in the stream to discover a schema from.",
        );
    }
    // A DirectPut delivery stream (a `KinesisFirehoseInput`): its buffer, as one shard.
    if let Some(name) = delivery_stream_name_of(&arn).filter(|_| arn.contains(":firehose:")) {
        let log = a
            .engine
            .delivery
            .as_ref()
            .and_then(|d| d.find(name))
            .and_then(|ds| ds.buffer.clone())
            .ok_or_else(|| {
                AwsError::new(
                    errors::RESOURCE_NOT_FOUND,
                    format!("Delivery stream {arn} is not found."),
                )
            })?;
        let raw = sample_logs(vec![log], newest).await?;
        return describe(
            raw,
            "No data was found in the delivery stream to discover a schema from.",
        );
    }
    let stream = stream_name_of(&arn)
        .and_then(|n| a.engine.streams.find(n))
        .ok_or_else(|| {
            AwsError::new(
                errors::RESOURCE_NOT_FOUND,
                format!("Stream {arn} is not found."),
            )
        })?;
    let raw = sample_shards(&a.engine.streams, &stream, newest).await?;
    describe(
        raw,
        "No data was found in the stream to discover a schema from.",
    )
}

/// About [`SAMPLE`] records of local logs (shards, or a delivery stream's buffer): the oldest
/// of each, or with `newest` the newest.
async fn sample_logs(
    logs: Vec<crate::storage::ShardLog>,
    newest: bool,
) -> Result<Vec<bytes::Bytes>, AwsError> {
    let per_shard = SAMPLE.div_ceil(logs.len().max(1));
    let mut raw: Vec<bytes::Bytes> = Vec::new();
    for log in logs {
        let from = if newest {
            log.end_offset().saturating_sub(per_shard as u64)
        } else {
            log.start_offset()
        };
        let batch = tokio::task::spawn_blocking(move || log.read(from, per_shard, 1024 * 1024))
            .await
            .map_err(|_| AwsError::internal(""))?
            .map_err(crate::streams::storage_error)?;
        raw.extend(batch.records.into_iter().map(|r| r.data));
    }
    Ok(raw)
}

/// About [`SAMPLE`] records of a stream's shards, read here or (cluster mode) at the pod
/// holding each: the oldest of each, or with `newest` the newest.
async fn sample_shards(
    streams: &crate::streams::Streams,
    stream: &std::sync::Arc<crate::streams::Stream>,
    newest: bool,
) -> Result<Vec<bytes::Bytes>, AwsError> {
    use crate::streams::shard_read::ShardRead;
    let shards = stream.all_shards();
    let per_shard = SAMPLE.div_ceil(shards.len().max(1));
    let failed = |e: String| {
        tracing::warn!(stream = %stream.name, error = %e, "Could not sample a shard.");
        AwsError::internal("")
    };
    let mut raw: Vec<bytes::Bytes> = Vec::new();
    for shard in &shards {
        let from = if newest {
            let page = streams
                .read_shard(stream, shard, ShardRead::offsets(None))
                .await
                .map_err(failed)?;
            page.batch.end_offset.saturating_sub(per_shard as u64)
        } else {
            0
        };
        let page = streams
            .read_shard(
                stream,
                shard,
                ShardRead::records(from, per_shard, 1024 * 1024),
            )
            .await
            .map_err(failed)?;
        raw.extend(page.batch.records.into_iter().map(|r| r.data));
    }
    Ok(raw)
}

/// Pages read from one remote shard while looking for its newest records.
const NEWEST_PAGES: usize = 10;

/// Samples a stream served by another endpoint (`--stream-endpoint`) through its Kinesis API:
/// from each shard, the oldest records (`TRIM_HORIZON`) or the newest ones (`NOW`: the last
/// records of up to [`NEWEST_PAGES`] pages read from the trim horizon towards the tip), about
/// [`SAMPLE`] in all.
async fn sample_remote(
    remote: &crate::remote::RemoteStream,
    newest: bool,
) -> Result<Vec<bytes::Bytes>, crate::remote::RemoteError> {
    use crate::remote::client::IteratorStart;
    let shards = remote.client.list_shards(&remote.name).await?;
    let per_shard = SAMPLE.div_ceil(shards.len().max(1));
    let mut raw = Vec::new();
    for shard in &shards {
        let mut iterator = Some(
            remote
                .client
                .get_shard_iterator(&remote.name, &shard.id, &IteratorStart::TrimHorizon)
                .await?,
        );
        let mut kept: std::collections::VecDeque<bytes::Bytes> = Default::default();
        let mut pages = 0;
        while let Some(it) = iterator.take() {
            let limit = if newest { 1000 } else { per_shard - kept.len() };
            let page = remote.client.get_records(&it, limit).await?;
            pages += 1;
            let empty = page.records.is_empty();
            for r in page.records {
                kept.push_back(r.data);
                if kept.len() > per_shard {
                    kept.pop_front();
                }
            }
            let done = (!newest && kept.len() >= per_shard)
                || (empty && page.millis_behind_latest == 0)
                || (newest && page.millis_behind_latest == 0)
                || pages >= NEWEST_PAGES;
            if !done {
                iterator = page.next_iterator;
            }
        }
        raw.extend(kept);
    }
    Ok(raw)
}

/// Infers the schema of sampled records and answers with them raw and parsed.
fn describe(raw: Vec<bytes::Bytes>, empty: &str) -> Result<DiscoverInputSchemaOutput, AwsError> {
    let raw_text: Vec<String> = raw
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect();
    let samples: Vec<&[u8]> = raw.iter().map(|r| r.as_ref()).collect();
    let schema = format::discover(&samples).map_err(|e| {
        let message = match e {
            format::DiscoveryError::NoRecords => empty.to_string(),
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
