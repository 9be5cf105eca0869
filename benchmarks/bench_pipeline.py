"""The pipeline's cache and resume, and every shipped config end to end on fakes.

Claims checked in one process:
  (a) a rerun of a finished run skips every stage (baseline: the fresh run) and its
      results.nc equals the fresh one;
  (b) a run killed during extraction and rerun gives results identical to the
      uninterrupted run;
  (c) poster_kdef.yaml, reverse_direction.yaml and fmri_bids.yaml run end to end on tiny
      fakes of their inputs (fake KDEF / LFW trees, random VGGFace2-format weights, a
      simulated BIDS dataset), as in tests/pipeline/test_shipped_configs.py, whose
      slow-marked tests this covers.
Prints the times and the ratio fresh / cached. Timings on a shared machine are noisy.

    python benchmarks/bench_pipeline.py [--size tiny|small]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _perturb import epsilon, perturb  # benchmarks/ is on sys.path when run as a script

from facebrain.pipeline import run
from facebrain.report import read_results
from pipeline import _fakes

SMALL = {  # between the test's tiny run and the full demo
    "threads": 2,
    "stimuli.train.n_identities": 10, "stimuli.train.images_per_identity": 16,
    "stimuli.test.identities": 20, "stimuli.scanner.identities": 6,
    "models[0].train.epochs": 2, "models[1].train.epochs": 2,
    "transfer.directions[0].n_permutations": 5, "transfer.directions[1].n_permutations": 5,
    "brain.subjects": 2, "rsa.n_bootstrap": 20,
}


def same_results(a: Path, b: Path) -> int:
    ga, gb = read_results(a), read_results(b)
    if sorted(ga) != sorted(gb):
        raise AssertionError(f"different groups: {sorted(ga)} vs {sorted(gb)}")
    for g in ga:
        got = ga[g]
        if epsilon():
            got = got.map(lambda v: v.copy(data=perturb(v.values))
                          if np.issubdtype(v.dtype, np.floating) else v)
        xr.testing.assert_allclose(got, gb[g], rtol=0, atol=0)
    return len(ga)


def timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    print(f"{label:<48s} {dt:8.2f} s", flush=True)
    return out, dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=["tiny", "small"], default="tiny")
    args = ap.parse_args()
    overrides = _fakes.DEMO_TINY if args.size == "tiny" else SMALL
    quiet = lambda line: None
    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    try:
        fresh, t_fresh = timed(f"demo ({args.size}) fresh run",
                               lambda: run(None, out=tmp / "a", overrides=overrides, log=quiet))
        cached, t_cached = timed("demo rerun (every stage cached)",
                                 lambda: run(None, out=tmp / "a", overrides=overrides, log=quiet))
        if set(cached.statuses.values()) != {"cached"}:
            raise AssertionError(f"rerun recomputed stages: {cached.statuses}")
        n = same_results(fresh.results, cached.results)
        print(f"cache: fresh / cached = {t_fresh / t_cached:.0f}x; results.nc identical "
              f"({n} groups, atol 0)")

        import facebrain.activations as acts_mod

        real = acts_mod.extract
        calls = []

        def dying(*a, **k):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(*a, **k)

        shutil.copytree(tmp / "a", tmp / "b")
        acts_mod.extract = dying
        try:
            run(None, out=tmp / "b", overrides=overrides, from_stage="extract", log=quiet)
        except KeyboardInterrupt:
            pass
        finally:
            acts_mod.extract = real
        resumed, _ = timed("demo after a kill during extract (resumed)",
                           lambda: run(None, out=tmp / "b", overrides=overrides, log=quiet))
        if resumed.statuses["extract"] != "resumed":
            raise AssertionError(f"extract did not resume: {resumed.statuses}")
        from facebrain.pipeline._stages import load_activations

        for m in resumed.config.models:
            xr.testing.assert_identical(load_activations(resumed.dirs["extract"], m.name).load(),
                                        load_activations(fresh.dirs["extract"], m.name).load())
        redone, _ = timed("demo --from transfer on the resumed activations",
                          lambda: run(None, out=tmp / "b", overrides=overrides,
                                      from_stage="transfer", log=quiet))
        n = same_results(fresh.results, redone.results)
        print(f"resume: activations and results.nc identical to the uninterrupted run "
              f"({n} groups, atol 0)")

        monkey = {}
        kdef = _fakes.make_kdef(tmp / "KDEF")
        lfw = _fakes.make_lfw(tmp / "lfw")
        weights = _fakes.make_vggface2_weights(tmp / "vggface2.pt")
        manifest, stim = _fakes.make_manifest(tmp / "stim")
        bids = _fakes.make_bids(tmp / "bids", stim)
        import os

        monkey.update(KDEF_ROOT=str(kdef), LFW_ROOT=str(lfw), VGGFACE2_WEIGHTS=str(weights),
                      STIMULI_MANIFEST=str(manifest), BIDS_ROOT=str(bids))
        os.environ.update(monkey)
        os.environ.pop("LFW_PAIRS", None)
        for name, ov in (("poster_kdef", _fakes.POSTER_TINY),
                         ("reverse_direction", _fakes.REVERSE_TINY),
                         ("fmri_bids", _fakes.FMRI_TINY)):
            res, _ = timed(f"configs/{name}.yaml on fakes",
                           lambda name=name, ov=ov: run(REPO / "configs" / f"{name}.yaml",
                                                        out=tmp / name, overrides=ov, log=quiet))
            done = [s for s, v in res.statuses.items() if v == "computed"]
            if not res.report.is_file():
                raise AssertionError(f"{name}: no report written at {res.report}")
            print(f"  stages run: {', '.join(done)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
