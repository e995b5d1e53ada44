//! Who may do what with which channel: one decision, made for every
//! technique before anything else happens.
//!
//! An [`Authorize`] given to [`Push::with_authorizer`] sees every request
//! that names a channel, through the [`Router`](crate::Router) and every
//! technique's service alike, as an [`Access`]: the channel, the
//! [`Action`] (subscribe with which technique, publish, close, describe,
//! read one event), and the request's method, URI, headers and extensions.
//! It answers with a [`Decision`]: allow, or refuse with a wire error
//! (`401 unauthorized` or `403 forbidden`, typically), at once or after
//! awaiting something (a token service, a database). A refusal is answered
//! as JSON before any stream starts or any WebSocket is upgraded; a long
//! poll is decided again on every request, so a revoked client is refused at
//! its next poll.
//!
//! ```
//! use http::Request;
//! use push_core::wire::WireError;
//! use push_core::{Hub, HubConfig};
//! use push_tower::authorize::{Access, Decision};
//! use push_tower::{Config, Push};
//! use tower::ServiceExt;
//!
//! // Anyone may read; publishing and closing need the shared secret.
//! fn decide(access: &Access<'_>) -> Decision {
//!     if access.action().is_read() {
//!         return Decision::allow();
//!     }
//!     match access.bearer_token().as_deref() {
//!         Some("s3cret") => Decision::allow(),
//!         Some(_) => Decision::deny(WireError::forbidden("this token may not publish")),
//!         None => Decision::deny(WireError::unauthorized("send Authorization: Bearer <token>")),
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default()).with_authorizer(decide);
//! let publish = |token: Option<&str>| {
//!     let mut request = Request::post("/channels/news").header("content-type", "text/plain");
//!     if let Some(token) = token {
//!         request = request.header("authorization", format!("Bearer {token}"));
//!     }
//!     push.router().oneshot(request.body(String::from("hello")).unwrap())
//! };
//! assert_eq!(publish(None).await.unwrap().status(), 401);
//! assert_eq!(publish(Some("guess")).await.unwrap().status(), 403);
//! assert_eq!(publish(Some("s3cret")).await.unwrap().status(), 201);
//! # });
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use http::{header, Extensions, HeaderMap, Method, Request, Uri};
use push_core::wire::WireError;
use push_core::{ChannelName, Technique};

use crate::serve::ConnectionHandle;
use crate::{error, request, Push, ResponseFuture};

/// What a request asks to do with a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Receive the channel's events with a technique, or with a custom
    /// transport built on [`Push::stream_with`] (`None`).
    Subscribe(Option<Technique>),
    /// Read one retained event: `GET /channels/{name}/messages/{id}`.
    ReadMessage,
    /// Read the channel's info: `GET /channels/{name}`.
    Describe,
    /// Publish an event: `POST /channels/{name}`.
    Publish,
    /// Close the channel: `DELETE /channels/{name}`.
    Close,
}

impl Action {
    /// Whether the action only reads: subscribing, reading an event, or
    /// describing.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Action::Subscribe(_) | Action::ReadMessage | Action::Describe
        )
    }
}

/// A request that names a channel, as an [`Authorize`] sees it.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    channel: &'a ChannelName,
    action: Action,
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> Access<'a> {
    /// The access `request` asks for: `action` on `channel`.
    pub fn new<B>(request: &'a Request<B>, channel: &'a ChannelName, action: Action) -> Self {
        Access {
            channel,
            action,
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// The channel the request names.
    pub fn channel(&self) -> &'a ChannelName {
        self.channel
    }

    /// What the request asks to do with it.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The request's method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request's URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request's headers (cookies among them).
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request's extensions: what the server or earlier layers attached
    /// (axum's `ConnectInfo`, a session, ...).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// The address of the client's end of the connection, when the request
    /// came through [`serve`](crate::serve()) (which attaches a
    /// [`ConnectionHandle`]); `None` under
    /// another server, whose own record of it (axum's `ConnectInfo`, say)
    /// is in [`extensions`](Self::extensions). Behind a proxy it is the
    /// proxy's address: the client's is in the headers the proxy sets.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.extensions
            .get::<ConnectionHandle>()
            .and_then(ConnectionHandle::peer_addr)
    }

    /// The first value of the query parameter `key`, decoded; `None` if it
    /// is absent or not UTF-8 once decoded.
    pub fn query(&self, key: &str) -> Option<Cow<'a, str>> {
        request::query_value(self.uri, key)
    }

    /// The bearer token: `Authorization: Bearer <token>` (RFC 6750), else
    /// the `token` query parameter, for the clients that cannot set headers
    /// (browsers' `EventSource` and `WebSocket`).
    pub fn bearer_token(&self) -> Option<Cow<'a, str>> {
        let from_header = self
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| Cow::Borrowed(token.trim()))
            });
        from_header.or_else(|| self.query("token"))
    }
}

impl fmt::Debug for Access<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers and the query may carry credentials: left out.
        f.debug_struct("Access")
            .field("channel", &self.channel)
            .field("action", &self.action)
            .field("method", &self.method)
            .field("path", &self.uri.path())
            .finish_non_exhaustive()
    }
}

/// What an [`Authorize`] decided: allow, refuse with a wire error, or decide
/// later, once a future completes.
pub struct Decision(Verdict);

