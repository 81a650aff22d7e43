//! A stream log segment's per-shard (tag) batch lists.
//!
//! While a segment is written, every tag's list of batches is in memory. Once the segment is
//! sealed, the lists go to its `.idx` file and leave memory: only each tag's summary (first and
//! end offsets, bytes, last arrival) stays. A read of an older segment loads its lists back
//! into a cache shared by every segment and bounded to [`CACHE_BYTES`], so memory stays flat
//! however much data is retained, even for a stream of many small writes (32 bytes per batch
//! otherwise). Recovery trusts a sealed segment's `.idx` when its checksum and the segment's
//! length agree, and rescans the segment otherwise.
//!
//! `.idx` layout (big-endian): [`MAGIC`], end offset u64, file length u64, first arrival i64,
//! last arrival i64, tag count u32; per tag: tag u32, batch count u32, end offset u64, then per
//! batch: offset u64, position u64, arrival i64, length u32; last, a CRC-32 of everything
//! before it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// One batch of a stream log's shard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TagBatch {
    pub offset: u64,
    pub position: u64,
    pub arrival_ms: i64,
    pub len: u32,
}

/// A stream log's shard (tag) in one segment.
#[derive(Debug, Default, Clone)]
pub struct TagMeta {
    /// Offset of the tag's first batch here.
    pub first: u64,
    /// Offset after the tag's last batch here.
    pub end: u64,
    /// Bytes of the tag's batches.
    pub bytes: u64,
    /// When the tag's last batch here arrived.
    pub last_arrival_ms: i64,
    /// Every batch of the tag here, in order; empty once the segment's lists are spilled.
    pub batches: Vec<TagBatch>,
}

impl TagMeta {
    pub fn push(&mut self, b: TagBatch, end: u64) {
        if self.batches.is_empty() && self.bytes == 0 {
            self.first = b.offset;
        }
        self.end = end;
        self.bytes += u64::from(b.len);
        self.last_arrival_ms = b.arrival_ms;
        self.batches.push(b);
    }
}

/// Every tag's batch list of one segment.
pub type TagLists = BTreeMap<u32, Vec<TagBatch>>;

/// First bytes of a stream log segment's `.idx` (a shard log's index has no magic).
pub const MAGIC: &[u8; 8] = b"TRBTAGS1";

const HEADER_LEN: usize = 8 + 4 * 8 + 4;
const TAG_LEN: usize = 16;
const BATCH_LEN: usize = 28;

/// A segment's bounds, as its `.idx` records them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub end_offset: u64,
    pub file_len: u64,
    pub first_arrival_ms: i64,
    pub last_arrival_ms: i64,
}

