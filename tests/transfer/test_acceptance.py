"""Acceptance mechanics: identity-trained small_resnet -> expression probe on synthetic KDEF.

The default run checks the mechanics on tiny sets; the full claim (above chance,
p < 0.01 at the best layer, untrained network beside it) is the slow test and
``benchmarks/bench_transfer_acceptance.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_transfer_acceptance.py"


def _run(**kw):
    pytest.importorskip("facebrain.training")
    spec = importlib.util.spec_from_file_location("bench_transfer_acceptance", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    lines = []
    return mod.run(progress=False, log=lines.append, **kw), lines


def test_acceptance_mechanics_tiny():
    r, lines = _run(n_identities=6, images_per_identity=6, epochs=1, width=4, size=32,
                    views=("S",), n_kdef_identities=10, n_folds=5, n_permutations=9, srp=32)
    for tag in ("trained", "untrained"):
        res = r[tag]["res"]
        assert res.sizes == {"layer": 6, "fold": 5, "true": 7, "predicted": 7,
                             "permutation": 9, "stimulus": 70}
        assert res.attrs["target"] == "expression"
        perm = r[tag]["perm"]
        assert list(perm.layer.values) == [r["best_layer"]]
        assert perm.sizes["permutation"] == 9
        # p recomputed from the stored null (an independent count, not the set p is drawn from)
        null = perm.null_accuracy.values[0]
        obs = float(perm.accuracy_mean[0])
        assert float(perm.p_value[0]) == pytest.approx((1 + np.sum(null >= obs - 1e-12)) / 10)
        null_max = res.null_accuracy.max("layer").values
        assert float(perm.p_value_fwe[0]) == pytest.approx(
            (1 + np.sum(null_max >= obs - 1e-12)) / 10)
        assert float(perm.p_value_fwe[0]) >= float(perm.p_value[0])
        ids = r[tag]["acts"]["identity"].values
        for k in range(5):
            test = res.test_fold.values == k
            assert not set(ids[test]) & set(ids[~test])
    assert r["chance"] == pytest.approx(1 / 7)
    assert r["trained"]["acts"].attrs["model"] == "small_resnet"
    assert any("untrained" in line for line in lines)


@pytest.mark.slow
def test_acceptance_full():
    r, lines = _run(n_identities=40, images_per_identity=30, epochs=8, width=16, size=64,
                    n_permutations=100)
    print("\n".join(lines))
    perm = r["trained"]["perm"]
    assert float(perm.accuracy_mean[0]) > r["chance"]
    assert float(perm.p_value_fwe[0]) < 0.01
    assert "untrained" in r and np.isfinite(float(r["untrained"]["perm"].accuracy_mean[0]))
