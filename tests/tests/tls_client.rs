//! Outgoing TLS: a data plane reaching `https://` endpoints it trusts through `--ca-file` (a
//! private CA generated here), and refusing, with a clear report, the certificates it does not
//! trust. (a) a remote stream served by another data plane's `--tls-listen`; (b) an HTTPS
//! Firehose HTTP endpoint destination.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tributary_tests::{
    create_stream, files, firehose_client, http_endpoint_config, kinesis_client, metric_sum,
    put_record_batch, put_records, scrape_metrics, wait_for, Server,
};

/// PEM files of a private CA and of a `localhost`/`127.0.0.1` server certificate it issued.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn private_ca(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Tributary test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

/// A self-signed `127.0.0.1` certificate no one was told to trust.
fn untrusted(dir: &Path) -> Pki {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let pki = Pki {
        ca: dir.join("untrusted.pem"),
        cert: dir.join("untrusted.pem"),
        key: dir.join("untrusted-key.pem"),
    };
    std::fs::write(&pki.cert, generated.cert.pem()).unwrap();
    std::fs::write(&pki.key, generated.signing_key.serialize_pem()).unwrap();
    pki
}

/// A delivery stream of B archiving the remote stream `orders` into B's `file://` store.
const ARCHIVE: &str = "\
apiVersion: tributary.dev/v1alpha1
kind: DeliveryStream
metadata:
  name: orders-archive
spec:
  deliveryStreamType: KinesisStreamAsSource
  kinesisStreamSourceConfiguration:
    streamRef:
      name: orders
  extendedS3DestinationConfiguration:
    bucketARN: arn:aws:s3:::archive
    prefix: orders/
    bufferingHints:
      sizeInMBs: 1
      intervalInSeconds: 1
";

/// Starts B reading `orders` from `url`, trusting `ca_file` when given.
async fn reader(dir: &Path, name: &str, url: &str, ca_file: Option<&Path>) -> (Server, PathBuf) {
    let manifests = dir.join(format!("{name}-manifests"));
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("archive.yaml"), ARCHIVE).unwrap();
    let data = dir.join(name);
    let store = dir.join(format!("{name}-s3"));
    let store_url = format!("file://{}", store.display());
    let endpoint = format!("orders={url}");
    let mut args = vec![
        "--data-dir",
        data.to_str().unwrap(),
        "--s3-endpoint",
        &store_url,
        "--stream-endpoint",
        &endpoint,
        "--manifests",
        manifests.to_str().unwrap(),
        "--delivery-retry-initial-ms",
        "100",
        "--delivery-retry-max-ms",
        "400",
    ];
    if let Some(ca) = ca_file {
        args.extend(["--ca-file", ca.to_str().unwrap()]);
    }
    let server = Server::start(&args).await.unwrap();
    (server, store.join("archive"))
}

