//! AWS event-stream message framing (`application/vnd.amazon.eventstream`).
//!
//! Kinesis `SubscribeToShard` answers with a stream of these frames: the server
//! encodes [`Message`]s, and the [`Decoder`] reads them back (used by tests and
//! by anything that consumes a stream incrementally).
//!
//! Wire format of one message (all integers big-endian):
//!
//! ```text
//! total_len u32 | headers_len u32 | prelude_crc u32 | headers | payload | message_crc u32
//! ```
//!
//! `prelude_crc` is the CRC-32 (IEEE) of the first 8 bytes and `message_crc`
//! the CRC-32 of every byte before it, prelude CRC included. Each header is
//! `name_len u8 | name | value_type u8 | value`.
//!
//! Limits follow the AWS CRT (`aws-c-event-stream`), which the Java, Go and
//! Rust SDKs match: a message is at most 16 MiB, its headers at most 128 KiB,
//! a header name at most 255 bytes and a byte-array or string header value at
//! most `i16::MAX` (32 767) bytes even though its length field is a `u16`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes in the prelude: total length, headers length and prelude CRC.
const PRELUDE_LEN: usize = 12;
/// Bytes in the trailing message CRC.
const MESSAGE_CRC_LEN: usize = 4;
/// The smallest possible frame: a prelude and a message CRC, nothing else.
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + MESSAGE_CRC_LEN;
/// Largest whole frame the AWS CRT accepts (`AWS_EVENT_STREAM_MAX_MESSAGE_SIZE`).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
/// Largest encoded header block the AWS CRT accepts (`AWS_EVENT_STREAM_MAX_HEADERS_SIZE`).
pub const MAX_HEADERS_LEN: usize = 128 * 1024;
/// A header name's length is a single byte on the wire.
pub const MAX_HEADER_NAME_LEN: usize = u8::MAX as usize;
/// SDKs cap byte-array and string values at `i16::MAX`, not `u16::MAX`, because
/// the Java implementation reads the length as a signed short.
pub const MAX_HEADER_VALUE_LEN: usize = i16::MAX as usize;

const TYPE_BOOL_TRUE: u8 = 0;
const TYPE_BOOL_FALSE: u8 = 1;
const TYPE_BYTE: u8 = 2;
const TYPE_SHORT: u8 = 3;
const TYPE_INT: u8 = 4;
const TYPE_LONG: u8 = 5;
const TYPE_BYTES: u8 = 6;
const TYPE_STRING: u8 = 7;
const TYPE_TIMESTAMP: u8 = 8;
const TYPE_UUID: u8 = 9;

/// Everything that can go wrong encoding or decoding an event-stream frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    /// The CRC-32 stored in the prelude does not match the first 8 bytes, so the
    /// lengths cannot be trusted (the stream is corrupt or not an event stream).
    #[error("prelude checksum mismatch: computed {computed:#010x}, frame says {stored:#010x}")]
    PreludeChecksumMismatch {
        /// CRC-32 of the 8 length bytes as received.
        computed: u32,
        /// CRC-32 carried in the frame.
        stored: u32,
    },
    /// The trailing CRC-32 does not match the frame's contents.
    #[error("message checksum mismatch: computed {computed:#010x}, frame says {stored:#010x}")]
    MessageChecksumMismatch {
        /// CRC-32 of the frame bytes as received.
        computed: u32,
        /// CRC-32 carried in the frame.
        stored: u32,
    },
    /// The prelude declares a total length below the 16-byte minimum frame.
    #[error("message length {0} is shorter than the 16-byte minimum")]
    MessageTooShort(usize),
    /// The whole frame would exceed [`MAX_MESSAGE_LEN`].
    #[error("message length {0} exceeds the 16 MiB limit")]
    MessageTooLong(usize),
    /// The encoded headers would exceed [`MAX_HEADERS_LEN`].
    #[error("headers length {0} exceeds the 128 KiB limit")]
    HeadersTooLong(usize),
    /// The prelude's headers length does not fit inside its total length.
    #[error("headers length {headers_len} does not fit in a message of length {total_len}")]
    HeadersLengthExceedsMessage {
        /// Declared length of the header block.
        headers_len: usize,
        /// Declared length of the whole frame.
        total_len: usize,
    },
    /// A header name is empty or longer than [`MAX_HEADER_NAME_LEN`] bytes.
    #[error("header name length {0} is outside 1..=255 bytes")]
    InvalidHeaderNameLength(usize),
    /// A byte-array or string header value is longer than [`MAX_HEADER_VALUE_LEN`].
    #[error("value of header {name:?} is {len} bytes, over the 32767-byte limit")]
    HeaderValueTooLong {
        /// The header whose value is too long.
        name: String,
        /// Length of the value in bytes.
        len: usize,
    },
    /// A header runs past the end of the declared header block.
    #[error("header block is truncated")]
    TruncatedHeader,
    /// A header carries a value type outside 0..=9.
    #[error("unknown header value type {0}")]
    UnknownHeaderValueType(u8),
    /// A header name or string value is not valid UTF-8.
    #[error("header name or string value is not valid UTF-8")]
    InvalidUtf8,
    /// An earlier call failed; frame boundaries are lost, so the stream cannot be resumed.
    #[error("decoder failed earlier and cannot resynchronise the stream")]
    Failed,
}

