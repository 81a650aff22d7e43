//! The ceiling: a server that does everything Tributary does to a write except keep it.
//!
//! Same HTTP stack and settings as Tributary's front door (hyper 1 with hyper-util's auto
//! builder: HTTP/1.1 keep-alive and h2c on one port, `TCP_NODELAY`, multi-threaded tokio),
//! the same request work (read the whole body, parse the JSON, base64-decode every `Data`)
//! and a response of the same shape, but no routing, no storage and no fsync. No server on
//! this stack can answer these requests faster, so Tributary/ceiling is the share of the
//! machine's HTTP-and-codec throughput that Tributary keeps while storing durably.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64_simd::STANDARD;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsIn<'a> {
    #[serde(borrow)]
    records: Vec<EntryIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryIn<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
    #[serde(borrow)]
    partition_key: Cow<'a, str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsOut {
    failed_record_count: u32,
    records: Vec<EntryOut>,
    encryption_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EntryOut {
    sequence_number: String,
    shard_id: &'static str,
}

struct State {
    sequence: AtomicU64,
}

impl State {
    /// A 56-digit sequence number, as long as a real one.
    fn next_sequence(&self) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("4968{n:052}")
    }
}

fn reply(status: u16, body: Vec<u8>, request: u64) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header("x-amzn-RequestId", format!("ceiling-{request:016x}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn bad_request(message: &str, request: u64) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"__type": "SerializationException", "message": message});
    reply(400, body.to_string().into_bytes(), request)
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let request = state.sequence.load(Ordering::Relaxed);
    let op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("Kinesis_20131202."))
        .unwrap_or("")
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return bad_request("unreadable body", request),
    };
    match op.as_str() {
        "PutRecords" => {
            let input: PutRecordsIn = match serde_json::from_slice(&body) {
                Ok(i) => i,
                Err(e) => return bad_request(&e.to_string(), request),
            };
            let mut records = Vec::with_capacity(input.records.len());
            for r in &input.records {
                let data = match STANDARD.decode_to_vec(r.data.as_bytes()) {
                    Ok(d) => d,
                    Err(_) => return bad_request("base64 value invalid", request),
                };
                std::hint::black_box((data, &r.partition_key));
                records.push(EntryOut {
                    sequence_number: state.next_sequence(),
                    shard_id: "shardId-000000000000",
                });
            }
            let out = PutRecordsOut {
                failed_record_count: 0,
                records,
                encryption_type: "NONE",
            };
            reply(200, serde_json::to_vec(&out).unwrap_or_default(), request)
        }
        "PutRecord" => {
            let input: EntryIn = match serde_json::from_slice(&body) {
                Ok(i) => i,
                Err(e) => return bad_request(&e.to_string(), request),
            };
            match STANDARD.decode_to_vec(input.data.as_bytes()) {
                Ok(d) => std::hint::black_box((d, &input.partition_key)),
                Err(_) => return bad_request("base64 value invalid", request),
            };
            let out = serde_json::json!({
                "SequenceNumber": state.next_sequence(),
                "ShardId": "shardId-000000000000",
                "EncryptionType": "NONE",
            });
            reply(200, out.to_string().into_bytes(), request)
        }
        "CreateStream" => reply(200, Vec::new(), request),
        "ListStreams" => reply(
            200,
            br#"{"StreamNames":[],"HasMoreStreams":false}"#.to_vec(),
            request,
        ),
        "DescribeStreamSummary" => reply(
            200,
            br#"{"StreamDescriptionSummary":{"StreamStatus":"ACTIVE"}}"#.to_vec(),
            request,
        ),
        _ => {
            let body = serde_json::json!({"__type": "UnknownOperationException"});
            reply(400, body.to_string().into_bytes(), request)
        }
    }
}

/// Serves until the process is killed. Prints the same `listening api=…` line as Tributary.
pub async fn serve(listen: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening api={}", listener.local_addr()?);
    let state = Arc::new(State {
        sequence: AtomicU64::new(0),
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .http2()
        .max_concurrent_streams(1000);
    let builder = Arc::new(builder);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, req).await) }
            });
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await;
        });
    }
}
