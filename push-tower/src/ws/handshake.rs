//! The opening handshake, checked before anything else: RFC 6455 over
//! HTTP/1.1, RFC 8441 extended CONNECT over HTTP/2.

use base64::Engine;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use push_core::wire::WireError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::body::PushBody;
use crate::{error, response};

/// A checked handshake, ready to be accepted.
#[derive(Debug)]
pub(super) enum Handshake {
    /// HTTP/1.1: answered `101` with this `Sec-WebSocket-Accept`.
    Upgrade { accept: HeaderValue },
    /// HTTP/2 extended CONNECT: answered `200`.
    Connect,
}

/// Why a request does not open a WebSocket.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Not a WebSocket handshake, or not version 13: `426`, naming the
    /// version, and on HTTP/1.1 the protocol to upgrade to (HTTP/2 forbids
    /// `Upgrade`).
    UpgradeRequired { http1: bool },
    /// A handshake missing this: `400 bad_handshake`.
    BadHandshake(&'static str),
}

impl Refusal {
    /// The JSON error answer.
    pub(super) fn response(self) -> Response<PushBody> {
        match self {
            Refusal::BadHandshake(what) => error::response(WireError::bad_handshake(what)),
            Refusal::UpgradeRequired { http1 } => {
                let mut answer = error::response(WireError::upgrade_required());
                let headers = answer.headers_mut();
                headers.insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                if http1 {
                    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                }
                answer
            }
        }
    }
}

impl Handshake {
    /// Checks that `request` opens a WebSocket.
    pub(super) fn check<B>(request: &Request<B>) -> Result<Self, Refusal> {
        let headers = request.headers();
        if request.version() >= Version::HTTP_2 {
            let protocol = request.extensions().get::<hyper::ext::Protocol>();
            return match (request.method(), protocol) {
                (&Method::CONNECT, Some(protocol))
                    if protocol.as_str().eq_ignore_ascii_case("websocket") =>
                {
                    check_version(headers, false)?;
                    Ok(Handshake::Connect)
                }
                (&Method::CONNECT, _) => Err(Refusal::BadHandshake(
                    "an HTTP/2 CONNECT to this route must carry `:protocol: websocket`",
                )),
                _ => Err(Refusal::UpgradeRequired { http1: false }),
            };
        }
        if request.method() != Method::GET
            || !has_token(headers, header::UPGRADE, "websocket")
            || !has_token(headers, header::CONNECTION, "upgrade")
        {
            return Err(Refusal::UpgradeRequired { http1: true });
        }
        check_version(headers, true)?;
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .filter(|key| is_valid_key(key.as_bytes()))
            .ok_or(Refusal::BadHandshake(
                "Sec-WebSocket-Key must be the base64 of 16 random bytes",
            ))?;
        let accept = derive_accept_key(key.as_bytes());
        Ok(Handshake::Upgrade {
            // Base64 is always a valid header value.
            accept: HeaderValue::from_str(&accept)
                .map_err(|_| Refusal::BadHandshake("an unusable Sec-WebSocket-Key"))?,
        })
    }

    /// The answer that completes the handshake.
    pub(super) fn accept(self) -> Response<PushBody> {
        match self {
            Handshake::Upgrade { accept } => {
                let mut answer = response::empty(StatusCode::SWITCHING_PROTOCOLS);
                let headers = answer.headers_mut();
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
                answer
            }
            Handshake::Connect => response::empty(StatusCode::OK),
        }
    }
}

/// Only version 13 exists; anything else is `426` naming it.
fn check_version(headers: &HeaderMap, http1: bool) -> Result<(), Refusal> {
    match headers.get(header::SEC_WEBSOCKET_VERSION) {
        Some(version) if version.as_bytes().trim_ascii() == b"13" => Ok(()),
        _ => Err(Refusal::UpgradeRequired { http1 }),
    }
}

/// Whether some `name` header lists `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// RFC 6455: the key is the base64 of 16 bytes.
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|bytes| bytes.len() == 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http1() -> http::request::Builder {
        Request::get("/channels/a/ws")
            .header("upgrade", "websocket")
            .header("connection", "keep-alive, Upgrade")
            .header("sec-websocket-version", "13")
    }

    fn code(refusal: Refusal) -> (StatusCode, HeaderMap) {
        let answer = refusal.response();
        (answer.status(), answer.headers().clone())
    }

    #[test]
    fn a_complete_http1_handshake_is_accepted_with_the_rfc_key() {
        let request = http1()
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        let answer = Handshake::check(&request).unwrap().accept();
        assert_eq!(answer.status(), StatusCode::SWITCHING_PROTOCOLS);
        // The example of RFC 6455 section 1.3.
        assert_eq!(
            answer.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_plain_get_is_upgrade_required_with_what_to_send() {
        let request = Request::get("/channels/a/ws").body(()).unwrap();
        let (status, headers) = code(Handshake::check(&request).unwrap_err());
        assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["sec-websocket-version"], "13");
    }

    #[test]
    fn another_version_is_upgrade_required() {
        let request = Request::get("/channels/a/ws")
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-version", "8")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        let (status, headers) = code(Handshake::check(&request).unwrap_err());
        assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
        assert_eq!(headers["sec-websocket-version"], "13");
        assert_eq!(headers["upgrade"], "websocket");
    }

    #[test]
    fn a_missing_or_malformed_key_is_a_bad_handshake() {
        for key in [None, Some("short"), Some("dGhlIHNhbXBsZSBub25jZQ")] {
            let mut request = http1();
            if let Some(key) = key {
                request = request.header("sec-websocket-key", key);
            }
            let (status, _) = code(Handshake::check(&request.body(()).unwrap()).unwrap_err());
            assert_eq!(status, StatusCode::BAD_REQUEST, "{key:?}");
        }
    }

    #[test]
    fn http2_needs_connect_with_the_websocket_protocol() {
        let connect = |protocol: Option<&'static str>| {
            let mut request = Request::builder()
                .method(Method::CONNECT)
                .version(Version::HTTP_2)
                .uri("http://localhost/channels/a/ws")
                .header("sec-websocket-version", "13")
                .body(())
                .unwrap();
            if let Some(protocol) = protocol {
                request
                    .extensions_mut()
                    .insert(hyper::ext::Protocol::from_static(protocol));
            }
            request
        };
        let answer = Handshake::check(&connect(Some("websocket")))
            .unwrap()
            .accept();
        assert_eq!(answer.status(), StatusCode::OK);
        let (status, _) = code(Handshake::check(&connect(Some("webtransport"))).unwrap_err());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = code(Handshake::check(&connect(None)).unwrap_err());
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let get = Request::get("/channels/a/ws")
            .version(Version::HTTP_2)
            .body(())
            .unwrap();
        let (status, headers) = code(Handshake::check(&get).unwrap_err());
        assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
        assert!(headers.get("upgrade").is_none());
    }
}
