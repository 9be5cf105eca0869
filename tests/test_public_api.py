"""The deliberate public API (issue 14): sorted ``__all__``, deprecated names and keywords.

Old names and keywords keep working for one release: each warns, names the new
spelling, and gives the same object or an identical result; old and new together raise.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

import facebrain
from facebrain._lazy import all_sort_key
from facebrain.errors import ConfigError, ParameterTypeError

ROOMS = sorted(facebrain._SUBMODULES)


@pytest.mark.parametrize("first", ["facebrain", "xarray"])
def test_import_facebrain_registers_accessor_without_torch(first):
    second = "xarray" if first == "facebrain" else "facebrain"
    code = (f"import sys, json; import {first}; light = 'xarray' not in sys.modules; "
            f"import {second}; import facebrain, xarray as xr; acc = xr.Dataset().fb; "
            "print(json.dumps([light, type(acc).__name__, acc.layers, 'torch' in sys.modules, "
            "sorted(k for k in ('facebrain.models', 'facebrain.rsa', 'facebrain.pipeline', "
            "'sklearn', 'rsatoolbox', 'nilearn', 'dask') if k in sys.modules), "
            "facebrain.errors.ParameterError.__mro__[2].__name__]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [
        first == "facebrain", "FacebrainAccessor", [], False, [], "ValueError"]


def test_top_level_all_lists_errors_and_resolves():
    assert "errors" in facebrain.__all__
    assert facebrain.errors is importlib.import_module("facebrain.errors")
    for name in facebrain.__all__:
        assert getattr(facebrain, name) is not None


@pytest.mark.parametrize("room", ["facebrain", *[f"facebrain.{r}" for r in ROOMS]])
def test_all_is_sorted_unique_strings(room):
    names = importlib.import_module(room).__all__
    assert all(isinstance(n, str) for n in names)
    assert list(names) == sorted(set(names), key=all_sort_key)


@pytest.mark.parametrize("room", ROOMS)
def test_every_public_name_resolves_without_warning(room):
    mod = importlib.import_module(f"facebrain.{room}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for name in mod.__all__:
            assert getattr(mod, name) is not None, name


def _deprecated(room):
    getattr_ = importlib.import_module(f"facebrain.{room}").__getattr__
    return getattr_.deprecated


DEPRECATED = [(room, name) for room in ROOMS if room != "errors"
              for name in sorted(_deprecated(room))]


def test_issue_names_are_deprecated_not_public():
    assert {("transfer", "make_pipeline"), ("models", "dag_to_torchvision"),
            ("models", "safe_pickle_load"), ("activations", "Reducer"),
            ("activations", "parse_reduce"), ("activations", "state_sha256"),
            ("brain", "noise_ceiling"), ("rsa", "noise_ceiling")} <= set(DEPRECATED)


@pytest.mark.parametrize(("room", "name"), DEPRECATED)
def test_deprecated_name_warns_and_is_the_new_object(room, name):
    mod = importlib.import_module(f"facebrain.{room}")
    target_mod, attr, advice = _deprecated(room)[name]
    assert advice.startswith(("use facebrain.", "it is internal (import it from facebrain."))
    new = getattr(importlib.import_module(target_mod, mod.__name__), attr)
    assert name not in mod.__all__ and name not in dir(mod)
    with pytest.warns(DeprecationWarning, match=rf"facebrain\.{room}\.{name} is deprecated"):
        old = getattr(mod, name)
    assert old is new
    with pytest.warns(DeprecationWarning):  # warns on every access (not cached)
        assert getattr(mod, name) is new


def test_renamed_functions_point_to_the_new_names():
    from facebrain.brain import voxel_noise_ceiling
    from facebrain.transfer import make_probe_pipeline

    with pytest.warns(DeprecationWarning, match="voxel_noise_ceiling"):
        assert facebrain.brain.noise_ceiling is voxel_noise_ceiling
    with pytest.warns(DeprecationWarning, match="make_probe_pipeline"):
        assert facebrain.transfer.make_pipeline is make_probe_pipeline
    with pytest.warns(DeprecationWarning, match="rsa_noise_ceiling"):
        old = facebrain.rsa.noise_ceiling
    assert facebrain.rsa.rsa_noise_ceiling is facebrain.brain.rsa_noise_ceiling
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(1, 15)) + 0.5 * rng.normal(size=(4, 15))
    lo, hi = old(vecs, "corr")
    from rsatoolbox.rdm import RDMs

    assert (lo, hi) == pytest.approx(facebrain.rsa.rsa_noise_ceiling(RDMs(vecs), method="corr"))


@pytest.fixture(scope="module")
def rsa_data():
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(8)]
    x = rng.normal(size=(8, 5))
    acts = xr.Dataset({"fc": (("stimulus", "fc_unit"), x),
                       "conv": (("stimulus", "conv_unit"), rng.normal(size=(8, 4)))},
                      coords={"stimulus": ids})
    vox = 6
    brain = xr.DataArray(
        np.concatenate([x @ rng.normal(size=(5, 3)) + rng.normal(size=(8, 3))
                        for _ in range(2)], axis=1),
        dims=("stimulus", "voxel"),
        coords={"stimulus": ids, "roi": ("voxel", ["FFA"] * vox),
                "subject": ("voxel", ["01"] * 3 + ["02"] * 3)})
    return acts, brain


def test_compare_old_keywords_warn_and_equal_new(rsa_data):
    from facebrain.rsa import compare

    acts, brain = rsa_data
    new = compare(acts, brain, n_bootstrap=7, ceiling=False, seed=2)
    with pytest.warns(FutureWarning) as rec:
        old = compare(acts, brain, bootstrap=7, noise_ceiling=False, seed=2)
    messages = " ".join(str(w.message) for w in rec)
    assert "use n_bootstrap=" in messages and "use ceiling=" in messages
    xr.testing.assert_identical(old, new)
    assert new.attrs["n_bootstrap"] == 7 and np.isnan(new["ceiling_lower"]).all()
    with_ceiling = compare(acts, brain, seed=2)
    assert np.isfinite(with_ceiling["ceiling_lower"]).all()
    with pytest.raises(ParameterTypeError, match="both bootstrap= .* and n_bootstrap="):
        compare(acts, brain, bootstrap=3, n_bootstrap=3)
    with pytest.raises(TypeError, match="both noise_ceiling="):
        compare(acts, brain, noise_ceiling=False, ceiling=False)


def test_evaluate_old_keyword_warns_and_equals_new():
    from facebrain.encoding import evaluate

    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(24)]
    x = rng.normal(size=(24, 5))
    acts = xr.Dataset({"fc": (("stimulus", "fc_unit"), x),
                       "fc2": (("stimulus", "fc2_unit"), x[:, :2])},
                      coords={"stimulus": ids, "identity": ("stimulus", [f"p{i % 6}" for i in
                                                                         range(24)])})
    brain = xr.DataArray(x @ rng.normal(size=(5, 2)) + rng.normal(size=(24, 2)),
                         dims=("stimulus", "voxel"),
                         coords={"stimulus": ids, "voxel": ["a", "b"],
                                 "roi": ("voxel", ["FFA", "FFA"])})
    kw = {"n_folds": 3, "inner_cv": 2, "alphas": np.logspace(-3, 3, 7)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", facebrain.errors.AlphaGridWarning)
        new = evaluate(acts, brain, n_bootstrap=9, **kw)
        with pytest.warns(FutureWarning, match=r"evaluate\(bootstrap=...\) is deprecated.*"
                                               "use n_bootstrap="):
            old = evaluate(acts, brain, bootstrap=9, **kw)
    assert new.sizes["bootstrap"] == 9
    xr.testing.assert_identical(old, new)
    # warnings about the call still name the caller's line, not the keyword shim
    with pytest.warns(facebrain.errors.AlphaGridWarning) as rec:
        evaluate(acts, brain, n_folds=3, inner_cv=2, alphas=[1e6, 1e7])
    assert {w.filename for w in rec} == {__file__}
    with pytest.raises(TypeError, match="both bootstrap="):
        evaluate(acts, brain, bootstrap=9, n_bootstrap=9, **kw)


def test_old_config_keys_warn_and_load_as_new():
    from facebrain.pipeline import load_config

    new = load_config(overrides={"rsa.n_bootstrap": 7, "rsa.ceiling": False,
                                 "encoding.n_bootstrap": 3})
    with pytest.warns(FutureWarning) as rec:
        old = load_config(overrides={"rsa.bootstrap": 7, "rsa.noise_ceiling": False,
                                     "encoding.bootstrap": 3})
    assert sorted(str(w.message).split(";")[1] for w in rec) == [
        " use encoding.n_bootstrap.", " use rsa.ceiling.", " use rsa.n_bootstrap."]
    assert old.to_dict() == new.to_dict()
    assert (new.rsa.n_bootstrap, new.rsa.ceiling, new.encoding.n_bootstrap) == (7, False, 3)
    with pytest.warns(FutureWarning) as rec:  # YAML data and --set strings
        cli = load_config({**new.to_dict(), "encoding": {"bootstrap": 3}},
                          overrides=["rsa.bootstrap=7", "rsa.noise_ceiling=false"])
    assert len(rec) == 3 and {w.filename for w in rec} == {__file__}
    assert (cli.rsa.n_bootstrap, cli.rsa.ceiling, cli.encoding.n_bootstrap) == (7, False, 3)
    data = new.to_dict()
    data["rsa"]["bootstrap"] = 5
    with pytest.raises(ConfigError, match=r"rsa: both 'bootstrap' \(deprecated\) and "
                                          "'n_bootstrap'"):
        load_config(data)


def test_config_dataclasses_take_the_old_keywords_in_python():
    """``RSAConfig(bootstrap=...)`` built in Python warns and equals the new spelling, as
    the YAML key and --set do."""
    from facebrain.pipeline import EncodingConfig, RSAConfig

    with pytest.warns(FutureWarning, match=r"RSAConfig\(bootstrap=...\) is deprecated.*"
                                           "use n_bootstrap=") as rec:
        old = RSAConfig(bootstrap=7, noise_ceiling=False)
    assert len(rec) == 2 and {w.filename for w in rec} == {__file__}
    assert old == RSAConfig(n_bootstrap=7, ceiling=False)
    with pytest.warns(FutureWarning, match=r"EncodingConfig\(bootstrap=...\)"):
        assert EncodingConfig(bootstrap=3) == EncodingConfig(n_bootstrap=3)
    with pytest.raises(TypeError, match=r"RSAConfig\(\) got both bootstrap="):
        RSAConfig(bootstrap=7, n_bootstrap=7)
    assert RSAConfig().n_bootstrap == 200  # defaults untouched


def test_accessor_survives_a_probing_find_spec():
    """dask and pandas probe optional packages with ``importlib.util.find_spec``; that must
    not use up the hook that registers ``acts.fb`` (the demo's probe failed this way)."""
    import subprocess
    import sys

    code = ("import importlib.util, facebrain; importlib.util.find_spec('xarray'); "
            "import xarray as xr; print(hasattr(xr.Dataset(), 'fb'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "True"
