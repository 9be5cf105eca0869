"""The rsa / encoding stages: degenerate layers and reference features (issue 12, item 14)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from facebrain.pipeline import StageContext, load_config
from facebrain.pipeline import _brain_stages as bs

N = 14


def _acts(layers: dict[str, np.ndarray]) -> xr.Dataset:
    ids = [f"s{i:02d}" for i in range(N)]
    ds = xr.Dataset({k: (("stimulus", f"{k}_unit"), v) for k, v in layers.items()},
                    coords={"stimulus": ids,
                            "identity": ("stimulus", [f"p{i % 4}" for i in range(N)])})
    return ds


@pytest.fixture
def planted(monkeypatch):
    rng = np.random.default_rng(11)
    good = rng.standard_normal((N, 9))
    nan = rng.standard_normal((N, 5))
    nan[3, 2] = np.nan
    net = _acts({"layer2": nan, "layer3": np.ones((N, 6)), "layer4": good})
    ref = _acts({"pixels": rng.standard_normal((N, 7)),
                 "identity_labels": np.eye(4)[[i % 4 for i in range(N)]]})
    ids = [f"s{i:02d}" for i in range(N)]
    # two subjects' FFA responses: a noisy linear readout of the good layer
    cols = good @ rng.standard_normal((9, 10)) + 0.5 * rng.standard_normal((N, 10))
    resp = xr.DataArray(cols, dims=("stimulus", "voxel"), name="responses",
                        coords={"stimulus": ids, "voxel": [f"{s}|rFFA|{i}" for s in "ab"
                                                           for i in range(5)],
                                "roi": ("voxel", ["rFFA"] * 10),
                                "subject": ("voxel", ["01"] * 5 + ["02"] * 5)})
    monkeypatch.setattr(bs, "load_activations",
                        lambda folder, name: ref if name == "reference" else net)
    monkeypatch.setattr(bs, "load_responses", lambda folder: resp)
    return good, resp


def _ctx(tmp_path, **rsa):
    cfg = load_config({
        "stimuli": {"test": {"source": "synthetic_kdef"}},
        "models": [{"name": "net", "arch": "small_resnet", "layers": ["layer2", "layer3",
                                                                     "layer4"]}],
        # baselines need the stimuli stage; this test is about degenerate layers only
        "rsa": {"n_bootstrap": 0, "ceiling": False, "standardize": False, "baselines": [],
                **rsa},
        "encoding": {"baselines": [], "n_bootstrap": 0},
        "transfer": {"disentangle": False},
    })
    return StageContext(config=cfg, stage="rsa", dir=tmp_path, run_dir=tmp_path,
                        inputs={"extract": tmp_path, "brain": tmp_path}, keys={},
                        log=lambda s: None)


def test_constant_and_nan_layers_are_nan_and_the_others_scored(planted, tmp_path):
    good, resp = planted
    with pytest.warns(RuntimeWarning) as record:
        bs.stage_rsa(_ctx(tmp_path))
    text = " ".join(str(w.message) for w in record)
    assert "layer 'layer2' is not finite" in text and "layer 'layer3' is constant" in text
    res = xr.load_dataset(tmp_path / "rsa__net.nc")
    assert list(res["layer"].values) == ["layer2", "layer3", "layer4"]
    score = res["score"].sel(roi="rFFA")
    assert np.isnan(score.sel(layer=["layer2", "layer3"]).values).all()
    # the good layer equals scipy: Spearman between correlation-distance RDMs, per subject
    sub = np.asarray(resp["subject"].values)
    for s in ("01", "02"):
        ref = spearmanr(pdist(good, "correlation"),
                        pdist(resp.values[:, sub == s], "correlation")).statistic
        assert float(score.sel(layer="layer4", subject=s)) == pytest.approx(ref, abs=1e-10)
    assert list(np.atleast_1d(res.attrs["nan_layers"])) == ["layer2", "layer3"]


def test_rsa_layers_keep_the_reference_features(planted, tmp_path):
    bs.stage_rsa(_ctx(tmp_path, layers=["layer4"]))  # was: reference got no layer and failed
    net = xr.load_dataset(tmp_path / "rsa__net.nc")
    ref = xr.load_dataset(tmp_path / "rsa__reference.nc")
    assert list(net["layer"].values) == ["layer4"]
    assert sorted(ref["layer"].values) == ["identity_labels", "pixels"]
    bs.stage_rsa(_ctx(tmp_path, layers=["layer4", "pixels"]))
    ref = xr.load_dataset(tmp_path / "rsa__reference.nc")
    assert list(ref["layer"].values) == ["pixels"]


def test_nan_layer_in_encoding_is_nan_and_the_others_scored(planted, tmp_path, monkeypatch):
    _good, resp = planted
    resp = resp.assign_coords(x=("voxel", np.arange(10.0)), y=("voxel", np.zeros(10)),
                              z=("voxel", np.zeros(10)))
    monkeypatch.setattr(bs, "load_responses", lambda folder: resp)
    ctx = _ctx(tmp_path)
    ctx.config.encoding.n_folds = 2
    ctx.config.encoding.inner_cv = 2
    ctx.config.encoding.alphas = [1.0, 100.0]
    with pytest.warns(RuntimeWarning, match="layer 'layer2' is not finite"):
        bs.stage_encoding(ctx)  # was: ValueError "Input X contains NaN" for the whole stage
    res = xr.load_dataset(tmp_path / "encoding__net.nc")
    assert list(res["layer"].values) == ["layer2", "layer3", "layer4"]
    assert np.isnan(res["r2"].sel(layer="layer2").values).all()
    assert np.isfinite(res["r2"].sel(layer=["layer3", "layer4"]).values).all()
