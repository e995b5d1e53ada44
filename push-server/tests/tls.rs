//! The binary over TLS, as a user runs it with `--tls-cert` and
//! `--tls-key`: it prints its `https://` URL and serves a publish and a
//! subscription over HTTP/2 and HTTP/1.1 chosen by ALPN; its TLS and
//! connection-limit flags are checked, with a message that names what to
//! fix and exit code 2.

mod process;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

const TIMEOUT: Duration = Duration::from_secs(10);

async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("no answer in time")
}

#[path = "../../push-tower/tests/support/certificate.rs"]
mod certificate;

use certificate::Certificate;

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A TLS connection to `addr` offering `alpn`, which the server must choose.
async fn connect(
    cert: &Certificate,
    addr: &str,
    alpn: &[u8],
) -> impl hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = within(TlsConnector::from(cert.client(&[alpn])).connect(name, tcp))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
    TokioIo::new(tls)
}

fn request(url: &str, method: Method, path: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(format!("{url}{path}"))
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn serves_publish_and_subscribe_over_https() {
    let cert = Certificate::generate();
    let (mut child, _stdout, url) = process::start(&[
        "--tls-cert",
        path_str(&cert.cert_path),
        "--tls-key",
        path_str(&cert.key_path),
    ]);
    let addr = url
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("not an https URL: {url}"))
        .to_owned();
    // Requests name the certificate's host.
    let url = format!("https://localhost:{}", addr.rsplit_once(':').unwrap().1);

    // A subscription over HTTP/2 (ALPN h2).
    let (mut h2, connection) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        connect(&cert, &addr, b"h2").await,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let sse = within(h2.send_request(request(&url, Method::GET, "/channels/demo/sse", "")))
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);
    assert_eq!(sse.version(), http::Version::HTTP_2);
    let mut sse = sse.into_body();

    // A publish over HTTP/1.1 (ALPN http/1.1).
    let (mut h1, connection) =
        hyper::client::conn::http1::handshake(connect(&cert, &addr, b"http/1.1").await)
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut publish = request(&url, Method::POST, "/channels/demo", "over https");
    publish.headers_mut().insert("host", addr.parse().unwrap());
    let published = within(h1.send_request(publish)).await.unwrap();
    assert_eq!(published.status(), StatusCode::CREATED);
    assert_eq!(published.version(), http::Version::HTTP_11);
    let body = published.into_body().collect().await.unwrap().to_bytes();
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut seen = String::new();
    while !seen.contains("data: over https") {
        let frame = within(sse.frame())
            .await
            .expect("the stream ended")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(seen.contains(&format!("id: {id}")), "{seen}");

    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs the binary with `args` until it exits: its exit code and stderr.
fn refused(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_push-server"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn tls_and_limit_flags_are_checked_with_a_message_naming_the_fix() {
    let cert = Certificate::generate();
    let (code, stderr) = refused(&["--tls-cert", path_str(&cert.cert_path)]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");
    let (code, stderr) = refused(&["--tls-key", path_str(&cert.key_path)]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--tls-cert"), "{stderr}");

    let missing = cert.cert_path.with_file_name("missing.pem");
    let (code, stderr) = refused(&[
        "--tls-cert",
        path_str(&missing),
        "--tls-key",
        path_str(&cert.key_path),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(path_str(&missing)), "{stderr}");
    assert!(
        stderr.contains("cannot read the certificate file"),
        "{stderr}"
    );

    // The certificate given as the key.
    let (code, stderr) = refused(&[
        "--tls-cert",
        path_str(&cert.cert_path),
        "--tls-key",
        path_str(&cert.cert_path),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("holds no private key"), "{stderr}");

    for flag in [
        "--max-connections",
        "--max-connections-per-peer",
        "--max-subscriptions-per-connection",
        "--max-headers",
    ] {
        let (code, stderr) = refused(&[flag, "0"]);
        assert_eq!(code, Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!("{flag} must be at least 1")),
            "{stderr}"
        );
    }
}
