//! kube-proxy's service health check: for a Service with `externalTrafficPolicy: Local`,
//! every node answers on the Service's `healthCheckNodePort` whether it has a ready
//! endpoint of its own.
//!
//! Cloud load balancers poll this port to send traffic only to nodes that will not drop
//! it, so the lab serves it the way kube-proxy does, from the node's namespace: any path
//! (kube-proxy's handler answers all; `/healthz` is what load balancers ask), `200` with
//! a JSON body whose `localEndpoints` is the node's count of ready local endpoints, `503`
//! with `localEndpoints: 0`, and the count also in `X-Load-Balancing-Endpoint-Weight`.
//! The count changes when the node's kube-proxy syncs, as kube-proxy updates its health
//! server after writing its rules.
//!
//! One thread per server, with a blocking socket polled for the stop flag: a handful of
//! servers answering a load balancer's occasional poll need no runtime.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::LabError;

/// How often an idle server looks at its stop flag.
const POLL: Duration = Duration::from_millis(20);

/// One node's health check server for one Service; stops when dropped.
pub(crate) struct HealthServer {
    local_endpoints: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HealthServer {
    /// Listens on `0.0.0.0:port` in network namespace `netns`, for Service `service`
    /// (namespace `default`), answering with `local_endpoints` ready local endpoints.
    pub(crate) fn start(
        netns: &str,
        port: u16,
        service: &str,
        local_endpoints: usize,
    ) -> Result<HealthServer, LabError> {
        let count = Arc::new(AtomicUsize::new(local_endpoints));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (ns, svc) = (netns.to_string(), service.to_string());
        let (c, s) = (count.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("healthz-{port}"))
            .spawn(move || {
                let listener = crate::netns::enter_netns(&ns)
                    .and_then(|()| TcpListener::bind(("0.0.0.0", port)))
                    .and_then(|l| l.set_nonblocking(true).map(|()| l));
                let listener = match listener {
                    Ok(l) => {
                        let _ = tx.send(Ok(()));
                        l
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                serve(&listener, &svc, &c, &s);
            })
            .map_err(|e| LabError::Setup(format!("health check thread: {e}")))?;
        match rx.recv() {
            Ok(Ok(())) => Ok(HealthServer {
                local_endpoints: count,
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(LabError::Setup(format!(
                "health check of {service} on {netns} port {port}: {e}"
            ))),
            Err(_) => Err(LabError::Setup(format!(
                "health check of {service} on {netns} port {port} did not start"
            ))),
        }
    }

    /// What the server answers from now on.
    pub(crate) fn set_local_endpoints(&self, n: usize) {
        self.local_endpoints.store(n, Ordering::SeqCst);
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, service: &str, count: &AtomicUsize, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = answer(stream, service, count.load(Ordering::SeqCst));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Reads the request head (bounded in size and time) and answers as kube-proxy does.
fn answer(mut stream: TcpStream, service: &str, local: usize) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut buf)? {
            0 => break,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    stream.write_all(response(service, local).as_bytes())?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// The whole HTTP response for `local` ready local endpoints: kube-proxy's status, headers
/// and body (its service health server's JSON, tab-indented as it prints it).
pub(crate) fn response(service: &str, local: usize) -> String {
    let status = if local > 0 {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    let body = format!(
        "{{\n\t\"service\": {{\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"{service}\"\n\t}},\n\t\"localEndpoints\": {local},\n\t\"serviceProxyHealthy\": true\n}}"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nX-Load-Balancing-Endpoint-Weight: {local}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::response;

    #[test]
    fn answers_as_kube_proxy_does() {
        let ok = response("backend-svc", 2);
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("X-Load-Balancing-Endpoint-Weight: 2\r\n"));
        let body = ok.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(
            body,
            "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"backend-svc\"\n\t},\n\t\"localEndpoints\": 2,\n\t\"serviceProxyHealthy\": true\n}"
        );
        assert!(ok.contains(&format!("Content-Length: {}\r\n", body.len())));
        let down = response("backend-svc", 0);
        assert!(
            down.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{down}"
        );
        assert!(down.contains("\"localEndpoints\": 0"), "{down}");
    }
}
