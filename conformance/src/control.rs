//! How the suite drives the server side: publish, close, describe, and (when
//! the server is in the same process) shut down.

use std::fmt;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::Method;

use crate::http::HttpClient;
use crate::scenario::Capability;

/// A channel's state and limits, as `GET /channels/{name}` reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelState {
    /// The head id.
    pub cursor: String,
    /// Open subscriptions.
    pub subscribers: u64,
    /// Bytes queued for subscribers now.
    pub buffered_bytes: u64,
    /// The server's limits.
    pub limits: ServerLimits,
}

/// The limits a server reports in its channel info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Events retained per channel.
    pub history_events: u64,
    /// Bytes retained per channel.
    pub history_bytes: u64,
    /// Bytes held per subscriber beyond the history before it is lagged.
    pub subscriber_buffer_bytes: u64,
    /// Heartbeat interval.
    pub heartbeat_ms: u64,
    /// Longest long-poll hold.
    pub long_poll_max_ms: u64,
    /// Largest event.
    pub max_event_bytes: u64,
}

/// The server side of the suite. [`WireControl`] implements it over the wire
/// contract's HTTP API; implement it yourself for a server that publishes
/// some other way.
pub trait Control: Send + Sync {
    /// Publishes `data` (text when `binary` is false) to `channel` with an
    /// optional event name; returns the event's id.
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        event: Option<&'a str>,
        data: &'a [u8],
        binary: bool,
    ) -> BoxFuture<'a, Result<String, ControlError>>;

    /// Closes `channel`: its subscribers get the closed signal.
    fn close<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Describes `channel`.
    fn describe<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<ChannelState, ControlError>>;

    /// Whether this control can do what `capability` asks. A scenario that
    /// needs a capability the control lacks is not applicable and does not
    /// run.
    ///
    /// The default answers `false` to every capability, so a control that
    /// implements [`Control::shutdown`] answers `true` to
    /// [`Capability::StopServer`] here as well. The suite asks this instead
    /// of calling `shutdown` to find out, since calling it stops the server.
    fn can(&self, capability: Capability) -> bool {
        let _ = capability;
        false
    }

    /// Starts a graceful shutdown of the server, if this control can (a
    /// server in the same process); `None` where it cannot. The suite calls
    /// it only where [`Control::can`] answers `true` to
    /// [`Capability::StopServer`]: once per scenario that needs it, after
    /// every other scenario of every transport.
    fn shutdown(&self) -> Option<BoxFuture<'_, ()>> {
        None
    }
}

/// A control request that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlError(pub String);

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ControlError {}

/// [`Control`] over the wire contract: `POST`, `DELETE` and
/// `GET /channels/{name}`, plus a shutdown hook when the server runs in the
/// same process.
#[derive(Clone)]
pub struct WireControl {
    http: HttpClient,
    /// Where channels are described, if not `http`.
    observed: Option<HttpClient>,
    shutdown: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

impl WireControl {
    /// Controls the server `http` talks to.
    pub fn new(http: HttpClient) -> Self {
        WireControl {
            http,
            observed: None,
            shutdown: None,
        }
    }

    /// Describes channels through `node` instead: for a cluster, where the
    /// suite publishes and closes through one node and subscribes through
    /// another. The subscribing node is the one that counts its
    /// subscribers and their buffered bytes; events, head and limits are
    /// the same on every node.
    ///
    /// ```
    /// use conformance::{HttpClient, Protocol, WireControl};
    ///
    /// let control = WireControl::new(HttpClient::new("http://127.0.0.1:8080", Protocol::Http1))
    ///     .observing(HttpClient::new("http://127.0.0.1:8081", Protocol::Http1));
    /// # let _ = control;
    /// ```
    pub fn observing(mut self, node: HttpClient) -> Self {
        self.observed = Some(node);
        self
    }

