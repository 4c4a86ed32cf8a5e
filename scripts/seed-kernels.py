#!/usr/bin/env python3
"""The seed's five cases in the lab, at the curl loop's rate and at rollprobe's, on stock
and tuned kernel settings: one table of what a client sees (docs/kernels.md).

Needs root (the lab builds network namespaces and iptables rules) and a built binary
(`cargo build -p probe-cli`). Runs the lab once per row, one run at a time, because runs
at the same time would share the machine's CPUs and blur each other's timings. Python 3
standard library only.

    sudo scripts/seed-kernels.py                       # all 20 runs, ~12 minutes
    sudo scripts/seed-kernels.py --rates 50 --cases recreate,rolling
    scripts/seed-kernels.py --table-only   # re-print a finished table

Why these timings: every run probes 2 s before the change (`--warmup 2s`) and 5 s after
the rollout completes (`--settle 5s`). The seed's Recreate withdraws the LoadBalancer
address for ~5.5 s (old pods gone until the new ones run) and announces it again before
the rollout completes, so "No route to host" can only appear inside the rollout itself:
a longer settle would not show it later, it would only add requests that succeed.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The change each case needs (examples/seed/README.md).
CASES = {
    "recreate": ["--set-image", "backend-deployment=shop/backend:v2"],
    "rolling": ["--set-image", "backend-deployment=shop/backend:v2"],
    "surge": ["--set-image", "backend-deployment=shop/backend:v2"],
    "readiness": ["--set-image", "backend-deployment=shop/backend:v2"],
    "bluegreen": ["--set-selector", "backend-svc:version=v2"],
}

# Short names for the table; anything else is shown under "other".
KINDS = [
    ("connection_refused", "refused"),
    ("connect_timeout", "timeout"),
    ("host_unreachable", "unreach"),
]


def run_dir(out, case, rate, kernel):
    return out / f"{case}-r{rate:g}-{kernel}"


def run_lab(args, case, rate, kernel):
    d = run_dir(args.out, case, rate, kernel)
    cmd = [
        str(args.bin), "lab",
        "-f", str(ROOT / "examples" / "seed" / f"{case}.yaml"),
        *CASES[case],
        "--rate", f"{rate:g}",
        "--kernel", kernel,
        "--warmup", args.warmup,
        "--settle", args.settle,
        "--label", f"{case} {rate:g}/s {kernel}",
        "--quiet", "--format", "json",
        "--out", str(d),
    ]
    started = time.monotonic()
    # report.json also lands in --out; stdout is kept only so it does not flood the terminal.
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.monotonic() - started
    (d / "seed-kernels.json").parent.mkdir(parents=True, exist_ok=True)
    (d / "seed-kernels.json").write_text(
        json.dumps({"command": cmd, "exit": p.returncode, "seconds": round(took, 1)})
    )
    # Exit 1 only means a --max-* gate failed (none is set); anything else is a broken run.
    if p.returncode not in (0, 1):
        print(f"{case} {rate:g}/s {kernel}: rollprobe exited {p.returncode}: "
              f"{p.stderr.strip()}", file=sys.stderr)
    return took


def first_ms(samples, outcome, trigger_ms):
    """When the first answer of `outcome` came back, in ms after trigger_start."""
    best = None
    for r in samples:
        if r["outcome"] != outcome:
            continue
        at = float(r["sent_ms"] or r["intended_ms"]) + float(r["total_ms"] or 0)
        best = at if best is None else min(best, at)
    return None if best is None else best - trigger_ms


def row(args, case, rate, kernel):
    d = run_dir(args.out, case, rate, kernel)
    meta_path = d / "seed-kernels.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    report_path = d / "report.json"
    if not report_path.exists():
        return [case, f"{rate:g}", kernel, "no report"] + [""] * (len(HEADER) - 4)
    r = json.loads(report_path.read_text())
    with open(d / "samples.csv", newline="") as f:
        samples = list(csv.DictReader(f))
    trigger = next(
        (e["at_ms"] for e in r["events"] if e["kind"] == "trigger_start"), 0.0
    )
    failures = dict(r.get("failures") or {})
    shown = [failures.pop(k, 0) for k, _ in KINDS]
    other = ",".join(f"{k}={v}" for k, v in sorted(failures.items())) or "0"
    unreach = first_ms(samples, "host_unreachable", trigger)
    timeout = first_ms(samples, "connect_timeout", trigger)
    totals = r["totals"]
    return [
        case,
        f"{rate:g}",
        r.get("lab", {}).get("kernel", kernel),
        str(totals["sent"]),
        str(totals["failed"]),
        *(str(n) for n in shown),
        other,
        f"{r['downtime']['total_ms'] / 1000:.1f}",
        "-" if unreach is None else f"+{unreach:.0f}",
        "-" if timeout is None else f"+{timeout:.0f}",
        str(totals.get("syn_retransmitted", "")),
        f"{meta.get('seconds', 0):.0f}",
    ]


HEADER = [
    "case", "rate", "kernel", "sent", "failed",
    *(short for _, short in KINDS), "other",
    "down_s", "first_unreach_ms", "first_timeout_ms", "syn_retx", "run_s",
]


def print_table(rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    print(line(HEADER))
    for r in rows:
        print(line(r))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", type=Path, default=ROOT / "target" / "debug" / "rollprobe",
                    help="the rollprobe binary [target/debug/rollprobe]")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "seed-kernels",
                    help="one run folder per row goes here [target/seed-kernels]")
    ap.add_argument("--cases", default=",".join(CASES),
                    help="comma-separated cases from examples/seed [all five]")
    ap.add_argument("--rates", default="1,50", help="requests per second [1,50]")
    ap.add_argument("--kernels", default="stock,tuned", help="lab kernel settings [stock,tuned]")
    ap.add_argument("--warmup", default="2s", help="probing before the change [2s]")
    ap.add_argument("--settle", default="5s", help="probing after the rollout [5s]")
    ap.add_argument("--table-only", action="store_true",
                    help="do not run the lab; print the table of the runs already in --out")
    args = ap.parse_args()

    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case {', '.join(unknown)}: use {', '.join(CASES)}")
    rates = [float(x) for x in args.rates.split(",") if x]
    kernels = [k for k in args.kernels.split(",") if k]
    plan = [(c, r, k) for r in rates for k in kernels for c in cases]

    if not args.table_only:
        if os.geteuid() != 0:
            sys.exit("seed-kernels: the lab needs root: run it with sudo")
        if not args.bin.exists():
            sys.exit(f"seed-kernels: no {args.bin}: run `cargo build -p probe-cli` first")
        # ip and iptables live in sbin, which sudo's or a container's PATH may leave out.
        os.environ["PATH"] += ":/usr/local/sbin:/usr/sbin:/sbin"
        args.out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        for i, (c, r, k) in enumerate(plan, 1):
            print(f"[{i}/{len(plan)}] {c} {r:g}/s {k} ...", file=sys.stderr, flush=True)
            took = run_lab(args, c, r, k)
            print(f"[{i}/{len(plan)}] {c} {r:g}/s {k}: {took:.0f} s", file=sys.stderr, flush=True)
        print(f"seed-kernels: {len(plan)} runs in {time.monotonic() - started:.0f} s",
              file=sys.stderr)

    print_table([row(args, c, r, k) for (c, r, k) in plan])


if __name__ == "__main__":
    main()
