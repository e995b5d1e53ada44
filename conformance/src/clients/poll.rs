//! Short and long polling: a subscription is repeated `GET …/poll` or
//! `GET …/longpoll` requests, each carrying the cursor the previous one
//! answered, so the server holds no session between them (PROTOCOL.md
//! point 10).
//!
//! The session turns each JSON answer into [`Received`] items: a position
//! before the first answer's events, a gap, the events, and closed at the
//! end. A long poll that timed out (no events, the cursor unchanged) is a
//! [`Received::Heartbeat`].

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Method, StatusCode};
use push_core::Technique;

use super::{encode, start_request, WireClient};
use crate::received::{decode_envelope, Received, ReceivedSignal, SignalKind};
use crate::transport::{OpenError, Session, SessionError, StartAt};

/// Opens a poll or long-poll subscription: its first request answers at
/// once, so that errors (a bad cursor, say) come before anything starts.
pub(super) async fn open(
    client: &WireClient,
    channel: &str,
    start: StartAt,
) -> Result<Box<dyn Session>, OpenError> {
    let mut session = PollSession {
        client: client.clone(),
        channel: channel.to_owned(),
        start: Some(start),
        cursor: None,
        queue: VecDeque::new(),
        ended: false,
    };
    session.request().await?;
    Ok(Box::new(session))
}

fn path(channel: &str, segment: &str, query: &str) -> String {
    if query.is_empty() {
        format!("/channels/{channel}/{segment}")
    } else {
        format!("/channels/{channel}/{segment}?{query}")
    }
}

/// A short- or long-poll subscription: repeated requests carrying the cursor.
struct PollSession {
    client: WireClient,
    channel: String,
    start: Option<StartAt>,
    cursor: Option<String>,
    queue: VecDeque<Received>,
    ended: bool,
}

impl PollSession {
    /// One request; queues what it answered. Returns whether it had anything.
    async fn request(&mut self) -> Result<bool, OpenError> {
        let segment = self.client.technique.path_segment();
        let (mut query, headers) = match (&self.cursor, &self.start) {
            (Some(cursor), _) => (format!("after={}", encode(cursor)), Vec::new()),
            (None, Some(start)) => start_request(start),
            (None, None) => (String::new(), Vec::new()),
        };
        let first = self.cursor.is_none();
        if self.client.technique == Technique::LongPoll {
            // The first request answers at once, so that opening reports
            // errors without holding; later ones are held.
            let hold = if first {
                0.0
            } else {
                self.client.long_poll_timeout.as_secs_f64()
            };
            let timeout = format!("timeout={hold}");
            query = if query.is_empty() {
                timeout
            } else {
                format!("{query}&{timeout}")
            };
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = self
            .client
            .http
            .fetch(
                Method::GET,
                &path(&self.channel, segment, &query),
                &headers,
                Bytes::new(),
            )
            .await
            .map_err(|e| OpenError::Failed(e.to_string()))?;
        if answer.status != StatusCode::OK {
            return Err(OpenError::Refused {
                status: answer.status.as_u16(),
                code: answer.error_code(),
            });
        }
        let value = answer.json();
        let cursor = value
            .get("cursor")
            .and_then(|c| c.as_str())
            .ok_or_else(|| OpenError::Failed(format!("poll answer without a cursor: {value}")))?
            .to_owned();
        let messages = value
            .get("messages")
            .and_then(|m| m.as_array())
            .ok_or_else(|| OpenError::Failed(format!("poll answer without messages: {value}")))?;
        let gap = value.get("gap").and_then(|g| g.as_bool()) == Some(true);
        let closed = value.get("closed").and_then(|c| c.as_bool()) == Some(true);
        if first {
            self.queue.push_back(Received::Signal(ReceivedSignal {
                kind: SignalKind::Position,
                cursor: None,
                retry_ms: None,
            }));
        }
        if gap {
            self.queue.push_back(Received::Signal(ReceivedSignal {
                kind: SignalKind::Gap,
                cursor: None,
                retry_ms: None,
            }));
        }
        let mut had = gap || closed;
        for message in messages {
            let event = decode_envelope(message).map_err(|e| OpenError::Failed(e.to_string()))?;
            self.queue.push_back(Received::Event(event));
            had = true;
        }
        if closed {
            self.queue.push_back(Received::Signal(ReceivedSignal {
                kind: SignalKind::Closed,
                cursor: Some(cursor.clone()),
                retry_ms: None,
            }));
            self.ended = true;
        }
        if !had && !first && self.client.technique == Technique::LongPoll {
            if self.cursor.as_deref().is_some_and(|c| c != cursor) {
                return Err(OpenError::Failed(format!(
                    "a long poll answered no messages but moved the cursor from {:?} to {cursor}",
                    self.cursor
                )));
            }
            self.queue.push_back(Received::Heartbeat);
        }
        self.cursor = Some(cursor);
        Ok(had || first)
    }
}

impl Session for PollSession {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<Received>, SessionError>> {
        Box::pin(async move {
            loop {
                if let Some(item) = self.queue.pop_front() {
                    return Ok(Some(item));
                }
                if self.ended {
                    return Ok(None);
                }
                let had = self.request().await.map_err(|e| match e {
                    OpenError::Refused { status, code } => SessionError::Broken(format!(
                        "a later poll was refused with {status} {}",
                        code.unwrap_or_default()
                    )),
                    OpenError::Failed(message) => SessionError::Broken(message),
                })?;
                if !had && self.client.technique == Technique::Poll {
                    tokio::time::sleep(self.client.poll_interval).await;
                }
            }
        })
    }
}
