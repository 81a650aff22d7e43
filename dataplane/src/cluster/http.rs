//! The cluster's HTTP: internal endpoints (`/_tributary/cluster/...` on the API port), the
//! client pods use to call each other, and forwarding of Kinesis requests to another pod.

mod reads;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use ciborium::Value as Cbor;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::{Cluster, ClusterConfig, Snapshot, TOKEN_HEADER, VERSION_HEADER};
use crate::protocol::error::codes;
use crate::protocol::{AwsError, Protocol};
use crate::server::{ChannelBody, RespBody};
use crate::storage::RecordIn;
use crate::streams::placement::AppendFailure;

/// Internal calls answer within this long (a long poll within its wait plus this).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest internal or forwarded answer read whole (a GetRecords answer is at most 10 MiB of
/// data, base64-encoded).
const MAX_ANSWER: usize = 32 * 1024 * 1024;
/// Largest internal request body (an append carries at most a PutRecords' worth).
const MAX_INTERNAL_BODY: usize = 16 * 1024 * 1024;

/// Headers that belong to one connection and are not forwarded (`expect` was answered by
/// this pod's server already).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "expect",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// Whether `got` is the cluster secret (compared in constant time).
pub fn token_matches(secret: &str, got: &[u8]) -> bool {
    let want = secret.as_bytes();
    if want.len() != got.len() {
        return false;
    }
    want.iter().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The token a request carries: `None` without the header, else whether it is right.
pub fn token_status(cfg: &ClusterConfig, headers: &HeaderMap) -> Option<bool> {
    headers
        .get(TOKEN_HEADER)
        .map(|v| token_matches(&cfg.secret, v.as_bytes()))
}

fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<RespBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body.into()).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

/// The answer to an internal call or forwarded request without the right token, in the
/// request's protocol (internal calls speak JSON) with a request id, like any error.
pub fn access_denied(protocol: Protocol) -> Response<RespBody> {
    crate::server::error_response(
        &AwsError::new(codes::ACCESS_DENIED, "Missing or invalid cluster token.").with_status(403),
        protocol,
    )
}

fn error(status: StatusCode, message: &str) -> Response<RespBody> {
    json_response(
        status,
        serde_json::json!({ "message": message }).to_string(),
    )
}

#[derive(Serialize, Deserialize)]
struct JoinBody {
    ordinal: u32,
    url: String,
    /// The cluster the member's data belongs to, once it has joined one.
    #[serde(rename = "clusterId", default, skip_serializing_if = "Option::is_none")]
    cluster_id: Option<String>,
}

