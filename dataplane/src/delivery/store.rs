//! Object stores a delivery stream writes to: an S3-compatible server (path-style requests
//! signed with SigV4) or a local directory (`file://`), where bucket `b` and key `k` become the
//! file `DIR/b/k`. Both overwrite an existing object of the same key, which is what makes a
//! retried delivery replace rather than duplicate its object.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use sha2::{Digest, Sha256};

use super::client::{hex, sign_v4, HttpClient, Signer};

/// Where and how to reach the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `http://host:port` of an S3-compatible server, or `file:///dir`.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// An object store.
#[derive(Clone)]
pub enum Store {
    Dir(PathBuf),
    S3(Box<S3>),
}

/// A minimal S3 client: PutObject and GetObject, path-style, SigV4 with a signed payload hash.
#[derive(Clone)]
pub struct S3 {
    endpoint: http::Uri,
    cfg: StoreConfig,
    client: HttpClient,
}

/// S3 answers within this long or the attempt counts as failed.
const S3_TIMEOUT: Duration = Duration::from_secs(60);

impl Store {
    pub fn new(cfg: &StoreConfig, client: HttpClient) -> Result<Store, String> {
        if let Some(path) = cfg.endpoint.strip_prefix("file://") {
            return Ok(Store::Dir(PathBuf::from(path)));
        }
        let endpoint: http::Uri = cfg
            .endpoint
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("invalid S3 endpoint {}: {e}", cfg.endpoint))?;
        if endpoint.host().is_none() {
            return Err(format!("invalid S3 endpoint {}: no host", cfg.endpoint));
        }
        Ok(Store::S3(Box::new(S3 {
            endpoint,
            cfg: cfg.clone(),
            client,
        })))
    }

    /// Writes (or overwrites) `bucket/key`.
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
        match self {
            Store::Dir(root) => {
                let path = root.join(bucket).join(key);
                tokio::task::spawn_blocking(move || write_file(&path, &body))
                    .await
                    .map_err(|e| e.to_string())?
            }
            Store::S3(s3) => s3.put(bucket, key, body).await,
        }
    }
}

