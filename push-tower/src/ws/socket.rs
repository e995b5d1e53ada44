//! Driving one upgraded socket: the engine's messages out, the client's
//! frames in, both from one task without splitting the stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use push_core::delivery::{WebSocket, WsMessage};
use push_core::engine::{End, Frames};
use push_core::Subscription;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::error::{Error, ProtocolError};

use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame, Utf8Bytes};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::close_code;
use super::io::SocketIo;
use crate::lag_watch::LagWatch;

/// Read at most this much per read; inbound frames are small (pings, pongs,
/// close), and an idle socket holds only this buffer.
const READ_BUFFER_BYTES: usize = 512;

/// Messages ready together are gathered into writes of about this size.
/// tungstenite keeps its write buffer's capacity, so this also caps what an
/// idle socket holds after bursts of small events.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// The most messages written in one poll before yielding to other tasks.
const MAX_MESSAGES_PER_POLL: usize = 64;

/// What a socket is told by the server that opened it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    /// How long a client gets to take the lagged signal or answer a close.
    pub(super) lag_grace: Duration,
    /// The largest event the channel source accepts, which bounds the
    /// largest message and so the write buffer.
    pub(super) max_event_bytes: usize,
    /// The largest message or frame the client may send.
    pub(super) max_inbound_bytes: usize,
}

/// Runs the socket until it ends.
pub(super) async fn run<S: Subscription>(
    io: SocketIo,
    frames: Frames<S, WebSocket>,
    settings: Settings,
) {
    let stream = WebSocketStream::from_raw_socket(io, Role::Server, Some(config(settings))).await;
    Socket::new(stream, frames, settings.lag_grace).await;
}

fn config(settings: Settings) -> WebSocketConfig {
    // The largest envelope: JSON escapes a byte in at most 6 (`\u0000`).
    let largest_message = settings.max_event_bytes.saturating_mul(6) + 1024;
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BUFFER_BYTES.saturating_add(largest_message))
        .max_message_size(Some(settings.max_inbound_bytes))
        .max_frame_size(Some(settings.max_inbound_bytes))
}

/// Where the socket is in its closing.
#[derive(Debug)]
enum Closing {
    /// Delivering.
    Open,
    /// This close frame is to be sent.
    Send(CloseFrame, AfterClose),
    /// The close frame is queued.
    Sent(AfterClose),
    /// The client closed first; its close is being answered.
    ByClient,
}

/// The connection broke: nothing more can be sent or received.
#[derive(Debug)]
struct Broken;

/// What follows our close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterClose {
    /// The closing handshake: wait for the client's close frame.
    AwaitReply,
    /// The client broke the protocol: drop the connection once flushed.
    Drop,
}

struct Socket<S> {
    stream: WebSocketStream<SocketIo>,
    frames: Frames<S, WebSocket>,
    lag: Arc<LagWatch>,
    lag_grace: Duration,
    closing: Closing,
    /// Still reading the client's frames (not after it broke the protocol).
    reading: bool,
    /// Messages were written since the last flush.
    unflushed: bool,
    /// When the oldest ping still unanswered went out, with nothing but
    /// pings sent since.
    unanswered_ping: Option<Instant>,
    /// When a client that must take something soon gets dropped; a timer
    /// exists only then, never for a socket that is merely idle.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S: Subscription> Socket<S> {
    fn new(
        stream: WebSocketStream<SocketIo>,
        mut frames: Frames<S, WebSocket>,
        lag_grace: Duration,
    ) -> Self {
        let lag = Arc::new(LagWatch::default());
        frames.on_lag(Waker::from(Arc::clone(&lag)));
        Socket {
            stream,
            frames,
            lag,
            lag_grace,
            closing: Closing::Open,
            reading: true,
            unflushed: false,
            unanswered_ping: None,
            deadline: None,
        }
    }

