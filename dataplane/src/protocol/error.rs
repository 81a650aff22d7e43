//! The AWS error body and status codes.
//!
//! Errors travel as `{"__type": "<bare shape name>", "message": "..."}` in the request's
//! protocol (a CBOR map for CBOR). Names are bare: SDKs compare them exactly.

use bytes::Bytes;
use serde::Serialize;

use super::codec::{encode, Protocol};

/// An error to return to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The AWS error name, e.g. `ResourceNotFoundException`.
    pub code: &'static str,
    pub message: String,
    /// HTTP status: 400 for every modeled Kinesis exception, 500 for InternalFailure,
    /// 503 for ServiceUnavailable.
    pub status: u16,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "__type")]
    code: &'a str,
    message: &'a str,
}

/// SerializationException bodies use a capitalised `Message` member in production.
#[derive(Serialize)]
struct CapitalBody<'a> {
    #[serde(rename = "__type")]
    code: &'a str,
    #[serde(rename = "Message")]
    message: &'a str,
}

impl AwsError {
    pub fn new(code: &'static str, message: impl Into<String>) -> AwsError {
        AwsError {
            code,
            message: message.into(),
            status: 400,
        }
    }

    pub fn with_status(mut self, status: u16) -> AwsError {
        self.status = status;
        self
    }

    /// An unexpected server-side failure (500).
    pub fn internal(message: impl Into<String>) -> AwsError {
        AwsError::new(codes::INTERNAL_FAILURE, message).with_status(500)
    }

    /// The server is overloaded and the client should retry (503).
    pub fn unavailable() -> AwsError {
        AwsError::new(codes::SERVICE_UNAVAILABLE, "").with_status(503)
    }

    pub fn serialization(message: impl Into<String>) -> AwsError {
        AwsError::new(codes::SERIALIZATION, message)
    }

    pub fn body(&self, protocol: Protocol) -> Bytes {
        if self.message.is_empty() {
            // AWS sends a bare `{"__type": ...}` for body-parse failures and InternalFailure.
            #[derive(Serialize)]
            struct Bare<'a> {
                #[serde(rename = "__type")]
                code: &'a str,
            }
            return encode(protocol, &Bare { code: self.code });
        }
        if self.code == codes::SERIALIZATION {
            encode(
                protocol,
                &CapitalBody {
                    code: self.code,
                    message: &self.message,
                },
            )
        } else {
            encode(
                protocol,
                &Body {
                    code: self.code,
                    message: &self.message,
                },
            )
        }
    }
}

/// Error names shared by the AWS JSON services. Service-specific names live with the service.
pub mod codes {
    pub const SERIALIZATION: &str = "SerializationException";
    pub const UNKNOWN_OPERATION: &str = "UnknownOperationException";
    pub const VALIDATION: &str = "ValidationException";
    pub const INTERNAL_FAILURE: &str = "InternalFailure";
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
    pub const ACCESS_DENIED: &str = "AccessDeniedException";
}
