//! A connection whose first bytes were read to tell HTTP/1.1 from HTTP/2,
//! handed on with those bytes put back, and on HTTP/2 with the client's push
//! setting watched. It also holds the connection's place among the server's
//! connections, so that the place is given back only when the socket
//! closes, even after an upgrade took it away from hyper.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::limits::Admitted;
use super::peer_settings::{PeerSettings, PushEnabled};

/// `inner`, read from `prefix` first.
#[derive(Debug)]
pub(crate) struct Rewind<T> {
    prefix: Bytes,
    inner: T,
    settings: Option<PeerSettings>,
    /// Given back on drop.
    _place: Option<Admitted>,
}

impl<T> Rewind<T> {
    pub(crate) fn new(prefix: Bytes, inner: T) -> Self {
        Rewind {
            prefix,
            inner,
            settings: None,
            _place: None,
        }
    }

    /// Holds `place` as long as the connection.
    pub(super) fn holding(mut self, place: Option<Admitted>) -> Self {
        self._place = place;
        self
    }

    /// Watches what is read, an HTTP/2 connection from its preface on, for
    /// the client's push setting.
    pub(crate) fn watch_push_setting(&mut self) -> PushEnabled {
        let (settings, push_enabled) = PeerSettings::new();
        self.settings = Some(settings);
        push_enabled
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            // What follows the prefix in the same read: hyper grows its read
            // buffer when a read leaves it less than its usual size free, so
            // a read of the prefix alone would double it for the
            // connection's whole life. An error or `Pending` here surfaces at
            // the next read; the prefix is returned now either way.
            if this.prefix.is_empty() && buf.remaining() > 0 {
                let _ = Pin::new(&mut this.inner).poll_read(cx, buf);
            }
        } else {
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
        if let Some(settings) = &mut this.settings {
            settings.observe(&buf.filled()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_prefix_is_read_before_the_rest() {
        let rest: &[u8] = b" world";
        let mut rewind = Rewind::new(Bytes::from_static(b"hello"), rest);
        let mut all = String::new();
        rewind.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "hello world");
    }

    #[tokio::test]
    async fn one_read_returns_the_prefix_and_what_is_ready_after_it() {
        let rest: &[u8] = b" world";
        let mut rewind = Rewind::new(Bytes::from_static(b"hello"), rest);
        let mut buf = [0u8; 64];
        let n = rewind.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello world");
        assert_eq!(rewind.read(&mut buf).await.unwrap(), 0);
    }
}