impl Store {
    /// Reads `bucket/key` whole, up to `max` bytes (reference data for SQL applications).
    pub async fn get(&self, bucket: &str, key: &str, max: usize) -> Result<Vec<u8>, String> {
        match self {
            Store::Dir(root) => {
                let path = root.join(bucket).join(key);
                let data = tokio::fs::read(&path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if data.len() > max {
                    return Err(format!("{} is larger than {max} bytes", path.display()));
                }
                Ok(data)
            }
            Store::S3(s3) => s3.get(bucket, key, max).await,
        }
    }
}

/// Writes through a temporary file and a rename, so a reader never sees half an object.
fn write_file(path: &std::path::Path, body: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let dir = path.parent().ok_or("object key has no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("object")
    ));
    let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(body)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

impl S3 {
    /// A SigV4-signed request for `bucket`/`key` with `body`.
    fn request(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<Request<Full<Bytes>>, String> {
        let path = format!("/{}/{}", uri_encode(bucket, false), uri_encode(key, true));
        let base = self.endpoint.to_string();
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        let host = match self.endpoint.port_u16() {
            Some(p) => format!("{}:{p}", self.endpoint.host().unwrap_or_default()),
            None => self.endpoint.host().unwrap_or_default().to_string(),
        };
        let amz_date = super::client::amz_date_now();
        let payload_hash = hex(&Sha256::digest(&body));
        let content_length = body.len().to_string();
        let authorization = sign_v4(
            &Signer {
                access_key_id: &self.cfg.access_key_id,
                secret_access_key: &self.cfg.secret_access_key,
                region: &self.cfg.region,
                service: "s3",
            },
            method,
            &path,
            &amz_date,
            &[
                ("content-length", &content_length),
                ("host", &host),
                ("x-amz-content-sha256", &payload_hash),
                ("x-amz-date", &amz_date),
            ],
            &payload_hash,
        );
        Request::builder()
            .method(method)
            .uri(url)
            .header("host", &host)
            .header("x-amz-date", &amz_date)
            .header("x-amz-content-sha256", &payload_hash)
            .header("content-length", body.len())
            .header("authorization", authorization)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())
    }

    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
        let req = self.request("PUT", bucket, key, body)?;
        let resp = self.client.send(req, S3_TIMEOUT, 64 * 1024).await?;
        if resp.status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "S3 PutObject returned {}: {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            ))
        }
    }

    async fn get(&self, bucket: &str, key: &str, max: usize) -> Result<Vec<u8>, String> {
        let req = self.request("GET", bucket, key, Vec::new())?;
        let resp = self.client.send(req, S3_TIMEOUT, max).await?;
        if resp.status.is_success() {
            Ok(resp.body.to_vec())
        } else {
            Err(format!(
                "S3 GetObject returned {}: {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            ))
        }
    }
}

/// SigV4 URI encoding: everything but unreserved characters (and `/` in keys) as `%XX`.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::client::hmac;
    use super::*;

    #[test]
    fn keys_are_encoded_per_sigv4_with_slashes_kept() {
        assert_eq!(uri_encode("a b/c=d~", true), "a%20b/c%3Dd~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }

    #[test]
    fn signature_matches_the_aws_documented_example_key_derivation() {
        // AWS's documented signing-key example (sigv4-calculate-signature): secret
        // wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830, us-east-1, iam.
        let mut key = b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec();
        for part in ["20150830", "us-east-1", "iam", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        assert_eq!(
            hex(&key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[tokio::test]
    async fn directory_store_overwrites_an_object_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(
            &StoreConfig {
                endpoint: format!("file://{}", dir.path().display()),
                region: "us-east-1".into(),
                access_key_id: String::new(),
                secret_access_key: String::new(),
            },
            HttpClient::default(),
        )
        .unwrap();
        store.put("b", "x/y/obj", b"one".to_vec()).await.unwrap();
        store.put("b", "x/y/obj", b"two".to_vec()).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("b/x/y/obj")).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(dir.path().join("b/x/y")).unwrap().count(),
            1
        );
    }

    /// A one-object HTTPS "S3" on 127.0.0.1 with the certificate `tls::acceptor` generates for
    /// `localhost` and `127.0.0.1`: PUT stores the body, GET returns it. Returns its port and
    /// the certificate's PEM file.
    async fn https_object_store(dir: &std::path::Path) -> (u16, std::path::PathBuf) {
        use http_body_util::BodyExt;
        let tls = crate::tls::acceptor(None, None, dir).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let object = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, object) = (tls.acceptor.clone(), object.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let object = object.clone();
                            async move {
                                let signed = req.headers().contains_key("authorization");
                                let put = req.method() == http::Method::PUT;
                                let body = req.into_body().collect().await?.to_bytes();
                                let mut stored = object.lock().unwrap();
                                if put {
                                    *stored = body.to_vec();
                                }
                                let status = if signed { 200 } else { 403 };
                                let answer = if put { Vec::new() } else { stored.clone() };
                                Ok::<_, hyper::Error>(
                                    http::Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::from(answer)))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (port, tls.generated_cert.unwrap())
    }

    fn s3_config(endpoint: String) -> StoreConfig {
        StoreConfig {
            endpoint,
            region: "us-east-1".into(),
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
        }
    }

    #[tokio::test]
    async fn an_https_store_whose_certificate_is_trusted_through_the_ca_file_is_written_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let (port, cert) = https_object_store(dir.path()).await;
        let trusting = HttpClient::with_tls(crate::tls::client_config(Some(&cert)).unwrap());
        // The certificate names both the DNS name and the IP address.
        for host in ["localhost", "127.0.0.1"] {
            let store = Store::new(
                &s3_config(format!("https://{host}:{port}")),
                trusting.clone(),
            )
            .unwrap();
            let body = format!("written through {host}").into_bytes();
            store.put("bucket", "a/key", body.clone()).await.unwrap();
            assert_eq!(store.get("bucket", "a/key", 1024).await.unwrap(), body);
        }
    }

    #[tokio::test]
    async fn an_untrusted_https_store_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (port, _) = https_object_store(dir.path()).await;
        let system_only = HttpClient::with_tls(crate::tls::client_config(None).unwrap());
        let store = Store::new(
            &s3_config(format!("https://127.0.0.1:{port}")),
            system_only.clone(),
        )
        .unwrap();
        let e = store.put("bucket", "k", b"x".to_vec()).await.unwrap_err();
        assert!(
            e.contains(&format!(
                "the TLS certificate of 127.0.0.1:{port} was refused"
            )) && e.contains("UnknownIssuer")
                && e.contains("--ca-file"),
            "{e}"
        );
        let req = http::Request::get(format!("https://127.0.0.1:{port}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let e = system_only
            .send(req, std::time::Duration::from_secs(5), 1024)
            .await
            .unwrap_err();
        assert!(e.tls, "{e}");
    }
}
