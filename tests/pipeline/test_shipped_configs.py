"""Every shipped config runs end to end on tiny fakes of its inputs (real stages).

Sizes are shrunk with overrides (the CLI's ``--set``); the structure of each
config (stages, models, directions, drivers) is what ships. The full demo
belongs to ``make demo``.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import xarray as xr

from facebrain.errors import StageError
from facebrain.pipeline import load_config, run
from facebrain.report import read_results

from . import _fakes

REPO = Path(__file__).resolve().parents[2]
STAGES = ["stimuli", "train", "extract", "transfer", "brain", "rsa", "encoding", "report"]


@pytest.fixture(scope="module", autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(None, out=out, overrides=_fakes.DEMO_TINY, log=lines.append)
    return res, lines


def test_demo_runs_every_stage_and_writes_report_and_results(demo):
    res, lines = demo
    assert list(res.statuses) == STAGES and set(res.statuses.values()) == {"computed"}
    for stage in STAGES:
        assert any(ln.startswith(f"[{stage}] ") and ln.endswith(" s") for ln in lines), stage
    assert res.report.is_file() and res.results.is_file()
    groups = read_results(res.results)
    cfg = res.config
    for d in cfg.transfer.directions:
        for m in d.models:
            ds = groups[f"transfer/{d.label}/{m}"]
            assert ds.attrs["target"] == d.target and list(ds["layer"].values) == ["layer2",
                                                                                   "layer4"]
            assert ds.sizes["permutation"] == 2
        # baselines beside every network, with p corrected for the layer choice
        from facebrain.pipeline._transfer_stage import direction_candidates

        kinds = {}
        for m, kind, _ in direction_candidates(cfg, d):
            ds = groups[f"transfer/{d.label}/{m}"]
            kinds[kind] = kinds.get(kind, 0) + 1
            assert ds.attrs["candidate_kind"] == kind and ds.attrs["features"] == "srp:64"
            null_max = ds["null_accuracy"].max("layer").values
            obs = ds["accuracy_mean"].values
            fwe = (1 + (null_max[None, :] >= obs[:, None] - 1e-12).sum(1)) / 3
            assert list(ds["p_value_fwe"].values) == pytest.approx(list(fwe))
        assert kinds == {"network": 2, "untrained": 2, "pixels": 1}
    for m in ("identity_net", "expression_net", "untrained", "reference"):
        assert {"score_mean", "ceiling_lower"} <= set(groups[f"rsa/{m}"].data_vars)
        assert "r2" in groups[f"encoding/{m}"]
    resp = groups["brain/responses"]["responses"]
    assert sorted(set(resp["subject"].values)) == ["01", "02"]
    assert sorted(set(resp["roi"].values)) == sorted(cfg.brain.drivers)
    assert resp.sizes["stimulus"] == 4 * 7  # scanner: 4 identities x 7 expressions, view S
    summary = res.summaries["report"]
    assert summary["n_figures"] >= 12 and set(summary["recovered"]) == set(cfg.brain.drivers)
    html = res.report.read_text()
    assert html.count("<img ") == summary["n_figures"]
    # provenance lists each stage's key
    for stage in STAGES[:-1]:
        assert res.keys[stage] in html


def test_demo_recovers_the_planted_drivers_with_corrected_statistics(demo):
    """Values, not keys: each ROI's selected candidate against the simulator's planted driver.

    Planted (configs/demo.yaml): rFFA <- identity_net:layer4, rOFA <- identity_net:layer2,
    rpSTS <- expression labels, EVC <- pixels (contrast energy). At the tiny test size RSA
    ranks every layer driver first; the label driver is separated from the runner-up with a
    selection-corrected p; encoding (2 training identities per fold) only recovers the label
    driver, and the report must say so rather than crown a bare argmax.
    """
    res, _ = demo
    rec = res.summaries["report"]["recovered"]
    planted = {"rFFA": "identity_net:layer4", "rOFA": "identity_net:layer2",
               "rpSTS": "reference:expression_labels", "EVC": "reference:pixels"}
    assert set(rec) == set(planted)
    for roi, driver in planted.items():
        for method in ("rsa", "encoding"):
            f = rec[roi][method]
            assert f["planted"] == driver
            assert f["diff"] >= 0 and len(f["diff_ci"]) == 2 and 0 < f["p_diff_fwe"] <= 1
            # the verdict follows from the statistics, not from the argmax alone
            sig = f["p_diff_fwe"] < 0.05
            expect = ("yes" if f["selected"] == driver and sig else
                      "tied" if driver in (f["selected"], f["runner_up"]) and not sig else "no")
            assert f["verdict"] == expect, (roi, method, f)
    for roi in ("rFFA", "rOFA"):
        assert rec[roi]["rsa"]["selected"] == planted[roi] and rec[roi]["rsa"]["planted_rank"] == 1
    # EVC's planted driver is pixel contrast energy: a pixel candidate must win (the grayscale
    # pixel baseline and the contrast-energy reference are near-identical RDMs)
    assert rec["EVC"]["rsa"]["selected"] in ("reference:pixels", "pixels:pixels")
    for method in ("rsa", "encoding"):
        assert rec["rpSTS"][method]["selected"] == planted["rpSTS"]
        assert rec["rpSTS"][method]["verdict"] == "yes"
        assert rec["rpSTS"][method]["diff_ci"][0] > 0
    sel = xr.load_dataset(res.results, group="rsa/selection", engine="h5netcdf")
    assert {"identity_net:layer4", "untrained@identity_net:layer4", "pixels:pixels",
            "reference:pixels"} <= set(map(str, sel["candidate"].values))
    con = xr.load_dataset(res.results, group="rsa/contrasts", engine="h5netcdf")
    assert "identity_net-untrained@identity_net@layer4" in set(map(str, con["contrast"].values))


def test_demo_rerun_is_cached_and_a_change_recomputes_only_downstream(demo, tmp_path):
    res, _ = demo
    lines: list[str] = []
    again = run(None, out=res.run_dir, overrides=_fakes.DEMO_TINY, log=lines.append)
    assert set(again.statuses.values()) == {"cached"} and again.keys == res.keys
    assert all(ln.endswith("(cached)") for ln in lines)
    # a copy of the run folder, so the other tests keep their cache
    copy = tmp_path / "copy"
    shutil.copytree(res.run_dir, copy)
    changed = run(None, out=copy, overrides={**_fakes.DEMO_TINY, "rsa.method": "corr"},
                  log=lambda s: None)
    assert [s for s, v in changed.statuses.items() if v == "computed"] == ["rsa", "report"]
    assert changed.keys["encoding"] == res.keys["encoding"]
    rsa = xr.load_dataset(changed.dirs["rsa"] / "rsa__identity_net.nc")
    assert rsa.attrs["method"] == "corr"


def test_corrupted_stage_output_is_detected_and_recomputed_identically(demo, tmp_path):
    res, _ = demo
    copy = tmp_path / "copy"
    shutil.copytree(res.run_dir, copy)
    victim = copy / "transfer" / res.keys["transfer"] / "probe__expression_from_identity_net__identity_net.nc"
    original = xr.load_dataset(victim)
    victim.write_bytes(victim.read_bytes()[:100])  # truncated on disk
    with pytest.warns(RuntimeWarning, match="transfer.*not valid.*size of probe__"):
        again = run(None, out=copy, overrides=_fakes.DEMO_TINY, log=lambda s: None)
    assert again.statuses["transfer"] == "computed"
    assert {again.statuses[s] for s in STAGES if s != "transfer"} == {"cached"}
    xr.testing.assert_identical(xr.load_dataset(victim), original)


def test_interrupted_extraction_resumes_to_the_same_activations(demo, tmp_path, monkeypatch):
    import facebrain.activations as acts_mod
    from facebrain.pipeline._stages import load_activations

    res, _ = demo
    copy = tmp_path / "copy"
    shutil.copytree(res.run_dir, copy)
    real = acts_mod.extract
    calls = []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # killed while extracting the second network
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(acts_mod, "extract", dying)
    with pytest.raises(KeyboardInterrupt):
        run(None, out=copy, overrides=_fakes.DEMO_TINY, from_stage="extract", log=lambda s: None)
    assert not (copy / "extract" / res.keys["extract"]).exists()
    assert (copy / "extract" / f"{res.keys['extract']}.partial").is_dir()
    monkeypatch.setattr(acts_mod, "extract", real)
    lines: list[str] = []
    again = run(None, out=copy, overrides=_fakes.DEMO_TINY, log=lines.append)
    assert again.statuses["extract"] == "resumed" and again.statuses["transfer"] == "cached"
    for m in ("identity_net", "expression_net", "untrained"):
        xr.testing.assert_identical(load_activations(again.dirs["extract"], m).load(),
                                    load_activations(res.dirs["extract"], m).load())


def test_interrupted_training_resumes_to_the_same_weights(demo, tmp_path, monkeypatch):
    from facebrain import training

    res, _ = demo
    copy = tmp_path / "copy"
    shutil.copytree(res.run_dir, copy)
    real = training.fit_classifier
    calls = []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # killed while training the second network
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "fit_classifier", dying)
    monkeypatch.setenv("FACEBRAIN_STAGE_PROCESSES", "1")  # the patch lives in this process
    with pytest.raises(KeyboardInterrupt):
        run(None, out=copy, overrides=_fakes.DEMO_TINY, from_stage="train", log=lambda s: None)
    monkeypatch.setattr(training, "fit_classifier", real)
    again = run(None, out=copy, overrides=_fakes.DEMO_TINY, log=lambda s: None)
    assert again.statuses["train"] == "resumed" and again.statuses["extract"] == "cached"
    for m in ("identity_net", "expression_net"):
        a = torch.load(again.dirs["train"] / m / "best.pt", weights_only=True)["model"]
        b = torch.load(res.dirs["train"] / m / "best.pt", weights_only=True)["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_reverse_direction_config(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(REPO / "configs" / "reverse_direction.yaml", out=tmp_path,
                  overrides={**_fakes.REVERSE_TINY, "report.enabled": False}, log=lambda s: None)
    assert res.statuses["brain"] == "disabled" and res.statuses["train"] == "computed"
    tr = xr.load_dataset(res.dirs["transfer"] / "probe__identity_from_expression_net__expression_net.nc")
    assert tr.attrs["target"] == "identity" and "leave-expression-out" in tr.attrs["cv"]


def test_poster_config_on_fake_kdef_lfw_and_weights(tmp_path, monkeypatch):
    kdef = _fakes.make_kdef(tmp_path / "KDEF")
    lfw = _fakes.make_lfw(tmp_path / "lfw")
    weights = _fakes.make_vggface2_weights(tmp_path / "vggface2.pt")
    monkeypatch.setenv("KDEF_ROOT", str(kdef))
    monkeypatch.setenv("LFW_ROOT", str(lfw))
    monkeypatch.setenv("VGGFACE2_WEIGHTS", str(weights))
    monkeypatch.delenv("LFW_PAIRS", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(REPO / "configs" / "poster_kdef.yaml", out=tmp_path / "run",
                  overrides={**_fakes.POSTER_TINY, "report.enabled": False}, log=lambda s: None)
    info = json.loads((res.dirs["train"] / "resnet50_vggface2" / "model.json").read_text())
    assert info["weights_sha256"] and info["trained"] is False
    assert (res.dirs["train"] / "siamese_lfw" / "metrics.jsonl").is_file()
    ident = xr.load_dataset(res.dirs["transfer"] / "probe__identity__resnet50_vggface2.nc")
    expr = xr.load_dataset(res.dirs["transfer"] / "probe__expression__siamese_lfw.nc")
    assert ident.attrs["head"] == "fc" and ident.sizes["fold"] == 7  # 7 held-out expressions
    assert expr.attrs["cv"] == "kdef10" and expr.sizes["fold"] == 3  # 3 of the 10 sets present
    assert res.summaries["stimuli"]["kdef"] == {"n": 21, "identities": 3, "expressions": 7,
                                                "rejected": 0}


def test_fmri_bids_config_on_simulated_bids(tmp_path, monkeypatch):
    manifest, stim = _fakes.make_manifest(tmp_path / "stimuli")
    bids = _fakes.make_bids(tmp_path / "bids", stim)
    weights = _fakes.make_vggface2_weights(tmp_path / "vggface2.pt")
    monkeypatch.setenv("STIMULI_MANIFEST", str(manifest))
    monkeypatch.setenv("BIDS_ROOT", str(bids))
    monkeypatch.setenv("VGGFACE2_WEIGHTS", str(weights))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(REPO / "configs" / "fmri_bids.yaml", out=tmp_path / "run",
                  overrides=_fakes.FMRI_TINY, log=lambda s: None)
    assert res.statuses["transfer"] == "disabled"
    resp = xr.load_dataset(res.dirs["brain"] / "responses.nc")["responses"]
    assert sorted(set(resp["roi"].values)) == ["EVC", "rFFA", "rOFA", "rpSTS"]
    assert sorted(set(resp["subject"].values)) == ["01", "02"]
    assert resp.sizes["stimulus"] == len(stim)
    # the simulator's identity-driven rFFA is best matched by the identity label model
    rsa = xr.load_dataset(res.dirs["rsa"] / "rsa__reference.nc")["score_mean"]
    assert str(rsa.sel(roi="rFFA").idxmax("layer").values) == "identity_labels"
    assert str(rsa.sel(roi="rpSTS").idxmax("layer").values) == "expression_labels"
    assert res.report.is_file()


def test_weights_of_the_wrong_model_stop_with_the_key(tmp_path):
    from facebrain.models import create

    wrong = tmp_path / "small.pt"
    torch.save(create("small_resnet", num_classes=5).state_dict(), wrong)
    cfg = {"stimuli": {"test": {"source": "synthetic_kdef", "image_size": 32, "identities": 2,
                                "views": ["S"], "sessions": ["A"]}},
           "models": [{"name": "vgg", "arch": "resnet50_vggface2", "weights": str(wrong)}],
           "brain": {"source": "none"}}
    with pytest.raises(StageError) as err:
        run(cfg, out=tmp_path / "run", log=lambda s: None)
    msg = str(err.value)
    assert "models[0].weights" in msg and "small.pt" in msg and "resnet50_vggface2" in msg
    assert not list((tmp_path / "run" / "train").glob("*/manifest.json"))


def test_missing_dataset_path_is_a_config_error(tmp_path, monkeypatch):
    from facebrain.errors import ConfigError

    monkeypatch.setenv("KDEF_ROOT", str(tmp_path / "nowhere"))
    monkeypatch.setenv("LFW_ROOT", str(tmp_path))
    monkeypatch.setenv("VGGFACE2_WEIGHTS", str(tmp_path / "w.pkl"))
    with pytest.raises(ConfigError, match=r"stimuli\.kdef\.root: directory not found: .*nowhere"):
        load_config(REPO / "configs" / "poster_kdef.yaml")
    monkeypatch.setenv("KDEF_ROOT", str(tmp_path))
    with pytest.raises(ConfigError, match=r"models\[0\]\.weights: file not found: .*w\.pkl"):
        load_config(REPO / "configs" / "poster_kdef.yaml")
    monkeypatch.delenv("KDEF_ROOT")
    with pytest.raises(ConfigError, match=r"stimuli\.kdef\.root: environment variable "
                                          r"\$\{KDEF_ROOT\} is not set"):
        load_config(REPO / "configs" / "poster_kdef.yaml")





@pytest.mark.browser
def test_demo_report_renders_in_headless_chromium(demo, tmp_path, chromium):
    from facebrain.report._browser import check_in_browser
    res, _ = demo
    shot = tmp_path / "demo_report.png"
    result = check_in_browser(res.report, screenshot=shot, window=(1280, 3000))
    assert result["errors"] == [] and result["console"] == [] and result["broken"] == []
    assert result["n_images"] == res.summaries["report"]["n_figures"]
    assert shot.is_file() and shot.stat().st_size > 10_000
