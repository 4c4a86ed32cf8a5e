//! Real local servers with one misbehaviour each, and helpers to run the binary.
//! Every server listens on 127.0.0.1 only and stops when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
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

fn read_request(stream: &mut TcpStream) -> bool {
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

fn handle(mut stream: TcpStream, behaviour: Behaviour, stop: Arc<AtomicBool>) {
    match behaviour {
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
    let (stop2, accepted2) = (stop.clone(), accepted.clone());
    let thread = thread::spawn(move || {
        let mut workers = Vec::new();
        while !stop2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    accepted2.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nonblocking(false);
                    let (b, s) = (behaviour.clone(), stop2.clone());
                    workers.push(thread::spawn(move || handle(stream, b, s)));
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
        for w in workers {
            let _ = w.join();
        }
    });
    TestServer {
        addr,
        accepted,
        stop,
        thread: Some(thread),
    }
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

/// The rollprobe binary (crates/probe-cli's), beside this test in the target folder.
pub fn rollprobe_bin() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/rollprobe
    let exe = std::env::current_exe().expect("the test knows where it is");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps")
        .join("rollprobe");
    assert!(
        bin.is_file(),
        "{} is missing: `cargo test` at the root builds it; alone, run `cargo build -p probe-cli` first",
        bin.display()
    );
    bin
}

/// The rollprobe binary, as a command.
pub fn rollprobe() -> Command {
    Command::new(rollprobe_bin())
}

/// A fresh, empty folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollprobe-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}