    /// Reads what the client sent; `Ready` once the socket is done.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.reading {
            // Read nothing more from a client that does not take what we
            // write (pongs included): its frames wait in the kernel, not
            // in our buffers.
            match self.poll_flushed(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(Broken)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
            let message = match Pin::new(&mut self.stream).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Ready(Some(Ok(message))) => message,
                Poll::Ready(Some(Err(error))) => {
                    let code = match error {
                        Error::Capacity(_) => close_code::TOO_BIG,
                        Error::Utf8(_) => close_code::BAD_UTF8,
                        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                            return Poll::Ready(())
                        }
                        Error::Protocol(_) => close_code::PROTOCOL_ERROR,
                        // The connection broke or is closed.
                        _ => return Poll::Ready(()),
                    };
                    // Whatever follows in the stream cannot be trusted.
                    self.reading = false;
                    self.close(code, refusal_reason(code), AfterClose::Drop);
                    return Poll::Pending;
                }
            };
            match message {
                Message::Pong(_) => self.unanswered_ping = None,
                // tungstenite queued the answer; it goes out with the next
                // read or flush.
                Message::Ping(_) => self.unflushed = true,
                Message::Close(_) => {
                    self.unflushed = true;
                    if matches!(self.closing, Closing::Open | Closing::Send(..)) {
                        self.closing = Closing::ByClient;
                    }
                }
                Message::Text(_) | Message::Binary(_) => {
                    let code = close_code::DATA_FROM_CLIENT;
                    self.close(code, refusal_reason(code), AfterClose::AwaitReply);
                }
                Message::Frame(_) => {}
            }
        }
        Poll::Pending
    }

    /// Writes what the engine has and the closing; `Ready` once the socket
    /// is done.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut written = 0;
        while matches!(self.closing, Closing::Open) {
            if written == MAX_MESSAGES_PER_POLL {
                // Let other sockets run; come back at once.
                cx.waker().wake_by_ref();
                break;
            }
            match Pin::new(&mut self.stream).poll_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {}
            }
            let message = match self.frames.poll_frame(cx) {
                Poll::Pending => break,
                Poll::Ready(None) => {
                    let (code, reason) = end_close(self.frames.end());
                    self.close(code, reason, AfterClose::AwaitReply);
                    break;
                }
                Poll::Ready(Some(WsMessage::Text(text))) => {
                    // A client sent events since the ping may be slow to read
                    // them; a slow reader is the lag rule's, and only a ping
                    // unanswered while idle says the peer is gone.
                    self.unanswered_ping = None;
                    // Envelopes and signals are JSON, so UTF-8 already; sent
                    // as a raw frame, the shared bytes are not checked again.
                    Message::Frame(Frame::message(text, OpCode::Data(Data::Text), true))
                }
                Poll::Ready(Some(WsMessage::Ping)) => {
                    match self.unanswered_ping {
                        // Unanswered for a heartbeat and the grace: gone. The
                        // grace keeps a short heartbeat from mistaking a busy
                        // client for a dead one.
                        Some(since) if since.elapsed() >= self.lag_grace => return Poll::Ready(()),
                        Some(_) => {}
                        None => self.unanswered_ping = Some(Instant::now()),
                    }
                    Message::Ping(Bytes::new())
                }
            };
            if Pin::new(&mut self.stream).start_send(message).is_err() {
                return Poll::Ready(());
            }
            self.unflushed = true;
            written += 1;
        }
        if let Closing::Send(..) = self.closing {
            match Pin::new(&mut self.stream).poll_ready(cx) {
                Poll::Pending => {}
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {
                    let Closing::Send(frame, after) =
                        std::mem::replace(&mut self.closing, Closing::Open)
                    else {
                        unreachable!("matched above")
                    };
                    self.closing = Closing::Sent(after);
                    if Pin::new(&mut self.stream)
                        .start_send(Message::Close(Some(frame)))
                        .is_err()
                    {
                        return Poll::Ready(());
                    }
                    self.unflushed = true;
                }
            }
        }
        match self.poll_flushed(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(Broken)) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
        match self.closing {
            // The client broke the protocol; our close frame is out.
            Closing::Sent(AfterClose::Drop) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }

    /// Flushes what was written since the last flush.
    fn poll_flushed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Broken>> {
        if self.unflushed {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(Broken)),
                Poll::Ready(Ok(())) => self.unflushed = false,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Queues a close frame, unless the socket is already closing; the
    /// client then has the grace to take it and answer.
    fn close(&mut self, code: u16, reason: &'static str, after: AfterClose) {
        if let Closing::Open = self.closing {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: Utf8Bytes::from_static(reason),
            };
            self.closing = Closing::Send(frame, after);
            self.deadline = Some(Box::pin(tokio::time::sleep(self.lag_grace)));
        }
    }
}

impl<S: Subscription> Future for Socket<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.lag.task.register(cx.waker());
        if this.poll_read(cx).is_ready() || this.poll_write(cx).is_ready() {
            return Poll::Ready(());
        }
        // Lagged while the client takes nothing: it gets the grace to take
        // the lagged signal, then it is dropped.
        if this.deadline.is_none() && this.lag.is_lagged() {
            this.deadline = Some(Box::pin(tokio::time::sleep(this.lag_grace)));
        }
        match &mut this.deadline {
            Some(deadline) => deadline.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

// Every field is `Unpin`; the deadline is boxed.
impl<S> Unpin for Socket<S> {}

/// The close that follows the end of the engine's messages.
fn end_close(end: Option<End>) -> (u16, &'static str) {
    match end {
        Some(End::Closed) => (close_code::CLOSED, "the channel was closed"),
        Some(End::Shutdown) => (
            close_code::SHUTDOWN,
            "the server is shutting down; reconnect later with the cursor",
        ),
        Some(End::Lagged) => (
            close_code::LAGGED,
            "lagged; reconnect now with the cursor of the lagged message",
        ),
        _ => (
            close_code::SOURCE_ENDED,
            "the channel store ended the subscription; reconnect with the last id",
        ),
    }
}

/// Why the client's input was refused.
fn refusal_reason(code: u16) -> &'static str {
    match code {
        close_code::TOO_BIG => "message too big: this socket takes no data",
        close_code::BAD_UTF8 => "a text message that is not UTF-8",
        close_code::DATA_FROM_CLIENT => {
            "this socket only delivers; publish with POST /channels/{name}"
        }
        _ => "WebSocket protocol error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_control_frame() {
        let ends = [
            Some(End::Closed),
            Some(End::Shutdown),
            Some(End::Lagged),
            Some(End::Finished),
            None,
        ];
        for (code, reason) in ends.map(end_close) {
            assert!(reason.len() <= 123, "{code}: {reason}");
        }
        for code in [
            close_code::TOO_BIG,
            close_code::BAD_UTF8,
            close_code::DATA_FROM_CLIENT,
            close_code::PROTOCOL_ERROR,
        ] {
            assert!(refusal_reason(code).len() <= 123);
        }
    }

    #[test]
    fn the_write_buffer_is_bounded_above_the_largest_message() {
        let config = config(Settings {
            lag_grace: Duration::from_secs(1),
            max_event_bytes: 1 << 20,
            max_inbound_bytes: 4096,
        });
        assert!(config.max_write_buffer_size > config.write_buffer_size + 6 * (1 << 20));
        assert!(config.max_write_buffer_size < 8 << 20);
        assert_eq!(config.read_buffer_size, READ_BUFFER_BYTES);
    }
}
