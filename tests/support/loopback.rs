//! Real local servers with one misbehaviour each, for the suites that probe them: the
//! library's (tests/) and the binary's (crates/probe-cli/tests/e2e/, which includes this
//! file by path). Every server listens on 127.0.0.1 only and stops when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// What the server does with each connection.
#[derive(Clone)]
pub enum Behaviour {
    /// Read the request, then abort the connection (SO_LINGER 0: RST).
    Reset,
    /// Read the request, then close without answering (FIN).
    CloseAfterRead,
    /// Read the request and never answer (until the server is dropped).
    NeverAnswer,
    /// Write these bytes as soon as the connection is accepted, then close
    /// (a plain-HTTP server answering a TLS ClientHello does much the same).
    SendOnAccept(&'static [u8]),
    /// Answer every request with this status, extra headers and body.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Read whatever the client sends first (an HTTP request, or a TLS ClientHello),
    /// answer these bytes, send FIN and wait for the client to close: what a server
    /// speaking another protocol does.
    ReadThenSend(&'static [u8]),
    /// Read the request, then answer a status line and one header of this many bytes.
    HugeHeader(usize),
    /// Read the request, then answer 200 with a body that never ends (chunked or
    /// until close), under 1 MB/s so that the machine is not flooded.
    EndlessBody { chunked: bool },
    /// Read the request, then answer this many `100 Continue` interim responses and,
    /// if `then_ok`, a final `200` with the body `v1` (else nothing more).
    Continues { count: usize, then_ok: bool },
    /// Read the request, then send a status line and one header per second, forever.
    DribbleHeaders,
    /// Accept the connection and never read from it.
    NeverRead,
    /// Read the request, send a response head and part of a body, then abort (RST).
    ResetAfterHeaders,
    /// Read the request, then shut down the sending side (FIN) and answer nothing.
    HalfClose,
    /// Answer a connection's first request (`200`, body `v1`, kept alive), then read
    /// the next one and never answer it.
    AnswerOnceThenHang,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}/test/version", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a request's head (up to its blank line); false if the client went first.
pub fn read_request(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return true;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sleeps for `d` in small steps, returning early (false) once the server is stopping.
fn nap(d: Duration, stop: &AtomicBool) -> bool {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = left.min(step);
        thread::sleep(now);
        left -= now;
    }
    !stop.load(Ordering::SeqCst)
}

/// Writes `chunk` again and again (with `pause` between) until the client goes, the
/// server stops or `max_writes` is reached: every hostile loop is bounded.
fn write_repeatedly(
    stream: &mut TcpStream,
    chunk: &[u8],
    pause: Duration,
    max_writes: usize,
    stop: &AtomicBool,
) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    for _ in 0..max_writes {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match stream.write_all(chunk) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
        if !pause.is_zero() && !nap(pause, stop) {
            return;
        }
    }
}

/// Waits (bounded) for the client to close its side.
fn wait_for_close(stream: &mut TcpStream, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut chunk = [0u8; 2048];
    for _ in 0..200 {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn handle(mut stream: TcpStream, behaviour: Behaviour, stop: Arc<AtomicBool>) {
    match behaviour {
        Behaviour::ReadThenSend(bytes) => {
            let mut chunk = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            if matches!(stream.read(&mut chunk), Ok(n) if n > 0) {
                let _ = stream.write_all(bytes);
                let _ = stream.shutdown(std::net::Shutdown::Write);
                wait_for_close(&mut stream, &stop);
            }
        }
        Behaviour::HugeHeader(size) => {
            if read_request(&mut stream) {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nX-Huge: ");
                let chunk = [b'a'; 64 * 1024];
                write_repeatedly(
                    &mut stream,
                    &chunk,
                    Duration::ZERO,
                    size / chunk.len(),
                    &stop,
                );
                let _ = stream.write_all(b"\r\nContent-Length: 2\r\n\r\nv1");
            }
        }
        Behaviour::EndlessBody { chunked } => {
            if read_request(&mut stream) {
                let head: &[u8] = if chunked {
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
                };
                let _ = stream.write_all(head);
                let mut chunk = Vec::new();
                if chunked {
                    chunk.extend_from_slice(b"4000\r\n");
                }
                chunk.extend_from_slice(&[b'v'; 0x4000]);
                if chunked {
                    chunk.extend_from_slice(b"\r\n");
                }
                // 16 KiB every 20 ms, for at most a minute.
                write_repeatedly(&mut stream, &chunk, Duration::from_millis(20), 3_000, &stop);
            }
        }
        Behaviour::Continues { count, then_ok } => {
            if read_request(&mut stream) {
                let interim = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(count);
                let _ = stream.write_all(&interim);
                if then_ok {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv1",
                    );
                    wait_for_close(&mut stream, &stop);
                } else {
                    nap(Duration::from_secs(30), &stop);
                }
            }
        }
        Behaviour::DribbleHeaders => {
            if read_request(&mut stream) {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
                write_repeatedly(
                    &mut stream,
                    b"X-Drip: 1\r\n",
                    Duration::from_secs(1),
                    60,
                    &stop,
                );
            }
        }
        Behaviour::NeverRead => {
            nap(Duration::from_secs(60), &stop);
        }
        Behaviour::ResetAfterHeaders => {
            if read_request(&mut stream) {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nv1");
                thread::sleep(Duration::from_millis(50));
                let sock = socket2::SockRef::from(&stream);
                let _ = sock.set_linger(Some(Duration::ZERO));
                drop(stream);
            }
        }
        Behaviour::HalfClose => {
            if read_request(&mut stream) {
                let _ = stream.shutdown(std::net::Shutdown::Write);
                wait_for_close(&mut stream, &stop);
            }
        }
        Behaviour::Reset => {
            read_request(&mut stream);
            let sock = socket2::SockRef::from(&stream);
            let _ = sock.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
        Behaviour::CloseAfterRead => {
            read_request(&mut stream);
            drop(stream);
        }
        Behaviour::SendOnAccept(bytes) => {
            let _ = stream.write_all(bytes);
            thread::sleep(Duration::from_millis(100));
        }
        Behaviour::AnswerOnceThenHang => {
            if read_request(&mut stream)
                && stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv1")
                    .is_ok()
            {
                read_request(&mut stream);
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Behaviour::NeverAnswer => {
            read_request(&mut stream);
            while !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
        }
        Behaviour::Respond {
            status,
            headers,
            body,
        } => {
            if read_request(&mut stream) {
                let mut response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in &headers {
                    response.push_str(&format!("{k}: {v}\r\n"));
                }
                response.push_str("\r\n");
                response.push_str(&body);
                let _ = stream.write_all(response.as_bytes());
            }
        }
    }
}

/// Starts a server on an ephemeral loopback port.
pub fn serve(behaviour: Behaviour) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop2 = stop.clone();
    let thread = accept_until_stopped(listener, stop.clone(), accepted.clone(), move |stream| {
        let _ = stream.set_nonblocking(false);
        handle(stream, behaviour.clone(), stop2.clone());
    });
    TestServer {
        addr,
        accepted,
        stop,
        thread: Some(thread),
    }
}

/// Accepts connections on the non-blocking `listener` until `stop` is set, counting
/// each in `accepted` as it is accepted and serving it with `handle` on a thread of its
/// own; the returned thread joins them all before it ends.
pub fn accept_until_stopped<F>(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    handle: F,
) -> thread::JoinHandle<()>
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let handle = Arc::new(handle);
    thread::spawn(move || {
        let mut workers = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let handle = handle.clone();
                    workers.push(thread::spawn(move || handle(stream)));
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
        for w in workers {
            let _ = w.join();
        }
    })
}

/// A loopback port where nothing listens, held for as long as the value lives:
/// the socket is bound but never listens, so connections to it are refused and
/// no other test can be handed the same port meanwhile.
pub struct ClosedPort {
    _socket: socket2::Socket,
    pub port: u16,
}

pub fn closed_port() -> ClosedPort {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    ClosedPort {
        _socket: socket,
        port,
    }
}
