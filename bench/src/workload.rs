//! Request bodies and checksums. Bodies are built before a timed phase starts, so the load
//! generator only copies bytes to sockets while the clock runs.

use base64_simd::STANDARD;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// Record payload size in every write scenario.
pub const RECORD_BYTES: usize = 1024;
/// Records per PutRecords call (AWS's maximum).
pub const BATCH: usize = 500;

/// A deterministic random source, so two runs send the same bytes.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A random 16-hex-digit partition key, so records spread over every shard.
pub fn partition_key(rng: &mut StdRng) -> String {
    format!("{:016x}", rng.gen::<u64>())
}

/// A JSON record object: `{"Data":"…","PartitionKey":"…"}`, appended to `out`.
fn push_record(out: &mut String, data: &[u8], pk: &str) {
    out.push_str("{\"Data\":\"");
    out.push_str(&STANDARD.encode_to_string(data));
    out.push_str("\",\"PartitionKey\":\"");
    out.push_str(pk);
    out.push_str("\"}");
}

/// One PutRecords body and what it carries.
pub struct PutRecordsBody {
    pub body: Bytes,
    /// Checksum term of each record, in request order.
    pub record_sums: Vec<u64>,
}

/// A PutRecords body of `n` records of `RECORD_BYTES`, each unique: the first 8 bytes of its
/// data are `first_id + i`, the rest random.
pub fn put_records_body(stream: &str, n: usize, first_id: u64, rng: &mut StdRng) -> PutRecordsBody {
    let mut body = String::with_capacity(64 + n * (RECORD_BYTES * 4 / 3 + 64));
    body.push_str("{\"StreamName\":\"");
    body.push_str(stream);
    body.push_str("\",\"Records\":[");
    let mut record_sums = Vec::with_capacity(n);
    let mut data = vec![0u8; RECORD_BYTES];
    for i in 0..n {
        rng.fill_bytes(&mut data);
        data[..8].copy_from_slice(&(first_id + i as u64).to_le_bytes());
        let pk = partition_key(rng);
        if i > 0 {
            body.push(',');
        }
        push_record(&mut body, &data, &pk);
        record_sums.push(record_sum(pk.as_bytes(), &data));
    }
    body.push_str("]}");
    PutRecordsBody {
        body: Bytes::from(body),
        record_sums,
    }
}

/// A PutRecord body with a random partition key and `data`.
pub fn put_record_body(stream: &str, data: &[u8], rng: &mut StdRng) -> Bytes {
    let pk = partition_key(rng);
    let mut body = String::with_capacity(96 + data.len() * 4 / 3);
    body.push_str("{\"StreamName\":\"");
    body.push_str(stream);
    body.push_str("\",\"PartitionKey\":\"");
    body.push_str(&pk);
    body.push_str("\",\"Data\":\"");
    body.push_str(&STANDARD.encode_to_string(data));
    body.push_str("\"}");
    Bytes::from(body)
}

/// The checksum term of one record: a 64-bit hash of its partition key and data.
pub fn record_sum(pk: &[u8], data: &[u8]) -> u64 {
    // XXH3 (fast enough that checking every record costs the reader little), seeded with
    // the key's hash so the same bytes under another key sum differently.
    xxhash_rust::xxh3::xxh3_64_with_seed(data, xxhash_rust::xxh3::xxh3_64(pk))
}

/// An order-independent checksum of a multiset of records: their count and the wrapping sum
/// and xor of their terms. A lost, altered or duplicated record changes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    pub count: u64,
    pub sum: u64,
    pub xor: u64,
}

impl Checksum {
    pub fn add(&mut self, term: u64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(term);
        self.xor ^= term;
    }

    pub fn merge(&mut self, other: Checksum) {
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
        self.xor ^= other.xor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_records_body_is_valid_json_with_unique_one_kib_records() {
        let b = put_records_body("s", 3, 7, &mut rng(1));
        let v: serde_json::Value = serde_json::from_slice(&b.body).unwrap();
        let records = v["Records"].as_array().unwrap();
        assert_eq!(records.len(), 3);
        for (i, r) in records.iter().enumerate() {
            let data = STANDARD.decode_to_vec(r["Data"].as_str().unwrap()).unwrap();
            assert_eq!(data.len(), RECORD_BYTES);
            assert_eq!(
                u64::from_le_bytes(data[..8].try_into().unwrap()),
                7 + i as u64
            );
            let pk = r["PartitionKey"].as_str().unwrap();
            assert_eq!(b.record_sums[i], record_sum(pk.as_bytes(), &data));
        }
    }

    #[test]
    fn checksum_notices_a_swapped_record() {
        let (a, b, c) = (
            record_sum(b"a", b"1"),
            record_sum(b"b", b"2"),
            record_sum(b"c", b"3"),
        );
        let mut sent = Checksum::default();
        [a, b].into_iter().for_each(|t| sent.add(t));
        let mut same = Checksum::default();
        [b, a].into_iter().for_each(|t| same.add(t));
        let mut other = Checksum::default();
        [a, c].into_iter().for_each(|t| other.add(t));
        assert_eq!(sent, same);
        assert_ne!(sent, other);
    }
}
