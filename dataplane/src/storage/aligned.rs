//! Aligned buffers and the staging of direct (`O_DIRECT`) writes.
//!
//! A segment file opened for direct I/O moves bytes between the process and the disk without
//! the page cache: offsets, lengths and buffer addresses must all be multiples of the device's
//! logical block size. [`ALIGN`] (4 KiB) is a multiple of every common one (512 B and 4 KiB).
//!
//! Appends are not block-sized, so the writer keeps the file's last partial block in memory
//! ([`Stage`]) and rewrites it, followed by the new bytes and zero padding up to a block
//! boundary, from an aligned copy of the round. The padding is past the segment's durable
//! length, so readers never see it; it is cut off when the segment is sealed, and recovery
//! drops it with any torn tail.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Alignment of direct I/O offsets, lengths and memory.
pub const ALIGN: usize = 4096;

pub fn align_down(n: u64) -> u64 {
    n - n % ALIGN as u64
}

pub fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGN as u64) * ALIGN as u64
}

/// Buffers from this size on are mapped on their own and backed by transparent huge pages
/// where the kernel has them.
const HUGE: usize = 2 << 20;

enum Raw {
    Heap(Vec<u8>),
    Map(memmap2::MmapMut),
}

impl Raw {
    fn bytes(&self) -> &[u8] {
        match self {
            Raw::Heap(v) => v,
            Raw::Map(m) => m,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Raw::Heap(v) => v,
            Raw::Map(m) => m,
        }
    }
}

/// A zeroed byte buffer whose first byte sits at an [`ALIGN`]-aligned address.
pub struct AlignedBuf {
    raw: Raw,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn zeroed(len: usize) -> AlignedBuf {
        let raw = vec![0u8; len + ALIGN];
        // For byte pointers `align_offset` always finds the offset, which is below `ALIGN`.
        let start = raw.as_ptr().align_offset(ALIGN);
        assert!(start < ALIGN, "an aligned start within the buffer");
        AlignedBuf {
            raw: Raw::Heap(raw),
            start,
            len,
        }
    }

    /// A zeroed buffer for the writer's rounds: from [`HUGE`] bytes on, an anonymous mapping
    /// (page-aligned) advised to use huge pages, so that copying a round into it and pinning
    /// it for direct I/O touch a few large pages instead of hundreds of small ones.
    fn zeroed_for_rounds(len: usize) -> AlignedBuf {
        if len < HUGE {
            return AlignedBuf::zeroed(len);
        }
        match memmap2::MmapMut::map_anon(len) {
            Ok(map) => {
                let _ = map.advise(memmap2::Advice::HugePage);
                AlignedBuf {
                    raw: Raw::Map(map),
                    start: 0,
                    len,
                }
            }
            Err(_) => AlignedBuf::zeroed(len),
        }
    }

