"""Stage keys cover the input files' content; a rerun never serves stale results (issue 12, item 4)."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from facebrain.pipeline import load_config, run
from facebrain.pipeline._runner import cached_file_sha256, clear_fingerprint_cache, tree_fingerprint
from facebrain.pipeline._stages import _train_fingerprint

from . import _fakes


def _rewrite_same_size_same_mtime(path: Path, new: bytes) -> None:
    """Edit a file in place the way that fools size+mtime checks (cp -p, rsync -t)."""
    st = path.stat()
    assert len(new) == st.st_size
    path.write_bytes(new)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


@pytest.fixture(scope="module")
def bids_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stale")
    manifest, stim = _fakes.make_manifest(tmp / "stimuli", n_identities=4, size=32)
    bids = _fakes.make_bids(tmp / "bids", stim, subjects=1)
    cfg = {
        "name": "stale", "threads": 1,
        "stimuli": {"shown": {"source": "manifest", "path": str(manifest)}},
        "models": [{"name": "net", "arch": "small_resnet", "layers": ["layer2", "layer4"]}],
        "extract": {"stimuli": "shown", "batch_size": 16},
        "transfer": {"directions": [], "disentangle": False},
        "brain": {"source": "bids", "stimuli": "shown", "root": str(bids), "subjects": "all",
                  "rois": ["rFFA", "rpSTS"]},
        "rsa": {"n_bootstrap": 0, "ceiling": False},
        "encoding": {"enabled": False}, "report": {"enabled": False},
    }
    return tmp, cfg, bids, manifest


def _run(cfg, out):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(cfg, out=out, log=lambda s: None)


def _scores(res, name="reference"):
    return xr.load_dataset(res.dirs["rsa"] / f"rsa__{name}.nc")["score_mean"]


def test_events_edited_in_place_recomputes_brain_and_later(bids_run):
    tmp, cfg, bids, _ = bids_run
    out = tmp / "run"
    first = _run(cfg, out)
    events = min(bids.glob("sub-01/func/*_events.tsv"))
    lines = events.read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    cols = header.rstrip("\n").split("\t")
    k = cols.index("stimulus_id") if "stimulus_id" in cols else cols.index("trial_type")
    # swap the stimulus labels of trials with ids of equal length: same bytes, other meaning
    ids = [r.split("\t")[k] for r in rows]
    order = sorted(range(len(rows)), key=lambda i: (len(ids[i]), i))
    perm = list(range(len(rows)))
    rng = np.random.default_rng(0)
    shuffled = list(rng.permutation(order))
    for src, dst in zip(order, shuffled):
        if len(ids[src]) == len(ids[dst]):
            perm[src] = dst
    new_rows = []
    for i, r in enumerate(rows):
        parts = r.split("\t")
        parts[k] = ids[perm[i]]
        new_rows.append("\t".join(parts))
    new = (header + "".join(new_rows)).encode()
    assert new != events.read_bytes()
    _rewrite_same_size_same_mtime(events, new)

    second = _run(cfg, out)
    assert second.statuses["stimuli"] == "cached" and second.statuses["extract"] == "cached"
    assert second.statuses["brain"] == "computed" and second.statuses["rsa"] == "computed"
    assert second.keys["brain"] != first.keys["brain"]
    # a run without cached brain/rsa outputs computes them from the edited events
    fresh_dir = tmp / "fresh"
    shutil.copytree(out, fresh_dir)
    for stage in ("brain", "rsa"):
        shutil.rmtree(fresh_dir / stage)
    fresh = _run(cfg, fresh_dir)
    assert fresh.statuses["brain"] == "computed"
    xr.testing.assert_identical(_scores(second), _scores(fresh))
    assert not np.allclose(_scores(second).values, _scores(first).values)


def test_image_edited_in_place_changes_the_stimuli_key(tmp_path):
    from facebrain.pipeline._runner import stage_key
    from facebrain.pipeline._stages import default_stages

    manifest, _ = _fakes.make_manifest(tmp_path / "stimuli", n_identities=2, size=24)
    cfg = load_config({"stimuli": {"shown": {"source": "manifest", "path": str(manifest)}},
                       "models": [{"name": "net", "arch": "small_resnet"}],
                       "extract": {"stimuli": "shown"}, "brain": {"source": "none"}})
    stage = default_stages()[0]
    clear_fingerprint_cache()
    before = stage_key(stage, cfg, {})
    image = min(manifest.parent.rglob("*.png"))
    st = image.stat()
    pixels = np.asarray(Image.open(image)).copy()
    pixels[:8] = 255 - pixels[:8]  # retouched in place; the folder's listing is unchanged
    Image.fromarray(pixels).save(image)
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    clear_fingerprint_cache()  # as every run does
    assert stage_key(stage, cfg, {}) != before


def test_tree_and_file_hashes_see_same_size_same_mtime_edits(tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    f = root / "sub" / "a.txt"
    f.write_text("0123456789")
    before = tree_fingerprint(root)
    sha = cached_file_sha256(f)
    _rewrite_same_size_same_mtime(f, b"9876543210")
    clear_fingerprint_cache()  # a new run
    assert tree_fingerprint(root) != before
    assert cached_file_sha256(f) != sha
    (root / "sub" / "b.txt").write_text("")
    assert tree_fingerprint(root) != before


def test_pairs_and_weights_files_enter_the_train_key(tmp_path):
    import torch

    from facebrain.models import create

    weights = tmp_path / "w.pt"
    torch.save(create("small_resnet", num_classes=3).state_dict(), weights)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\nid000\t1\t2\n")
    cfg = load_config({
        "stimuli": {"t": {"source": "synthetic_identities", "n_identities": 3,
                          "images_per_identity": 2, "image_size": 32}},
        "models": [{"name": "net", "arch": "small_resnet", "weights": str(weights),
                    "train": {"stimuli": "t", "target": "verification",
                              "pairs_file": str(pairs)}}],
        "extract": {"stimuli": "t"}, "brain": {"source": "none"},
    })
    clear_fingerprint_cache()
    a = json.dumps(_train_fingerprint(cfg), sort_keys=True)
    _rewrite_same_size_same_mtime(pairs, b"1\nid001\t1\t2\n")
    clear_fingerprint_cache()
    b = json.dumps(_train_fingerprint(cfg), sort_keys=True)
    assert a != b
    w = bytearray(weights.read_bytes())
    w[-1] ^= 1
    _rewrite_same_size_same_mtime(weights, bytes(w))
    clear_fingerprint_cache()
    assert json.dumps(_train_fingerprint(cfg), sort_keys=True) != b


def test_tree_hash_follows_symlinks_and_survives_loops(tmp_path):
    store = tmp_path / "annex"
    store.mkdir()
    (store / "bold.nii").write_bytes(b"A" * 32)
    root = tmp_path / "ds"
    (root / "sub-01").mkdir(parents=True)
    (root / "sub-01" / "bold.nii").symlink_to(store / "bold.nii")  # a git-annex style link
    (root / "sub-01" / "loop").symlink_to(root, target_is_directory=True)
    before = tree_fingerprint(root)
    _rewrite_same_size_same_mtime(store / "bold.nii", b"B" * 32)
    clear_fingerprint_cache()
    assert tree_fingerprint(root) != before


def test_unreadable_input_file_is_a_named_error(tmp_path):
    from facebrain.errors import StageError
    from facebrain.pipeline import Stage

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("x")

    def fp(cfg):
        raise PermissionError(13, "Permission denied", str(data / "a.txt"))

    stages = [Stage("a", lambda ctx: None, (), lambda c: None, fp)]
    with pytest.raises(StageError, match=r"stage 'a': cannot read input .*a.txt to hash it"):
        run({"stimuli": {"test": {"source": "synthetic_kdef"}},
             "models": [{"name": "net", "arch": "small_resnet"}], "brain": {"source": "none"}},
            out=tmp_path / "run", stages=stages, log=lambda s: None)
