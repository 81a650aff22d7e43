//! Firehose calls the tests share, through `aws-sdk-firehose`.

use aws_sdk_firehose::operation::put_record_batch::PutRecordBatchOutput;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;

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
