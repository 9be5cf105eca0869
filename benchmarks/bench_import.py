"""Benchmark: cold import cost of each room beyond numpy/pandas/xarray/torch (issue 13, item 5).

Each room is imported in a fresh interpreter after numpy, pandas, xarray and torch
(the baseline, timed in the same process); the goal is <= 0.5 s beyond it. The first
use of a name (e.g. ``facebrain.rsa.compare``) then imports its heavy peers, timed
too so the cost is visible rather than hidden. Best of ``--repeats`` fresh processes.
Exits 1 when a room is over the goal or pulls in a heavy peer at import.

Usage: python benchmarks/bench_import.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

ROOMS = {"facebrain.rsa": "compare", "facebrain.brain": "single_trial_betas",
         "facebrain.encoding": "evaluate"}
HEAVY = ("rsatoolbox", "nilearn", "sklearn", "matplotlib.pyplot", "numba")
GOAL = 0.5

CODE = """
import json, sys, time
t0 = time.perf_counter()
import numpy, pandas, xarray, torch
t1 = time.perf_counter()
import {room} as m
t2 = time.perf_counter()
heavy = [k for k in {heavy!r} if k in sys.modules]
getattr(m, {name!r})
t3 = time.perf_counter()
print(json.dumps({{"base": t1 - t0, "room": t2 - t1, "first_use": t3 - t2, "heavy": heavy}}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ok = True
    for room, name in ROOMS.items():
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, "-c", CODE.format(room=room, name=name,
                                                                     heavy=HEAVY)],
                                 capture_output=True, text=True, check=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        best = min(runs, key=lambda r: r["room"])
        base = min(r["base"] for r in runs)
        verdict = "OK" if best["room"] <= GOAL and not best["heavy"] else "FAIL"
        ok &= verdict == "OK"
        print(f"{room:20s} baseline numpy+pandas+xarray+torch {base:6.2f} s | room "
              f"{best['room']:6.3f} s (goal <= {GOAL}) | first use of {name}: "
              f"{min(r['first_use'] for r in runs):5.2f} s | heavy at import: "
              f"{best['heavy'] or 'none'} | {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
