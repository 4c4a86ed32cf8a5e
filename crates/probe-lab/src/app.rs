//! The versioned app that every lab pod runs.
//!
//! It behaves like the seed's Spring Boot service in the ways that matter to a rollout:
//! it only starts listening after a startup delay (so a pod whose process runs is not yet
//! serving), each answer takes its service time (`RESPONSE_DELAY_MS`, so requests are in
//! flight when a pod goes), and on SIGTERM it either dies at once (the default, a JVM
//! without graceful shutdown) or, with `SHUTDOWN_DELAY_MS`, shuts down as a graceful
//! server does: it stops accepting (new connections are refused), answers each request
//! still arriving on an open connection with `Connection: close`, finishes the requests
//! in flight, and exits when no connection is left or the drain time is up. It answers
//! `GET /test/version` with its version (and every answer with an `x-pod-name` header
//! naming its pod, from `POD_NAME`): the `VERSION` env, or else the tag of `IMAGE`
//! (`shop/web:v2` -> `v2`). With `EXIT_AT_START=CODE` it exits at once with that status,
//! as an app with a broken configuration does, so its pod crash-loops.
//!
//! The HTTP side is a deliberately small, hand-written HTTP/1.1 responder on std threads
//! (one per connection, keep-alive supported): the lab must not depend on the HTTP stack
//! whose behaviour the prober is measuring.

/// The header in which the app names its pod: what `--pod-from` reads in the lab.
pub const POD_HEADER: &str = "x-pod-name";

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::manifest::version_of_image;

static TERMINATING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATING.store(true, Ordering::SeqCst);
}

/// Most connections served at once; more are closed at accept (bounded threads).
const MAX_CONNECTIONS: usize = 512;
/// An idle keep-alive connection is closed after this long (Tomcat's default is 60 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Safety net: the app exits by itself after this long (env `LAB_APP_MAX_LIFETIME_S`).
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// What the app reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// The version it answers with.
    pub version: String,
    /// Its pod's name (`POD_NAME`, set by the lab's kubelet), sent as `x-pod-name` on
    /// every answer so a probe can tell which pod answered.
    pub pod_name: Option<String>,
    /// The TCP port it listens on (`PORT`, default 8080).
    pub port: u16,
    /// Delay before listening (`STARTUP_DELAY_MS`, default 2000).
    pub startup_delay: Duration,
    /// How long it drains at most after SIGTERM (`SHUTDOWN_DELAY_MS`, default 0: it
    /// dies at once).
    pub shutdown_delay: Duration,
    /// Service time of each answer (`RESPONSE_DELAY_MS`, default 0).
    pub response_delay: Duration,
    /// It exits by itself after this long (`LAB_APP_MAX_LIFETIME_S`, default 3600).
    pub max_lifetime: Duration,
    /// Exits at once with this status (`EXIT_AT_START`): an app whose configuration is
    /// wrong, so that its pod crash-loops.
    pub exit_at_start: Option<u8>,
}

impl AppConfig {
    /// Reads the configuration from a lookup function (the process env in [`run_app`]).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> AppConfig {
        let ms = |k: &str, d: u64| {
            Duration::from_millis(get(k).and_then(|v| v.trim().parse().ok()).unwrap_or(d))
        };
        let version = get("VERSION")
            .filter(|v| !v.is_empty())
            .or_else(|| get("IMAGE").map(|i| version_of_image(&i)))
            .unwrap_or_else(|| "unknown".to_string());
        AppConfig {
            version,
            pod_name: get("POD_NAME").filter(|n| !n.trim().is_empty()),
            port: get("PORT")
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(8080),
            startup_delay: ms("STARTUP_DELAY_MS", 2000),
            shutdown_delay: ms("SHUTDOWN_DELAY_MS", 0),
            response_delay: ms("RESPONSE_DELAY_MS", 0),
            max_lifetime: get("LAB_APP_MAX_LIFETIME_S")
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_MAX_LIFETIME),
            exit_at_start: get("EXIT_AT_START").and_then(|v| v.trim().parse().ok()),
        }
    }
}

