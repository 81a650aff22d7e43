//! Wire-level behaviour with hand-built requests: h2c with prior knowledge, CBOR bodies and
//! timestamps, body limits, and a graceful shutdown that keeps unsynced writes.

use std::time::Duration;

use bytes::Bytes;
use ciborium::Value;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tributary_tests::Server;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Hand-built calls to one server's API endpoint.
struct Api {
    client: HttpClient,
    endpoint: String,
}

impl Api {
    /// HTTP/1.1.
    fn h1(server: &Server) -> Api {
        Api::with(server, Client::builder(TokioExecutor::new()).build_http())
    }

    /// HTTP/2 over cleartext with prior knowledge.
    fn h2c(server: &Server) -> Api {
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        Api::with(server, client)
    }

    fn with(server: &Server, client: HttpClient) -> Api {
        Api {
            client,
            endpoint: server.api.clone(),
        }
    }

    async fn call(
        &self,
        op: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, http::HeaderMap, Bytes) {
        let req = http::Request::post(format!("{}/", self.endpoint))
            .header("x-amz-target", format!("Kinesis_20131202.{op}"))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = self.client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }

    /// A JSON 1.1 call with `body` as the request.
    async fn json(&self, op: &str, body: serde_json::Value) -> (u16, http::HeaderMap, Bytes) {
        self.call(op, JSON, serde_json::to_vec(&body).unwrap())
            .await
    }

    /// A CBOR 1.1 call whose request is the map of `entries`; the response body comes back
    /// decoded (`Null` when it is empty).
    async fn cbor(&self, op: &str, entries: Vec<(&str, Value)>) -> (u16, http::HeaderMap, Value) {
        let request = Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::Text(k.into()), v))
                .collect(),
        );
        let mut body = Vec::new();
        ciborium::into_writer(&request, &mut body).unwrap();
        let (status, headers, body) = self.call(op, CBOR, body).await;
        let value = if body.is_empty() {
            Value::Null
        } else {
            ciborium::from_reader(&body[..]).unwrap()
        };
        (status, headers, value)
    }
}

const JSON: &str = "application/x-amz-json-1.1";
const CBOR: &str = "application/x-amz-cbor-1.1";

