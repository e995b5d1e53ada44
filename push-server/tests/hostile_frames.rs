//! Hostile frames against the real binary, written as the bytes a client
//! can send: WebSocket frames after a real handshake, each answered with
//! the close code PROTOCOL.md documents (`1002`, `1007`, `1008`, `1009`) or
//! the answer it documents (a pong, an echoed close); and HTTP/2 frames
//! after the h2c preface, each answered with GOAWAY and its error code, or
//! ignored as RFC 9113 asks. The server keeps serving after every one; the
//! HTTP/1.1 requests of the table are in `hostile.rs`.

mod process;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(10);
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// What the server must do after a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Close the socket with this code.
    Close(u16),
    /// Answer a ping with a pong carrying the same payload, and go on.
    Pong,
}

/// A frame as bytes: `first` is FIN, RSV and opcode; the payload is masked
/// with [`MASK`] when `masked`.
fn frame(first: u8, masked: bool, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => bytes.push(mask_bit | len as u8),
        len @ 126..=65535 => {
            bytes.push(mask_bit | 126);
            bytes.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            bytes.push(mask_bit | 127);
            bytes.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if masked {
        bytes.extend_from_slice(&MASK);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        bytes.extend_from_slice(payload);
    }
    bytes
}

fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    frame(first, true, payload)
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    const FIN: u8 = 0x80;
    const TEXT: u8 = 0x1;
    const BINARY: u8 = 0x2;
    const CLOSE: u8 = 0x8;
    const PING: u8 = 0x9;
    // A header announcing 2^40 bytes, and nothing after it.
    let mut huge = vec![FIN | BINARY, 0x80 | 127];
    huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
    huge.extend_from_slice(&MASK);
    vec![
        (
            "an unmasked frame",
            frame(FIN | TEXT, false, b"hi"),
            Expect::Close(1002),
        ),
        (
            "a text message",
            masked(FIN | TEXT, b"hello"),
            Expect::Close(1008),
        ),
        (
            "a binary message",
            masked(FIN | BINARY, &[0, 1, 2]),
            Expect::Close(1008),
        ),
        (
            "an empty text message",
            masked(FIN | TEXT, b""),
            Expect::Close(1008),
        ),
        (
            "a text message that is not UTF-8",
            masked(FIN | TEXT, &[0x68, 0xff, 0xfe]),
            Expect::Close(1007),
        ),
        (
            "a message over 4 KiB",
            masked(FIN | TEXT, &[b'x'; 5000]),
            Expect::Close(1009),
        ),
        ("a header announcing 2^40 bytes", huge, Expect::Close(1009)),
        (
            "the first fragment of a message over 4 KiB in all",
            [masked(TEXT, &[b'x'; 4000]), masked(FIN, &[b'x'; 1000])].concat(),
            Expect::Close(1009),
        ),
        (
            "reserved opcode 0x3",
            masked(FIN | 0x3, b"x"),
            Expect::Close(1002),
        ),
        (
            "reserved control opcode 0xB",
            masked(FIN | 0xb, b""),
            Expect::Close(1002),
        ),
        (
            "RSV1 set without an extension",
            masked(FIN | 0x40 | TEXT, b"x"),
            Expect::Close(1002),
        ),
        (
            "RSV3 set",
            masked(FIN | 0x10 | BINARY, b"x"),
            Expect::Close(1002),
        ),
        ("a fragmented ping", masked(PING, b"x"), Expect::Close(1002)),
        (
            "a ping of 126 bytes",
            masked(FIN | PING, &[b'p'; 126]),
            Expect::Close(1002),
        ),
        (
            "a continuation with nothing to continue",
            masked(FIN, b"x"),
            Expect::Close(1002),
        ),
        (
            "a new message inside a fragmented one",
            [masked(TEXT, b"a"), masked(FIN | TEXT, b"b")].concat(),
            Expect::Close(1002),
        ),
        (
            "a close frame with a 1-byte payload",
            masked(FIN | CLOSE, &[3]),
            Expect::Close(1002),
        ),
        (
            "a close frame with code 999",
            masked(FIN | CLOSE, &close_payload(999, b"")),
            Expect::Close(1002),
        ),
        (
            "a close frame with code 1005, which must not be sent",
            masked(FIN | CLOSE, &close_payload(1005, b"")),
            Expect::Close(1002),
        ),
        (
            "a close frame whose reason is not UTF-8",
            masked(FIN | CLOSE, &close_payload(1000, &[0xff])),
            Expect::Close(1007),
        ),
        (
            "a normal close, echoed",
            masked(FIN | CLOSE, &close_payload(1000, b"bye")),
            Expect::Close(1000),
        ),
        (
            "a going-away close, echoed",
            masked(FIN | CLOSE, &close_payload(1001, b"")),
            Expect::Close(1001),
        ),
        ("a ping", masked(FIN | PING, b"are you there"), Expect::Pong),
        ("an empty ping", masked(FIN | PING, b""), Expect::Pong),
    ]
}

