//! A subscription carried by one streaming HTTP response: opening it per the
//! wire contract, and a [`Session`] that feeds its body to a [`Decoder`].
//! SSE, NDJSON and most custom transports over plain HTTP are built on it.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Method, StatusCode};

use super::start_request;
use crate::http::{BodyReader, HttpClient};
use crate::received::Received;
use crate::transport::{OpenError, Session, SessionError, StartAt};

/// Sends `GET path` asking for `start` (the wire contract's query and
/// `Last-Event-ID`), and returns the response once its status is `200`.
///
/// # Errors
///
/// [`OpenError::Refused`] with the status and the JSON error code for any
/// other status; [`OpenError::Failed`] if the exchange fails.
pub async fn open_response(
    http: &HttpClient,
    path: &str,
    start: &StartAt,
) -> Result<http::Response<hyper::body::Incoming>, OpenError> {
    let (query, headers) = start_request(start);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let separator = if path.contains('?') { '&' } else { '?' };
    let path = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}{separator}{query}")
    };
    let response = http
        .send(Method::GET, &path, &headers, Bytes::new())
        .await
        .map_err(|e| OpenError::Failed(e.to_string()))?;
    if response.status() == StatusCode::OK {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Err(OpenError::refused(status, &body))
}

/// Turns the bytes of one streaming response into [`Received`] items.
pub trait Decoder: Send {
    /// Decodes what `bytes` completes, appending the items to `out`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Malformed`] when the bytes break the framing.
    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Received>) -> Result<(), SessionError>;

    /// Called when the body ends.
    ///
    /// # Errors
    ///
    /// [`SessionError::Malformed`] when it ended inside a frame.
    fn finish(&mut self) -> Result<(), SessionError> {
        Ok(())
    }
}

/// A [`Session`] over one streaming HTTP response, decoded by a [`Decoder`]:
/// all a custom transport over plain HTTP needs beside its decoder.
pub struct BodySession<D> {
    reader: BodyReader,
    headers: http::HeaderMap,
    decoder: D,
    queue: VecDeque<Received>,
}

impl<D: Decoder> BodySession<D> {
    /// A session reading `response`'s body with `decoder`.
    pub fn new(response: http::Response<hyper::body::Incoming>, decoder: D) -> Self {
        let (parts, body) = response.into_parts();
        BodySession {
            reader: BodyReader::new(body),
            headers: parts.headers,
            decoder,
            queue: VecDeque::new(),
        }
    }
}

impl<D: Decoder> Session for BodySession<D> {
    fn headers(&self) -> Option<&http::HeaderMap> {
        Some(&self.headers)
    }

    fn next(&mut self) -> BoxFuture<'_, Result<Option<Received>, SessionError>> {
        Box::pin(async move {
            loop {
                if let Some(item) = self.queue.pop_front() {
                    return Ok(Some(item));
                }
                match self.reader.chunk().await {
                    Ok(Some(bytes)) => self.decoder.feed(&bytes, &mut self.queue)?,
                    Ok(None) => {
                        self.decoder.finish()?;
                        return Ok(None);
                    }
                    Err(e) => return Err(SessionError::Broken(e.to_string())),
                }
            }
        })
    }
}
