//! A small h2c (HTTP/2 over cleartext TCP, prior knowledge) client on the
//! `h2` crate: the load's own connections.
//!
//! ```no_run
//! # async fn run() -> push_bench::Result<()> {
//! use push_bench::h2c::Connection;
//!
//! let address = "127.0.0.1:8080".parse().unwrap();
//! let mut connection = Connection::open(address).await?;
//! let id = connection.publish("news", "hello".into()).await?;
//! let mut stream = connection.get("/channels/news/sse").await?;
//! while let Some(chunk) = stream.next_chunk().await? {
//!     println!("{}", String::from_utf8_lossy(&chunk));
//! }
//! # Ok(()) }
//! ```
//!
//! Its windows are large (1 MiB per stream, 16 MiB per connection), as a
//! browser's are, so that the client's flow control is not what limits a
//! measurement; what it reads it hands back to the window at once.

use std::net::SocketAddr;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::RecvStream;
use http::{Method, Request, StatusCode};
use tokio::net::TcpStream;

use crate::{Error, Result};

/// The client's window per stream.
const STREAM_WINDOW: u32 = 1024 * 1024;

/// The client's window per connection.
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// One h2c connection; clones share it.
#[derive(Debug, Clone)]
pub struct Connection {
    address: SocketAddr,
    send: SendRequest<Bytes>,
}

impl Connection {
    /// Connects to `address` and completes the HTTP/2 handshake. The
    /// connection is driven by a task of its own until every clone is
    /// dropped.
    ///
    /// # Errors
    ///
    /// When the TCP connection or the handshake fails (the server is not
    /// listening, or does not speak h2c).
    pub async fn open(address: SocketAddr) -> Result<Self> {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|error| Error::new(format!("cannot connect to {address}: {error}")))?;
        let _ = tcp.set_nodelay(true);
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(tcp)
            .await
            .map_err(|error| {
                Error::new(format!("the h2c handshake with {address} failed: {error}"))
            })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { address, send })
    }

    /// Sends a request with `body` (none if empty) and returns the response
    /// status and a reader of its body.
    async fn request(&mut self, method: Method, path: &str, body: Bytes) -> Result<Response> {
        let what = format!("{method} {path}");
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.address));
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "text/plain");
        }
        let request = request
            .body(())
            .map_err(|error| Error::new(format!("{what}: not a valid request: {error}")))?;
        let failed = |error: h2::Error| Error::new(format!("{what}: {error}"));
        let mut send = self.send.clone().ready().await.map_err(failed)?;
        let (response, mut stream) = send
            .send_request(request, body.is_empty())
            .map_err(failed)?;
        if !body.is_empty() {
            // Request bodies here are small: h2 queues what the window does
            // not take yet.
            stream.send_data(body, true).map_err(failed)?;
        }
        let response = response.await.map_err(failed)?;
        let status = response.status();
        Ok(Response {
            status,
            body: Body {
                what,
                stream: response.into_body(),
            },
        })
    }

    /// Starts `GET path`; fails unless it answers `200`.
    ///
    /// # Errors
    ///
    /// When the request fails or answers another status.
    pub async fn get(&mut self, path: &str) -> Result<Body> {
        let response = self.request(Method::GET, path, Bytes::new()).await?;
        if response.status != StatusCode::OK {
            return Err(Error::new(format!(
                "GET {path} answered {}, not 200",
                response.status
            )));
        }
        Ok(response.body)
    }

    /// Publishes `data` on `channel` (text, since the content type is
    /// `text/plain`) and returns the event's id.
    ///
    /// # Errors
    ///
    /// When the request fails or the server does not answer `201` with an
    /// id.
    pub async fn publish(&mut self, channel: &str, data: Bytes) -> Result<String> {
        let path = format!("/channels/{channel}");
        let response = self.request(Method::POST, &path, data).await?;
        let status = response.status;
        let answer = response.body.read_to_end().await?;
        published_id(&path, status, &answer)
    }
}

/// The id in the answer to a publish (`POST path`), which must be `201`
/// with `{"id":"…"}`; the same on every protocol.
///
/// # Errors
///
/// When the status is not `201` or the answer has no id.
pub(crate) fn published_id(path: &str, status: StatusCode, answer: &[u8]) -> Result<String> {
    let answer = String::from_utf8_lossy(answer);
    let id = answer
        .split_once(r#""id":""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(id, _)| id.to_owned());
    match (status, id) {
        (StatusCode::CREATED, Some(id)) => Ok(id),
        _ => Err(Error::new(format!(
            "POST {path} answered {status} {answer}, not 201 with an id"
        ))),
    }
}

struct Response {
    status: StatusCode,
    body: Body,
}

/// A response body being read.
#[derive(Debug)]
pub struct Body {
    what: String,
    stream: RecvStream,
}

impl Body {
    /// The next chunk of the body, `None` at its end. What is read is given
    /// back to the window at once.
    ///
    /// # Errors
    ///
    /// When the stream is reset or the connection fails.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        match self.stream.data().await {
            None => Ok(None),
            Some(Ok(chunk)) => {
                let _ = self.stream.flow_control().release_capacity(chunk.len());
                Ok(Some(chunk))
            }
            Some(Err(error)) => Err(Error::new(format!(
                "{}: the response body failed: {error}",
                self.what
            ))),
        }
    }

    /// Reads the whole body.
    ///
    /// # Errors
    ///
    /// As [`Body::next_chunk`].
    pub async fn read_to_end(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}
