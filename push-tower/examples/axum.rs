//! push-tower's services inside an axum app: one technique on a route of
//! your own, and the whole wire protocol nested under `/push`.
//!
//! ```text
//! cargo run -p push-tower --example axum
//! curl -N http://127.0.0.1:3000/events/news            # SSE, channel from the path
//! curl -X POST --data-binary hi -H 'content-type: text/plain' http://127.0.0.1:3000/push/channels/news
//! ```

use push_core::{Hub, HubConfig};
use push_tower::sse::SseService;
use push_tower::{Config, Push};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    let app = axum::Router::new()
        // route_service: the channel is the last path segment.
        .route_service("/events/{name}", SseService::new(push.clone()))
        // nest_service strips the prefix; the router serves PROTOCOL.md's routes.
        .nest_service("/push", push.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