#[tokio::test]
async fn h2c_prior_knowledge_serves_every_call() {
    let server = Server::start(&["--in-memory", "--no-limits"])
        .await
        .unwrap();
    let c = Api::h2c(&server);
    let (s, _, _) = c
        .json("CreateStream", json!({"StreamName": "h2", "ShardCount": 1}))
        .await;
    assert_eq!(s, 200);
    let (s, h, body) = c
        .json(
            "PutRecord",
            json!({"StreamName": "h2", "PartitionKey": "k", "Data": "aGVsbG8="}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], JSON);
    assert!(h.contains_key("x-amzn-requestid"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["ShardId"], "shardId-000000000000");
    let (_, _, body) = c.json("GetShardIterator", json!({"StreamName": "h2", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"})).await;
    let it: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let (s, _, body) = c
        .json("GetRecords", json!({"ShardIterator": it["ShardIterator"]}))
        .await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Records"][0]["Data"], "aGVsbG8=");
    // JSON timestamps are epoch seconds with a fraction, never in exponent form.
    let raw = String::from_utf8(body.to_vec()).unwrap();
    let ts = raw
        .split("\"ApproximateArrivalTimestamp\":")
        .nth(1)
        .unwrap();
    let ts: String = ts
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    assert!(
        ts.len() >= 10 && !ts.contains('e') && !ts.contains('E'),
        "timestamp {ts}"
    );
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("missing {key}"))
}

#[tokio::test]
async fn cbor_requests_get_cbor_responses_with_millisecond_timestamps() {
    let server = Server::start(&["--in-memory", "--no-limits"])
        .await
        .unwrap();
    let c = Api::h1(&server);
    let (s, _, _) = c
        .cbor(
            "CreateStream",
            vec![
                ("StreamName", text("cb")),
                ("ShardCount", Value::Integer(1.into())),
            ],
        )
        .await;
    assert_eq!(s, 200);
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (s, h, _) = c
        .cbor(
            "PutRecord",
            vec![
                ("StreamName", text("cb")),
                ("PartitionKey", text("k")),
                ("Data", Value::Bytes(vec![0, 1, 2, 255])),
            ],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], CBOR);
    // AT_TIMESTAMP with a tag-1 millisecond timestamp, as the Java SDK sends it.
    let (s, _, v) = c
        .cbor(
            "GetShardIterator",
            vec![
                ("StreamName", text("cb")),
                ("ShardId", text("shardId-000000000000")),
                ("ShardIteratorType", text("AT_TIMESTAMP")),
                (
                    "Timestamp",
                    Value::Tag(1, Box::new(Value::Integer((before_ms - 60_000).into()))),
                ),
            ],
        )
        .await;
    assert_eq!(s, 200);
    let it = get(&v, "ShardIterator").clone();
    let (_, _, v) = c.cbor("GetRecords", vec![("ShardIterator", it)]).await;
    let rec = &get(&v, "Records").as_array().unwrap()[0];
    assert_eq!(get(rec, "Data"), &Value::Bytes(vec![0, 1, 2, 255]));
    match get(rec, "ApproximateArrivalTimestamp") {
        Value::Tag(1, inner) => {
            let ms = i128::from(inner.as_integer().unwrap()) as i64;
            assert!(
                (ms - before_ms).abs() < 60_000,
                "arrival {ms} is epoch milliseconds near {before_ms}"
            );
        }
        other => panic!("timestamp is not tag 1: {other:?}"),
    }
    // Errors come back as CBOR maps too.
    let (s, _, v) = c
        .cbor("DescribeStream", vec![("StreamName", text("missing"))])
        .await;
    assert_eq!(s, 400);
    assert_eq!(get(&v, "__type"), &text("ResourceNotFoundException"));
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_the_server_keeps_serving() {
    let server = Server::start(&["--in-memory", "--no-limits"])
        .await
        .unwrap();
    let c = Api::h1(&server);
    // Announce a 20 MiB body and send none of it: the refusal comes before any body is read.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.api.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(
        b"POST / HTTP/1.1\r\nhost: x\r\nx-amz-target: Kinesis_20131202.PutRecord\r\n\
          content-type: application/x-amz-json-1.1\r\ncontent-length: 20971520\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    sock.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    let (s, _, body) = c.call("ListStreams", JSON, b"{}".to_vec()).await;
    assert_eq!(s, 200, "{body:?}");
    let (s, _, body) = c.call("ListStreams", JSON, b"{not json".to_vec()).await;
    assert_eq!(s, 400);
    assert_eq!(&body[..], br#"{"__type":"SerializationException"}"#);
}

/// Sends one HTTP/1.1 request over a fresh connection, its body written in `pieces` with a
/// pause after each, so the server reads it in several parts; returns the status and body
/// (status 0 when the server closed without answering). With `hang_up`, the client closes its
/// side after the last piece.
async fn send_in_pieces(
    server: &Server,
    op: &str,
    framing: &str,
    pieces: Vec<Vec<u8>>,
    hang_up: bool,
) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.api.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nhost: x\r\nx-amz-target: Kinesis_20131202.{op}\r\n\
         content-type: {JSON}\r\nconnection: close\r\n{framing}\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    for piece in pieces {
        sock.write_all(&piece).await.unwrap();
        sock.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if hang_up {
        sock.shutdown().await.unwrap();
    }
    let mut resp = Vec::new();
    let _ = sock.read_to_end(&mut resp).await;
    if resp.len() < 12 {
        return (0, resp);
    }
    let status = std::str::from_utf8(&resp[9..12]).unwrap().parse().unwrap();
    let start = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (status, resp[start..].to_vec())
}

#[tokio::test]
async fn bodies_read_in_pieces_with_a_length_or_chunked_come_through_whole() {
    let server = Server::start(&["--in-memory", "--no-limits"])
        .await
        .unwrap();
    let c = Api::h1(&server);
    let (s, _, _) = c
        .json(
            "CreateStream",
            json!({"StreamName": "pieces", "ShardCount": 1}),
        )
        .await;
    assert_eq!(s, 200);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    // Two PutRecords of 300 records of 1,000 bytes each: about 400 KB of JSON apiece, several
    // times what a connection reads at once.
    let data = |batch: usize, i: usize| -> Vec<u8> {
        (0..1000).map(|j| (batch * 7 + i * 13 + j) as u8).collect()
    };
    let body = |batch: usize| {
        let records: Vec<_> = (0..300)
            .map(|i| json!({"Data": b64.encode(data(batch, i)), "PartitionKey": format!("k{i}")}))
            .collect();
        serde_json::to_vec(&json!({"StreamName": "pieces", "Records": records})).unwrap()
    };
    // With a declared length, in pieces of 7,000 bytes.
    let first = body(0);
    let framing = format!("content-length: {}\r\n", first.len());
    let pieces = first.chunks(7000).map(<[u8]>::to_vec).collect();
    let (s, resp) = send_in_pieces(&server, "PutRecords", &framing, pieces, false).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&resp));
    let v: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(v["FailedRecordCount"], 0);
    // Chunked, with no length, in chunks of 5,000 bytes.
    let second = body(1);
    let mut pieces: Vec<Vec<u8>> = second
        .chunks(5000)
        .map(|c| [format!("{:x}\r\n", c.len()).as_bytes(), c, b"\r\n"].concat())
        .collect();
    pieces.push(b"0\r\n\r\n".to_vec());
    let (s, resp) = send_in_pieces(
        &server,
        "PutRecords",
        "transfer-encoding: chunked\r\n",
        pieces,
        false,
    )
    .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&resp));
    let v: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(v["FailedRecordCount"], 0);
    // A body cut short of its declared length stores nothing, and the server goes on.
    let (s, _) = send_in_pieces(
        &server,
        "PutRecords",
        "content-length: 100000\r\n",
        vec![first[..5000].to_vec()],
        true,
    )
    .await;
    assert_ne!(s, 200);
    // Every record reads back intact, in order.
    let (_, _, it) = c
        .json(
            "GetShardIterator",
            json!({"StreamName": "pieces", "ShardId": "shardId-000000000000",
                   "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
    let it: serde_json::Value = serde_json::from_slice(&it).unwrap();
    let (s, _, out) = c
        .json("GetRecords", json!({"ShardIterator": it["ShardIterator"]}))
        .await;
    assert_eq!(s, 200);
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let records = out["Records"].as_array().unwrap();
    assert_eq!(records.len(), 600);
    for (n, r) in records.iter().enumerate() {
        let got = b64.decode(r["Data"].as_str().unwrap()).unwrap();
        assert_eq!(got, data(n / 300, n % 300), "record {n}");
    }
}

#[tokio::test]
async fn sigterm_flushes_unsynced_writes_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let server = Server::start(&["--data-dir", &data, "--no-limits", "--no-fsync"])
        .await
        .unwrap();
    let c = Api::h1(&server);
    c.json("CreateStream", json!({"StreamName": "t", "ShardCount": 1}))
        .await;
    for i in 0..100 {
        let (s, _, _) = c
            .json(
                "PutRecord",
                json!({"StreamName": "t", "PartitionKey": format!("k{i}"), "Data": "eA=="}),
            )
            .await;
        assert_eq!(s, 200);
    }
    let status = server.stop().await.unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let server = Server::start(&["--data-dir", &data, "--no-limits"])
        .await
        .unwrap();
    let c = Api::h1(&server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, _, body) = c
        .json(
            "GetShardIterator",
            json!({"StreamName": "t", "ShardId": "0", "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
    let it: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let (_, _, body) = c
        .json("GetRecords", json!({"ShardIterator": it["ShardIterator"]}))
        .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Records"].as_array().unwrap().len(), 100);
}
