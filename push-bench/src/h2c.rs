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
use std::sync::Arc;

use bytes::Bytes;
use h2::client::{PushPromises, SendRequest};
use h2::RecvStream;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

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
    driver: Arc<AbortHandle>,
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
        Self::open_with(address, false).await
    }

    /// As [`Connection::open`], and accepts HTTP/2 server push
    /// (`SETTINGS_ENABLE_PUSH` 1), for [`Connection::get_pushed`].
    ///
    /// # Errors
    ///
    /// As [`Connection::open`].
    pub async fn open_pushable(address: SocketAddr) -> Result<Self> {
        Self::open_with(address, true).await
    }

    async fn open_with(address: SocketAddr, push: bool) -> Result<Self> {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|error| Error::new(format!("cannot connect to {address}: {error}")))?;
        let _ = tcp.set_nodelay(true);
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(push)
            .handshake::<_, Bytes>(tcp)
            .await
            .map_err(|error| {
                Error::new(format!("the h2c handshake with {address} failed: {error}"))
            })?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            address,
            send,
            driver: Arc::new(driver.abort_handle()),
        })
    }

    /// Cuts the TCP connection at once, as a network failure would: no
    /// `GOAWAY`, every stream on it (of every clone) ends with an error.
    pub fn cut(&self) {
        self.driver.abort();
    }

    /// Sends a request with `body` (none if empty) and returns the response
    /// status and a reader of its body, and the server's push promises on
    /// it when `promises`.
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        promises: bool,
    ) -> Result<(Response, Option<PushPromises>)> {
        let what = format!("{method} {path}");
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.address));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "text/plain");
        }
        let request = request
            .body(())
            .map_err(|error| Error::new(format!("{what}: not a valid request: {error}")))?;
        let failed = |error: h2::Error| Error::new(format!("{what}: {error}"));
        let mut send = self.send.clone().ready().await.map_err(failed)?;
        let (mut response, mut stream) = send
            .send_request(request, body.is_empty())
            .map_err(failed)?;
        let promises = promises.then(|| response.push_promises());
        if !body.is_empty() {
            // Request bodies here are small: h2 queues what the window does
            // not take yet.
            stream.send_data(body, true).map_err(failed)?;
        }
        let response = response.await.map_err(failed)?;
        let status = response.status();
        let response = Response {
            status,
            body: Body {
                what,
                stream: response.into_body(),
            },
        };
        Ok((response, promises))
    }

    /// Starts `GET path`; fails unless it answers `200`.
    ///
    /// # Errors
    ///
    /// When the request fails or answers another status.
    pub async fn get(&mut self, path: &str) -> Result<Body> {
        self.get_with(path, &[]).await
    }

    /// Starts `GET path` with `headers` (a `Last-Event-ID`, say); fails
    /// unless it answers `200`.
    ///
    /// # Errors
    ///
    /// When the request fails or answers another status.
    pub async fn get_with(
        &mut self,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Body> {
        let (response, _) = self
            .request(Method::GET, path, headers, Bytes::new(), false)
            .await?;
        ok(path, response)
    }

    /// Starts `GET path` on a connection opened with
    /// [`Connection::open_pushable`] and returns its body (the parent
    /// stream of `/push`) and the responses the server pushes on it; fails
    /// unless it answers `200`.
    ///
    /// # Errors
    ///
    /// When the request fails or answers another status.
    pub async fn get_pushed(&mut self, path: &str) -> Result<(Body, PushPromises)> {
        let (response, promises) = self
            .request(Method::GET, path, &[], Bytes::new(), true)
            .await?;
        let promises = promises.ok_or_else(|| Error::new("no push promises were asked for"))?;
        Ok((ok(path, response)?, promises))
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
        let (response, _) = self.request(Method::POST, &path, &[], data, false).await?;
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

/// The body of `response` to `GET path`, if it is `200`.
fn ok(path: &str, response: Response) -> Result<Body> {
    if response.status != StatusCode::OK {
        return Err(Error::new(format!(
            "GET {path} answered {}, not 200",
            response.status
        )));
    }
    Ok(response.body)
}

/// A response body being read.
#[derive(Debug)]
pub struct Body {
    what: String,
    stream: RecvStream,
}

impl Body {
    /// Reads a pushed response's body (a `PUSH_PROMISE`'s) as any other.
    pub fn pushed(what: String, stream: RecvStream) -> Self {
        Body { what, stream }
    }

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