/// A typed header value, one variant per wire value type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (`true`) and 1 (`false`); the value lives in the type byte.
    Bool(bool),
    /// Type 2: one signed byte.
    Byte(i8),
    /// Type 3: big-endian `i16`.
    Short(i16),
    /// Type 4: big-endian `i32`.
    Int(i32),
    /// Type 5: big-endian `i64`.
    Long(i64),
    /// Type 6: `u16` length then raw bytes.
    Bytes(Bytes),
    /// Type 7: `u16` length then UTF-8.
    String(String),
    /// Type 8: big-endian `i64` milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: 16 raw bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The string inside a [`HeaderValue::String`], for the common `:event-type` style lookups.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    fn encoded_len(&self) -> usize {
        1 + match self {
            HeaderValue::Bool(_) => 0,
            HeaderValue::Byte(_) => 1,
            HeaderValue::Short(_) => 2,
            HeaderValue::Int(_) => 4,
            HeaderValue::Long(_) | HeaderValue::Timestamp(_) => 8,
            HeaderValue::Bytes(b) => 2 + b.len(),
            HeaderValue::String(s) => 2 + s.len(),
            HeaderValue::Uuid(_) => 16,
        }
    }
}

/// One event-stream message: ordered headers and an opaque payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Headers in wire order; names may repeat, as the format allows.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload, typically JSON for Kinesis.
    pub payload: Bytes,
}

impl Message {
    /// An event message. The header order (`:message-type`, `:event-type`,
    /// `:content-type`) is the one AWS services emit.
    pub fn event(event_type: &str, content_type: &str, payload: Bytes) -> Message {
        Message {
            headers: vec![
                (":message-type".into(), HeaderValue::String("event".into())),
                (":event-type".into(), HeaderValue::String(event_type.into())),
                (
                    ":content-type".into(),
                    HeaderValue::String(content_type.into()),
                ),
            ],
            payload,
        }
    }

    /// A modelled-exception message (`:message-type: exception`), which SDKs
    /// surface as a typed error named by `:exception-type`.
    pub fn exception(exception_type: &str, content_type: &str, payload: Bytes) -> Message {
        Message {
            headers: vec![
                (
                    ":message-type".into(),
                    HeaderValue::String("exception".into()),
                ),
                (
                    ":exception-type".into(),
                    HeaderValue::String(exception_type.into()),
                ),
                (
                    ":content-type".into(),
                    HeaderValue::String(content_type.into()),
                ),
            ],
            payload,
        }
    }