/// The coordinator's answer to a join (also to one it refused as another cluster's member).
#[derive(Deserialize)]
struct JoinOut {
    #[serde(rename = "clusterId", default)]
    cluster_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SealBody {
    incarnation: u64,
    shard: u32,
}

#[derive(Serialize, Deserialize)]
struct SealOut {
    end: u64,
}

/// Serves `/_tributary/cluster/{join,state,load,append,seal,read}`.
pub async fn internal(
    cluster: &std::sync::Arc<Cluster>,
    req: Request<Incoming>,
) -> Response<RespBody> {
    if token_status(&cluster.cfg, req.headers()) != Some(true) {
        return access_denied(Protocol::Json);
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let body = match Limited::new(req.into_body(), MAX_INTERNAL_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
    };
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<u64>().ok())
    };
    match (method, path.trim_start_matches("/_tributary/cluster/")) {
        (Method::POST, "join") if cluster.is_coordinator() => {
            let Ok(j) = serde_json::from_slice::<JoinBody>(&body) else {
                return error(StatusCode::BAD_REQUEST, "malformed join");
            };
            // A member of another cluster is not counted in (it refuses this metadata).
            let own = cluster.cluster_id();
            if j.cluster_id.is_some() && j.cluster_id != own {
                tracing::error!(ordinal = j.ordinal, member_cluster = ?j.cluster_id, cluster = ?own, "A member of another cluster tried to join.");
                return json_response(
                    StatusCode::CONFLICT,
                    serde_json::json!({
                        "message": "the member belongs to another cluster",
                        "clusterId": own,
                    })
                    .to_string(),
                );
            }
            match cluster.join(j.ordinal, j.url) {
                Ok(()) => json_response(
                    StatusCode::OK,
                    serde_json::json!({
                        "version": cluster.version(),
                        "clusterId": cluster.cluster_id(),
                    })
                    .to_string(),
                ),
                Err(e) => error(StatusCode::BAD_REQUEST, &e),
            }
        }
        (Method::GET, "state") if cluster.is_coordinator() => {
            let Some(after) = param("after") else {
                return error(StatusCode::BAD_REQUEST, "after is required");
            };
            let ordinal = param("ordinal").and_then(|o| u32::try_from(o).ok());
            match cluster.state(ordinal, after).await {
                Some(body) => json_response(StatusCode::OK, body),
                None => error(StatusCode::CONFLICT, "join first"),
            }
        }
        (Method::POST, "load") if cluster.is_coordinator() => match cluster.record_load(&body) {
            Ok(()) => json_response(StatusCode::OK, "{}"),
            Err(e) => error(StatusCode::CONFLICT, &e),
        },
        (Method::POST, "append") => append(cluster, &body).await,
        (Method::POST, "seal") => {
            let Ok(s) = serde_json::from_slice::<SealBody>(&body) else {
                return error(StatusCode::BAD_REQUEST, "malformed seal");
            };
            match cluster.engine.seal_local(s.incarnation, s.shard).await {
                Ok(end) => json_response(
                    StatusCode::OK,
                    serde_json::to_vec(&SealOut { end }).unwrap_or_default(),
                ),
                Err(e) => error(StatusCode::CONFLICT, &e.message),
            }
        }
        (Method::POST, "read") => reads::serve(cluster, &body).await,
        _ => error(StatusCode::NOT_FOUND, "no such cluster endpoint"),
    }
}

/// Append request (CBOR): `[incarnation, shard, flags, [[key, data], ...]]`.
fn encode_append(incarnation: u64, shard: u32, flags: u8, records: Vec<RecordIn>) -> Vec<u8> {
    let records = records
        .into_iter()
        .map(|r| {
            Cbor::Array(vec![
                Cbor::Bytes(r.partition_key.to_vec()),
                Cbor::Bytes(r.data.to_vec()),
            ])
        })
        .collect();
    let v = Cbor::Array(vec![
        Cbor::Integer(incarnation.into()),
        Cbor::Integer(shard.into()),
        Cbor::Integer(flags.into()),
        Cbor::Array(records),
    ]);
    let mut out = Vec::new();
    let _ = ciborium::into_writer(&v, &mut out);
    out
}

