//! Where a service mounted on its own finds its channel, and the macro that
//! shapes every technique's service alike.
//!
//! A technique service in someone else's router (an axum route, say) learns
//! its channel from something you state: a fixed name, a named parameter of
//! a path template, or a function of the request. Nothing is guessed from the
//! path.
//!
//! ```
//! use http::Request;
//! use push_core::{Hub, HubConfig};
//! use push_tower::{ChannelFrom, Config, Push};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let poll = push.poll(ChannelFrom::path("/rooms/{room}/poll")?);
//!
//! let answer = poll.clone().oneshot(Request::get("/rooms/lobby/poll").body(String::new())?).await?;
//! assert_eq!(answer.status(), 200);
//! assert_eq!(push.channels().describe("lobby")?.subscribers, 0);
//!
//! // A path the template does not match names no channel.
//! let answer = poll.clone().oneshot(Request::get("/rooms/lobby").body(String::new())?).await?;
//! assert_eq!(answer.status(), 404);
//! // A technique answers only the methods it serves.
//! let answer = poll.oneshot(Request::post("/rooms/lobby/poll").body(String::new())?).await?;
//! assert_eq!(answer.status(), 405);
//! assert_eq!(answer.headers()["allow"], "GET");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::Request;
use push_core::wire::WireError;
use push_core::{ChannelName, ChannelNameError};

use crate::request;

/// Where a single-technique service finds the channel of a request.
#[derive(Clone)]
pub struct ChannelFrom {
    kind: Kind,
}

/// A function that picks a channel name from a request's parts.
type Pick = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

#[derive(Clone)]
enum Kind {
    Fixed(ChannelName),
    Path(Template),
    Request(Pick),
}

/// A path template with one `{parameter}` segment.
#[derive(Clone, Debug)]
struct Template {
    text: Arc<str>,
    segments: Arc<[Segment]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Channel,
}

impl ChannelFrom {
    /// Always the channel `name`.
    ///
    /// # Errors
    ///
    /// The [`ChannelNameError`] if `name` breaks the channel naming rules.
    pub fn fixed(name: &str) -> Result<Self, ChannelNameError> {
        Ok(ChannelFrom {
            kind: Kind::Fixed(ChannelName::new(name)?),
        })
    }

    /// The one `{parameter}` segment of `template`, such as
    /// `/rooms/{room}/live`, matched against the whole path the service
    /// receives (axum's `route_service` hands over the full path;
    /// `nest_service` strips its prefix). The segment is taken raw, not
    /// percent-decoded, as the wire contract matches names. A path that does
    /// not match is `404 not_found`; a segment that is not a valid name is
    /// `400 bad_channel`.
    ///
    /// # Errors
    ///
    /// [`ChannelFromError`] if `template` does not start with `/` or has no
    /// `{parameter}` segment, or more than one.
    pub fn path(template: &str) -> Result<Self, ChannelFromError> {
        let Some(rest) = template.strip_prefix('/') else {
            return Err(ChannelFromError::NotAbsolute);
        };
        let segments: Vec<Segment> = rest
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') && segment.ends_with('}') && segment.len() > 2 {
                    Segment::Channel
                } else {
                    Segment::Literal(segment.to_owned())
                }
            })
            .collect();
        match segments.iter().filter(|s| **s == Segment::Channel).count() {
            0 => Err(ChannelFromError::NoParameter),
            1 => Ok(ChannelFrom {
                kind: Kind::Path(Template {
                    text: Arc::from(template),
                    segments: Arc::from(segments),
                }),
            }),
            _ => Err(ChannelFromError::SeveralParameters),
        }
    }

    /// The name `pick` returns for the request's parts (from a header, an
    /// extension a layer inserted, a path parameter of your router's);
    /// `None` is `404 not_found`, a name that breaks the rules
    /// `400 bad_channel`.
    pub fn request(pick: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        ChannelFrom {
            kind: Kind::Request(Arc::new(pick)),
        }
    }

    /// The channel of `request`, handing the request back.
    pub(crate) fn resolve<B>(
        &self,
        request: Request<B>,
    ) -> (Request<B>, Result<ChannelName, WireError>) {
        match &self.kind {
            Kind::Fixed(name) => (request, Ok(name.clone())),
            Kind::Path(template) => {
                let found = template
                    .channel_segment(request.uri().path())
                    .ok_or_else(|| {
                        WireError::no_channel_in_request(&format!("the path {}", template.text))
                    })
                    .and_then(request::channel_name);
                (request, found)
            }
            Kind::Request(pick) => {
                let (parts, body) = request.into_parts();
                let found = pick(&parts)
                    .ok_or_else(|| WireError::no_channel_in_request("the request"))
                    .and_then(|name| request::channel_name(&name));
                (Request::from_parts(parts, body), found)
            }
        }
    }
}

