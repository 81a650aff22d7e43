//! The batch format shared by segment files and in-memory segments.
//!
//! ```text
//! offset size field
//!  0     4    magic "TRB1" (0x54524231, big-endian like every integer here)
//!  4     4    total batch length in bytes, header included
//!  8     4    CRC-32 (IEEE) of bytes 12..length
//! 12     8    base offset: the shard offset of the first record
//! 20     4    record count (> 0)
//! 24     8    arrival time, epoch milliseconds, shared by every record of the batch
//! 32     1    flags (bit 0: written while server-side encryption was on)
//! 33     3    shard tag: 0 in a shard's own log; in a stream log, the shard index + 1
//! 36     …    records: partition key length u16, partition key (UTF-8),
//!                      data length u32, data
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytes_utils::Str;

pub const MAGIC: u32 = 0x5452_4231;
pub const BATCH_HEADER_LEN: usize = 36;
pub const FLAG_ENCRYPTED: u8 = 1;
/// Largest shard tag a batch header holds (24 bits).
pub const MAX_TAG: u32 = 0xFF_FFFF;

/// A record as a producer hands it to the log. The partition key is UTF-8 bytes held as
/// `Bytes` so routing a record to a shard never copies it.
#[derive(Debug, Clone)]
pub struct RecordIn {
    pub partition_key: Bytes,
    pub data: Bytes,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub offset: u64,
    pub arrival_ms: i64,
    /// Shares the batch's buffer, like `data`.
    pub partition_key: Str,
    pub data: Bytes,
    pub encrypted: bool,
}

/// Decoded batch header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchHeader {
    pub len: u32,
    pub crc: u32,
    pub base_offset: u64,
    pub count: u32,
    pub arrival_ms: i64,
    pub flags: u8,
    /// The shard a stream log's batch belongs to (0 in a shard's own log).
    pub tag: u32,
}

impl BatchHeader {
    /// Parses a header; `None` when the bytes cannot be the start of a batch.
    pub fn parse(mut b: &[u8]) -> Option<BatchHeader> {
        if b.len() < BATCH_HEADER_LEN || b.get_u32() != MAGIC {
            return None;
        }
        let len = b.get_u32();
        let crc = b.get_u32();
        let base_offset = b.get_u64();
        let count = b.get_u32();
        let arrival_ms = b.get_i64();
        let flags = b.get_u8();
        let tag = (u32::from(b.get_u8()) << 16) | u32::from(b.get_u16());
        if (len as usize) < BATCH_HEADER_LEN || count == 0 {
            return None;
        }
        Some(BatchHeader {
            len,
            crc,
            base_offset,
            count,
            arrival_ms,
            flags,
            tag,
        })
    }

    pub fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }
}

/// Size of a record inside a batch.
pub fn record_len(r: &RecordIn) -> usize {
    2 + r.partition_key.len() + 4 + r.data.len()
}

/// Batches encoded for one write without copying record data: `frame` holds each batch's
/// header and every record's length prefixes and partition key, while record data stays in the
/// buffers the request decoded it into. The batch bytes are the pieces in order, byte for byte
/// what [`encode_batch`] would produce, so a vectored write sends them to the file directly
/// and the only copy of the data is the kernel's.
#[derive(Default)]
pub struct Encoded {
    frame: BytesMut,
    pieces: Vec<Piece>,
    len: usize,
    /// Batches are encoded without their CRC (see [`Encoded::defer_crcs`]).
    defer_crcs: bool,
    /// Batches whose CRC is still to be computed: position in the round, length, first piece.
    pending_crcs: Vec<(usize, usize, usize)>,
}

/// A piece of an [`Encoded`] round: a range of its frame, or a record's data.
enum Piece {
    Frame(usize, usize),
    Data(Bytes),
}

