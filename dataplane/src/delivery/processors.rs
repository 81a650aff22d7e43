//! The processors that run before the Lambda transformation, in Firehose's order:
//!
//! 1. `Decompression` (`CompressionFormat: GZIP`): each record is gunzipped, as CloudWatch Logs
//!    subscription data must be. A record that is not gzip goes to the error output as it
//!    arrived, with error output type `decompression-failed`.
//! 2. `CloudWatchLogProcessing` (`DataMessageExtraction: true`): a CloudWatch Logs subscription
//!    document (`{"messageType", "logGroup", "logStream", "logEvents": [{"id", "timestamp",
//!    "message"}]}`) becomes one record per log event holding its `message`; `CONTROL_MESSAGE`
//!    documents are dropped.
//! 3. `RecordDeAggregation`: `SubRecordType: JSON` splits a record holding several JSON objects
//!    (back to back or separated by whitespace or newlines) into one record per object;
//!    `DELIMITED` splits on `Delimiter` (base64-encoded, e.g. `IyMjIw==` for `####`). At most
//!    500 sub-records per record.
//!
//! Records that fail steps 2 and 3 go to the error output with error output type
//! `processing-failed`.

use base64::Engine;
use bytes::Bytes;
use std::io::Read;

use super::config::ProcessingConfiguration;
use super::source::Pending;

/// Firehose splits a record into at most this many sub-records.
pub const MAX_SUB_RECORDS: usize = 500;

/// A record a processor could not handle.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub record: Pending,
    /// `decompression-failed` or `processing-failed`.
    pub error_output_type: &'static str,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Processed {
    pub ok: Vec<Pending>,
    pub rejected: Vec<Rejected>,
}

/// How `RecordDeAggregation` splits records.
#[derive(Debug, Clone, PartialEq)]
pub enum SubRecords {
    Json,
    Delimited(Vec<u8>),
}

impl ProcessingConfiguration {
    /// `Decompression` with `CompressionFormat: GZIP` (the only format, and the default).
    pub fn decompresses(&self) -> bool {
        self.processors_of("Decompression").next().is_some()
    }

    /// `CloudWatchLogProcessing` with `DataMessageExtraction: true`.
    pub fn extracts_log_messages(&self) -> bool {
        self.processors_of("CloudWatchLogProcessing").any(|p| {
            p.param("DataMessageExtraction")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        })
    }

    /// `RecordDeAggregation`'s sub-record type.
    pub fn deaggregation(&self) -> Option<SubRecords> {
        let p = self.processors_of("RecordDeAggregation").next()?;
        match p.param("SubRecordType").as_deref() {
            Some("DELIMITED") => {
                let delimiter = base64::engine::general_purpose::STANDARD
                    .decode(p.param("Delimiter").unwrap_or_default())
                    .ok()?;
                Some(SubRecords::Delimited(delimiter))
            }
            _ => Some(SubRecords::Json),
        }
    }
}

/// Runs the pre-Lambda processors over `records`.
pub fn apply(p: &ProcessingConfiguration, records: Vec<Pending>) -> Processed {
    let decompress = p.decompresses();
    let extract = p.extracts_log_messages();
    let split = p.deaggregation();
    let mut out = Processed::default();
    if !decompress && !extract && split.is_none() {
        out.ok = records;
        return out;
    }
    for record in records {
        let mut current = vec![record.clone()];
        if decompress {
            match gunzip(&record.data) {
                Ok(data) => current[0].data = Bytes::from(data),
                Err(e) => {
                    out.rejected.push(Rejected {
                        record,
                        error_output_type: "decompression-failed",
                        code: "Decompression.InvalidData".into(),
                        message: format!("The record could not be decompressed as GZIP: {e}"),
                    });
                    continue;
                }
            }
        }
        if extract {
            match log_messages(&current[0]) {
                Ok(events) => current = events,
                Err(message) => {
                    out.rejected.push(Rejected {
                        record,
                        error_output_type: "processing-failed",
                        code: "CloudWatchLogProcessing.InvalidData".into(),
                        message,
                    });
                    continue;
                }
            }
        }
        if let Some(how) = &split {
            let mut parts = Vec::new();
            let mut failure = None;
            for r in &current {
                match sub_records(r, how) {
                    Ok(p) => parts.extend(p),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if let Some(message) = failure {
                out.rejected.push(Rejected {
                    record,
                    error_output_type: "processing-failed",
                    code: "RecordDeAggregation.InvalidData".into(),
                    message,
                });
                continue;
            }
            current = parts;
        }
        out.ok.extend(current);
    }
    out
}

fn gunzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

fn child(r: &Pending, i: usize, data: Vec<u8>) -> Pending {
    Pending {
        data: Bytes::from(data),
        id: format!("{}.{i}", r.id),
        ..r.clone()
    }
}

/// The messages of a CloudWatch Logs subscription document, one record each.
fn log_messages(r: &Pending) -> Result<Vec<Pending>, String> {
    let doc: serde_json::Value = serde_json::from_slice(&r.data)
        .map_err(|e| format!("The record is not a CloudWatch Logs document: {e}"))?;
    match doc.get("messageType").and_then(|t| t.as_str()) {
        Some("CONTROL_MESSAGE") => return Ok(Vec::new()),
        Some("DATA_MESSAGE") => {}
        _ => {
            return Err(
                "The record is not a CloudWatch Logs document: messageType is not DATA_MESSAGE or CONTROL_MESSAGE."
                    .into(),
            )
        }
    }
    let events = doc
        .get("logEvents")
        .and_then(|e| e.as_array())
        .ok_or("The CloudWatch Logs document has no logEvents array.")?;
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let message = e
                .get("message")
                .and_then(|m| m.as_str())
                .ok_or("A CloudWatch Logs event has no message.")?;
            Ok(child(r, i, message.as_bytes().to_vec()))
        })
        .collect()
}

