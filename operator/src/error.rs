//! The operator's error type: every failure a reconcile can meet, with a bounded `reason()`
//! (metric label and condition reason) and whether it is transient (requeue) or terminal
//! (`Stalled` until the spec changes).

use crate::dataplane::ClientError;

/// A reconcile failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed (apply of a child, status patch, get of a Stream).
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[source] kube::Error),

    /// The data plane could not be reached, or answered with an error.
    #[error("data plane call failed: {0}")]
    DataPlane(#[from] ClientError),

    /// Adding or removing the finalizer failed, or the apply/cleanup inside it did.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),

    /// The object has no name or namespace (never true for objects from a watch).
    #[error("object has no {0}")]
    MissingObjectKey(&'static str),

    /// The random token of a multi-pod stream's Secret could not be drawn.
    #[error("drawing the cluster token: {0}")]
    Token(#[source] std::io::Error),

    /// The spec passed schema validation but cannot be carried out, for example a reshard the
    /// data plane rejects. Terminal until the spec changes.
    #[error("{message}")]
    InvalidSpec {
        /// Condition reason, CamelCase.
        reason: &'static str,
        /// Detail for the user.
        message: String,
    },
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e)
    }
}

impl Error {
    /// A bounded, CamelCase label: the failure-metric label and the condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
            Error::DataPlane(e) => e.reason(),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.reason(),
                _ => "FinalizerError",
            },
            Error::MissingObjectKey(_) => "MissingObjectKey",
            Error::Token(_) => "ClusterSecretError",
            Error::InvalidSpec { reason, .. } => reason,
        }
    }

    /// Whether retrying later can succeed without a spec change.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Kube(kube::Error::Api(s)) => !matches!(s.code, 400 | 422),
            Error::Kube(_) => true,
            Error::DataPlane(e) => e.is_transient(),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.is_transient(),
                _ => true,
            },
            Error::MissingObjectKey(_) => false,
            Error::Token(_) => true,
            Error::InvalidSpec { .. } => false,
        }
    }
}

/// Result with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_plane_validation_errors_are_terminal_and_connection_errors_transient() {
        let invalid = Error::DataPlane(ClientError::Aws {
            status: 400,
            type_: "InvalidArgumentException".into(),
            message: "bad".into(),
        });
        assert!(!invalid.is_transient());
        assert_eq!(invalid.reason(), "InvalidArgument");
        let down = Error::DataPlane(ClientError::Unreachable("refused".into()));
        assert!(down.is_transient());
        assert_eq!(down.reason(), "DataPlaneUnreachable");
    }
}