/// Runs the lab app until SIGTERM/SIGKILL (blocking). See the module docs.
///
/// Exit codes: 0 after a SIGTERM drain or the lifetime cap, 1 if the port cannot be bound,
/// `EXIT_AT_START`'s value at once when it is set.
/// With `SHUTDOWN_DELAY_MS=0` SIGTERM keeps its default action: the process dies at once,
/// as a JVM without graceful shutdown does.
pub fn run_app() -> ExitCode {
    let cfg = AppConfig::from_lookup(|k| std::env::var(k).ok());
    if let Some(code) = cfg.exit_at_start {
        eprintln!("lab-app: EXIT_AT_START={code}: exiting at start");
        return ExitCode::from(code);
    }
    let started = Instant::now();
    unsafe {
        if cfg.shutdown_delay.is_zero() {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
        } else {
            libc::signal(
                libc::SIGTERM,
                on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
    // Starting up: not listening yet (clients get RST -> ECONNREFUSED).
    let until = started + cfg.startup_delay;
    while Instant::now() < until {
        if TERMINATING.load(Ordering::SeqCst) {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(10).min(until - Instant::now()));
    }
    let listener = match TcpListener::bind(("0.0.0.0", cfg.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lab-app: cannot listen on port {}: {e}", cfg.port);
            return ExitCode::from(1);
        }
    };
    let version: Arc<str> = Arc::from(cfg.version.as_str());
    // A header line, or nothing: names that could break the header are not sent.
    let pod_header: Arc<str> = Arc::from(match &cfg.pod_name {
        Some(n) if n.bytes().all(|b| b.is_ascii_graphic()) => format!("x-pod-name: {n}\r\n"),
        _ => String::new(),
    });
    let open = Arc::new(AtomicUsize::new(0));
    let listen_fd = listener.as_raw_fd();
    let delay = cfg.response_delay;
    let accepting = {
        let open = open.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if TERMINATING.load(Ordering::SeqCst) {
                    break; // shut down: the listener is dropped with this thread
                }
                let Ok(stream) = stream else { continue };
                if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                    continue; // dropped: closed at once
                }
                open.fetch_add(1, Ordering::SeqCst);
                let (version, open) = (version.clone(), open.clone());
                let pod_header = pod_header.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &version, &pod_header, delay);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        })
    };
    // Wait for SIGTERM (then drain) or the lifetime cap.
    loop {
        if TERMINATING.load(Ordering::SeqCst) {
            // Stop accepting: shutdown(2) wakes the blocked accept, and a closed
            // listener makes the kernel refuse new connections.
            // SAFETY: the fd stays open until the accepting thread drops the listener.
            unsafe {
                libc::shutdown(listen_fd, libc::SHUT_RDWR);
            }
            let _ = accepting.join();
            let until = Instant::now() + cfg.shutdown_delay;
            while open.load(Ordering::SeqCst) > 0 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            return ExitCode::SUCCESS;
        }
        if started.elapsed() >= cfg.max_lifetime {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Serves HTTP/1.1 requests on one connection until close, error or idle timeout;
/// `pod_header` (an `x-pod-name` line, or empty) goes into every answer.
/// While draining, each request is answered with `Connection: close`, so a keep-alive
/// client opens its next connection elsewhere instead of reusing one about to close.
fn serve(
    stream: TcpStream,
    version: &str,
    pod_header: &str,
    delay: Duration,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    // At most this many requests per connection (bounded loop).
    for _ in 0..1_000_000 {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut content_length = 0usize;
        let mut close = false;
        let mut header_bytes = request_line.len();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            header_bytes += h.len();
            if header_bytes > 16 * 1024 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        if content_length > 0 {
            std::io::copy(
                &mut (&mut reader).take(content_length as u64),
                &mut std::io::sink(),
            )?;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let target = parts.next().unwrap_or("");
        let http10 = parts.next() == Some("HTTP/1.0");
        close |= http10;
        let path = target.split('?').next().unwrap_or("");
        let (status, body) = if (method == "GET" || method == "HEAD") && path == "/test/version" {
            ("200 OK", version.to_string())
        } else {
            ("404 Not Found", "not found\n".to_string())
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        close |= TERMINATING.load(Ordering::SeqCst);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{pod_header}{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        out.write_all(head.as_bytes())?;
        if method != "HEAD" {
            out.write_all(body.as_bytes())?;
        }
        out.flush()?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn config_from_env() {
        let env: HashMap<&str, &str> = [("IMAGE", "shop/web:v2"), ("STARTUP_DELAY_MS", "50")]
            .into_iter()
            .collect();
        let c = AppConfig::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(c.version, "v2");
        assert_eq!(c.port, 8080);
        assert_eq!(c.startup_delay, Duration::from_millis(50));
        assert_eq!(c.shutdown_delay, Duration::ZERO);
        assert_eq!(c.exit_at_start, None);
        let c = AppConfig::from_lookup(|k| match k {
            "VERSION" => Some("blue".into()),
            "IMAGE" => Some("x:v9".into()),
            "PORT" => Some("9000".into()),
            "EXIT_AT_START" => Some("3".into()),
            _ => None,
        });
        assert_eq!((c.version.as_str(), c.port), ("blue", 9000));
        assert_eq!(c.pod_name, None);
        assert_eq!(c.exit_at_start, Some(3));
    }

    #[test]
    fn serves_version_with_keepalive_and_404() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            serve(s, "v7", "x-pod-name: web-1\r\n", Duration::ZERO).unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET /test/version HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut all = String::new();
        c.read_to_string(&mut all).unwrap();
        t.join().unwrap();
        assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
        assert!(
            all.contains("Content-Length: 2\r\nx-pod-name: web-1\r\n\r\nv7HTTP/1.1 404"),
            "{all}"
        );
        assert!(
            all.ends_with("x-pod-name: web-1\r\nConnection: close\r\n\r\nnot found\n"),
            "{all}"
        );
    }
}
