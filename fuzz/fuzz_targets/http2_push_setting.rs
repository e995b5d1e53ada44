//! push-tower's watch over an HTTP/2 client's bytes for
//! `SETTINGS_ENABLE_PUSH` (crate-private, reached through
//! `push_tower::__fuzz`): it walks frame headers as the bytes arrive, in
//! pieces of any size. Against a reference that reads the whole buffer at
//! once (RFC 9113: the 24-byte preface, then 9-byte frame headers; the last
//! complete `ENABLE_PUSH` entry of a non-ACK `SETTINGS` frame decides, and
//! push is on until one says otherwise).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use push_fuzz::pieces;
use push_tower::__fuzz::PushSettingWatch;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Arbitrary, Debug)]
enum Frame {
    /// A SETTINGS frame of these entries (ids biased towards ENABLE_PUSH).
    Settings {
        ack: bool,
        entries: Vec<(bool, u16, u32)>,
        extra: Vec<u8>,
    },
    /// Any frame.
    Other {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    },
    /// Bytes that need not be a frame at all.
    Raw(Vec<u8>),
}

fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    let mut frame = |kind: u8, flags: u8, stream: u32, payload: &[u8]| {
        let len = payload.len().min(0xff_ffff);
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(&payload[..len]);
    };
    let mut raw = Vec::new();
    for item in frames {
        match item {
            Frame::Settings {
                ack,
                entries,
                extra,
            } => {
                let mut payload = Vec::new();
                for &(push, id, value) in entries {
                    let id: u16 = if push { 2 } else { id };
                    payload.extend_from_slice(&id.to_be_bytes());
                    payload.extend_from_slice(&value.to_be_bytes());
                }
                payload.extend_from_slice(extra);
                frame(4, u8::from(*ack), 0, &payload);
            }
            Frame::Other {
                kind,
                flags,
                stream,
                payload,
            } => frame(*kind, *flags, *stream, payload),
            Frame::Raw(bytes) => raw.push(bytes.clone()),
        }
    }
    for bytes in raw {
        out.extend_from_slice(&bytes);
    }
    out
}

fn reference(bytes: &[u8]) -> bool {
    let mut enabled = true;
    let mut at = PREFACE.len();
    while at + 9 <= bytes.len() {
        let header = &bytes[at..at + 9];
        let length =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let payload_start = at + 9;
        if header[3] == 4 && header[4] & 1 == 0 {
            let end = (payload_start + length).min(bytes.len());
            for entry in bytes[payload_start..end].chunks_exact(6).take(length / 6) {
                if u16::from_be_bytes([entry[0], entry[1]]) == 2 {
                    enabled = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]) != 0;
                }
            }
        }
        at = payload_start + length;
    }
    enabled
}

fuzz_target!(|input: (bool, Vec<Frame>, Vec<u8>, Vec<u16>)| {
    let (structured, frames, raw, cuts) = input;
    let bytes = if structured { encode(&frames) } else { raw };
    let mut watch = PushSettingWatch::new();
    for piece in pieces(&bytes, &cuts) {
        watch.observe(piece);
    }
    assert_eq!(watch.push_enabled(), reference(&bytes));
});
