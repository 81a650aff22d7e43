//! `POST /_tributary/cluster/read`: a shard's owner serves a read of its log to another pod
//! (the coordinator's delivery streams and analytics applications reading a clustered
//! stream). Positions are log offsets, so the reader keeps its own checkpoint format.
//!
//! Request (JSON): `{"incarnation", "shard", "from", "limit", "maxBytes", "atMs"?}`.
//! Answer (CBOR): `[startOffset, atOffset | null, nextOffset, endOffset, lastArrivalMs,
//! [[offset, arrivalMs, partitionKey, data, encrypted], ...]]`. 409 when the owner does not
//! hold the shard (yet, or any more).

use bytes::Bytes;
use ciborium::Value as Cbor;
use futures_util::future::BoxFuture;
use http::{header, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};

use super::{error, Client, CALL_TIMEOUT};
use crate::cluster::Cluster;
use crate::server::RespBody;
use crate::storage::{ReadBatch, StoredRecord};
use crate::streams::shard_read::{read_log, ShardPage, ShardRead};
use crate::streams::Stream;

/// At most this many records per internal read (GetRecords' limit).
const MAX_RECORDS: usize = 10_000;
/// At most about this many bytes per internal read.
const MAX_BYTES: usize = 10 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadBody {
    incarnation: u64,
    shard: u32,
    from: u64,
    limit: usize,
    max_bytes: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at_ms: Option<i64>,
}

fn int(v: u64) -> Cbor {
    Cbor::Integer(v.into())
}

fn encode_page(page: &ShardPage) -> Vec<u8> {
    let b = &page.batch;
    let records = b
        .records
        .iter()
        .map(|r| {
            Cbor::Array(vec![
                int(r.offset),
                Cbor::Integer(r.arrival_ms.into()),
                Cbor::Text(r.partition_key.to_string()),
                Cbor::Bytes(r.data.to_vec()),
                Cbor::Bool(r.encrypted),
            ])
        })
        .collect();
    let v = Cbor::Array(vec![
        int(page.start_offset),
        page.at_offset.map_or(Cbor::Null, int),
        int(b.next_offset),
        int(b.end_offset),
        Cbor::Integer(b.last_arrival_ms.into()),
        Cbor::Array(records),
    ]);
    let mut out = Vec::new();
    let _ = ciborium::into_writer(&v, &mut out);
    out
}

fn decode_page(raw: &[u8]) -> Option<ShardPage> {
    let v: Cbor = ciborium::from_reader(raw).ok()?;
    let Cbor::Array(parts) = v else { return None };
    let [start, at, next, end, last, Cbor::Array(records)] = parts.as_slice() else {
        return None;
    };
    let u = |v: &Cbor| -> Option<u64> { u64::try_from(v.as_integer()?).ok() };
    let i = |v: &Cbor| -> Option<i64> { i64::try_from(v.as_integer()?).ok() };
    let records = records
        .iter()
        .map(|r| {
            let Cbor::Array(f) = r else { return None };
            let [offset, arrival, Cbor::Text(key), Cbor::Bytes(data), Cbor::Bool(encrypted)] =
                f.as_slice()
            else {
                return None;
            };
            Some(StoredRecord {
                offset: u(offset)?,
                arrival_ms: i(arrival)?,
                partition_key: key.clone().into(),
                data: Bytes::copy_from_slice(data),
                encrypted: *encrypted,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(ShardPage {
        start_offset: u(start)?,
        at_offset: match at {
            Cbor::Null => None,
            v => Some(u(v)?),
        },
        batch: ReadBatch {
            records,
            next_offset: u(next)?,
            end_offset: u(end)?,
            last_arrival_ms: i(last)?,
        },
    })
}

/// The owner's side of a read.
pub(super) async fn serve(cluster: &Cluster, body: &[u8]) -> Response<RespBody> {
    let Ok(r) = serde_json::from_slice::<ReadBody>(body) else {
        return error(StatusCode::BAD_REQUEST, "malformed read");
    };
    let Some(log) = cluster
        .engine
        .by_incarnation(r.incarnation)
        .and_then(|s| s.shard(r.shard))
        .and_then(|s| s.log.clone())
    else {
        return error(StatusCode::CONFLICT, "shard is not held here");
    };
    let req = ShardRead {
        from: r.from,
        limit: r.limit.min(MAX_RECORDS),
        max_bytes: r.max_bytes.min(MAX_BYTES),
        at_ms: r.at_ms,
    };
    match tokio::task::spawn_blocking(move || read_log(&log, req)).await {
        Ok(Ok(page)) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/cbor")
            .body(Full::new(Bytes::from(encode_page(&page))).boxed())
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed())),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

impl Client {
    /// Reads a shard at the pod serving `url`.
    pub async fn read(
        &self,
        url: &str,
        token: &str,
        incarnation: u64,
        shard: u32,
        req: ShardRead,
    ) -> Result<ShardPage, String> {
        let body = serde_json::to_vec(&ReadBody {
            incarnation,
            shard,
            from: req.from,
            limit: req.limit,
            max_bytes: req.max_bytes,
            at_ms: req.at_ms,
        })
        .unwrap_or_default();
        let (status, answer) = self
            .call(
                Method::POST,
                format!("{}/_tributary/cluster/read", url.trim_end_matches('/')),
                token,
                Bytes::from(body),
                CALL_TIMEOUT,
            )
            .await?;
        if status != StatusCode::OK {
            return Err(format!(
                "read refused ({status}): {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        decode_page(&answer).ok_or_else(|| "malformed read answer".to_string())
    }
}

impl Cluster {
    /// [`crate::streams::placement::Placement::read`]: reads shard `shard` of `stream` at
    /// member `owner`.
    pub(crate) fn read_at(
        &self,
        owner: u32,
        stream: &Stream,
        shard: u32,
        req: ShardRead,
    ) -> BoxFuture<'static, Result<ShardPage, String>> {
        let url = self.url_of(owner);
        let client = self.client.clone();
        let token = self.cfg.secret.clone();
        let incarnation = stream.incarnation;
        Box::pin(async move {
            let url = url.ok_or_else(|| format!("member {owner} is unknown"))?;
            client.read(&url, &token, incarnation, shard, req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_survive_the_wire() {
        let page = ShardPage {
            start_offset: 3,
            at_offset: Some(5),
            batch: ReadBatch {
                records: vec![StoredRecord {
                    offset: 4,
                    arrival_ms: 1_700_000_000_000,
                    partition_key: "k".into(),
                    data: Bytes::from_static(b"\x00data"),
                    encrypted: false,
                }],
                next_offset: 5,
                end_offset: 9,
                last_arrival_ms: 1_700_000_000_123,
            },
        };
        let back = decode_page(&encode_page(&page)).unwrap();
        assert_eq!(back.start_offset, 3);
        assert_eq!(back.at_offset, Some(5));
        assert_eq!(back.batch.next_offset, 5);
        assert_eq!(back.batch.end_offset, 9);
        assert_eq!(back.batch.last_arrival_ms, 1_700_000_000_123);
        assert_eq!(back.batch.records.len(), 1);
        assert_eq!(back.batch.records[0].offset, 4);
        assert_eq!(&back.batch.records[0].data[..], b"\x00data");
        let none = ShardPage {
            at_offset: None,
            ..page
        };
        assert_eq!(decode_page(&encode_page(&none)).unwrap().at_offset, None);
        assert!(decode_page(b"junk").is_none());
    }
}
