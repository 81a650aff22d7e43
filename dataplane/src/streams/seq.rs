//! Sequence numbers.
//!
//! A sequence number is a 128-bit integer written in decimal:
//!
//! ```text
//! bits 127..124  version (4)
//! bits 123..92   low 32 bits of the stream's incarnation id (a new id per CreateStream)
//! bits  91..64   shard index (28 bits)
//! bits  63..0    record offset within the shard
//! ```
//!
//! So numbers increase strictly within a shard, a child shard's numbers are above its parents'
//! (children have higher indexes), and a number from a deleted-and-recreated stream is
//! recognised as foreign.

const VERSION: u128 = 4;

pub fn encode(incarnation: u64, shard_index: u32, offset: u64) -> u128 {
    (VERSION << 124)
        | (u128::from(incarnation as u32) << 92)
        | (u128::from(shard_index & 0x0fff_ffff) << 64)
        | u128::from(offset)
}

/// The parts of a sequence number: (incarnation low bits, shard index, offset).
pub fn decode(seq: u128) -> Option<(u32, u32, u64)> {
    if seq >> 124 != VERSION {
        return None;
    }
    Some((
        (seq >> 92) as u32,
        ((seq >> 64) as u32) & 0x0fff_ffff,
        seq as u64,
    ))
}

pub fn parse(s: &str) -> Option<u128> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_round_trip_and_order_within_a_shard() {
        let a = encode(0xdead_beef_1234, 3, 10);
        let b = encode(0xdead_beef_1234, 3, 11);
        assert!(b > a);
        assert_eq!(decode(a), Some((0xbeef_1234, 3, 10)));
        assert!(encode(1, 4, 0) > encode(1, 3, u64::MAX));
        assert_eq!(decode(12345), None);
    }
}
