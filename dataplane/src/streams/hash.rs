//! The 128-bit hash key space and how it is divided among shards.

use md5::{Digest, Md5};

/// MD5 of the partition key's UTF-8 bytes, read as an unsigned big-endian 128-bit integer:
/// the hash key Kinesis routes a record by.
pub fn hash_key(partition_key: &str) -> u128 {
    hash_key_bytes(partition_key.as_bytes())
}

/// [`hash_key`] of a partition key held as its UTF-8 bytes.
pub fn hash_key_bytes(partition_key: &[u8]) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key).into())
}

/// Splits the whole key space into `n` ranges as Kinesis does: shard `i` starts at
/// `floor(2^128 / n) * i`, each range ends one before the next begins, and the last one ends at
/// `2^128 - 1`.
pub fn even_ranges(n: u32) -> Vec<(u128, u128)> {
    even_ranges_within(0, u128::MAX, n)
}

/// Splits `[start, end]` into `n` contiguous ranges the same way (used when resharding a stream
/// uniformly: the key space is `[0, 2^128-1]`).
pub fn even_ranges_within(start: u128, end: u128, n: u32) -> Vec<(u128, u128)> {
    let n = u128::from(n.max(1));
    if n == 1 {
        return vec![(start, end)];
    }
    // floor((end - start + 1) / n) without overflowing when the span is 2^128.
    let span_minus_one = end - start;
    let (q, r) = (span_minus_one / n, span_minus_one % n);
    let step = if r == n - 1 { q + 1 } else { q };
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let s = start + step * i;
        let e = if i == n - 1 {
            end
        } else {
            start + step * (i + 1) - 1
        };
        out.push((s, e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_shards_split_the_space_like_kinesis() {
        let r = even_ranges(3);
        assert_eq!(r[0], (0, 113427455640312821154458202477256070484));
        assert_eq!(
            r[1],
            (
                113427455640312821154458202477256070485,
                226854911280625642308916404954512140969
            )
        );
        assert_eq!(r[2].1, u128::MAX);
    }

    #[test]
    fn powers_of_two_split_exactly() {
        assert_eq!(even_ranges(1), vec![(0, u128::MAX)]);
        let r = even_ranges(2);
        assert_eq!(r[0], (0, (1u128 << 127) - 1));
        assert_eq!(r[1], (1u128 << 127, u128::MAX));
    }

    #[test]
    fn md5_hash_key_matches_known_value() {
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(hash_key("a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }
}