impl Encoded {
    /// Total bytes of the encoded batches.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Leaves the CRC of the batches pushed from now on to [`Encoded::copy_to`], which computes
    /// it over the copy while the bytes are in the CPU's cache, or to
    /// [`Encoded::finish_crcs`]. A direct round is copied into an aligned buffer anyway, and
    /// reading every record's data once more from memory for its CRC cost as much as the copy.
    pub fn defer_crcs(&mut self) {
        self.defer_crcs = true;
    }

    /// Encodes one batch after the ones already here and returns its header; the records'
    /// data is held by reference. With [`Encoded::defer_crcs`] the header's `crc` is 0 here.
    pub fn push_batch(
        &mut self,
        base_offset: u64,
        arrival_ms: i64,
        flags: u8,
        tag: u32,
        records: Vec<RecordIn>,
    ) -> BatchHeader {
        debug_assert!(tag <= MAX_TAG);
        let len = BATCH_HEADER_LEN + records.iter().map(record_len).sum::<usize>();
        let count = records.len() as u32;
        let start = self.frame.len();
        self.frame.reserve(
            BATCH_HEADER_LEN
                + records
                    .iter()
                    .map(|r| 6 + r.partition_key.len())
                    .sum::<usize>(),
        );
        self.frame.put_u32(MAGIC);
        self.frame.put_u32(len as u32);
        self.frame.put_u32(0); // CRC, filled below
        self.frame.put_u64(base_offset);
        self.frame.put_u32(count);
        self.frame.put_i64(arrival_ms);
        self.frame.put_u8(flags);
        self.frame.put_u8((tag >> 16) as u8);
        self.frame.put_u16(tag as u16);
        let defer = self.defer_crcs;
        if defer {
            self.pending_crcs.push((self.len, len, self.pieces.len()));
        }
        self.pieces.reserve(2 * records.len() + 1);
        let mut crc = crc32fast::Hasher::new();
        let mut hashed = start + 12;
        let mut piece_start = start;
        for r in records {
            self.frame.put_u16(r.partition_key.len() as u16);
            self.frame.put_slice(&r.partition_key);
            self.frame.put_u32(r.data.len() as u32);
            if r.data.is_empty() {
                continue;
            }
            let end = self.frame.len();
            if !defer {
                crc.update(&self.frame[hashed..end]);
                crc.update(&r.data);
            }
            hashed = end;
            self.pieces.push(Piece::Frame(piece_start, end));
            self.pieces.push(Piece::Data(r.data));
            piece_start = end;
        }
        let end = self.frame.len();
        if piece_start < end {
            self.pieces.push(Piece::Frame(piece_start, end));
        }
        let crc = if defer {
            0
        } else {
            crc.update(&self.frame[hashed..end]);
            crc.finalize()
        };
        self.frame[start + 8..start + 12].copy_from_slice(&crc.to_be_bytes());
        self.len += len;
        BatchHeader {
            len: len as u32,
            crc,
            base_offset,
            count,
            arrival_ms,
            flags,
            tag,
        }
    }

    fn piece<'a>(&'a self, p: &'a Piece) -> &'a [u8] {
        match p {
            Piece::Frame(a, b) => &self.frame[*a..*b],
            Piece::Data(d) => &d[..],
        }
    }

    /// The encoded bytes as slices, in order. Batches whose CRC was deferred need
    /// [`Encoded::finish_crcs`] first.
    pub fn slices(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.pieces.iter().map(|p| self.piece(p))
    }

    /// Computes and writes the CRC of every batch whose CRC was deferred.
    pub fn finish_crcs(&mut self) {
        for (_, len, first) in std::mem::take(&mut self.pending_crcs) {
            let Piece::Frame(start, _) = self.pieces[first] else {
                unreachable!("a batch starts with its header");
            };
            // The CRC covers the batch from byte 12 on; its first piece holds the whole header.
            let mut crc = crc32fast::Hasher::new();
            let mut left = len - 12;
            for (i, p) in self.pieces[first..].iter().enumerate() {
                let b = &self.piece(p)[if i == 0 { 12 } else { 0 }..];
                let take = b.len().min(left);
                crc.update(&b[..take]);
                left -= take;
                if left == 0 {
                    break;
                }
            }
            let crc = crc.finalize();
            self.frame[start + 8..start + 12].copy_from_slice(&crc.to_be_bytes());
        }
        self.defer_crcs = false;
    }