#[tokio::test]
async fn a_remote_stream_over_https_is_read_when_its_ca_is_trusted_and_refused_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let pki = private_ca(dir.path());
    let a_data = dir.path().join("a");
    let a = Server::start(&[
        "--data-dir",
        a_data.to_str().unwrap(),
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        pki.cert.to_str().unwrap(),
        "--tls-key",
        pki.key.to_str().unwrap(),
    ])
    .await
    .unwrap();
    let url = format!("https://{}", a.tls.as_deref().expect("A listens for TLS"));
    let kinesis = kinesis_client(&a.api);
    create_stream(&kinesis, "orders", 2).await;

    let (trusting, objects) = reader(dir.path(), "b", &url, Some(&pki.ca)).await;
    let (refusing, refused_objects) = reader(dir.path(), "c", &url, None).await;

    let records = (0..100).map(|i| (format!("k{}", i % 7), format!("{{\"id\":{i}}}\n")));
    put_records(&kinesis, "orders", records).await;

    // B trusts A's CA: every record reaches B's delivery stream through A's TLS listener.
    let ids = wait_for("records read over TLS", Duration::from_secs(60), || {
        let ids: BTreeSet<u64> = files(&objects)
            .iter()
            .flat_map(|(_, body)| {
                String::from_utf8(body.clone())
                    .unwrap()
                    .lines()
                    .map(|l| {
                        serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                            .as_u64()
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        (ids.len() == 100).then_some(ids)
    })
    .await;
    assert_eq!(ids, (0..100).collect());
    let b_metrics = scrape_metrics(&trusting).await;
    assert!(
        metric_sum(
            &b_metrics,
            "remote_kinesis_requests_total",
            &[
                "outcome=\"success\"",
                "stream=\"orders\"",
                "operation=\"GetRecords\""
            ]
        ) > 0.0
    );
    assert_eq!(
        metric_sum(
            &b_metrics,
            "remote_kinesis_requests_total",
            &["outcome=\"tls_error\""]
        ),
        0.0
    );

    // C was not given the CA: A's certificate is refused, counted as a TLS error, and nothing
    // is read.
    let deadline = Instant::now() + Duration::from_secs(30);
    let c_metrics = loop {
        let text = scrape_metrics(&refusing).await;
        let refusals = metric_sum(
            &text,
            "remote_kinesis_requests_total",
            &["outcome=\"tls_error\"", "stream=\"orders\""],
        );
        if refusals > 0.0 {
            break text;
        }
        assert!(Instant::now() < deadline, "no TLS refusal counted: {text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        metric_sum(
            &c_metrics,
            "remote_kinesis_requests_total",
            &["outcome=\"success\"", "stream=\"orders\""]
        ),
        0.0
    );
    assert!(files(&refused_objects).is_empty());
    drop((trusting, refusing, a));
}

/// Bodies of the requests a test HTTPS endpoint received.
type Seen = Arc<Mutex<Vec<(http::HeaderMap, serde_json::Value)>>>;

/// Serves `listener` over TLS with `pki`'s certificate, answering like a Firehose HTTP endpoint.
async fn https_endpoint(listener: tokio::net::TcpListener, pki: &Pki, seen: Seen) {
    let certs = CertificateDer::pem_file_iter(&pki.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                // A client refusing the certificate ends the handshake here.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let raw = body.collect().await.unwrap().to_bytes();
                            let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
                            let id = json["requestId"].as_str().unwrap_or("").to_string();
                            seen.lock().unwrap().push((parts.headers, json));
                            let body = serde_json::json!({"requestId": id, "timestamp": 0});
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body.to_string())))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
}

#[tokio::test]
async fn an_https_http_endpoint_receives_deliveries_and_an_untrusted_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let pki = private_ca(dir.path());
    let stranger = untrusted(dir.path());
    let data = dir.path().join("data");
    let store = format!("file://{}", dir.path().join("s3").display());
    let server = Server::start(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--s3-endpoint",
        &store,
        "--ca-file",
        pki.ca.to_str().unwrap(),
        "--delivery-retry-initial-ms",
        "100",
        "--delivery-retry-max-ms",
        "400",
    ])
    .await
    .unwrap();
    let c = firehose_client(&server.api);

    // An endpoint whose certificate the private CA issued.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/ingest",
        listener.local_addr().unwrap().port()
    );
    let seen: Seen = Arc::default();
    https_endpoint(listener, &pki, seen.clone()).await;
    c.create_delivery_stream()
        .delivery_stream_name("to-https")
        .http_endpoint_destination_configuration(http_endpoint_config(&url, 60, "failed/"))
        .send()
        .await
        .unwrap();
    let records: Vec<String> = (0..20).map(|i| format!("event-{i}")).collect();
    put_record_batch(&c, "to-https", records.iter().map(String::as_bytes)).await;
    wait_for("HTTPS delivery", Duration::from_secs(30), || {
        let n: usize = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b["records"].as_array().unwrap().len())
            .sum();
        (n >= records.len()).then_some(())
    })
    .await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let got: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, b)| b["records"].as_array().unwrap().clone())
        .map(|r| String::from_utf8(b64.decode(r["data"].as_str().unwrap()).unwrap()).unwrap())
        .collect();
    assert_eq!(got, records);
    let headers = seen.lock().unwrap()[0].0.clone();
    assert_eq!(headers["x-amz-firehose-access-key"], "sekret-key");
    assert_eq!(headers["x-amz-firehose-protocol-version"], "1.0");

    // An endpoint with a self-signed certificate outside the trusted roots: nothing is sent,
    // and the records go to the error output saying why.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/",
        listener.local_addr().unwrap().port()
    );
    let refused: Seen = Arc::default();
    https_endpoint(listener, &stranger, refused.clone()).await;
    c.create_delivery_stream()
        .delivery_stream_name("to-stranger")
        .http_endpoint_destination_configuration(http_endpoint_config(&url, 1, "failed/"))
        .send()
        .await
        .unwrap();
    put_record_batch(&c, "to-stranger", ["secret-1"]).await;
    let root = dir.path().join("s3/backup");
    let objects = wait_for("error output", Duration::from_secs(30), || {
        let f = files(&root);
        (!f.is_empty()).then_some(f)
    })
    .await;
    let (key, body) = &objects[0];
    assert!(key.starts_with("failed/"), "{key}");
    let line: serde_json::Value = serde_json::from_str(
        String::from_utf8(body.clone())
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let message = line["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("TLS certificate of 127.0.0.1") && message.contains("--ca-file"),
        "{message}"
    );
    assert_eq!(
        b64.decode(line["rawData"].as_str().unwrap()).unwrap(),
        b"secret-1"
    );
    assert!(refused.lock().unwrap().is_empty(), "no request was sent");
}
