//! `rollprobe demo`: the whole idea in twenty seconds, with no cluster and no root.
//!
//! A small versioned service runs in-process on a loopback port and is
//! redeployed twice while it is probed at 200 req/s:
//! - **Recreate**: v1 stops, and v2 listens only after a startup delay (as a
//!   Spring Boot app does), so every request in between is refused;
//! - **rolling**: v2 starts listening on the same port (SO_REUSEPORT) before v1
//!   stops, as a RollingUpdate with a readinessProbe hands over.
//!
//! Every instance names itself in an `x-pod-name` header, as the lab's app does, and the
//! demo reads it (`--pod-from header:x-pod-name`), so its reports list the pods that
//! answered. [`ServiceInstance`] is also what the end-to-end tests redeploy.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use probe_core::{
    Comparison, Probe, ProbeBuilder, ProbeConfig, ProbeError, ProbeHandle, Report, Target,
    VersionSource,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::args::DemoArgs;
use crate::exit::Exit;
use crate::progress::Progress;
use crate::CliError;

/// The header in which every instance names itself, as a pod's app would.
pub const POD_HEADER: &str = "x-pod-name";

/// One running instance of the versioned service: answers `GET /test/version`
/// with its version and its name in [`POD_HEADER`], like the app of the seed walkthrough.
///
/// ```
/// # async fn demo() -> std::io::Result<()> {
/// use probe_cli::demo::ServiceInstance;
/// let v1 = ServiceInstance::start("127.0.0.1:0".parse().unwrap(), "v1", false).await?;
/// let url = format!("http://{}/test/version", v1.addr());
/// let answered = v1.stop().await;
/// # Ok(()) }
/// ```
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
    ///
    /// ```
    /// # async fn demo() -> std::io::Result<()> {
    /// use probe_cli::demo::ServiceInstance;
    /// let a = ServiceInstance::start_pod("127.0.0.1:0".parse().unwrap(), "v1", "web-a", true).await?;
    /// let b = ServiceInstance::start_pod(a.addr(), "v1", "web-b", true).await?;
    /// let (from_a, from_b) = (a.stop().await, b.stop().await);
    /// # Ok(()) }
    /// ```
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

/// How long the new version takes to listen in the Recreate case, like a Spring Boot start.
const STARTUP_DELAY: Duration = Duration::from_millis(1500);
const WARMUP: Duration = Duration::from_secs(2);
const SETTLE: Duration = Duration::from_secs(2);

async fn probe_one(
    label: &str,
    url: &str,
    rate: f64,
    out: &Path,
    quiet: bool,
) -> Result<(Probe, Progress), CliError> {
    let dir = out.join(label);
    crate::options::check_out_dir(&dir)?;
    let mut config = ProbeConfig::new(Target::parse(url).map_err(ProbeError::from)?);
    config.pod_from = Some(VersionSource::Header(POD_HEADER.into()));
    let probe = ProbeBuilder::from(config)
        .rate(rate)
        .label(label)
        .out_dir(&dir)
        .start()
        .await?;
    let progress = Progress::start(probe.handle(), label, quiet);
    Ok((probe, progress))
}

fn failed(e: std::io::Error) -> CliError {
    CliError::Failed(format!(
        "the demo service could not listen on loopback: {e}"
    ))
}

async fn recreate(rate: f64, out: &Path, quiet: bool) -> Result<Report, CliError> {
    let v1 = ServiceInstance::start((Ipv4Addr::LOCALHOST, 0).into(), "v1", false)
        .await
        .map_err(failed)?;
    let addr = v1.addr();
    let url = format!("http://{addr}/test/version");
    let (probe, progress) = probe_one("recreate", &url, rate, out, quiet).await?;
    let events: ProbeHandle = probe.handle();
    tokio::time::sleep(WARMUP).await;
    events.emit("trigger_start", "recreate: stop v1, then start v2");
    v1.stop().await;
    events.emit("instance_stopped", "v1");
    tokio::time::sleep(STARTUP_DELAY).await;
    let v2 = ServiceInstance::start(addr, "v2", false)
        .await
        .map_err(failed)?;
    events.emit("instance_listening", "v2");
    events.emit("trigger_exit", "exit code 0");
    tokio::time::sleep(SETTLE).await;
    drop(progress);
    let report = probe.stop().await?;
    v2.stop().await;
    Ok(report)
}

async fn rolling(rate: f64, out: &Path, quiet: bool) -> Result<Report, CliError> {
    let v1 = ServiceInstance::start((Ipv4Addr::LOCALHOST, 0).into(), "v1", true)
        .await
        .map_err(failed)?;
    let addr = v1.addr();
    let url = format!("http://{addr}/test/version");
    let (probe, progress) = probe_one("rolling", &url, rate, out, quiet).await?;
    let events = probe.handle();
    tokio::time::sleep(WARMUP).await;
    events.emit("trigger_start", "rolling: start v2 beside v1, then stop v1");
    // The new instance starts up while the old one keeps serving.
    tokio::time::sleep(STARTUP_DELAY).await;
    let v2 = ServiceInstance::start(addr, "v2", true)
        .await
        .map_err(failed)?;
    events.emit("instance_listening", "v2");
    tokio::time::sleep(Duration::from_millis(500)).await;
    v1.stop().await;
    events.emit("instance_stopped", "v1");
    events.emit("trigger_exit", "exit code 0");
    tokio::time::sleep(SETTLE).await;
    drop(progress);
    let report = probe.stop().await?;
    v2.stop().await;
    Ok(report)
}

/// `rollprobe demo`.
pub async fn demo(a: DemoArgs) -> Result<Exit, CliError> {
    crate::options::check_out_dir(&a.out)?;
    eprintln!(
        "rollprobe demo: a local service (v1 -> v2) is redeployed twice while probed at {} req/s, about 12 s",
        a.rate
    );
    let first = recreate(a.rate, &a.out, a.quiet).await?;
    println!("{}", first.summary());
    let second = rolling(a.rate, &a.out, a.quiet).await?;
    println!("{}", second.summary());
    println!("Comparison");
    print!("{}", Comparison::new(&[first, second]).to_text());
    eprintln!(
        "rollprobe: reports in {0}/recreate and {0}/rolling; compare them again with: rollprobe compare {0}/*/report.json",
        a.out.display()
    );
    Ok(Exit::Ok)
}
