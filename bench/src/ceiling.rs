//! The ceiling: a server that does everything Tributary does to a write except keep it.
//!
//! Same HTTP stack and settings as Tributary's front door (hyper 1 with hyper-util's auto
//! builder: HTTP/1.1 keep-alive and h2c on one port, `TCP_NODELAY`, multi-threaded tokio),
//! and the same request work with Tributary's own code: the body read whole, then decoded by
//! `tributary::protocol::codec` into the service's input types (JSON, every `Data` base64
//! decoded into shared chunks), and answered by the service's own encoders (PutRecords'
//! hand-written JSON writer), but with no validation, no routing, no storage and no fsync. So
//! Tributary/ceiling is the share of the machine's HTTP-and-codec throughput that Tributary
//! keeps while storing durably.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tributary::protocol::{codec, Protocol};
use tributary::services::kinesis::model::{PutRecordInput, PutRecordOutput, PutRecordsInput};
use tributary::services::kinesis::records::PutRecordsReply;
use tributary::services::Encode;
use tributary::streams::{seq, PutOutcome};

struct State {
    /// Records answered so far: the next record's offset in the one shard.
    offset: AtomicU64,
    /// Requests answered so far, for their ids.
    requests: AtomicU64,
    shard_id: Arc<str>,
}

impl State {
    /// Sequence numbers for `n` records, as Tributary makes them.
    fn sequences(&self, n: usize) -> impl Iterator<Item = u128> {
        let first = self.offset.fetch_add(n as u64, Ordering::Relaxed);
        (first..first + n as u64).map(|offset| seq::encode(0x5eed, 0, offset))
    }
}

fn reply(status: u16, body: Bytes, request: u64) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header("x-amzn-RequestId", format!("ceiling-{request:016x}"))
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn bad_request(message: &str, request: u64) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"__type": "SerializationException", "message": message});
    reply(400, Bytes::from(body.to_string()), request)
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let request = state.requests.fetch_add(1, Ordering::Relaxed);
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
            let input: PutRecordsInput = match codec::decode(Protocol::Json, &body) {
                Ok(i) => i,
                Err(e) => return bad_request(&e.message, request),
            };
            let records = input.records.unwrap_or_default();
            let outcomes = state
                .sequences(records.len())
                .map(|sequence| PutOutcome::Ok {
                    shard_id: state.shard_id.clone(),
                    sequence,
                })
                .collect();
            // The decoded records are dropped here, as Tributary drops them once written.
            drop(std::hint::black_box(records));
            let out = PutRecordsReply::new(outcomes, "NONE").encode(Protocol::Json);
            reply(200, out, request)
        }
        "PutRecord" => {
            let input: PutRecordInput = match codec::decode(Protocol::Json, &body) {
                Ok(i) => i,
                Err(e) => return bad_request(&e.message, request),
            };
            drop(std::hint::black_box(input));
            let sequence = state.sequences(1).next().unwrap_or_default();
            let out = PutRecordOutput {
                shard_id: state.shard_id.to_string(),
                sequence_number: sequence.to_string(),
                encryption_type: "NONE",
            };
            reply(200, out.encode(Protocol::Json), request)
        }
        "CreateStream" => reply(200, Bytes::new(), request),
        "ListStreams" => reply(
            200,
            Bytes::from_static(br#"{"StreamNames":[],"HasMoreStreams":false}"#),
            request,
        ),
        "DescribeStreamSummary" => reply(
            200,
            Bytes::from_static(br#"{"StreamDescriptionSummary":{"StreamStatus":"ACTIVE"}}"#),
            request,
        ),
        _ => {
            let body = serde_json::json!({"__type": "UnknownOperationException"});
            reply(400, Bytes::from(body.to_string()), request)
        }
    }
}

/// Serves until the process is killed. Prints the same `listening api=…` line as Tributary.
pub async fn serve(listen: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening api={}", listener.local_addr()?);
    let state = Arc::new(State {
        offset: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        shard_id: Arc::from("shardId-000000000000"),
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
