//! The lab app as a process: startup delay, version, SIGTERM with and without a graceful
//! drain.
//! No root needed (it runs on loopback).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A free port below Linux's ephemeral range (32768-60999), so that no outgoing
/// connection of a parallel test can be using it as its local port while the app starts:
/// a connect to such a port can be reset instead of refused.
fn free_port() -> u16 {
    // Each call starts elsewhere, so parallel tests in this binary never pick the same one.
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(97, std::sync::atomic::Ordering::Relaxed);
    let start = 20_000 + ((std::process::id() as u16).wrapping_add(call) % 10_000);
    (start..32_000)
        .chain(20_000..start)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below the ephemeral range")
}

fn start(port: u16, shutdown_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_probe-lab-app"))
        .env("IMAGE", "shop/web:v2")
        .env("PORT", port.to_string())
        .env("STARTUP_DELAY_MS", "300")
        .env("SHUTDOWN_DELAY_MS", shutdown_ms.to_string())
        .env("LAB_APP_MAX_LIFETIME_S", "60")
        .spawn()
        .unwrap()
}

fn get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /test/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut all = String::new();
    s.read_to_string(&mut all)?;
    Ok(all.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

/// Polls `get` until it answers (bounded).
fn wait_listening(port: u16) -> Duration {
    let t = Instant::now();
    for _ in 0..200 {
        if get(port).is_ok() {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the app never listened on {port}");
}

fn wait_exit(c: &mut Child) -> (std::process::ExitStatus, Duration) {
    let t = Instant::now();
    for _ in 0..300 {
        if let Some(st) = c.try_wait().unwrap() {
            return (st, t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = c.kill();
    panic!("the app did not exit");
}

#[test]
fn refuses_while_starting_then_answers_and_dies_at_once_on_sigterm() {
    let port = free_port();
    let mut c = start(port, 0);
    let e = get(port).expect_err("not listening during the startup delay");
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{e}");
    let waited = wait_listening(port);
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert_eq!(get(port).unwrap(), "v2");
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let (st, took) = wait_exit(&mut c);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGTERM));
    assert!(took < Duration::from_millis(500), "{took:?}");
}

/// Reads one response (head and its Content-Length body) from a keep-alive connection.
fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "connection ended mid-response"
        );
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8(body).unwrap()
}

#[test]
fn drains_gracefully_after_sigterm() {
    let port = free_port();
    let mut c = Command::new(env!("CARGO_BIN_EXE_probe-lab-app"))
        .env("IMAGE", "shop/web:v2")
        .env("PORT", port.to_string())
        .env("STARTUP_DELAY_MS", "300")
        .env("SHUTDOWN_DELAY_MS", "3000")
        .env("RESPONSE_DELAY_MS", "300")
        .env("LAB_APP_MAX_LIFETIME_S", "60")
        .spawn()
        .unwrap();
    wait_listening(port);
    let request = b"GET /test/version HTTP/1.1\r\nHost: x\r\n\r\n";
    // An idle keep-alive connection, and one with a request in flight at SIGTERM.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    idle.write_all(request).unwrap();
    let first = read_response(&mut idle);
    assert!(!first.contains("Connection: close"), "{first}");
    let mut busy = TcpStream::connect(("127.0.0.1", port)).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    busy.write_all(request).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    // The request in flight is finished, and tells the client to go elsewhere.
    let answer = read_response(&mut busy);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        answer.contains("Connection: close") && answer.ends_with("v2"),
        "{answer}"
    );
    // New connections are refused: the server stopped accepting.
    let e = get(port).expect_err("no new connection while draining");
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{e}");
    // What still arrives on an open connection is answered, with Connection: close.
    idle.write_all(request).unwrap();
    let last = read_response(&mut idle);
    assert!(
        last.contains("Connection: close") && last.ends_with("v2"),
        "{last}"
    );
    let mut rest = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut rest).unwrap(),
        0,
        "then the server closes"
    );
    // With no connection left it exits well before the drain time is up.
    let (st, took) = wait_exit(&mut c);
    assert!(st.success(), "{st:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}
