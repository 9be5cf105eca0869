"""brain.confounds / signal_scaling / slice_time_ref / out_of_range: parsed, checked, and
passed by the brain stage to single_trial_betas (recorded in the responses' attrs)."""

from __future__ import annotations

import pytest

from facebrain.errors import ConfigError
from facebrain.pipeline import load_config
from facebrain.pipeline._runner import StageContext

from .test_config import minimal


def test_brain_fmri_keys_defaults_and_parsing():
    cfg = load_config(minimal())
    assert cfg.brain.confounds.strategy == ["motion", "high_pass", "wm_csf"]
    assert cfg.brain.confounds.motion == "full" and cfg.brain.signal_scaling == 0
    assert cfg.brain.slice_time_ref is None and cfg.brain.out_of_range == "error"
    cfg = load_config(minimal(brain={"source": "none", "confounds": None, "signal_scaling": False,
                                     "slice_time_ref": 0.5, "out_of_range": "drop"}))
    assert cfg.brain.confounds is None and cfg.brain.signal_scaling is False
    cfg = load_config(minimal(), overrides={"brain.confounds.strategy": ["motion", "scrub"],
                                            "brain.confounds.fd_threshold": 0.3})
    assert cfg.brain.confounds.strategy == ["motion", "scrub"]


@pytest.mark.parametrize("brain, message", [
    ({"confounds": {"strategy": ["motoin"]}}, r"brain.confounds.strategy\[0\]"),
    ({"confounds": {"motion": "fulll"}}, r"brain.confounds.motion"),
    ({"confounds": {"strategy": ["compcor"]}}, r"brain.confounds.strategy: 'compcor' needs"),
    ({"confounds": {"fd_threshold": 0}}, r"brain.confounds.fd_threshold: expected a number > 0"),
    ({"signal_scaling": 2}, r"brain.signal_scaling: expected false, 0, 1 or \[0, 1\]"),
    ({"slice_time_ref": 1.5}, r"brain.slice_time_ref: expected a fraction"),
    ({"out_of_range": "clip"}, r"brain.out_of_range"),
])
def test_bad_brain_fmri_values_named(brain, message):
    with pytest.raises(ConfigError, match=message):
        load_config(minimal(brain={"source": "none", **brain}))


def _stimuli():
    import numpy as np
    import pandas as pd

    from facebrain.stimuli import ArraySource, StimulusSet

    rows = [{"identity": f"p{p}", "expression": e, "view": "S"}
            for p in range(3) for e in ("neutral", "happy", "sad", "angry")]
    ids = [f"{r['identity']}_{r['expression']}" for r in rows]
    table = pd.DataFrame(rows, index=pd.Index(ids, name="stimulus_id"))
    images = np.random.default_rng(0).integers(0, 256, (len(ids), 17, 13, 3), dtype=np.uint8)
    return StimulusSet(table, image_source=ArraySource(images), name="fmri-stage")


def _run_brain_stage(tmp_path, monkeypatch, brain):
    from facebrain._runfolder import read_netcdf
    from facebrain.pipeline import _brain_stages

    monkeypatch.setattr(_brain_stages, "load_stimuli", lambda ctx, cfg, name: _stimuli())
    cfg = load_config(minimal(brain={"source": "simulate", "subjects": 1, "runs": 2,
                                     "repeats": 1, "rois": ["rFFA"], **brain}))
    out = tmp_path / "brain"
    out.mkdir(parents=True)
    ctx = StageContext(config=cfg, stage="brain", dir=out, run_dir=tmp_path, inputs={},
                       keys={}, log=lambda msg: None)
    _brain_stages.stage_brain(ctx)
    return read_netcdf(out / "responses.nc")["responses"]


def test_brain_stage_passes_confounds_and_timing(tmp_path, monkeypatch):
    resp = _run_brain_stage(tmp_path / "a", monkeypatch, {
        "options": {"confounds": True, "motion_scale": 2.0},
        "confounds": {"strategy": ["motion", "wm_csf"], "motion": "basic"}})
    assert '"strategy": ["motion", "wm_csf"]' in resp.attrs["confounds"]
    assert resp.attrs["signal_scaling"] == "0" and resp.attrs["slice_time_ref"] == 0.0
    resp = _run_brain_stage(tmp_path / "b", monkeypatch, {
        "options": {"confounds": True}, "confounds": None, "signal_scaling": False,
        "slice_time_ref": 0.5})
    assert resp.attrs["confounds"] == "none" and resp.attrs["signal_scaling"] == "false"
    assert resp.attrs["slice_time_ref"] == 0.5
