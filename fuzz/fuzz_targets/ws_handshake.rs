//! push-tower's WebSocket opening handshake check (crate-private, reached
//! through `push_tower::__fuzz`) on arbitrary methods, versions and
//! headers, against RFC 6455 and RFC 8441 read plainly: `101` exactly when
//! the request is a version-13 upgrade with a key that is the base64 of 16
//! bytes, with `Sec-WebSocket-Accept` computed here from SHA-1; otherwise
//! `426` or `400` as PROTOCOL.md says.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version};
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};

#[derive(Arbitrary, Debug)]
enum Name {
    Upgrade,
    Connection,
    Version,
    Key,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Value {
    /// The value a well-formed handshake sends for this name.
    Expected,
    /// Something like it: a token list, spaces, another case.
    Text(String),
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    http2: bool,
    method: Option<String>,
    protocol: Option<String>,
    key: [u8; 16],
    headers: Vec<(Name, Value)>,
}

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

fn version_13(headers: &HeaderMap) -> bool {
    headers
        .get("sec-websocket-version")
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"13")
}

fn reference(request: &Request<()>) -> Result<Option<String>, StatusCode> {
    let headers = request.headers();
    if request.version() == Version::HTTP_2 {
        let protocol = request.extensions().get::<hyper::ext::Protocol>();
        return match (request.method() == Method::CONNECT, protocol) {
            (true, Some(p)) if p.as_str().eq_ignore_ascii_case("websocket") => {
                if version_13(headers) {
                    Ok(None)
                } else {
                    Err(StatusCode::UPGRADE_REQUIRED)
                }
            }
            (true, _) => Err(StatusCode::BAD_REQUEST),
            (false, _) => Err(StatusCode::UPGRADE_REQUIRED),
        };
    }
    if request.method() != Method::GET
        || !has_token(headers, "upgrade", "websocket")
        || !has_token(headers, "connection", "upgrade")
        || !version_13(headers)
    {
        return Err(StatusCode::UPGRADE_REQUIRED);
    }
    let key = headers
        .get("sec-websocket-key")
        .ok_or(StatusCode::BAD_REQUEST)?
        .as_bytes();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    if decoded.len() != 16 {
        return Err(StatusCode::BAD_REQUEST);
    }
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID.as_bytes());
    Ok(Some(
        base64::engine::general_purpose::STANDARD.encode(sha1.finalize()),
    ))
}

fuzz_target!(|input: Input| {
    let mut request = Request::new(());
    *request.version_mut() = if input.http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    *request.method_mut() = match &input.method {
        None if input.http2 => Method::CONNECT,
        None => Method::GET,
        Some(method) => match Method::from_bytes(method.as_bytes()) {
            Ok(method) => method,
            Err(_) => return,
        },
    };
    if let Some(protocol) = &input.protocol {
        request
            .extensions_mut()
            .insert(hyper::ext::Protocol::from(protocol.as_str()));
    }
    let key = base64::engine::general_purpose::STANDARD.encode(input.key);
    for (name, value) in &input.headers {
        let (name, expected) = match name {
            Name::Upgrade => (HeaderName::from_static("upgrade"), "websocket"),
            Name::Connection => (HeaderName::from_static("connection"), "Upgrade"),
            Name::Version => (HeaderName::from_static("sec-websocket-version"), "13"),
            Name::Key => (HeaderName::from_static("sec-websocket-key"), key.as_str()),
            Name::Other(name) => match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) => (name, ""),
                Err(_) => continue,
            },
        };
        let value = match value {
            Value::Expected => HeaderValue::from_str(expected),
            Value::Text(text) => HeaderValue::from_str(text),
            Value::Bytes(bytes) => HeaderValue::from_bytes(bytes),
        };
        if let Ok(value) = value {
            request.headers_mut().append(name, value);
        }
    }
    let verdict = push_tower::__fuzz::websocket_handshake(&request);
    assert_eq!(verdict, reference(&request), "{request:?}");
});
