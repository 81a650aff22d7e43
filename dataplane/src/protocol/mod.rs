//! Wire protocol only: operation targets, the JSON 1.1 and CBOR 1.1 codecs, the shapes that
//! differ between them (blobs, timestamps), AWS error bodies, SigV4 verification and
//! event-stream framing. Nothing here knows about streams or storage.

pub mod codec;
pub mod error;
pub mod eventstream;
pub mod sigv4;
pub mod types;

pub use codec::Protocol;
pub use error::AwsError;
pub use types::{Blob, SharedStr, Timestamp};

/// The AWS services served on the API port, by their `X-Amz-Target` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Kinesis,
    Firehose,
    KinesisAnalytics,
}

/// A parsed `X-Amz-Target` header: `Kinesis_20131202.PutRecords`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub service: Service,
    pub operation: &'a str,
}

impl<'a> Target<'a> {
    pub fn parse(header: &'a str) -> Option<Target<'a>> {
        let (prefix, operation) = header.split_once('.')?;
        let service = match prefix {
            "Kinesis_20131202" => Service::Kinesis,
            "Firehose_20150804" => Service::Firehose,
            "KinesisAnalytics_20150814" => Service::KinesisAnalytics,
            _ => return None,
        };
        if operation.is_empty() {
            return None;
        }
        Some(Target { service, operation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parses_service_and_operation() {
        let t = Target::parse("Kinesis_20131202.PutRecords").unwrap();
        assert_eq!(t.service, Service::Kinesis);
        assert_eq!(t.operation, "PutRecords");
        assert!(Target::parse("Kinesis_20131202").is_none());
        assert!(Target::parse("DynamoDB_20120810.GetItem").is_none());
    }
}
