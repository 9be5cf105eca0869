"""extract(): values against a hand-written hooks forward, reducers, store, resume, dask."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from _nets import TinyConvNet, TorchvisionResNet

from facebrain.activations import extract
from facebrain.activations._reduce import Reducer
from facebrain.errors import NonFiniteActivationError, StoreMismatchError
from facebrain.stimuli import ArraySource, StimulusSet

torch.set_num_threads(1)


@pytest.fixture
def stim(rng):
    """23 stimuli (not a multiple of the batch sizes used), 13x11 images, extra columns."""
    n = 23
    ids = [f"st{i:02d}" for i in range(n)]
    table = pd.DataFrame(
        {
            "identity": [f"p{i % 5}" for i in range(n)],
            "expression": [("happy", "sad", "neutral")[i % 3] for i in range(n)],
            "view": "S",
            "session": np.arange(n) % 2,
            "path": "",
        },
        index=pd.Index(ids, name="stimulus_id"),
    )
    images = rng.integers(0, 256, size=(n, 13, 11, 3), dtype=np.uint8)
    return StimulusSet(table, image_source=ArraySource(images), name="tinyset")


def _hooks_reference(model, stimuli, modules: dict[str, torch.nn.Module]):
    """What a user writes by hand: forward hooks, full forward pass, one image at a time."""
    feats = {k: [] for k in modules}
    handles = [m.register_forward_hook(lambda mod, i, o, k=k: feats[k].append(o.detach().clone()))
               for k, m in modules.items()]
    try:
        with torch.no_grad():
            for i in range(len(stimuli)):
                model(model.preprocess(stimuli.load(i))[None])
    finally:
        for h in handles:
            h.remove()
    return {k: torch.cat(v).reshape(len(stimuli), -1).numpy() for k, v in feats.items()}


def test_matches_hooks_forward_torchvision(stim):
    model = TorchvisionResNet("resnet18", input_size=40)
    net = model.net
    ref = _hooks_reference(model, stim, {"conv1": net.maxpool, "layer2": net.layer2,
                                         "avgpool": net.avgpool})
    acts = extract(model, stim, ["avgpool", "conv1", "layer2"], batch_size=8, progress=False)
    assert acts.fb.layers == ["conv1", "layer2", "avgpool"]
    for layer in ("conv1", "layer2", "avgpool"):
        np.testing.assert_allclose(acts[layer].values, ref[layer], atol=1e-5, rtol=1e-5)
    # labelled layout from CONTRACTS.md
    assert acts["layer2"].dims == ("stimulus", "layer2_unit")
    c, y, x = (acts[f"layer2_{k}"].values for k in ("channel", "y", "x"))
    shape = tuple(acts["layer2"].attrs["shape"])
    assert shape == (128, 5, 5)
    np.testing.assert_array_equal(np.ravel_multi_index((c, y, x), shape), np.arange(128 * 25))
    assert list(acts["stimulus"].values) == list(stim.ids)
    assert "path" not in acts.coords and list(acts["session"].values) == list(stim.table.session)
    assert acts.attrs["model"] == "resnet18" and acts.attrs["stimulus_set"] == "tinyset"
    assert acts["avgpool"].attrs["reduce"] == "none"


def test_stop_early_and_channels_last(stim):
    model = TorchvisionResNet("resnet18", input_size=40)
    calls = {"layer3": 0}
    model.net.layer3.register_forward_hook(lambda *a: calls.__setitem__("layer3", 1))
    a = extract(model, stim, "layer2", batch_size=8, progress=False, channels_last=True)
    assert calls["layer3"] == 0  # never ran past the last requested layer
    b = extract(model, stim, "layer2", batch_size=8, progress=False, channels_last=False)
    np.testing.assert_allclose(a["layer2"].values, b["layer2"].values, atol=1e-5)
    # the model's memory format is restored
    assert model.net.conv1.weight.is_contiguous()


def test_reducers_match_sklearn(stim):
    from sklearn.random_projection import SparseRandomProjection

    model = TinyConvNet()
    full = extract(model, stim, ["conv1", "conv2"], batch_size=4, progress=False)
    red = extract(model, stim, ["conv1", "conv2"], batch_size=4, progress=False, seed=3,
                  reduce={"conv1": "avgpool", "conv2": "srp:17"})
    # avgpool == spatial mean of the unreduced map
    x1 = full["conv1"].values.reshape(len(stim), *full["conv1"].attrs["shape"])
    np.testing.assert_allclose(red["conv1"].values, x1.mean(axis=(2, 3)), atol=1e-6)
    assert list(red["conv1_channel"].values) == [0, 1, 2, 3]
    # srp applied batch by batch == sklearn's projection of the full matrix (same components)
    r = Reducer("srp:17", "conv2", tuple(full["conv2"].attrs["shape"]), seed=3)
    ref = SparseRandomProjection(n_components=17, random_state=r._srp.random_state,
                                 dense_output=True).fit(full["conv2"].values)
    np.testing.assert_allclose(red["conv2"].values, ref.transform(full["conv2"].values),
                               atol=1e-5)
    n_nonzero = r._srp.components_.nnz / r._srp.components_.shape[0]
    assert abs(n_nonzero - np.sqrt(r.n_features)) < 0.5 * np.sqrt(r.n_features)
    # a different seed gives a different projection
    other = extract(model, stim, "conv2", batch_size=4, progress=False, seed=4, reduce="srp:17")
    assert not np.allclose(other["conv2"].values, red["conv2"].values)


def test_incremental_pca_reducer_matches_pca(rng):
    from sklearn.decomposition import PCA

    # rank-3 signal with well separated variances plus small noise, fed in uneven batches
    n, d = 97, 40
    scores = rng.normal(size=(n, 3)) * np.array([10.0, 5.0, 2.0])
    basis = np.linalg.qr(rng.normal(size=(d, 3)))[0].T
    X = scores @ basis + 0.01 * rng.normal(size=(n, d))
    red = Reducer("pca:3", "fc", (d,))
    for a in range(0, n, 7):
        red.partial_fit(X[a:a + 7])
    red.finish_fit()
    got = np.concatenate([red(X[a:a + 7]) for a in range(0, n, 7)])
    ref = PCA(3).fit_transform(X)
    signs = np.sign((got * ref).sum(0))
    np.testing.assert_allclose(got * signs, ref, atol=0.05)  # stated tolerance: 0.05 on scale ~10
    with pytest.raises(ValueError, match="needs at least 3 stimuli"):
        r2 = Reducer("pca:3", "fc", (d,))
        r2.partial_fit(X[:2])
        r2.finish_fit()


def test_pca_two_pass_in_extract(stim):
    model = TinyConvNet()
    full = extract(model, stim, "conv2", batch_size=4, progress=False)
    acts = extract(model, stim, "conv2", batch_size=4, progress=False, reduce="pca:3")
    r = Reducer("pca:3", "conv2", tuple(full["conv2"].attrs["shape"]))
    X = full["conv2"].values
    for a in range(0, len(X), 4):
        r.partial_fit(X[a:a + 4])
    r.finish_fit()
    np.testing.assert_allclose(acts["conv2"].values, r(X), atol=1e-4)
    assert acts["conv2"].attrs["reduce"] == "pca:3"


def test_store_resume_equals_uninterrupted(stim, tmp_path):
    model = TinyConvNet()
    ref = extract(model, stim, ["conv1", "pool"], batch_size=5, progress=False)
    whole = extract(model, stim, ["conv1", "pool"], batch_size=5, progress=False,
                    store=tmp_path / "whole.zarr")
    assert whole["conv1"].chunks is not None  # lazy, dask-backed
    xr.testing.assert_identical(whole.compute(), ref)

    crashing = TinyConvNet(fail_on_call=4)  # call 1 = shape probe, calls 2-3 = batches 0-1
    path = tmp_path / "resumed.zarr"
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract(crashing, stim, ["conv1", "pool"], batch_size=5, progress=False, store=path)
    crashing.fail_on_call = None
    crashing.calls = 0
    resumed = extract(crashing, stim, ["conv1", "pool"], batch_size=5, progress=False, store=path)
    assert crashing.calls == 3  # the 3 batches left of 5 (the probe's shapes are cached)
    xr.testing.assert_identical(resumed.compute(), ref)


def test_store_refuses_other_runs(stim, tmp_path):
    path = tmp_path / "a.zarr"
    extract(TinyConvNet(seed=0), stim, ["conv1"], batch_size=5, progress=False, store=path)
    with pytest.raises(StoreMismatchError, match="state_sha256"):
        extract(TinyConvNet(seed=1), stim, ["conv1"], batch_size=5, progress=False, store=path)
    with pytest.raises(StoreMismatchError, match="layers"):
        extract(TinyConvNet(), stim, ["conv1", "conv2"], batch_size=5, progress=False, store=path)
    with pytest.raises(StoreMismatchError, match="reduce"):
        extract(TinyConvNet(), stim, ["conv1"], batch_size=5, progress=False, store=path,
                reduce="avgpool")
    # resume=False overwrites
    out = extract(TinyConvNet(seed=1), stim, ["conv1"], batch_size=5, progress=False,
                  store=path, resume=False)
    ref = extract(TinyConvNet(seed=1), stim, ["conv1"], batch_size=5, progress=False)
    np.testing.assert_array_equal(out["conv1"].values, ref["conv1"].values)
    other = tmp_path / "not_a_store"
    other.mkdir()
    (other / "precious.txt").write_text("x")
    with pytest.raises(StoreMismatchError, match="not a facebrain activation store"):
        extract(TinyConvNet(), stim, ["conv1"], progress=False, store=other, resume=False)
    assert (other / "precious.txt").exists()


def test_bad_inputs(stim):
    model = TinyConvNet()
    with pytest.raises(KeyError, match=r"available layers: \['conv1', 'conv2', 'pool', 'fc'\]"):
        extract(model, stim, ["conv1", "layer9"], progress=False)
    with pytest.raises(NonFiniteActivationError, match=r"layer 'conv2' produced 2 non-finite"):
        extract(TinyConvNet(nan=True), stim, ["conv2"], batch_size=5, progress=False)
    with pytest.raises(ValueError, match="unknown reduce spec 'srp'"):
        extract(model, stim, ["conv1"], reduce="srp", progress=False)
    with pytest.raises(ValueError, match="not being extracted"):
        extract(model, stim, ["conv1"], reduce={"conv2": "avgpool"}, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        extract(model, stim, ["conv1"], batch_size=0, progress=False)
    with pytest.raises(ValueError, match="asks for 500 components"):
        extract(model, stim, ["pool"], reduce="pca:500", progress=False)


def test_dataloader_workers_equal(stim):
    model = TinyConvNet()
    a = extract(model, stim, ["conv2"], batch_size=6, progress=False, num_workers=2)
    b = extract(model, stim, ["conv2"], batch_size=6, progress=False)
    xr.testing.assert_identical(a, b)


def test_accessor(stim):
    acts = extract(TinyConvNet(), stim, ["conv1", "fc"], progress=False)
    assert acts.fb.layers == ["conv1", "fc"]
    X = acts.fb.matrix("fc")
    assert X.shape == (23, 3) and X.dtype == np.float64
    codes, cats = acts.fb.labels("expression")
    assert cats == ["neutral", "happy", "sad"]
    np.testing.assert_array_equal(np.array(cats)[codes], stim.table.expression.to_numpy())
    with pytest.raises(KeyError, match="available layers"):
        acts.fb.matrix("conv9")
    with pytest.raises(KeyError, match="no stimulus label 'age'"):
        acts.fb.labels("age")


@pytest.mark.distributed
def test_distributed_equals_local(stim, tmp_path):
    from dask.distributed import Client, LocalCluster

    model = TinyConvNet()
    local = extract(model, stim, ["conv1", "pool"], batch_size=4, progress=False,
                    reduce={"pool": "srp:3"})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        mem = extract(model, stim, ["conv1", "pool"], batch_size=4, progress=False,
                      reduce={"pool": "srp:3"}, client=client)
        on_disk = extract(model, stim, ["conv1", "pool"], batch_size=4, progress=False,
                          reduce={"pool": "srp:3"}, client=client, store=tmp_path / "d.zarr")
    xr.testing.assert_identical(mem, local)
    xr.testing.assert_identical(on_disk.compute(), local)


def test_fused_batchnorm_matches_and_leaves_model_alone(stim):
    model = TorchvisionResNet("resnet18", input_size=40)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = extract(model, stim, ["layer1", "layer3"], batch_size=8, progress=False)
    plain = extract(model, stim, ["layer1", "layer3"], batch_size=8, progress=False,
                    fuse_bn=False, channels_last=False)
    for ly in ("layer1", "layer3"):
        scale = np.abs(plain[ly].values).max()
        np.testing.assert_allclose(fused[ly].values, plain[ly].values, atol=1e-5 * scale)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert isinstance(model.net.bn1, torch.nn.BatchNorm2d)
    # the cached fused copy follows weight changes (in place, and through .data)
    with torch.no_grad():
        model.net.bn1.weight.mul_(2)
    model.net.layer1[0].bn1.bias.data.add_(0.5)
    again = extract(model, stim, ["layer1"], batch_size=8, progress=False)
    ref = extract(model, stim, ["layer1"], batch_size=8, progress=False, fuse_bn=False)
    np.testing.assert_allclose(again["layer1"].values, ref["layer1"].values,
                               atol=1e-5 * np.abs(ref["layer1"].values).max())
    assert not np.allclose(again["layer1"].values, fused["layer1"].values)


def test_stimulus_mismatch_named(stim, tmp_path):
    from facebrain.errors import StimulusMismatchError

    path = tmp_path / "s.zarr"
    extract(TinyConvNet(), stim, ["conv1"], batch_size=5, progress=False, store=path)
    with pytest.raises(StoreMismatchError, match=r"in the store but not this StimulusSet: st21 "):
        sub = stim.subset(np.r_[0:21, 22])
        extract(TinyConvNet(), sub, ["conv1"], batch_size=5, progress=False, store=path)
    acts = extract(TinyConvNet(), stim.subset(np.arange(10)), ["conv1"], progress=False)
    sel = acts.fb.align(stim.subset([3, 1]))
    assert list(sel["stimulus"].values) == ["st03", "st01"]
    with pytest.raises(StimulusMismatchError, match="lack 13 of the 23 requested stimuli: st10"):
        acts.fb.align(stim)
    with pytest.raises(StimulusMismatchError, match="in the Activations but not the requested"):
        acts.fb.align(stim.subset([1, 2]), exact=True)


def test_pca_store_resume(stim, tmp_path):
    ref = extract(TinyConvNet(), stim, ["conv2"], batch_size=4, progress=False, reduce="pca:3")
    crashing = TinyConvNet(fail_on_call=1 + 6 + 3)  # probe, 6 fit batches, then crash
    path = tmp_path / "p.zarr"
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract(crashing, stim, ["conv2"], batch_size=4, progress=False, reduce="pca:3",
                store=path)
    crashing.fail_on_call = None
    out = extract(crashing, stim, ["conv2"], batch_size=4, progress=False, reduce="pca:3",
                  store=path)
    xr.testing.assert_identical(out.compute(), ref)
    crashing.calls = 0  # a finished store is reopened without any forward pass (the probe's
    # layer shapes are cached per model while its structure is unchanged)
    extract(crashing, stim, ["conv2"], batch_size=4, progress=False, reduce="pca:3", store=path)
    assert crashing.calls == 0
    crashing.stages["conv2"][0] = torch.nn.Conv2d(4, 5, 3, padding=2)  # new shape: probe again
    crashing.calls = 0
    with pytest.raises(StoreMismatchError):
        extract(crashing, stim, ["conv2"], batch_size=4, progress=False, reduce="pca:3",
                store=path)
    assert crashing.calls == 1


def test_pca_fit_on_a_named_subset_and_the_cv_guard(stim, tmp_path):
    """The PCA sees only the fit subset (its projections are centred on that subset alone),
    the subset is recorded, and cross-validated analyses accept only the other stimuli."""
    import xarray as xr

    from facebrain.encoding import evaluate
    from facebrain.errors import LeakageError
    from facebrain.transfer import probe

    model = TinyConvNet()
    acts = extract(model, stim, "conv2", batch_size=4, progress=False, reduce="pca:3",
                   pca_fit_on="session == 0")
    fit = stim.table["session"].to_numpy() == 0
    np.testing.assert_array_equal(acts["pca_fit"].values, fit)
    assert acts.attrs["pca_fit_on"] == "query: session == 0"
    z = acts["conv2"].values
    scale = np.abs(z).max()
    assert np.abs(z[fit].mean(0)).max() < 1e-4 * scale       # centred on the fit subset
    assert np.abs(z[~fit].mean(0)).max() > 1e-2 * scale      # ... not on the others
    full = extract(model, stim, "conv2", batch_size=4, progress=False)["conv2"].values
    # the same two-pass reducer fed the fit rows only, in batch order
    r = Reducer("pca:3", "conv2", tuple(acts["conv2"].attrs["shape"]))
    for a in range(0, len(full), 4):
        r.partial_fit(full[a:a + 4][fit[a:a + 4]])
    r.finish_fit()
    np.testing.assert_allclose(z, r(full), atol=1e-4)
    ids = list(stim.ids[:5])
    by_ids = extract(model, stim, "conv2", batch_size=4, progress=False, reduce="pca:3",
                     pca_fit_on=ids, store=tmp_path / "s.zarr")
    assert int(by_ids["pca_fit"].sum()) == 5 and "5 stimulus ids" in by_ids.attrs["pca_fit_on"]
    with pytest.raises(LeakageError, match="inside the PCA fit"):
        probe(acts, "expression", cv="leave-identity-out", n_folds=2)
    out = acts.sel(stimulus=~acts["pca_fit"])
    probe(out, "expression", cv="leave-identity-out", n_folds=2)
    brain = xr.DataArray(np.asarray(acts["conv2"].values, float) @ np.ones((3, 2)),
                         dims=("stimulus", "voxel"),
                         coords={"stimulus": acts["stimulus"].values, "voxel": ["a", "b"]})
    with pytest.raises(LeakageError, match="encoding.evaluate"):
        evaluate(acts, brain, n_folds=2, inner_cv=2)
    # the brain's stimuli outside the fit are fine
    evaluate(acts, brain.sel(stimulus=~acts["pca_fit"].values), n_folds=2, inner_cv=2,
             align="intersection")
    with pytest.raises(ValueError, match="no layer is reduced with 'pca:N'"):
        extract(model, stim, "conv2", progress=False, pca_fit_on="session == 0")


def test_srp_matrix_drawn_once_per_process_and_equal_to_a_fresh_draw(rng):
    from sklearn.random_projection import SparseRandomProjection

    from facebrain.activations import _reduce

    _reduce._SRP_MEMO.clear()
    a = Reducer("srp:9", "layerA", (3, 4, 5), seed=1)
    b = Reducer("srp:9", "layerA", (3, 4, 5), seed=1)  # another network, same layer
    assert b._srp is a._srp  # drawn once
    x = rng.standard_normal((6, 3, 4, 5)).astype(np.float32)
    fresh = SparseRandomProjection(n_components=9, random_state=a._srp.random_state,
                                   dense_output=True).fit(x.reshape(6, -1))
    np.testing.assert_array_equal(b(x), fresh.transform(x.reshape(6, -1)).astype(np.float32))
    # other seed, layer or shape: another matrix
    assert Reducer("srp:9", "layerA", (3, 4, 5), seed=2)._srp is not a._srp
    assert Reducer("srp:9", "layerB", (3, 4, 5), seed=1)._srp is not a._srp
    assert Reducer("srp:9", "layerA", (3, 4, 6), seed=1)._srp is not a._srp
    for k in range(_reduce._SRP_MEMO_SIZE + 3):  # bounded
        Reducer("srp:2", f"l{k}", (4,), seed=0)
    assert len(_reduce._SRP_MEMO) == _reduce._SRP_MEMO_SIZE
