//! `axum-sse`: SSE and NDJSON written the way an axum 0.8 user writes them.
//!
//! A `Router` with a handler per route and the channels as its state; one
//! `tokio::sync::broadcast` channel per channel name, carrying each event's
//! number and body. The SSE handler answers `Sse` over the receiver's
//! `BroadcastStream`, turning every event into an `Event` (so each
//! subscriber formats each event itself), with axum's default keep-alive
//! comments. The NDJSON handler answers `Body::from_stream` over the same
//! kind of stream, each subscriber serializing each event's envelope (a
//! `#[derive(Serialize)]` struct) with `serde_json` and a `\n`. Served by
//! `axum::serve` (HTTP/1.1, and h2c with prior knowledge: axum's `http2`
//! feature is on), whose accept loop already waits out failed accepts (out
//! of file descriptors: a 1 s pause), on a listener that sets `TCP_NODELAY`
//! as axum's documentation shows.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::Router;
use tokio::net::TcpListener;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt as _};

use super::{event_id, position_signal, published_body, Channels, MAX_PUBLISH_BYTES};
use crate::{Error, Result};

/// An event as the broadcast carries it: its number and body.
type Published = (u64, Arc<str>);

type AppState = Arc<Channels<Published>>;

/// Serves until the task is dropped.
pub(super) async fn serve(listener: TcpListener) -> Result<()> {
    let app = Router::new()
        .route("/channels/{name}/sse", get(subscribe))
        .route("/channels/{name}/stream", get(subscribe_ndjson))
        .route("/channels/{name}", post(publish))
        // A known path with another method is a 404 too, as in the other
        // baselines (axum would answer 405).
        .method_not_allowed_fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_PUBLISH_BYTES))
        .with_state(Arc::new(Channels::new()));
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, app)
        .await
        .map_err(|error| Error::new(format!("axum-sse stopped serving: {error}")))
}

async fn subscribe(
    State(channels): State<AppState>,
    Path(name): Path<String>,
) -> Sse<impl Stream<Item = std::result::Result<Event, Infallible>>> {
    let (last, receiver) = channels.subscribe(&name);
    let position = Event::default().id(event_id(last));
    let events = BroadcastStream::new(receiver)
        // Lagged: the subscriber is dropped, its stream ends.
        .map_while(|published| published.ok())
        .map(|(n, data)| Ok(Event::default().id(event_id(n)).data(&*data)));
    Sse::new(tokio_stream::once(Ok(position)).chain(events)).keep_alive(KeepAlive::default())
}

/// The envelope of an event, serialized in the order of its fields.
#[derive(serde::Serialize)]
struct Envelope<'a> {
    id: String,
    data: &'a str,
}

async fn subscribe_ndjson(
    State(channels): State<AppState>,
    Path(name): Path<String>,
) -> impl IntoResponse {
    let (last, receiver) = channels.subscribe(&name);
    let position = Bytes::from(format!("{}\n", position_signal(last)));
    let events = BroadcastStream::new(receiver)
        // Lagged: the subscriber is dropped, its stream ends.
        .map_while(|published| published.ok())
        .map(|(n, data)| {
            let envelope = Envelope {
                id: event_id(n),
                data: &data,
            };
            let mut line = serde_json::to_vec(&envelope)?;
            line.push(b'\n');
            Ok::<_, serde_json::Error>(Bytes::from(line))
        });
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(tokio_stream::once(Ok(position)).chain(events)),
    )
}

async fn publish(
    State(channels): State<AppState>,
    Path(name): Path<String>,
    body: String,
) -> impl IntoResponse {
    let data: Arc<str> = body.into();
    let n = channels.publish(&name, |n| (n, data));
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        published_body(n),
    )
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}
