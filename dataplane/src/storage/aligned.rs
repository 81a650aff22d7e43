//! Aligned buffers and the staging of direct (`O_DIRECT`) writes.
//!
//! A segment file opened for direct I/O moves bytes between the process and the disk without
//! the page cache: offsets, lengths and buffer addresses must all be multiples of the device's
//! logical block size. [`ALIGN`] (4 KiB) is a multiple of every common one (512 B and 4 KiB).
//!
//! Appends are not block-sized, so the writer keeps the file's last partial block in memory
//! ([`Stage`]) and rewrites it, followed by the new bytes and zero padding up to a block
//! boundary. The padding is past the segment's durable length, so readers never see it; it is
//! cut off when the segment is sealed, and recovery drops it with any torn tail.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Alignment of direct I/O offsets, lengths and memory.
pub const ALIGN: usize = 4096;

/// Most bytes a direct write stages before writing them out; a larger round is written in
/// pieces of this size, so staging memory stays bounded per active segment.
pub const STAGE_BYTES: usize = 1 << 20;

pub fn align_down(n: u64) -> u64 {
    n - n % ALIGN as u64
}

pub fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGN as u64) * ALIGN as u64
}

/// A zeroed byte buffer whose first byte sits at an [`ALIGN`]-aligned address.
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn zeroed(len: usize) -> AlignedBuf {
        let raw = vec![0u8; len + ALIGN];
        // For byte pointers `align_offset` always finds the offset, which is below `ALIGN`.
        let start = raw.as_ptr().align_offset(ALIGN);
        assert!(start < ALIGN, "an aligned start within the buffer");
        AlignedBuf { raw, start, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Shortens the visible bytes to `len` (never lengthens).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

/// Reads `len` bytes (a multiple of [`ALIGN`]) at the aligned position `pos` into an aligned
/// buffer, stopping early only at the end of the file. Returns the buffer cut to what was read.
/// A read that ends off a block boundary ends at the end of the file as it was then: the next
/// one would be unaligned (and refused by direct I/O), so it stops there.
pub fn read_aligned(file: &File, pos: u64, len: usize) -> std::io::Result<AlignedBuf> {
    let mut buf = AlignedBuf::zeroed(len);
    let mut got = 0usize;
    while got < len {
        match file.read_at(&mut buf.as_mut_slice()[got..], pos + got as u64) {
            Ok(0) => break,
            Ok(n) if !(got + n).is_multiple_of(ALIGN) => {
                got += n;
                break;
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// The staging buffer of a segment's direct writes: its first `tail_len` bytes are the file's
/// last partial block, which starts at `tail_start`.
pub struct Stage {
    buf: AlignedBuf,
    tail_start: u64,
    tail_len: usize,
}

impl Stage {
    /// The stage for appending at `pos`, with the partial block before it read from `file`.
    pub fn load(file: &File, pos: u64, capacity: usize) -> std::io::Result<Stage> {
        let tail_start = align_down(pos);
        let tail_len = (pos - tail_start) as usize;
        let mut buf = AlignedBuf::zeroed(align_up(capacity.max(ALIGN) as u64) as usize);
        if tail_len > 0 {
            let block = read_aligned(file, tail_start, ALIGN)?;
            let tail = block
                .as_ref()
                .get(..tail_len)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
            buf.as_mut_slice()[..tail_len].copy_from_slice(tail);
        }
        Ok(Stage {
            buf,
            tail_start,
            tail_len,
        })
    }

    /// The file position an append through this stage continues from.
    pub fn end(&self) -> u64 {
        self.tail_start + self.tail_len as u64
    }

    /// Gives back the buffer beyond one block, keeping the tail (an idle or closed log's).
    pub fn shrink(&mut self) {
        if self.buf.len() > ALIGN {
            let mut small = AlignedBuf::zeroed(ALIGN);
            small.as_mut_slice()[..self.tail_len]
                .copy_from_slice(&self.buf.as_ref()[..self.tail_len]);
            self.buf = small;
        }
    }

    /// Grows the buffer (up to [`STAGE_BYTES`]) so `incoming` more bytes fit in one write.
    pub fn reserve(&mut self, incoming: usize) {
        let want = (align_up((self.tail_len + incoming) as u64) as usize).min(STAGE_BYTES);
        if want > self.buf.len() {
            let mut bigger = AlignedBuf::zeroed(want);
            bigger.as_mut_slice()[..self.tail_len]
                .copy_from_slice(&self.buf.as_ref()[..self.tail_len]);
            self.buf = bigger;
        }
    }

    /// Appends `pieces` after the tail with direct writes of whole blocks, the last one padded
    /// with zeros, and keeps the new last partial block for the next append.
    pub fn append<'a>(
        &mut self,
        file: &File,
        pieces: impl Iterator<Item = &'a [u8]>,
    ) -> std::io::Result<()> {
        let cap = self.buf.len();
        let mut fill = self.tail_len;
        let mut at = self.tail_start;
        for mut piece in pieces {
            while !piece.is_empty() {
                if fill == cap {
                    file.write_all_at(self.buf.as_ref(), at)?;
                    at += cap as u64;
                    fill = 0;
                }
                let n = piece.len().min(cap - fill);
                self.buf.as_mut_slice()[fill..fill + n].copy_from_slice(&piece[..n]);
                fill += n;
                piece = &piece[n..];
            }
        }
        let padded = align_up(fill as u64) as usize;
        let buf = self.buf.as_mut_slice();
        buf[fill..padded].fill(0);
        if padded > 0 {
            file.write_all_at(&buf[..padded], at)?;
        }
        let last_block = align_down(fill as u64) as usize;
        buf.copy_within(last_block..fill, 0);
        self.tail_start = at + last_block as u64;
        self.tail_len = fill - last_block;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffers_start_on_a_block_boundary() {
        for len in [0, 1, ALIGN, 3 * ALIGN + 5] {
            let mut b = AlignedBuf::zeroed(len);
            assert_eq!(b.as_mut_slice().as_ptr() as usize % ALIGN, 0);
            assert_eq!(b.as_ref().len(), len);
        }
    }

    #[test]
    fn staged_appends_write_the_same_bytes_as_plain_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let mut expected = Vec::new();
        let mut stage: Option<Stage> = None;
        // Pieces around and over block and stage boundaries, a stage reloaded from the file
        // midway, as after a restart, and one shrunk to its tail, as when a log goes idle.
        let sizes = [
            1usize,
            4095,
            1,
            4096,
            10_000,
            STAGE_BYTES + 3,
            7,
            2 * STAGE_BYTES,
        ];
        for (i, size) in sizes.into_iter().enumerate() {
            let piece: Vec<u8> = (0..size).map(|b| (b * 7 + i) as u8).collect();
            let pos = expected.len() as u64;
            let mut s = match stage.take() {
                Some(s) if i != 4 => s,
                _ => Stage::load(&file, pos, 8192).unwrap(),
            };
            assert_eq!(s.end(), pos);
            if i == 6 {
                s.shrink();
                assert_eq!(s.buf.len(), ALIGN);
            }
            s.reserve(size);
            s.append(&file, [&piece[..size / 2], &piece[size / 2..]].into_iter())
                .unwrap();
            expected.extend_from_slice(&piece);
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(on_disk.len() as u64, align_up(expected.len() as u64));
            assert_eq!(&on_disk[..expected.len()], &expected[..]);
            assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
            stage = Some(s);
        }
    }
}
