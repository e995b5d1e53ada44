//! A small HTTP client over hyper for the built-in technique clients:
//! HTTP/1.1, or HTTP/2 with prior knowledge (h2c).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The HTTP version a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 over cleartext with prior knowledge.
    H2c,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::H2c => "h2c",
        })
    }
}

/// A client of one server, with a base URL such as `http://127.0.0.1:8080`
/// (a path prefix may follow).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    protocol: Protocol,
}

/// A response read to its end.
#[derive(Clone, Debug)]
pub struct FullResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl FullResponse {
    /// The body as JSON, or `Value::Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `error` code of a JSON error body.
    pub fn error_code(&self) -> Option<String> {
        crate::transport::error_code(&self.body)
    }
}

/// A failed request: the connection or the exchange broke.
#[derive(Debug)]
pub struct HttpError(pub String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

impl HttpClient {
    /// A client of `base` speaking `protocol`.
    pub fn new(base: &str, protocol: Protocol) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(Duration::from_secs(30));
        if protocol == Protocol::H2c {
            builder.http2_only(true);
        }
        HttpClient {
            client: builder.build(connector),
            base: base.trim_end_matches('/').to_owned(),
            protocol,
        }
    }

    /// The protocol spoken.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request for `path` (with its query) and returns the response
    /// with its body still streaming.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] if the request cannot be built or the exchange fails.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Response<Incoming>, HttpError> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| HttpError(format!("cannot build a request for {path}: {e}")))?;
        self.client
            .request(request)
            .await
            .map_err(|e| HttpError(format!("request to {path} failed: {e}")))
    }

    /// Sends a request and reads the whole response.
    ///
    /// # Errors
    ///
    /// As [`HttpClient::send`], and if the body cannot be read.
    pub async fn fetch(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<FullResponse, HttpError> {
        let response = self.send(method, path, headers, body).await?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| HttpError(format!("reading the answer of {path} failed: {e}")))?
            .to_bytes();
        Ok(FullResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `GET path`, read whole.
    ///
    /// # Errors
    ///
    /// As [`HttpClient::fetch`].
    pub async fn get(&self, path: &str) -> Result<FullResponse, HttpError> {
        self.fetch(Method::GET, path, &[], Bytes::new()).await
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.base)
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// Reads a streaming body frame by frame.
pub(crate) struct BodyReader {
    body: Incoming,
    pub(crate) ended: bool,
}

impl BodyReader {
    pub(crate) fn new(body: Incoming) -> Self {
        BodyReader { body, ended: false }
    }

    /// The next data chunk; `Ok(None)` at the end of the body.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        while !self.ended {
            match self.body.frame().await {
                None => self.ended = true,
                Some(Err(e)) => {
                    self.ended = true;
                    return Err(HttpError(format!("the stream broke: {e}")));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
        Ok(None)
    }
}
