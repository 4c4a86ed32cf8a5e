//! A loopback server that answers every request, but a stretch of them slowly: what a
//! client sees of a proxy that retries a failed upstream behind the scenes.

use std::io::Write;
use std::net::TcpListener;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::{accept_until_stopped, read_request};

/// Answers `200 v1` on 127.0.0.1; the requests numbered `slow` (in order of arrival,
/// from 0) only after `delay`. Stops when dropped.
pub struct SlowForAWhile {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl SlowForAWhile {
    pub fn start(slow: Range<u64>, delay: Duration) -> SlowForAWhile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let served = AtomicU64::new(0);
        let accepted = Arc::new(AtomicUsize::new(0));
        let thread = accept_until_stopped(listener, stop.clone(), accepted, move |mut conn| {
            let _ = conn.set_nonblocking(false);
            if !read_request(&mut conn) {
                return;
            }
            if slow.contains(&served.fetch_add(1, Ordering::SeqCst)) {
                thread::sleep(delay);
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv1");
        });
        SlowForAWhile {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SlowForAWhile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