    /// Copies the encoded bytes into `out` (exactly [`Encoded::len`] bytes), computing each
    /// deferred CRC over the batch's copy as it is made: the CRC catches up every
    /// [`CRC_STRIDE`] bytes copied, so it reads them from the cache rather than from memory
    /// (a batch of a large request is bigger than the core's L2 cache).
    pub fn copy_to(&self, out: &mut [u8]) {
        let mut pending = self.pending_crcs.iter().peekable();
        let mut crc = crc32fast::Hasher::new();
        // How far the CRC of the batch being copied has got, once it has started.
        let mut hashed: Option<usize> = None;
        let mut at = 0;
        for p in &self.pieces {
            let b = self.piece(p);
            out[at..at + b.len()].copy_from_slice(b);
            at += b.len();
            while let Some(&&(pos, len, _)) = pending.peek() {
                // The CRC covers the batch from byte 12 on.
                let from = hashed.unwrap_or(pos + 12);
                let end = pos + len;
                if end <= at {
                    crc.update(&out[from..end]);
                    let value = std::mem::replace(&mut crc, crc32fast::Hasher::new()).finalize();
                    out[pos + 8..pos + 12].copy_from_slice(&value.to_be_bytes());
                    hashed = None;
                    pending.next();
                    continue;
                }
                if at >= from + CRC_STRIDE {
                    crc.update(&out[from..at]);
                    hashed = Some(at);
                }
                break;
            }
        }
        assert_eq!(at, self.len, "pieces add up to the round's length");
    }
}

/// Bytes [`Encoded::copy_to`] copies before it brings a batch's CRC up to date.
const CRC_STRIDE: usize = 16 * 1024;