/// Opens a WebSocket on `channel` by hand; returns the stream once the
/// `101` head is read.
async fn handshake(addr: SocketAddr, channel: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /channels/{channel}/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "closed in the handshake"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    stream
}

/// One frame from the server: opcode and payload (servers do not mask).
async fn read_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).await.ok()?;
    assert_eq!(header[1] & 0x80, 0, "a server frame is not masked");
    let len = match header[1] & 0x7f {
        126 => u64::from(stream.read_u16().await.ok()?),
        127 => stream.read_u64().await.ok()?,
        len => u64::from(len),
    };
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).await.ok()?;
    Some((header[0] & 0x0f, payload))
}

/// Reads frames until the one `expect` asks for; describes what came.
async fn outcome(stream: &mut TcpStream, expect: Expect, ping: &[u8]) -> Result<(), String> {
    loop {
        match read_frame(stream).await {
            // Signals and events are text; heartbeats are pings.
            Some((0x1 | 0x9, _)) => continue,
            Some((0xa, payload)) if expect == Expect::Pong => {
                return if payload == ping {
                    Ok(())
                } else {
                    Err(format!("a pong with {payload:?}"))
                }
            }
            Some((0x8, payload)) => {
                let code = payload
                    .get(..2)
                    .map(|code| u16::from_be_bytes([code[0], code[1]]));
                return match (expect, code) {
                    (Expect::Close(want), Some(code)) if code == want => Ok(()),
                    _ => Err(format!("close {code:?} ({payload:?})")),
                };
            }
            Some((opcode, payload)) => return Err(format!("opcode {opcode:#x}: {payload:?}")),
            None => return Err("the connection closed without a close frame".to_owned()),
        }
    }
}

async fn publish(addr: SocketAddr, channel: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /channels/{channel} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\n\
         Content-Length: 4\r\nConnection: close\r\n\r\nnews"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201 "), "{answer}");
    answer
}

#[tokio::test]
async fn every_hostile_websocket_frame_gets_its_close_code_and_the_server_keeps_serving() {
    let mut server = process::Running::start(&[]);
    let addr = server.addr();
    let cases = cases();
    let mut wrong = Vec::new();
    for (n, (name, bytes, expect)) in cases.iter().enumerate() {
        let channel = format!("frames-{n}");
        let mut stream = handshake(addr, &channel).await;
        stream.write_all(bytes).await.unwrap();
        let ping = match *expect {
            Expect::Pong => &bytes[6..],
            Expect::Close(_) => &[][..],
        };
        let ping: Vec<u8> = ping
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i % 4])
            .collect();
        match tokio::time::timeout(DEADLINE, outcome(&mut stream, *expect, &ping)).await {
            Ok(Ok(())) => {}
            Ok(Err(got)) => wrong.push(format!("{name}: expected {expect:?}, got {got}")),
            Err(_) => wrong.push(format!("{name}: nothing within {DEADLINE:?}")),
        }
        if *expect == Expect::Pong {
            // The socket still delivers.
            publish(addr, &channel).await;
            let delivered = tokio::time::timeout(DEADLINE, async {
                loop {
                    match read_frame(&mut stream).await {
                        Some((0x1, text)) if text.windows(6).any(|w| w == b"\"news\"") => {
                            break true
                        }
                        Some(_) => continue,
                        None => break false,
                    }
                }
            })
            .await;
            if delivered != Ok(true) {
                wrong.push(format!("{name}: no event after the pong"));
            }
        }
        server.assert_alive();
    }
    // Serving still: a publish is answered.
    publish(addr, "after-the-frames").await;
    println!(
        "{} hostile WebSocket frames, each answered as documented",
        cases.len()
    );
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// An HTTP/2 frame: length, type, flags, stream id, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut bytes = len.to_be_bytes()[1..].to_vec();
    bytes.extend_from_slice(&[kind, flags]);
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// What the server must do after raw HTTP/2 frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum H2Expect {
    /// End the connection with GOAWAY and this error code (RFC 9113 §7).
    GoAway(u32),
    /// Acknowledge the PING that follows the case, and go on.
    PingAck,
}

