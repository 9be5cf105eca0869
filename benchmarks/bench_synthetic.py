"""Synthetic-face rendering speed and how distinct the faces are in pixel space.

1. Speed (goal: >= 200 images/s at 112x112 on one core). The renderer with
   analytic antialiasing (one sample per pixel, box-filtered edge coverage from
   signed distances) against the same renderer antialiased the conventional way:
   4x4 supersampling with hard edges, then a box downsample. Both render the
   same synthetic KDEF images (all five views); they must agree to a mean
   absolute difference below 2.0 grey levels (noise off for the comparison).
   A one-sample hard-edged render is shown for reference (what aliasing costs).
   Times are process CPU time (one thread) and wall time; on a shared machine
   the wall time is inflated by other jobs, the CPU time is what one core does.
2. Difficulty, measured, not tuned: pixel-space (28x28 grey) 1-NN identity
   accuracy across sessions and across views, and a pixel-space logistic
   regression for expression trained on half the people, tested on the others.

    .venv/bin/python benchmarks/bench_synthetic.py [--n 300] [--size 112]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from facebrain.stimuli import synthetic_kdef
from facebrain.stimuli._synthetic_render import render_face


def timed(fn, items):
    c0, w0 = time.process_time(), time.perf_counter()
    out = [fn(p) for p in items]
    return out, time.process_time() - c0, time.perf_counter() - w0


def bench_speed(n: int, size: int) -> None:
    kdef = synthetic_kdef(seed=0, image_size=size)
    src = kdef.image_source
    rng = np.random.default_rng(0)
    rows = rng.choice(len(kdef), size=n, replace=False)
    params = [src.parameters(i) for i in rows]
    render_face(params[0], size)  # warm up
    _, c_aa, w_aa = timed(lambda p: render_face(p, size), params)
    n_ss = max(n // 4, 20)
    _, c_ss, w_ss = timed(lambda p: render_face(p, size, supersample=4, antialias=False),
                          params[:n_ss])
    print(f"[speed] analytic AA      : {n / c_aa:7.1f} images/s CPU ({n / w_aa:7.1f} wall), "
          f"{size}x{size}, {n} KDEF images, all views")
    print(f"[speed] 4x4 supersampled : {n_ss / c_ss:7.1f} images/s CPU ({n_ss / w_ss:7.1f} wall)")
    print(f"[speed] ratio analytic/supersampled = {(n / c_aa) / (n_ss / c_ss):.1f}x (CPU time); "
          f"goal >= 200 images/s: {'met' if n / c_aa >= 200 else 'NOT met'}")
    # agreement, noise off
    k = min(60, n)
    d_aa, d_hard = [], []
    for p in params[:k]:
        ref = render_face(p, size, supersample=4, antialias=False, noise=False).astype(float)
        aa = render_face(p, size, noise=False).astype(float)
        hard = render_face(p, size, antialias=False, noise=False).astype(float)
        d_aa.append(np.abs(aa - ref).mean())
        d_hard.append(np.abs(hard - ref).mean())
    ok = np.mean(d_aa) < 2.0
    print(f"[agree] |analytic - supersampled| mean {np.mean(d_aa):.2f}, max {np.max(d_aa):.2f} "
          f"grey levels over {k} images (tolerance: mean < 2.0) -> {'OK' if ok else 'FAIL'}")
    print(f"[agree] |1-sample hard - supersampled| mean {np.mean(d_hard):.2f} (aliasing, reference)")
    if not ok:
        raise SystemExit("analytic antialiasing disagrees with the supersampled baseline")


def _small(kdef, ids):
    from PIL import Image

    out = []
    for sid in ids:
        im = Image.fromarray(kdef.load(sid)).convert("L").resize((28, 28), Image.BILINEAR)
        out.append(np.asarray(im, dtype=np.float32).ravel() / 255.0)
    return np.stack(out)


def bench_difficulty() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    kdef = synthetic_kdef(seed=0, image_size=112)
    t = kdef.table
    t0 = time.perf_counter()
    front = t[t["view"] == "S"]
    Xa = _small(kdef, front[front["session"] == "A"].index)
    Xb = _small(kdef, front[front["session"] == "B"].index)
    ya = front[front["session"] == "A"]["identity"].to_numpy()
    yb = front[front["session"] == "B"]["identity"].to_numpy()
    knn = KNeighborsClassifier(1).fit(Xa, ya)
    acc_sess = (knn.predict(Xb) == yb).mean()
    hr = t[(t["view"] == "HR") & (t["session"] == "A")]
    acc_view = (knn.predict(_small(kdef, hr.index)) == hr["identity"].to_numpy()).mean()
    # expression across people: train on 35 people, test on the other 35 (frontal, both sessions)
    people = sorted(t["identity"].unique())
    train_p = set(people[::2])
    fr = front
    X = np.concatenate([Xa, Xb])
    y = np.concatenate([fr[fr["session"] == "A"]["expression"], fr[fr["session"] == "B"]["expression"]])
    who = np.concatenate([fr[fr["session"] == "A"]["identity"], fr[fr["session"] == "B"]["identity"]])
    tr = np.isin(who, list(train_p))
    sc = StandardScaler().fit(X[tr])
    clf = LogisticRegression(C=0.05, max_iter=2000).fit(sc.transform(X[tr]), y[tr])
    acc_expr = (clf.predict(sc.transform(X[~tr])) == y[~tr]).mean()
    print(f"[difficulty] pixel 1-NN identity, session A -> B (frontal, 70 people): "
          f"{acc_sess:.3f} (chance {1 / 70:.3f})")
    print(f"[difficulty] pixel 1-NN identity, view S -> HR (session A): {acc_view:.3f}")
    print(f"[difficulty] pixel logistic regression expression, new people (frontal): "
          f"{acc_expr:.3f} (chance {1 / 7:.3f})   [{time.perf_counter() - t0:.1f}s]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--skip-difficulty", action="store_true")
    args = ap.parse_args()
    bench_speed(args.n, args.size)
    if not args.skip_difficulty:
        bench_difficulty()


if __name__ == "__main__":
    main()
