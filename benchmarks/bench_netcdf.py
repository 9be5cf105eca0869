"""Run-folder netCDF I/O: facebrain's netCDF-C engine vs the h5netcdf engine, same process.

Every stage of a run writes its results as netCDF files and the next stages (and the
report) read them back; ``results.nc`` holds every group in one file. facebrain writes
and reads them through xarray with ``engine="netcdf4"`` (``facebrain._runfolder.ENGINE``)
and reads ``results.nc`` through one open file. The baseline is the same xarray calls with
``engine="h5netcdf"`` and ``results.nc`` read one group per open, as facebrain did before
2026-12-03 (h5netcdf looks up each variable's HDF5 object again on every access, which
costs ~5 ms per variable).

Data: by default, synthetic stage files shaped like the demo's (``--files`` files: a
probe file per candidate with accuracies per layer x fold, confusion matrices and a
permutation null; an encoding file with per-voxel R2, alphas and voxel coordinates
with string ROI labels; an RSA file with bootstrap scores); ``--run DIR`` uses the .nc
files of an existing run folder instead (e.g. ``results/demo``).

``--copies K`` puts every file K times into ``results.nc``, as a study with more subjects,
ROIs or candidates would: netCDF-C syncs the file's metadata whenever a write follows a
definition, so unless every write waits until all variables are defined (as
``write_results`` does) each write costs more the more the file holds.

Timing: best of ``--repeats`` (default 3) per side, sides alternating; write and read
times and their ratios, for the stage files and for ``results.nc``.
Agreement: each file facebrain wrote, read back by h5netcdf (the independent reader),
must be identical to the dataset written (values, dtypes, coords and attributes), and
so must facebrain's read of the baseline's file and every group of facebrain's
``results.nc``; otherwise DISAGREE and exit 1.

    python benchmarks/bench_netcdf.py [--files 40] [--repeats 3] [--seed 0] [--run DIR]
                                      [--copies 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr
from _perturb import perturb  # benchmarks/ is on sys.path when run as a script
from _timing import timed

from facebrain._runfolder import (
    ENGINE,
    clean_attrs,
    read_netcdf,
    read_results,
    write_netcdf,
    write_results,
)

ap = argparse.ArgumentParser()
ap.add_argument("--files", type=int, default=40)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--run", type=Path, default=None, help="use this run folder's .nc files")
ap.add_argument("--copies", type=int, default=1,
                help="results.nc holds each file this many times (a bigger study's file)")
args = ap.parse_args()


def synthetic(rng, n_files):
    """Datasets shaped like a demo run's stage files (transfer, encoding, RSA)."""
    layers = ["layer1", "layer2", "layer3", "layer4"]
    out = []
    for i in range(n_files):
        kind = i % 3
        if kind == 0:  # a transfer probe: 4 layers x 5 folds, 7 classes, 50 permutations
            n_cls = 7
            ds = xr.Dataset(
                {"accuracy": (("layer", "fold"), rng.random((4, 5))),
                 "accuracy_mean": ("layer", rng.random(4)),
                 "accuracy_sem": ("layer", rng.random(4) / 10),
                 "chance": ("layer", np.full(4, 1 / n_cls)),
                 "p_value": ("layer", rng.random(4)),
                 "p_value_fwe": ("layer", rng.random(4)),
                 "null": (("permutation", "layer"), rng.random((50, 4))),
                 "null_max": ("permutation", rng.random(50)),
                 "confusion": (("layer", "true", "predicted"),
                               rng.integers(0, 30, (4, n_cls, n_cls))),
                 "n_features": ("layer", np.full(4, 2048)),
                 "alpha": (("layer", "fold"), 10.0 ** rng.integers(-2, 7, (4, 5)))},
                coords={"layer": layers, "fold": np.arange(5),
                        "true": [f"e{k}" for k in range(n_cls)],
                        "predicted": [f"e{k}" for k in range(n_cls)],
                        "permutation": np.arange(50)},
                attrs={"target": "expression", "candidate_kind": "network",
                       "features": "srp:2048", "seed": int(i), "head": "ridge"})
        elif kind == 1:  # voxelwise encoding: 4 layers x ~600 voxels, 19 alphas
            v = 600
            ds = xr.Dataset(
                {"r2": (("layer", "voxel"), rng.standard_normal((4, v))),
                 "r2_fold": (("layer", "fold", "voxel"), rng.standard_normal((4, 5, v))),
                 "alpha": (("layer", "voxel"), 10.0 ** rng.integers(-2, 7, (4, v))),
                 "alpha_edge": ("layer", rng.random(4)),
                 "n_features": ("layer", np.full(4, 2048))},
                coords={"layer": layers, "fold": np.arange(5),
                        "roi": ("voxel", rng.choice(["EVC", "rFFA", "rOFA", "rpSTS"], v)),
                        "subject": ("voxel", rng.choice(["01", "02", "03"], v)),
                        **{c: ("voxel", rng.standard_normal(v)) for c in "xyz"},
                        **{c: ("voxel", rng.integers(0, 40, v)) for c in "ijk"}},
                attrs={"model": f"net{i}", "alphas": np.logspace(-2, 7, 19),
                       "cv": "GroupKFold(5) by identity"})
        else:  # RSA: 4 layers x 4 ROIs x 3 subjects, 200 bootstrap samples
            ds = xr.Dataset(
                {"score": (("layer", "roi", "subject"), rng.standard_normal((4, 4, 3))),
                 "score_mean": (("layer", "roi"), rng.standard_normal((4, 4))),
                 "boot": (("sample", "layer", "roi"), rng.standard_normal((200, 4, 4))),
                 "ci_low": (("layer", "roi"), rng.standard_normal((4, 4))),
                 "ci_high": (("layer", "roi"), rng.standard_normal((4, 4))),
                 "ceiling_low": ("roi", rng.random(4)),
                 "ceiling_high": ("roi", rng.random(4))},
                coords={"layer": layers, "roi": ["EVC", "rFFA", "rOFA", "rpSTS"],
                        "subject": ["01", "02", "03"], "sample": np.arange(200)},
                attrs={"method": "spearman", "rdm": "correlation", "n_bootstrap": 200})
        out.append(clean_attrs(ds))
    return out


