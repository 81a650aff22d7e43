//! KPL aggregated records (the Kinesis Producer Library's aggregation format), which Firehose
//! de-aggregates when it reads a stream:
//! 4 magic bytes `F3 89 9A C2`, a protobuf `AggregatedRecord { repeated string
//! partition_key_table = 1; repeated string explicit_hash_key_table = 2; repeated Record
//! records = 3; }` with `Record { uint64 partition_key_index = 1; uint64
//! explicit_hash_key_index = 2; bytes data = 3; repeated Tag tags = 4; }`, then the MD5 of the
//! protobuf bytes. A record that does not parse, or whose checksum does not match, is an
//! ordinary record (as the KCL treats it).

use bytes::Bytes;
use md5::{Digest, Md5};

pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// The sub-records' data of an aggregated record, or `None` if `data` is not one.
pub fn deaggregate(data: &Bytes) -> Option<Vec<Bytes>> {
    if data.len() < MAGIC.len() + 16 || data[..4] != MAGIC {
        return None;
    }
    let body = &data[4..data.len() - 16];
    let digest = Md5::digest(body);
    if digest[..] != data[data.len() - 16..] {
        return None;
    }
    let mut out = Vec::new();
    let mut r = Reader { buf: body, pos: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (3, 2) => {
                let rec = r.bytes()?;
                let mut rr = Reader { buf: rec, pos: 0 };
                let mut payload = None;
                while !rr.done() {
                    let (f, w) = rr.key()?;
                    match (f, w) {
                        (3, 2) => payload = Some(Bytes::copy_from_slice(rr.bytes()?)),
                        _ => rr.skip(w)?,
                    }
                }
                out.push(payload?);
            }
            _ => r.skip(wire)?,
        }
    }
    Some(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn key(&mut self) -> Option<(u64, u8)> {
        let k = self.varint()?;
        Some((k >> 3, (k & 7) as u8))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.advance(8),
            2 => self.bytes().map(drop),
            5 => self.advance(4),
            _ => None,
        }
    }

    fn advance(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        (end <= self.buf.len()).then(|| self.pos = end)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field(n: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    /// An aggregated record of `records` under one partition key.
    pub fn aggregate(records: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        field(1, b"pk", &mut body);
        for r in records {
            let mut rec = Vec::new();
            varint(1 << 3, &mut rec);
            varint(0, &mut rec);
            field(3, r, &mut rec);
            field(3, &rec, &mut body);
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&body);
        out.extend_from_slice(&Md5::digest(&body));
        out
    }

    #[test]
    fn aggregated_records_split_into_their_sub_records() {
        let agg = Bytes::from(aggregate(&[b"one", b"two", b""]));
        let subs = deaggregate(&agg).unwrap();
        assert_eq!(
            subs,
            vec![Bytes::from("one"), Bytes::from("two"), Bytes::new()]
        );
    }

    #[test]
    fn plain_records_and_bad_checksums_are_not_aggregated() {
        assert_eq!(deaggregate(&Bytes::from("hello world, plain record")), None);
        let mut agg = aggregate(&[b"one"]);
        let n = agg.len();
        agg[n - 1] ^= 1;
        assert_eq!(deaggregate(&Bytes::from(agg)), None);
    }
}
