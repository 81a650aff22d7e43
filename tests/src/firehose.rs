//! Firehose calls the tests share, through `aws-sdk-firehose`.

use aws_sdk_firehose::operation::put_record_batch::PutRecordBatchOutput;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{
    BufferingHints, CompressionFormat, DeliveryStreamType, ExtendedS3DestinationConfiguration,
    HttpEndpointBufferingHints, HttpEndpointConfiguration, HttpEndpointDestinationConfiguration,
    HttpEndpointRetryOptions, KinesisStreamSourceConfiguration, ProcessingConfiguration, Processor,
    ProcessorType, Record, S3DestinationConfiguration,
};

/// The IAM role the tests name wherever Firehose asks for one.
pub const FIREHOSE_ROLE: &str = "arn:aws:iam::000000000000:role/firehose";

/// An `aws-sdk-firehose` client for a local server (see [`crate::local_config!`]).
pub fn firehose_client(endpoint: &str) -> aws_sdk_firehose::Client {
    aws_sdk_firehose::Client::from_conf(crate::local_config!(aws_sdk_firehose, endpoint).build())
}

/// Puts `records` into delivery stream `name` with one PutRecordBatch and asserts that none
/// failed; returns the answer.
pub async fn put_record_batch<D: Into<Vec<u8>>>(
    c: &aws_sdk_firehose::Client,
    name: &str,
    records: impl IntoIterator<Item = D>,
) -> PutRecordBatchOutput {
    let records: Vec<Record> = records
        .into_iter()
        .map(|r| {
            Record::builder()
                .data(Blob::new(r))
                .build()
                .expect("a record")
        })
        .collect();
    let out = c
        .put_record_batch()
        .delivery_stream_name(name)
        .set_records(Some(records))
        .send()
        .await
        .expect("PutRecordBatch");
    assert_eq!(out.failed_put_count(), 0, "{out:?}");
    out
}

/// Buffering hints: deliver at `size_mb` MiB or after `interval_s` seconds.
pub fn buffering_hints(size_mb: i32, interval_s: i32) -> BufferingHints {
    BufferingHints::builder()
        .size_in_mbs(size_mb)
        .interval_in_seconds(interval_s)
        .build()
}

/// Processing that appends a newline to every record (`AppendDelimiterToRecord`).
fn newline_processing() -> ProcessingConfiguration {
    ProcessingConfiguration::builder()
        .enabled(true)
        .processors(
            Processor::builder()
                .r#type(ProcessorType::AppendDelimiterToRecord)
                .build()
                .unwrap(),
        )
        .build()
}

/// An S3 destination in bucket `landing` writing one line per record under `prefix` (errors
/// under `errors/{error-output-type}/`), delivered at 1 MiB or after `interval_s` seconds,
/// gzipped when `gzip` is set.
pub fn s3_config(prefix: &str, interval_s: i32, gzip: bool) -> ExtendedS3DestinationConfiguration {
    ExtendedS3DestinationConfiguration::builder()
        .role_arn(FIREHOSE_ROLE)
        .bucket_arn("arn:aws:s3:::landing")
        .prefix(prefix)
        .error_output_prefix("errors/!{firehose:error-output-type}/")
        .buffering_hints(buffering_hints(1, interval_s))
        .compression_format(if gzip {
            CompressionFormat::Gzip
        } else {
            CompressionFormat::Uncompressed
        })
        .processing_configuration(newline_processing())
        .build()
        .unwrap()
}

/// An HTTP endpoint destination posting to `url` with access key `sekret-key`, each record at
/// once (1 MiB or 0 s), retrying for `retry_s` seconds; what fails is backed up in bucket
/// `backup` under `error_prefix`.
pub fn http_endpoint_config(
    url: &str,
    retry_s: i32,
    error_prefix: &str,
) -> HttpEndpointDestinationConfiguration {
    HttpEndpointDestinationConfiguration::builder()
        .endpoint_configuration(
            HttpEndpointConfiguration::builder()
                .url(url)
                .access_key("sekret-key")
                .build()
                .unwrap(),
        )
        .buffering_hints(
            HttpEndpointBufferingHints::builder()
                .size_in_mbs(1)
                .interval_in_seconds(0)
                .build(),
        )
        .retry_options(
            HttpEndpointRetryOptions::builder()
                .duration_in_seconds(retry_s)
                .build(),
        )
        .s3_configuration(
            S3DestinationConfiguration::builder()
                .role_arn(FIREHOSE_ROLE)
                .bucket_arn("arn:aws:s3:::backup")
                .error_output_prefix(error_prefix)
                .build()
                .unwrap(),
        )
        .build()
}

/// The source of a delivery stream reading Kinesis stream `stream`.
fn stream_source(stream: &str) -> KinesisStreamSourceConfiguration {
    KinesisStreamSourceConfiguration::builder()
        .kinesis_stream_arn(crate::stream_arn(stream))
        .role_arn(FIREHOSE_ROLE)
        .build()
        .unwrap()
}

/// Creates delivery stream `name` reading Kinesis stream `stream` (KinesisStreamAsSource)
/// into the S3 destination `destination`.
pub async fn create_stream_delivery(
    f: &aws_sdk_firehose::Client,
    name: &str,
    stream: &str,
    destination: ExtendedS3DestinationConfiguration,
) {
    f.create_delivery_stream()
        .delivery_stream_name(name)
        .delivery_stream_type(DeliveryStreamType::KinesisStreamAsSource)
        .kinesis_stream_source_configuration(stream_source(stream))
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .expect("CreateDeliveryStream");
}
