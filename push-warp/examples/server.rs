//! The whole wire contract from warp filters, mounted in a warp app beside
//! a route of its own (`GET /hello`), with push-server's flags:
//!
//! ```text
//! cargo run -p push-warp --example server -- --listen 127.0.0.1:8081
//! curl -N 'http://127.0.0.1:8081/channels/news/sse?from=earliest'
//! curl http://127.0.0.1:8081/hello
//! ```
//!
//! Ctrl-C (or SIGTERM) shuts push down first, so open streams end with the
//! `shutdown` signal, and then lets the server drain its connections.
//!
//! `--allowed-origin` wraps the app in `push_warp::with_origins` (CORS for
//! those pages, `403` for others). warp's server cannot push, does not take
//! HTTP/2 extended `CONNECT` or TLS (`--tls-cert` is refused under it), and
//! push-server's bounds on requests and connections (`--max-headers`,
//! `--max-connections` and the like) are `serve`'s, which warp's server
//! does not have.
//! `--server push-tower` runs the same filters, turned into a tower service
//! by `warp::service`, under push-tower's `serve`, which carries them all:
//!
//! ```text
//! cargo run -p push-warp --example server -- --listen 127.0.0.1:8081 --server push-tower
//! nghttp -v http://127.0.0.1:8081/channels/news/push?from=earliest
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use push_core::Hub;
use push_server::{stop_signal, ServerFlags};
use push_tower::{serve, Push};
use warp::{Filter, Reply};

/// Serve an in-memory push hub from warp filters, beside an app route, with
/// push-server's flags.
#[derive(Debug, Parser)]
#[command(mut_arg("listen", |listen| listen.default_value("127.0.0.1:8081")))]
struct Args {
    #[command(flatten)]
    flags: ServerFlags,
    /// The server that runs the filters.
    #[arg(long, value_enum, default_value_t = Server::Warp)]
    server: Server,
}

/// Which server runs the warp filters.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Server {
    /// warp's own: HTTP/1.1 and h2c; HTTP/2 push inline, WebSocket over
    /// HTTP/1.1 only.
    Warp,
    /// push-tower's `serve`: every technique on HTTP/1.1 and h2c, HTTP/2
    /// push and WebSocket over HTTP/2 included.
    PushTower,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Args {
        flags: args,
        server,
    } = Args::parse();
    let checked = args.validate().and_then(|()| match server {
        Server::Warp if args.tls_cert.is_some() => Err(
            "warp's own server does not take TLS: add --server push-tower, which serves --tls-cert and --tls-key, or put a TLS proxy in front"
                .to_owned(),
        ),
        _ => args.tls_config(),
    });
    let tls = match checked {
        Ok(tls) => tls,
        Err(problem) => {
            eprintln!("server: {problem}");
            return ExitCode::from(2);
        }
    };
    let mut push = Push::new(Hub::new(args.hub_config()), args.config());
    if let Some(authorizer) = args.authorizer() {
        push = push.with_authorizer(authorizer);
    }

    // The application's own route, and push mounted beside it.
    let hello = warp::get()
        .and(warp::path("hello"))
        .and(warp::path::end())
        .map(|| "hello from the app\n");
    let app = push_warp::routes(push.clone()).or(hello);
    // Checked when the flags were read.
    let app = match args.allowed_origins().ok().flatten() {
        Some(origins) => push_warp::with_origins(origins, app).boxed(),
        None => app.map(Reply::into_response).boxed(),
    };

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("server: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("push-warp example listening on {scheme}://{address} ({server:?} server)");
    let drain = args.drain_deadline();
    match server {
        Server::Warp => {
            let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
            let shutdown = push.clone();
            let server = warp::serve(app)
                .incoming(listener)
                .graceful(async move {
                    stop_signal().await;
                    // Streams end with the shutdown signal, so connections
                    // finish.
                    shutdown.shutdown();
                    let _ = stopping.send(());
                })
                .run();
            // warp's graceful shutdown has no deadline of its own.
            let deadline = async {
                let _ = stopped.await;
                tokio::time::sleep(drain).await;
            };
            tokio::select! {
                () = server => {}
                () = deadline => eprintln!("server: connections still open after --drain-secs; leaving"),
            }
        }
        Server::PushTower => {
            let mut server = serve(listener, warp::service(app))
                .with_push(push)
                .drain_deadline(drain)
                .header_read_timeout(args.header_read_timeout())
                .max_header_bytes(args.max_header_bytes)
                .max_headers(args.max_headers)
                .max_connections(args.max_connections)
                .max_connections_per_peer(args.max_connections_per_peer)
                .max_subscriptions_per_connection(args.max_subscriptions_per_connection);
            if let Some(tls) = tls {
                server = server.tls(Arc::new(tls));
            }
            let served = server.with_graceful_shutdown(stop_signal()).await;
            if let Err(error) = served {
                eprintln!("server: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("push-warp example stopped");
    ExitCode::SUCCESS
}
