//! The request body `serve` hands to services, whichever HTTP version
//! carried it.

use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A request body as [`serve`](super::serve) reads it: from hyper over
/// HTTP/1.1, from the `h2` crate over HTTP/2. On HTTP/2 the client may send
/// more only as the service reads: flow-control capacity is given back for
/// each chunk as it is taken.
pub struct RequestBody {
    kind: Kind,
}

enum Kind {
    Empty,
    Http1(hyper::body::Incoming),
    Http2 {
        recv: h2::RecvStream,
        content_length: Option<u64>,
        data_done: bool,
    },
}

/// Why a request body could not be read: the connection or the stream
/// broke, or the client reset it.
#[derive(Debug)]
pub struct BodyError(Box<dyn StdError + Send + Sync>);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the request body could not be read: {}", self.0)
    }
}

impl StdError for BodyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

impl RequestBody {
    /// No body (a WebSocket's extended `CONNECT`, whose stream the socket
    /// takes over).
    pub(crate) fn empty() -> Self {
        RequestBody { kind: Kind::Empty }
    }

    pub(crate) fn http1(incoming: hyper::body::Incoming) -> Self {
        RequestBody {
            kind: Kind::Http1(incoming),
        }
    }

    pub(crate) fn http2(recv: h2::RecvStream, content_length: Option<u64>) -> Self {
        RequestBody {
            kind: Kind::Http2 {
                recv,
                content_length,
                data_done: false,
            },
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.get_mut().kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Http1(incoming) => Pin::new(incoming)
                .poll_frame(cx)
                .map_err(|error| BodyError(error.into())),
            Kind::Http2 {
                recv, data_done, ..
            } => {
                if !*data_done {
                    match recv.poll_data(cx) {
                        Poll::Ready(Some(Ok(data))) => {
                            // Taken: the client may send as much again.
                            let _ = recv.flow_control().release_capacity(data.len());
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        Poll::Ready(Some(Err(error))) => {
                            return Poll::Ready(Some(Err(BodyError(error.into()))))
                        }
                        Poll::Ready(None) => *data_done = true,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                match recv.poll_trailers(cx) {
                    Poll::Ready(Ok(Some(trailers))) => {
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                    Poll::Ready(Ok(None)) => Poll::Ready(None),
                    Poll::Ready(Err(error)) => Poll::Ready(Some(Err(BodyError(error.into())))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Http1(incoming) => incoming.is_end_stream(),
            Kind::Http2 { recv, .. } => recv.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Http1(incoming) => incoming.size_hint(),
            Kind::Http2 {
                content_length: Some(length),
                ..
            } => SizeHint::with_exact(*length),
            Kind::Http2 { .. } => SizeHint::default(),
        }
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = match self.kind {
            Kind::Empty => "empty",
            Kind::Http1(_) => "HTTP/1.1",
            Kind::Http2 { .. } => "HTTP/2",
        };
        f.debug_tuple("RequestBody").field(&version).finish()
    }
}
