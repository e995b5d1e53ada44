//! Whether an HTTP/2 client accepts server push.
//!
//! The `h2` crate keeps the client's `SETTINGS_ENABLE_PUSH` to itself, yet a
//! push stream must say in its response headers whether events will be
//! pushed or sent inline. So the connection's inbound bytes are watched on
//! their way to `h2` (by the connection's [`Rewind`](super::rewind::Rewind)):
//! the frame headers are walked (payloads are skipped, except those of
//! `SETTINGS`), which costs a few comparisons per frame.
//! `h2` applies a `SETTINGS` frame before it reads the next frame, so when a
//! request is accepted, this has seen every setting that came before it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The client connection preface's length: `PRI * HTTP/2.0…`.
const PREFACE_BYTES: usize = 24;
const FRAME_HEADER_BYTES: usize = 9;
const SETTINGS_ENTRY_BYTES: usize = 6;
const SETTINGS: u8 = 0x4;
const ACK: u8 = 0x1;
const ENABLE_PUSH: u16 = 0x2;

/// Whether the client's push setting currently allows push: shared between
/// the connection and its streams.
#[derive(Clone, Debug)]
pub(crate) struct PushEnabled(Arc<AtomicBool>);

impl PushEnabled {
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Watches the bytes an HTTP/2 client sends for `SETTINGS_ENABLE_PUSH`.
#[derive(Debug)]
pub(crate) struct PeerSettings {
    scan: Scan,
    push_enabled: Arc<AtomicBool>,
}

#[derive(Debug)]
enum Scan {
    Preface {
        remaining: usize,
    },
    Header {
        bytes: [u8; FRAME_HEADER_BYTES],
        len: usize,
    },
    Skip {
        remaining: usize,
    },
    Settings {
        remaining: usize,
        entry: [u8; SETTINGS_ENTRY_BYTES],
        len: usize,
    },
}

impl PeerSettings {
    /// Watches bytes that start with the client preface. Push is enabled
    /// until the client says otherwise (RFC 9113, 6.5.2).
    pub(crate) fn new() -> (Self, PushEnabled) {
        let push_enabled = Arc::new(AtomicBool::new(true));
        let watch = PeerSettings {
            scan: Scan::Preface {
                remaining: PREFACE_BYTES,
            },
            push_enabled: push_enabled.clone(),
        };
        (watch, PushEnabled(push_enabled))
    }

    /// Takes note of the next bytes the client sent.
    pub(crate) fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.scan {
                Scan::Preface { remaining } | Scan::Skip { remaining } => {
                    let n = (*remaining).min(bytes.len());
                    *remaining -= n;
                    bytes = &bytes[n..];
                    if *remaining == 0 {
                        self.scan = Scan::header();
                    }
                }
                Scan::Header { bytes: header, len } => {
                    let n = (FRAME_HEADER_BYTES - *len).min(bytes.len());
                    header[*len..*len + n].copy_from_slice(&bytes[..n]);
                    *len += n;
                    bytes = &bytes[n..];
                    if *len == FRAME_HEADER_BYTES {
                        let length = usize::from(header[0]) << 16
                            | usize::from(header[1]) << 8
                            | usize::from(header[2]);
                        let is_settings = header[3] == SETTINGS && header[4] & ACK == 0;
                        self.scan = match (length, is_settings) {
                            (0, _) => Scan::header(),
                            (_, true) => Scan::Settings {
                                remaining: length,
                                entry: [0; SETTINGS_ENTRY_BYTES],
                                len: 0,
                            },
                            (_, false) => Scan::Skip { remaining: length },
                        };
                    }
                }
                Scan::Settings {
                    remaining,
                    entry,
                    len,
                } => {
                    let n = (SETTINGS_ENTRY_BYTES - *len)
                        .min(*remaining)
                        .min(bytes.len());
                    entry[*len..*len + n].copy_from_slice(&bytes[..n]);
                    *len += n;
                    *remaining -= n;
                    bytes = &bytes[n..];
                    if *len == SETTINGS_ENTRY_BYTES {
                        *len = 0;
                        if u16::from_be_bytes([entry[0], entry[1]]) == ENABLE_PUSH {
                            let value =
                                u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
                            self.push_enabled.store(value != 0, Ordering::Release);
                        }
                    }
                    if *remaining == 0 {
                        self.scan = Scan::header();
                    }
                }
            }
        }
    }
}

impl Scan {
    fn header() -> Self {
        Scan::Header {
            bytes: [0; FRAME_HEADER_BYTES],
            len: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut frame = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        frame
    }

    fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
        let payload: Vec<u8> = entries
            .iter()
            .flat_map(|(id, value)| id.to_be_bytes().into_iter().chain(value.to_be_bytes()))
            .collect();
        frame(SETTINGS, 0, &payload)
    }

    /// What the watch concludes from `bytes`, fed in pieces of `step`.
    fn push_enabled_after(bytes: &[u8], step: usize) -> bool {
        let (mut watch, enabled) = PeerSettings::new();
        for piece in bytes.chunks(step) {
            watch.observe(piece);
        }
        enabled.get()
    }

    fn connection(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        for frame in frames {
            bytes.extend_from_slice(frame);
        }
        bytes
    }

    #[test]
    fn push_is_enabled_until_the_client_says_otherwise() {
        let bytes = connection(&[settings(&[(0x4, 65_535)]), frame(0x8, 0, &[0, 0, 1, 0])]);
        for step in 1..=bytes.len() {
            assert!(push_enabled_after(&bytes, step), "step {step}");
        }
    }

    #[test]
    fn enable_push_zero_is_seen_however_the_bytes_are_split() {
        let bytes = connection(&[
            frame(0x8, 0, &[0, 0, 1, 0]),
            settings(&[(0x3, 100), (ENABLE_PUSH, 0), (0x4, 1)]),
        ]);
        for step in 1..=bytes.len() {
            assert!(!push_enabled_after(&bytes, step), "step {step}");
        }
    }

    #[test]
    fn the_last_setting_wins_and_acks_and_payloads_are_not_settings() {
        let bytes = connection(&[
            settings(&[(ENABLE_PUSH, 0)]),
            // A DATA payload that looks like an ENABLE_PUSH entry.
            frame(0x0, 0, &[0, 2, 0, 0, 0, 1]),
            // An ACK carries no settings.
            frame(SETTINGS, ACK, &[]),
        ]);
        assert!(!push_enabled_after(&bytes, 1));
        let bytes = connection(&[settings(&[(ENABLE_PUSH, 0)]), settings(&[(ENABLE_PUSH, 1)])]);
        assert!(push_enabled_after(&bytes, 5));
    }
}
