//! Test builders (controller-rs style): resources, data-plane answers and a mocked API server.

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::{client::Body, Client};
use serde_json::{json, Value};
use tributary_api::{
    AnalyticsApp, DeliveryStream, Stream, StreamConsumer, StreamConsumerSpec, StreamRef, StreamSpec,
};

use crate::dataplane::{StreamModeDetails, StreamSummary};

/// A Stream `name` in namespace `default` with `shards` shards, generation 1, its finalizer
/// already added.
pub fn stream(name: &str, shards: i32) -> Stream {
    let spec: StreamSpec = serde_json::from_value(json!({"shardCount": shards})).unwrap();
    let mut s = Stream::new(name, spec);
    s.metadata.namespace = Some("default".into());
    s.metadata.uid = Some(format!("uid-{name}"));
    s.metadata.generation = Some(1);
    s.metadata.finalizers = Some(vec![crate::controllers::FINALIZER.into()]);
    s
}

/// A StreamConsumer `name` on stream `stream`, finalizer added.
pub fn consumer(name: &str, stream: &str) -> StreamConsumer {
    let spec = StreamConsumerSpec {
        stream_ref: StreamRef {
            name: stream.into(),
        },
        consumer_name: None,
        deletion_policy: Default::default(),
    };
    let mut c = StreamConsumer::new(name, spec);
    c.metadata.namespace = Some("default".into());
    c.metadata.uid = Some(format!("uid-{name}"));
    c.metadata.generation = Some(1);
    c.metadata.finalizers = Some(vec![crate::controllers::FINALIZER.into()]);
    c
}

/// A DeliveryStream `name` reading the Stream `stream` into a bucket, finalizer added.
pub fn delivery_stream(name: &str, stream: &str) -> DeliveryStream {
    let spec = serde_json::from_value(json!({
        "deliveryStreamType": "KinesisStreamAsSource",
        "kinesisStreamSourceConfiguration": {"streamRef": {"name": stream}},
        "extendedS3DestinationConfiguration": {
            "bucketARN": "arn:aws:s3:::archive",
            "bufferingHints": {"sizeInMBs": 1, "intervalInSeconds": 60},
        },
    }))
    .unwrap();
    let mut d = DeliveryStream::new(name, spec);
    d.metadata.namespace = Some("default".into());
    d.metadata.uid = Some(format!("uid-{name}"));
    d.metadata.generation = Some(1);
    d.metadata.finalizers = Some(vec![crate::controllers::FINALIZER.into()]);
    d
}

/// An AnalyticsApp `name` running `code` over the Stream `orders` (columns `TICKER VARCHAR(4)`
/// and `PRICE DOUBLE` in `SOURCE_SQL_STREAM_001`) into the Stream `summaries`, finalizer added.
pub fn analytics_app(name: &str, code: &str) -> AnalyticsApp {
    let spec = serde_json::from_value(json!({
        "applicationCode": code,
        "inputs": [{
            "namePrefix": "SOURCE_SQL_STREAM",
            "kinesisStreamsInput": {"resourceRef": {"name": "orders"}},
            "inputSchema": {
                "recordFormat": {
                    "recordFormatType": "JSON",
                    "mappingParameters": {"jsonMappingParameters": {"recordRowPath": "$"}},
                },
                "recordColumns": [
                    {"name": "TICKER", "mapping": "$.ticker", "sqlType": "VARCHAR(4)"},
                    {"name": "PRICE", "mapping": "$.price", "sqlType": "DOUBLE"},
                ],
            },
            "inputStartingPosition": "TRIM_HORIZON",
        }],
        "outputs": [{
            "name": "DESTINATION_SQL_STREAM",
            "kinesisStreamsOutput": {"resourceRef": {"name": "summaries"}},
            "destinationSchema": {"recordFormatType": "JSON"},
        }],
    }))
    .unwrap();
    let mut a = AnalyticsApp::new(name, spec);
    a.metadata.namespace = Some("default".into());
    a.metadata.uid = Some(format!("uid-{name}"));
    a.metadata.generation = Some(1);
    a.metadata.finalizers = Some(vec![crate::controllers::FINALIZER.into()]);
    a
}

/// A DescribeStreamSummary answer.
pub fn summary(name: &str, shards: i32, status: &str) -> StreamSummary {
    StreamSummary {
        stream_name: name.into(),
        stream_arn: format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}"),
        stream_status: status.into(),
        stream_mode_details: Some(StreamModeDetails {
            stream_mode: "PROVISIONED".into(),
        }),
        retention_period_hours: 24,
        open_shard_count: shards,
        consumer_count: Some(0),
        encryption_type: Some("NONE".into()),
        key_id: None,
        max_record_size_in_kib: None,
    }
}

/// One request the mocked API server received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Content type.
    pub content_type: String,
    /// JSON body (Null when empty).
    pub body: Value,
}

impl Seen {
    /// `METHOD path` without the query string.
    pub fn line(&self) -> String {
        format!(
            "{} {}",
            self.method,
            self.uri.split('?').next().unwrap_or_default()
        )
    }
}

/// A mocked API server (kube-rs `tower-test`): answers every request with `respond` and records
/// it. Tests call the reconciler, then assert the exact sequence of calls.
pub struct ApiServer {
    /// Requests so far.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// The server task (ends with the client).
    _task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// A client talking to a mock that answers with `respond(&seen) -> (status, body)`.
    pub fn start<F>(respond: F) -> (Client, ApiServer)
    where
        F: Fn(&Seen) -> (u16, Value) + Send + 'static,
    {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let method = req.method().to_string();
                let uri = req.uri().to_string();
                let content_type = req
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let bytes = req.into_body().collect().await.unwrap().to_bytes();
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let s = Seen {
                    method,
                    uri,
                    content_type,
                    body,
                };
                let (status, out) = respond(&s);
                log.lock().unwrap().push(s);
                send.send_response(
                    Response::builder()
                        .status(status)
                        .body(Body::from(serde_json::to_vec(&out).unwrap()))
                        .unwrap(),
                );
            }
        });
        (client, ApiServer { seen, _task: task })
    }

    /// `METHOD path` of every request so far.
    pub fn lines(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(Seen::line).collect()
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The usual answer of an API server, for the objects it holds (`(path, object)`):
///
/// - GET: the object, or 404;
/// - PATCH of `.../status`: the object with the patched status;
/// - JSON patches (finalizers): the object;
/// - other PATCH and POST: the body sent, with a resourceVersion.
pub fn echo(objects: Vec<(String, Value)>) -> impl Fn(&Seen) -> (u16, Value) + Send + 'static {
    move |s: &Seen| {
        let path = s.uri.split('?').next().unwrap_or_default();
        let find = |p: &str| objects.iter().find(|(o, _)| o == p).map(|(_, v)| v.clone());
        let not_found = (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
        );
        match s.method.as_str() {
            "GET" => find(path).map(|v| (200, v)).unwrap_or(not_found),
            _ if path.ends_with("/status") => match find(path.trim_end_matches("/status")) {
                Some(mut v) => {
                    v["status"] = s.body["status"].clone();
                    (200, v)
                }
                None => not_found,
            },
            _ if s.body.is_array() => find(path).map(|v| (200, v)).unwrap_or(not_found),
            _ => {
                let mut v = s.body.clone();
                if v.is_object() {
                    v["metadata"]["resourceVersion"] = json!("2");
                }
                (200, v)
            }
        }
    }
}