impl Template {
    fn channel_segment<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix('/')?;
        let mut found = None;
        let mut parts = rest.split('/');
        for segment in self.segments.iter() {
            let part = parts.next()?;
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Channel => found = Some(part),
            }
        }
        if parts.next().is_some() {
            return None;
        }
        found
    }
}

impl fmt::Debug for ChannelFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Fixed(name) => f.debug_tuple("ChannelFrom::Fixed").field(name).finish(),
            Kind::Path(template) => f
                .debug_tuple("ChannelFrom::Path")
                .field(&template.text)
                .finish(),
            Kind::Request(_) => f.write_str("ChannelFrom::Request(..)"),
        }
    }
}

/// Why a path template cannot name a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelFromError {
    /// The template does not start with `/`.
    NotAbsolute,
    /// The template has no `{parameter}` segment to take the channel from.
    NoParameter,
    /// The template has several `{parameter}` segments; use
    /// [`ChannelFrom::request`] to choose among them.
    SeveralParameters,
}

impl fmt::Display for ChannelFromError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChannelFromError::NotAbsolute => {
                "the path template must start with `/`, like `/rooms/{room}/live`"
            }
            ChannelFromError::NoParameter => {
                "the path template has no `{parameter}` segment to take the channel from; add one, or use ChannelFrom::fixed"
            }
            ChannelFromError::SeveralParameters => {
                "the path template has several `{parameter}` segments; keep one, or pick the channel with ChannelFrom::request"
            }
        })
    }
}

impl std::error::Error for ChannelFromError {}

/// Defines a technique's service: the struct, its constructor and its
/// `Service` impl, so that every technique reads alike. `$respond` answers a
/// request for a checked channel once the authorizer allowed `$action`.
macro_rules! technique_service {
    ($(#[$doc:meta])* $name:ident, $($method:ident)|+ => $respond:path, $action:expr) => {
        $(#[$doc])*
        pub struct $name<C = push_core::Hub> {
            push: $crate::Push<C>,
            channel_from: $crate::ChannelFrom,
        }

        impl<C> Clone for $name<C> {
            fn clone(&self) -> Self {
                $name {
                    push: self.push.clone(),
                    channel_from: self.channel_from.clone(),
                }
            }
        }

        impl<C: push_core::Channels> $name<C> {
            /// Serves the channel that `channel_from` finds in each request.
            pub fn new(push: $crate::Push<C>, channel_from: $crate::ChannelFrom) -> Self {
                $name { push, channel_from }
            }
        }

        impl<C> std::fmt::Debug for $name<C> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("channel_from", &self.channel_from)
                    .finish()
            }
        }

        impl<C, B> tower_service::Service<http::Request<B>> for $name<C>
        where
            C: push_core::Channels,
            B: http_body::Body + Send + 'static,
            B::Data: Send,
            B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
            type Response = http::Response<$crate::PushBody>;
            type Error = std::convert::Infallible;
            type Future = $crate::ResponseFuture;

            fn poll_ready(
                &mut self,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<B>) -> Self::Future {
                if $(request.method() != http::Method::$method)&&+ {
                    return $crate::ResponseFuture::ready($crate::error::method_not_allowed(
                        concat!($(stringify!($method), ", "),+).trim_end_matches(", "),
                    ));
                }
                match self.channel_from.resolve(request) {
                    (request, Ok(channel)) => {
                        $crate::authorize::then(&self.push, channel, $action, request, $respond)
                    }
                    (_, Err(error)) => $crate::ResponseFuture::error(error),
                }
            }
        }
    };
}

pub(crate) use technique_service;
