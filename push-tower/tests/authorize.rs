//! One authorizer decides every request that names a channel, on every
//! technique and both protocols, before any stream starts or any WebSocket
//! is upgraded: refusals are `401`/`403` JSON errors, long polls are decided
//! again on every request, and a decision made later (after awaiting
//! something) holds the request until it is made.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use conformance::{OpenError, Protocol, StartAt, Technique, Transport};
use http::Method;
use push_core::wire::WireError;
use push_core::{Hub, HubConfig};
use push_tower::authorize::{Access, Action, Authorize, Decision};
use push_tower::{Config, Push};
use support::{matrix, TestServer, PROTOCOLS, TIMEOUT};

/// The rules of the tests: `open-*` channels are read by anyone; others
/// need the token `reader` or `writer` to read and `writer` to publish,
/// describe or close. `slow-*` channels are decided after a pause. Every
/// access it saw is recorded.
#[derive(Default)]
struct Rules {
    seen: Mutex<Vec<(String, Action)>>,
    readers_revoked: AtomicBool,
}

impl Rules {
    fn verdict(&self, channel: &str, action: Action, token: Option<&str>) -> Result<(), WireError> {
        if channel.starts_with("open-") && action.is_read() && action != Action::Describe {
            return Ok(());
        }
        match token {
            None => Err(WireError::unauthorized("send the token as a bearer token")),
            Some("writer") => Ok(()),
            Some("reader") if action.is_read() && action != Action::Describe => {
                if self.readers_revoked.load(Ordering::Acquire) {
                    Err(WireError::forbidden("readers were revoked"))
                } else {
                    Ok(())
                }
            }
            Some("reader") => Err(WireError::forbidden("readers may only read")),
            Some(_) => Err(WireError::unauthorized("unknown token")),
        }
    }
}

/// The rules as the authorizer: shared, so that tests can read and steer
/// them while the server holds them.
struct Shared(Arc<Rules>);

impl Authorize for Shared {
    fn authorize(&self, access: &Access<'_>) -> Decision {
        let rules = &self.0;
        let channel = access.channel().as_str();
        rules
            .seen
            .lock()
            .unwrap()
            .push((channel.to_owned(), access.action()));
        let verdict = rules.verdict(channel, access.action(), access.bearer_token().as_deref());
        if channel.starts_with("slow-") {
            return Decision::later(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                verdict
            });
        }
        verdict.into()
    }
}

async fn start() -> (TestServer, Arc<Rules>) {
    let rules = Arc::new(Rules::default());
    let hub = Hub::new(HubConfig {
        limits: support::test_limits(),
        max_channels: 1000,
    });
    let push = Push::new(hub, Config::default()).with_authorizer(Shared(Arc::clone(&rules)));
    (TestServer::from_push(push).await, rules)
}

/// Publishes to `channel` with the writer's token; returns the id.
async fn publish_as_writer(http: &conformance::HttpClient, channel: &str) -> String {
    let answer = http
        .fetch(
            Method::POST,
            &format!("/channels/{channel}"),
            &[
                ("authorization", "Bearer writer"),
                ("content-type", "text/plain"),
            ],
            Bytes::from_static(b"hello"),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 201);
    answer.json()["id"].as_str().unwrap().to_owned()
}

/// The request target of `technique` on `channel` with `query`; a long
/// poll also asks to be answered at once.
fn target(technique: Technique, channel: &str, query: &str) -> String {
    let mut target = format!("/channels/{channel}/{}?{query}", technique.path_segment());
    if technique == Technique::LongPoll {
        target.push_str(if query.is_empty() {
            "timeout=0"
        } else {
            "&timeout=0"
        });
    }
    target
}