    /// The first header with this name (names are case-sensitive on the wire).
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value)
    }

    /// Encodes the message as one frame.
    ///
    /// Fails only when a limit is exceeded, since a frame over the limits would
    /// be rejected by every SDK's decoder anyway.
    pub fn encode(&self) -> Result<Bytes, EventStreamError> {
        let mut out = BytesMut::new();
        self.encode_into(&mut out)?;
        Ok(out.freeze())
    }

    /// Appends the encoded frame to `out`; on error nothing is appended.
    pub fn encode_into(&self, out: &mut BytesMut) -> Result<(), EventStreamError> {
        let mut headers_len = 0usize;
        for (name, value) in &self.headers {
            if name.is_empty() || name.len() > MAX_HEADER_NAME_LEN {
                return Err(EventStreamError::InvalidHeaderNameLength(name.len()));
            }
            let value_len = match value {
                HeaderValue::Bytes(b) => b.len(),
                HeaderValue::String(s) => s.len(),
                _ => 0,
            };
            if value_len > MAX_HEADER_VALUE_LEN {
                return Err(EventStreamError::HeaderValueTooLong {
                    name: name.clone(),
                    len: value_len,
                });
            }
            headers_len += 1 + name.len() + value.encoded_len();
        }
        if headers_len > MAX_HEADERS_LEN {
            return Err(EventStreamError::HeadersTooLong(headers_len));
        }
        let total_len = MIN_MESSAGE_LEN + headers_len + self.payload.len();
        if total_len > MAX_MESSAGE_LEN {
            return Err(EventStreamError::MessageTooLong(total_len));
        }

        let start = out.len();
        out.reserve(total_len);
        // Both lengths are bounded by the 16 MiB check above, so they fit in u32.
        out.put_u32(total_len as u32);
        out.put_u32(headers_len as u32);
        let prelude_crc = crc32fast::hash(&out[start..start + 8]);
        out.put_u32(prelude_crc);
        for (name, value) in &self.headers {
            // Lengths were bounded above: names by 255, values by i16::MAX.
            out.put_u8(name.len() as u8);
            out.put_slice(name.as_bytes());
            match value {
                HeaderValue::Bool(true) => out.put_u8(TYPE_BOOL_TRUE),
                HeaderValue::Bool(false) => out.put_u8(TYPE_BOOL_FALSE),
                HeaderValue::Byte(v) => {
                    out.put_u8(TYPE_BYTE);
                    out.put_i8(*v);
                }
                HeaderValue::Short(v) => {
                    out.put_u8(TYPE_SHORT);
                    out.put_i16(*v);
                }
                HeaderValue::Int(v) => {
                    out.put_u8(TYPE_INT);
                    out.put_i32(*v);
                }
                HeaderValue::Long(v) => {
                    out.put_u8(TYPE_LONG);
                    out.put_i64(*v);
                }
                HeaderValue::Bytes(b) => {
                    out.put_u8(TYPE_BYTES);
                    out.put_u16(b.len() as u16);
                    out.put_slice(b);
                }
                HeaderValue::String(s) => {
                    out.put_u8(TYPE_STRING);
                    out.put_u16(s.len() as u16);
                    out.put_slice(s.as_bytes());
                }
                HeaderValue::Timestamp(v) => {
                    out.put_u8(TYPE_TIMESTAMP);
                    out.put_i64(*v);
                }
                HeaderValue::Uuid(u) => {
                    out.put_u8(TYPE_UUID);
                    out.put_slice(u);
                }
            }
        }
        out.put_slice(&self.payload);
        let message_crc = crc32fast::hash(&out[start..]);
        out.put_u32(message_crc);
        debug_assert_eq!(out.len() - start, total_len);
        Ok(())
    }
}

/// Incremental decoder: [`push`](Decoder::push) bytes as they arrive and call
/// [`next_message`](Decoder::next_message) until it yields `Ok(None)`.
///
/// Any error is final: once a length or checksum is wrong the frame boundaries
/// are lost, so later calls return [`EventStreamError::Failed`].
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    failed: bool,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes; they may split frames anywhere.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet returned as part of a message.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, EventStreamError> {
        if self.failed {
            return Err(EventStreamError::Failed);
        }
        let result = self.try_next();
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn try_next(&mut self) -> Result<Option<Message>, EventStreamError> {
        if self.buf.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let (total_len, _) = check_prelude(&self.buf[..PRELUDE_LEN])?;
        // The prelude is checked before the rest arrives so that a corrupt
        // length cannot make us buffer up to 16 MiB of garbage first.
        if self.buf.len() < total_len {
            return Ok(None);
        }
        let frame = self.buf.split_to(total_len).freeze();
        decode_frame(frame).map(Some)
    }
}

