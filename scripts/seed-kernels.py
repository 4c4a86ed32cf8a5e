#!/usr/bin/env python3
"""The seed's five cases in the lab, at the curl loop's rate and at rollprobe's, on stock
and tuned kernel settings: one table of what a client sees (docs/kernels.md).

Needs root (the lab builds network namespaces and iptables rules) and a built binary
(`cargo build -p probe-cli`). Runs the lab once per row, one run at a time, because runs
at the same time would share the machine's CPUs and blur each other's timings. Python 3
standard library only; scripts/seedlab.py holds what it shares with scripts/paths.py.

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
from pathlib import Path

from seedlab import (
    CASES, add_run_args, first_ms, print_table, read_run, run_lab, run_plan, trigger_ms,
)

SEED_CASES = ["recreate", "rolling", "surge", "readiness", "bluegreen"]
META = "seed-kernels.json"

# Short names for the table; anything else is shown under "other".
KINDS = [
    ("connection_refused", "refused"),
    ("connect_timeout", "timeout"),
    ("host_unreachable", "unreach"),
]

HEADER = [
    "case", "rate", "kernel", "sent", "failed",
    *(short for _, short in KINDS), "other",
    "down_s", "first_unreach_ms", "first_timeout_ms", "syn_retx", "run_s",
]


def run_dir(out, case, rate, kernel):
    return out / f"{case}-r{rate:g}-{kernel}"


def row(args, case, rate, kernel):
    run = read_run(run_dir(args.out, case, rate, kernel), META)
    if run is None:
        return [case, f"{rate:g}", kernel, "no report"] + [""] * (len(HEADER) - 4)
    r, samples, meta = run
    trigger = trigger_ms(r)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_args(ap, "seed-kernels", SEED_CASES)
    ap.add_argument("--rates", default="1,50", help="requests per second [1,50]")
    ap.add_argument("--kernels", default="stock,tuned", help="lab kernel settings [stock,tuned]")
    args = ap.parse_args()

    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case {', '.join(unknown)}: use {', '.join(CASES)}")
    rates = [float(x) for x in args.rates.split(",") if x]
    kernels = [k for k in args.kernels.split(",") if k]
    plan = [(c, r, k) for r in rates for k in kernels for c in cases]

    def run_one(row):
        c, r, k = row
        return run_lab(args.bin, c, ["--kernel", k], r, run_dir(args.out, c, r, k),
                       f"{c} {r:g}/s {k}", args.warmup, args.settle, META)

    if not args.table_only:
        run_plan("seed-kernels", args, plan, run_one)
    print_table(HEADER, [row(args, c, r, k) for (c, r, k) in plan])


if __name__ == "__main__":
    main()
