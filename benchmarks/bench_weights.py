"""Safe weight loading at full size: cost against the unsafe baseline, and agreement.

For the full VGGFace2 ResNet-50 (8631 classes, ~42 M parameters) with random
weights written in the three published formats (Python-2 NumPy pickle,
MatConvNet ``_dag.pth``, facebrain torch state dict):

- baseline: what published code does -- ``pickle.load(f, encoding="latin1")``
  (runs anything the file asks for) or ``torch.load`` + ``load_state_dict`` with the
  keys renamed by hand;
- facebrain: ``load_weights`` (sha256, content sniffing, restricted unpickler or
  ``weights_only=True``, key/shape checks).

Every loaded model must give outputs identical (max |diff| == 0) to the source
model on a 224 x 224 batch, and the source must match an independent functional
forward of the MatConvNet definition to 1e-5 relative to the largest logit. Timings on a shared machine are
noisy; read the ratio.

    .venv/bin/python benchmarks/bench_weights.py [--batch 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models"))
from _perturb import perturb  # benchmarks/ is on sys.path when run as a script
from _timing import best_of
from vggface2_fakes import dag_forward, randomise_bn, write_release_files

from facebrain.models import create, load_weights
from facebrain.models._resnet import torchvision_to_stages
from facebrain.models._vggface2 import dag_to_torchvision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    src = randomise_bn(create("resnet50_vggface2"), 1).eval()
    x = torch.randn(args.batch, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = src(x)
    with tempfile.TemporaryDirectory() as tmp:
        paths, dag = write_release_files(src, Path(tmp))
        with torch.no_grad():
            ref = dag_forward(dag, x)
        scale = expected.abs().max().item()
        diff_ref = float(np.abs(perturb(ref.numpy()) - expected.numpy()).max()) / scale
        print(f"functional MatConvNet forward vs model: max|diff| / max|logit| = "
              f"{diff_ref:.2e} (tol 1e-5; max|logit| = {scale:.1f})")
        ok = diff_ref <= 1e-5
        target = create("resnet50_vggface2").eval()

        def baseline(fmt):
            if fmt == "pkl":
                with open(paths["pkl"], "rb") as f:
                    raw = pickle.load(f, encoding="latin1")  # unsafe: runs any payload
                sd = {k: torch.from_numpy(v) for k, v in raw.items()}
            else:
                sd = torch.load(paths[fmt], map_location="cpu", weights_only=True)
                if fmt == "dag":
                    sd = dag_to_torchvision(sd)
            sd = torchvision_to_stages(sd)
            target.load_state_dict(sd, strict=False)
            return target

        print(f"{'format':8s} {'size_MB':>8s} {'baseline_s':>11s} {'facebrain_s':>12s} "
              f"{'ratio':>6s} {'max|diff|':>10s}")
        for fmt in ("pkl", "dag", "torch"):
            t_base, _ = best_of(lambda fmt=fmt: baseline(fmt), args.repeats)
            t_fb, net = best_of(lambda fmt=fmt: load_weights(target, paths[fmt]), args.repeats)
            with torch.no_grad():
                diff = (net(x) - expected).abs().max().item()
            ok &= diff == 0.0
            size = paths[fmt].stat().st_size / 1e6
            print(f"{fmt:8s} {size:8.1f} {t_base:11.3f} {t_fb:12.3f} {t_fb / t_base:6.2f} "
                  f"{diff:10.2e}")
    print("AGREE" if ok else "DISAGREE")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