/// Opening `channel` with `technique`'s client, which sends no token, is
/// refused with `status` and `code`.
async fn assert_refused(
    server: &TestServer,
    technique: Technique,
    protocol: Protocol,
    channel: &str,
    status: u16,
    code: &str,
) {
    let client = server.client(technique, protocol);
    let opened = tokio::time::timeout(TIMEOUT, client.open(channel, StartAt::Now))
        .await
        .expect("open timed out");
    match opened {
        Err(OpenError::Refused {
            status: refused,
            code: refused_code,
        }) => {
            assert_eq!(refused, status, "{technique:?} {protocol:?} {channel}");
            assert_eq!(
                refused_code.as_deref(),
                Some(code),
                "{technique:?} {protocol:?}"
            );
        }
        Err(other) => panic!("{technique:?} {protocol:?} {channel}: {other}"),
        Ok(_) => panic!("{technique:?} {protocol:?} {channel} was served"),
    }
}

#[tokio::test]
async fn every_technique_is_decided_before_anything_starts() {
    let (server, rules) = start().await;
    for (technique, protocol) in matrix() {
        // Allowed: the technique works through the authorizer, which was
        // told what the request asked for.
        let client = server.client(technique, protocol);
        let mut session = support::open(&client, "open-news", StartAt::Now).await;
        let id = publish_as_writer(&server.http(protocol), "open-news").await;
        assert_eq!(support::next_event(&mut session).await.id, id);
        drop(session);
        let seen = rules.seen.lock().unwrap().clone();
        assert!(
            seen.contains(&("open-news".to_owned(), Action::Subscribe(Some(technique)))),
            "{technique:?} {protocol:?}: {seen:?}"
        );
        // No credentials: 401 before any stream or upgrade.
        assert_refused(&server, technique, protocol, "secret", 401, "unauthorized").await;
    }
    // Nothing was subscribed by the refused requests.
    let info = server
        .http(Protocol::Http1)
        .fetch(
            Method::GET,
            "/channels/secret",
            &[("authorization", "Bearer writer")],
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["subscribers"], 0);
}

#[tokio::test]
async fn a_token_opens_every_technique_from_the_header_or_the_query() {
    let (server, _rules) = start().await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        for technique in [
            Technique::Poll,
            Technique::LongPoll,
            Technique::Sse,
            Technique::Ndjson,
            Technique::Http2Push,
        ] {
            let by_query = http
                .send(
                    Method::GET,
                    &target(technique, "secret", "token=reader"),
                    &[],
                    Bytes::new(),
                )
                .await
                .unwrap();
            assert_eq!(
                by_query.status(),
                200,
                "{technique:?} {protocol:?} by query"
            );
            let by_header = http
                .send(
                    Method::GET,
                    &target(technique, "secret", ""),
                    &[("authorization", "Bearer reader")],
                    Bytes::new(),
                )
                .await
                .unwrap();
            assert_eq!(
                by_header.status(),
                200,
                "{technique:?} {protocol:?} by header"
            );
            let wrong = http
                .fetch(
                    Method::GET,
                    &target(technique, "secret", "token=guess"),
                    &[],
                    Bytes::new(),
                )
                .await
                .unwrap();
            assert_eq!(wrong.status, 401, "{technique:?} {protocol:?}");
            assert_eq!(wrong.headers["www-authenticate"], "Bearer realm=\"push\"");
            assert_eq!(wrong.error_code().as_deref(), Some("unauthorized"));
        }
    }
    // A browser's WebSocket can only carry the token in the query.
    let url = format!("ws://{}/channels/secret/ws?token=reader", server.addr);
    let (_socket, answer) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(answer.status(), 101);
    let url = format!("ws://{}/channels/secret/ws", server.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => {
            assert_eq!(answer.status(), 401);
        }
        other => panic!("a WebSocket without a token was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn publish_close_describe_and_read_are_each_decided() {
    let (server, rules) = start().await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        let as_token = |token: &'static str| [("authorization", format!("Bearer {token}"))];
        let fetch = |method: Method, path: String, token: Option<&'static str>| {
            let http = http.clone();
            async move {
                let header = token.map(as_token);
                let headers: Vec<(&str, &str)> = header
                    .iter()
                    .flatten()
                    .map(|(name, value)| (*name, value.as_str()))
                    .collect();
                http.fetch(method, &path, &headers, Bytes::from_static(b"x"))
                    .await
                    .unwrap()
            }
        };
        let publish = "/channels/guarded".to_owned();
        let refused = fetch(Method::POST, publish.clone(), None).await;
        assert_eq!(
            (refused.status.as_u16(), refused.error_code().as_deref()),
            (401, Some("unauthorized"))
        );
        let refused = fetch(Method::POST, publish.clone(), Some("reader")).await;
        assert_eq!(
            (refused.status.as_u16(), refused.error_code().as_deref()),
            (403, Some("forbidden"))
        );
        let published = fetch(Method::POST, publish.clone(), Some("writer")).await;
        assert_eq!(published.status, 201);
        let id = published.json()["id"].as_str().unwrap().to_owned();

        let message = format!("/channels/guarded/messages/{id}");
        assert_eq!(fetch(Method::GET, message.clone(), None).await.status, 401);
        assert_eq!(
            fetch(Method::GET, message.clone(), Some("reader"))
                .await
                .status,
            200
        );
        let describe = "/channels/guarded".to_owned();
        assert_eq!(
            fetch(Method::GET, describe.clone(), Some("reader"))
                .await
                .status,
            403
        );
        assert_eq!(
            fetch(Method::GET, describe.clone(), Some("writer"))
                .await
                .status,
            200
        );
        assert_eq!(
            fetch(Method::DELETE, describe.clone(), Some("reader"))
                .await
                .status,
            403
        );
        assert_eq!(
            fetch(Method::DELETE, describe.clone(), Some("writer"))
                .await
                .status,
            204
        );
    }
    let seen = rules.seen.lock().unwrap();
    for action in [
        Action::Publish,
        Action::ReadMessage,
        Action::Describe,
        Action::Close,
    ] {
        assert!(seen.iter().any(|(_, seen)| *seen == action), "{action:?}");
    }
}

