//! TLS for the API port: h2 and HTTP/1.1 negotiated by ALPN. With no certificate configured, a
//! self-signed one for `localhost` and `127.0.0.1` is generated and written next to the data, so
//! clients can be pointed at it.
//!
//! Also the trust of outgoing `https://` connections (S3 endpoints, HTTP endpoint destinations,
//! transformation endpoints, remote streams): the system's roots plus the PEM bundle of
//! `--ca-file`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Failure to set up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate or key file could not be read or parsed.
    #[error("cannot load {path}: {message}")]
    Load { path: String, message: String },
    /// rustls refused the certificate and key.
    #[error("invalid TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// A self-signed certificate could not be generated.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The generated certificate could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The acceptor and, when one was generated, where its certificate was written.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub generated_cert: Option<PathBuf>,
}

fn load_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Load {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Builds the acceptor from PEM files, or from a generated certificate written under `out_dir`.
pub fn acceptor(cert: Option<&Path>, key: Option<&Path>, out_dir: &Path) -> Result<Tls, TlsError> {
    let (certs, key, generated_cert) = match (cert, key) {
        (Some(c), Some(k)) => {
            let certs = CertificateDer::pem_file_iter(c)
                .map_err(|e| load_err(c, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| load_err(c, e))?;
            let key = PrivateKeyDer::from_pem_file(k).map_err(|e| load_err(k, e))?;
            (certs, key, None)
        }
        _ => {
            let generated = rcgen::generate_simple_self_signed(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
            ])?;
            let pem = generated.cert.pem();
            std::fs::create_dir_all(out_dir).map_err(|source| TlsError::Write {
                path: out_dir.display().to_string(),
                source,
            })?;
            let path = out_dir.join("self-signed-cert.pem");
            std::fs::write(&path, pem).map_err(|source| TlsError::Write {
                path: path.display().to_string(),
                source,
            })?;
            let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
                .map_err(|e| load_err(&path, e))?;
            (vec![generated.cert.der().clone()], key, Some(path))
        }
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    // The JS v3 and Java v2 SDKs speak HTTP/2 to Kinesis; others fall back to HTTP/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        generated_cert,
    })
}

/// The roots trusted by outgoing connections: the operating system's store (as rustls-native-certs
/// finds it: `SSL_CERT_FILE`, `SSL_CERT_DIR`, else the distribution's bundle) plus every
/// certificate of `ca_file`. Errors of the system store are logged, not fatal (a minimal image
/// may have none); an unreadable `ca_file`, or one with no certificate, is an error.
pub fn client_roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "Cannot load a system CA certificate.");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if ignored > 0 {
        tracing::warn!(ignored, "Ignored unparsable system CA certificates.");
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| load_err(path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| load_err(path, e))?;
        if certs.is_empty() {
            return Err(load_err(path, "no PEM certificate in the file"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| load_err(path, e))?;
        }
    } else if added == 0 {
        tracing::warn!(
            "No system CA certificates found: https:// endpoints will be refused unless their CA is given with --ca-file."
        );
    }
    Ok(roots)
}

/// The rustls configuration of outgoing connections, trusting [`client_roots`].
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let roots = client_roots(ca_file)?;
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_file_adds_its_certificates_to_the_system_roots() {
        let dir = tempfile::tempdir().unwrap();
        let system = client_roots(None).unwrap().len();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.example".to_string()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["other.example".to_string()]).unwrap();
        let path = dir.path().join("bundle.pem");
        std::fs::write(&path, ca.cert.pem() + &other.cert.pem()).unwrap();
        assert_eq!(client_roots(Some(&path)).unwrap().len(), system + 2);
        client_config(Some(&path)).unwrap();
    }

    #[test]
    fn a_ca_file_without_certificates_or_missing_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_roots(Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let missing = dir.path().join("missing.pem");
        let e = client_roots(Some(&missing)).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
