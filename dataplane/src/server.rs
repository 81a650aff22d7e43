//! HTTP front door: HTTP/1.1 and h2c (prior knowledge) on one port, the AWS request pipeline
//! (size, CORS, method, content type, target, auth) in AWS's order, and the metrics/health
//! listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::Instrument;

use crate::clock::Clock;
use crate::delivery::DeliveryStreams;
use crate::protocol::error::codes;
use crate::protocol::sigv4::{self, KeyStore};
use crate::protocol::{AwsError, Protocol, Service, Target};
use crate::services::analytics::AnalyticsService;
use crate::services::firehose::Firehose;
use crate::services::kinesis::Kinesis;
use crate::services::Reply;
use crate::streams::Streams;

pub type RespBody = BoxBody<Bytes, Infallible>;

/// Largest request body accepted: a PutRecord of a 10 MiB record, base64-encoded, with room
/// for the envelope. Larger bodies are refused before being read.
pub const MAX_BODY_BYTES: usize = 15 * 1024 * 1024;

/// Most bytes an HTTP/1.1 connection reads ahead of the request it is parsing. A body is copied
/// out of it piece by piece ([`read_body`]), so a bigger buffer only saves read calls (about
/// eleven for a PutRecords body of 500 KiB of records), while each idle connection would keep
/// it (hyper's default is about 400 KiB, 6.5 MiB for 16 connections).
const HTTP1_READ_BUFFER: usize = 64 * 1024;

