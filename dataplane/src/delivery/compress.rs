//! Object compression: Firehose's `CompressionFormat` values.

use std::io::Write;

/// `CompressionFormat` of an S3 destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Uncompressed,
    Gzip,
    Zip,
    /// The Snappy framing format (`.snappy` streams that `snzip` and Spark read).
    Snappy,
    /// Hadoop's block framing of raw Snappy, which Athena and Hive read.
    HadoopSnappy,
}

/// The enum values Firehose accepts, in its model's order.
pub const FORMATS: &[&str] = &["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"];

/// Hadoop's SnappyCodec compresses input in blocks of at most this many bytes (its default
/// `io.compression.codec.snappy.buffersize`).
const HADOOP_BLOCK: usize = 256 * 1024;

impl Compression {
    pub fn parse(s: Option<&str>) -> Compression {
        match s {
            Some("GZIP") => Compression::Gzip,
            Some("ZIP") => Compression::Zip,
            Some("Snappy") => Compression::Snappy,
            Some("HADOOP_SNAPPY") => Compression::HadoopSnappy,
            _ => Compression::Uncompressed,
        }
    }

    /// The key suffix Firehose adds when no FileExtension is configured.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Uncompressed => "",
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
            Compression::Snappy => ".snappy",
            Compression::HadoopSnappy => ".hsnappy",
        }
    }

    /// Compresses a whole object. `name` is the entry name inside a ZIP archive.
    pub fn compress(self, data: &[u8], name: &str) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::Uncompressed => Ok(data.to_vec()),
            Compression::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data)?;
                e.finish()
            }
            Compression::Zip => zip_single(data, name),
            Compression::Snappy => {
                let mut w = snap::write::FrameEncoder::new(Vec::new());
                w.write_all(data)?;
                w.into_inner()
                    .map_err(|e| std::io::Error::other(e.to_string()))
            }
            Compression::HadoopSnappy => {
                let mut out = Vec::new();
                let mut enc = snap::raw::Encoder::new();
                for block in data.chunks(HADOOP_BLOCK) {
                    let c = enc
                        .compress_vec(block)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                    out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                    out.extend_from_slice(&c);
                }
                Ok(out)
            }
        }
    }
}

/// A ZIP archive (PKWARE APPNOTE 6.3) with one deflated entry and no extra fields.
fn zip_single(data: &[u8], name: &str) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data)?;
    let deflated = e.finish()?;
    let crc = crc32fast::hash(data);
    let name = name.as_bytes();
    let (clen, ulen) = (deflated.len() as u32, data.len() as u32);
    let mut out = Vec::with_capacity(deflated.len() + 2 * name.len() + 100);
    // Local file header: version 2.0, no flags, method 8 (deflate), DOS time/date 0.
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    out.extend_from_slice(&[20, 0, 0, 0, 8, 0, 0, 0, 0x21, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&clen.to_le_bytes());
    out.extend_from_slice(&ulen.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&deflated);
    let central_at = out.len() as u32;
    // Central directory header.
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&[20, 0, 20, 0, 0, 0, 8, 0, 0, 0, 0x21, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&clen.to_le_bytes());
    out.extend_from_slice(&ulen.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 12]); // extra, comment, disk, internal attrs, external attrs
    out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    out.extend_from_slice(name);
    let central_len = out.len() as u32 - central_at;
    // End of central directory.
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&central_len.to_le_bytes());
    out.extend_from_slice(&central_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const TEXT: &[u8] = b"{\"n\":1}\n{\"n\":2}\n";

    #[test]
    fn gzip_objects_decompress_to_the_records() {
        let z = Compression::Gzip.compress(TEXT, "x").unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, TEXT);
    }

    #[test]
    fn snappy_objects_use_the_framing_format() {
        let z = Compression::Snappy.compress(TEXT, "x").unwrap();
        let mut out = Vec::new();
        snap::read::FrameDecoder::new(&z[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, TEXT);
    }

    #[test]
    fn hadoop_snappy_objects_are_length_prefixed_raw_blocks() {
        let z = Compression::HadoopSnappy.compress(TEXT, "x").unwrap();
        let ulen = u32::from_be_bytes(z[0..4].try_into().unwrap()) as usize;
        let clen = u32::from_be_bytes(z[4..8].try_into().unwrap()) as usize;
        assert_eq!(ulen, TEXT.len());
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&z[8..8 + clen])
            .unwrap();
        assert_eq!(raw, TEXT);
    }

    #[test]
    fn zip_objects_hold_one_deflated_entry_with_its_crc() {
        let z = Compression::Zip.compress(TEXT, "obj").unwrap();
        assert_eq!(&z[0..4], b"PK\x03\x04");
        let clen = u32::from_le_bytes(z[18..22].try_into().unwrap()) as usize;
        let start = 30 + 3;
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&z[start..start + clen])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, TEXT);
        assert_eq!(
            u32::from_le_bytes(z[14..18].try_into().unwrap()),
            crc32fast::hash(TEXT)
        );
        assert_eq!(&z[z.len() - 22..z.len() - 18], b"PK\x05\x06");
    }
}
