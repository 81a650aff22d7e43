//! SubscribeToShard for the latency scenario: an HTTP/2 (h2c, prior knowledge) connection, as
//! the AWS SDKs open it, and a reader of the `application/vnd.amazon.eventstream` frames the
//! server pushes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;

use crate::client::Conn;

/// Registers `name` as an enhanced fan-out consumer of `stream` and waits until it is ACTIVE.
/// Returns its ARN.
pub async fn register_consumer(
    conn: &mut Conn,
    stream: &str,
    name: &str,
) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Summary {
        #[serde(rename = "StreamDescriptionSummary")]
        d: SummaryInner,
    }
    #[derive(Deserialize)]
    struct SummaryInner {
        #[serde(rename = "StreamARN")]
        arn: String,
    }
    #[derive(Deserialize)]
    struct Registered {
        #[serde(rename = "Consumer")]
        c: Consumer,
    }
    #[derive(Deserialize)]
    struct Described {
        #[serde(rename = "ConsumerDescription")]
        c: Consumer,
    }
    #[derive(Deserialize)]
    struct Consumer {
        #[serde(rename = "ConsumerARN")]
        arn: String,
        #[serde(rename = "ConsumerStatus")]
        status: String,
    }
    let stream_arn = conn
        .call_json("DescribeStreamSummary", json!({"StreamName": stream}))
        .await?
        .json::<Summary>("DescribeStreamSummary")?
        .d
        .arn;
    let consumer = conn
        .call_json(
            "RegisterStreamConsumer",
            json!({"StreamARN": stream_arn, "ConsumerName": name}),
        )
        .await?
        .json::<Registered>("RegisterStreamConsumer")?
        .c;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = consumer.status;
    while status != "ACTIVE" {
        if Instant::now() > deadline {
            bail!("consumer {name} still {status} after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = conn
            .call_json(
                "DescribeStreamConsumer",
                json!({"ConsumerARN": consumer.arn}),
            )
            .await?
            .json::<Described>("DescribeStreamConsumer")?
            .c
            .status;
    }
    Ok(consumer.arn)
}

/// An open subscription: the response body, and frames not yet read.
pub struct Subscription {
    body: Incoming,
    buf: BytesMut,
}

/// A record pushed in a `SubscribeToShardEvent`.
#[derive(Deserialize)]
pub struct EventRecord {
    #[serde(rename = "Data")]
    pub data: String,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "Records")]
    records: Vec<EventRecord>,
}

impl Subscription {
    /// Opens SubscribeToShard from LATEST over a new h2c connection and waits for the
    /// `initial-response` event.
    pub async fn open(
        addr: SocketAddr,
        consumer_arn: &str,
        shard: &str,
    ) -> anyhow::Result<Subscription> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .context("HTTP/2 handshake (h2c prior knowledge)")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let body = serde_json::to_vec(&json!({
            "ConsumerARN": consumer_arn,
            "ShardId": shard,
            "StartingPosition": {"Type": "LATEST"},
        }))?;
        let req = http::Request::post(format!("http://{addr}/"))
            .header("x-amz-target", "Kinesis_20131202.SubscribeToShard")
            .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header(http::header::AUTHORIZATION, crate::client::FAKE_AUTH)
            .header("x-amz-date", crate::client::FAKE_DATE)
            .body(Full::new(Bytes::from(body)))?;
        let resp = send.send_request(req).await.context("SubscribeToShard")?;
        let status = resp.status();
        let mut sub = Subscription {
            body: resp.into_body(),
            buf: BytesMut::new(),
        };
        if status != http::StatusCode::OK {
            let body = sub.body.collect().await?.to_bytes();
            bail!(
                "SubscribeToShard answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        let (kind, payload) = sub.next_message().await?.context("no initial-response")?;
        if kind != "initial-response" {
            bail!(
                "SubscribeToShard began with {kind:?}: {}",
                String::from_utf8_lossy(&payload)
            );
        }
        Ok(sub)
    }

    /// The records of the next `SubscribeToShardEvent` (empty for a heartbeat event), or None
    /// when the server ended the subscription.
    pub async fn next_records(&mut self) -> anyhow::Result<Option<Vec<EventRecord>>> {
        let Some((kind, payload)) = self.next_message().await? else {
            return Ok(None);
        };
        if kind != "SubscribeToShardEvent" {
            bail!(
                "subscription sent {kind:?}: {}",
                String::from_utf8_lossy(&payload)
            );
        }
        let event: Event =
            serde_json::from_slice(&payload).context("unreadable SubscribeToShardEvent")?;
        Ok(Some(event.records))
    }

    /// The next event-stream message: its `:event-type` (or `:exception-type`) and payload.
    async fn next_message(&mut self) -> anyhow::Result<Option<(String, Bytes)>> {
        loop {
            if let Some(m) = take_message(&mut self.buf)? {
                return Ok(Some(m));
            }
            match self.body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                None if self.buf.is_empty() => return Ok(None),
                None => bail!("subscription ended inside a message"),
            }
        }
    }
}

