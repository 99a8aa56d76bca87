//! The gRPC health check (`grpc.health.v1.Health/Check`) over cleartext HTTP/2, as the
//! kubelet's `grpc` probe makes it: one request on one stream, then the answer's status.
//!
//! Small on purpose: it sends its headers as HPACK literals (no table, no Huffman coding),
//! so it needs no HPACK decoder either: the answer it wants is in the DATA frame, and a
//! server that answers with trailers alone (an unknown service, an error) fails the check.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const PATH: &str = "/grpc.health.v1.Health/Check";

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// The largest frame accepted (HTTP/2's default maximum) and the most read in all.
const MAX_FRAME: usize = 16 * 1024;
const MAX_READ: usize = 64 * 1024;

/// `ServingStatus.SERVING`.
const SERVING: u64 = 1;

/// Asks the server at `host:port` whether `service` (empty: the server) is serving.
pub async fn check(host: &str, port: u16, service: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("failed to connect service \"{host}:{port}\": {e}"))?;
    stream
        .write_all(&request(&format!("{host}:{port}"), service))
        .await
        .map_err(|e| format!("health rpc failed: {e}"))?;
    let status = read_status(&mut stream).await?;
    match status {
        SERVING => Ok(String::new()),
        other => Err(format!(
            "service unhealthy (responded with \"{}\")",
            status_name(other)
        )),
    }
}

fn status_name(status: u64) -> &'static str {
    match status {
        0 => "UNKNOWN",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "unknown status",
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&length.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `n`-bit prefix, its first byte or'ed with `flags`.
fn hpack_int(out: &mut Vec<u8>, flags: u8, n: u32, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

fn hpack_string(out: &mut Vec<u8>, s: &str) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// A header "literal without indexing" whose name is static-table entry `index`.
fn literal_indexed_name(out: &mut Vec<u8>, index: usize, value: &str) {
    hpack_int(out, 0, 4, index);
    hpack_string(out, value);
}

/// The preface, our (empty) settings, the request's headers and its one message.
fn request(authority: &str, service: &str) -> Vec<u8> {
    let mut headers = vec![0x83, 0x86]; // :method POST, :scheme http
    literal_indexed_name(&mut headers, 4, PATH);
    literal_indexed_name(&mut headers, 1, authority);
    literal_indexed_name(&mut headers, 31, "application/grpc");
    headers.push(0x00);
    hpack_string(&mut headers, "te");
    hpack_string(&mut headers, "trailers");
    // HealthCheckRequest { service = 1 }.
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a);
        varint(&mut message, service.len() as u64);
        message.extend_from_slice(service.as_bytes());
    }
    let mut body = vec![0];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out.extend(frame(HEADERS, END_HEADERS, 1, &headers));
    out.extend(frame(DATA, END_STREAM, 1, &body));
    out
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// `HealthCheckResponse.status` (field 1) of a gRPC message body; absent is 0, `UNKNOWN`.
fn response_status(mut message: &[u8]) -> Option<u64> {
    let mut status = 0;
    while !message.is_empty() {
        let key = read_varint(&mut message)?;
        match key & 7 {
            0 => {
                let value = read_varint(&mut message)?;
                if key >> 3 == 1 {
                    status = value;
                }
            }
            2 => {
                let length = usize::try_from(read_varint(&mut message)?).ok()?;
                message = message.get(length..)?;
            }
            _ => return None,
        }
    }
    Some(status)
}

/// Reads frames until the answer's message is complete, answering the server's settings.
async fn read_status(stream: &mut TcpStream) -> Result<u64, String> {
    let failed = |what: &str| format!("health rpc failed: {what}");
    let mut data = Vec::new();
    let mut read = 0usize;
    loop {
        let (kind, flags, id, payload) = read_frame(stream, &mut read)
            .await
            .map_err(|e| failed(&e))?;
        match kind {
            SETTINGS if flags & ACK == 0 => {
                stream
                    .write_all(&frame(SETTINGS, ACK, 0, &[]))
                    .await
                    .map_err(|e| failed(&e.to_string()))?;
            }
            DATA if id == 1 => {
                data.extend_from_slice(&payload);
                if data.len() >= 5 {
                    let length = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
                    if data[0] != 0 {
                        return Err(failed("the answer is compressed"));
                    }
                    if length > MAX_READ {
                        return Err(failed("too long an answer"));
                    }
                    // `length` is bounded above, so this cannot overflow on 32-bit devices.
                    if let Some(message) = data.get(5..5 + length) {
                        return response_status(message).ok_or_else(|| failed("malformed answer"));
                    }
                }
                if flags & END_STREAM != 0 {
                    return Err(failed("the answer ended early"));
                }
            }
            HEADERS if id == 1 && flags & END_STREAM != 0 => {
                return Err(failed(
                    "the server answered with an error status (an unknown service, or no health service)",
                ));
            }
            RST_STREAM if id == 1 => return Err(failed("the server reset the stream")),
            GOAWAY => return Err(failed("the server closed the connection")),
            _ => {}
        }
    }
}

async fn read_frame(
    stream: &mut (impl AsyncRead + Unpin),
    read: &mut usize,
) -> Result<(u8, u8, u32, Vec<u8>), String> {
    let mut head = [0u8; 9];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|e| e.to_string())?;
    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    if length > MAX_FRAME {
        return Err(format!("a frame of {length} bytes"));
    }
    *read += 9 + length;
    if *read > MAX_READ {
        return Err("too long an answer".into());
    }
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0; length];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| e.to_string())?;
    Ok((head[3], head[4], id, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpack_integers_follow_rfc_7541() {
        // C.1.1–C.1.3: 10 in 5 bits, 1337 in 5 bits, 42 in 8 bits.
        let mut out = Vec::new();
        hpack_int(&mut out, 0, 5, 10);
        hpack_int(&mut out, 0, 5, 1337);
        hpack_int(&mut out, 0, 8, 42);
        assert_eq!(out, vec![0x0a, 0x1f, 0x9a, 0x0a, 0x2a]);
    }

    #[test]
    fn the_request_carries_the_service_as_a_health_check_request() {
        let bytes = request("10.0.0.1:9000", "app");
        assert!(bytes.starts_with(PREFACE));
        // The last frame is DATA on stream 1 ending the stream: 0, length 5, {1: "app"}.
        let tail = &bytes[bytes.len() - 19..];
        assert_eq!(&tail[..9], &[0, 0, 10, DATA, END_STREAM, 0, 0, 0, 1]);
        assert_eq!(&tail[9..], &[0, 0, 0, 0, 5, 0x0a, 3, b'a', b'p', b'p']);
    }

    #[test]
    fn answers_are_read_without_trusting_them() {
        assert_eq!(response_status(&[0x08, 0x01]), Some(SERVING));
        assert_eq!(response_status(&[]), Some(0));
        assert_eq!(response_status(&[0x08, 0x02]), Some(2));
        // An unknown length-delimited field is skipped; a truncated one is refused.
        assert_eq!(
            response_status(&[0x12, 0x01, 0xff, 0x08, 0x01]),
            Some(SERVING)
        );
        assert_eq!(response_status(&[0x12, 0x05, 0xff]), None);
        assert_eq!(response_status(&[0x08]), None);
        assert_eq!(response_status(&[0x0d, 0, 0, 0, 0]), None);
    }

    #[tokio::test]
    async fn oversized_frames_are_refused() {
        let mut bytes: &[u8] = &[0xff, 0xff, 0xff, DATA, 0, 0, 0, 0, 1];
        let mut read = 0;
        assert!(read_frame(&mut bytes, &mut read).await.is_err());
    }
}
