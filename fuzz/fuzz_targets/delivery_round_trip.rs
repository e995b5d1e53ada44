//! Encoder against decoder, for every streaming technique: a stream of
//! events, signals and heartbeats framed by push-core's SSE, NDJSON,
//! WebSocket and HTTP/2 push deliveries, cut into arbitrary pieces, reads
//! back through the conformance crate's decoders as exactly the same items.
#![no_main]

use std::collections::VecDeque;
use std::time::Duration;

use conformance::clients::{Decoder, NdjsonDecoder, SseDecoder};
use conformance::received::decode_json;
use conformance::{Received, ReceivedSignal, SignalKind};
use libfuzzer_sys::fuzz_target;
use push_core::delivery::{Delivery, Ndjson, PushFrame, ServerPush, Sse, WebSocket, WsMessage};
use push_core::{Epoch, EventId, Item};
use push_fuzz::{pieces, received_event, received_signal, ItemInput};

/// What the stream carries, as the engine hands it to a delivery.
enum Step {
    Item(Item),
    /// The shutdown signal with its reconnect delay.
    Drain(EventId, Duration),
    Heartbeat,
}

fn decode_stream(mut decoder: impl Decoder, stream: &[u8], cuts: &[u16]) -> Vec<Received> {
    let mut out = VecDeque::new();
    for piece in pieces(stream, cuts) {
        decoder
            .feed(piece, &mut out)
            .expect("the decoder reads what the delivery wrote");
    }
    decoder.finish().expect("the stream ends between frames");
    out.into()
}

fn decode_text(bytes: &[u8]) -> Received {
    let text = std::str::from_utf8(bytes).expect("a text message is UTF-8");
    let value: serde_json::Value = serde_json::from_str(text).expect("a text message is JSON");
    decode_json(&value).expect("a text message is an envelope or a signal")
}

fuzz_target!(|input: (Vec<ItemInput>, Vec<u16>, Option<u16>)| {
    let (items, cuts, retry_ms) = input;
    let mut expected = Vec::new();
    let mut stream = Vec::new();
    for item in &items {
        match item {
            ItemInput::Event(event) => {
                let event = event.event();
                expected.push(Received::Event(received_event(&event)));
                stream.push(Step::Item(Item::Event(event)));
            }
            ItemInput::Signal(signal) => {
                let signal = signal.signal();
                expected.push(received_signal(&signal));
                stream.push(Step::Item(Item::Signal(signal)));
            }
            ItemInput::Heartbeat => {
                expected.push(Received::Heartbeat);
                stream.push(Step::Heartbeat);
            }
            &ItemInput::Drain(epoch, seq, retry_ms) => {
                let cursor = EventId::new(Epoch::from_u64(epoch), seq);
                expected.push(Received::Signal(ReceivedSignal {
                    kind: SignalKind::Shutdown,
                    cursor: Some(cursor.to_string()),
                    retry_ms: Some(u64::from(retry_ms)),
                }));
                stream.push(Step::Drain(
                    cursor,
                    Duration::from_millis(u64::from(retry_ms)),
                ));
            }
        }
    }

    fn frames<D: Delivery>(delivery: &D, stream: &[Step]) -> Vec<D::Frame> {
        stream
            .iter()
            .map(|step| match step {
                Step::Item(Item::Event(event)) => delivery.event(event),
                Step::Item(Item::Signal(signal)) => delivery.signal(signal),
                Step::Drain(cursor, retry) => delivery.shutdown(*cursor, *retry),
                Step::Heartbeat => delivery
                    .heartbeat()
                    .expect("every delivery has a heartbeat"),
            })
            .collect()
    }

    let sse = match retry_ms {
        Some(ms) => Sse::new().retry(Duration::from_millis(u64::from(ms))),
        None => Sse::new(),
    };
    let bytes: Vec<u8> = frames(&sse, &stream).concat();
    assert_eq!(
        decode_stream(SseDecoder::default(), &bytes, &cuts),
        expected,
        "SSE"
    );

    let bytes: Vec<u8> = frames(&Ndjson, &stream).concat();
    assert_eq!(
        decode_stream(NdjsonDecoder::default(), &bytes, &cuts),
        expected,
        "NDJSON"
    );

    let messages: Vec<Received> = frames(&WebSocket, &stream)
        .iter()
        .map(|message| match message {
            WsMessage::Text(bytes) => decode_text(bytes),
            WsMessage::Ping => Received::Heartbeat,
        })
        .collect();
    assert_eq!(messages, expected, "WebSocket");

    // HTTP/2 push: events as pushed bodies, the rest on the parent stream.
    let mut parent = Vec::new();
    let mut pushed = Vec::new();
    for (frame, item) in frames(&ServerPush, &stream).into_iter().zip(&stream) {
        match frame {
            PushFrame::Parent(bytes) => parent.extend_from_slice(&bytes),
            PushFrame::Promise(promised) => {
                let Step::Item(Item::Event(event)) = item else {
                    panic!("a promise for a non-event")
                };
                assert_eq!(promised.id(), event.id());
                assert_eq!(promised.line(), event.envelope_line());
                assert_eq!(
                    promised.body(),
                    promised.line()[..promised.line().len() - 1]
                );
                pushed.push(decode_text(&promised.body()));
            }
        }
    }
    let (events, others): (Vec<Received>, Vec<Received>) = expected
        .into_iter()
        .partition(|item| matches!(item, Received::Event(_)));
    assert_eq!(pushed, events, "HTTP/2 push bodies");
    assert_eq!(
        decode_stream(NdjsonDecoder::default(), &parent, &cuts),
        others,
        "HTTP/2 push parent"
    );
});