fn sub_records(r: &Pending, how: &SubRecords) -> Result<Vec<Pending>, String> {
    let pieces: Vec<Vec<u8>> = match how {
        SubRecords::Json => {
            let mut pieces = Vec::new();
            let mut stream =
                serde_json::Deserializer::from_slice(&r.data).into_iter::<serde_json::Value>();
            let mut start = 0;
            while let Some(v) = stream.next() {
                let v =
                    v.map_err(|e| format!("The record is not a sequence of JSON objects: {e}"))?;
                let end = stream.byte_offset();
                if !v.is_object() {
                    return Err("The record is not a sequence of JSON objects (arrays and scalars are not valid sub-records).".into());
                }
                pieces.push(r.data[start..end].trim_ascii().to_vec());
                start = end;
            }
            pieces
        }
        SubRecords::Delimited(d) => split_on(&r.data, d)
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
    };
    if pieces.len() > MAX_SUB_RECORDS {
        return Err(format!(
            "The record holds {} sub-records; at most {MAX_SUB_RECORDS} are allowed.",
            pieces.len()
        ));
    }
    Ok(pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| child(r, i, p))
        .collect())
}

fn split_on<'a>(data: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    if delimiter.is_empty() {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + delimiter.len() <= data.len() {
        if &data[i..i + delimiter.len()] == delimiter {
            out.push(&data[start..i]);
            i += delimiter.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&data[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::config::{Processor, ProcessorParameter};
    use std::io::Write;

    fn config(processors: &[(&str, &[(&str, &str)])]) -> ProcessingConfiguration {
        ProcessingConfiguration {
            enabled: Some(true),
            processors: Some(
                processors
                    .iter()
                    .map(|(kind, params)| Processor {
                        kind: Some(kind.to_string()),
                        parameters: Some(
                            params
                                .iter()
                                .map(|(n, v)| ProcessorParameter {
                                    parameter_name: Some(n.to_string()),
                                    parameter_value: Some(v.to_string()),
                                })
                                .collect(),
                        ),
                    })
                    .collect(),
            ),
        }
    }

    fn pending(data: &[u8]) -> Pending {
        Pending {
            data: Bytes::copy_from_slice(data),
            arrival_ms: 1,
            id: "r".into(),
            lambda_keys: None,
        }
    }

    fn texts(p: &Processed) -> Vec<String> {
        p.ok.iter()
            .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn json_and_delimited_records_are_split() {
        let json = config(&[("RecordDeAggregation", &[("SubRecordType", "JSON")])]);
        let p = apply(
            &json,
            vec![
                pending(b"{\"a\":1}{\"b\":2}\n {\"c\":[3]}\n"),
                pending(b"[1]"),
            ],
        );
        assert_eq!(texts(&p), ["{\"a\":1}", "{\"b\":2}", "{\"c\":[3]}"]);
        assert_eq!(p.ok[1].id, "r.1");
        assert_eq!(p.rejected.len(), 1);
        let delimited = config(&[(
            "RecordDeAggregation",
            &[("SubRecordType", "DELIMITED"), ("Delimiter", "IyMjIw==")],
        )]);
        let p = apply(&delimited, vec![pending(b"a####b####c####")]);
        assert_eq!(texts(&p), ["a", "b", "c"]);
        let many = "{}".repeat(501);
        assert_eq!(
            apply(&json, vec![pending(many.as_bytes())]).rejected.len(),
            1
        );
    }

    #[test]
    fn cloudwatch_logs_are_decompressed_and_their_messages_extracted() {
        let c = config(&[
            ("Decompression", &[("CompressionFormat", "GZIP")]),
            (
                "CloudWatchLogProcessing",
                &[("DataMessageExtraction", "true")],
            ),
        ]);
        let gz = |s: &str| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(s.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let data = gz(
            r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1,"message":"first"},{"id":"2","timestamp":2,"message":"second"}]}"#,
        );
        let control = gz(
            r#"{"messageType":"CONTROL_MESSAGE","logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE"}]}"#,
        );
        let p = apply(
            &c,
            vec![pending(&data), pending(&control), pending(b"plain")],
        );
        assert_eq!(texts(&p), ["first", "second"]);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].error_output_type, "decompression-failed");
        assert_eq!(&p.rejected[0].record.data[..], b"plain");
    }
}
