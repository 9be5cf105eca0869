"""Face alignment: facebrain's numpy chips vs dlib's get_face_chip, and how many faces are found.

1. Chips. On ``skimage.data.astronaut()`` (a real photograph) rescaled 0.5x .. 4x and
   rotated, the 5 landmarks of ``shape_predictor_5_face_landmarks.dat`` go to both
   ``facebrain.stimuli.extract_face_chip`` and ``dlib.get_face_chip`` (150 px, padding
   0.25). Prints the mean and max absolute difference (grey levels) and both times with
   their ratio; exits 1 when a chip differs by more than 1 grey level on average.
2. Detection rate. ``align_faces`` on the 100 real LFW face crops (25 x 25 gray) of
   ``skimage.data.lfw_subset()`` and its 100 non-face patches, and on 140 synthetic
   frontal faces (20 identities x 7 expressions, 112 px): faces found and non-faces
   accepted, for the HOG detector and for HOG with the CNN detector as fallback
   (``--no-cnn`` skips the slow CNN rows).

    python benchmarks/bench_align.py [--no-cnn]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

ap = argparse.ArgumentParser()
ap.add_argument("--no-cnn", action="store_true")
args = ap.parse_args()
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from PIL import Image

try:
    import dlib
    import skimage.data as skd
except ImportError as err:  # pragma: no cover - nothing to compare against
    print(f"SKIP: needs dlib (pip install -e '.[faces]') and scikit-image ({err})")
    sys.exit(0)

from facebrain.stimuli import (
    ArraySource,
    StimulusSet,
    align_faces,
    extract_face_chip,
    synthetic_faces,
)
from facebrain.stimuli._align import face_model_path

warnings.simplefilter("ignore")
sp = dlib.shape_predictor(str(face_model_path("landmarks5")))
hog = dlib.get_frontal_face_detector()
astro = skd.astronaut()
worst, t_ours, t_dlib = 0.0, 0.0, 0.0
for scale, angle in [(0.5, -15), (1.0, 0), (1.5, 8), (2.5, 20), (4.0, -5)]:
    img = np.asarray(Image.fromarray(astro).rotate(angle, resample=Image.BILINEAR)
                     .resize((int(512 * scale), int(512 * scale))))
    det = hog(img, 1 if scale < 1 else 0)[0]
    shape = sp(img, det)
    pts = np.array([[shape.part(j).x, shape.part(j).y] for j in range(5)], float)
    t0 = time.perf_counter()
    for _ in range(5):
        ref = dlib.get_face_chip(img, shape, 150, 0.25)
    t_dlib += time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(5):
        ours = extract_face_chip(img, pts, size=150, padding=0.25)
    t_ours += time.perf_counter() - t0
    diff = np.abs(ours.astype(int) - ref.astype(int))
    worst = max(worst, diff.mean())
    print(f"chip  scale {scale:3.1f} angle {angle:+3d}: mean |diff| {diff.mean():.2e} "
          f"max {diff.max()} grey levels")
print(f"chip  time: facebrain {t_ours / 25 * 1e3:.2f} ms, dlib {t_dlib / 25 * 1e3:.2f} ms, "
      f"ratio facebrain/dlib {t_ours / t_dlib:.2f}")

lfw = np.load(os.path.join(os.path.dirname(skd.__file__), "lfw_subset.npy"))
lfw = np.repeat((np.clip(lfw, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=3)
table = pd.DataFrame({"identity": [f"p{i}" for i in range(200)], "expression": "unknown",
                      "view": "S"}, index=pd.Index([f"s{i}" for i in range(200)],
                                                    name="stimulus_id"))
sets = {"lfw_subset": (StimulusSet(table, image_source=ArraySource(lfw)), 100),
        "synthetic": (synthetic_faces(range(20), ["neutral", "happy", "sad", "angry", "fearful",
                                                  "disgusted", "surprised"], "S",
                                      image_size=112, seed=1), None)}
with tempfile.TemporaryDirectory() as cache:
    for name, (stim, n_faces) in sets.items():
        for det in ("hog",) + (() if args.no_cnn else ("hog+cnn",)):
            t0 = time.perf_counter()
            out = align_faces(stim, detector=det, pick="largest", cache_dir=cache)
            ids = set(out.ids)
            dt = time.perf_counter() - t0
            if n_faces:
                found = sum(str(s) in ids for s in stim.ids[:n_faces])
                fp = sum(str(s) in ids for s in stim.ids[n_faces:])
                print(f"detect {name} {det:7s}: faces found {found}/{n_faces}, non-faces "
                      f"accepted {fp}/{len(stim) - n_faces}  ({dt:.1f} s)")
            else:
                print(f"detect {name} {det:7s}: faces found {len(ids)}/{len(stim)}  ({dt:.1f} s)")
if worst > 1.0:
    sys.exit(f"FAIL: a chip differs from dlib's by {worst:.3f} grey levels on average (> 1)")
print("OK: chips equal dlib's get_face_chip to <= 1 grey level (mean abs)")
