//! The library example, as written for users, in a crate of their own.

use std::net::SocketAddr;
use std::time::Duration;

use rollprobe::{Probe, Rollout};

/// A tiny versioned HTTP service on loopback, standing for the user's own.
struct Service {
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Service {
    /// Listens on `addr` with SO_REUSEPORT, so a new version can start beside the old.
    fn start(addr: SocketAddr, version: &'static str) -> std::io::Result<(Service, SocketAddr)> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(128)?;
        let listener = tokio::net::TcpListener::from_std(socket.into())?;
        let bound = listener.local_addr()?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => {
                        let Ok((mut conn, _)) = accepted else { continue };
                        tokio::spawn(async move {
                            use tokio::io::{AsyncReadExt, AsyncWriteExt};
                            let mut buf = [0u8; 2048];
                            let _ = conn.read(&mut buf).await;
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{version}",
                                version.len()
                            );
                            let _ = conn.write_all(answer.as_bytes()).await;
                        });
                    }
                }
            }
        });
        Ok((Service { stop }, bound))
    }
}

#[tokio::test]
async fn a_rolling_redeploy_loses_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let (v1, addr) = Service::start("127.0.0.1:0".parse()?, "v1")?;
    // The user's redeploy: v2 listens beside v1, then v1 stops.
    let redeploy = move || async move {
        let (v2, _) = Service::start(addr, "v2")?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = v1.stop.send(());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let _ = v2.stop.send(());
        });
        Ok::<(), std::io::Error>(())
    };

    let report = Rollout::new(Probe::builder(&format!("http://{addr}/test/version")).rate(200))
        .warmup(Duration::from_millis(500)) // default 2 s
        .settle(Duration::from_millis(500)) // default 5 s
        .trigger(async move { redeploy().await }) // output () or Result<(), E: Display>
        .run()
        .await?;
    assert_eq!(report.totals.failed, 0, "{}", report.summary());
    let versions: Vec<&str> = report.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["v1", "v2"], "{}", report.summary());
    Ok(())
}

const MANIFEST: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: shop/web:v1
        readinessProbe:
          httpGet:
            path: /test/version
            port: 8080
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web-svc
spec:
  selector:
    app: web
  ports:
  - port: 8080
    targetPort: 8080
"#;

#[tokio::test]
#[ignore = "needs root, iproute2 and iptables: run with --ignored as root"]
async fn the_lab_example_as_written() -> Result<(), Box<dyn std::error::Error>> {
    let lab = rollprobe::lab::Lab::start(Default::default()).await?; // start(LabConfig)
    lab.apply_yaml(MANIFEST)?; // multi-document Deployment/Service YAML
    lab.wait_available(Duration::from_secs(60)).await?;
    let change = lab.clone(); // Lab is a cheap handle (Clone + Send + Sync)
    let report = Rollout::new(Probe::builder(&lab.service_url("web-svc")?).rate(100))
        .lab(&lab) // probe from where a client of that Service stands, lab events on the
        // probe's clock, run until the rollout completes, then settle
        .trigger(async move { change.set_image("web", "shop/web:v2") })
        .run()
        .await?;
    lab.shutdown().await?;
    assert_eq!(report.totals.failed, 0, "{}", report.summary());
    assert!(report.versions.iter().any(|v| v.version == "v2"));
    Ok(())
}
