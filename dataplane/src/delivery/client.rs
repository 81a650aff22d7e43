//! The outgoing HTTP/1.1 client shared by the S3 store, the HTTP endpoint destination, the
//! transformation endpoint and the Kinesis client of remote streams, and the SigV4 signer of
//! the requests that need one. `https://` URLs are served over rustls (ring), trusting the
//! system's roots plus `--ca-file` (see [`crate::tls::client_config`]).

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

/// A response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The trust of outgoing TLS connections set by [`set_trust`] (from `--ca-file`).
static TRUST: RwLock<Option<Arc<rustls::ClientConfig>>> = RwLock::new(None);

/// Makes the clients created from now on trust `config`'s roots; the server calls it once at
/// startup, before any client exists.
pub fn set_trust(config: rustls::ClientConfig) {
    *TRUST.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(config));
}

/// The configured trust, or the system's roots alone when none was set.
fn trust() -> Arc<rustls::ClientConfig> {
    if let Some(c) = TRUST.read().unwrap_or_else(|e| e.into_inner()).clone() {
        return c;
    }
    static SYSTEM: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            // Without a CA file, only the (logged, non-fatal) system store can fail, and the
            // ring provider supports the default protocol versions.
            let config = crate::tls::client_config(None).unwrap_or_else(|e| {
                tracing::error!(error = %e, "Cannot configure TLS trust; https:// endpoints will be refused.");
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_protocol_versions(rustls::ALL_VERSIONS)
                .unwrap_or_else(|_| unreachable!("ring supports every rustls protocol version"))
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
            });
            Arc::new(config)
        })
        .clone()
}

/// A request that got no answer: the reason, and whether TLS (a refused certificate, a failed
/// handshake) was it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    pub tls: bool,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<SendError> for String {
    fn from(e: SendError) -> String {
        e.message
    }
}

impl From<String> for SendError {
    fn from(message: String) -> SendError {
        SendError {
            message,
            tls: false,
        }
    }
}

/// Pooled HTTP/1.1 client for `http://` and `https://` URLs.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::with_tls((*trust()).clone())
    }
}

impl HttpClient {
    /// A client whose `https://` connections use `tls` (ALPN is set to HTTP/1.1 here).
    pub fn with_tls(tls: rustls::ClientConfig) -> Self {
        HttpClient {
            inner: pooled_with(tls, Duration::from_secs(10)),
        }
    }
}

/// A pooled HTTP/1.1 hyper client for `http://` and `https://` URLs.
pub(crate) type Pooled = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A pooled client trusting the configured roots (`--ca-file` and the system's).
pub(crate) fn pooled(connect_timeout: Duration) -> Pooled {
    pooled_with((*trust()).clone(), connect_timeout)
}

fn pooled_with(tls: rustls::ClientConfig, connect_timeout: Duration) -> Pooled {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

impl HttpClient {
    /// Sends `req` and reads at most `max_body` bytes of the answer within `timeout`.
    pub async fn send(
        &self,
        req: Request<Full<Bytes>>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Response, SendError> {
        let host = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let call = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| describe_error(&e, &host))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| SendError::from(format!("reading the response failed: {e}")))?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| SendError::from(format!("no response within {} s", timeout.as_secs())))?
    }
}

/// The text of a failed request: the error and its sources (refused, unreachable, ...). A
/// refused TLS certificate is named as such, with the way to trust a private CA.
fn describe_error(e: &(dyn std::error::Error + 'static), host: &str) -> SendError {
    let mut text = e.to_string();
    let mut tls_error = None;
    let mut src = e.source();
    while let Some(s) = src {
        let part = s.to_string();
        // hyper's connect error repeats its source's text.
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        if let Some(t) = find_rustls_error(s) {
            tls_error = Some(t.clone());
        }
        src = s.source();
    }
    let message = match &tls_error {
        Some(t @ rustls::Error::InvalidCertificate(_)) => format!(
            "the TLS certificate of {host} was refused: {t}; a certificate issued by a private CA \
             is trusted when that CA is given to --ca-file"
        ),
        Some(_) => format!("TLS with {host} failed: {text}"),
        None => text,
    };
    SendError {
        message,
        tls: tls_error.is_some(),
    }
}

/// rustls' error in `e`, which tokio-rustls and hyper-rustls hand over inside (nested)
/// `io::Error`s, whose `source()` skips the wrapped error.
fn find_rustls_error<'a>(
    mut e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    loop {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => e = inner,
            None => return None,
        }
    }
}

/// Who signs a request, and for which region and service (`s3`, `kinesis`).
pub struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The `Authorization` header of a SigV4-signed request without a query string. `headers` are
/// the signed headers (lower-case names, any order; `host` and `x-amz-date` must be among
/// them), `path` is already URI-encoded and `payload_hash` is the hex SHA-256 of the body.
pub fn sign_v4(
    signer: &Signer<'_>,
    method: &str,
    path: &str,
    amz_date: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
) -> String {
    let date = &amz_date[..8];
    let mut headers = headers.to_vec();
    headers.sort_by(|a, b| a.0.cmp(b.0));
    let signed_headers = headers.iter().map(|h| h.0).collect::<Vec<_>>().join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let canonical =
        format!("{method}\n{path}\n\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
    let scope = format!("{date}/{}/{}/aws4_request", signer.region, signer.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = format!("AWS4{}", signer.secret_access_key).into_bytes();
    for part in [date, signer.region, signer.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        signer.access_key_id
    )
}

/// `x-amz-date` for the current wall-clock time (`20150830T123600Z`).
pub fn amz_date_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    super::prefix::format_timestamp("yyyyMMdd'T'HHmmss'Z'", now * 1000)
}

pub(crate) fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_aws_documented_get_vanilla_example() {
        // AWS SigV4 test suite, "get-vanilla": GET / with host and x-amz-date signed.
        let auth = sign_v4(
            &Signer {
                access_key_id: "AKIDEXAMPLE",
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                region: "us-east-1",
                service: "service",
            },
            "GET",
            "/",
            "20150830T123600Z",
            &[
                ("x-amz-date", "20150830T123600Z"),
                ("host", "example.amazonaws.com"),
            ],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }
}
