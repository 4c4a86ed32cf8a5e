#!/usr/bin/env python3
"""rollprobe's load benchmark: precision and cost, side by side with oha and hey.

One command from a clean checkout (as root, for apt-get):

    python3 benches/load.py

installs what is missing (nginx-light, hey, util-linux's taskset from Debian;
oha with `cargo install oha --locked` under the cargo target folder), builds
rollprobe in release mode, starts nginx on 127.0.0.1 with benches/nginx.conf,
and then:

1. the matrix: for each mode (keepalive, fresh) and rate (10, 1000, 2000,
   5000, 10000 req/s), rollprobe (its default executor: io_uring where the
   kernel allows it), rollprobe-tokio (the same binary with
   ROLLPROBE_EXECUTOR=tokio), oha and hey run alternately (A B C D A B C D),
   5 s each (10 s at rates under 100 req/s, where a run's fixed start-up cost
   would otherwise dominate); each rollprobe row names the executor its
   report.json says ran;
2. idle: what rollprobe (both executors), oha and hey cost at 10 req/s once
   running, the CPU of a 15 s run minus that of a 5 s run over 10 s (start-up
   and the report cancel out);
3. the search, per mode: rollprobe's highest clean rate (at least 99% of the
   asked requests sent, send-lag p99 under 1 ms, under 1% failures), doubling
   from 2500 req/s then bisecting, bounded in time; and wrk's closed-loop
   maximum (50 connections) for scale;
4. `rollprobe report` with all of its outputs on a generated 1,000,000-row
   samples.csv (wall, CPU, RSS).

It prints the whole table and how long it took (about 15 minutes, without the
build and the installs).

Each tool runs as a child pinned to its own core (nginx on another core) when
the machine has two or more; its CPU (user+sys) and peak RSS come from
wait4()'s rusage for that child, which is how /usr/bin/time measures a
command: the whole process with every thread and every descendant it waited
for (`taskset` execs the tool, so the child is the tool). The `reconcile`
phase checks that: it runs rollprobe and oha at 5000 req/s (keepalive) once
as the matrix does and once under a plain `/usr/bin/time -f '%U %S'` of the
same command line, and prints both figures per 1000 requests side by side.
See benches/README.md.

`--memory-run SECONDS` instead runs rollprobe alone at 1000 req/s for that long
(600 for the 10-minute run) and records its RSS every few seconds.
Everything a run measured is kept in --out (default
$CARGO_TARGET_DIR/bench-load/<timestamp>/): results.json and table.md.
"""

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHES = os.path.join(ROOT, "benches")
HEY_WORKERS = 50  # hey's and oha's default concurrency
OHA_CONNECTIONS = 50


def log(msg):
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")


# ---------------------------------------------------------------- installing

_apt_updated = False


def apt_install(*packages):
    global _apt_updated
    if os.geteuid() != 0:
        sys.exit(f"load.py: {' '.join(packages)} missing and not root: install them first")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        log("apt-get update")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        _apt_updated = True
    log(f"apt-get install {' '.join(packages)}")
    subprocess.run(["apt-get", "install", "-y", "-q", *packages], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def find_nginx():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.path.exists(p)), None)


def ensure_tools(tools):
    missing = []
    if not find_nginx():
        missing.append("nginx-light")
    if "hey" in tools and not shutil.which("hey"):
        missing.append("hey")
    if "wrk" in tools and not shutil.which("wrk"):
        missing.append("wrk")
    if not shutil.which("taskset"):
        missing.append("util-linux")
    if missing:
        apt_install(*missing)
    nginx = find_nginx()
    if not nginx:
        sys.exit("load.py: nginx is still missing after apt-get install nginx-light")
    oha = None
    if "oha" in tools:
        candidates = [os.path.join(target_dir(), "bench-tools", "bin", "oha"),
                      os.path.join(ROOT, "target", "bench-tools", "bin", "oha"),
                      shutil.which("oha")]
        oha = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
        if not oha:
            root = os.path.join(target_dir(), "bench-tools")
            log(f"cargo install oha --locked --root {root} (a few minutes)")
            subprocess.run(["cargo", "install", "oha", "--locked", "--root", root], check=True)
            oha = os.path.join(root, "bin", "oha")
    return nginx, oha


def build_rollprobe(skip):
    binary = os.path.join(target_dir(), "release", "rollprobe")
    if not skip:
        log(f"cargo build --release -p probe-cli (target {target_dir()})")
        subprocess.run(["cargo", "build", "--release", "-p", "probe-cli"], cwd=ROOT,
                       check=True)
    if not os.access(binary, os.X_OK):
        sys.exit(f"load.py: {binary} not found; build it or drop --no-build")
    return binary


def tool_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


# ------------------------------------------------------------------- cores

def cpu_plan():
    n = os.cpu_count() or 1
    if n >= 2:
        return "0", "1"  # nginx, load generator
    return None, None


def pinned(cpu, argv):
    return (["taskset", "-c", cpu] + argv) if cpu is not None else argv


NICE = 0  # set from --nice


def raise_nofile():
    if NICE:
        try:
            os.nice(NICE)
        except OSError:
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, 1 << 20), hard))
    except (ValueError, OSError):
        pass


# ------------------------------------------------------------------- nginx

