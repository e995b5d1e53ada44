//! The browser client, `push.js`, and a service that serves it (or any
//! other file compiled into the binary).
//!
//! [`SCRIPT`] is a dependency-free ES module that subscribes over
//! WebSocket, Server-Sent Events, NDJSON streaming, long polling or short
//! polling, falling back from one to the next, and resumes from its cursor
//! on every reconnect; its API is documented at the top of the file.
//! `push-server` serves it at `/client/push.js`; [`script`] gives any app a
//! service that does the same:
//!
//! ```
//! use http::Request;
//! use push_tower::client;
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let response = client::script()
//!     .oneshot(Request::get("/client/push.js").body(String::new()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.headers()["content-type"], "text/javascript; charset=utf-8");
//! let etag = response.headers()["etag"].clone();
//!
//! // A browser revalidating its copy is told it is current.
//! let request = Request::get("/client/push.js").header("if-none-match", etag);
//! let response = client::script().oneshot(request.body(String::new()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), 304);
//! # });
//! ```
//!
//! With axum: `Router::new().route_service("/client/push.js", push_tower::client::script())`.

use std::convert::Infallible;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::body::PushBody;
use crate::{error, response, ResponseFuture};

/// The browser client's source: an ES module exporting `subscribe` and
/// `publish`.
pub const SCRIPT: &str = include_str!("../client/push.js");

/// The client's content type (RFC 9239).
pub const SCRIPT_CONTENT_TYPE: &str = "text/javascript; charset=utf-8";

/// A service answering with [`SCRIPT`]: cached for ten minutes and then
/// revalidated by its `ETag`, and readable from pages of any origin (module
/// scripts are fetched with CORS), since it is public and carries no
/// credentials.
pub fn script() -> StaticFile {
    StaticFile::new(SCRIPT.as_bytes(), SCRIPT_CONTENT_TYPE)
        .cache_control(HeaderValue::from_static("public, max-age=600"))
        .any_origin()
}

/// Serves one file compiled into the binary, for `GET` and `HEAD` (other
/// methods are `405 method_not_allowed`), whatever the path: with its
/// content type, `X-Content-Type-Options: nosniff`, a `Cache-Control`
/// (`no-cache` unless set), and an `ETag` from its content, so that
/// `If-None-Match` answers `304 Not Modified`.
#[derive(Clone, Debug)]
pub struct StaticFile {
    body: &'static [u8],
    content_type: HeaderValue,
    cache_control: HeaderValue,
    etag: HeaderValue,
    any_origin: bool,
}

impl StaticFile {
    /// Serves `body` as `content_type`.
    ///
    /// # Panics
    ///
    /// Panics if `content_type` is not a valid header value (a control
    /// character, say): it is the program's constant, not a client's input.
    pub fn new(body: &'static [u8], content_type: &'static str) -> Self {
        let etag = format!("\"{:016x}\"", fnv1a(body));
        StaticFile {
            body,
            content_type: HeaderValue::from_static(content_type),
            cache_control: HeaderValue::from_static("no-cache"),
            etag: HeaderValue::from_str(&etag).expect("hex digits are a valid header value"),
            any_origin: false,
        }
    }

    /// Sends this `Cache-Control` instead of `no-cache`.
    pub fn cache_control(mut self, value: HeaderValue) -> Self {
        self.cache_control = value;
        self
    }

    /// Sends `Access-Control-Allow-Origin: *`, so pages of other origins may
    /// read the file (a public file, fetched without credentials).
    pub fn any_origin(mut self) -> Self {
        self.any_origin = true;
        self
    }

    /// The answer to `request`.
    pub fn respond<B>(&self, request: &Request<B>) -> Response<PushBody> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return error::method_not_allowed("GET, HEAD");
        }
        let current = response::entity_tags(request.headers().get_all(header::IF_NONE_MATCH))
            .any(|tag| tag == self.etag);
        let mut response = if current {
            let mut response = Response::new(PushBody::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        } else {
            let mut response = Response::new(PushBody::full(self.body));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, self.content_type.clone());
            response
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, self.cache_control.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if self.any_origin {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        response
    }
}

impl<B> tower_service::Service<Request<B>> for StaticFile {
    type Response = Response<PushBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        ResponseFuture::ready(self.respond(&request))
    }
}

/// FNV-1a: a content tag for the `ETag`, not a defence against anyone.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(file: &StaticFile, headers: &[(&str, &str)]) -> Response<PushBody> {
        let mut request = Request::get("/anything");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        file.respond(&request.body(()).unwrap())
    }

    #[test]
    fn the_script_is_small_and_documented_at_its_top() {
        assert!(SCRIPT.len() < 15_000, "push.js is {} bytes", SCRIPT.len());
        assert!(SCRIPT.starts_with("/**\n * push.js"));
        assert!(SCRIPT.contains("export function subscribe("));
        assert!(SCRIPT.contains("export async function publish("));
    }

    #[test]
    fn serves_the_file_with_its_type_tag_and_caching() {
        let response = get(&script(), &[]);
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers["content-type"], SCRIPT_CONTENT_TYPE);
        assert_eq!(headers["cache-control"], "public, max-age=600");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert_eq!(headers["etag"].len(), 18);
    }

    #[test]
    fn if_none_match_with_its_tag_is_not_modified_and_another_is_served() {
        let file = StaticFile::new(b"<p>hi</p>", "text/html; charset=utf-8");
        let etag = get(&file, &[])
            .headers()
            .get("etag")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let listed = format!("\"other\", W/{etag}");
        let response = get(&file, &[("if-none-match", &listed)]);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()["etag"], etag.as_str());
        assert!(!response.headers().contains_key("content-type"));
        let response = get(&file, &[("if-none-match", "\"other\"")]);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-cache");
        assert!(!response
            .headers()
            .contains_key("access-control-allow-origin"));
        assert_ne!(StaticFile::new(b"<p>ho</p>", "text/html").etag, file.etag);
    }

    #[test]
    fn other_methods_are_refused() {
        let request = Request::post("/").body(()).unwrap();
        let response = script().respond(&request);
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "GET, HEAD");
    }
}
