//! Just enough HTTP/1.1 for the fake server: read one request (head and `content-length`
//! body), write a response with a fixed-length or chunked body. Every response says
//! `connection: close`, so a connection carries one exchange and the server never races a
//! client reusing a pooled connection it is about to close.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 1 << 20;
const MAX_BODY: usize = 64 << 20;

/// A request as read off the socket.
#[derive(Debug)]
pub(crate) struct RawRequest {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed or the socket failed: nothing to answer.
    Closed,
    /// The request is unusable: answer with this status and message.
    Bad(u16, String),
}

impl From<std::io::Error> for ReadError {
    fn from(_: std::io::Error) -> ReadError {
        ReadError::Closed
    }
}

/// Reads one request from `stream`.
pub(crate) async fn read_request(stream: &mut TcpStream) -> Result<RawRequest, ReadError> {
    let mut buf = Vec::with_capacity(8192);
    let head_end = loop {
        if let Some(pos) = find_head_end(&buf) {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad(431, "request head too large".into()));
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut header_slots = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut header_slots);
    match parsed.parse(&buf[..head_end]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(ReadError::Bad(400, "malformed HTTP request head".into()))
        }
    }
    let method = parsed.method.unwrap_or("").to_string();
    let target = parsed.path.unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return Err(ReadError::Bad(
            411,
            "testkit needs a content-length request body, not chunked".into(),
        ));
    }
    let length = match header("content-length") {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| ReadError::Bad(400, "bad content-length".into()))?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(ReadError::Bad(413, "request body too large".into()));
    }
    let mut body = buf.split_off(head_end);
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(65536)];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(RawRequest {
        method,
        path,
        headers,
        body,
    })
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

fn head(status: u16, headers: &[(&str, String)], framing: &str) -> String {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(framing);
    head.push_str("connection: close\r\n\r\n");
    head
}

/// Writes the head of a response whose body is `content_length` bytes.
pub(crate) async fn write_head_fixed(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    content_length: usize,
) -> std::io::Result<()> {
    let head = head(
        status,
        headers,
        &format!("content-length: {content_length}\r\n"),
    );
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await
}

/// Writes a complete fixed-length response.
pub(crate) async fn write_full(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    write_head_fixed(stream, status, headers, body.len()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

/// Writes the head of a chunked response.
pub(crate) async fn write_head_chunked(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
) -> std::io::Result<()> {
    let head = head(status, headers, "transfer-encoding: chunked\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await
}

/// Writes one chunk of a chunked body and flushes it.
pub(crate) async fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    stream.write_all(&out).await?;
    stream.flush().await
}

/// Writes the terminating chunk of a chunked body.
pub(crate) async fn finish_chunked(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(b"0\r\n\r\n").await?;
    stream.flush().await
}
