"""What scripts/seed-kernels.py and scripts/paths.py share: the seed's cases, one lab run
per table row, and the table itself.

Both scripts run `rollprobe lab` once per row, one run at a time (runs at the same time
would share the machine's CPUs and blur each other's timings), keep each run's folder, and
print a plain text table that docs/ quotes. Python 3 standard library only.
"""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each case: its manifest in examples/seed and the change that starts its rollout
# (examples/seed/README.md).
SET_IMAGE = ["--set-image", "backend-deployment=shop/backend:v2"]
CASES = {
    "recreate": ("recreate.yaml", SET_IMAGE),
    "rolling": ("rolling.yaml", SET_IMAGE),
    "surge": ("surge.yaml", SET_IMAGE),
    "readiness": ("readiness.yaml", SET_IMAGE),
    "bluegreen": ("bluegreen.yaml", ["--set-selector", "backend-svc:version=v2"]),
    "prestop": ("readiness-prestop.yaml", SET_IMAGE),
}


def add_run_args(ap, out_name, cases):
    """The options every script of the seed's runs takes."""
    ap.add_argument("--bin", type=Path, default=ROOT / "target" / "debug" / "rollprobe",
                    help="the rollprobe binary [target/debug/rollprobe]")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / out_name,
                    help=f"one run folder per row goes here [target/{out_name}]")
    ap.add_argument("--cases", default=",".join(cases),
                    help=f"comma-separated cases from examples/seed [{','.join(cases)}]")
    ap.add_argument("--warmup", default="2s", help="probing before the change [2s]")
    ap.add_argument("--settle", default="5s", help="probing after the rollout [5s]")
    ap.add_argument("--table-only", action="store_true",
                    help="do not run the lab; print the table of the runs already in --out")


def check_can_run(script, binary):
    """Root and a built binary, or one line and exit."""
    if os.geteuid() != 0:
        sys.exit(f"{script}: the lab needs root: run it with sudo")
    if not binary.exists():
        sys.exit(f"{script}: no {binary}: run `cargo build -p probe-cli` first")
    # ip, iptables and nft live in sbin, which sudo's or a container's PATH may leave out.
    os.environ["PATH"] += ":/usr/local/sbin:/usr/sbin:/sbin"


def run_lab(binary, case, extra, rate, out_dir, label, warmup, settle, meta_name):
    """One `rollprobe lab` run of `case` into `out_dir`; returns the seconds it took.

    Its command, exit code and time are kept beside the report in `meta_name`.
    """
    manifest, change = CASES[case]
    cmd = [
        str(binary), "lab",
        "-f", str(ROOT / "examples" / "seed" / manifest),
        *change,
        *extra,
        "--rate", f"{rate:g}",
        "--warmup", warmup,
        "--settle", settle,
        "--label", label,
        "--quiet", "--format", "json",
        "--out", str(out_dir),
    ]
    started = time.monotonic()
    # report.json also lands in --out; stdout is kept only so it does not flood the terminal.
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.monotonic() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / meta_name).write_text(json.dumps(
        {"command": cmd, "exit": p.returncode, "seconds": round(took, 1),
         "stderr": p.stderr.strip()[-2000:]}
    ))
    # Exit 1 only means a --max-* gate failed (none is set); anything else is a broken run.
    if p.returncode not in (0, 1):
        print(f"{label}: rollprobe exited {p.returncode}: {p.stderr.strip()}", file=sys.stderr)
    return took


def read_run(out_dir, meta_name):
    """(report, samples, meta) of a finished run, or None when it left no report."""
    report_path = out_dir / "report.json"
    if not report_path.exists():
        return None
    meta_path = out_dir / meta_name
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    with open(out_dir / "samples.csv", newline="") as f:
        samples = list(csv.DictReader(f))
    return json.loads(report_path.read_text()), samples, meta


def trigger_ms(report):
    return next((e["at_ms"] for e in report["events"] if e["kind"] == "trigger_start"), 0.0)


def first_ms(samples, outcome, trigger):
    """When the first answer of `outcome` came back, in ms after the trigger."""
    best = None
    for r in samples:
        if r["outcome"] != outcome:
            continue
        at = float(r["sent_ms"] or r["intended_ms"]) + float(r["total_ms"] or 0)
        best = at if best is None else min(best, at)
    return None if best is None else best - trigger


def print_table(header, rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    print(line(header))
    for r in rows:
        print(line(r))


def run_plan(script, args, plan, run_one):
    """Runs every row of `plan` with `run_one(row)`, one at a time, with progress on stderr."""
    check_can_run(script, args.bin)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for i, row in enumerate(plan, 1):
        name = " ".join(f"{x:g}/s" if isinstance(x, float) else str(x) for x in row)
        print(f"[{i}/{len(plan)}] {name} ...", file=sys.stderr, flush=True)
        took = run_one(row)
        print(f"[{i}/{len(plan)}] {name}: {took:.0f} s", file=sys.stderr, flush=True)
    print(f"{script}: {len(plan)} runs in {time.monotonic() - started:.0f} s", file=sys.stderr)