fn h2_cases() -> Vec<(&'static str, Vec<u8>, H2Expect)> {
    const DATA: u8 = 0x0;
    const HEADERS: u8 = 0x1;
    const SETTINGS: u8 = 0x4;
    const PUSH_PROMISE: u8 = 0x5;
    const PING: u8 = 0x6;
    const WINDOW_UPDATE: u8 = 0x8;
    const CONTINUATION: u8 = 0x9;
    const END_HEADERS: u8 = 0x4;
    const PROTOCOL_ERROR: u32 = 0x1;
    const FLOW_CONTROL_ERROR: u32 = 0x3;
    const FRAME_SIZE_ERROR: u32 = 0x6;
    // The h2 crate (0.4) ends the connection with PROTOCOL_ERROR for frames
    // its decoder refuses, where RFC 9113 names FRAME_SIZE_ERROR (a SETTINGS
    // or PING of the wrong length), COMPRESSION_ERROR (an HPACK block it
    // cannot decode) or FLOW_CONTROL_ERROR (an initial window past 2^31 - 1).
    // Either way the connection ends at once and nothing else is affected;
    // this is what a client of push-server gets.
    const H2_DECODE_ERROR: u32 = PROTOCOL_ERROR;
    let setting = |id: u16, value: u32| {
        let mut payload = id.to_be_bytes().to_vec();
        payload.extend_from_slice(&value.to_be_bytes());
        h2_frame(SETTINGS, 0, 0, &payload)
    };
    vec![
        (
            "DATA on stream 0",
            h2_frame(DATA, 0, 0, b"x"),
            H2Expect::GoAway(PROTOCOL_ERROR),
        ),
        (
            "HEADERS on stream 0",
            h2_frame(HEADERS, END_HEADERS, 0, &[0x82]),
            H2Expect::GoAway(PROTOCOL_ERROR),
        ),
        (
            "HEADERS on an even stream",
            h2_frame(HEADERS, END_HEADERS, 2, &[0x82]),
            H2Expect::GoAway(PROTOCOL_ERROR),
        ),
        (
            "a HEADERS block HPACK cannot decode",
            h2_frame(HEADERS, END_HEADERS, 1, &[0xff; 8]),
            H2Expect::GoAway(H2_DECODE_ERROR),
        ),
        (
            "SETTINGS of 5 bytes",
            h2_frame(SETTINGS, 0, 0, &[0; 5]),
            H2Expect::GoAway(H2_DECODE_ERROR),
        ),
        (
            "SETTINGS on stream 1",
            h2_frame(SETTINGS, 0, 1, &[]),
            H2Expect::GoAway(PROTOCOL_ERROR),
        ),
        (
            "SETTINGS_ENABLE_PUSH = 2",
            setting(0x2, 2),
            H2Expect::GoAway(PROTOCOL_ERROR),
        ),
        (
            "SETTINGS_INITIAL_WINDOW_SIZE = 2^31",
            setting(0x4, 1 << 31),
            H2Expect::GoAway(H2_DECODE_ERROR),
        ),
        (
            "SETTINGS_MAX_FRAME_SIZE = 100",
            setting(0x5, 100),
            H2Expect::GoAway(PROTOCOL_ERROR),
        ),
        (
            "a WINDOW_UPDATE of 0 on the connection",
            h2_frame(WINDOW_UPDATE, 0, 0, &[0; 4]),
            H2Expect::GoAway(PROTOCOL_ERROR),
        ),
        (
            "a WINDOW_UPDATE past 2^31 - 1",
            h2_frame(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()),
            H2Expect::GoAway(FLOW_CONTROL_ERROR),
        ),
        (
            "a PING of 7 bytes",
            h2_frame(PING, 0, 0, &[0; 7]),
            H2Expect::GoAway(H2_DECODE_ERROR),
        ),
        (
            "a PING on stream 1",
            h2_frame(PING, 0, 1, &[0; 8]),
            H2Expect::GoAway(PROTOCOL_ERROR),
        ),
        (
            "a frame over the 16 KiB frame size",
            h2_frame(DATA, 0, 1, &vec![0; 20_000]),
            H2Expect::GoAway(FRAME_SIZE_ERROR),
        ),
        (
            "a PUSH_PROMISE from the client",
            h2_frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2, 0x82]),
            H2Expect::GoAway(PROTOCOL_ERROR),
        ),
        (
            "a CONTINUATION with no HEADERS",
            h2_frame(CONTINUATION, END_HEADERS, 1, &[0x82]),
            H2Expect::GoAway(PROTOCOL_ERROR),
        ),
        (
            "a frame of an unknown type, ignored",
            h2_frame(0xfa, 0, 0, b"whatever"),
            H2Expect::PingAck,
        ),
        ("a PING, acknowledged", Vec::new(), H2Expect::PingAck),
    ]
}

