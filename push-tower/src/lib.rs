//! Every `push` technique as a tower [`Service`](tower_service::Service).
//!
//! One module per technique, shaped alike: [`poll`] (short polling),
//! [`long_poll`], [`sse`] (Server-Sent Events) and [`stream`] (NDJSON HTTP
//! streaming), plus [`publish`]. [`Router`] serves the whole wire contract
//! of `PROTOCOL.md` under one prefix, and [`serve()`] runs any of them on
//! hyper with HTTP/1.1 and h2c on one port and graceful shutdown.
//!
//! Services are `Clone + Send + Sync + 'static` with `Error = Infallible`,
//! so axum's `route_service` and `nest_service` take them as they are. They
//! share a [`Push`]: the hub, the [`Config`], one heartbeat tick for every
//! connection and the shutdown switch.
//!
//! ```no_run
//! use push_core::{Hub, HubConfig};
//! use push_tower::{serve, Config, Push};
//!
//! # async fn run() -> std::io::Result<()> {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, push.router()).with_push(push).run().await
//! # }
//! ```
//!
//! With axum:
//!
//! ```
//! use push_core::{Hub, HubConfig};
//! use push_tower::{sse::SseService, Config, Push};
//!
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let app: axum::Router = axum::Router::new()
//!     .route_service("/events/{name}", SseService::new(push.clone()))
//!     .nest_service("/push", push.router());
//! ```

mod alarm;
pub mod body;
pub mod long_poll;
pub mod poll;
pub mod publish;
mod push;
mod request;
pub mod router;
pub mod serve;
mod service;
mod signals;
pub mod sse;
pub mod stream;

pub use body::PushBody;
pub use push::{Config, Push};
pub use router::Router;
pub use serve::{serve, Serve};
pub use service::ResponseFuture;

pub use push_core;

impl Push {
    /// The whole wire contract as one service; see [`Router`].
    pub fn router(&self) -> Router {
        Router::new(self.clone())
    }

    /// Server-Sent Events over every channel; see [`sse`].
    pub fn sse(&self) -> sse::SseService {
        sse::SseService::new(self.clone())
    }

    /// NDJSON streaming over every channel; see [`stream`].
    pub fn stream(&self) -> stream::StreamService {
        stream::StreamService::new(self.clone())
    }

    /// Short polling over every channel; see [`poll`].
    pub fn poll(&self) -> poll::PollService {
        poll::PollService::new(self.clone())
    }

    /// Long polling over every channel; see [`long_poll`].
    pub fn long_poll(&self) -> long_poll::LongPollService {
        long_poll::LongPollService::new(self.clone())
    }

    /// Publishing to every channel; see [`publish`].
    pub fn publish(&self) -> publish::PublishService {
        publish::PublishService::new(self.clone())
    }

    /// Answers `request` with a stream of `channel` framed by your own
    /// byte-oriented `delivery`, with everything the built-in streams do:
    /// the start position from `Last-Event-ID`, `?after=` or
    /// `?from=earliest`; errors answered as JSON before the stream starts;
    /// the shared heartbeat tick; the shutdown signal; the proxy-safe
    /// headers; and queued events gathered into few writes.
    ///
    /// This is how a custom transport over plain HTTP (`multipart/mixed`,
    /// say) gets the built-in semantics; the conformance crate's
    /// `multipart` example is one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use push_core::delivery::Ndjson;
    /// use push_core::{Hub, HubConfig};
    /// use push_tower::{Config, Push};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    /// let request = http::Request::get("/anything").body(()).unwrap();
    /// let response = push.stream_with("news", &request, Arc::new(Ndjson)).await.unwrap();
    /// assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    /// # });
    /// ```
    pub fn stream_with<B>(
        &self,
        channel: &str,
        request: &http::Request<B>,
        delivery: std::sync::Arc<dyn push_core::Delivery<Frame = bytes::Bytes>>,
    ) -> ResponseFuture {
        match request::channel_name(channel) {
            Ok(channel) => sse::stream_response(self, &channel, request, delivery),
            Err(error) => ResponseFuture::error(error),
        }
    }
}
