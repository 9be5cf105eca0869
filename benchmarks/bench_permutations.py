"""Benchmark: permutation probes, 100 permutations x 4 layers on 4,900 x 2,048 features.

Claim (issue 13, item 4): ``probe(head="ridge", n_permutations=100)`` over 4 layers
of 4,900 x 2,048 features is >= 10x faster than the per-permutation refits the
probe ran before (a fresh scaler + RidgeClassifier pipeline per fold and per
permutation), with the SAME accuracies.

Features are simulated like ResNet-50 ``avgpool`` outputs of KDEF (70 identities
x 7 expressions x 5 views x 2 sessions): ReLU mixtures of identity, expression
and view factors plus noise; the 4 layers differ in how strongly they carry
expression (from none to clearly decodable), so accuracies span chance to high.

Same process, same folds (leave-identity-out, 10 folds), same permutations:

- fast: ``facebrain.transfer.probe(head="ridge", n_permutations=N)`` (every permutation
  is an extra output column of one Cholesky-factored solve per fold);
- baseline: the refit loop (``cv_predict`` with ``perm_seed``: scaler and
  ``RidgeClassifier`` refitted for every fold of every permutation), run for the
  observed labels and ``--baseline-permutations`` permutations of the last
  ``--baseline-layers`` layers. Every cross-validation of the baseline is an
  independent refit of identical cost (same shapes), so its time for all
  ``4 x (1 + N)`` cross-validations is the measured mean per cross-validation times
  ``4 x (1 + N)`` (``--baseline-permutations 100 --baseline-layers 4`` runs it all:
  hours on a shared 2-core machine).

Agreement (tolerance 0): observed fold accuracies and the null accuracy of every
permutation the baseline ran must be equal. Exits 1 when they are not.

Usage: python benchmarks/bench_permutations.py [--n-permutations 100] [--n-units 2048]
       [--baseline-permutations 2] [--threads 2] [--seed 0] [--per-sex 35] [--folds 10]

Held-out check: ``--n-units 1536 --per-sex 28 --folds 8 --seed 7`` (3,920 stimuli, other
features, folds and permutations).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import xarray as xr

EXPRS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")


def simulate(n_units: int, n_layers: int = 4, seed: int = 0, per_sex: int = 35) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    ids = [f"{g}{k:02d}" for g in "FM" for k in range(1, per_sex + 1)]
    views, sessions = ("FL", "HL", "S", "HR", "FR"), ("A", "B")
    rows = [(s, i, e, v) for s in sessions for i in ids for e in EXPRS for v in views]
    i_idx = np.array([ids.index(r[1]) for r in rows])
    e_idx = np.array([EXPRS.index(r[2]) for r in rows])
    v_idx = np.array([views.index(r[3]) for r in rows])
    k = 64
    data = {}
    for layer, ex_scale in zip(range(n_layers), np.linspace(0.0, 0.12, n_layers)):
        load = {f: rng.normal(size=(k, n_units)) / np.sqrt(k) for f in ("id", "ex", "vw")}
        z_id = rng.normal(size=(len(ids), k)) @ load["id"]
        z_ex = ex_scale * rng.normal(size=(len(EXPRS), k)) @ load["ex"]
        z_vw = 0.8 * rng.normal(size=(len(views), k)) @ load["vw"]
        X = z_id[i_idx] + z_ex[e_idx] + z_vw[v_idx] + rng.normal(size=(len(rows), n_units))
        name = f"layer{layer + 1}"
        data[name] = (("stimulus", f"{name}_unit"), np.maximum(X, 0).astype(np.float32))
    return xr.Dataset(
        data,
        coords={"stimulus": np.array([f"{s}{i}{e}{v}" for s, i, e, v in rows]),
                "identity": ("stimulus", np.array([r[1] for r in rows])),
                "expression": ("stimulus", np.array([r[2] for r in rows])),
                "view": ("stimulus", np.array([r[3] for r in rows])),
                "session": ("stimulus", np.array([r[0] for r in rows]))},
        attrs={"model": "simulated"},
    )


def run(*, n_units=2048, n_permutations=100, baseline_permutations=1, baseline_layers=2,
        n_folds=10, seed=0, per_sex=35, alpha=1.0, log=print) -> dict:
    from facebrain.transfer import make_folds, probe
    from facebrain.transfer._probe import _fold_accuracy, _target, cv_predict

    acts = simulate(n_units, seed=seed, per_sex=per_sex)
    layers = list(acts.data_vars)
    log(f"{acts.sizes['stimulus']} stimuli x {n_units} units x {len(layers)} layers, "
        f"{n_permutations} permutations, leave-identity-out {n_folds} folds, "
        f"RidgeClassifier(alpha={alpha})")
    t = time.perf_counter()
    fast = probe(acts, "expression", head="ridge", head_kw={"alpha": alpha}, n_folds=n_folds,
                 seed=seed, n_permutations=n_permutations)
    t_fast = time.perf_counter() - t
    log(f"fast  (one factorisation per fold, permutations as outputs): {t_fast:8.1f} s")

    y, _ = _target(acts, "expression")
    folds = make_folds(acts, "leave-identity-out", target="expression", n_folds=n_folds,
                       seed=seed)
    kw = {"head": "ridge", "standardize": True, "reduce": None, "seed": seed,
          "head_kw": {"alpha": alpha}}
    n_base = min(baseline_permutations, n_permutations)
    bad = []
    t_base = 0.0
    n_cv = 0
    checked = layers[len(layers) - max(1, min(baseline_layers, len(layers))):]
    for i, layer in enumerate(layers):
        if layer not in checked:
            continue
        X = acts.fb.matrix(layer)
        t = time.perf_counter()
        obs = _fold_accuracy(cv_predict(X, y, folds, **kw), y, folds)
        nulls = [_fold_accuracy(cv_predict(X, y, folds, perm_seed=[seed, 1 + p], **kw),
                                y, folds).mean() for p in range(n_base)]
        t_base += time.perf_counter() - t
        n_cv += 1 + n_base
        if not np.array_equal(obs, fast.accuracy.values[i]):
            bad.append(f"{layer}: observed fold accuracies differ")
        if not np.array_equal(np.asarray(nulls), fast.null_accuracy.values[i, :n_base]):
            bad.append(f"{layer}: null accuracies differ: {nulls} vs "
                       f"{fast.null_accuracy.values[i, :n_base].tolist()}")
    per_cv = t_base / n_cv
    t_refit = per_cv * len(layers) * (1 + n_permutations)
    how = ("measured" if n_base == n_permutations else
           f"{n_cv} cross-validations measured ({per_cv:.2f} s each), scaled to "
           f"{len(layers) * (1 + n_permutations)}")
    log(f"refit (scaler + RidgeClassifier per fold and permutation): {t_refit:8.1f} s ({how})")
    ratio = t_refit / t_fast
    for i, layer in enumerate(layers):
        log(f"  {layer}: accuracy {fast.accuracy_mean.values[i]:.3f}, "
            f"p {fast.p_value.values[i]:.4f}, p_fwe {fast.p_value_fwe.values[i]:.4f}")
    log(f"ratio refit / fast: {ratio:.1f}x (goal >= 10x)")
    agree = not bad
    log(f"agreement (observed and {n_base} null permutation(s) of {checked} equal, "
        f"tolerance 0): {'AGREE' if agree else 'DISAGREE'}")
    for b in bad:
        log("  " + b)
    return {"ratio": ratio, "agree": agree, "t_fast": t_fast, "t_refit": t_refit}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-units", type=int, default=2048)
    ap.add_argument("--n-permutations", type=int, default=100)
    ap.add_argument("--baseline-permutations", type=int, default=1)
    ap.add_argument("--baseline-layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="features, folds and permutations")
    ap.add_argument("--per-sex", type=int, default=35,
                    help="identities per sex (35: KDEF's 70 people, 4,900 stimuli)")
    ap.add_argument("--folds", type=int, default=10)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(args.threads):
        r = run(n_units=args.n_units, n_permutations=args.n_permutations,
                baseline_permutations=args.baseline_permutations,
                baseline_layers=args.baseline_layers, seed=args.seed,
                per_sex=args.per_sex, n_folds=args.folds)
    if not r["agree"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