enum Verdict {
    Now(Result<(), WireError>),
    Later(Pin<Box<dyn Future<Output = Result<(), WireError>> + Send>>),
}

impl Decision {
    /// The request goes on.
    pub fn allow() -> Self {
        Decision(Verdict::Now(Ok(())))
    }

    /// The request is answered with `refusal`: usually
    /// [`WireError::unauthorized`] (no credentials, or ones that do not
    /// hold) or [`WireError::forbidden`] (credentials that do not allow
    /// this).
    pub fn deny(refusal: WireError) -> Self {
        Decision(Verdict::Now(Err(refusal)))
    }

    /// The decision `decide` comes to. It owns what it needs: take it from
    /// the [`Access`] before building the future.
    pub fn later(decide: impl Future<Output = Result<(), WireError>> + Send + 'static) -> Self {
        Decision(Verdict::Later(Box::pin(decide)))
    }
}

impl From<Result<(), WireError>> for Decision {
    fn from(result: Result<(), WireError>) -> Self {
        Decision(Verdict::Now(result))
    }
}

impl fmt::Debug for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Verdict::Now(Ok(())) => f.write_str("Decision::Allow"),
            Verdict::Now(Err(refusal)) => f.debug_tuple("Decision::Deny").field(refusal).finish(),
            Verdict::Later(_) => f.write_str("Decision::Later"),
        }
    }
}

/// Decides whether a request may do what it asks with a channel. See the
/// [module docs](self).
///
/// Closures `Fn(&Access<'_>) -> Decision` are authorizers.
pub trait Authorize: Send + Sync + 'static {
    /// Decides `access`.
    fn authorize(&self, access: &Access<'_>) -> Decision;
}

impl<F> Authorize for F
where
    F: Fn(&Access<'_>) -> Decision + Send + Sync + 'static,
{
    fn authorize(&self, access: &Access<'_>) -> Decision {
        self(access)
    }
}

/// What `push`'s authorizer decided of `action` on `channel` by `request`;
/// `None` when it has none. Pass it to [`enforce`].
pub(crate) fn decide<C, B>(
    push: &Push<C>,
    request: &Request<B>,
    channel: &ChannelName,
    action: Action,
) -> Option<Decision> {
    let authorizer = push.authorizer.as_ref()?;
    Some(authorizer.authorize(&Access::new(request, channel, action)))
}

/// The answer `respond` gives if `decision` allows, the refusal otherwise.
/// A decision made later is awaited before `respond`'s answer is: `respond`
/// only prepares, and its future is dropped unpolled on a refusal.
pub(crate) fn enforce(
    decision: Option<Decision>,
    respond: impl FnOnce() -> ResponseFuture,
) -> ResponseFuture {
    match decision.map(|decision| decision.0) {
        None | Some(Verdict::Now(Ok(()))) => respond(),
        Some(Verdict::Now(Err(refusal))) => ResponseFuture::error(refusal),
        Some(Verdict::Later(decided)) => {
            let answer = respond();
            ResponseFuture::pending(async move {
                match decided.await {
                    Ok(()) => match answer.await {
                        Ok(answer) => answer,
                        Err(never) => match never {},
                    },
                    Err(refusal) => error::response(refusal),
                }
            })
        }
    }
}

/// Answers `request` with `respond` if `push`'s authorizer allows `action`
/// on `channel`, with the refusal otherwise.
pub(crate) fn then<C, B>(
    push: &Push<C>,
    channel: ChannelName,
    action: Action,
    request: Request<B>,
    respond: impl FnOnce(&Push<C>, ChannelName, Request<B>) -> ResponseFuture,
) -> ResponseFuture {
    let decision = decide(push, &request, &channel, action);
    enforce(decision, || respond(push, channel, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access_of(request: &Request<()>, check: impl FnOnce(&Access<'_>)) {
        let channel = ChannelName::new("news").unwrap();
        check(&Access::new(request, &channel, Action::Publish));
    }

    #[test]
    fn the_bearer_token_comes_from_the_header_then_the_query() {
        let request = Request::get("/x?token=from%20query")
            .header("authorization", "bearer  abc ")
            .body(())
            .unwrap();
        access_of(&request, |access| {
            assert_eq!(access.bearer_token().as_deref(), Some("abc"));
        });
        let request = Request::get("/x?a=1&token=from%20query&token=second")
            .header("authorization", "Basic dXNlcjpwYXNz")
            .body(())
            .unwrap();
        access_of(&request, |access| {
            assert_eq!(access.bearer_token().as_deref(), Some("from query"));
        });
        let request = Request::get("/x?token=%FF").body(()).unwrap();
        access_of(&request, |access| assert_eq!(access.bearer_token(), None));
    }

    #[test]
    fn reads_are_told_apart_from_writes() {
        assert!(Action::Subscribe(Some(Technique::Sse)).is_read());
        assert!(Action::Subscribe(None).is_read());
        assert!(Action::ReadMessage.is_read());
        assert!(Action::Describe.is_read());
        assert!(!Action::Publish.is_read());
        assert!(!Action::Close.is_read());
    }

    #[test]
    fn debug_leaves_credentials_out() {
        let request = Request::get("/channels/news/sse?token=secret")
            .header("authorization", "Bearer secret")
            .body(())
            .unwrap();
        access_of(&request, |access| {
            let shown = format!("{access:?}");
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("/channels/news/sse"), "{shown}");
        });
    }
}
