//! Services: one folder per AWS API. A service takes an operation name and a decoded request
//! body and returns an encoded response or an AWS error; it never sees HTTP types.

pub mod analytics;
pub mod firehose;
pub mod kinesis;
pub mod validate;

use bytes::Bytes;

use crate::protocol::{AwsError, Protocol};

/// The body of a successful response.
pub enum Reply {
    /// A complete body (empty for void operations).
    Body(Bytes),
    /// An event stream (SubscribeToShard): frames arrive on the receiver.
    EventStream(tokio::sync::mpsc::Receiver<Bytes>),
}

/// Result of calling an operation.
pub type CallResult = Result<Reply, AwsError>;

/// Decodes a request, runs the operation, encodes the output.
#[macro_export]
macro_rules! run_op {
    // Runs the operation on a decoded input and encodes its output.
    (@run $proto:expr, $input:expr, $handler:expr) => {{
        let output = $handler($input).await?;
        Ok($crate::services::Reply::Body(
            $crate::services::Encode::encode(&output, $proto),
        ))
    }};
    // The body is given up: it is freed once decoded, before the operation runs (a write
    // holds only its records while it waits to be durable, not the body they came in).
    ($proto:expr, owned $body:expr, $handler:expr) => {{
        let input = {
            let body: bytes::Bytes = $body;
            $crate::protocol::codec::decode($proto, &body)?
        };
        $crate::run_op!(@run $proto, input, $handler)
    }};
    ($proto:expr, $body:expr, $handler:expr) => {{
        let input = $crate::protocol::codec::decode($proto, $body)?;
        $crate::run_op!(@run $proto, input, $handler)
    }};
}

/// How an operation's output becomes a body.
pub trait Encode {
    fn encode(&self, protocol: Protocol) -> Bytes;
}

impl<T: serde::Serialize> Encode for T {
    fn encode(&self, protocol: Protocol) -> Bytes {
        crate::protocol::codec::encode(protocol, self)
    }
}

/// Void operations answer 200 with an empty body.
pub fn void() -> Bytes {
    Bytes::new()
}

impl Encode for kinesis::model::Void {
    fn encode(&self, _protocol: Protocol) -> Bytes {
        void()
    }
}