class Nginx:
    def __init__(self, nginx, run_dir, port, cpu):
        self.dir = os.path.join(run_dir, "nginx")
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        with open(os.path.join(BENCHES, "nginx.conf")) as f:
            conf = f.read()
        conf = conf.replace("127.0.0.1:18080", f"127.0.0.1:{port}")
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.port = port
        if port_open(port):
            sys.exit(f"load.py: 127.0.0.1:{port} is already taken; pass --port")
        argv = pinned(cpu, [nginx, "-p", self.dir + "/", "-c", self.conf, "-g", "daemon off;"])
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "w"),
                                     preexec_fn=raise_nofile)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"load.py: nginx exited at start; see {self.dir}/error.log")
            if http_get(port) == b"v1\n":
                return
            time.sleep(0.1)
        self.stop()
        sys.exit("load.py: nginx did not answer within 10 s")

    def cpu_seconds(self):
        """user+sys of the master and its worker(s) so far, from /proc."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        pids = [self.proc.pid]
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                pass
        return total

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_get(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else None
    except OSError:
        return None


# ------------------------------------------------------- measuring one child

def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_measured(argv, log_prefix, timeout, rss_every=None, env=None):
    """Runs argv as a child; returns (exit code, stdout, cpu_s, peak_rss_kib, wall_s, series).

    CPU and peak RSS are wait4()'s rusage of this child alone; `series` is
    [(seconds since start, RSS KiB)] sampled from /proc every `rss_every` s."""
    out_path, err_path = log_prefix + ".stdout", log_prefix + ".stderr"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                preexec_fn=raise_nofile, env=env)
        series = []
        next_sample = start
        status = ru = None
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            now = time.monotonic()
            if rss_every and now >= next_sample:
                kib = rss_kib(proc.pid)
                if kib is not None:
                    series.append((round(now - start, 1), kib))
                next_sample = now + rss_every
            if now - start > timeout:
                log(f"timeout: killing {argv[0]} after {timeout} s")
                proc.kill()
                _, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path) as f:
        stdout = f.read()
    cpu = ru.ru_utime + ru.ru_stime
    run_measured.last_switches = ru.ru_nvcsw + ru.ru_nivcsw
    return proc.returncode, stdout, cpu, ru.ru_maxrss, wall, series


# ----------------------------------------------------------------- the tools

def rollprobe_argv(binary, url, mode, rate, secs, out_dir):
    return [binary, "run", url, "--rate", str(rate), "--duration", f"{secs}s",
            "--connection", mode, "--format", "json", "--quiet", "--out", out_dir]


def parse_rollprobe(stdout, secs):
    r = json.loads(stdout)
    t, p = r["totals"], r["probe"]
    return {
        "requests": t["sent"],
        "ok": t["ok"],
        "errors": t["sent"] - t["ok"],
        "p50_ms": r["latency_ms"]["p50"],
        "p99_ms": r["latency_ms"]["p99"],
        "service_p50_ms": r.get("service_ms", {}).get("p50"),
        "service_p99_ms": r.get("service_ms", {}).get("p99"),
        "send_lag_p50_ms": p.get("send_lag_p50_ms"),
        "send_lag_p99_ms": p["send_lag_p99_ms"],
        "send_lag_max_ms": p.get("send_lag_max_ms"),
        "late": p["late"],
        "skipped": p.get("skipped", t.get("skipped", 0)),
        # Which executor sent the requests (older builds do not say).
        "executor": (p.get("executor") or {}).get("name"),
    }


_oha_json_flag = None


def oha_argv(oha, url, mode, rate, secs):
    global _oha_json_flag
    if _oha_json_flag is None:
        help_text = subprocess.run([oha, "--help"], capture_output=True, text=True).stdout
        _oha_json_flag = (["--output-format", "json"] if "--output-format" in help_text
                          else ["--json"])
    argv = [oha, "-z", f"{secs}s", "-q", str(rate), "-c", str(OHA_CONNECTIONS), "--no-tui",
            *_oha_json_flag, url]
    if mode == "fresh":
        argv.insert(1, "--disable-keepalive")
    return argv


def parse_oha(stdout, secs):
    r = json.loads(stdout)
    ok = sum(r.get("statusCodeDistribution", {}).values())
    errors = {k: v for k, v in r.get("errorDistribution", {}).items()}
    # Requests cut off by the end of -z were never answered: not counted.
    counted_errors = sum(v for k, v in errors.items() if "deadline" not in k)
    lat = (r.get("metrics") or {}).get("latency_ms")
    if lat:
        p50, p99 = lat["p50"], lat["p99"]
    else:
        lp = r.get("latencyPercentiles", {})
        p50 = lp.get("p50", 0) * 1000
        p99 = lp.get("p99", 0) * 1000
    return {"requests": ok + counted_errors, "ok": ok, "errors": counted_errors,
            "p50_ms": p50, "p99_ms": p99, "error_kinds": errors}


def hey_argv(hey, url, mode, rate, secs):
    # hey's -q is per worker: 50 workers (hey's and oha's default concurrency)
    # at rate/50 each make `rate` in total.
    argv = [hey, "-z", f"{secs}s", "-c", str(HEY_WORKERS), "-q", f"{rate / HEY_WORKERS:g}", url]
    if mode == "fresh":
        argv.insert(1, "-disable-keepalive")
    return argv


def parse_hey(stdout, secs):
    ok = errors = 0
    section = None
    pct = {}
    for line in stdout.splitlines():
        s = line.strip()
        if s.startswith("Latency distribution"):
            section = "lat"
        elif s.startswith("Status code distribution"):
            section = "status"
        elif s.startswith("Error distribution"):
            section = "error"
        elif s.startswith("Details") or s.startswith("Response time histogram"):
            section = None
        elif section == "lat":
            m = re.match(r"(\d+(?:\.\d+)?)%+ in ([\d.]+) secs", s)
            if m:
                pct[float(m.group(1))] = float(m.group(2)) * 1000
        elif section == "status":
            m = re.match(r"\[(\d+)\]\s+(\d+) responses", s)
            if m:
                ok += int(m.group(2)) if m.group(1).startswith("2") else 0
                errors += 0 if m.group(1).startswith("2") else int(m.group(2))
        elif section == "error":
            m = re.match(r"\[(\d+)\]\s+(.*)", s)
            if m:
                errors += int(m.group(1))
    return {"requests": ok + errors, "ok": ok, "errors": errors,
            "p50_ms": pct.get(50.0), "p99_ms": pct.get(99.0)}


def wrk_argv(wrk, url, mode, secs):
    # Closed loop: 50 connections each send as soon as the last answer came; fresh
    # mode asks the server to close every connection after its answer.
    argv = [wrk, "-t1", f"-c{OHA_CONNECTIONS}", f"-d{secs}s", "--latency", url]
    if mode == "fresh":
        argv[1:1] = ["-H", "Connection: close"]
    return argv


def parse_wrk(stdout, secs):
    m = re.search(r"Requests/sec:\s+([\d.]+)", stdout)
    if not m:
        raise ValueError("no Requests/sec line in wrk's output")
    n = round(float(m.group(1)) * secs)
    errors = 0
    for e in re.finditer(r"Non-2xx or 3xx responses:\s+(\d+)", stdout):
        errors += int(e.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     stdout)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    lat = {}
    for pm in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", stdout, re.M):
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[pm.group(3)]
        lat[pm.group(1)] = float(pm.group(2)) * scale
    return {"requests": n, "ok": n - errors, "errors": errors,
            "p50_ms": lat.get("50"), "p99_ms": lat.get("99")}


class Bench:
    def __init__(self, args, run_dir, binary, oha, hey, nginx):
        self.args, self.run_dir = args, run_dir
        self.binary, self.oha, self.hey, self.nginx = binary, oha, hey, nginx
        self.url = f"http://127.0.0.1:{args.port}/"
        _, self.load_cpu = cpu_plan()
        self.count = 0

    def run(self, tool, mode, rate, secs, tag="matrix", rss_every=None):
        self.count += 1
        name = f"{self.count:03d}-{tag}-{tool}-{mode}-{rate}"
        prefix = os.path.join(self.run_dir, "runs", name)
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        env = None
        if tool == "rollprobe":
            argv = rollprobe_argv(self.binary, self.url, mode, rate, secs, prefix + ".out")
        elif tool == "rollprobe-tokio":
            argv = rollprobe_argv(self.binary, self.url, mode, rate, secs, prefix + ".out")
            env = dict(os.environ, ROLLPROBE_EXECUTOR="tokio")
        elif tool == "candidate":
            argv = rollprobe_argv(self.args.candidate, self.url, mode, rate, secs, prefix + ".out")
        elif tool == "oha":
            argv = oha_argv(self.oha, self.url, mode, rate, secs)
        elif tool == "wrk":
            argv = wrk_argv(self.wrk, self.url, mode, secs)
        else:
            argv = hey_argv(self.hey, self.url, mode, rate, secs)
        nginx_before = self.nginx.cpu_seconds()
        code, stdout, cpu, rss, wall, series = run_measured(
            pinned(self.load_cpu, argv), prefix, timeout=secs + 60, rss_every=rss_every,
            env=env)
        nginx_cpu = self.nginx.cpu_seconds() - nginx_before
        row = {"tool": tool, "mode": mode, "rate": rate, "secs": secs, "tag": tag,
               "exit": code, "cpu_s": cpu, "peak_rss_kib": rss, "wall_s": wall,
               "context_switches": run_measured.last_switches,
               "nginx_cpu_s": nginx_cpu, "argv": argv, "log": prefix,
               "env": {"ROLLPROBE_EXECUTOR": "tokio"} if env else {}}
        if series:
            row["rss_series"] = series
        try:
            parser = {"rollprobe": parse_rollprobe, "rollprobe-tokio": parse_rollprobe,
                      "candidate": parse_rollprobe,
                      "oha": parse_oha, "hey": parse_hey, "wrk": parse_wrk}[tool]
            row.update(parser(stdout, secs))
        except (ValueError, KeyError, TypeError) as e:
            row["parse_error"] = str(e)
            row["requests"] = 0
        n = row.get("requests") or 0
        row["achieved_rps"] = n / secs
        row["cpu_s_per_1k"] = cpu / n * 1000 if n else None
        # Each time a thread sleeps (and is woken) or is preempted: wake-ups per request.
        row["switches_per_req"] = row["context_switches"] / n if n else None
        if tool in ROLLPROBES and code not in (0, 1):
            row["parse_error"] = row.get("parse_error", f"exit {code}")
        # samples.csv of long runs is not needed once parsed
        shutil.rmtree(prefix + ".out", ignore_errors=True)
        log(f"{tool:9s} {mode:9s} {rate:>6} req/s: {n} req, cpu {cpu:.2f} s "
            f"({fmt(row['cpu_s_per_1k'], 4)} s/1k), rss {rss / 1024:.1f} MiB"
            + (f", lag p99 {row.get('send_lag_p99_ms')} ms late {row.get('late')}"
               if tool in ROLLPROBES else "")
            + (f"  [{row['parse_error']}]" if "parse_error" in row else ""))
        return row


ROLLPROBES = ("rollprobe", "rollprobe-tokio", "candidate")


def fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ------------------------------------------------------------------ phases

def secs_for(rate, args):
    """Runs at low rates last longer: a process's start-up CPU is fixed."""
    return max(args.duration, 10) if rate < 100 else args.duration


