//! WebSocket over HTTP/2 (RFC 8441): the stream of an extended `CONNECT`,
//! handed to the service that accepted it as a byte stream.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use h2::{Reason, RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use super::limits::SlotGuard;

/// A request extension on an extended `CONNECT` served by the HTTP/2 loop:
/// once the service answers `2xx`, the stream arrives here. The HTTP/2
/// counterpart of hyper's `OnUpgrade`, which only hyper can make.
#[derive(Clone, Debug)]
pub(crate) struct H2Upgrade(Arc<Mutex<Option<oneshot::Receiver<H2Stream>>>>);

impl H2Upgrade {
    pub(super) fn new() -> (Self, oneshot::Sender<H2Stream>) {
        let (sender, receiver) = oneshot::channel();
        (H2Upgrade(Arc::new(Mutex::new(Some(receiver)))), sender)
    }

    /// The stream, once the response has been sent; `None` if the client
    /// went away first or the upgrade was already taken.
    pub(crate) async fn stream(self) -> Option<H2Stream> {
        let receiver = self.0.lock().ok()?.take()?;
        receiver.await.ok()
    }
}

/// An HTTP/2 stream as bytes both ways, under the stream's flow control:
/// writes wait for the client's window, and reads give the window back as
/// they are taken.
#[derive(Debug)]
pub(crate) struct H2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// Received and not yet read.
    unread: Bytes,
    /// Our side has sent `END_STREAM`.
    ended: bool,
    /// The stream's place among its connection's subscriptions, held as
    /// long as the socket.
    _subscription: SlotGuard,
}

impl H2Stream {
    pub(super) fn new(send: SendStream<Bytes>, recv: RecvStream, subscription: SlotGuard) -> Self {
        H2Stream {
            send,
            recv,
            unread: Bytes::new(),
            ended: false,
            _subscription: subscription,
        }
    }
}

fn broken(error: h2::Error) -> io::Error {
    if error.is_io() {
        error
            .into_io()
            .unwrap_or_else(|| io::ErrorKind::BrokenPipe.into())
    } else {
        io::Error::new(io::ErrorKind::BrokenPipe, error)
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.unread.is_empty() {
            match self.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    self.unread = data;
                }
                // The client ended its side: end of input.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                // A client that resets its stream to leave has left.
                Poll::Ready(Some(Err(error)))
                    if matches!(error.reason(), Some(Reason::NO_ERROR | Reason::CANCEL)) =>
                {
                    return Poll::Ready(Ok(()))
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(broken(error))),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.unread.len().min(buf.remaining());
        buf.put_slice(&self.unread[..n]);
        self.unread.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.send.reserve_capacity(buf.len());
        let mut capacity = self.send.capacity();
        while capacity == 0 {
            capacity = match self.send.poll_capacity(cx) {
                Poll::Ready(Some(Ok(capacity))) => capacity,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(broken(error))),
                Poll::Ready(None) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                Poll::Pending => return Poll::Pending,
            };
        }
        let n = capacity.min(buf.len());
        self.send
            .send_data(Bytes::copy_from_slice(&buf[..n]), false)
            .map_err(broken)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection writes what streams hand it.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.end();
        Poll::Ready(Ok(()))
    }
}

impl H2Stream {
    /// Ends our side after what was written; a stream the client already
    /// reset has nothing to end.
    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            let _ = self.send.send_data(Bytes::new(), true);
        }
    }
}

impl Drop for H2Stream {
    fn drop(&mut self) {
        // Dropped without `END_STREAM`, `h2` would reset the stream and
        // discard the last writes (a close frame, say).
        self.end();
    }
}