/// Validates the 12-byte prelude; returns (total_len, headers_len).
fn check_prelude(prelude: &[u8]) -> Result<(usize, usize), EventStreamError> {
    let mut p = prelude;
    let total_len = p.get_u32() as usize;
    let headers_len = p.get_u32() as usize;
    let stored = p.get_u32();
    let computed = crc32fast::hash(&prelude[..8]);
    if computed != stored {
        return Err(EventStreamError::PreludeChecksumMismatch { computed, stored });
    }
    if total_len < MIN_MESSAGE_LEN {
        return Err(EventStreamError::MessageTooShort(total_len));
    }
    if total_len > MAX_MESSAGE_LEN {
        return Err(EventStreamError::MessageTooLong(total_len));
    }
    if headers_len > MAX_HEADERS_LEN {
        return Err(EventStreamError::HeadersTooLong(headers_len));
    }
    if headers_len > total_len - MIN_MESSAGE_LEN {
        return Err(EventStreamError::HeadersLengthExceedsMessage {
            headers_len,
            total_len,
        });
    }
    Ok((total_len, headers_len))
}

/// Decodes exactly one whole frame.
fn decode_frame(frame: Bytes) -> Result<Message, EventStreamError> {
    let (total_len, headers_len) = check_prelude(&frame[..PRELUDE_LEN])?;
    let crc_at = total_len - MESSAGE_CRC_LEN;
    let stored = (&frame[crc_at..]).get_u32();
    let computed = crc32fast::hash(&frame[..crc_at]);
    if computed != stored {
        return Err(EventStreamError::MessageChecksumMismatch { computed, stored });
    }
    let headers_end = PRELUDE_LEN + headers_len;
    let headers = decode_headers(frame.slice(PRELUDE_LEN..headers_end))?;
    Ok(Message {
        headers,
        payload: frame.slice(headers_end..crc_at),
    })
}

