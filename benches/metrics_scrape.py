#!/usr/bin/env python3
"""Does a 1 s scrape of --metrics-addr disturb the schedule?

Runs `rollprobe run` at --rate (default 1000 req/s) for --secs (default 20 s) against
nginx on loopback (benches/nginx.conf, started from a run folder as benches/load.py
does, nothing under /etc touched), alternately without --metrics-addr and with it
while a scraper fetches /metrics every second, for --rounds rounds (A B A B ...).
Prints each run's send lag (report.json's probe.send_lag_p50_ms/p99_ms/max_ms, late,
skipped) and, for scraped runs, how many scrapes answered 200 and their size.

The scraper is Debian's real Prometheus (/usr/bin/prometheus, 1 s scrape interval, its
own folder and loopback port) with --scraper prometheus (the default when it is
installed), or a plain HTTP GET every second from this script with --scraper get.

Usage (as root only if nginx must be installed first: apt-get install nginx-light):
    python3 benches/metrics_scrape.py [--binary PATH] [--rounds 3] [--rate 1000]
        [--secs 20] [--connection fresh|keepalive] [--scraper prometheus|get]

The binary defaults to $CARGO_TARGET_DIR (or target/)/release/rollprobe when it
exists, else the debug one; say which in RESULTS.md.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHES = os.path.join(ROOT, "benches")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    for profile in ("release", "debug"):
        path = os.path.join(target, profile, "rollprobe")
        if os.path.exists(path):
            return path
    sys.exit("metrics_scrape.py: no rollprobe binary; run `cargo build -p probe-cli` first")


def wait_http(url, what, secs=30):
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"metrics_scrape.py: {what} did not answer {url} within {secs} s")


def start_nginx(run_dir, port):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        sys.exit("metrics_scrape.py: nginx is missing (apt-get install nginx-light)")
    prefix = os.path.join(run_dir, "nginx")
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    with open(os.path.join(BENCHES, "nginx.conf")) as f:
        conf = f.read().replace("127.0.0.1:18080", f"127.0.0.1:{port}")
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    proc = subprocess.Popen([nginx, "-p", prefix + "/", "-c", path, "-g", "daemon off;"])
    wait_http(f"http://127.0.0.1:{port}/", "nginx")
    return proc


def start_prometheus(run_dir, metrics_port):
    prom_dir = os.path.join(run_dir, "prometheus")
    os.makedirs(prom_dir, exist_ok=True)
    config = os.path.join(prom_dir, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: rollprobe\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{metrics_port}']\n")
    port = free_port()
    log = open(os.path.join(prom_dir, "prometheus.log"), "w")
    proc = subprocess.Popen(
        ["/usr/bin/prometheus", f"--config.file={config}",
         f"--storage.tsdb.path={os.path.join(prom_dir, 'data')}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log)
    wait_http(f"http://127.0.0.1:{port}/-/ready", "prometheus", 60)
    return proc, port


def prometheus_scrapes(port, start, end):
    """How many scrapes of the probe succeeded between start and end (Unix s)."""
    q = urllib.parse.urlencode({"query": 'up{job="rollprobe"}', "start": f"{start:.3f}",
                                "end": f"{end:.3f}", "step": "1"})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query_range?{q}") as r:
        data = json.load(r)["data"]["result"]
    return sum(1 for s in data for _, v in s["values"] if v == "1")


class GetScraper(threading.Thread):
    """GET /metrics every second, as a scraper would."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.stop = threading.Event()
        self.ok = 0
        self.bytes = 0

    def run(self):
        next_at = time.time()
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=1) as r:
                    body = r.read()
                    if r.status == 200:
                        self.ok += 1
                        self.bytes = len(body)
            except OSError:
                pass
            next_at += 1.0
            self.stop.wait(max(0.0, next_at - time.time()))


def run_probe(binary, url, args, out_dir, metrics_port):
    argv = [binary, "run", url, "--rate", str(args.rate), "--duration", f"{args.secs}s",
            "--connection", args.connection, "--format", "json", "--quiet", "--out", out_dir]
    if metrics_port:
        argv += ["--metrics-addr", f"127.0.0.1:{metrics_port}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=args.secs + 60)
    if done.returncode not in (0, 3):
        sys.exit(f"metrics_scrape.py: {' '.join(argv)} exited {done.returncode}: {done.stderr}")
    return json.loads(done.stdout), argv


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=None)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--secs", type=int, default=20)
    p.add_argument("--connection", default="fresh", choices=["fresh", "keepalive"])
    p.add_argument("--scraper", default=None, choices=["prometheus", "get"])
    args = p.parse_args()
    binary = args.binary or default_binary()
    scraper = args.scraper or ("prometheus" if os.path.exists("/usr/bin/prometheus") else "get")
    run_dir = tempfile.mkdtemp(prefix="rollprobe-metrics-bench-")
    nginx_port, metrics_port = free_port(), free_port()
    nginx = start_nginx(run_dir, nginx_port)
    prometheus = None
    try:
        if scraper == "prometheus":
            prometheus, prom_port = start_prometheus(run_dir, metrics_port)
        url = f"http://127.0.0.1:{nginx_port}/test/version"
        print(f"binary {binary}; {args.rate} req/s, {args.secs} s, {args.connection}; "
              f"scraper {scraper}; run folder {run_dir}")
        print("run | scrape | send-lag p50 ms | p99 ms | max ms | late | skipped | scrapes ok")
        results = {"none": [], "1s": []}
        for rnd in range(1, args.rounds + 1):
            for mode in ("none", "1s"):
                out = os.path.join(run_dir, f"r{rnd}-{mode}")
                scrapes = "-"
                if mode == "none":
                    report, argv = run_probe(binary, url, args, out, None)
                elif scraper == "get":
                    s = GetScraper(metrics_port)
                    s.start()
                    report, argv = run_probe(binary, url, args, out, metrics_port)
                    s.stop.set()
                    s.join()
                    scrapes = f"{s.ok} ({s.bytes} B)"
                else:
                    start = time.time()
                    report, argv = run_probe(binary, url, args, out, metrics_port)
                    scrapes = str(prometheus_scrapes(prom_port, start, time.time()))
                h = report["probe"]
                results[mode].append(h["send_lag_p99_ms"])
                print(f"{rnd} | {mode} | {h['send_lag_p50_ms']:.3f} | {h['send_lag_p99_ms']:.3f} | "
                      f"{h['send_lag_max_ms']:.3f} | {h['late']} | {h['skipped']} | {scrapes}",
                      flush=True)
        print("command:", " ".join(argv))
        for mode, p99s in results.items():
            print(f"send-lag p99 with scrape={mode}: {min(p99s):.3f}-{max(p99s):.3f} ms "
                  f"(median {sorted(p99s)[len(p99s) // 2]:.3f})")
    finally:
        nginx.terminate()
        nginx.wait()
        if prometheus:
            prometheus.terminate()
            prometheus.wait()
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
