//! A small HTTP/1.1 client on hyper: the load's connections to servers that
//! do not speak h2c (the baselines), and the long-poll load's. One
//! connection per stream, as browsers do for SSE over HTTP/1.1; publishes
//! and polls reuse a keep-alive connection ([`KeepAlive`]) and reopen it
//! when the server closed it.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{Error, Result};

/// One HTTP/1.1 connection, driven by a task of its own.
async fn connect(address: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|error| Error::new(format!("cannot connect to {address}: {error}")))?;
    let _ = tcp.set_nodelay(true);
    let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|error| {
            Error::new(format!("HTTP/1.1 handshake with {address} failed: {error}"))
        })?;
    tokio::spawn(connection);
    Ok(send)
}

fn request(
    method: Method,
    address: SocketAddr,
    path: &str,
    body: Bytes,
) -> Result<Request<Full<Bytes>>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, address.to_string())
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Full::new(body))
        .map_err(|error| Error::new(format!("cannot build a request for {path}: {error}")))
}

/// Opens a connection and starts `GET path` on it; fails unless it answers
/// `200`.
///
/// # Errors
///
/// When the connection or the request fails, or it answers another status.
pub async fn stream(address: SocketAddr, path: &str) -> Result<Body> {
    stream_with(address, path, &[]).await
}

/// As [`stream`], with `headers` on the request (a `Last-Event-ID`, say).
/// Dropping the [`Body`] before its end closes the connection.
///
/// # Errors
///
/// As [`stream`].
pub async fn stream_with(
    address: SocketAddr,
    path: &str,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<Body> {
    let mut send = connect(address).await?;
    let mut get = request(Method::GET, address, path, Bytes::new())?;
    for (name, value) in headers {
        get.headers_mut().insert(name, value.clone());
    }
    let response = send
        .send_request(get)
        .await
        .map_err(|error| Error::new(format!("GET {path} failed: {error}")))?;
    if response.status() != StatusCode::OK {
        return Err(Error::new(format!(
            "GET {path} answered {}, not 200",
            response.status()
        )));
    }
    Ok(Body {
        what: format!("GET {path}"),
        body: response.into_body(),
    })
}

/// A response body being read.
#[derive(Debug)]
pub struct Body {
    what: String,
    body: Incoming,
}

impl Body {
    /// The next chunk of data, `None` at the end.
    ///
    /// # Errors
    ///
    /// When the connection fails.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(error)) => {
                    return Err(Error::new(format!(
                        "{}: the response body failed: {error}",
                        self.what
                    )))
                }
            }
        }
    }
}

/// A keep-alive HTTP/1.1 connection that carries one request at a time,
/// opened on first use and opened again when the server has closed it.
///
/// ```no_run
/// # async fn run() -> push_bench::Result<()> {
/// use http::Method;
/// use push_bench::http1::KeepAlive;
///
/// let mut connection = KeepAlive::new("127.0.0.1:8080".parse().unwrap());
/// let (status, body) = connection
///     .request(Method::GET, "/channels/news/longpoll?timeout=0", Default::default())
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct KeepAlive {
    address: SocketAddr,
    send: Option<SendRequest<Full<Bytes>>>,
    opened: u64,
}

impl KeepAlive {
    /// A connection to `address`; it connects on first use.
    pub fn new(address: SocketAddr) -> Self {
        KeepAlive {
            address,
            send: None,
            opened: 0,
        }
    }

    /// How many TCP connections it has opened so far: more than one means
    /// the server closed some.
    pub fn connections_opened(&self) -> u64 {
        self.opened
    }

    /// Sends `method path` with `body` (`content-type: text/plain`) and
    /// reads the whole answer: its status and body.
    ///
    /// # Errors
    ///
    /// When the connection cannot be opened, or the request or the reading
    /// of its answer fails.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let mut send = match self.send.take() {
            Some(mut send) => match send.ready().await {
                Ok(()) => send,
                // The server closed it (`connection: close`): open another.
                Err(_) => self.connect().await?,
            },
            None => self.connect().await?,
        };
        let what = format!("{method} {path}");
        let response = send
            .send_request(request(method, self.address, path, body)?)
            .await
            .map_err(|error| Error::new(format!("{what} failed: {error}")))?;
        let status = response.status();
        let answer = response
            .into_body()
            .collect()
            .await
            .map_err(|error| Error::new(format!("{what}: reading the answer failed: {error}")))?
            .to_bytes();
        self.send = Some(send);
        Ok((status, answer))
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>> {
        let send = connect(self.address).await?;
        self.opened += 1;
        Ok(send)
    }
}

/// A publisher over HTTP/1.1.
#[derive(Debug)]
pub struct Publisher {
    connection: KeepAlive,
}

impl Publisher {
    /// A publisher to `address`; it connects on first use.
    pub fn new(address: SocketAddr) -> Self {
        Publisher {
            connection: KeepAlive::new(address),
        }
    }

    /// Publishes `data` on `channel` and returns the answer's id.
    ///
    /// # Errors
    ///
    /// When the request fails or does not answer `201` with an id.
    pub async fn publish(&mut self, channel: &str, data: Bytes) -> Result<String> {
        let path = format!("/channels/{channel}");
        let (status, answer) = self.connection.request(Method::POST, &path, data).await?;
        crate::h2c::published_id(&path, status, &answer)
    }
}
