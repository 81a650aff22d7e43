//! Shapes whose encoding differs between JSON 1.1 and CBOR 1.1.
//!
//! serde's `is_human_readable` tells the codecs apart: serde_json is human-readable, ciborium
//! is not. So one set of request and response structs serves both protocols.

use std::cell::RefCell;
use std::fmt;

use base64_simd::STANDARD;
use bytes::{Bytes, BytesMut};
use bytes_utils::Str;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A binary member (`Data`): a base64 string in JSON, a byte string in CBOR.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Bytes);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&STANDARD.encode_to_string(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// In a text format (JSON) a blob is base64 text, taken as bytes: the decoder checks
        /// the alphabet, so the text is not validated as UTF-8 first. In a binary format
        /// (CBOR) it is a byte string, or base64 text.
        struct V {
            text: bool,
        }
        impl<'de> Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a base64 string or a byte string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
                V { text: true }.visit_bytes(v.as_bytes())
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                if !self.text {
                    return Ok(Blob(Bytes::copy_from_slice(v)));
                }
                // AWS decodes strictly: canonical padding, standard alphabet.
                decode_base64(v).map(Blob).map_err(|_| {
                    E::custom(format!(
                        "{BASE64_ERROR}{}",
                        base64_problem(&String::from_utf8_lossy(v))
                    ))
                })
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                if self.text {
                    return self.visit_bytes(&v);
                }
                Ok(Blob(Bytes::from(v)))
            }
        }
        if d.is_human_readable() {
            d.deserialize_bytes(V { text: true })
        } else {
            d.deserialize_any(V { text: false })
        }
    }
}

/// Size of the chunks small decoded blobs are carved from.
const BLOB_CHUNK: usize = 256 * 1024;

thread_local! {
    /// The rest of this thread's current blob chunk, and the size of the next one.
    static BLOB_ARENA: RefCell<(BytesMut, usize)> = RefCell::new((BytesMut::new(), BLOB_CHUNK));
}

/// Starts fresh blob chunks for a request body of `body_len` bytes (called before decoding
/// it): the blobs of one request share chunks only with each other, so a request that waits
/// (say, for a busy shard) holds no more memory than about its own body, and a small request
/// gets a small chunk.
pub fn start_blob_chunks(body_len: usize) {
    BLOB_ARENA.with(|arena| {
        *arena.borrow_mut() = (BytesMut::new(), (body_len / 4 * 3).clamp(64, BLOB_CHUNK));
    });
}

/// 16 bytes in a UUID's text form: lower-case hex in groups of 8, 4, 4, 4 and 12 digits.
pub fn uuid_text(b: &[u8; 16]) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 36];
    let mut at = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[at] = b'-';
            at += 1;
        }
        out[at] = HEX[(byte >> 4) as usize];
        out[at + 1] = HEX[(byte & 15) as usize];
        at += 2;
    }
    out
}

/// Decodes strict base64. Blobs up to an eighth of [`BLOB_CHUNK`] are decoded into the
/// thread's current chunk and handed out as shared slices of it, so the 500 records of a
/// PutRecords request cost a few allocations instead of one each; a chunk is freed when the
/// last blob in it is dropped. Larger blobs get an allocation of their own.
fn decode_base64(v: &[u8]) -> Result<Bytes, base64_simd::Error> {
    let len = STANDARD.decoded_length(v)?;
    if len > BLOB_CHUNK / 8 {
        return STANDARD.decode_to_vec(v).map(Bytes::from);
    }
    carve(len, |out| {
        STANDARD
            .decode(v, base64_simd::Out::from_slice(out))
            .map(|_| ())
    })
}

/// `len` bytes of the thread's current blob chunk, filled by `fill`, as a shared slice.
fn carve<E>(len: usize, fill: impl FnOnce(&mut [u8]) -> Result<(), E>) -> Result<Bytes, E> {
    BLOB_ARENA.with(|arena| {
        let (arena, next) = &mut *arena.borrow_mut();
        if arena.capacity() < len {
            *arena = BytesMut::with_capacity((*next).max(len));
            *next = BLOB_CHUNK;
        }
        arena.resize(len, 0);
        match fill(&mut arena[..]) {
            Ok(()) => Ok(arena.split().freeze()),
            Err(e) => {
                arena.clear();
                Err(e)
            }
        }
    })
}

