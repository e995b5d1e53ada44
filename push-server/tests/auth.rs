//! The binary's built-in authorization, as a user runs it: `--publish-token`
//! guards publishing and closing, `--read-token-key` makes every technique
//! need a signed read token naming the channel, sent as a bearer token or
//! `?token=`.

mod process;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use conformance::{HttpClient, OpenError, Protocol, StartAt, Technique, Transport};
use futures_util::StreamExt;
use http::Method;
use jsonwebtoken::{encode, EncodingKey, Header};
use push_server::auth::ReadClaims;

const PUBLISH_TOKEN: &str = "publish-secret-for-the-tests";
const READ_KEY: &str = "a-signing-key-of-at-least-32-bytes!";
const TIMEOUT: Duration = Duration::from_secs(10);

fn start() -> process::Running {
    process::Running::start(&[
        "--publish-token",
        PUBLISH_TOKEN,
        "--read-token-key",
        READ_KEY,
    ])
}

fn http(server: &process::Running, protocol: Protocol) -> HttpClient {
    HttpClient::new(&server.url, protocol)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A read token for `channels`, expiring `lifetime_secs` from now (in the
/// past if negative), signed with `key`.
fn read_token(channels: &[&str], lifetime_secs: i64, key: &str) -> String {
    let claims = ReadClaims {
        exp: now().saturating_add_signed(lifetime_secs),
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

async fn publish(
    http: &HttpClient,
    channel: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut headers = vec![("content-type", "text/plain")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer.as_str()));
    }
    let answer = http
        .fetch(
            Method::POST,
            &format!("/channels/{channel}"),
            &headers,
            Bytes::from_static(b"hi"),
        )
        .await
        .unwrap();
    let json = serde_json::from_slice(&answer.body).unwrap_or_default();
    (answer.status.as_u16(), json)
}

/// The status, error code and message of a GET of `path`.
async fn refusal(http: &HttpClient, path: &str) -> (u16, String, String) {
    let answer = http.get(path).await.unwrap();
    let json = answer.json();
    (
        answer.status.as_u16(),
        json["error"].as_str().unwrap_or_default().to_owned(),
        json["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn every_technique_needs_a_read_token_naming_the_channel() {
    let server = start();
    let good = read_token(&["room-*"], 600, READ_KEY);
    let other_channel = read_token(&["news"], 600, READ_KEY);
    let expired = read_token(&["room-*"], -600, READ_KEY);
    let forged = read_token(&["room-*"], 600, "another-key-of-at-least-32-bytes!!");
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let http = http(&server, protocol);
        for technique in Technique::ALL {
            let segment = technique.path_segment();
            // Without a token, the technique's own client is refused first.
            let client = conformance::WireClient::new(technique, http.clone());
            match tokio::time::timeout(TIMEOUT, client.open("room-1", StartAt::Now))
                .await
                .unwrap()
            {
                Err(OpenError::Refused { status, code }) => {
                    assert_eq!(
                        (status, code.as_deref()),
                        (401, Some("unauthorized")),
                        "{technique:?} {protocol:?}"
                    );
                }
                Err(other) => panic!("{technique:?} {protocol:?}: {other}"),
                Ok(_) => panic!("{technique:?} {protocol:?} was served without a token"),
            }
            if technique == Technique::WebSocket {
                continue;
            }
            let path = |token: &str| format!("/channels/room-1/{segment}?timeout=0&token={token}");
            let (status, code, message) = refusal(&http, &path(&expired)).await;
            assert_eq!(
                (status, code.as_str()),
                (401, "unauthorized"),
                "{technique:?}"
            );
            assert!(message.contains("expired"), "{message}");
            let (status, code, message) = refusal(&http, &path(&forged)).await;
            assert_eq!(
                (status, code.as_str()),
                (401, "unauthorized"),
                "{technique:?}"
            );
            assert!(message.contains("signature"), "{message}");
            let (status, code, _) = refusal(&http, &path("not-a-jwt")).await;
            assert_eq!(
                (status, code.as_str()),
                (401, "unauthorized"),
                "{technique:?}"
            );
            let (status, code, _) = refusal(&http, &path(&other_channel)).await;
            assert_eq!((status, code.as_str()), (403, "forbidden"), "{technique:?}");
            let opened = http
                .send(Method::GET, &path(&good), &[], Bytes::new())
                .await
                .unwrap();
            assert_eq!(opened.status(), 200, "{technique:?} {protocol:?}");
            let by_header = http
                .send(
                    Method::GET,
                    &format!("/channels/room-1/{segment}?timeout=0"),
                    &[("authorization", &format!("Bearer {good}"))],
                    Bytes::new(),
                )
                .await
                .unwrap();
            assert_eq!(by_header.status(), 200, "{technique:?} {protocol:?}");
        }
    }
    // A browser's WebSocket carries the token in the query, and receives.
    let ws = server.url.replacen("http", "ws", 1);
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{ws}/channels/room-2/ws?token={good}"))
            .await
            .unwrap();
    let (status, json) = publish(
        &http(&server, Protocol::Http1),
        "room-2",
        Some(PUBLISH_TOKEN),
    )
    .await;
    assert_eq!(status, 201);
    loop {
        let message = tokio::time::timeout(TIMEOUT, socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let text = message.into_text().unwrap();
        if text.contains(json["id"].as_str().unwrap()) && text.contains("\"data\"") {
            break;
        }
    }
    for (token, status) in [(None, 401), (Some(other_channel.as_str()), 403)] {
        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        match tokio_tungstenite::connect_async(format!("{ws}/channels/room-2/ws{query}")).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => {
                assert_eq!(answer.status(), status);
            }
            other => panic!("the WebSocket was not refused: {other:?}"),
        }
    }
}

#[tokio::test]
async fn publishing_and_closing_need_the_publish_token() {
    let server = start();
    let reader = read_token(&["*"], 600, READ_KEY);
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let http = http(&server, protocol);
        let (status, json) = publish(&http, "news", None).await;
        assert_eq!(
            (status, json["error"].as_str()),
            (401, Some("unauthorized"))
        );
        let (status, json) = publish(&http, "news", Some("wrong")).await;
        assert_eq!(
            (status, json["error"].as_str()),
            (401, Some("unauthorized"))
        );
        let (status, json) = publish(&http, "news", Some(&reader)).await;
        assert_eq!((status, json["error"].as_str()), (403, Some("forbidden")));
        let (status, json) = publish(&http, "news", Some(PUBLISH_TOKEN)).await;
        assert_eq!(status, 201, "{json}");
        let id = json["id"].as_str().unwrap().to_owned();

        // Reads with a read token, or the publish token.
        for token in [reader.as_str(), PUBLISH_TOKEN] {
            let described = http
                .get(&format!("/channels/news?token={token}"))
                .await
                .unwrap();
            assert_eq!(described.status, 200);
            let message = http
                .get(&format!("/channels/news/messages/{id}?token={token}"))
                .await
                .unwrap();
            assert_eq!(message.status, 200);
        }
        let close = |token: &str| {
            let http = http.clone();
            let bearer = format!("Bearer {token}");
            async move {
                http.fetch(
                    Method::DELETE,
                    "/channels/news",
                    &[("authorization", &bearer)],
                    Bytes::new(),
                )
                .await
                .unwrap()
                .status
            }
        };
        assert_eq!(close(&reader).await, 403);
        assert_eq!(close(PUBLISH_TOKEN).await, 204);
    }
    // Health stays open.
    let health = http(&server, Protocol::Http1)
        .get("/healthz")
        .await
        .unwrap();
    assert_eq!(health.status, 200);
}

#[test]
fn a_short_signing_key_or_an_empty_publish_token_is_refused_at_start() {
    for args in [["--read-token-key", "short"], ["--publish-token", ""]] {
        let (code, stderr) = process::exit_of(&args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(stderr.contains(args[0]), "{stderr}");
    }
}
