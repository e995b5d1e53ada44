//! Events that are ready together go out in fewer writes than events, and
//! never in more than one write each.

mod support;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use conformance::{HttpClient, Protocol, StartAt, Technique, Transport};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use push_core::{Data, Hub, HubConfig, Message};
use push_tower::{Config, Push};
use support::{events, next, TIMEOUT};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A socket that counts the writes that moved bytes.
struct CountingIo {
    inner: TcpStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for CountingIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        result
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

#[tokio::test]
async fn queued_events_share_writes() {
    for protocol in [Protocol::Http1, Protocol::H2c] {
        for technique in [Technique::Sse, Technique::Ndjson, Technique::WebSocket] {
            let push = Push::new(Hub::new(HubConfig::default()), Config::default());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let writes = Arc::new(AtomicUsize::new(0));
            let counted = Arc::clone(&writes);
            let router = push.router();
            tokio::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let io = CountingIo {
                    inner: stream,
                    writes: counted,
                };
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder.http2().enable_connect_protocol();
                let _ = builder
                    .serve_connection_with_upgrades(
                        TokioIo::new(io),
                        TowerToHyperService::new(router),
                    )
                    .await;
            });
            let http = HttpClient::new(&format!("http://{addr}"), protocol);
            let client = conformance::WireClient::new(technique, http);
            let mut session = tokio::time::timeout(TIMEOUT, client.open("burst", StartAt::Now))
                .await
                .unwrap()
                .unwrap();
            next(&mut session).await; // the position
            let before = writes.load(Ordering::Relaxed);

            // 200 events published back to back, before the stream's task runs.
            const EVENTS: usize = 200;
            for i in 0..EVENTS {
                push.channels()
                    .publish("burst", Message::new(Data::text(format!("event {i}"))))
                    .unwrap();
            }
            let received = events(&mut session, EVENTS).await;
            assert_eq!(received.len(), EVENTS);
            let used = writes.load(Ordering::Relaxed) - before;
            println!(
                "{} over {protocol}: {EVENTS} events in {used} writes",
                technique.name()
            );
            assert!(used >= 1);
            assert!(
                used * 4 <= EVENTS,
                "{} over {protocol}: {used} writes for {EVENTS} queued events; expected them gathered",
                technique.name()
            );
        }
    }
}
