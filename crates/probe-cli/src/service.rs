//! The demo's versioned service: one instance per "pod", answering `GET /test/version`
//! with its version and its name in probe-lab's `POD_HEADER`, on a loopback port.
//!
//! Why here and not in the binary's API: `rollprobe demo` redeploys it, and the
//! end-to-end suites (tests/ of the root package and of this crate) redeploy the very
//! same service, so they include this file by path (`#[path]`) instead of reaching into
//! `probe_cli`. It therefore names only std, tokio, socket2 and probe-lab, which every
//! includer depends on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use probe_lab::POD_HEADER;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// One running instance of the versioned service: answers `GET /test/version`
/// with its version and its name in [`POD_HEADER`], like the app of the seed walkthrough.
pub struct ServiceInstance {
    addr: SocketAddr,
    answered: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ServiceInstance {
    /// Listens on `addr` (port 0 picks one) and serves `version` as the pod
    /// `demo-<version>`. With `reuse_port`, several instances can listen on the same
    /// port at once.
    pub async fn start(addr: SocketAddr, version: &str, reuse_port: bool) -> std::io::Result<Self> {
        Self::start_pod(addr, version, &format!("demo-{version}"), reuse_port).await
    }

    /// As [`ServiceInstance::start`], naming itself `pod` in [`POD_HEADER`]: several
    /// instances of one version on one port (`reuse_port`, the kernel spreads the
    /// connections) are then told apart, as the pods behind a Service are.
    pub async fn start_pod(
        addr: SocketAddr,
        version: &str,
        pod: &str,
        reuse_port: bool,
    ) -> std::io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        let listener = TcpListener::from_std(socket.into())?;
        let addr = listener.local_addr()?;
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let answer = Answer {
            version: version.to_string(),
            pod: pod.to_string(),
            answered: Arc::default(),
        };
        let answered = answer.answered.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            connections.spawn(serve(stream, answer.clone()));
                        }
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            // Closing the listener and every connection is what an exiting
            // process does: the kernel refuses whatever comes next.
            drop(listener);
            connections.shutdown().await;
        });
        Ok(ServiceInstance {
            addr,
            answered,
            stop: Some(stop_tx),
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and closes every connection, as an exiting process would.
    /// Returns how many `GET /test/version` it answered (answers fully written).
    pub async fn stop(mut self) -> u64 {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.answered.load(Ordering::SeqCst)
    }
}

/// What an instance answers, and its count of answers given.
#[derive(Clone)]
struct Answer {
    version: String,
    pod: String,
    answered: Arc<AtomicU64>,
}

async fn serve(mut stream: TcpStream, answer: Answer) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if buf.len() > 16 * 1024 {
                return;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let close = head.contains("\r\nconnection: close");
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        buf.drain(..head_end);
        let found = path == "/test/version";
        let (status, body) = if found {
            ("200 OK", answer.version.as_str())
        } else {
            ("404 Not Found", "not found\n")
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n{POD_HEADER}: {}\r\nContent-Length: {}\r\n{}\r\n{body}",
            answer.pod,
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        if found {
            answer.answered.fetch_add(1, Ordering::SeqCst);
        }
        if close {
            return;
        }
    }
}
