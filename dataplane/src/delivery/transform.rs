//! Record transformation through Firehose's Lambda contract.
//!
//! The function is reached over HTTP: a `LambdaArn` that is an `http://` URL is POSTed to
//! directly; any other value is invoked through the Lambda Invoke API
//! (`POST {--lambda-endpoint}/2015-03-31/functions/{LambdaArn}/invocations`), which Lambda
//! emulators and runtime interface emulators serve.
//!
//! Request: `{invocationId, deliveryStreamArn, region, sourceKinesisStreamArn?, records:
//! [{recordId, approximateArrivalTimestamp, data}]}`. Response: `{records: [{recordId, result,
//! data}]}` with result `Ok`, `Dropped` or `ProcessingFailed`. Every record must come back
//! exactly once; otherwise the whole invocation counts as failed. A failed invocation is retried
//! `NumberOfRetries` times, then its records are processing failures.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde::{Deserialize, Serialize};

use super::client::HttpClient;
use super::source::Pending;
use super::DeliveryMeta;

/// Lambda's synchronous invocation payload limit is 6 MB; records are sent in invocations of
/// at most this much data (Firehose's default processor buffer is 1 MB).
const INVOCATION_BYTES: usize = 1024 * 1024;
/// A function runs at most 5 minutes.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(300);
/// The response payload limit (6 MB).
const MAX_RESPONSE: usize = 6 * 1024 * 1024;

/// A record that failed processing, with Firehose's error code.
#[derive(Debug, Clone)]
pub struct Failed {
    pub record: Pending,
    pub code: String,
    pub message: String,
}