def matrix(bench, args):
    rows = []
    for mode in args.modes:
        for rate in args.rates:
            for rep in range(args.reps):
                for tool in args.tools:
                    r = bench.run(tool, mode, rate, secs_for(rate, args))
                    r["rep"] = rep
                    rows.append(r)
    return rows


def summarize(rows, tools):
    """One line per (mode, rate, tool): medians over the repetitions."""
    lines = []
    keys = []
    for r in rows:
        k = (r["mode"], r["rate"], r["tool"])
        if k not in keys:
            keys.append(k)
    for mode, rate, tool in keys:
        rs = [r for r in rows if (r["mode"], r["rate"], r["tool"]) == (mode, rate, tool)]
        cpus = [r["cpu_s_per_1k"] for r in rs if r["cpu_s_per_1k"] is not None]
        executors = sorted({r["executor"] for r in rs if r.get("executor")})
        label = f"{tool} ({', '.join(executors)})" if executors else tool
        lines.append({
            "mode": mode, "rate": rate, "tool": label, "n": len(rs),
            "achieved": median([r["achieved_rps"] for r in rs]),
            "cpu_1k": median(cpus),
            "cpu_1k_min": min(cpus) if cpus else None,
            "cpu_1k_max": max(cpus) if cpus else None,
            "cpu_core_pct": median([r["cpu_s"] / r["secs"] * 100 for r in rs]),
            "rss_mib": median([r["peak_rss_kib"] / 1024 for r in rs]),
            "p50": median([r.get("p50_ms") for r in rs]),
            "p99": median([r.get("p99_ms") for r in rs]),
            "lag_p99": median([r.get("send_lag_p99_ms") for r in rs]),
            "late": median([r.get("late") for r in rs]),
            "errors": median([r.get("errors") for r in rs]),
            "switches": median([r.get("switches_per_req") for r in rs]),
        })
    return lines


