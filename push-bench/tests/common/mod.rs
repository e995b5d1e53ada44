//! Servers the integration tests start in-process on 127.0.0.1, port 0.

// Each test crate compiles this module and uses only some of it.
#![allow(dead_code)]

use std::net::SocketAddr;

use push_bench::baseline::{self, Baseline};
use push_tower::push_core::{Hub, HubConfig};
use push_tower::{serve, Config, Push};
use tokio::net::TcpListener;

/// Serves `baseline` on the test's runtime; its address.
pub(crate) async fn start(baseline: Baseline) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Err(error) = baseline::run(baseline, listener).await {
            panic!("{} stopped: {error}", baseline.name());
        }
    });
    address
}

/// Serves push's whole router, as push-server does, on the test's runtime.
pub(crate) async fn start_push() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    tokio::spawn(async move {
        let _ = serve(listener, push.router()).with_push(push).run().await;
    });
    address
}