    /// Lets the suite start a graceful shutdown by calling `shutdown` (for
    /// a push-tower server in this process: `move || push.shutdown()`), so
    /// that the control has [`Capability::StopServer`] and the scenarios
    /// that need it (`shutdown`) run instead of being not applicable.
    pub fn on_shutdown(mut self, shutdown: impl Fn() + Send + Sync + 'static) -> Self {
        self.shutdown = Some(std::sync::Arc::new(shutdown));
        self
    }
}

impl fmt::Debug for WireControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireControl")
            .field("http", &self.http)
            .field("observed", &self.observed)
            .field("shutdown", &self.shutdown.is_some())
            .finish()
    }
}

fn field(value: &serde_json::Value, path: &[&str]) -> Result<u64, ControlError> {
    let mut current = value;
    for key in path {
        current = &current[*key];
    }
    current
        .as_u64()
        .ok_or_else(|| ControlError(format!("channel info lacks {}: {value}", path.join("."))))
}

/// Parses the wire contract's channel info.
///
/// # Errors
///
/// A [`ControlError`] naming the missing field.
pub fn parse_channel_info(value: &serde_json::Value) -> Result<ChannelState, ControlError> {
    Ok(ChannelState {
        cursor: value["cursor"]
            .as_str()
            .ok_or_else(|| ControlError(format!("channel info lacks cursor: {value}")))?
            .to_owned(),
        subscribers: field(value, &["subscribers"])?,
        buffered_bytes: field(value, &["buffered_bytes"])?,
        limits: ServerLimits {
            history_events: field(value, &["limits", "history_events"])?,
            history_bytes: field(value, &["limits", "history_bytes"])?,
            subscriber_buffer_bytes: field(value, &["limits", "subscriber_buffer_bytes"])?,
            heartbeat_ms: field(value, &["limits", "heartbeat_ms"])?,
            long_poll_max_ms: field(value, &["limits", "long_poll_max_ms"])?,
            max_event_bytes: field(value, &["limits", "max_event_bytes"])?,
        },
    })
}

impl Control for WireControl {
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        event: Option<&'a str>,
        data: &'a [u8],
        binary: bool,
    ) -> BoxFuture<'a, Result<String, ControlError>> {
        Box::pin(async move {
            let path = match event {
                Some(name) => format!("/channels/{channel}?event={}", crate::clients::encode(name)),
                None => format!("/channels/{channel}"),
            };
            let content_type = if binary {
                "application/octet-stream"
            } else {
                "text/plain; charset=utf-8"
            };
            let answer = self
                .http
                .fetch(
                    Method::POST,
                    &path,
                    &[("content-type", content_type)],
                    Bytes::copy_from_slice(data),
                )
                .await
                .map_err(|e| ControlError(e.to_string()))?;
            if answer.status != 201 {
                return Err(ControlError(format!(
                    "publish to {channel} answered {}: {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                )));
            }
            answer.json()["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ControlError("publish answered no id".into()))
        })
    }

    fn close<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let answer = self
                .http
                .fetch(
                    Method::DELETE,
                    &format!("/channels/{channel}"),
                    &[],
                    Bytes::new(),
                )
                .await
                .map_err(|e| ControlError(e.to_string()))?;
            if answer.status.is_success() {
                Ok(())
            } else {
                Err(ControlError(format!(
                    "DELETE {channel} answered {}",
                    answer.status
                )))
            }
        })
    }

    fn describe<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<ChannelState, ControlError>> {
        Box::pin(async move {
            let answer = self
                .observed
                .as_ref()
                .unwrap_or(&self.http)
                .get(&format!("/channels/{channel}"))
                .await
                .map_err(|e| ControlError(e.to_string()))?;
            if answer.status != 200 {
                return Err(ControlError(format!(
                    "GET /channels/{channel} answered {}",
                    answer.status
                )));
            }
            parse_channel_info(&answer.json())
        })
    }

    /// [`Capability::StopServer`] where [`WireControl::on_shutdown`] gave
    /// a way to stop the server.
    fn can(&self, capability: Capability) -> bool {
        match capability {
            Capability::StopServer => self.shutdown.is_some(),
        }
    }

    fn shutdown(&self) -> Option<BoxFuture<'_, ()>> {
        let shutdown = self.shutdown.clone()?;
        Some(Box::pin(async move { shutdown() }))
    }
}