def from_run(folder: Path):
    files = sorted(p for p in folder.glob("*/*/*.nc") if p.name != "results.nc")
    if not files:
        raise SystemExit(f"--run {folder}: no stage .nc files found (expected "
                         "<stage>/<key>/*.nc)")
    return [xr.load_dataset(p, engine="h5netcdf") for p in files]


# ---------------------------------------------------------------- the two sides
def ours_write(dss, d: Path):
    return [write_netcdf(ds, d / f"f{i}.nc") for i, ds in enumerate(dss)]


def ours_read(paths):
    return [read_netcdf(p) for p in paths]


def base_write(dss, d: Path):
    paths = []
    for i, ds in enumerate(dss):
        p = d / f"f{i}.nc"
        clean_attrs(ds).to_netcdf(p, engine="h5netcdf")
        paths.append(p)
    return paths


def base_read(paths):
    return [xr.load_dataset(p, engine="h5netcdf") for p in paths]


def base_write_results(groups, path: Path):
    index = {g: sorted(map(str, ds.data_vars)) for g, ds in groups.items()}
    root = xr.Dataset(attrs={"groups": json.dumps(index, sort_keys=True),
                             "title": "facebrain results"})
    tree = xr.DataTree.from_dict({"/": root, **{g: clean_attrs(ds) for g, ds in groups.items()}})
    tree.to_netcdf(path, engine="h5netcdf")
    return path


def base_read_results(path: Path):
    with xr.open_dataset(path, engine="h5netcdf") as root:
        groups = json.loads(root.attrs["groups"])
    return {g: xr.load_dataset(path, group=g, engine="h5netcdf") for g in groups}


