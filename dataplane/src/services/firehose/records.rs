//! PutRecord and PutRecordBatch: records are appended to the delivery stream's durable buffer
//! and acknowledged only once fsynced.

use bytes::Bytes;

use super::errors::{self, invalid_argument};
use super::model::*;
use super::streams::find;
use super::validate;
use super::Firehose;
use crate::delivery::{DeliveryStream, SourceKind};
use crate::protocol::AwsError;
use crate::services::validate::Validator;

/// A record's data is at most 1,000 KiB before base64 encoding.
pub const MAX_RECORD_BYTES: usize = 1_024_000;
/// PutRecordBatch takes at most 500 records...
pub const MAX_BATCH_RECORDS: usize = 500;
/// ...and 4 MiB of data.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

fn direct_put(f: &Firehose, name: &str) -> Result<std::sync::Arc<DeliveryStream>, AwsError> {
    let ds = find(f, name)?;
    let meta = ds.meta();
    if meta.source != SourceKind::DirectPut {
        return Err(invalid_argument(
            "This operation is not permitted on KinesisStreamAsSource delivery stream type.",
        ));
    }
    Ok(ds)
}

/// Whether the put fits the delivery stream's throughput quotas; counts it as throttled if
/// not.
fn admitted(f: &Firehose, ds: &DeliveryStream, name: &str, records: &[Bytes]) -> bool {
    let Some(limits) = &ds.limits else {
        return true;
    };
    let bytes: usize = records.iter().map(|r| r.len()).sum();
    if limits.admit(records.len(), bytes, f.engine.clock.now_ms()) {
        return true;
    }
    crate::metrics::global()
        .firehose
        .throttled_records
        .with_label_values(&[name])
        .inc_by(records.len() as u64);
    false
}

async fn append(
    ds: &DeliveryStream,
    name: &str,
    records: Vec<Bytes>,
) -> Result<(Vec<String>, bool), AwsError> {
    let n = records.len();
    let bytes: usize = records.iter().map(|r| r.len()).sum();
    let (first, arrival) = ds.put(records).await.map_err(|e| {
        tracing::warn!(delivery_stream = %name, error = %e, "Buffering records failed.");
        errors::unavailable("Slow down.")
    })?;
    crate::metrics::global().firehose.incoming(name, n, bytes);
    let ids = (0..n as u64)
        .map(|i| crate::delivery::record_id(first + i, arrival))
        .collect();
    Ok((ids, ds.meta().encryption.status == "ENABLED"))
}

pub async fn put_record(f: &Firehose, i: PutRecordInput) -> Result<PutRecordOutput, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    if v.not_null("record", &i.record) {
        let r = i.record.as_ref().expect("checked");
        if v.not_null("record.data", &r.data) {
            v.blob(
                "record.data",
                r.data.as_ref().map(|d| d.0.len()).unwrap_or(0),
                MAX_RECORD_BYTES,
            );
        }
    }
    v.finish()?;
    let name = i.delivery_stream_name.unwrap_or_default();
    let ds = direct_put(f, &name)?;
    let data = i
        .record
        .and_then(|r| r.data)
        .map(|d| d.0)
        .unwrap_or_default();
    if !admitted(f, &ds, &name, std::slice::from_ref(&data)) {
        return Err(errors::unavailable("Slow down."));
    }
    let (ids, encrypted) = append(&ds, &name, vec![data]).await?;
    Ok(PutRecordOutput {
        record_id: ids.into_iter().next().unwrap_or_default(),
        encrypted,
    })
}

pub async fn put_record_batch(
    f: &Firehose,
    i: PutRecordBatchInput,
) -> Result<PutRecordBatchOutput, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    if v.not_null("records", &i.records) {
        let records = i.records.as_ref().expect("checked");
        v.count(
            "records",
            &format!("{} records", records.len()),
            records.len(),
            1,
            MAX_BATCH_RECORDS,
        );
        for (n, r) in records.iter().enumerate() {
            let path = format!("records.{}.member.data", n + 1);
            if v.not_null(&path, &r.data) {
                v.blob(
                    &path,
                    r.data.as_ref().map(|d| d.0.len()).unwrap_or(0),
                    MAX_RECORD_BYTES,
                );
            }
        }
    }
    v.finish()?;
    let name = i.delivery_stream_name.unwrap_or_default();
    let ds = direct_put(f, &name)?;
    let records: Vec<Bytes> = i
        .records
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.data.map(|d| d.0).unwrap_or_default())
        .collect();
    let total: usize = records.iter().map(|r| r.len()).sum();
    if total > MAX_BATCH_BYTES {
        return Err(invalid_argument(format!(
            "Records size exceeds 4 MB limit: the batch holds {total} bytes of data."
        )));
    }
    if !admitted(f, &ds, &name, &records) {
        // Firehose reports throttling per record, with the call itself succeeding.
        return Ok(PutRecordBatchOutput {
            failed_put_count: records.len() as i64,
            encrypted: ds.meta().encryption.status == "ENABLED",
            request_responses: records
                .iter()
                .map(|_| BatchEntryOut {
                    record_id: None,
                    error_code: Some(errors::SERVICE_UNAVAILABLE.into()),
                    error_message: Some("Slow down.".into()),
                })
                .collect(),
        });
    }
    // The batch is one durable append: it is buffered whole or not at all, so a failure is
    // reported for the call rather than per record.
    let (ids, encrypted) = append(&ds, &name, records).await?;
    Ok(PutRecordBatchOutput {
        failed_put_count: 0,
        encrypted,
        request_responses: ids
            .into_iter()
            .map(|id| BatchEntryOut {
                record_id: Some(id),
                error_code: None,
                error_message: None,
            })
            .collect(),
    })
}