def ratios(rows, num="rollprobe", den="oha"):
    out = {}
    for mode in sorted({r["mode"] for r in rows}):
        for rate in sorted({r["rate"] for r in rows if r["mode"] == mode}):
            a = [r for r in rows if (r["mode"], r["rate"], r["tool"]) == (mode, rate, num)]
            b = [r for r in rows if (r["mode"], r["rate"], r["tool"]) == (mode, rate, den)]
            pairs = [x["cpu_s_per_1k"] / y["cpu_s_per_1k"] for x, y in zip(a, b)
                     if x["cpu_s_per_1k"] and y["cpu_s_per_1k"]]
            if pairs:
                out[(mode, rate)] = (statistics.median(pairs), pairs)
    return out


def table_md(lines):
    head = ("| mode | rate asked | tool | achieved req/s | CPU s / 1000 req (median [min-max]) "
            "| CPU % of a core | peak RSS MiB | latency p50 ms | latency p99 ms "
            "| send-lag p99 ms | late | errors | context switches / req |")
    out = [head, "|" + "---|" * 13]
    for x in lines:
        out.append(
            f"| {x['mode']} | {x['rate']} | {x['tool']} | {fmt(x['achieved'], 0)} "
            f"| {fmt(x['cpu_1k'], 4)} [{fmt(x['cpu_1k_min'], 4)}-{fmt(x['cpu_1k_max'], 4)}] "
            f"| {fmt(x['cpu_core_pct'], 1)} | {fmt(x['rss_mib'], 1)} | {fmt(x['p50'], 3)} "
            f"| {fmt(x['p99'], 3)} | {fmt(x['lag_p99'], 3)} | {fmt(x['late'], 0)} "
            f"| {fmt(x['errors'], 0)} | {fmt(x['switches'], 2)} |")
    return "\n".join(out)


LAG_BOUND_MS = 1.0  # a clean rate keeps send-lag p99 under this (issue 26: 1 ms)


def clean(r, asked):
    """A run is clean when it sent at least 99% of the asked requests (none shed or
    skipped for being behind), its send-lag p99 is under LAG_BOUND_MS and under 1%
    of its requests failed."""
    sent = r.get("requests") or 0
    lag = r.get("send_lag_p99_ms")
    r["sent_frac"] = sent / asked if asked else 0.0
    r["fail_frac"] = (r.get("errors") or 0) / sent if sent else 1.0
    r["clean"] = (r["sent_frac"] >= 0.99 and lag is not None and lag < LAG_BOUND_MS
                  and r["fail_frac"] < 0.01 and "parse_error" not in r)
    return r["clean"]