/// Reads frames until GOAWAY, or the PING ACK of `ping`; describes what came.
async fn h2_outcome(
    stream: &mut TcpStream,
    expect: H2Expect,
    ping: &[u8; 8],
) -> Result<(), String> {
    loop {
        let mut header = [0u8; 9];
        if stream.read_exact(&mut header).await.is_err() {
            return Err("the connection closed without GOAWAY".to_owned());
        }
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        stream
            .read_exact(&mut payload)
            .await
            .map_err(|e| e.to_string())?;
        match (header[3], expect) {
            (0x7, H2Expect::GoAway(want)) => {
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                return if code == want {
                    Ok(())
                } else {
                    Err(format!("GOAWAY {code:#x}"))
                };
            }
            (0x7, H2Expect::PingAck) => {
                return Err(format!(
                    "GOAWAY {:#x}",
                    u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]])
                ))
            }
            (0x6, H2Expect::PingAck) if header[4] & 0x1 == 1 && payload == ping => return Ok(()),
            (0x3, _) => return Err(format!("RST_STREAM {:?}", payload)),
            // SETTINGS, its ACK, WINDOW_UPDATE: the connection's own business.
            _ => continue,
        }
    }
}

#[tokio::test]
async fn every_hostile_http2_frame_gets_its_goaway_code_and_the_server_keeps_serving() {
    let mut server = process::Running::start(&[]);
    let addr = server.addr();
    let cases = h2_cases();
    let ping = *b"hostile!";
    let mut wrong = Vec::new();
    for (name, bytes, expect) in &cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut sent = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        sent.extend(h2_frame(0x4, 0, 0, &[]));
        sent.extend_from_slice(bytes);
        if *expect == H2Expect::PingAck {
            sent.extend(h2_frame(0x6, 0, 0, &ping));
        }
        stream.write_all(&sent).await.unwrap();
        match tokio::time::timeout(DEADLINE, h2_outcome(&mut stream, *expect, &ping)).await {
            Ok(Ok(())) => {}
            Ok(Err(got)) => wrong.push(format!("{name}: expected {expect:?}, got {got}")),
            Err(_) => wrong.push(format!("{name}: nothing within {DEADLINE:?}")),
        }
        server.assert_alive();
    }
    publish(addr, "after-the-h2-frames").await;
    println!(
        "{} hostile HTTP/2 frames, each answered as RFC 9113 asks",
        cases.len()
    );
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
