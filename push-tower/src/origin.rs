//! An allow-list of the `Origin`s whose pages may use the server, enforced
//! on every request, WebSocket upgrades included: browsers let any page
//! open a WebSocket to any server, with the page's cookies, and CORS does
//! not apply to it, so the server has to check the `Origin` itself.
//!
//! A request with no `Origin` (a client that is not a browser page) passes;
//! one whose `Origin` is not listed is `403 forbidden` before it reaches
//! the service. Pair it with a CORS layer (tower-http's `CorsLayer`) given
//! the same origins, which answers preflights and lets the listed pages read
//! the answers.
//!
//! ```
//! use http::Request;
//! use push_core::{Hub, HubConfig};
//! use push_tower::origin::{AllowedOrigins, CheckOriginLayer};
//! use push_tower::{Config, Push};
//! use tower::{Layer, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let origins = AllowedOrigins::list(["https://app.example"]).unwrap();
//! let service = CheckOriginLayer::new(origins).layer(push.router());
//! let from = |origin: &str| {
//!     let request = Request::get("/channels/news/ws").header("origin", origin);
//!     service.clone().oneshot(request.body(String::new()).unwrap())
//! };
//! assert_eq!(from("https://evil.example").await.unwrap().status(), 403);
//! // Allowed: on to the WebSocket route (which wants a real handshake).
//! assert_eq!(from("https://app.example").await.unwrap().status(), 426);
//! # });
//! ```

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{
    HeaderName, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{header, HeaderValue, Method, Request, Response};
use push_core::wire::WireError;

use crate::body::PushBody;
use crate::error;

/// The methods of the wire contract a page on another origin uses: what
/// a CORS preflight should allow (reads, publishing, closing).
pub const CORS_METHODS: [Method; 3] = [Method::GET, Method::POST, Method::DELETE];

/// The request headers a client of the wire contract sends (a token, a
/// publish's type, a poll's revalidation, an SSE resume): what a CORS
/// preflight should allow.
pub const CORS_REQUEST_HEADERS: [HeaderName; 4] = [
    AUTHORIZATION,
    CONTENT_TYPE,
    IF_NONE_MATCH,
    HeaderName::from_static("last-event-id"),
];

/// The answer headers a page needs to read (a poll's `ETag`, the
/// `Retry-After` of a `429` or `503`, a `401`'s challenge): what CORS
/// should expose.
pub const CORS_EXPOSED_HEADERS: [HeaderName; 3] = [ETAG, RETRY_AFTER, WWW_AUTHENTICATE];

/// How long a browser may keep a preflight's answer.
pub const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// The origins allowed: a list, or any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedOrigins(Allowed);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Allowed {
    Any,
    List(Arc<[HeaderValue]>),
}

/// An origin that is not `scheme://host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadOrigin(String);

impl fmt::Display for BadOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an origin: write it as the browser sends it, scheme://host[:port] with no path or trailing slash (https://app.example)",
            self.0
        )
    }
}

impl std::error::Error for BadOrigin {}

impl AllowedOrigins {
    /// Every origin: no check (CORS then answers `*`).
    pub fn any() -> Self {
        AllowedOrigins(Allowed::Any)
    }

    /// Exactly these origins, compared as the browser sends them.
    ///
    /// # Errors
    ///
    /// [`BadOrigin`] for one that is not `scheme://host[:port]`.
    pub fn list<I, S>(origins: I) -> Result<Self, BadOrigin>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list = origins
            .into_iter()
            .map(|origin| {
                let origin = origin.as_ref();
                let uri: http::Uri = origin.parse().map_err(|_| BadOrigin(origin.to_owned()))?;
                let well_formed = uri.scheme().is_some()
                    && uri.authority().is_some()
                    && uri.path() == "/"
                    && uri.query().is_none()
                    && !origin.ends_with('/');
                if !well_formed {
                    return Err(BadOrigin(origin.to_owned()));
                }
                HeaderValue::from_str(origin).map_err(|_| BadOrigin(origin.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowedOrigins(Allowed::List(list.into())))
    }

    /// Whether a request from `origin` may go on.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        match &self.0 {
            Allowed::Any => true,
            Allowed::List(list) => list.iter().any(|allowed| allowed == origin),
        }
    }

    /// Checks a request's `Origin` header.
    ///
    /// # Errors
    ///
    /// `403 forbidden`, naming the origin and what to do, for an origin
    /// that is not allowed.
    pub fn check(&self, origin: &HeaderValue) -> Result<(), WireError> {
        if self.allows(origin) {
            return Ok(());
        }
        let shown = String::from_utf8_lossy(origin.as_bytes());
        Err(WireError::forbidden(format!(
            "pages from `{shown}` may not use this server; serve the page from an allowed origin"
        )))
    }

    /// The listed origins, or `None` for any.
    pub fn as_list(&self) -> Option<&[HeaderValue]> {
        match &self.0 {
            Allowed::Any => None,
            Allowed::List(list) => Some(list),
        }
    }
}

/// Wraps a service in [`CheckOrigin`].
#[derive(Clone, Debug)]
pub struct CheckOriginLayer {
    allowed: AllowedOrigins,
}

impl CheckOriginLayer {
    /// Refuses requests from origins not in `allowed`.
    pub fn new(allowed: AllowedOrigins) -> Self {
        CheckOriginLayer { allowed }
    }
}

impl<S> tower_layer::Layer<S> for CheckOriginLayer {
    type Service = CheckOrigin<S>;

    fn layer(&self, inner: S) -> CheckOrigin<S> {
        CheckOrigin {
            inner,
            allowed: self.allowed.clone(),
        }
    }
}

/// A service that answers `403 forbidden` to requests whose `Origin` is
/// not allowed, and passes the others on. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct CheckOrigin<S> {
    inner: S,
    allowed: AllowedOrigins,
}

impl<S, B> tower_service::Service<Request<B>> for CheckOrigin<S>
where
    S: tower_service::Service<
        Request<B>,
        Response = Response<PushBody>,
        Error = Infallible,
        Future = crate::ResponseFuture,
    >,
{
    type Response = Response<PushBody>;
    type Error = Infallible;
    type Future = crate::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> crate::ResponseFuture {
        let checked = request
            .headers()
            .get(header::ORIGIN)
            .map_or(Ok(()), |origin| self.allowed.check(origin));
        match checked {
            Ok(()) => self.inner.call(request),
            Err(refusal) => crate::ResponseFuture::ready(error::response(refusal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_when_listed() {
        assert!(AllowedOrigins::list(["https://app.example/"]).is_err());
        assert!(AllowedOrigins::list(["https://app.example/path"]).is_err());
        assert!(AllowedOrigins::list(["app.example"]).is_err());
        let allowed =
            AllowedOrigins::list(["https://app.example", "http://127.0.0.1:8080"]).unwrap();
        assert!(allowed.allows(&HeaderValue::from_static("https://app.example")));
        assert!(allowed.allows(&HeaderValue::from_static("http://127.0.0.1:8080")));
        assert!(!allowed.allows(&HeaderValue::from_static("http://app.example")));
        assert!(!allowed.allows(&HeaderValue::from_static("null")));
        assert!(AllowedOrigins::any().allows(&HeaderValue::from_static("null")));
    }
}