def search(bench, args, mode):
    """rollprobe's highest clean rate in `mode`: doubling, then bisecting to 5%."""
    budget_end = time.monotonic() + args.search_budget
    trials = []

    def good(rate):
        r = bench.run("rollprobe", mode, rate, args.search_secs, tag="search")
        ok = clean(r, rate * args.search_secs)
        trials.append(r)
        log(f"search {mode}: {rate} req/s -> sent {r['sent_frac'] * 100:.1f}%, lag p99 "
            f"{r.get('send_lag_p99_ms')} ms, failed {r['fail_frac'] * 100:.2f}%, cpu "
            f"{r['cpu_s'] / r['secs'] * 100:.0f}% of a core: {'clean' if ok else 'NOT clean'}")
        return ok

    def time_left():
        return budget_end - time.monotonic() > args.search_secs + 3

    lo, hi = None, None
    rate = args.search_start
    while time_left() and rate <= args.search_max:
        if good(rate):
            lo = rate
            rate *= 2
        else:
            hi = rate
            break
    if lo is None and hi is not None:
        lo = 0  # even the start rate failed: bisect downwards from it
    while lo is not None and hi is not None and hi - lo > max(50, lo * 0.05) and time_left():
        mid = int(round((lo + hi) / 2 / 50) * 50) or (lo + hi) // 2
        if mid in (lo, hi):
            break
        if good(mid):
            lo = mid
        else:
            hi = mid
    return {"mode": mode, "clean": lo, "first_unclean": hi, "trials": trials,
            "bounded_by": "time budget" if not time_left() else
            ("the search maximum" if hi is None else "converged")}


def reconcile(bench, args):
    """The same command measured twice: as the matrix measures it (wait4() of the
    child) and by a plain `/usr/bin/time`, for rollprobe and oha at 5000 req/s."""
    if not os.access("/usr/bin/time", os.X_OK):
        apt_install("time")
    rows = []
    for tool in [t for t in ("rollprobe", "oha") if t in args.tools]:
        r = bench.run(tool, "keepalive", 5000, args.duration, tag="reconcile")
        argv = list(r["argv"])
        if tool == "rollprobe":
            out = os.path.join(bench.run_dir, "runs", "reconcile-time.out")
            argv[argv.index("--out") + 1] = out
        times = os.path.join(bench.run_dir, "runs", f"reconcile-{tool}.time")
        timed = ["/usr/bin/time", "-f", "%U %S", "-o", times] + pinned(bench.load_cpu, argv)
        proc = subprocess.run(timed, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, preexec_fn=raise_nofile,
                              timeout=args.duration + 60, text=True)
        if tool == "rollprobe":
            shutil.rmtree(out, ignore_errors=True)
        with open(times) as f:
            user, sys_ = (float(x) for x in f.read().split()[-2:])
        parsed = {"rollprobe": parse_rollprobe, "oha": parse_oha}[tool](
            proc.stdout, args.duration)
        n = parsed.get("requests") or 0
        row = {"tool": tool, "wait4_cpu_s": r["cpu_s"], "wait4_requests": r["requests"],
               "wait4_cpu_s_per_1k": r["cpu_s_per_1k"], "time_cpu_s": user + sys_,
               "time_requests": n,
               "time_cpu_s_per_1k": (user + sys_) / n * 1000 if n else None,
               "time_argv": timed}
        log(f"reconcile {tool}: wait4 {fmt(row['wait4_cpu_s_per_1k'], 4)} s/1k, "
            f"/usr/bin/time {fmt(row['time_cpu_s_per_1k'], 4)} s/1k")
        rows.append(row)
    return rows


IDLE_RATE = 10
IDLE_SHORT_S, IDLE_LONG_S = 5, 15


def idle(bench, args):
    """What a prober left running at 10 req/s costs once it runs: the CPU of a long run
    minus that of a short one, over the difference in time, so that start-up and the
    report written at the end cancel out (the matrix's 10 req/s cells include them)."""
    rows = []
    tools = [t for t in ("rollprobe", "rollprobe-tokio", "oha", "hey") if t in args.tools]
    for mode in args.modes:
        for rnd in range(args.reps):
            for tool in tools:
                short = bench.run(tool, mode, IDLE_RATE, IDLE_SHORT_S, tag="idle")
                long_ = bench.run(tool, mode, IDLE_RATE, IDLE_LONG_S, tag="idle")
                steady = (long_["cpu_s"] - short["cpu_s"]) / (IDLE_LONG_S - IDLE_SHORT_S)
                row = {"tool": tool, "mode": mode, "round": rnd,
                       "short_cpu_s": short["cpu_s"], "long_cpu_s": long_["cpu_s"],
                       "executor": long_.get("executor"),
                       "steady_pct_of_core": steady * 100}
                log(f"idle {tool:9s} {mode:9s}: {IDLE_SHORT_S} s {short['cpu_s'] * 1000:.1f} ms, "
                    f"{IDLE_LONG_S} s {long_['cpu_s'] * 1000:.1f} ms: "
                    f"{row['steady_pct_of_core']:.3f} % of a core")
                rows.append(row)
    return rows


def wrk_max(bench, args):
    """wrk's closed-loop maximum per mode, for scale (it has no schedule to keep)."""
    return [bench.run("wrk", mode, 0, args.search_secs, tag="wrk") for mode in args.modes]


