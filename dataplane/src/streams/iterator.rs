//! Shard iterators: opaque, authenticated position tokens.
//!
//! A token is base64 (URL-safe alphabet, no padding) of
//! `version u8 | stream incarnation u64 | shard index u32 | offset u64 | issued ms i64`
//! followed by the first 16 bytes of HMAC-SHA256 over those bytes with the server's secret.
//! Tokens cannot be forged or edited, name their stream incarnation (so a recreated stream
//! rejects old tokens), and carry their issue time for the 5-minute expiry.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const BODY_LEN: usize = 1 + 8 + 4 + 8 + 8;
const MAC_LEN: usize = 16;

/// Iterators are valid for five minutes (`ExpiredIteratorException` after).
pub const ITERATOR_TTL_MS: i64 = 300_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IteratorToken {
    pub incarnation: u64,
    pub shard_index: u32,
    pub offset: u64,
    pub issued_ms: i64,
}

#[derive(Clone)]
pub struct IteratorKey([u8; 32]);

impl IteratorKey {
    pub fn new(secret: [u8; 32]) -> Self {
        IteratorKey(secret)
    }

    fn mac(&self, body: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        m.update(body);
        m.finalize().into_bytes().into()
    }

    pub fn encode(&self, t: &IteratorToken) -> String {
        let mut raw = Vec::with_capacity(BODY_LEN + MAC_LEN);
        raw.push(VERSION);
        raw.extend_from_slice(&t.incarnation.to_be_bytes());
        raw.extend_from_slice(&t.shard_index.to_be_bytes());
        raw.extend_from_slice(&t.offset.to_be_bytes());
        raw.extend_from_slice(&t.issued_ms.to_be_bytes());
        let mac = self.mac(&raw);
        raw.extend_from_slice(&mac[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decodes and authenticates a token; `None` for anything not issued by this server.
    pub fn decode(&self, s: &str) -> Option<IteratorToken> {
        let raw = URL_SAFE_NO_PAD.decode(s).ok()?;
        if raw.len() != BODY_LEN + MAC_LEN || raw[0] != VERSION {
            return None;
        }
        let (body, mac) = raw.split_at(BODY_LEN);
        let expected = self.mac(body);
        // Constant-time comparison.
        let diff = expected[..MAC_LEN]
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return None;
        }
        let u64_at = |i: usize| u64::from_be_bytes(body[i..i + 8].try_into().unwrap_or_default());
        Some(IteratorToken {
            incarnation: u64_at(1),
            shard_index: u32::from_be_bytes(body[9..13].try_into().unwrap_or_default()),
            offset: u64_at(13),
            issued_ms: u64_at(21) as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let key = IteratorKey::new([7; 32]);
        let t = IteratorToken {
            incarnation: 42,
            shard_index: 3,
            offset: 99,
            issued_ms: 1_700_000_000_000,
        };
        let s = key.encode(&t);
        assert_eq!(key.decode(&s), Some(t));
        let mut chars: Vec<char> = s.chars().collect();
        chars[5] = if chars[5] == 'A' { 'B' } else { 'A' };
        let forged: String = chars.into_iter().collect();
        assert_eq!(key.decode(&forged), None);
        assert_eq!(IteratorKey::new([8; 32]).decode(&s), None);
        assert_eq!(key.decode("not a token"), None);
    }
}
