//! push-tower's services inside an axum app: one technique on a route of
//! your own, the whole wire protocol nested under `/push`, and axum's
//! graceful shutdown ending every stream with the `shutdown` signal.
//!
//! ```text
//! cargo run -p push-tower --example axum
//! curl -N http://127.0.0.1:3000/rooms/lobby/live        # SSE of the channel `lobby`
//! curl -X POST --data-binary hi -H 'content-type: text/plain' http://127.0.0.1:3000/push/channels/lobby
//! ```

use push_core::{Hub, HubConfig};
use push_tower::{ChannelFrom, Config, Push};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    let app = axum::Router::new()
        // One technique: the channel is the `{room}` parameter, stated to the
        // service; other methods are answered with 405.
        .route_service(
            "/rooms/{room}/live",
            push.sse(ChannelFrom::path("/rooms/{room}/live")?),
        )
        // nest_service strips the prefix; the router serves PROTOCOL.md's routes.
        .nest_service("/push", push.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    // Streams end with the shutdown signal as soon as axum starts draining,
    // so the drain completes instead of waiting on open streams.
    axum::serve(listener, app)
        .with_graceful_shutdown(push.shutdown_on(async {
            let _ = tokio::signal::ctrl_c().await;
        }))
        .await?;
    Ok(())
}