def write_run(run_dir, n):
    """A run folder as `rollprobe run --out` leaves it (run.json, samples.csv): n rows
    at 1000 req/s, two versions, a 500-request outage every 100,000."""
    os.makedirs(run_dir, exist_ok=True)
    run_id = "0f3a9c2b7d"
    record = {"schema": "rollprobe.samples/v1", "label": "bench-1m",
              "target": "http://127.0.0.1:18080/",
              "config": {"rate": 1000.0, "connection": "fresh", "timeout_ms": 5000,
                         "connect_timeout_ms": 5000, "max_in_flight": 10016,
                         "expect_status": "200-299", "version_from": "body", "method": "GET",
                         "pod_from": ""},
              "started_at": "2026-01-01T00:00:00.000Z", "run_id": run_id,
              "streams": ["local-fresh"],
              "ended_at": end_of(n), "duration_ms": float(n),
              "interrupted": False}
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        json.dump(record, f, indent=2)
    refused = "client error (Connect): tcp connect error: Connection refused (os error 111)"
    path = os.path.join(run_dir, "samples.csv")
    with open(path, "w") as f:
        f.write("stream,seq,intended_ms,sent_ms,wall_time,outcome,errno,errno_name,status,"
                "version,pod,request_id,connect_ms,syn_retransmits,ttfb_ms,total_ms,"
                "connection,error\n")
        rows = []
        for seq in range(n):
            # t0 + seq ms; runs of up to a day need no date arithmetic
            s_, ms_ = divmod(seq, 1000)
            m_, s_ = divmod(s_, 60)
            h_, m_ = divmod(m_, 60)
            wall = f"2026-01-01T{h_:02d}:{m_:02d}:{s_:02d}.{ms_:03d}Z"
            phase = seq % 100_000
            version = "v2" if seq > n // 2 else "v1"
            rid = f"{run_id}-local-fresh-{seq}"
            if 50_000 <= phase < 50_500:
                rows.append(f"local-fresh,{seq},{seq},{seq}.021,{wall},connection_refused,111,"
                            f"ECONNREFUSED,,,,{rid},,0,,0.09,new,{refused}\n")
            else:
                rows.append(f"local-fresh,{seq},{seq},{seq}.021,{wall},ok,,,200,{version},,"
                            f"{rid},0.081,0,0.152,{TOTALS[seq % 13]},new,\n")
            if len(rows) >= 10_000:
                f.write("".join(rows))
                rows.clear()
        f.write("".join(rows))
    return path


TOTALS = [f"{0.163 + i * 0.017:.3f}" for i in range(13)]


def end_of(n):
    """The wall-clock end of a synthetic run of n rows at 1000 req/s from midnight."""
    s_, ms_ = divmod(n, 1000)
    m_, s_ = divmod(s_, 60)
    h_, m_ = divmod(m_, 60)
    return f"2026-01-01T{h_:02d}:{m_:02d}:{s_:02d}.{ms_:03d}Z"


def report_1m(bench, args):
    run_dir = os.path.join(bench.run_dir, "run-1m")
    log(f"writing {args.report_rows} rows to {run_dir}")
    path = write_run(run_dir, args.report_rows)
    os.makedirs(os.path.join(bench.run_dir, "runs"), exist_ok=True)
    results = []
    for i in range(3):
        out = os.path.join(bench.run_dir, "runs", f"report-{i}.out")
        argv = [bench.binary, "report", run_dir, "--format", "json", "--out", out]
        code, stdout, cpu, rss, wall, _ = run_measured(
            pinned(bench.load_cpu, argv), os.path.join(bench.run_dir, "runs", f"report-{i}"),
            timeout=120)
        outputs = sorted(os.listdir(out)) if os.path.isdir(out) else []
        html = os.path.join(out, "report.html")
        html_bytes = os.path.getsize(html) if os.path.isfile(html) else None
        shutil.rmtree(out, ignore_errors=True)
        sent = None
        try:
            sent = json.loads(stdout)["totals"]["sent"]
        except (ValueError, KeyError):
            pass
        results.append({"exit": code, "wall_s": wall, "cpu_s": cpu,
                        "peak_rss_kib": rss, "sent": sent, "outputs": outputs,
                        "html_bytes": html_bytes})
        log(f"rollprobe report {args.report_rows} rows: {wall:.2f} s wall, {cpu:.2f} s cpu, "
            f"{rss / 1024:.0f} MiB, sent={sent}, report.html {html_bytes} bytes, exit {code}")
    shutil.rmtree(run_dir, ignore_errors=True)
    return results


def memory_run(bench, args):
    secs = args.memory_run
    log(f"memory run: rollprobe {args.memory_mode} 1000 req/s for {secs} s")
    r = bench.run("rollprobe", args.memory_mode, 1000, secs, tag="memory",
                  rss_every=args.rss_every)
    return r


# -------------------------------------------------------------------- main