fn decode_headers(mut block: Bytes) -> Result<Vec<(String, HeaderValue)>, EventStreamError> {
    let mut headers = Vec::new();
    while block.has_remaining() {
        let name_len = block.get_u8() as usize;
        if name_len == 0 {
            return Err(EventStreamError::InvalidHeaderNameLength(0));
        }
        let name = take_utf8(&mut block, name_len)?;
        need(&block, 1)?;
        let value = match block.get_u8() {
            TYPE_BOOL_TRUE => HeaderValue::Bool(true),
            TYPE_BOOL_FALSE => HeaderValue::Bool(false),
            TYPE_BYTE => {
                need(&block, 1)?;
                HeaderValue::Byte(block.get_i8())
            }
            TYPE_SHORT => {
                need(&block, 2)?;
                HeaderValue::Short(block.get_i16())
            }
            TYPE_INT => {
                need(&block, 4)?;
                HeaderValue::Int(block.get_i32())
            }
            TYPE_LONG => {
                need(&block, 8)?;
                HeaderValue::Long(block.get_i64())
            }
            TYPE_BYTES => {
                let len = take_value_len(&mut block, &name)?;
                HeaderValue::Bytes(block.split_to(len))
            }
            TYPE_STRING => {
                let len = take_value_len(&mut block, &name)?;
                HeaderValue::String(take_utf8(&mut block, len)?)
            }
            TYPE_TIMESTAMP => {
                need(&block, 8)?;
                HeaderValue::Timestamp(block.get_i64())
            }
            TYPE_UUID => {
                need(&block, 16)?;
                let mut uuid = [0u8; 16];
                block.copy_to_slice(&mut uuid);
                HeaderValue::Uuid(uuid)
            }
            other => return Err(EventStreamError::UnknownHeaderValueType(other)),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Fails unless `n` more bytes remain, so the `get_*` calls never panic.
fn need(block: &Bytes, n: usize) -> Result<(), EventStreamError> {
    if block.remaining() < n {
        Err(EventStreamError::TruncatedHeader)
    } else {
        Ok(())
    }
}

fn take_value_len(block: &mut Bytes, name: &str) -> Result<usize, EventStreamError> {
    need(block, 2)?;
    let len = block.get_u16() as usize;
    if len > MAX_HEADER_VALUE_LEN {
        return Err(EventStreamError::HeaderValueTooLong {
            name: name.to_owned(),
            len,
        });
    }
    need(block, len)?;
    Ok(len)
}

fn take_utf8(block: &mut Bytes, len: usize) -> Result<String, EventStreamError> {
    need(block, len)?;
    let raw = block.split_to(len);
    String::from_utf8(raw.to_vec()).map_err(|_| EventStreamError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_types_message() -> Message {
        Message {
            headers: vec![
                ("t".into(), HeaderValue::Bool(true)),
                ("f".into(), HeaderValue::Bool(false)),
                ("b".into(), HeaderValue::Byte(-3)),
                ("s".into(), HeaderValue::Short(-1234)),
                ("i".into(), HeaderValue::Int(123_456_789)),
                ("l".into(), HeaderValue::Long(-9_876_543_210)),
                (
                    "ba".into(),
                    HeaderValue::Bytes(Bytes::from_static(b"\x00\x01\xff")),
                ),
                ("str".into(), HeaderValue::String("héllo".into())),
                ("ts".into(), HeaderValue::Timestamp(1_764_115_200_000)),
                ("u".into(), HeaderValue::Uuid([7u8; 16])),
            ],
            payload: Bytes::from_static(b"{\"Records\":[]}"),
        }
    }

    fn decode_all(bytes: &[u8]) -> Vec<Message> {
        let mut decoder = Decoder::new();
        decoder.push(bytes);
        let mut out = Vec::new();
        while let Some(m) = decoder.next_message().expect("valid stream") {
            out.push(m);
        }
        out
    }

    #[test]
    fn empty_message_encodes_to_the_16_byte_minimum_frame() {
        let bytes = Message::default().encode().expect("encodes");
        // total_len=16, headers_len=0, then the two CRCs; checked by hand with crc32.
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..8], &[0, 0, 0, 16, 0, 0, 0, 0]);
        assert_eq!((&bytes[8..12]).get_u32(), crc32fast::hash(&bytes[..8]));
        assert_eq!((&bytes[12..16]).get_u32(), crc32fast::hash(&bytes[..12]));
    }

    #[test]
    fn encodes_the_known_aws_frame_with_no_headers() {
        // The `valid_no_headers` vector from the AWS event-stream test suite:
        // payload {'foo':'bar'} and nothing else.
        let expected: &[u8] = &[
            0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27,
            0x66, 0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39,
            0x36,
        ];
        let message = Message {
            headers: vec![],
            payload: Bytes::from_static(b"{'foo':'bar'}"),
        };
        assert_eq!(&message.encode().expect("encodes")[..], expected);
        assert_eq!(decode_all(expected), vec![message]);
    }

    #[test]
    fn round_trips_every_header_value_type() {
        let message = all_types_message();
        let bytes = message.encode().expect("encodes");
        assert_eq!(decode_all(&bytes), vec![message]);
    }

    #[test]
    fn decodes_messages_fed_one_byte_at_a_time() {
        let first = all_types_message();
        let second = Message::event("SubscribeToShardEvent", "application/json", "{}".into());
        let mut stream = first.encode().expect("encodes").to_vec();
        stream.extend_from_slice(&second.encode().expect("encodes"));

        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        for byte in &stream {
            decoder.push(std::slice::from_ref(byte));
            while let Some(m) = decoder.next_message().expect("valid stream") {
                got.push(m);
            }
        }
        assert_eq!(got, vec![first, second]);
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn event_helper_uses_the_aws_header_order() {
        let m = Message::event("initial-response", "application/json", Bytes::new());
        let names: Vec<&str> = m.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [":message-type", ":event-type", ":content-type"]);
        assert_eq!(
            m.header(":event-type").and_then(HeaderValue::as_str),
            Some("initial-response")
        );
        assert_eq!(
            m.header(":message-type").and_then(HeaderValue::as_str),
            Some("event")
        );
    }

    #[test]
    fn exception_helper_sets_exception_type() {
        let m = Message::exception(
            "ResourceNotFoundException",
            "application/json",
            Bytes::new(),
        );
        assert_eq!(
            m.header(":message-type").and_then(HeaderValue::as_str),
            Some("exception")
        );
        assert_eq!(
            m.header(":exception-type").and_then(HeaderValue::as_str),
            Some("ResourceNotFoundException")
        );
        assert_eq!(m.header(":event-type"), None);
    }

    #[test]
    fn rejects_a_corrupted_prelude_checksum_before_the_body_arrives() {
        let mut bytes = all_types_message().encode().expect("encodes").to_vec();
        bytes[9] ^= 0x01;
        let mut decoder = Decoder::new();
        decoder.push(&bytes[..PRELUDE_LEN]);
        assert!(matches!(
            decoder.next_message(),
            Err(EventStreamError::PreludeChecksumMismatch { .. })
        ));
    }

    #[test]
    fn rejects_a_flipped_payload_bit_with_a_message_checksum_error() {
        let mut bytes = all_types_message().encode().expect("encodes").to_vec();
        let last_payload_byte = bytes.len() - 5;
        bytes[last_payload_byte] ^= 0x80;
        let mut decoder = Decoder::new();
        decoder.push(&bytes);
        assert!(matches!(
            decoder.next_message(),
            Err(EventStreamError::MessageChecksumMismatch { .. })
        ));
    }

    #[test]
    fn stays_failed_after_an_error() {
        let mut decoder = Decoder::new();
        decoder.push(&[0xff; 32]);
        assert!(decoder.next_message().is_err());
        decoder.push(&Message::default().encode().expect("encodes"));
        assert_eq!(decoder.next_message(), Err(EventStreamError::Failed));
    }

    /// Builds a frame with correct CRCs around arbitrary (possibly invalid) parts.
    fn raw_frame(total_len: u32, headers_len: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&total_len.to_be_bytes());
        out.extend_from_slice(&headers_len.to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out
    }

    fn decode_one(bytes: &[u8]) -> Result<Option<Message>, EventStreamError> {
        let mut decoder = Decoder::new();
        decoder.push(bytes);
        decoder.next_message()
    }

    #[test]
    fn rejects_a_total_length_below_the_minimum_frame() {
        let frame = raw_frame(15, 0, &[]);
        assert_eq!(
            decode_one(&frame),
            Err(EventStreamError::MessageTooShort(15))
        );
    }

    #[test]
    fn rejects_a_declared_length_over_16_mib_without_buffering_it() {
        let frame = raw_frame((MAX_MESSAGE_LEN + 1) as u32, 0, &[]);
        assert_eq!(
            decode_one(&frame[..PRELUDE_LEN]),
            Err(EventStreamError::MessageTooLong(MAX_MESSAGE_LEN + 1))
        );
    }

    #[test]
    fn rejects_headers_longer_than_the_message() {
        let frame = raw_frame(20, 8, &[0; 4]);
        assert_eq!(
            decode_one(&frame),
            Err(EventStreamError::HeadersLengthExceedsMessage {
                headers_len: 8,
                total_len: 20
            })
        );
    }

    #[test]
    fn rejects_an_unknown_header_value_type() {
        let frame = raw_frame(20, 4, &[1, b'x', 10, 0]);
        assert_eq!(
            decode_one(&frame),
            Err(EventStreamError::UnknownHeaderValueType(10))
        );
    }

    #[test]
    fn rejects_a_string_header_that_runs_past_the_header_block() {
        // name "x", type string, declared length 5 but only 1 byte present.
        let frame = raw_frame(22, 6, &[1, b'x', 7, 0, 5, b'a']);
        assert_eq!(decode_one(&frame), Err(EventStreamError::TruncatedHeader));
    }

    #[test]
    fn rejects_a_header_name_that_is_not_utf8() {
        let frame = raw_frame(19, 3, &[1, 0xff, 0]);
        assert_eq!(decode_one(&frame), Err(EventStreamError::InvalidUtf8));
    }

    #[test]
    fn refuses_to_encode_a_header_name_over_255_bytes() {
        let message = Message {
            headers: vec![("n".repeat(256), HeaderValue::Bool(true))],
            payload: Bytes::new(),
        };
        assert_eq!(
            message.encode(),
            Err(EventStreamError::InvalidHeaderNameLength(256))
        );
    }

    #[test]
    fn refuses_to_encode_a_string_value_over_i16_max() {
        let message = Message {
            headers: vec![(
                "big".into(),
                HeaderValue::String("a".repeat(MAX_HEADER_VALUE_LEN + 1)),
            )],
            payload: Bytes::new(),
        };
        assert!(matches!(
            message.encode(),
            Err(EventStreamError::HeaderValueTooLong { len, .. }) if len == MAX_HEADER_VALUE_LEN + 1
        ));
    }

    #[test]
    fn refuses_to_encode_a_message_over_16_mib() {
        let message = Message {
            headers: vec![],
            payload: Bytes::from(vec![0u8; MAX_MESSAGE_LEN]),
        };
        assert_eq!(
            message.encode(),
            Err(EventStreamError::MessageTooLong(MAX_MESSAGE_LEN + 16))
        );
    }

    #[test]
    fn encode_into_appends_after_existing_bytes() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let message = Message::event("e", "application/json", "{}".into());
        message.encode_into(&mut out).expect("encodes");
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(decode_all(&out[6..]), vec![message]);
    }
}