/// The `.idx` file of a sealed stream log segment.
pub fn encode(bounds: Bounds, tags: &BTreeMap<u32, TagMeta>) -> Vec<u8> {
    let batches: usize = tags.values().map(|t| t.batches.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + tags.len() * TAG_LEN + batches * BATCH_LEN + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&bounds.end_offset.to_be_bytes());
    out.extend_from_slice(&bounds.file_len.to_be_bytes());
    out.extend_from_slice(&bounds.first_arrival_ms.to_be_bytes());
    out.extend_from_slice(&bounds.last_arrival_ms.to_be_bytes());
    out.extend_from_slice(&(tags.len() as u32).to_be_bytes());
    for (tag, t) in tags {
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&(t.batches.len() as u32).to_be_bytes());
        out.extend_from_slice(&t.end.to_be_bytes());
        for b in &t.batches {
            out.extend_from_slice(&b.offset.to_be_bytes());
            out.extend_from_slice(&b.position.to_be_bytes());
            out.extend_from_slice(&b.arrival_ms.to_be_bytes());
            out.extend_from_slice(&b.len.to_be_bytes());
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Reads an `.idx` written by [`encode`]; `None` if it is not one, or is torn or damaged.
pub fn decode(raw: &[u8]) -> Option<(Bounds, BTreeMap<u32, TagMeta>)> {
    let (body, crc) = raw.split_at(raw.len().checked_sub(4)?);
    let crc = u32::from_be_bytes(crc.try_into().ok()?);
    if !body.starts_with(MAGIC) || body.len() < HEADER_LEN || crc32fast::hash(body) != crc {
        return None;
    }
    let mut r = Reader(&body[MAGIC.len()..]);
    let bounds = Bounds {
        end_offset: r.u64()?,
        file_len: r.u64()?,
        first_arrival_ms: r.u64()? as i64,
        last_arrival_ms: r.u64()? as i64,
    };
    let mut tags = BTreeMap::new();
    for _ in 0..r.u32()? {
        let tag = r.u32()?;
        let count = r.u32()? as usize;
        let end = r.u64()?;
        let mut t = TagMeta {
            batches: Vec::with_capacity(count.min(r.0.len() / BATCH_LEN)),
            ..TagMeta::default()
        };
        for _ in 0..count {
            let b = TagBatch {
                offset: r.u64()?,
                position: r.u64()?,
                arrival_ms: r.u64()? as i64,
                len: r.u32()?,
            };
            t.push(b, end);
        }
        tags.insert(tag, t);
    }
    r.0.is_empty().then_some((bounds, tags))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
}

/// Most bytes of batch lists the cache of sealed segments' lists holds.
pub const CACHE_BYTES: usize = 16 << 20;

/// Sealed segments' lists, least recently used first, keyed by segment id.
static CACHE: Mutex<VecDeque<(u64, Arc<TagLists>)>> = Mutex::new(VecDeque::new());

fn list_bytes(lists: &TagLists) -> usize {
    lists
        .values()
        .map(|l| l.len() * std::mem::size_of::<TagBatch>())
        .sum()
}

/// Segment `id`'s lists, if cached.
pub fn cached(id: u64) -> Option<Arc<TagLists>> {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let i = cache.iter().position(|(k, _)| *k == id)?;
    let entry = cache.remove(i)?;
    let lists = entry.1.clone();
    cache.push_back(entry);
    Some(lists)
}

/// Caches segment `id`'s lists, evicting the least recently used until within
/// [`CACHE_BYTES`] (the newest entry stays whatever its size).
pub fn insert(id: u64, lists: Arc<TagLists>) {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|(k, _)| *k != id);
    cache.push_back((id, lists));
    let mut total: usize = cache.iter().map(|(_, l)| list_bytes(l)).sum();
    while total > CACHE_BYTES && cache.len() > 1 {
        if let Some((_, l)) = cache.pop_front() {
            total -= list_bytes(&l);
        }
    }
}

/// Drops segment `id`'s lists from the cache (the segment is deleted).
pub fn evict(id: u64) {
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(k, _)| *k != id);
}

/// Bytes of lists cached now.
#[cfg(test)]
pub fn cached_bytes() -> usize {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.iter().map(|(_, l)| list_bytes(l)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> BTreeMap<u32, TagMeta> {
        let mut tags = BTreeMap::new();
        for tag in 1..=3u32 {
            let mut t = TagMeta::default();
            for i in 0..5u64 {
                let b = TagBatch {
                    offset: 100 * u64::from(tag) + i * 2,
                    position: u64::from(tag) * 10_000 + i * 500,
                    arrival_ms: 1_700_000_000_000 + i as i64,
                    len: 500,
                };
                t.push(b, b.offset + 2);
            }
            tags.insert(tag, t);
        }
        tags
    }

    #[test]
    fn an_index_reads_back_as_written_and_a_damaged_one_is_refused() {
        let bounds = Bounds {
            end_offset: 7,
            file_len: 123_456,
            first_arrival_ms: 1,
            last_arrival_ms: 2,
        };
        let tags = lists();
        let raw = encode(bounds, &tags);
        let (b, t) = decode(&raw).expect("decodes");
        assert_eq!(b, bounds);
        assert_eq!(t.len(), 3);
        for (tag, meta) in &tags {
            let got = &t[tag];
            assert_eq!(got.batches, meta.batches);
            assert_eq!(
                (got.first, got.end, got.bytes),
                (meta.first, meta.end, meta.bytes)
            );
            assert_eq!(got.last_arrival_ms, meta.last_arrival_ms);
        }
        for cut in [0, 1, 4, raw.len() / 2, raw.len() - 1] {
            assert!(decode(&raw[..cut]).is_none(), "torn at {cut}");
        }
        let mut flipped = raw.clone();
        flipped[HEADER_LEN + 3] ^= 1;
        assert!(decode(&flipped).is_none(), "checksum");
        // A shard log's index (no magic) is not one.
        assert!(decode(&raw[8..]).is_none());
    }

    #[test]
    fn the_cache_keeps_recent_segments_within_its_bound() {
        let big: TagLists = [(1, vec![lists()[&1].batches[0]; CACHE_BYTES / 32 / 3])].into();
        let big = Arc::new(big);
        let ids = [u64::MAX - 10, u64::MAX - 11, u64::MAX - 12, u64::MAX - 13];
        for id in ids {
            insert(id, big.clone());
        }
        assert!(cached(ids[0]).is_none(), "the oldest was evicted");
        assert!(cached(ids[3]).is_some());
        evict(ids[3]);
        assert!(cached(ids[3]).is_none());
        for id in ids {
            evict(id);
        }
    }
}