def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model,
            "kernel": os.uname().release,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="10,1000,2000,5000,10000",
                    help="matrix rates (default 10,1000,2000,5000,10000)")
    ap.add_argument("--modes", default="keepalive,fresh")
    ap.add_argument("--tools", default="rollprobe,rollprobe-tokio,oha,hey")
    ap.add_argument("--reps", type=int, default=2, help="A B C rounds per cell (default 2)")
    ap.add_argument("--duration", type=int, default=5,
                    help="seconds per run (default 5; at least 10 under 100 req/s)")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--out", help="results folder")
    ap.add_argument("--no-build", action="store_true", help="use the built release binary")
    ap.add_argument("--skip", default="",
                    help="comma list of phases to skip: matrix,reconcile,idle,search,wrk,report")
    ap.add_argument("--search-start", type=int, default=2500)
    ap.add_argument("--search-max", type=int, default=80000)
    ap.add_argument("--search-secs", type=int, default=3, help="seconds per search trial")
    ap.add_argument("--search-budget", type=int, default=60,
                    help="seconds for the search of each mode (default 60)")
    ap.add_argument("--report-rows", type=int, default=1_000_000)
    ap.add_argument("--memory-run", type=int, metavar="SECONDS",
                    help="only the memory run: rollprobe at 1000 req/s for SECONDS (600 = 10 min)")
    ap.add_argument("--memory-mode", default="fresh", choices=["fresh", "keepalive"])
    ap.add_argument("--rss-every", type=float, default=5.0)
    ap.add_argument("--nice", type=int, default=-10,
                    help="niceness of nginx and every measured tool (default -10 when root, so "
                         "that other work on a shared machine disturbs them less; 0 to keep)")
    ap.add_argument("--candidate", metavar="BINARY",
                    help="another rollprobe build (e.g. with a fix) run as a fourth tool "
                         "'candidate' in the same A B C D rounds")
    args = ap.parse_args()
    global NICE
    NICE = args.nice if os.geteuid() == 0 else max(args.nice, 0)
    args.rates = [int(x) for x in args.rates.split(",") if x]
    args.modes = [x for x in args.modes.split(",") if x]
    args.tools = [x for x in args.tools.split(",") if x]
    skip = set(x for x in args.skip.split(",") if x)
    if args.candidate:
        args.candidate = os.path.abspath(args.candidate)
        args.tools.append("candidate")
    if args.memory_run:
        args.tools = ["rollprobe"]

    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = os.path.abspath(args.out or os.path.join(target_dir(), "bench-load", stamp))
    os.makedirs(run_dir, exist_ok=True)
    skip_wrk = "wrk" in skip or args.memory_run
    nginx_bin, oha = ensure_tools(args.tools + ([] if skip_wrk else ["wrk"]))
    hey = shutil.which("hey")
    binary = build_rollprobe(args.no_build)
    info = machine()
    info["command"] = "python3 benches/load.py " + " ".join(sys.argv[1:])
    info["versions"] = {"rollprobe": tool_version([binary, "--version"]),
                        "oha": tool_version([oha, "--version"]) if oha else None,
                        "nginx": tool_version([nginx_bin, "-v"])}
    nginx_cpu, load_cpu = cpu_plan()
    info["pinning"] = (f"nginx on CPU {nginx_cpu}, load generator on CPU {load_cpu}"
                       if nginx_cpu else "not pinned (one CPU)") + f", nice {NICE}"

    log(f"results in {run_dir}; {info['pinning']}")
    nginx = Nginx(nginx_bin, run_dir, args.port, nginx_cpu)
    bench = Bench(args, run_dir, binary, oha, hey, nginx)
    bench.wrk = shutil.which("wrk")
    started = time.monotonic()
    results = {"machine": info, "args": vars(args)}

    def save():
        with open(os.path.join(run_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=1, default=str)

    try:
        if args.memory_run:
            r = memory_run(bench, args)
            results["memory"] = r
            save()
            series = r.get("rss_series", [])
            print(f"memory run: {r['mode']} 1000 req/s for {r['secs']} s: "
                  f"{r['requests']} requests, peak RSS {r['peak_rss_kib'] / 1024:.1f} MiB, "
                  f"cpu {r['cpu_s']:.1f} s ({fmt(r['cpu_s_per_1k'], 4)} s/1k), "
                  f"send-lag p99 {r.get('send_lag_p99_ms')} ms, late {r.get('late')}")
            print("RSS over time (s: MiB): " + ", ".join(
                f"{t:.0f}: {k / 1024:.1f}" for t, k in series[:: max(1, len(series) // 20)]))
            return
        if "matrix" not in skip:
            rows = matrix(bench, args)
            results["matrix"] = rows
            save()
        if "reconcile" not in skip:
            results["reconcile"] = reconcile(bench, args)
            save()
        if "idle" not in skip:
            results["idle"] = idle(bench, args)
            save()
        if "search" not in skip:
            results["search"] = [search(bench, args, mode) for mode in args.modes]
            save()
        if not skip_wrk:
            results["wrk"] = wrk_max(bench, args)
            save()
        if "report" not in skip:
            results["report"] = report_1m(bench, args)
            save()
    finally:
        nginx.stop()
        results["elapsed_s"] = time.monotonic() - started
        save()

    md = [f"date {info['date']}, nproc {info['nproc']}, CPU {info['cpu_model']}, "
          f"kernel {info['kernel']}; {info['pinning']}",
          f"command: `{info['command']}`", ""]
    if "matrix" in results:
        md += ["### Matrix (medians over the A B C rounds)", "",
               table_md(summarize(results["matrix"], args.tools)), "",
               "late: ticks that rollprobe sent more than 1 ms after their due time "
               "(its report's `probe.late`); send lag: actual send - due time.", ""]
        rat = ratios(results["matrix"])
        md += ["### CPU per request, rollprobe / oha (median of the pairs)", "",
               "| mode | rate | median ratio | pairs |", "|---|---|---|---|"]
        for (mode, rate), (m, pairs) in rat.items():
            md.append(f"| {mode} | {rate} | {m:.2f} | {', '.join(f'{p:.2f}' for p in pairs)} |")
        if "rollprobe-tokio" in args.tools:
            md += ["", "rollprobe-tokio / oha: " + "; ".join(
                f"{mode} {rate}: {m:.2f}" for (mode, rate), (m, _) in
                ratios(results["matrix"], num="rollprobe-tokio").items()),
                "", "rollprobe / rollprobe-tokio: " + "; ".join(
                f"{mode} {rate}: {m:.2f}" for (mode, rate), (m, _) in
                ratios(results["matrix"], den="rollprobe-tokio").items())]
        if "candidate" in args.tools:
            md += ["", "candidate / rollprobe: " + "; ".join(
                f"{mode} {rate}: {m:.2f}" for (mode, rate), (m, _) in
                ratios(results["matrix"], num="candidate", den="rollprobe").items())]
        if "hey" in args.tools:
            md += ["", "rollprobe / hey: " + "; ".join(
                f"{mode} {rate}: {m:.2f}" for (mode, rate), (m, _) in
                ratios(results["matrix"], den="hey").items())]
        md.append("")
    if results.get("reconcile"):
        md += ["### The same command, measured twice (keepalive, 5000 req/s)", "",
               "| tool | wait4() as the matrix: CPU s / 1000 req | plain /usr/bin/time: "
               "CPU s / 1000 req |", "|---|---|---|"]
        for x in results["reconcile"]:
            md.append(f"| {x['tool']} | {fmt(x['wait4_cpu_s_per_1k'], 4)} "
                      f"| {fmt(x['time_cpu_s_per_1k'], 4)} |")
        md.append("")
    if results.get("idle"):
        md += [f"### Idle: {IDLE_RATE} req/s once running ({IDLE_LONG_S} s run minus "
               f"{IDLE_SHORT_S} s run)", "",
               "| mode | tool | CPU % of a core (median [min-max]) |", "|---|---|---|"]
        for mode in args.modes:
            for tool in dict.fromkeys(x["tool"] for x in results["idle"]):
                pct = [x["steady_pct_of_core"] for x in results["idle"]
                       if x["tool"] == tool and x["mode"] == mode]
                if pct:
                    md.append(f"| {mode} | {tool} | {median(pct):.3f} "
                              f"[{min(pct):.3f}-{max(pct):.3f}] |")
        md.append("")
    if "search" in results:
        md += ["### Highest clean rate (rollprobe)", "",
               f"clean: at least 99% of the asked requests sent, send-lag p99 under "
               f"{LAG_BOUND_MS:g} ms, under 1% failed; trials of {args.search_secs} s "
               f"(a machine's other work makes this noisy at the margin)", ""]
        for srch in results["search"]:
            md += [f"{srch['mode']}: **{srch['clean']} req/s** clean; first unclean: "
                   f"{srch['first_unclean']} ({srch['bounded_by']})", "",
                   "| rate | sent % | failed % | CPU % of a core | send-lag p99 ms | late "
                   "| clean? |", "|---|---|---|---|---|---|---|"]
            for t in srch["trials"]:
                md.append(f"| {t['rate']} | {t['sent_frac'] * 100:.1f} "
                          f"| {t['fail_frac'] * 100:.2f} | {t['cpu_s'] / t['secs'] * 100:.0f} "
                          f"| {fmt(t.get('send_lag_p99_ms'), 3)} | {fmt(t.get('late'), 0)} "
                          f"| {'yes' if t['clean'] else 'no'} |")
            md.append("")
    if "wrk" in results:
        md += ["### wrk's closed-loop maximum (for scale)", "",
               "| mode | req/s | CPU % of a core | CPU s / 1000 req | latency p50 ms "
               "| latency p99 ms | errors |", "|---|---|---|---|---|---|---|"]
        for w in results["wrk"]:
            md.append(f"| {w['mode']} | {fmt(w['achieved_rps'], 0)} "
                      f"| {w['cpu_s'] / w['secs'] * 100:.0f} | {fmt(w['cpu_s_per_1k'], 4)} "
                      f"| {fmt(w.get('p50_ms'), 3)} | {fmt(w.get('p99_ms'), 3)} "
                      f"| {fmt(w.get('errors'), 0)} |")
        md.append("")
    if "report" in results:
        rs = results["report"]
        md += [f"### rollprobe report on {args.report_rows} rows", "",
               "wall s: " + ", ".join(f"{r['wall_s']:.2f}" for r in rs)
               + "; CPU s: " + ", ".join(f"{r['cpu_s']:.2f}" for r in rs)
               + "; peak RSS MiB: " + ", ".join(f"{r['peak_rss_kib'] / 1024:.0f}" for r in rs)
               + f"; rows read back: {rs[0]['sent']}; outputs: {', '.join(rs[0]['outputs'])}"
               + f"; report.html {rs[0]['html_bytes']} bytes",
               ""]
    md += [f"load.py took {results['elapsed_s'] / 60:.1f} min (without the build and the "
           "installs).", ""]
    text = "\n".join(md)
    with open(os.path.join(run_dir, "table.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    log(f"wrote {run_dir}/table.md and results.json")


if __name__ == "__main__":
    main()
