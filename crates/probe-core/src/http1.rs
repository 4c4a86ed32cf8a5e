//! One HTTP/1.1 exchange on a connection that the request's own task drives.
//!
//! A general HTTP client (hyper's included) gives each connection a task of its own and
//! hands requests and responses to it through channels. For a prober that sends one
//! small request at a time on each connection, that is two extra task wake-ups and a
//! channel round trip per request, and at thousands of requests a second they were a
//! large share of rollprobe's own CPU (benches/RESULTS.md). Here the task that times a request
//! writes it, reads the answer and parses it with `httparse` (the parser hyper itself
//! uses): nothing runs between the socket and the clock.
//!
//! What it reads is what a client would: the status line and headers (skipping `1xx`
//! interim answers), then a body framed by `Transfer-Encoding: chunked`, by
//! `Content-Length`, or by the end of the connection. It keeps the connection only
//! when the answer was framed and nothing said `close`, and it does not send a request
//! on an idle connection that the server is seen to have closed (by the reactor, or by
//! one `recv` that peeks).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::classify::{classify_error, Classified};
use crate::outcome::Outcome;

/// The largest response head (status line and headers) that is read. A bigger head is
/// an `invalid_response`: no web server sends one, and the bound keeps a connection's
/// memory small whatever a broken server sends.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The most headers a response head may have (hyper's client allows as many).
const MAX_HEADERS: usize = 100;

/// How much room is made in the read buffer before each read.
const READ_ROOM: usize = 8 * 1024;

/// A connection's byte stream: plain TCP or TLS over TCP.
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open connection and the bytes read from it that no answer has used yet.
pub(crate) struct Connection {
    io: Io,
    buf: BytesMut,
}

/// How the body of an answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body: an answer to HEAD, a 204, a 304 or a 101.
    Empty,
    Length(u64),
    Chunked,
    /// The body is everything until the server closes the connection.
    UntilClose,
}

/// The head of an answer: its status, the headers the caller asked for, and how its
/// body is framed.
pub(crate) struct Head {
    pub status: u16,
    /// Only the headers named in `wanted` (see [`Connection::read_head`]).
    pub headers: hyper::HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

fn invalid(what: impl std::fmt::Display) -> Classified {
    Classified {
        outcome: Outcome::InvalidResponse,
        errno: None,
        message: format!("invalid HTTP response: {what}"),
    }
}

pub(crate) fn closed_early() -> Classified {
    Classified {
        outcome: Outcome::ConnectionClosed,
        errno: None,
        message: "connection closed before message completed".into(),
    }
}

/// Whether the comma-separated header value holds `token` (case-insensitively).
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

impl Connection {
    pub(crate) fn new(io: Io) -> Connection {
        Connection {
            io,
            buf: BytesMut::with_capacity(READ_ROOM),
        }
    }

    /// Whether an idle connection can carry another request: the server has not
    /// closed it, reset it, or sent anything unasked. Usually the reactor already
    /// knows and no system call is made; otherwise one `recv` answers without waiting.
    pub(crate) fn is_reusable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        // Out of budget, tokio answers Pending without looking: ask the kernel.
        if !tokio::task::coop::has_budget_remaining() {
            return self.peek_says_idle();
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        let mut probe = ReadBuf::new(&mut byte);
        // TLS may hold records that are not data (a session ticket): reading through
        // the TLS layer consumes those and still answers Pending.
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut probe),
            Poll::Pending
        )
    }

    /// Whether the socket has nothing to read and no error: `recv` with `MSG_PEEK`.
    /// Bytes waiting under TLS may be a session ticket, not a close; such a connection
    /// is dropped all the same, which costs a new connection, never a wrong outcome.
    fn peek_says_idle(&self) -> bool {
        use std::os::fd::AsRawFd;
        let tcp = match &self.io {
            Io::Plain(s) => s,
            Io::Tls(s) => s.get_ref().0,
        };
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into `byte` from a socket that `tcp` owns.
        let n = unsafe {
            libc::recv(
                tcp.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }

    /// Writes one whole request.
    pub(crate) async fn send(&mut self, request: &[u8]) -> Result<(), Classified> {
        let written = async {
            self.io.write_all(request).await?;
            self.io.flush().await
        };
        written
            .await
            .map_err(|e| classify_error(&e, Outcome::ConnectionClosed))
    }

    /// Reads more bytes into the buffer; `Ok(false)` at the end of the stream.
    async fn fill(&mut self) -> Result<bool, Classified> {
        self.buf.reserve(READ_ROOM);
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(classify_error(&e, Outcome::ConnectionClosed)),
        }
    }

    /// Reads the head of the answer to a request (`head_request`: its method was
    /// HEAD), skipping interim `1xx` answers. Of the headers, only those whose
    /// lower-case names are in `wanted` are kept.
    pub(crate) async fn read_head(
        &mut self,
        head_request: bool,
        wanted: &[String],
    ) -> Result<Head, Classified> {
        loop {
            if let Some(head) = parse_head(&mut self.buf, head_request, wanted)? {
                return Ok(head);
            }
            if !self.fill().await? {
                return Err(closed_early());
            }
        }
    }

    /// Reads the body that `head` announced to its end, keeping at most `limit` bytes
    /// of it in `prefix`. Returns whether the connection can carry another request.
    pub(crate) async fn read_body(
        &mut self,
        head: &Head,
        prefix: &mut Vec<u8>,
        limit: usize,
    ) -> Result<bool, Classified> {
        let mut body = BodyReader::new(head);
        loop {
            if let Some(reusable) = body.advance(&mut self.buf, prefix, limit)? {
                return Ok(reusable);
            }
            if !self.fill().await? {
                return body.at_end();
            }
        }
    }
}

