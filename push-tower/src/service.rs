//! What every technique's service shares: the response future, how the
//! channel is chosen, and the macro that shapes each service alike.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use push_core::wire::WireError;
use push_core::ChannelName;

use crate::body::PushBody;
use crate::request;

/// The response future of every service of this crate.
pub struct ResponseFuture {
    inner: Inner,
}

enum Inner {
    Ready(Option<Response<PushBody>>),
    Pending(Pin<Box<dyn Future<Output = Response<PushBody>> + Send>>),
}

impl ResponseFuture {
    pub(crate) fn ready(response: Response<PushBody>) -> Self {
        ResponseFuture {
            inner: Inner::Ready(Some(response)),
        }
    }

    pub(crate) fn error(error: WireError) -> Self {
        Self::ready(request::error(error))
    }

    pub(crate) fn pending(
        future: impl Future<Output = Response<PushBody>> + Send + 'static,
    ) -> Self {
        ResponseFuture {
            inner: Inner::Pending(Box::pin(future)),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<PushBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().inner {
            Inner::Ready(response) => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
            Inner::Pending(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Which channel a technique service serves.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// A [`ChannelName`] request extension if present, else the last
    /// non-empty path segment.
    FromRequest,
    Fixed(ChannelName),
}

impl Target {
    pub(crate) fn resolve<B>(&self, request: &Request<B>) -> Result<ChannelName, WireError> {
        match self {
            Target::Fixed(name) => Ok(name.clone()),
            Target::FromRequest => match request.extensions().get::<ChannelName>() {
                Some(name) => Ok(name.clone()),
                None => {
                    let segment = request
                        .uri()
                        .path()
                        .rsplit('/')
                        .find(|segment| !segment.is_empty())
                        .unwrap_or("");
                    request::channel_name(segment)
                }
            },
        }
    }
}

/// Defines a technique's service: the struct, its constructors and its
/// `Service` impl, so that every technique reads alike.
macro_rules! technique_service {
    ($(#[$doc:meta])* $name:ident => $respond:path) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            push: $crate::Push,
            target: $crate::service::Target,
        }

        impl $name {
            /// Serves every channel of the push hub. The channel is a
            /// [`ChannelName`](push_core::ChannelName) request extension if a
            /// layer inserted one, else the last segment of the path (so
            /// `/events/{name}` routes work as they are).
            pub fn new(push: $crate::Push) -> Self {
                $name {
                    push,
                    target: $crate::service::Target::FromRequest,
                }
            }

            /// Serves only the channel `name`, whatever the path.
            ///
            /// # Errors
            ///
            /// Returns the [`ChannelNameError`](push_core::ChannelNameError)
            /// if `name` breaks the channel naming rules.
            pub fn for_channel(
                push: $crate::Push,
                name: &str,
            ) -> Result<Self, push_core::ChannelNameError> {
                Ok($name {
                    push,
                    target: $crate::service::Target::Fixed(push_core::ChannelName::new(name)?),
                })
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("target", &self.target)
                    .finish()
            }
        }

        impl<B> tower_service::Service<http::Request<B>> for $name {
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
                match self.target.resolve(&request) {
                    Ok(channel) => $respond(&self.push, &channel, request),
                    Err(error) => $crate::ResponseFuture::error(error),
                }
            }
        }
    };
}

pub(crate) use technique_service;
