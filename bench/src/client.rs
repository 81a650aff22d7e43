//! A minimal Kinesis JSON 1.1 client: one keep-alive HTTP/1.1 connection, prebuilt bodies.
//!
//! The load generator must never be the bottleneck, so a request is a header block and a
//! `Bytes` body built ahead of time; nothing is signed (every target runs without auth).

use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

/// kinesalite refuses requests without an `Authorization` header shaped like SigV4 and an
/// `X-Amz-Date`; it never checks the signature, and neither does any other target here.
pub const FAKE_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20250101/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000";
pub const FAKE_DATE: &str = "20250101T000000Z";

/// One connection to a target.
pub struct Conn {
    addr: SocketAddr,
    send: SendRequest<Full<Bytes>>,
}

/// A response: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    /// The body as `T`, or an error naming the operation and the server's answer.
    /// The body of a 200 answer, or an error naming the operation and the status.
    pub fn ok_body(&self, op: &str) -> anyhow::Result<&[u8]> {
        if self.status != 200 {
            bail!(
                "{op} answered {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            );
        }
        Ok(&self.body)
    }

    pub fn json<T: DeserializeOwned>(&self, op: &str) -> anyhow::Result<T> {
        if self.status != 200 {
            bail!(
                "{op} answered {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            );
        }
        serde_json::from_slice(&self.body).with_context(|| format!("{op}: unreadable response"))
    }
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (send, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { addr, send })
    }

    /// Sends `Kinesis_20131202.<op>` with `body`. A connection the server closed while idle
    /// (kinesalite closes after 5 s) is replaced before sending; a failure after sending is
    /// returned, never retried, so a write is never duplicated.
    pub async fn call(&mut self, op: &str, body: Bytes) -> anyhow::Result<Reply> {
        if self.send.is_closed() || self.send.ready().await.is_err() {
            *self = Conn::connect(self.addr).await?;
        }
        let req = http::Request::post("/")
            .header(http::header::HOST, "localhost")
            .header("x-amz-target", format!("Kinesis_20131202.{op}"))
            .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header(http::header::AUTHORIZATION, FAKE_AUTH)
            .header("x-amz-date", FAKE_DATE)
            .body(Full::new(body))?;
        let resp = self
            .send
            .send_request(req)
            .await
            .with_context(|| format!("{op} to {}", self.addr))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Reply { status, body })
    }

    /// Sends a JSON value (for control-plane calls, where speed does not matter).
    pub async fn call_json(&mut self, op: &str, body: serde_json::Value) -> anyhow::Result<Reply> {
        self.call(op, Bytes::from(serde_json::to_vec(&body)?)).await
    }
}
