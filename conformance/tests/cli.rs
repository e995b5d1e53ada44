//! The `conformance` binary as a user runs it against a server by URL.

use std::process::Command;

use push_core::{Hub, HubConfig};
use push_tower::{serve, Config, Push};

async fn server() -> String {
    listen(Push::new(Hub::new(HubConfig::default()), Config::default())).await
}

/// Serves `push` on a port of its own.
async fn listen(push: Push) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, push.router()).with_push(push).run());
    base
}

fn conformance(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(args)
        .output()
        .expect("conformance runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_leaves_out_the_transports_it_names() {
    let base = server().await;
    let run = tokio::task::spawn_blocking(move || {
        conformance(&[
            "--url",
            &base,
            "--technique",
            "poll,sse",
            "--protocol",
            "http1,h2c",
            "--skip",
            "poll-h2c,sse",
        ])
    });
    let (code, stdout, stderr) = run.await.unwrap();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("(2 transports)"), "{stdout}");
    let header = stdout.lines().nth(1).unwrap();
    let columns: Vec<&str> = header.split_whitespace().skip(2).collect();
    assert_eq!(columns, ["poll", "sse-h2c"], "{stdout}");
}

#[test]
fn skip_of_a_transport_the_run_lacks_is_refused_with_the_names() {
    let (code, _, stderr) = conformance(&[
        "--url",
        "http://127.0.0.1:9",
        "--protocol",
        "http1",
        "--skip",
        "ws-h2c",
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("\"ws-h2c\" names no transport"), "{stderr}");
    assert!(
        stderr.contains("these run: poll, longpoll, sse"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_url_publishes_through_one_node_and_subscribes_through_another() {
    // Two listeners on one hub: a cluster whose nodes share their channels.
    let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    let (control, subscribe) = (listen(push.clone()).await, listen(push).await);
    let run = tokio::task::spawn_blocking(move || {
        conformance(&[
            "--url",
            &subscribe,
            "--control-url",
            &control,
            "--technique",
            "longpoll,ndjson",
            "--protocol",
            "http1",
            "--only",
            "identity,closed",
        ])
    });
    let (code, stdout, stderr) = run.await.unwrap();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("pass"), "{stdout}");

    // The control really goes to --control-url: with one nobody listens
    // on, no publish gets through and every scenario that publishes fails.
    let base = server().await;
    let run = tokio::task::spawn_blocking(move || {
        conformance(&[
            "--url",
            &base,
            "--control-url",
            "http://127.0.0.1:9",
            "--technique",
            "poll",
            "--protocol",
            "http1",
            "--only",
            "identity",
        ])
    });
    let (code, stdout, stderr) = run.await.unwrap();
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAIL"), "{stdout}");
}
