//! A small HTTP/1.1 client on hyper: the load's connections to servers that
//! do not speak h2c (the baselines). One connection per stream, as browsers
//! do for SSE over HTTP/1.1; publishes reuse a keep-alive connection and
//! reopen it when the server closed it.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
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
    let mut send = connect(address).await?;
    let response = send
        .send_request(request(Method::GET, address, path, Bytes::new())?)
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

/// A publisher over HTTP/1.1.
#[derive(Debug)]
pub struct Publisher {
    address: SocketAddr,
    send: Option<SendRequest<Full<Bytes>>>,
}

impl Publisher {
    /// A publisher to `address`; it connects on first use.
    pub fn new(address: SocketAddr) -> Self {
        Publisher {
            address,
            send: None,
        }
    }

    /// Publishes `data` on `channel` and returns the answer's id.
    ///
    /// # Errors
    ///
    /// When the request fails or does not answer `201` with an id.
    pub async fn publish(&mut self, channel: &str, data: Bytes) -> Result<String> {
        let path = format!("/channels/{channel}");
        let mut send = match self.send.take() {
            Some(mut send) => match send.ready().await {
                Ok(()) => send,
                // The server closed it (`connection: close`): open another.
                Err(_) => connect(self.address).await?,
            },
            None => connect(self.address).await?,
        };
        let response = send
            .send_request(request(Method::POST, self.address, &path, data)?)
            .await
            .map_err(|error| Error::new(format!("POST {path} failed: {error}")))?;
        let status = response.status();
        let answer = response
            .into_body()
            .collect()
            .await
            .map_err(|error| {
                Error::new(format!("POST {path}: reading the answer failed: {error}"))
            })?
            .to_bytes();
        self.send = Some(send);
        crate::h2c::published_id(&path, status, &answer)
    }
}