/// A string member kept after the request (`PartitionKey`): copied into the thread's blob
/// chunk like a small blob, so it costs no allocation of its own.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SharedStr(pub Str);

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SharedStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SharedStr, E> {
                if v.len() > BLOB_CHUNK / 8 {
                    return Ok(SharedStr(Str::from(v)));
                }
                let bytes = carve(v.len(), |out| {
                    out.copy_from_slice(v.as_bytes());
                    Ok::<(), E>(())
                })?;
                Str::try_from(bytes)
                    .map(SharedStr)
                    .map_err(|e| E::custom(e.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// Marks the SerializationException message of bad base64; `codec` strips it and keeps the rest.
pub const BASE64_ERROR: &str = "\u{1}blob:";

/// AWS's message for a string that is not canonical base64, checked in AWS's order: length,
/// alphabet (and `=` only as trailing padding), then non-canonical trailing bits.
fn base64_problem(v: &str) -> String {
    let prefix = format!("'{v}' can not be converted to a Blob: ");
    if !v.len().is_multiple_of(4) {
        return format!(
            "{prefix}Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            v.len()
        );
    }
    let mut seen_pad = false;
    for c in v.chars() {
        let ok = match c {
            '=' => {
                seen_pad = true;
                true
            }
            _ if seen_pad => false,
            c => c.is_ascii_alphanumeric() || c == '+' || c == '/',
        };
        if !ok {
            let shown = if seen_pad && c != '=' { '=' } else { c };
            return format!("{prefix}Invalid Base64 character: '{shown}'");
        }
    }
    format!("{prefix}Invalid last non-pad Base64 character dectected")
}

/// A timestamp in epoch milliseconds. JSON carries epoch seconds as a number with a fraction
/// (written without an exponent); CBOR carries tag 1 around integer epoch *milliseconds*, as
/// the AWS Java SDK does (not RFC 8949's seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            // Millisecond precision; f64 holds every such value exactly enough that the
            // shortest round-trip rendering is `1764140000.123` (never exponent form at
            // these magnitudes).
            s.serialize_f64(self.0 as f64 / 1000.0)
        } else {
            ciborium::tag::Required::<i64, 1>(self.0).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V(bool);
        impl<'de> Visitor<'de> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                // Seconds in both protocols when fractional.
                Ok(Timestamp((v * 1000.0).round() as i64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(if self.0 { v.saturating_mul(1000) } else { v }))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                self.visit_i64(v.min(i64::MAX as u64) as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                v.trim()
                    .parse::<f64>()
                    .map(|f| Timestamp((f * 1000.0).round() as i64))
                    .map_err(|_| E::custom("invalid timestamp"))
            }
        }
        if d.is_human_readable() {
            return d.deserialize_any(V(true));
        }
        // CBOR: tag 1 around integer milliseconds (AWS SDKs) or float seconds (RFC 8949).
        match ciborium::Value::deserialize(d)? {
            ciborium::Value::Tag(_, inner) => cbor_timestamp(*inner),
            other => cbor_timestamp(other),
        }
        .ok_or_else(|| de::Error::custom("invalid timestamp"))
    }
}

fn cbor_timestamp(v: ciborium::Value) -> Option<Timestamp> {
    match v {
        ciborium::Value::Integer(i) => i64::try_from(i128::from(i)).ok().map(Timestamp),
        ciborium::Value::Float(f) => Some(Timestamp((f * 1000.0).round() as i64)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct S {
        data: Blob,
        at: Timestamp,
    }

    #[test]
    fn json_uses_base64_and_fractional_seconds() {
        let v = S {
            data: Blob(Bytes::from_static(b"hi")),
            at: Timestamp(1_764_140_000_123),
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"data":"aGk=","at":1764140000.123}"#);
        assert_eq!(serde_json::from_str::<S>(&json).unwrap(), v);
        let int: S = serde_json::from_str(r#"{"data":"","at":1764140000}"#).unwrap();
        assert_eq!(int.at, Timestamp(1_764_140_000_000));
        assert!(serde_json::from_str::<S>(r#"{"data":"a","at":1}"#).is_err());
    }

    #[test]
    fn blobs_decode_as_strictly_as_aws() {
        use base64::Engine;
        let strict = base64::engine::general_purpose::STANDARD;
        for v in [
            "", "aGk=", "aGk", "aGl=", "aGk==", "a===", "====", "aG=k", "aGk=aGk=", "aGVsbG8",
            "aGVsbG8=", "aGVsbG9=", "YQ==", "YR==", "YQ=", "YQ", "Y", "+/+/", "-_-_", "aGk\n",
            " aGk=", "aGk= ", "AAAA", "AAA=", "AA==",
        ] {
            let ours = serde_json::from_value::<Blob>(serde_json::Value::from(v))
                .ok()
                .map(|b| b.0.to_vec());
            assert_eq!(ours, strict.decode(v).ok(), "{v:?}");
            // The same from a request body, which reads the text as bytes.
            let body = serde_json::to_vec(&v).unwrap();
            let ours = serde_json::from_slice::<Blob>(&body)
                .ok()
                .map(|b| b.0.to_vec());
            assert_eq!(ours, strict.decode(v).ok(), "{v:?}");
        }
    }

    #[test]
    fn json_blobs_read_as_bytes_keep_escapes_errors_and_messages() {
        // Escaped characters are unescaped before decoding.
        let b: Blob = serde_json::from_str(r#""\u0061Gk\u003d""#).unwrap();
        assert_eq!(&b.0[..], b"hi");
        // Non-ASCII text is bad base64, reported with the text as AWS shows it.
        let e = serde_json::from_str::<Blob>(r#""aé=""#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'aé=' can not be converted to a Blob: Invalid Base64 character: 'é'"),
            "{e}"
        );
        // Invalid UTF-8 inside the string is bad base64 too, not a crash.
        let e = serde_json::from_slice::<Blob>(b"\"aG\xff=\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains(BASE64_ERROR), "{e}");
        // Other JSON types are type errors, as before.
        for (json, got) in [
            ("5", "integer `5`"),
            ("true", "boolean `true`"),
            ("null", "null"),
            ("[1]", "sequence"),
            ("{}", "map"),
        ] {
            let e = serde_json::from_str::<Blob>(json).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "invalid type: {got}, expected a base64 string or a byte string"
                )),
                "{json}: {e}"
            );
        }
    }

    #[test]
    fn blobs_carved_from_shared_chunks_stay_intact_and_independent() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        // Enough small blobs to fill several chunks, a failed decode in between, and blobs
        // too large for a chunk.
        let payloads: Vec<Vec<u8>> = (0..2000usize)
            .map(|i| {
                let len = if i % 500 == 7 {
                    BLOB_CHUNK / 8 + 1 + i
                } else {
                    i % 1500
                };
                (0..len).map(|j| (j * 13 + i) as u8).collect()
            })
            .collect();
        let mut blobs = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            if i % 100 == 0 {
                // A new request body: later blobs go into fresh chunks.
                start_blob_chunks(100 * 1400);
            }
            if i % 300 == 0 {
                assert!(serde_json::from_value::<Blob>(serde_json::Value::from("a===")).is_err());
            }
            let json = serde_json::Value::from(b64.encode(p));
            blobs.push(serde_json::from_value::<Blob>(json).unwrap());
        }
        // Dropping some blobs leaves the others (sharing their chunks) untouched.
        let kept: Vec<(usize, Blob)> = blobs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .collect();
        for (i, b) in kept {
            assert_eq!(b.0, payloads[i], "blob {i}");
        }
    }

    #[test]
    fn cbor_uses_byte_strings_and_tagged_milliseconds() {
        let v = S {
            data: Blob(Bytes::from_static(b"hi")),
            at: Timestamp(1_764_140_000_123),
        };
        let mut buf = Vec::new();
        ciborium::into_writer(&v, &mut buf).unwrap();
        let raw: ciborium::Value = ciborium::from_reader(&buf[..]).unwrap();
        let map = raw.as_map().unwrap();
        assert_eq!(map[0].1, ciborium::Value::Bytes(b"hi".to_vec()));
        assert_eq!(
            map[1].1,
            ciborium::Value::Tag(
                1,
                Box::new(ciborium::Value::Integer(1_764_140_000_123i64.into()))
            )
        );
        assert_eq!(ciborium::from_reader::<S, _>(&buf[..]).unwrap(), v);
    }
}