def _clock(times: dict, key: str, fn, *fn_args):
    """``fn(*fn_args)``, its wall time appended to ``times[key]``."""
    t, out = timed(lambda: fn(*fn_args))
    times[key].append(t)
    return out


def main() -> int:
    rng = np.random.default_rng(args.seed)
    dss = from_run(args.run) if args.run else synthetic(rng, args.files)
    groups = {f"copy{c}/stage{i % 4}/file{i}": ds
              for c in range(args.copies) for i, ds in enumerate(dss)}
    n_vars = sum(len(ds.variables) for ds in dss)
    src = f"the .nc files of {args.run}" if args.run else f"synthetic, seed {args.seed}"
    print(f"profile: {len(dss)} stage files ({src}), {n_vars} variables in all "
          f"(coordinates included); best of {args.repeats}, sides alternating; "
          f"facebrain engine {ENGINE!r} vs baseline 'h5netcdf'")
    times = {k: [] for k in ("ow", "or", "bw", "br", "orw", "orr", "brw", "brr")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for side in ("o", "b"):
            (tmp / side).mkdir()
        for _ in range(args.repeats):
            op = _clock(times, "ow", ours_write, dss, tmp / "o")
            bp = _clock(times, "bw", base_write, dss, tmp / "b")
            ours = _clock(times, "or", ours_read, op)
            base = _clock(times, "br", base_read, bp)
            orp = _clock(times, "orw", write_results, groups, tmp / "o" / "results.nc")
            brp = _clock(times, "brw", base_write_results, groups, tmp / "b" / "results.nc")
            ores = _clock(times, "orr", read_results, orp)
            bres = _clock(times, "brr", base_read_results, brp)
        # agreement: an independent reader of our files, our reader of the baseline's
        bad = []
        for i, (ds, p) in enumerate(zip(dss, op)):
            want = clean_attrs(ds)
            got = xr.load_dataset(p, engine="h5netcdf")
            floats = [k for k, v in got.data_vars.items() if v.dtype.kind == "f" and v.size]
            if floats:  # FACEBRAIN_BENCH_PERTURB must make the check fail
                got[floats[0]] = got[floats[0]].copy(data=perturb(got[floats[0]].values))
            for what, x in (("read by h5netcdf", got), ("read by facebrain", ours[i]),
                            ("baseline file read by facebrain", read_netcdf(bp[i]))):
                if not x.identical(want):
                    bad.append(f"file {i} {what}")
            if not base[i].identical(want):
                bad.append(f"file {i}: baseline read")
        for g, ds in groups.items():
            if not ores[g].identical(clean_attrs(ds)) or not bres[g].identical(ores[g]):
                bad.append(f"results.nc group {g}")
        via_h5 = xr.open_datatree(orp, engine="h5netcdf")
        for g, ds in groups.items():
            if not via_h5[g].to_dataset(inherit=False).load().identical(clean_attrs(ds)):
                bad.append(f"results.nc group {g} read by h5netcdf")
        via_h5.close()

    def line(what, o, b):
        return (f"{what}: facebrain {min(o):.2f} s, h5netcdf {min(b):.2f} s, RATIO "
                f"{min(b) / min(o):.1f}x (spread facebrain {max(o) / min(o) - 1:.0%}, "
                f"h5netcdf {max(b) / min(b) - 1:.0%})")

    print(line(f"write {len(dss)} stage files", times["ow"], times["bw"]))
    print(line(f"read {len(dss)} stage files", times["or"], times["br"]))
    print(line(f"write results.nc ({len(groups)} groups)", times["orw"], times["brw"]))
    print(line(f"read results.nc ({len(groups)} groups)", times["orr"], times["brr"]))
    if bad:
        print(f"DISAGREE: {len(bad)} check(s) failed: {'; '.join(bad[:8])}", file=sys.stderr)
        return 1
    print(f"AGREE: every file and group identical (values, dtypes, coordinates, attributes) "
          f"across writers and readers ({len(dss)} files, {len(groups)} groups)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