/// Parses the head of an answer from the start of `buf` (see
/// [`Connection::read_head`]): `Ok(None)` while it needs more bytes. The head and any
/// interim answers before it are taken out of `buf`; the body's first bytes stay.
///
/// Both executors read answers with this and [`BodyReader`]: what a byte stream
/// means is decided in one place, whoever reads the socket.
pub(crate) fn parse_head(
    buf: &mut BytesMut,
    head_request: bool,
    wanted: &[String],
) -> Result<Option<Head>, Classified> {
    while !buf.is_empty() {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = parsed.code.unwrap_or(0);
                if status < 100 {
                    return Err(invalid(format_args!("status {status}")));
                }
                if (100..200).contains(&status) && status != 101 {
                    buf.advance(len);
                    continue;
                }
                let head = head_of(&parsed, head_request, wanted)?;
                buf.advance(len);
                return Ok(Some(head));
            }
            Ok(httparse::Status::Partial) => break,
            Err(e) => return Err(invalid(e)),
        }
    }
    if buf.len() >= MAX_HEAD_BYTES {
        return Err(invalid(format_args!(
            "the head is longer than {} KiB",
            MAX_HEAD_BYTES / 1024
        )));
    }
    Ok(None)
}

/// Where a body's reading stands between two reads from the socket.
#[derive(Debug, Clone, Copy)]
enum BodyState {
    /// This many bytes of a `Content-Length` body are still to come.
    Length(u64),
    /// A chunk-size line is next.
    ChunkSize,
    /// This many bytes of the current chunk are still to come.
    ChunkData(u64),
    /// The line end after a chunk's data is next.
    ChunkEnd,
    /// The trailer lines after the last chunk; this many bytes of them seen.
    Trailers(usize),
    /// Everything until the server closes the connection.
    UntilClose,
    /// The body has ended.
    Done,
}

/// Reads a body by its framing from bytes handed to it as they arrive: a state
/// machine, so that a reader that waits on a socket ([`Connection::read_body`]) and
/// one that is handed completed reads (the io_uring executor) frame bodies alike.
pub(crate) struct BodyReader {
    state: BodyState,
    keep_alive: bool,
}

impl BodyReader {
    /// A reader for the body that `head` announced.
    pub(crate) fn new(head: &Head) -> BodyReader {
        let state = match head.framing {
            Framing::Empty => BodyState::Done,
            Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::ChunkSize,
            Framing::UntilClose => BodyState::UntilClose,
        };
        BodyReader {
            state,
            keep_alive: head.keep_alive,
        }
    }