    /// Shortens the visible bytes to `len` (never lengthens).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let (start, len) = (self.start, self.len);
        &mut self.raw.bytes_mut()[start..start + len]
    }

    /// Makes the buffer `len` bytes long, reallocating only when it has room for fewer. Bytes
    /// kept from earlier use are not cleared.
    pub fn set_len(&mut self, len: usize) {
        if self.raw.bytes().len() - self.start < len {
            // Room to grow a little, so rounds of varying size settle on one buffer.
            *self = AlignedBuf::zeroed_for_rounds(len + len / 4);
        }
        self.len = len;
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        &self.raw.bytes()[self.start..self.start + self.len]
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

/// The file's last partial block, kept by a direct writer: its first `tail_len` bytes start at
/// `tail_start`. Each round is copied after it into an aligned buffer ([`Stage::prepare`]).
pub struct Stage {
    tail: AlignedBuf,
    tail_start: u64,
    tail_len: usize,
}

impl Stage {
    /// The stage for appending at `pos`, with the partial block before it read from `file`.
    pub fn load(file: &File, pos: u64) -> std::io::Result<Stage> {
        let tail_start = align_down(pos);
        let tail_len = (pos - tail_start) as usize;
        let mut tail = AlignedBuf::zeroed(ALIGN);
        if tail_len > 0 {
            let block = read_aligned(file, tail_start, ALIGN)?;
            let bytes = block
                .as_ref()
                .get(..tail_len)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
            tail.as_mut_slice()[..tail_len].copy_from_slice(bytes);
        }
        Ok(Stage {
            tail,
            tail_start,
            tail_len,
        })
    }

    /// The file position an append through this stage continues from.
    pub fn end(&self) -> u64 {
        self.tail_start + self.tail_len as u64
    }

    /// Copies the tail into `out`, lets `write` fill the `total` bytes after it, pads them with
    /// zeros to a block boundary and keeps the new last partial block. Returns the aligned file
    /// position `out` is to be written at; rounds prepared one after another must be written in
    /// that order, as each rewrites the block the previous one ended in.
    pub fn prepare(
        &mut self,
        total: usize,
        out: &mut AlignedBuf,
        write: impl FnOnce(&mut [u8]),
    ) -> u64 {
        let fill = self.tail_len + total;
        let padded = align_up(fill as u64) as usize;
        out.set_len(padded);
        let o = out.as_mut_slice();
        o[..self.tail_len].copy_from_slice(&self.tail.as_ref()[..self.tail_len]);
        write(&mut o[self.tail_len..fill]);
        o[fill..padded].fill(0);
        let start = self.tail_start;
        let last_block = align_down(fill as u64) as usize;
        self.tail_len = fill - last_block;
        self.tail.as_mut_slice()[..self.tail_len].copy_from_slice(&o[last_block..fill]);
        self.tail_start = start + last_block as u64;
        start
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
    fn buffers_for_rounds_grow_aligned_and_zeroed_and_keep_their_bytes() {
        let mut b = AlignedBuf::zeroed(0);
        for len in [100, HUGE + 5, 3 * HUGE, HUGE / 2] {
            b.set_len(len);
            assert_eq!(b.as_ref().len(), len);
            assert_eq!(b.as_ref().as_ptr() as usize % ALIGN, 0);
        }
        // A fresh large buffer is zeroed, and bytes written stay when it is cut and regrown
        // within its room.
        let mut b = AlignedBuf::zeroed(0);
        b.set_len(3 * HUGE);
        assert!(b.as_ref().iter().all(|&x| x == 0));
        b.as_mut_slice()[HUGE] = 7;
        b.set_len(HUGE + 1);
        b.set_len(3 * HUGE);
        assert_eq!(b.as_ref()[HUGE], 7);
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
        // One output buffer reused for rounds that grow and shrink, pieces around and over
        // block boundaries, and a stage reloaded from the file midway, as after a restart.
        let mut out = AlignedBuf::zeroed(0);
        let sizes = [1usize, 4095, 1, 4096, 10_000, (1 << 20) + 3, 7, 2 << 20, 5];
        for (i, size) in sizes.into_iter().enumerate() {
            let piece: Vec<u8> = (0..size).map(|b| (b * 7 + i) as u8).collect();
            let pos = expected.len() as u64;
            let mut s = match stage.take() {
                Some(s) if i != 4 => s,
                _ => Stage::load(&file, pos).unwrap(),
            };
            assert_eq!(s.end(), pos);
            let at = s.prepare(size, &mut out, |o| {
                o[..size / 2].copy_from_slice(&piece[..size / 2]);
                o[size / 2..].copy_from_slice(&piece[size / 2..]);
            });
            assert_eq!(at % ALIGN as u64, 0);
            assert_eq!(out.as_ref().as_ptr() as usize % ALIGN, 0);
            file.write_all_at(out.as_ref(), at).unwrap();
            expected.extend_from_slice(&piece);
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(on_disk.len() as u64, align_up(expected.len() as u64));
            assert_eq!(&on_disk[..expected.len()], &expected[..]);
            assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
            stage = Some(s);
        }
    }
}
