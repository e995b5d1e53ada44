//! A TCP proxy on loopback that can cut every connection through it at
//! once, and can refuse WebSocket handshakes as some proxies do.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub(crate) struct Proxy {
    pub(crate) url: String,
    cuts: watch::Sender<u64>,
    upstream: Arc<Mutex<SocketAddr>>,
}

impl Proxy {
    /// Forwards a port of its own to `upstream`; with `refuse_websocket`, a
    /// request asking to upgrade to WebSocket is answered `403` and closed.
    pub(crate) async fn start(upstream: SocketAddr, refuse_websocket: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (cuts, cut) = watch::channel(0);
        let upstream = Arc::new(Mutex::new(upstream));
        let current = upstream.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let cut = cut.clone();
                let upstream = *current.lock().unwrap();
                tokio::spawn(forward(client, upstream, refuse_websocket, cut));
            }
        });
        Proxy {
            url,
            cuts,
            upstream,
        }
    }

    /// Sends new connections to `upstream` (a new server process, say);
    /// open ones stay where they are.
    pub(crate) fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }

    /// Drops every connection open through the proxy, both ways, without
    /// a word: what a network failure looks like to both ends.
    pub(crate) fn cut(&self) {
        self.cuts.send_modify(|generation| *generation += 1);
    }
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    refuse_websocket: bool,
    mut cut: watch::Receiver<u64>,
) {
    cut.mark_unchanged();
    // The request head, to see whether it asks for a WebSocket.
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match client.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    let asks_websocket = String::from_utf8_lossy(&head)
        .to_ascii_lowercase()
        .contains("upgrade: websocket");
    if refuse_websocket && asks_websocket {
        let _ = client
            .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.changed() => {
            // Reset rather than close: no orderly end reaches either side.
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
        }
    }
}