    /// Takes what it can of `buf`, keeping at most `limit` body bytes in `prefix`.
    /// `Ok(Some(reusable))` when the body has ended (and whether the connection can
    /// carry another request), `Ok(None)` while it needs more bytes.
    pub(crate) fn advance(
        &mut self,
        buf: &mut BytesMut,
        prefix: &mut Vec<u8>,
        limit: usize,
    ) -> Result<Option<bool>, Classified> {
        loop {
            match self.state {
                BodyState::Done => return Ok(Some(self.keep_alive && buf.is_empty())),
                BodyState::Length(left) | BodyState::ChunkData(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    consume(buf, take, prefix, limit);
                    let left = left - take as u64;
                    self.state = match (self.state, left) {
                        (BodyState::Length(_), 0) => BodyState::Done,
                        (BodyState::Length(_), _) => BodyState::Length(left),
                        (_, 0) => BodyState::ChunkEnd,
                        _ => BodyState::ChunkData(left),
                    };
                }
                BodyState::ChunkSize => {
                    // httparse reads a line without a digit as size 0, which would end
                    // a garbled body as if it were complete.
                    if buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                        return Err(invalid("a bad chunk size"));
                    }
                    match httparse::parse_chunk_size(buf) {
                        Ok(httparse::Status::Complete((len, size))) => {
                            buf.advance(len);
                            self.state = if size == 0 {
                                BodyState::Trailers(0)
                            } else {
                                BodyState::ChunkData(size)
                            };
                        }
                        Ok(httparse::Status::Partial) => {
                            if buf.len() >= MAX_HEAD_BYTES {
                                return Err(invalid("a chunk-size line without its end"));
                            }
                            return Ok(None);
                        }
                        Err(_) => return Err(invalid("a bad chunk size")),
                    }
                }
                BodyState::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(invalid("a chunk without its line end"));
                    }
                    buf.advance(2);
                    self.state = BodyState::ChunkSize;
                }
                BodyState::Trailers(seen) => match buf.iter().position(|b| *b == b'\n') {
                    Some(end) => {
                        let empty = end == 0 || (end == 1 && buf[0] == b'\r');
                        buf.advance(end + 1);
                        self.state = if empty {
                            BodyState::Done
                        } else {
                            BodyState::Trailers(seen + end + 1)
                        };
                    }
                    None => {
                        if seen + buf.len() >= MAX_HEAD_BYTES {
                            return Err(invalid("trailers longer than the head's limit"));
                        }
                        return Ok(None);
                    }
                },
                BodyState::UntilClose => {
                    let take = buf.len();
                    consume(buf, take, prefix, limit);
                    return Ok(None);
                }
            }
        }
    }

    /// The server closed the connection (after everything `advance` was handed):
    /// the end of a body framed by it, or an answer cut short.
    pub(crate) fn at_end(&self) -> Result<bool, Classified> {
        match self.state {
            BodyState::UntilClose => Ok(false),
            _ => Err(closed_early()),
        }
    }
}

/// Moves `n` buffered body bytes out, keeping what still fits under `limit`.
fn consume(buf: &mut BytesMut, n: usize, prefix: &mut Vec<u8>, limit: usize) {
    let room = limit.saturating_sub(prefix.len()).min(n);
    prefix.extend_from_slice(&buf[..room]);
    buf.advance(n);
}

