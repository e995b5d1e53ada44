//! The byte stream a socket runs on, whichever HTTP version upgraded it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::serve::upgrade::{H2Stream, H2Upgrade};
use crate::serve::ConnectionHandle;

/// Where the upgraded stream will come from: hyper (HTTP/1.1, or HTTP/2
/// under a hyper server) or this crate's HTTP/2 loop.
pub(super) enum Upgrade {
    Hyper(OnUpgrade),
    Http2(H2Upgrade),
}

impl Upgrade {
    /// The request's upgrade, taken out of its extensions.
    pub(super) fn take(extensions: &mut http::Extensions) -> Option<Self> {
        if let Some(on_upgrade) = extensions.remove::<OnUpgrade>() {
            return Some(Upgrade::Hyper(on_upgrade));
        }
        ConnectionHandle::of(extensions)
            .and_then(|handle| handle.upgrade.clone())
            .map(Upgrade::Http2)
    }

    /// The stream, once the answer is sent; `None` if the client went away
    /// first.
    pub(super) async fn stream(self) -> Option<SocketIo> {
        match self {
            Upgrade::Hyper(on_upgrade) => on_upgrade
                .await
                .ok()
                .map(|upgraded| SocketIo::Hyper(TokioIo::new(upgraded))),
            Upgrade::Http2(upgrade) => upgrade.stream().await.map(SocketIo::Http2),
        }
    }
}

/// An upgraded stream.
pub(super) enum SocketIo {
    Hyper(TokioIo<Upgraded>),
    Http2(H2Stream),
}

impl AsyncRead for SocketIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SocketIo::Hyper(io) => Pin::new(io).poll_read(cx, buf),
            SocketIo::Http2(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SocketIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            SocketIo::Hyper(io) => Pin::new(io).poll_write(cx, buf),
            SocketIo::Http2(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SocketIo::Hyper(io) => Pin::new(io).poll_flush(cx),
            SocketIo::Http2(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SocketIo::Hyper(io) => Pin::new(io).poll_shutdown(cx),
            SocketIo::Http2(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}