/// Appends one encoded batch to `out` (the reference encoding [`Encoded`] must match).
#[cfg(test)]
pub fn encode_batch(
    out: &mut BytesMut,
    base_offset: u64,
    arrival_ms: i64,
    flags: u8,
    tag: u32,
    records: &[RecordIn],
) {
    let start = out.len();
    let len = BATCH_HEADER_LEN + records.iter().map(record_len).sum::<usize>();
    out.reserve(len);
    out.put_u32(MAGIC);
    out.put_u32(len as u32);
    out.put_u32(0); // CRC, filled below
    out.put_u64(base_offset);
    out.put_u32(records.len() as u32);
    out.put_i64(arrival_ms);
    out.put_u8(flags);
    out.put_u8((tag >> 16) as u8);
    out.put_u16(tag as u16);
    for r in records {
        out.put_u16(r.partition_key.len() as u16);
        out.put_slice(&r.partition_key);
        out.put_u32(r.data.len() as u32);
        out.put_slice(&r.data);
    }
    let crc = crc32fast::hash(&out[start + 12..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_be_bytes());
}

/// Checks a whole batch (header at `batch[0..]`) against its CRC.
pub fn verify(header: &BatchHeader, batch: &[u8]) -> bool {
    batch.len() == header.len as usize && crc32fast::hash(&batch[12..]) == header.crc
}

/// Decodes the records of a verified batch, skipping those before `from_offset`.
/// `batch` must be a `Bytes` so record data is shared, not copied.
pub fn decode_records(
    header: &BatchHeader,
    batch: &Bytes,
    from_offset: u64,
    out: &mut Vec<StoredRecord>,
    max_records: usize,
) -> Option<()> {
    let mut pos = BATCH_HEADER_LEN;
    for i in 0..header.count {
        if out.len() >= max_records {
            return Some(());
        }
        let pk_len = u16::from_be_bytes(batch.get(pos..pos + 2)?.try_into().ok()?) as usize;
        pos += 2;
        let pk_at = pos..pos + pk_len;
        batch.get(pk_at.clone())?;
        pos += pk_len;
        let data_len = u32::from_be_bytes(batch.get(pos..pos + 4)?.try_into().ok()?) as usize;
        pos += 4;
        if pos + data_len > batch.len() {
            return None;
        }
        let offset = header.base_offset + u64::from(i);
        if offset >= from_offset {
            out.push(StoredRecord {
                offset,
                arrival_ms: header.arrival_ms,
                // Keys are UTF-8 when they are written; anything else is shown as the API
                // would show it, with replacement characters.
                partition_key: Str::try_from(batch.slice(pk_at)).unwrap_or_else(|e| {
                    Str::from(String::from_utf8_lossy(&e.into_inner()).into_owned())
                }),
                data: batch.slice(pos..pos + data_len),
                encrypted: header.flags & FLAG_ENCRYPTED != 0,
            });
        }
        pos += data_len;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pk: &str, data: &[u8]) -> RecordIn {
        RecordIn {
            partition_key: Bytes::copy_from_slice(pk.as_bytes()),
            data: Bytes::copy_from_slice(data),
        }
    }

    #[test]
    fn batch_round_trips_and_detects_corruption() {
        let mut buf = BytesMut::new();
        encode_batch(
            &mut buf,
            7,
            1234,
            FLAG_ENCRYPTED,
            0x12_3456,
            &[rec("a", b"one"), rec("bb", b"")],
        );
        let bytes = buf.freeze();
        let h = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(
            (h.base_offset, h.count, h.arrival_ms, h.tag),
            (7, 2, 1234, 0x12_3456)
        );
        assert!(verify(&h, &bytes));
        let mut out = Vec::new();
        decode_records(&h, &bytes, 8, &mut out, 10).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].offset, 8);
        assert_eq!(out[0].partition_key, "bb");
        assert!(out[0].encrypted);

        let mut bad = bytes.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!verify(&h, &bad));
    }

    #[test]
    fn zero_copy_encoding_matches_the_reference_byte_for_byte() {
        let batches = [
            vec![rec("a", b"one"), rec("bb", b""), rec("", b"three")],
            vec![rec("k", b"")],
            vec![rec("p", &[7u8; 3000]), rec("q", b"x")],
            // Larger than several CRC strides, with records across their boundaries.
            (0..40u8)
                .map(|i| rec("key", &vec![i; 1000 + 37 * i as usize]))
                .collect(),
        ];
        let tags = [0, 1, MAX_TAG, 2];
        let mut reference = BytesMut::new();
        let mut enc = Encoded::default();
        let mut offset = 10;
        for (i, b) in batches.iter().enumerate() {
            let pos = enc.len();
            let tag = tags[i];
            let h = enc.push_batch(
                offset,
                99 + i as i64,
                i as u8 & FLAG_ENCRYPTED,
                tag,
                b.clone(),
            );
            encode_batch(
                &mut reference,
                offset,
                99 + i as i64,
                i as u8 & FLAG_ENCRYPTED,
                tag,
                b,
            );
            assert_eq!(Some(h), BatchHeader::parse(&reference[pos..]));
            offset += b.len() as u64;
        }
        assert_eq!(enc.len(), reference.len());
        let joined: Vec<u8> = enc.slices().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(joined, &reference[..]);
        // With deferred CRCs, the copy and the finished pieces are the same bytes.
        let mut deferred = Encoded::default();
        deferred.defer_crcs();
        let mut offset = 10;
        for (i, b) in batches.iter().enumerate() {
            deferred.push_batch(
                offset,
                99 + i as i64,
                i as u8 & FLAG_ENCRYPTED,
                tags[i],
                b.clone(),
            );
            offset += b.len() as u64;
        }
        let mut copy = vec![0xAAu8; deferred.len()];
        deferred.copy_to(&mut copy);
        assert_eq!(copy, &reference[..]);
        deferred.finish_crcs();
        let finished: Vec<u8> = deferred.slices().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(finished, &reference[..]);
        let bytes = Bytes::from(joined);
        let h = BatchHeader::parse(&bytes).unwrap();
        assert!(verify(&h, &bytes[..h.len as usize]));
    }
}