/// The parts of a parsed head that the prober uses.
fn head_of(
    parsed: &httparse::Response<'_, '_>,
    head_request: bool,
    wanted: &[String],
) -> Result<Head, Classified> {
    let status = parsed.code.unwrap_or(0);
    let mut headers = hyper::HeaderMap::new();
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoded = false;
    // HTTP/1.0 closes unless asked to keep the connection; HTTP/1.1 keeps it unless
    // asked to close it.
    let mut keep_alive = parsed.version == Some(1);
    // `close` wins over any `keep-alive` beside it, in whatever order they come.
    let mut close = false;
    for header in parsed.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            // Digits only, and a repeated value (`5, 5`) must repeat the same number.
            for part in header.value.split(|b| *b == b',') {
                let digits = part.trim_ascii();
                let value = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
                    .then(|| std::str::from_utf8(digits).ok()?.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| invalid("a bad Content-Length"))?;
                if length.is_some_and(|l| l != value) {
                    return Err(invalid("two different Content-Length values"));
                }
                length = Some(value);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if parsed.version != Some(1) {
                return Err(invalid("Transfer-Encoding in an HTTP/1.0 answer"));
            }
            transfer_encoded = true;
            // Only a last coding of `chunked` frames the body; any other coding
            // leaves it to the end of the connection.
            chunked = header
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            close |= has_token(header.value, "close");
            keep_alive |= has_token(header.value, "keep-alive");
        }
        if wanted.iter().any(|w| name.eq_ignore_ascii_case(w)) {
            if let (Ok(n), Ok(v)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                hyper::header::HeaderValue::from_bytes(header.value),
            ) {
                headers.append(n, v);
            }
        }
    }
    let framing = if head_request || status == 204 || status == 304 || status == 101 {
        Framing::Empty
    } else if transfer_encoded {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    Ok(Head {
        status,
        headers,
        framing,
        keep_alive: keep_alive && !close && status != 101 && framing != Framing::UntilClose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Reads one answer, written by a loopback server in `pieces`, to its end.
    async fn read_answer(
        pieces: &[&[u8]],
        head_request: bool,
    ) -> (Result<(Head, Vec<u8>, bool), Classified>, Connection) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pieces: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for p in pieces {
                s.write_all(&p).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            // Closing ends a body framed by the connection's end.
        });
        let mut conn = Connection::new(Io::Plain(TcpStream::connect(addr).await.unwrap()));
        let result = async {
            let head = conn
                .read_head(head_request, &["x-version".to_string()])
                .await?;
            let mut body = Vec::new();
            let reusable = conn.read_body(&head, &mut body, 16).await?;
            Ok((head, body, reusable))
        };
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), result)
            .await
            .expect("every answer here ends within 5 s");
        server.await.unwrap();
        (result, conn)
    }

    #[tokio::test]
    async fn a_chunked_body_in_pieces_is_joined_and_the_connection_kept() {
        let (r, _) = read_answer(
            &[
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-Version: v2\r\nServer: s\r\n",
                b"Transfer-Encoding: chunked\r\n\r\n3\r\nab",
                b"c\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\n",
            ],
            false,
        )
        .await;
        let (head, body, reusable) = r.unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(body, b"abcde");
        assert!(reusable);
        assert_eq!(head.headers.get("x-version").unwrap(), "v2");
        assert!(head.headers.get("server").is_none(), "not asked for");
    }

    #[tokio::test]
    async fn a_long_body_keeps_only_its_prefix_and_a_close_ends_reuse() {
        let (r, _) = read_answer(
            &[
                b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n0123456789",
                &[b'x'; 30],
            ],
            false,
        )
        .await;
        let (_, body, reusable) = r.unwrap();
        assert_eq!(body, b"0123456789xxxxxx");
        assert!(!reusable);
    }

    #[tokio::test]
    async fn a_body_until_close_ends_with_the_connection() {
        let (r, _) = read_answer(&[b"HTTP/1.0 200 OK\r\n\r\nv1", b"!"], false).await;
        let (_, body, reusable) = r.unwrap();
        assert_eq!(body, b"v1!");
        assert!(!reusable);
    }

    #[tokio::test]
    async fn an_answer_to_head_has_no_body_whatever_its_length_says() {
        let (r, mut conn) =
            read_answer(&[b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"], true).await;
        let (_, body, reusable) = r.unwrap();
        assert!(body.is_empty());
        assert!(reusable);
        // The server has closed its end since: the connection must not be reused.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!conn.is_reusable());
    }

    #[tokio::test]
    async fn a_body_cut_short_is_a_closed_connection() {
        let (r, _) = read_answer(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"],
            false,
        )
        .await;
        let e = r.err().unwrap();
        assert_eq!(e.outcome, Outcome::ConnectionClosed, "{}", e.message);
    }

    #[tokio::test]
    async fn conflicting_lengths_and_bad_chunks_are_invalid() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            // A line without a size must not end the body as if it were complete.
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab",
            b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ] {
            let (r, _) = read_answer(&[answer], false).await;
            let e = r.err().unwrap();
            assert_eq!(e.outcome, Outcome::InvalidResponse, "{}", e.message);
        }
    }

    #[tokio::test]
    async fn close_wins_over_keep_alive_and_a_repeated_length_is_one_length() {
        let (r, _) = read_answer(
            &[b"HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 2, 2\r\n\r\nab"],
            false,
        )
        .await;
        let (head, body, reusable) = r.unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(body, b"ab");
        assert!(!reusable, "the server said close");
    }
}