fn decode_append(raw: &[u8]) -> Option<(u64, u32, u8, Vec<RecordIn>)> {
    let v: Cbor = ciborium::from_reader(raw).ok()?;
    let Cbor::Array(parts) = v else { return None };
    let [inc, shard, flags, Cbor::Array(records)] = parts.as_slice() else {
        return None;
    };
    let int = |v: &Cbor| -> Option<u64> { u64::try_from(v.as_integer()?).ok() };
    let records = records
        .iter()
        .map(|r| {
            let Cbor::Array(kv) = r else { return None };
            let [Cbor::Bytes(k), Cbor::Bytes(d)] = kv.as_slice() else {
                return None;
            };
            Some(RecordIn {
                partition_key: Bytes::copy_from_slice(k),
                data: Bytes::copy_from_slice(d),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((
        int(inc)?,
        u32::try_from(int(shard)?).ok()?,
        u8::try_from(int(flags)?).ok()?,
        records,
    ))
}

/// The owner's side of an append: 200 with each record's offset (null when over the write
/// limit), 409 when the writer should route again, 500 when the write failed.
async fn append(cluster: &Cluster, body: &[u8]) -> Response<RespBody> {
    let Some((incarnation, index, flags, records)) = decode_append(body) else {
        return error(StatusCode::BAD_REQUEST, "malformed append");
    };
    let engine = &cluster.engine;
    let Some(stream) = engine.by_incarnation(incarnation) else {
        return error(StatusCode::CONFLICT, "unknown stream");
    };
    let Some(shard) = stream.shard(index) else {
        return error(StatusCode::CONFLICT, "unknown shard");
    };
    match engine.append_local(&stream, &shard, records, flags).await {
        Ok(offsets) => {
            let v = Cbor::Array(
                offsets
                    .into_iter()
                    .map(|o| o.map_or(Cbor::Null, |o| Cbor::Integer(o.into())))
                    .collect(),
            );
            let mut out = Vec::new();
            let _ = ciborium::into_writer(&v, &mut out);
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/cbor")
                .body(Full::new(Bytes::from(out)).boxed())
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
        }
        Err(AppendFailure::Retry) => error(StatusCode::CONFLICT, "shard is not writable here"),
        Err(AppendFailure::Failed) => error(StatusCode::INTERNAL_SERVER_ERROR, "write failed"),
    }
}

/// A failed internal call; `sent` when the request may have reached the other pod.
struct CallError {
    message: String,
    sent: bool,
}

/// Pooled HTTP/1.1 client between pods (`http://` and `https://`).
#[derive(Clone)]
pub struct Client {
    inner: crate::delivery::client::Pooled,
}

impl Client {
    pub fn new() -> Client {
        Client {
            inner: crate::delivery::client::pooled(Duration::from_secs(5)),
        }
    }

    pub(super) async fn call(
        &self,
        method: Method,
        url: String,
        token: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), String> {
        self.call_checked(method, url, token, body, timeout)
            .await
            .map_err(|e| e.message)
    }

    /// [`Client::call`], telling a request that never left (no connection) from one whose
    /// fate is unknown.
    async fn call_checked(
        &self,
        method: Method,
        url: String,
        token: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), CallError> {
        let failed = |message: String, sent: bool| CallError { message, sent };
        let req = Request::builder()
            .method(method)
            .uri(&url)
            .header(TOKEN_HEADER, token)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Full::new(body))
            .map_err(|e| failed(e.to_string(), false))?;
        let call = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| failed(format!("{url}: {e}"), !e.is_connect()))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| failed(format!("{url}: {e}"), true))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| failed(format!("{url}: no answer in time"), true))?
    }

    /// Joins the coordinator, as a member of cluster `cluster_id` if it has joined one;
    /// answers the coordinator's cluster id (`None` from an earlier release). A coordinator of
    /// another cluster refuses the join and answers its id too, for the caller to refuse.
    pub async fn join(
        &self,
        cfg: &ClusterConfig,
        ordinal: u32,
        url: &str,
        cluster_id: Option<String>,
    ) -> Result<Option<String>, String> {
        let body = serde_json::to_vec(&JoinBody {
            ordinal,
            url: url.to_string(),
            cluster_id,
        })
        .unwrap_or_default();
        let (status, answer) = self
            .call(
                Method::POST,
                format!(
                    "{}/_tributary/cluster/join",
                    cfg.coordinator.trim_end_matches('/')
                ),
                &cfg.secret,
                Bytes::from(body),
                CALL_TIMEOUT,
            )
            .await?;
        if status == StatusCode::CONFLICT {
            if let Ok(JoinOut {
                cluster_id: Some(id),
            }) = serde_json::from_slice::<JoinOut>(&answer)
            {
                return Ok(Some(id));
            }
        }
        if !status.is_success() {
            return Err(format!(
                "join refused ({status}): {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        serde_json::from_slice::<JoinOut>(&answer)
            .map(|j| j.cluster_id)
            .map_err(|e| format!("malformed join answer: {e}"))
    }

    pub async fn state(
        &self,
        cfg: &ClusterConfig,
        ordinal: u32,
        after: u64,
    ) -> Result<Snapshot, String> {
        let (status, answer) = self
            .call(
                Method::GET,
                format!(
                    "{}/_tributary/cluster/state?after={after}&ordinal={ordinal}",
                    cfg.coordinator.trim_end_matches('/')
                ),
                &cfg.secret,
                Bytes::new(),
                super::POLL_WAIT + CALL_TIMEOUT,
            )
            .await?;
        if !status.is_success() {
            return Err(format!(
                "metadata poll refused ({status}): {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        serde_json::from_slice(&answer).map_err(|e| format!("malformed metadata: {e}"))
    }

    pub async fn append(
        &self,
        url: &str,
        token: &str,
        incarnation: u64,
        shard: u32,
        flags: u8,
        records: Vec<RecordIn>,
    ) -> Result<Vec<Option<u64>>, AppendFailure> {
        let n = records.len();
        let body = encode_append(incarnation, shard, flags, records);
        let result = self
            .call_checked(
                Method::POST,
                format!("{}/_tributary/cluster/append", url.trim_end_matches('/')),
                token,
                Bytes::from(body),
                CALL_TIMEOUT,
            )
            .await;
        let (status, answer) = match result {
            Ok(r) => r,
            // The owner is restarting or unreachable: try again for a while.
            Err(e) if !e.sent => {
                tracing::debug!(error = %e.message, "Could not reach the shard's owner.");
                return Err(AppendFailure::Retry);
            }
            // The owner may have written the records: sending them again could store them
            // twice, so they fail and the producer decides.
            Err(e) => {
                tracing::warn!(error = %e.message, "An append to the shard's owner got no answer.");
                return Err(AppendFailure::Failed);
            }
        };
        match status {
            StatusCode::OK => {
                let v: Cbor =
                    ciborium::from_reader(&answer[..]).map_err(|_| AppendFailure::Failed)?;
                let Cbor::Array(items) = v else {
                    return Err(AppendFailure::Failed);
                };
                let offsets: Vec<Option<u64>> = items
                    .iter()
                    .map(|i| i.as_integer().and_then(|i| u64::try_from(i).ok()))
                    .collect();
                if offsets.len() != n {
                    return Err(AppendFailure::Failed);
                }
                Ok(offsets)
            }
            StatusCode::CONFLICT => Err(AppendFailure::Retry),
            // Without the token the owner refuses: a misconfigured secret is not retried.
            StatusCode::FORBIDDEN => Err(AppendFailure::Failed),
            s if s.is_server_error() => Err(AppendFailure::Failed),
            _ => Err(AppendFailure::Failed),
        }
    }

    pub async fn seal(
        &self,
        url: &str,
        token: &str,
        incarnation: u64,
        shard: u32,
        timeout: Duration,
    ) -> Result<u64, String> {
        let body = serde_json::to_vec(&SealBody { incarnation, shard }).unwrap_or_default();
        let (status, answer) = self
            .call(
                Method::POST,
                format!("{}/_tributary/cluster/seal", url.trim_end_matches('/')),
                token,
                Bytes::from(body),
                timeout.min(CALL_TIMEOUT),
            )
            .await?;
        if !status.is_success() {
            return Err(format!(
                "seal refused ({status}): {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        serde_json::from_slice::<SealOut>(&answer)
            .map(|s| s.end)
            .map_err(|e| format!("malformed seal answer: {e}"))
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// A forwarded call's whole time, answer's body included (except an event stream's): below
/// the SDKs' 60 s read timeout, so a client hears of a hung pod before it gives up itself.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a forwarded answer waits for room in the in-flight budget before the call is
/// answered as overloaded (the same wait as a request's).
const BUDGET_WAIT: Duration = Duration::from_secs(2);
/// What a forwarded answer without a length is charged.
const UNSIZED_ANSWER: usize = 1024 * 1024;

/// A forward that failed.
#[derive(Debug)]
pub enum ForwardError {
    /// The other pod could not be reached, or did not answer in time.
    Failed(String),
    /// The answer did not fit in this pod's in-flight budget (answered `ServiceUnavailable`).
    Overloaded,
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardError::Failed(e) => f.write_str(e),
            ForwardError::Overloaded => f.write_str("no room in the in-flight budget"),
        }
    }
}

/// The in-flight budget (KiB) of the server forwarding a call, and the share its request holds.
pub struct Budget {
    pub inflight: Arc<Semaphore>,
    pub permit: OwnedSemaphorePermit,
}

/// A forwarded answer's body, streamed through: it holds the request's and the answer's share
/// of the in-flight budget until it is sent (or dropped), and ends (cut short) at the forward's
/// deadline.
struct ForwardedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    from: String,
    done: bool,
    held: Vec<OwnedSemaphorePermit>,
}

impl hyper::body::Body for ForwardedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        // Cut short, the answer is shorter than its length: the client's connection is closed
        // and the SDK retries.
        if this.deadline.as_mut().poll(cx).is_ready() {
            tracing::warn!(from = %this.from, "A forwarded answer did not arrive in time.");
            this.done = true;
            this.held.clear();
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(from = %this.from, error = %e, "A forwarded answer broke off.");
                this.done = true;
                this.held.clear();
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                this.done = true;
                this.held.clear();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Cluster {
    /// Sends a Kinesis request as received (same target, body and headers, SigV4 included)
    /// to the pod with ordinal `to`, adding the cluster token so it is not forwarded again.
    /// The answer comes back as is, streamed through: its size is charged to this pod's
    /// in-flight budget (with the request's share) until it is sent, and it must arrive within
    /// [`FORWARD_TIMEOUT`], except an event stream's body. The second value is the
    /// coordinator's metadata version, when the answer carries it.
    pub async fn forward(
        &self,
        to: u32,
        parts: &http::request::Parts,
        body: Bytes,
        budget: Budget,
    ) -> Result<(Response<RespBody>, Option<u64>), ForwardError> {
        let deadline = tokio::time::Instant::now() + self.forward_timeout;
        let failed = ForwardError::Failed;
        let base = self
            .url_of(to)
            .ok_or_else(|| failed(format!("member {to} is unknown")))?;
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut req = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path}", base.trim_end_matches('/')));
        let headers = req
            .headers_mut()
            .ok_or_else(|| failed("bad request".into()))?;
        for (name, value) in parts.headers.iter() {
            if HOP_BY_HOP.contains(&name.as_str()) || name.as_str() == TOKEN_HEADER {
                continue;
            }
            headers.append(name.clone(), value.clone());
        }
        // HTTP/2 requests carry the host as the URI's authority; SigV4 signed it as `host`.
        if !headers.contains_key(header::HOST) {
            if let Some(a) = parts.uri.authority() {
                if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                    headers.insert(header::HOST, v);
                }
            }
        }
        headers.insert(
            TOKEN_HEADER,
            HeaderValue::from_str(&self.cfg.secret).map_err(|e| failed(e.to_string()))?,
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let req = req
            .body(Full::new(body))
            .map_err(|e| failed(e.to_string()))?;
        let resp = tokio::time::timeout_at(deadline, self.client.inner.request(req))
            .await
            .map_err(|_| failed(format!("{base}: no answer in time")))?
            .map_err(|e| failed(format!("{base}: {e}")))?;
        let (rparts, rbody) = resp.into_parts();
        let version = rparts
            .headers
            .get(VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let streaming = rparts.headers.get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/vnd.amazon.eventstream")
        });
        let mut out = Response::builder().status(rparts.status);
        for (name, value) in rparts.headers.iter() {
            if HOP_BY_HOP.contains(&name.as_str()) || (streaming && name == header::CONTENT_LENGTH)
            {
                continue;
            }
            out = out.header(name, value);
        }
        let body: RespBody = if streaming {
            // An event stream lasts as long as the subscription; like a local one it holds no
            // share of the budget.
            drop(budget);
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                let mut rbody = rbody;
                while let Some(frame) = rbody.frame().await {
                    let Ok(frame) = frame else { break };
                    if let Ok(data) = frame.into_data() {
                        if tx.send(data).await.is_err() {
                            break;
                        }
                    }
                }
            });
            ChannelBody::new(rx).boxed()
        } else {
            let size = rparts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(UNSIZED_ANSWER)
                .min(MAX_ANSWER);
            let kib = (size / 1024).max(1) as u32;
            let charge = match budget.inflight.clone().try_acquire_many_owned(kib) {
                Ok(p) => p,
                Err(_) => {
                    let wait = deadline.min(tokio::time::Instant::now() + BUDGET_WAIT);
                    match tokio::time::timeout_at(
                        wait,
                        budget.inflight.clone().acquire_many_owned(kib),
                    )
                    .await
                    {
                        Ok(Ok(p)) => p,
                        _ => return Err(ForwardError::Overloaded),
                    }
                }
            };
            ForwardedBody {
                inner: rbody,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                from: base,
                done: false,
                held: vec![budget.permit, charge],
            }
            .boxed()
        };
        let resp = out.body(body).map_err(|e| failed(e.to_string()))?;
        Ok((resp, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_round_trip() {
        let records = vec![
            RecordIn {
                partition_key: Bytes::from_static(b"k1"),
                data: Bytes::from_static(b"\x00\x01data"),
            },
            RecordIn {
                partition_key: Bytes::from_static(b"k2"),
                data: Bytes::new(),
            },
        ];
        let raw = encode_append(u64::MAX - 3, 7, 1, records);
        let (inc, shard, flags, back) = decode_append(&raw).expect("decodes");
        assert_eq!((inc, shard, flags), (u64::MAX - 3, 7, 1));
        assert_eq!(back.len(), 2);
        assert_eq!(&back[0].data[..], b"\x00\x01data");
        assert_eq!(&back[1].partition_key[..], b"k2");
        assert!(decode_append(b"garbage").is_none());
    }

    #[test]
    fn tokens_must_match_exactly() {
        assert!(token_matches("secret", b"secret"));
        assert!(!token_matches("secret", b"secreT"));
        assert!(!token_matches("secret", b"secre"));
        assert!(!token_matches("secret", b""));
    }

    async fn coordinator(member: &str, timeout: Option<Duration>) -> std::sync::Arc<Cluster> {
        let engine = crate::streams::Streams::open(
            crate::streams::StreamsConfig {
                cluster_ordinal: Some(0),
                iterator_key: Some([7; 32]),
                ..Default::default()
            },
            crate::clock::Clock::default(),
        )
        .await
        .unwrap();
        let cfg = ClusterConfig {
            coordinator: "http://127.0.0.1:9".into(),
            advertise: "http://127.0.0.1:9".into(),
            ordinal: 0,
            secret: "s3cret".into(),
        };
        let mut cluster = Cluster::new(cfg, engine, None);
        if let Some(t) = timeout {
            Arc::get_mut(&mut cluster).unwrap().forward_timeout = t;
        }
        cluster.join(1, member.to_string()).unwrap();
        cluster
    }

    /// A pod answering every request with `size` bytes; with `stall`, it sends the head and
    /// two bytes and then nothing; with `mute`, not even the head.
    async fn owner(size: usize, stall: bool, mute: bool) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = vec![0u8; 65536];
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    if !mute {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
                             connection: close\r\ncontent-length: {size}\r\n\r\n"
                        );
                        let body = if stall {
                            vec![b'x'; 2]
                        } else {
                            vec![b'x'; size]
                        };
                        let _ = conn.write_all(head.as_bytes()).await;
                        let _ = conn.write_all(&body).await;
                    }
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                });
            }
        });
        format!("http://{addr}")
    }

    fn get_records() -> http::request::Parts {
        Request::post("/")
            .header("x-amz-target", "Kinesis_20131202.GetRecords")
            .header(header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn budget(inflight: &Arc<Semaphore>) -> Budget {
        Budget {
            inflight: inflight.clone(),
            permit: inflight.clone().try_acquire_many_owned(1).unwrap(),
        }
    }

    /// Forwarded answers count against the in-flight budget, with their request, until they
    /// have been sent: concurrent forwarded GetRecords cannot grow memory without bound.
    #[tokio::test]
    async fn forwarded_answers_are_charged_to_the_in_flight_budget() {
        const MIB4: usize = 4 << 20;
        let cluster = coordinator(&owner(MIB4, false, false).await, None).await;
        let inflight = Arc::new(Semaphore::new(6 * 1024));
        let body = || Bytes::from_static(b"{}");
        let (first, _) = cluster
            .forward(1, &get_records(), body(), budget(&inflight))
            .await
            .unwrap();
        assert_eq!(inflight.available_permits(), 6 * 1024 - 1 - 4096);
        // No room for a second answer while the first is held: overloaded (503).
        let second = cluster
            .forward(1, &get_records(), body(), budget(&inflight))
            .await;
        assert!(matches!(second, Err(ForwardError::Overloaded)));
        assert_eq!(inflight.available_permits(), 6 * 1024 - 1 - 4096);
        // Streamed through, then its share is given back.
        let got = first.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got.len(), MIB4);
        assert_eq!(inflight.available_permits(), 6 * 1024);
        // An answer dropped unsent (the client went away) gives it back too.
        let (third, _) = cluster
            .forward(1, &get_records(), body(), budget(&inflight))
            .await
            .unwrap();
        assert!(inflight.available_permits() < 6 * 1024);
        drop(third);
        assert_eq!(inflight.available_permits(), 6 * 1024);
    }

    /// A forward is bounded as a whole, head and body, well below SDKs' 60 s read timeout.
    #[tokio::test]
    async fn a_forward_is_bounded_in_all() {
        assert!(FORWARD_TIMEOUT <= Duration::from_secs(30));
        let inflight = Arc::new(Semaphore::new(1024));
        let limit = Duration::from_millis(800);
        // Head and two bytes, then nothing: the answer ends, cut short, at the deadline.
        let stalled = coordinator(&owner(1000, true, false).await, Some(limit)).await;
        let started = tokio::time::Instant::now();
        let (resp, _) = stalled
            .forward(
                1,
                &get_records(),
                Bytes::from_static(b"{}"),
                budget(&inflight),
            )
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect())
            .await
            .expect("ended at the deadline")
            .unwrap()
            .to_bytes();
        assert!(got.len() < 1000);
        assert!(started.elapsed() < limit + Duration::from_millis(500));
        assert_eq!(inflight.available_permits(), 1024);
        // No head at all: an error at the deadline.
        let mute = coordinator(&owner(1000, false, true).await, Some(limit)).await;
        let started = tokio::time::Instant::now();
        let failed = mute
            .forward(
                1,
                &get_records(),
                Bytes::from_static(b"{}"),
                budget(&inflight),
            )
            .await;
        assert!(matches!(failed, Err(ForwardError::Failed(_))));
        assert!(started.elapsed() < limit + Duration::from_millis(500));
        assert_eq!(inflight.available_permits(), 1024);
    }

    /// A request with a wrong cluster token is refused in its own protocol, with a request id.
    #[test]
    fn access_denied_answers_in_the_requests_protocol() {
        for protocol in [Protocol::Json, Protocol::Cbor] {
            let r = access_denied(protocol);
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            assert_eq!(
                r.headers()[header::CONTENT_TYPE].to_str().unwrap(),
                protocol.content_type()
            );
            assert!(r.headers().contains_key("x-amzn-RequestId"));
            assert_eq!(r.headers()["x-amzn-ErrorType"], "AccessDeniedException");
        }
    }
}