/// Shared state of the API listener.
pub struct AppState {
    pub kinesis: Kinesis,
    pub firehose: Firehose,
    pub analytics: AnalyticsService,
    pub engine: Arc<Streams>,
    pub auth: Option<KeyStore>,
    pub clock: Clock,
    /// Bytes of request bodies being held at once, in KiB; over it, requests get 503 and
    /// SDKs retry, instead of memory growing with the number of connections.
    pub inflight_kib: Arc<Semaphore>,
    pub test_hooks: bool,
    /// Cluster mode (`--cluster-coordinator`).
    pub cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl AppState {
    pub fn new(
        engine: Arc<Streams>,
        delivery: Arc<DeliveryStreams>,
        analytics: Arc<crate::analytics::Analytics>,
        auth: Option<KeyStore>,
        test_hooks: bool,
    ) -> Arc<AppState> {
        Arc::new(AppState {
            kinesis: Kinesis::new(engine.clone()),
            firehose: Firehose::new(delivery),
            analytics: AnalyticsService::new(analytics),
            clock: engine.clock.clone(),
            engine,
            auth,
            inflight_kib: Arc::new(Semaphore::new(512 * 1024)),
            test_hooks,
            cluster: std::sync::OnceLock::new(),
        })
    }
}

fn full(body: impl Into<Bytes>) -> RespBody {
    Full::new(body.into()).boxed()
}

/// A response body fed from a channel (event streams).
pub struct ChannelBody(mpsc::Receiver<Bytes>);

impl ChannelBody {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> ChannelBody {
        ChannelBody(rx)
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// Response headers every answer carries, as AWS sends them (HTTP/1.1 writes header names in
/// lower case).
static REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-amzn-requestid");
static ID_2: header::HeaderName = header::HeaderName::from_static("x-amz-id-2");

/// A request id in AWS's form: a random UUID in lower-case hex.
fn request_id() -> HeaderValue {
    let text = crate::protocol::types::uuid_text(&rand::random());
    HeaderValue::from_bytes(&text).expect("hex digits and dashes are a valid header value")
}

/// An `x-amz-id-2` value: 72 random bytes in base64, as AWS sends.
fn id_2() -> HeaderValue {
    let mut raw = [0u8; 72];
    rand::Rng::fill(&mut rand::thread_rng(), &mut raw[..]);
    let mut out = [0u8; 96];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(raw, &mut out)
        .expect("72 bytes are 96 base64 characters");
    HeaderValue::from_bytes(&out[..n]).expect("base64 is a valid header value")
}

fn with_ids(mut resp: Response<RespBody>) -> Response<RespBody> {
    let h = resp.headers_mut();
    h.insert(REQUEST_ID.clone(), request_id());
    h.insert(ID_2.clone(), id_2());
    resp
}

fn respond(status: u16, content_type: Option<&'static str>, body: Bytes) -> Response<RespBody> {
    let mut b = Response::builder().status(status);
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b = b.header(header::CONTENT_LENGTH, body.len());
    with_ids(
        b.body(full(body))
            .unwrap_or_else(|_| Response::new(full(Bytes::new()))),
    )
}

pub(crate) fn error_response(e: &AwsError, protocol: Protocol) -> Response<RespBody> {
    let mut r = respond(e.status, Some(protocol.content_type()), e.body(protocol));
    if let Ok(v) = HeaderValue::from_str(e.code) {
        r.headers_mut().insert("x-amzn-ErrorType", v);
    }
    r
}

const ACCESS_DENIED_XML: &str = "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n";

fn cors(resp: &mut Response<RespBody>, preflight: bool, req_headers: &http::HeaderMap) {
    let h = resp.headers_mut();
    h.insert("Access-Control-Allow-Origin", HeaderValue::from_static("*"));
    if preflight {
        h.insert("Access-Control-Max-Age", HeaderValue::from_static("172800"));
        if let Some(v) = req_headers.get("access-control-request-headers") {
            h.insert("Access-Control-Allow-Headers", v.clone());
        }
        if let Some(v) = req_headers.get("access-control-request-method") {
            h.insert("Access-Control-Allow-Methods", v.clone());
        }
    } else {
        h.insert(
            "Access-Control-Expose-Headers",
            HeaderValue::from_static(
                "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date",
            ),
        );
    }
}

/// Handles one API request.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<RespBody> {
    let origin = req.headers().contains_key(header::ORIGIN);
    let req_headers = if origin {
        req.headers().clone()
    } else {
        http::HeaderMap::new()
    };
    let preflight = origin && req.method() == Method::OPTIONS;
    let mut resp = if preflight {
        respond(200, None, Bytes::new())
    } else {
        pipeline(state, req).await
    };
    if origin {
        cors(&mut resp, preflight, &req_headers);
    }
    resp
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]; the error is the status to answer.
///
/// With a declared length, the body is copied into one buffer of that size as it arrives, so
/// each piece the connection read is freed at once: collecting the pieces and joining them
/// afterwards would hold the body twice. A body that arrives in one piece of its declared
/// length is kept as it is.
async fn read_body(body: Incoming, declared: Option<usize>) -> Result<Bytes, u16> {
    let status = |e: Box<dyn std::error::Error + Send + Sync>| {
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            413
        } else {
            400
        }
    };
    let mut body = Limited::new(body, MAX_BODY_BYTES);
    let Some(declared) = declared else {
        return body.collect().await.map(|b| b.to_bytes()).map_err(status);
    };
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(status)?.into_data() else {
            continue;
        };
        if buf.is_empty() && data.len() == declared {
            return Ok(data);
        }
        if buf.capacity() == 0 {
            buf.reserve(declared.max(data.len()));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

async fn pipeline(state: Arc<AppState>, req: Request<Incoming>) -> Response<RespBody> {
    let started = Instant::now();
    if let Some(cluster) = state.cluster.get() {
        if req.uri().path().starts_with("/_tributary/cluster/") {
            return crate::cluster::http::internal(cluster, req).await;
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return respond(413, None, Bytes::new());
    }
    if req.method() != Method::POST {
        return respond(403, None, Bytes::from_static(ACCESS_DENIED_XML.as_bytes()));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let protocol = Protocol::from_content_type(&content_type);
    let target_header = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let target = Target::parse(&target_header).filter(|t| match t.service {
        Service::Kinesis => crate::services::kinesis::OPERATIONS.contains(&t.operation),
        Service::Firehose => crate::services::firehose::OPERATIONS.contains(&t.operation),
        Service::KinesisAnalytics => crate::services::analytics::OPERATIONS.contains(&t.operation),
    });

    // Hold a share of the in-flight budget while the body is read and handled.
    let kib = (declared.unwrap_or(64 * 1024) / 1024).max(1) as u32;
    let permit = match state.inflight_kib.clone().try_acquire_many_owned(kib) {
        Ok(p) => p,
        // Under pressure, wait a little for room before answering 503.
        Err(_) => match tokio::time::timeout(
            Duration::from_secs(2),
            state.inflight_kib.clone().acquire_many_owned(kib),
        )
        .await
        {
            Ok(Ok(p)) => p,
            _ => {
                return error_response(&AwsError::unavailable(), protocol.unwrap_or(Protocol::Json))
            }
        },
    };
    let (parts, body) = req.into_parts();
    let mut body = match read_body(body, declared).await {
        Ok(b) => b,
        Err(status) => return respond(status, None, Bytes::new()),
    };

    // An empty body is reported before the content type and auth are looked at.
    if body.is_empty() {
        let reply_protocol = if protocol == Some(Protocol::Json) {
            Protocol::Json
        } else {
            Protocol::Cbor
        };
        let code = if target.is_some() {
            codes::SERIALIZATION
        } else {
            codes::UNKNOWN_OPERATION
        };
        return error_response(&AwsError::new(code, ""), reply_protocol);
    }
    let Some(protocol) = protocol else {
        let ct = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if ct == "application/json" {
            let json = serde_json::from_slice::<serde_json::Value>(&body);
            let name = if json.as_ref().is_ok_and(|v| v.is_object()) {
                "UnknownOperationException"
            } else {
                "SerializationException"
            };
            let status = if name == "SerializationException" {
                400
            } else {
                404
            };
            let envelope = format!(
                "{{\"Output\":{{\"__type\":\"com.amazon.coral.service#{name}\"}},\"Version\":\"1.0\"}}"
            );
            return respond(status, Some("application/json"), Bytes::from(envelope));
        }
        let has_op = target_header
            .split_once('.')
            .is_some_and(|(s, o)| !s.is_empty() && !o.is_empty());
        return if has_op {
            respond(
                404,
                None,
                Bytes::from_static(b"<UnknownOperationException/>\n"),
            )
        } else {
            respond(403, None, Bytes::from_static(ACCESS_DENIED_XML.as_bytes()))
        };
    };
    let Some(target) = target else {
        return error_response(&AwsError::new(codes::UNKNOWN_OPERATION, ""), protocol);
    };
    if let Some(keys) = &state.auth {
        let now =
            SystemTime::UNIX_EPOCH + Duration::from_millis(state.clock.now_ms().max(0) as u64);
        if let Err(e) = sigv4::verify(&parts, &body, keys, now) {
            let err = AwsError::new(e.error_type(), e.message()).with_status(e.status());
            return error_response(&err, protocol);
        }
    }

    let operation = target.operation.to_string();
    let service = target.service;
    // Cluster mode: delivery streams and analytics applications live on the coordinator;
    // every call for them made to another pod is served there.
    let mut permit = permit;
    if let Some(cluster) = state.cluster.get().filter(|_| service != Service::Kinesis) {
        match forward_application_call(cluster, &state, permit, &parts, &body, protocol).await {
            Ok(resp) => return resp,
            Err(p) => permit = p,
        }
    }
    // Cluster mode: a request from another pod carries the token and is served here; a
    // client's control-plane call goes to the coordinator.
    let cluster = state.cluster.get().filter(|_| service == Service::Kinesis);
    let mut forwarded = false;
    if let Some(cluster) = cluster {
        match crate::cluster::http::token_status(&cluster.cfg, &parts.headers) {
            Some(false) => return crate::cluster::http::access_denied(protocol),
            Some(true) => forwarded = true,
            None => {}
        }
        if forwarded && !cluster.is_coordinator() && is_control_plane(&operation) {
            return misrouted(&parts, protocol);
        }
        if !forwarded && !cluster.is_coordinator() && is_control_plane(&operation) {
            let budget = crate::cluster::http::Budget {
                inflight: state.inflight_kib.clone(),
                permit,
            };
            return match cluster.forward(0, &parts, body, budget).await {
                Ok((resp, version)) => {
                    if let Some(v) = version {
                        cluster.wait_for_version(v).await;
                    }
                    resp
                }
                Err(crate::cluster::http::ForwardError::Overloaded) => {
                    error_response(&AwsError::unavailable(), protocol)
                }
                Err(e) => {
                    tracing::warn!(error = %e, operation = %operation, "Could not reach the cluster coordinator.");
                    error_response(&AwsError::unavailable(), protocol)
                }
            };
        }
    }
    let span = tracing::debug_span!("request", operation = %operation);
    let result = match service {
        Service::KinesisAnalytics => {
            state
                .analytics
                .call(&operation, protocol, &body)
                .instrument(span)
                .await
        }
        Service::Firehose => {
            state
                .firehose
                .call(&operation, protocol, &body)
                .instrument(span)
                .await
        }
        _ => {
            // Outside cluster mode nothing needs the body once the call has decoded it, and a
            // write frees it before waiting to be durable; in cluster mode it is kept to
            // forward the call to the shard's owner.
            let body = if cluster.is_some() {
                body.clone()
            } else {
                std::mem::take(&mut body)
            };
            state
                .kinesis
                .call(&operation, protocol, body)
                .instrument(span)
                .await
        }
    };
    if let (Some(cluster), Err(e)) = (cluster, &result) {
        if let Some(owner) = crate::streams::errors::not_local_owner(e) {
            if forwarded {
                // The sender's view is newer than ours; it retries.
                return error_response(&AwsError::internal(""), protocol);
            }
            // The request keeps its share of the in-flight budget while forwarded, and the
            // answer is charged too until it has been sent.
            let budget = crate::cluster::http::Budget {
                inflight: state.inflight_kib.clone(),
                permit,
            };
            return match cluster.forward(owner, &parts, body, budget).await {
                Ok((resp, _)) => resp,
                Err(crate::cluster::http::ForwardError::Overloaded) => {
                    error_response(&AwsError::unavailable(), protocol)
                }
                Err(e) => {
                    tracing::warn!(error = %e, operation = %operation, owner, "Could not reach the shard's owner.");
                    error_response(&AwsError::internal(""), protocol)
                }
            };
        }
    }
    drop(body);
    // The coordinator answers a control-plane call once live members have its result.
    let cluster_version = match cluster {
        Some(c) if c.is_coordinator() && is_control_plane(&operation) => {
            if is_read_only(&operation) {
                Some(c.version())
            } else {
                Some(c.publish_and_wait().await)
            }
        }
        _ => None,
    };
    let add_version = |mut resp: Response<RespBody>| {
        if let Some(v) = cluster_version {
            resp.headers_mut()
                .insert(crate::cluster::VERSION_HEADER, HeaderValue::from(v));
        }
        resp
    };
    let elapsed = started.elapsed().as_secs_f64();
    let m = crate::metrics::global();
    if service == Service::Firehose {
        let outcome = match &result {
            Ok(_) => "success",
            Err(e) if e.status >= 500 => "server_error",
            Err(e)
                if e.code == crate::services::firehose::errors::LIMIT_EXCEEDED
                    || e.code == crate::services::firehose::errors::THROTTLING =>
            {
                "throttled"
            }
            Err(_) => "client_error",
        };
        m.firehose
            .requests
            .with_label_values(&[&operation, outcome])
            .inc();
        return match result {
            Ok(crate::services::Reply::Body(out)) => {
                drop(permit);
                respond(200, Some(protocol.content_type()), out)
            }
            Ok(crate::services::Reply::EventStream(_)) => {
                drop(permit);
                error_response(&AwsError::internal(""), protocol)
            }
            Err(e) => {
                drop(permit);
                tracing::debug!(operation = %operation, code = e.code, message = %e.message, "Request failed.");
                error_response(&e, protocol)
            }
        };
    }
    match result {
        Ok(Reply::Body(out)) => {
            drop(permit);
            m.request(&operation, "success", elapsed);
            add_version(respond(200, Some(protocol.content_type()), out))
        }
        Ok(Reply::EventStream(rx)) => {
            drop(permit);
            m.request(&operation, "success", elapsed);
            let resp = Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")
                .body(ChannelBody(rx).boxed())
                .unwrap_or_else(|_| Response::new(full(Bytes::new())));
            with_ids(resp)
        }
        Err(e) => {
            drop(permit);
            let outcome = match e.status {
                500.. => "server_error",
                _ if e.code == crate::streams::errors::THROUGHPUT_EXCEEDED
                    || e.code == crate::streams::errors::LIMIT_EXCEEDED =>
                {
                    "throttled"
                }
                _ => "client_error",
            };
            m.request(&operation, outcome, elapsed);
            tracing::debug!(operation = %operation, code = e.code, message = %e.message, "Request failed.");
            add_version(error_response(&e, protocol))
        }
    }
}

/// In cluster mode, a Firehose or Kinesis Analytics call: a client's call to a pod other
/// than the coordinator is forwarded to the coordinator and its answer returned; `None`
/// when this pod serves it (the coordinator, or a call another pod forwarded here): the
/// request's share of the in-flight budget is handed back then.
async fn forward_application_call(
    cluster: &Arc<crate::cluster::Cluster>,
    state: &AppState,
    permit: tokio::sync::OwnedSemaphorePermit,
    parts: &http::request::Parts,
    body: &Bytes,
    protocol: Protocol,
) -> Result<Response<RespBody>, tokio::sync::OwnedSemaphorePermit> {
    match crate::cluster::http::token_status(&cluster.cfg, &parts.headers) {
        Some(false) => return Ok(crate::cluster::http::access_denied(protocol)),
        Some(true) if !cluster.is_coordinator() => {
            return Ok(misrouted(parts, protocol));
        }
        Some(true) => return Err(permit),
        None if cluster.is_coordinator() => return Err(permit),
        None => {}
    }
    let budget = crate::cluster::http::Budget {
        inflight: state.inflight_kib.clone(),
        permit,
    };
    Ok(
        match cluster.forward(0, parts, body.clone(), budget).await {
            Ok((resp, _)) => resp,
            Err(e) => {
                if matches!(e, crate::cluster::http::ForwardError::Failed(_)) {
                    tracing::warn!(error = %e, "Could not reach the cluster coordinator.");
                }
                error_response(&AwsError::unavailable(), protocol)
            }
        },
    )
}

/// A call only the coordinator runs, forwarded by a peer to this member (a peer whose
/// `--cluster-coordinator` names the wrong pod): refused, never run on this pod's replica.
fn misrouted(parts: &http::request::Parts, protocol: Protocol) -> Response<RespBody> {
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::error!(target, "A peer forwarded a coordinator's call to this member; check --cluster-coordinator on every pod.");
    error_response(&AwsError::unavailable(), protocol)
}

/// Kinesis control-plane operations that change nothing (their answers need no publication).
fn is_read_only(operation: &str) -> bool {
    ["Describe", "List", "Get"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// Kinesis operations the coordinator runs (everything but reading and writing records).
fn is_control_plane(operation: &str) -> bool {
    !matches!(
        operation,
        "PutRecord" | "PutRecords" | "GetRecords" | "GetShardIterator" | "SubscribeToShard"
    )
}

/// Serves `listener` (over TLS when `tls` is given) until `shutdown` turns true, then waits
/// (bounded) for open connections.
pub async fn serve_api(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .max_buf_size(HTTP1_READ_BUFFER)
        .http2()
        .max_concurrent_streams(1000);
    let builder = Arc::new(builder);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                if state.cluster.get().is_some() {
                    keep_alive(&stream);
                }
                let state = state.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(state, req).await) }
                });
                match &tls {
                    None => {
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                        let conn = graceful.watch(conn.into_owned());
                        tokio::spawn(async move {
                            let _ = conn.await;
                        });
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        let builder = builder.clone();
                        let watcher = graceful.watcher();
                        tokio::spawn(async move {
                            let Ok(Ok(tls_stream)) = tokio::time::timeout(
                                Duration::from_secs(10),
                                acceptor.accept(stream),
                            )
                            .await
                            else {
                                return;
                            };
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), svc);
                            let _ = watcher.watch(conn.into_owned()).await;
                        });
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}

/// The metrics and health listener: `/metrics`, `/healthz`, `/readyz`, and test hooks.
pub async fn serve_metrics(
    listener: TcpListener,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(admin(state, req).await) }
                });
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// Cluster mode: TCP keepalive on the API port's connections, so a member that vanished
/// without closing its connection (its node gone, a partition) is found out within about 5 s:
/// its metadata long poll is then dropped and it stops counting as live. Probes flow only on
/// connections idle for 2 s, one small packet each 2 s.
fn keep_alive(stream: &tokio::net::TcpStream) {
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(2))
        .with_interval(Duration::from_secs(1))
        .with_retries(2);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "Could not turn TCP keepalive on.");
    }
}

