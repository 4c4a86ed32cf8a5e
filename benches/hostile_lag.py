#!/usr/bin/env python3
"""Does a misbehaving server disturb the schedule?

The hostile-server tests (crates/probe-cli/tests/e2e/hostile.rs) check that every misbehaviour ends in a named
kind without a crash, a hang or runaway memory; whether the prober still sends on time
while its requests hang is a timing figure, so it is measured here rather than asserted
in a test. For each server below, `rollprobe run` sends at --rate (default 200 req/s) for
--secs (default 10 s) with a 1 s response timeout, and this prints the send lag from its
report.json (p50, p99, max, late, skipped) beside the kinds it recorded:

- ok: answers every request at once (the baseline);
- never-answer: reads the request and never answers (every request waits out its timeout);
- never-read: accepts and never reads;
- dribble: sends a status line, then one header byte per 100 ms, forever;
- garbage: answers bytes that are not HTTP;
- reset: reads the request, then resets the connection.

Every server listens on 127.0.0.1 only and stops with this script; every run is bounded
by --secs. Usage:
    python3 benches/hostile_lag.py [--binary PATH] [--rate 200] [--secs 10] [--rounds 2]

The binary defaults to $CARGO_TARGET_DIR (or target/)/release/rollprobe when it exists,
else the debug one; say which in RESULTS.md.
"""

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STOP = threading.Event()


def read_request(conn):
    data = b""
    conn.settimeout(2)
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        data += chunk
    return True


def handle(kind, conn):
    try:
        if kind == "never-read":
            STOP.wait(15)
            return
        if not read_request(conn):
            return
        if kind == "ok":
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nv1")
        elif kind == "never-answer":
            STOP.wait(15)
        elif kind == "dribble":
            conn.sendall(b"HTTP/1.1 200 OK\r\nx-slow: ")
            while not STOP.is_set():
                conn.sendall(b"a")
                time.sleep(0.1)
        elif kind == "garbage":
            conn.sendall(b"\x00\x01 this is not HTTP at all \xff\xfe\r\n\r\n")
        elif kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    finally:
        conn.close()


def serve(kind):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    listener.settimeout(0.2)

    def loop():
        while not STOP.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=handle, args=(kind, conn), daemon=True).start()
        listener.close()

    threading.Thread(target=loop, daemon=True).start()
    return listener.getsockname()[1]


def binary_default():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    for profile in ("release", "debug"):
        path = os.path.join(target, profile, "rollprobe")
        if os.access(path, os.X_OK):
            return path
    sys.exit("hostile_lag.py: no rollprobe binary; run `cargo build --release -p probe-cli`")


def run_once(binary, port, rate, secs, out):
    argv = [binary, "run", f"http://127.0.0.1:{port}/test/version", "--rate", str(rate),
            "--duration", f"{secs}s", "--timeout", "1s", "--quiet", "--format", "json",
            "--out", out]
    done = subprocess.run(argv, capture_output=True, timeout=secs + 60)
    report = json.load(open(os.path.join(out, "report.json")))
    return done.returncode, report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=None)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    binary = args.binary or binary_default()
    kinds = ["ok", "never-answer", "never-read", "dribble", "garbage", "reset"]
    ports = {k: serve(k) for k in kinds}
    print(f"binary {binary}, {args.rate} req/s for {args.secs} s, timeout 1 s, "
          f"{args.rounds} rounds\n")
    print("| server | round | lag p50 ms | lag p99 ms | lag max ms | late | skipped | kinds |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(1, args.rounds + 1):
            for k in kinds:
                out = os.path.join(tmp, f"{k}-{r}")
                code, rep = run_once(binary, ports[k], args.rate, args.secs, out)
                p = rep["probe"]
                failures = ", ".join(f"{n} {c}" for n, c in sorted(rep["failures"].items()))
                print(f"| {k} | {r} | {p['send_lag_p50_ms']:.3f} | {p['send_lag_p99_ms']:.3f} "
                      f"| {p['send_lag_max_ms']:.3f} | {p['late']} | {p['skipped']} "
                      f"| {failures or 'ok ' + str(rep['totals']['ok'])} (exit {code}) |",
                      flush=True)
    STOP.set()


if __name__ == "__main__":
    main()