/// Splits one complete message off the front of `buf`: total length (4), headers length (4),
/// prelude CRC (4), headers, payload, message CRC (4). Both CRCs are checked.
fn take_message(buf: &mut BytesMut) -> anyhow::Result<Option<(String, Bytes)>> {
    if buf.len() < 12 {
        return Ok(None);
    }
    let total = u32::from_be_bytes(buf[0..4].try_into()?) as usize;
    let headers_len = u32::from_be_bytes(buf[4..8].try_into()?) as usize;
    if total < 16 + headers_len {
        bail!("event-stream message of {total} bytes with {headers_len} bytes of headers");
    }
    if buf.len() < total {
        return Ok(None);
    }
    let msg = buf.split_to(total).freeze();
    if crc32fast::hash(&msg[..8]) != u32::from_be_bytes(msg[8..12].try_into()?)
        || crc32fast::hash(&msg[..total - 4]) != u32::from_be_bytes(msg[total - 4..].try_into()?)
    {
        bail!("event-stream message with a bad CRC");
    }
    let mut headers = msg.slice(12..12 + headers_len);
    let mut kind = String::new();
    while headers.has_remaining() {
        let name_len = headers.get_u8() as usize;
        let name = headers.split_to(name_len);
        let value_type = headers.get_u8();
        if value_type != 7 {
            bail!("event-stream header of type {value_type}, expected a string");
        }
        let value_len = headers.get_u16() as usize;
        let value = headers.split_to(value_len);
        if &name[..] == b":event-type" || &name[..] == b":exception-type" {
            kind = String::from_utf8_lossy(&value).into_owned();
        }
    }
    Ok(Some((kind, msg.slice(12 + headers_len..total - 4))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(event_type: &str, payload: &[u8]) -> Vec<u8> {
        let mut headers = Vec::new();
        for (name, value) in [(":message-type", "event"), (":event-type", event_type)] {
            headers.push(name.len() as u8);
            headers.extend_from_slice(name.as_bytes());
            headers.push(7);
            headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
            headers.extend_from_slice(value.as_bytes());
        }
        let total = 16 + headers.len() + payload.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_be_bytes());
        m.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let prelude_crc = crc32fast::hash(&m);
        m.extend_from_slice(&prelude_crc.to_be_bytes());
        m.extend_from_slice(&headers);
        m.extend_from_slice(payload);
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m
    }

    #[test]
    fn messages_are_split_across_partial_frames() {
        let mut stream = message("initial-response", b"{}");
        stream.extend(message("SubscribeToShardEvent", br#"{"Records":[]}"#));
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in stream.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some((kind, payload)) = take_message(&mut buf).unwrap() {
                got.push((kind, payload));
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "initial-response");
        assert_eq!(&got[1].1[..], br#"{"Records":[]}"#);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_corrupted_message_is_refused() {
        let mut m = message("SubscribeToShardEvent", b"{}");
        let last = m.len() - 5;
        m[last] ^= 1;
        let mut buf = BytesMut::from(&m[..]);
        assert!(take_message(&mut buf).is_err());
    }
}
