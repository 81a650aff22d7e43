//! Plain HTTP the tests need besides the AWS SDKs: a free port, raw HTTP/1.1 requests (to the
//! metrics listener, or to endpoints no SDK calls) and the Prometheus text of `/metrics`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Server;

/// Writes an `--auth-file` to `path` that accepts the key the SDK clients of this crate sign
/// with (`AKIDTEST`, see [`crate::local_config!`]) and each `(access key id, secret)` of
/// `extra`.
pub fn write_auth_file(path: &std::path::Path, extra: &[(&str, &str)]) {
    let mut yaml = String::from("credentials:\n");
    for (id, secret) in [("AKIDTEST", "secret")].iter().chain(extra) {
        yaml.push_str(&format!(
            "  - accessKeyId: {id}\n    secretAccessKey: {secret}\n"
        ));
    }
    std::fs::write(path, yaml).unwrap();
}

/// A loopback port free right now (for a server that must come back on the same address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request to `addr` (`host:port`, with or without `http://`) with `headers` and
/// `body`, on a connection of its own; returns the status (0 when there is none) and the body.
pub async fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let addr = addr.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The Prometheus text of a server's metrics listener (`GET /metrics`).
pub async fn scrape_metrics(server: &Server) -> String {
    http_request(&server.metrics, "GET", "/metrics", &[], "")
        .await
        .1
}

/// The value of the first sample in `text` whose line starts with `series` (a name with its
/// labels); 0 when there is none.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .map(|v| v.trim().parse().unwrap_or(0.0))
        })
        .unwrap_or(0.0)
}

/// The sum of the samples of `name` whose labels contain every one of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// [`metric_value`] of one series on a server's metrics listener.
pub async fn metric(server: &Server, series: &str) -> f64 {
    metric_value(&scrape_metrics(server).await, series)
}