/// The outcome of transforming a batch.
#[derive(Debug, Default)]
pub struct Transformed {
    /// Records to deliver (`Ok`), transformed, in their original order.
    pub ok: Vec<Pending>,
    pub failed: Vec<Failed>,
    /// Invocation attempts made (for error objects).
    pub attempts: u32,
    /// Invocations that still failed after their retries.
    pub invocations_failed: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventRecord {
    record_id: String,
    approximate_arrival_timestamp: i64,
    data: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    invocation_id: String,
    delivery_stream_arn: &'a str,
    region: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_kinesis_stream_arn: Option<&'a str>,
    records: Vec<EventRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseRecord {
    record_id: Option<String>,
    result: Option<String>,
    data: Option<String>,
    metadata: Option<ResponseMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseMetadata {
    partition_keys: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Response {
    records: Option<Vec<ResponseRecord>>,
}

/// Where a function is invoked.
pub fn invoke_url(lambda_arn: &str, lambda_endpoint: Option<&str>) -> Option<String> {
    if lambda_arn.starts_with("http://") || lambda_arn.starts_with("https://") {
        return Some(lambda_arn.to_string());
    }
    let base = lambda_endpoint?.trim_end_matches('/');
    Some(format!(
        "{base}/2015-03-31/functions/{lambda_arn}/invocations"
    ))
}

/// Transforms `records` with the function at `url`.
pub async fn apply(
    client: &HttpClient,
    meta: &DeliveryMeta,
    region: &str,
    url: Option<&str>,
    retries: u32,
    seed: u128,
    records: &[Pending],
) -> Transformed {
    let mut out = Transformed::default();
    let mut start = 0;
    let mut chunk_index = 0u32;
    while start < records.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < records.len()
            && (end == start || bytes + records[end].data.len() <= INVOCATION_BYTES)
        {
            bytes += records[end].data.len();
            end += 1;
        }
        let chunk = &records[start..end];
        let (result, attempts) = match url {
            Some(url) => {
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let r = invoke(client, meta, region, url, seed, chunk_index, chunk).await;
                    if r.is_ok() || attempts > retries {
                        break (r, attempts);
                    }
                }
            }
            None => (
                Err((
                    "Lambda.InvokeAccessDenied".to_string(),
                    "No Lambda endpoint is configured for this function (--lambda-endpoint)."
                        .to_string(),
                )),
                1,
            ),
        };
        out.attempts = out.attempts.max(attempts);
        match result {
            Ok(results) => {
                for (record, verdict) in chunk.iter().zip(results) {
                    match verdict {
                        Verdict::Ok(data, keys) => out.ok.push(Pending {
                            data,
                            lambda_keys: keys,
                            ..record.clone()
                        }),
                        Verdict::Dropped => {}
                        Verdict::Failed => out.failed.push(Failed {
                            record: record.clone(),
                            code: "Lambda.ProcessingFailed".into(),
                            message: "The Lambda function marked the record ProcessingFailed."
                                .into(),
                        }),
                    }
                }
            }
            Err((code, message)) => {
                out.invocations_failed += 1;
                out.failed.extend(chunk.iter().map(|r| Failed {
                    record: r.clone(),
                    code: code.clone(),
                    message: message.clone(),
                }))
            }
        }
        start = end;
        chunk_index += 1;
    }
    out
}

enum Verdict {
    Ok(Bytes, Option<super::partition::Keys>),
    Dropped,
    Failed,
}

/// One invocation; on success, one verdict per input record, in input order.
async fn invoke(
    client: &HttpClient,
    meta: &DeliveryMeta,
    region: &str,
    url: &str,
    seed: u128,
    chunk_index: u32,
    chunk: &[Pending],
) -> Result<Vec<Verdict>, (String, String)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let ids: Vec<String> = (0..chunk.len()).map(|i| format!("{i}")).collect();
    let event = Event {
        invocation_id: super::prefix::uuid_from(seed.wrapping_add(chunk_index as u128)),
        delivery_stream_arn: &meta.arn,
        region,
        source_kinesis_stream_arn: meta.kinesis.as_ref().map(|k| k.stream_arn.as_str()),
        records: chunk
            .iter()
            .zip(&ids)
            .map(|(r, id)| EventRecord {
                record_id: format!("{}-{id}", r.id),
                approximate_arrival_timestamp: r.arrival_ms,
                data: b64.encode(&r.data),
            })
            .collect(),
    };
    let body = serde_json::to_vec(&event).unwrap_or_default();
    let req = Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ("Lambda.InvokeAccessDenied".to_string(), e.to_string()))?;
    let resp = client
        .send(req, INVOKE_TIMEOUT, MAX_RESPONSE)
        .await
        .map_err(|e| ("Lambda.FunctionError".to_string(), e.message))?;
    if !resp.status.is_success() || resp.headers.contains_key("x-amz-function-error") {
        return Err((
            "Lambda.FunctionError".into(),
            format!(
                "The Lambda function returned HTTP {}: {}",
                resp.status.as_u16(),
                String::from_utf8_lossy(&resp.body)
                    .chars()
                    .take(512)
                    .collect::<String>()
            ),
        ));
    }
    let parsed: Response = serde_json::from_slice(&resp.body).map_err(|e| {
        (
            "Lambda.JsonProcessingException".to_string(),
            format!("The Lambda function's response is not valid JSON: {e}"),
        )
    })?;
    let mut by_id: HashMap<String, ResponseRecord> = HashMap::new();
    for r in parsed.records.unwrap_or_default() {
        let id = r.record_id.clone().unwrap_or_default();
        if by_id.insert(id.clone(), r).is_some() {
            return Err((
                "Lambda.DuplicatedRecordId".into(),
                format!("The Lambda function returned record id {id} more than once."),
            ));
        }
    }
    if by_id.len() != chunk.len() {
        return Err((
            "Lambda.MissingRecordId".into(),
            format!(
                "The Lambda function returned {} records for {} input records.",
                by_id.len(),
                chunk.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(chunk.len());
    for (r, id) in chunk.iter().zip(&ids) {
        let key = format!("{}-{id}", r.id);
        let Some(rec) = by_id.remove(&key) else {
            return Err((
                "Lambda.MissingRecordId".into(),
                format!("The Lambda function did not return record id {key}."),
            ));
        };
        let verdict = match rec.result.as_deref() {
            Some("Ok") => {
                let data = b64.decode(rec.data.unwrap_or_default()).map_err(|e| {
                    (
                        "Lambda.InvalidData".to_string(),
                        format!("Record {key} has data that is not valid base64: {e}"),
                    )
                })?;
                Verdict::Ok(
                    Bytes::from(data),
                    rec.metadata.and_then(|m| m.partition_keys),
                )
            }
            Some("Dropped") => Verdict::Dropped,
            Some("ProcessingFailed") => Verdict::Failed,
            other => {
                return Err((
                    "Lambda.InvalidResult".into(),
                    format!(
                    "Record {key} has result {other:?}; expected Ok, Dropped or ProcessingFailed."
                ),
                ))
            }
        };
        out.push(verdict);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_reached_by_url_or_through_the_invoke_api() {
        assert_eq!(
            invoke_url("http://127.0.0.1:9000/fn", None).as_deref(),
            Some("http://127.0.0.1:9000/fn")
        );
        assert_eq!(
            invoke_url(
                "arn:aws:lambda:us-east-1:000000000000:function:enrich",
                Some("http://lambda:9001/")
            )
            .as_deref(),
            Some("http://lambda:9001/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:enrich/invocations")
        );
        assert_eq!(invoke_url("arn:aws:lambda:x", None), None);
    }
}
