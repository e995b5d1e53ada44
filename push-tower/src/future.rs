//! The response future of every service of this crate.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use push_core::wire::WireError;

use crate::body::PushBody;
use crate::error;

/// The response future of every service of this crate: an answer ready at
/// once (an error, a channel's info), or one that waits on the channel
/// source or, for a long poll, on the channel.
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
        Self::ready(error::response(error))
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

    /// # Panics
    ///
    /// Panics if polled again after it completed, as futures may.
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
