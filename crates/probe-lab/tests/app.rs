//! The lab app as a process: startup delay, version, SIGTERM with and without a drain.
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

#[test]
fn drains_for_shutdown_delay_ms_after_sigterm() {
    let port = free_port();
    let mut c = start(port, 600);
    wait_listening(port);
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(port).unwrap(), "v2", "still serving while draining");
    let (st, took) = wait_exit(&mut c);
    assert!(st.success(), "{st:?}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
}