#[tokio::test]
async fn a_long_poll_is_decided_again_on_every_request() {
    let (server, rules) = start().await;
    for protocol in PROTOCOLS {
        rules.readers_revoked.store(false, Ordering::Release);
        let http = server.http(protocol);
        let poll = "/channels/news/longpoll?timeout=0&token=reader";
        assert_eq!(http.get(poll).await.unwrap().status, 200);
        rules.readers_revoked.store(true, Ordering::Release);
        let refused = http.get(poll).await.unwrap();
        assert_eq!(refused.status, 403);
        assert_eq!(refused.error_code().as_deref(), Some("forbidden"));
    }
}

#[tokio::test]
async fn a_decision_made_later_holds_the_request_until_it_is_made() {
    let (server, _rules) = start().await;
    for (technique, protocol) in matrix() {
        if technique == Technique::WebSocket {
            // Its client cannot send a token; the open channel covers it.
            continue;
        }
        let http = server.http(protocol);
        let allowed = http
            .send(
                Method::GET,
                &target(technique, "slow-news", "token=reader"),
                &[],
                Bytes::new(),
            )
            .await
            .unwrap();
        assert_eq!(allowed.status(), 200, "{technique:?} {protocol:?}");
        drop(allowed);
        assert_refused(
            &server,
            technique,
            protocol,
            "slow-news",
            401,
            "unauthorized",
        )
        .await;
    }
}

#[tokio::test]
async fn the_authorizer_sees_the_clients_address_on_every_technique() {
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&peers);
    let push = Push::new(Hub::new(HubConfig::default()), Config::default()).with_authorizer(
        move |access: &Access<'_>| {
            seen.lock().unwrap().push(access.peer_addr());
            match access.peer_addr() {
                Some(peer) if peer.ip().is_loopback() => Decision::allow(),
                _ => Decision::deny(WireError::forbidden("loopback clients only")),
            }
        },
    );
    let server = TestServer::from_push(push).await;
    for (technique, protocol) in matrix() {
        let client = server.client(technique, protocol);
        let opened = tokio::time::timeout(TIMEOUT, client.open("news", StartAt::Now))
            .await
            .expect("open timed out");
        assert!(opened.is_ok(), "{technique:?} {protocol:?} was refused");
    }
    let peers = peers.lock().unwrap();
    assert!(peers.len() >= matrix().len(), "{} decisions", peers.len());
    for peer in peers.iter() {
        assert!(peer.is_some_and(|peer| peer.ip().is_loopback()), "{peer:?}");
    }
}
