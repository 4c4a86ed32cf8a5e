//! Runs one classic case on the lab with a tiny built-in prober (fresh connection per
//! request, like `curl` in a loop, but at a fixed rate) and prints what the client saw.
//! It exists to check the lab's defaults without the rest of rollprobe.
//!
//! ```text
//! cargo build -p probe-lab --bins --examples
//! sudo target/debug/examples/classic examples/seed/recreate.yaml image backend-deployment=shop/backend:v2
//! sudo target/debug/examples/classic examples/seed/bluegreen.yaml selector backend-svc:version=v2
//! ```
//!
//! Requests are sent at `CLASSIC_RATE` per second (default 50, at most 1000) for at most
//! 5 minutes; each has a 5 s timeout. The lab runs with stock kernel settings unless
//! `CLASSIC_KERNEL=tuned`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use probe_core::{Event, EventSource};
use probe_lab::{enter_netns, parse_manifests, Kernel, Lab, LabConfig};

fn get(addr: SocketAddr) -> String {
    let t = Duration::from_secs(5);
    let mut s = match TcpStream::connect_timeout(&addr, t) {
        Ok(s) => s,
        Err(e) => return errno(&e),
    };
    let _ = s.set_read_timeout(Some(t));
    if let Err(e) =
        s.write_all(b"GET /test/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    {
        return errno(&e);
    }
    let mut all = String::new();
    match s.read_to_string(&mut all) {
        Ok(_) => match all.split("\r\n\r\n").nth(1) {
            Some(v) if all.starts_with("HTTP/1.1 200") => format!("ok {v}"),
            _ => "closed".to_string(),
        },
        Err(e) => errno(&e),
    }
}

fn errno(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "ECONNREFUSED".into(),
        Some(libc::EHOSTUNREACH) => "EHOSTUNREACH".into(),
        Some(libc::ENETUNREACH) => "ENETUNREACH".into(),
        Some(libc::ECONNRESET) => "ECONNRESET".into(),
        _ if e.kind() == std::io::ErrorKind::TimedOut
            || e.kind() == std::io::ErrorKind::WouldBlock =>
        {
            "timeout".into()
        }
        _ => format!("other {e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: classic FILE (image DEPLOY=IMAGE | selector SVC:K=V)");
        std::process::exit(2);
    }
    let objs = parse_manifests(&std::fs::read_to_string(&args[1]).unwrap()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let app = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("probe-lab-app");
    let kernel: Kernel = std::env::var("CLASSIC_KERNEL")
        .unwrap_or_else(|_| "stock".into())
        .parse()
        .unwrap_or_else(|e| {
            eprintln!("CLASSIC_KERNEL: {e}");
            std::process::exit(2)
        });
    let rate: u32 = std::env::var("CLASSIC_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| (1..=1000).contains(r))
        .unwrap_or(50);
    let cfg = LabConfig {
        app_command: Some(vec![app.to_string_lossy().into_owned()]),
        max_lifetime: Duration::from_secs(600),
        kernel,
        ..LabConfig::default()
    };
    let t0 = Instant::now();
    let events: Arc<Mutex<Vec<(f64, String, String)>>> = Arc::default();
    let ev = events.clone();
    let sink = Arc::new(move |e: Event| {
        ev.lock()
            .unwrap()
            .push((t0.elapsed().as_secs_f64(), e.kind.to_string(), e.detail));
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lab = Lab::start(cfg).await.unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
        let _attachment = lab.attach(sink);
        println!("kernel settings: {}, {rate} requests/s", lab.kernel());
        lab.apply(objs).unwrap();
        lab.wait_available(Duration::from_secs(120)).await.unwrap();
        let svc = "backend-svc";
        let target = lab.probe_target(svc).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<(f64, String)>();
        let p_start = Instant::now();
        let p_t0 = p_start.duration_since(t0).as_secs_f64();
        let prober = {
            let stop = stop.clone();
            let ns = target.netns.clone();
            let addr = target.addr;
            std::thread::spawn(move || {
                for i in 0..(rate * 300) {
                    let due = p_start + Duration::from_secs_f64(f64::from(i) / f64::from(rate));
                    if let Some(d) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (tx, ns) = (tx.clone(), ns.clone());
                    let at = p_t0 + f64::from(i) / f64::from(rate);
                    std::thread::spawn(move || {
                        enter_netns(&ns).unwrap();
                        let _ = tx.send((at, get(addr)));
                    });
                }
            })
        };
        if std::env::var_os("CLASSIC_VERBOSE").is_some() {
            // Watch the client's neighbour table and the node's addresses (bounded).
            let (cns, nns, stop) = (
                lab.client_netns().to_string(),
                lab.node_netns().to_string(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut last = String::new();
                for _ in 0..3000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let o = |a: &[&str]| {
                        String::from_utf8_lossy(
                            &std::process::Command::new("ip")
                                .args(a)
                                .output()
                                .unwrap()
                                .stdout,
                        )
                        .into_owned()
                    };
                    let neigh = o(&["-n", &cns, "neigh", "show", "172.31.254.10"]);
                    let addr = o(&["-n", &nns, "-br", "addr", "show", "lb0"]);
                    let now = format!("{} | {}", neigh.trim(), addr.trim());
                    if now != last {
                        println!("{:8.2}s {now}", t0.elapsed().as_secs_f64());
                        last = now;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let change_at = t0.elapsed().as_secs_f64();
        match args[2].as_str() {
            "image" => {
                let (d, img) = args[3].split_once('=').unwrap();
                lab.set_image(d, img).unwrap();
                lab.wait_rollout_complete(d, Duration::from_secs(240))
                    .await
                    .unwrap();
            }
            _ => {
                let (s, kv) = args[3].split_once(':').unwrap();
                let (k, v) = kv.split_once('=').unwrap();
                let labels = [(k.to_string(), v.to_string())].into_iter().collect();
                lab.set_selector(s, &labels).unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        let done_at = t0.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(5)).await;
        stop.store(true, Ordering::SeqCst);
        prober.join().unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let mut res: Vec<(f64, String)> = rx.try_iter().collect();
        res.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (_, r) in &res {
            *counts.entry(r.clone()).or_default() += 1;
        }
        if std::env::var_os("CLASSIC_VERBOSE").is_some() {
            for (t, r) in res.iter().filter(|r| !r.1.starts_with("ok")) {
                println!("{t:8.2}s {r}");
            }
        }
        println!("change at {change_at:.2}s, rollout complete at {done_at:.2}s");
        println!("outcomes: {counts:?}");
        // outage windows: consecutive non-ok runs
        let mut i = 0;
        while i < res.len() {
            if res[i].1.starts_with("ok") {
                i += 1;
                continue;
            }
            let s = i;
            let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
            while i < res.len() && !res[i].1.starts_with("ok") {
                *kinds.entry(res[i].1.clone()).or_default() += 1;
                i += 1;
            }
            let end = res.get(i).map(|r| r.0).unwrap_or(f64::NAN);
            println!(
                "window {:.2}s..{:.2}s ({:.2}s): {kinds:?}",
                res[s].0,
                end,
                end - res[s].0
            );
        }
        for (t, k, d) in events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.0 >= change_at - 0.1)
        {
            println!("{t:8.2}s {k:24} {d}");
        }
        lab.shutdown().await.unwrap();
    });
}