async fn admin(state: Arc<AppState>, req: Request<Incoming>) -> Response<RespBody> {
    let text = |status: StatusCode, body: &str| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(full(Bytes::from(body.to_string())))
            .unwrap_or_else(|_| Response::new(full(Bytes::new())))
    };
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/metrics") => Response::builder()
            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(full(Bytes::from(crate::metrics::global().render())))
            .unwrap_or_else(|_| Response::new(full(Bytes::new()))),
        (Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (Method::GET, "/cluster") => match state.cluster.get() {
            Some(c) => Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(full(Bytes::from(c.view_json().to_string())))
                .unwrap_or_else(|_| Response::new(full(Bytes::new()))),
            None => text(StatusCode::NOT_FOUND, "not in cluster mode\n"),
        },
        (Method::GET, "/readyz") => match state.cluster.get() {
            Some(c) if !c.is_ready() => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "waiting for the cluster coordinator's metadata\n",
            ),
            _ => text(StatusCode::OK, "ready\n"),
        },
        // Test hooks: move the clock forward and run retention, so tests need not wait hours.
        (Method::POST, "/test/advance-clock") if state.test_hooks => {
            let ms = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            state.clock.advance(ms);
            state.engine.enforce_retention().await;
            text(StatusCode::OK, "ok\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Addresses the server ended up listening on.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub api: SocketAddr,
    pub metrics: SocketAddr,
    pub tls: Option<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every answer carries a fresh request id in AWS's UUID form and a 72-byte `x-amz-id-2`.
    #[test]
    fn answers_carry_a_uuid_request_id_and_an_id_2() {
        let a = respond(200, None, Bytes::new());
        let b = respond(400, None, Bytes::new());
        let id = a.headers()["x-amzn-RequestId"].to_str().unwrap();
        assert_eq!(id.len(), 36, "{id}");
        for (i, c) in id.chars().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                assert_eq!(c, '-', "{id}");
            } else {
                assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{id}");
            }
        }
        assert_ne!(id, b.headers()["x-amzn-requestid"].to_str().unwrap());
        let id2 = a.headers()["x-amz-id-2"].to_str().unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(id2)
            .unwrap();
        assert_eq!(raw.len(), 72);
        assert_ne!(id2, b.headers()["x-amz-id-2"].to_str().unwrap());
    }

    /// A member vanished without closing its connection is found out within seconds.
    #[tokio::test]
    async fn cluster_connections_are_probed_for_dead_peers() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        keep_alive(&accepted);
        let sock = socket2::SockRef::from(&accepted);
        assert!(sock.keepalive().unwrap());
        let detect = sock.tcp_keepalive_time().unwrap()
            + sock.tcp_keepalive_interval().unwrap() * sock.tcp_keepalive_retries().unwrap();
        assert!(detect <= Duration::from_secs(5), "{detect:?}");
    }
}
