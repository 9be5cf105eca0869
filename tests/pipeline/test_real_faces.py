"""Real data through the CLI: alignment stage, loader options, user networks, real_faces.yaml."""

from __future__ import annotations

import inspect
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebrain.errors import ConfigError
from facebrain.pipeline import load_config, run
from facebrain.pipeline._sections import LOADER_OPTIONS, StimulusConfig
from facebrain.pipeline._stages import (
    build_stimulus_set,
    default_stages,
    load_activations,
    load_stimuli,
)

REPO = Path(__file__).resolve().parents[2]
YALE = r"subject(?P<identity>\d+)\.(?P<expression>\w+)$"


def _cfg(spec: dict, **extra) -> dict:
    return {"stimuli": {"s": spec}, "models": [{"name": "m", "arch": "small_resnet"}],
            "extract": {"stimuli": "s"}, "brain": {"source": "none"}, "threads": 1, **extra}


@contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------ every loader option is a config key
def test_every_keyword_option_of_the_loaders_is_a_config_key():
    import facebrain.stimuli as st

    fields = set(StimulusConfig.__dataclass_fields__)
    for fn in (st.load_kdef, st.load_lfw, st.load_folder, st.from_table, st.load_fer2013,
               st.load_vggface2):
        opts = [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "name"]
        missing = [o for o in opts if o not in fields]
        assert not missing, f"{fn.__name__}: {missing} are not stimuli.<name> keys"
    assert set(LOADER_OPTIONS) <= fields


def _yale(tmp):
    from stimuli.fakes import make_yale

    make_yale(tmp / "yalefaces", subjects=2)
    root = tmp / "yalefaces"
    return ("load_folder", (root, YALE), {"expression_map": "yale"},
            {"source": "folder", "root": str(root), "pattern": YALE,
             "expression_map": "yale"})


def _table(tmp):
    for i, (subj, emo) in enumerate([("NA", "0"), ("null", "1"), ("007", "1")]):
        Image.fromarray(np.full((9, 8, 3), 40 * i + 10, np.uint8)).save(tmp / f"f{i}.png")
    (tmp / "t.csv").write_text("file,subject,emotion\n" + "".join(
        f"f{i}.png,{s},{e}\n" for i, (s, e) in enumerate([("NA", "0"), ("null", "1"),
                                                           ("007", "1")])))
    kw = {"path_column": "file", "rename": {"subject": "identity", "emotion": "expression"},
          "expression_map": {"0": "neutral", "1": "happy"}, "verify": "full"}
    return ("from_table", (tmp / "t.csv",), kw,
            {"source": "table", "path": str(tmp / "t.csv"), **kw})


def _kdef(tmp):
    from stimuli.fakes import make_kdef

    make_kdef(tmp / "KDEF", persons=("F01",), sessions=("A",), views=("S", "HL"))
    kw = {"views": ["S"], "strict": False, "verify": "none"}
    return ("load_kdef", (tmp / "KDEF",), kw, {"source": "kdef", "root": str(tmp / "KDEF"), **kw})


def _lfw(tmp):
    from stimuli.fakes import make_lfw

    folder = make_lfw(tmp / "lfw")
    kw = {"verify": "full"}
    return ("load_lfw", (folder,), kw, {"source": "lfw", "root": str(folder), **kw})


def _vggface2(tmp):
    from stimuli.fakes import make_vggface2

    make_vggface2(tmp / "vgg", "train")
    kw = {"bbox_margin": 0.1, "verify": "none"}
    return ("load_vggface2", (tmp / "vgg", "train"), kw,
            {"source": "vggface2", "root": str(tmp / "vgg"), "split": "train", **kw})


def _fer(tmp):
    from stimuli.fakes import make_fer2013

    make_fer2013(tmp / "fer.csv", n=5)
    return ("load_fer2013", (tmp / "fer.csv",), {"strict": False},
            {"source": "fer2013", "path": str(tmp / "fer.csv"), "strict": False})


@pytest.mark.parametrize("setup", [_yale, _table, _kdef, _lfw, _vggface2, _fer])
def test_api_and_config_give_identical_labels(tmp_path, setup):
    import facebrain.stimuli as st

    fn, args, kw, spec = setup(tmp_path)
    with _quiet():
        api = getattr(st, fn)(*args, **kw)
        cfg = load_config(_cfg(spec))
        via_config = build_stimulus_set(cfg.stimuli["s"], cfg.seed)
    pd.testing.assert_frame_equal(via_config.table, api.table)
    if fn == "load_folder":  # the bug: the config kept 'normal' where the API says 'neutral'
        assert via_config.table.loc["subject01.normal", "expression"] == "neutral"
    if fn == "from_table":
        assert via_config.table["identity"].tolist() == ["NA", "null", "007"]


def test_a_loader_option_the_source_lacks_is_a_config_error(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(ConfigError, match=r"stimuli\.s\.rename: not an option of source 'folder'"):
        load_config(_cfg({"source": "folder", "root": str(tmp_path / "d"), "pattern": "(?P<identity>x)",
                          "rename": {"a": "identity"}}))
    with pytest.raises(ConfigError, match=r"stimuli\.s\.expression_map: no code table named 'yal'"):
        load_config(_cfg({"source": "folder", "root": str(tmp_path / "d"), "pattern": "(?P<identity>x)",
                          "expression_map": "yal"}))
    with pytest.raises(ConfigError, match=r"stimuli\.s\.on_duplicate"):
        load_config(_cfg({"source": "synthetic_kdef", "on_duplicate": "drop"}))


def test_on_duplicate_config_key_drops_copies(tmp_path):
    root = tmp_path / "faces"
    rng = np.random.default_rng(0)
    for p in ("a", "b"):
        (root / p).mkdir(parents=True)
        for e in ("neutral", "happy"):
            Image.fromarray(rng.integers(0, 255, (10, 9, 3), dtype=np.uint8)).save(
                root / p / f"{e}.png")
    (root / "a" / "calm.png").write_bytes((root / "a" / "neutral.png").read_bytes())
    spec = {"source": "folder", "root": str(root),
            "pattern": r"(?P<identity>\w)/(?P<expression>\w+)\.png$"}
    with _quiet():
        kept = build_stimulus_set(load_config(_cfg(spec)).stimuli["s"], 0)
        dropped = build_stimulus_set(load_config(_cfg({**spec, "on_duplicate": "drop"}))
                                     .stimuli["s"], 0)
    assert len(kept) == 5 and sorted(dropped.ids) == ["a/calm", "a/happy", "b/happy", "b/neutral"]
    with pytest.raises(ValueError, match="byte-identical"):
        build_stimulus_set(load_config(_cfg({**spec, "on_duplicate": "raise"})).stimuli["s"], 0)


# ---------------------------------------------------------- empty bbox cells, NA labels
def test_empty_bbox_cells_and_na_identities_through_extract(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["path,identity,expression,bbox_x,bbox_y,bbox_w,bbox_h"]
    for i, ident in enumerate(["NA", "NA", "null", "null", "None", "None"]):
        Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        box = "2,3,20,24" if i % 2 else ",,,"
        lines.append(f"{i}.png,{ident},{'happy' if i % 2 else 'sad'},{box}")
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    cfg = _cfg({"source": "table", "path": str(tmp_path / "t.csv")},
               extract={"stimuli": "s", "layers": ["layer1"], "batch_size": 4})
    with _quiet():
        res = run(cfg, out=tmp_path / "run", stages=default_stages()[:3], log=lambda s: None)
    acts = load_activations(res.dirs["extract"], "m")
    assert acts.sizes["stimulus"] == 6
    assert sorted(set(acts["identity"].values)) == ["NA", "None", "null"]
    stim = load_stimuli(res.dirs["stimuli"], res.config, "s")
    assert stim.load("0").shape == (40, 36, 3) and stim.load("1").shape == (24, 20, 3)


# ------------------------------------------------------------------- the align stage
def _face_folder(root: Path) -> Path:
    from facebrain.stimuli import synthetic_faces

    stim = synthetic_faces(range(3), ["neutral", "happy", "surprised"], "S", image_size=112,
                           seed=2)
    for i, sid in enumerate(stim.ids):
        row = stim.table.loc[sid]
        (root / row["identity"]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(stim.load(i)).save(root / row["identity"] / f"{row['expression']}.png")
    (root / "blank").mkdir()
    Image.fromarray(np.full((120, 100, 3), 127, np.uint8)).save(root / "blank" / "neutral.png")
    return root


def test_align_stage_is_cached_and_feeds_extraction(tmp_path):
    pytest.importorskip("dlib")
    from facebrain.stimuli import align_faces, load_folder

    root = _face_folder(tmp_path / "faces")
    pattern = r"(?P<identity>\w+)/(?P<expression>[a-z]+)\.png$"
    spec = {"source": "folder", "root": str(root), "pattern": pattern,
            "align": {"method": "dlib", "size": 64, "padding": 0.25}}
    cfg = _cfg(spec, extract={"stimuli": "s", "layers": ["layer1"], "batch_size": 8})
    logs: list[str] = []
    with _quiet():
        res = run(cfg, out=tmp_path / "run", stages=default_stages()[:3], log=logs.append)
    sdir = res.dirs["stimuli"]
    table = pd.read_csv(sdir / "s.csv", dtype=str, keep_default_na=False)
    assert table["path"].str.startswith("aligned/s/").all()
    rejected = pd.read_csv(sdir / "s.rejected.csv")
    assert rejected.set_index("path")["reason"]["blank/neutral.png"].startswith("no face found")
    stim = load_stimuli(sdir, res.config, "s")
    assert len(stim) >= 8 and "blank/neutral" not in stim.ids
    with _quiet():
        api = align_faces(load_folder(root, pattern), size=64, cache_dir=tmp_path / "c")
    for sid in stim.ids[:3]:
        np.testing.assert_array_equal(stim.load(sid), api.load(sid))
    assert res.summaries["stimuli"]["s"]["align"]["n_aligned"] == len(stim)
    assert load_activations(res.dirs["extract"], "m").sizes["stimulus"] == len(stim)
    # a rerun is cached; a new chip size recomputes the stimuli stage and what follows
    with _quiet():
        again = run(cfg, out=tmp_path / "run", stages=default_stages()[:3], log=lambda s: None)
    assert again.statuses["stimuli"] == "cached"
    cfg["stimuli"]["s"]["align"]["size"] = 48
    with _quiet():
        bigger = run(cfg, out=tmp_path / "run", stages=default_stages()[:1], log=lambda s: None)
    assert bigger.statuses["stimuli"] == "computed"
    assert load_stimuli(bigger.dirs["stimuli"], bigger.config, "s").load(0).shape == (48, 48, 3)


def test_align_config_values_are_checked():
    with pytest.raises(ConfigError, match=r"stimuli\.s\.align\.size: expected an int >= 8"):
        load_config(_cfg({"source": "synthetic_kdef", "align": {"size": 4}}))
    with pytest.raises(ConfigError, match=r"stimuli\.s\.align\.detector"):
        load_config(_cfg({"source": "synthetic_kdef", "align": {"detector": "yolo"}}))


# ------------------------------------------------------------ the user's own network
USER_MODULE = '''
from torch import nn
from facebrain.models import FaceNet, Preprocess

class TinyUserNet(FaceNet):
    def __init__(self, num_classes=3):
        super().__init__()
        self.stages["conv"] = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU())
        self.stages["avgpool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.stages["fc"] = nn.Linear(4, num_classes)
        self.preprocess = Preprocess(input_size=24, resize=24)

def build(num_classes=None):
    return TinyUserNet(num_classes or 3)

def not_a_net(num_classes=None):
    return nn.Linear(2, 2)
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    name = f"fb_user_nets_{tmp_path.name.replace('-', '_')}"
    (pkg / f"{name}.py").write_text(USER_MODULE)
    (pkg / f"{name}_broken.py").write_text("raise RuntimeError('boom in the user module')\n")
    monkeypatch.syspath_prepend(str(pkg))
    yield name
    for mod in (name, f"{name}_broken"):
        sys.modules.pop(mod, None)


def test_user_network_named_by_module_attr_runs(user_module, tmp_path):
    spec = {"source": "synthetic_kdef", "image_size": 32, "identities": 2, "views": ["S"],
            "sessions": ["A"]}
    cfg = _cfg(spec, models=[{"name": "mine", "arch": f"{user_module}:build"}])
    with _quiet():
        res = run(cfg, out=tmp_path / "run", stages=default_stages()[:3], log=lambda s: None)
    acts = load_activations(res.dirs["extract"], "mine")
    assert set(acts.data_vars) == {"conv", "avgpool"} and acts.sizes["stimulus"] == 14


def test_failing_user_network_stops_at_config_load_naming_the_key(user_module):
    spec = {"source": "synthetic_kdef"}
    cases = [(f"{user_module}_missing:build", "cannot import module"),
             (f"{user_module}_broken:build", "boom in the user module"),
             (f"{user_module}:nothing", "has no attribute 'nothing'")]
    for arch, why in cases:
        with pytest.raises(ConfigError, match=rf"models\[1\]\.arch: .*{why}"):
            load_config(_cfg(spec, models=[{"name": "a", "arch": "small_resnet"},
                                           {"name": "b", "arch": arch}]))
    from facebrain.models import create

    with pytest.raises(TypeError, match="not a facebrain.models.FaceNet"):
        create(f"{user_module}:not_a_net")


def test_user_network_from_an_entry_point(user_module, tmp_path, monkeypatch):
    dist = tmp_path / "eps" / "fb_user_nets-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fb-user-nets\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[facebrain.models]\ntiny_user_net = {user_module}:build\n"
        f"broken_user_net = {user_module}_broken:build\n")
    monkeypatch.syspath_prepend(str(tmp_path / "eps"))
    from facebrain.models import create

    cfg = load_config(_cfg({"source": "synthetic_kdef"},
                           models=[{"name": "mine", "arch": "tiny_user_net"}]))
    assert cfg.models[0].arch == "tiny_user_net"
    assert type(create("tiny_user_net", num_classes=5)).__name__ == "TinyUserNet"
    with pytest.raises(ConfigError, match=r"models\[0\]\.arch: .*broken_user_net.*boom"):
        load_config(_cfg({"source": "synthetic_kdef"},
                         models=[{"name": "mine", "arch": "broken_user_net"}]))


# ---------------------------------------------------- real_faces.yaml and poster_kdef.yaml
@pytest.fixture
def real_nets(monkeypatch):
    """Validation only: stand-ins where the realnets branch's builders are not merged yet."""
    from facebrain.models import _registry, small_resnet

    for n in ("dlib_resnet", "fer_minixception"):
        if n not in _registry._MODELS:
            monkeypatch.setitem(_registry._MODELS, n, small_resnet)


def test_real_faces_config_validates_on_a_labelled_folder(tmp_path, monkeypatch, real_nets):
    root = tmp_path / "faces"
    for who in ("anna", "ben"):
        for expr in ("neutral", "happy"):
            (root / who).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((20, 16, 3), 90, np.uint8)).save(root / who / f"{expr}_01.jpg")
    monkeypatch.setenv("FACES_ROOT", str(root))
    monkeypatch.setenv("FACES_PATTERN", r"(?P<identity>[^/]+)/(?P<expression>[a-z]+)_\d+\.jpg$")
    monkeypatch.delenv("FACES_EXPRESSIONS", raising=False)
    cfg = load_config(REPO / "configs" / "real_faces.yaml")
    faces = cfg.stimuli["faces"]
    assert faces.source == "folder" and faces.expression_map is None
    assert (faces.align.method, faces.align.size, faces.align.padding) == ("dlib", 150, 0.25)
    archs = {m.name: (m.arch, m.options.get("pretrained", True)) for m in cfg.models}
    assert archs == {"dlib_resnet": ("dlib_resnet", True),
                     "dlib_resnet_untrained": ("dlib_resnet", False),
                     "fer_minixception": ("fer_minixception", True),
                     "fer_minixception_untrained": ("fer_minixception", False)}
    assert {d.target for d in cfg.transfer.directions} == {"expression", "identity"}
    assert all(d.models is None for d in cfg.transfer.directions)  # every network, both ways
    monkeypatch.setenv("FACES_EXPRESSIONS", "synonyms")
    assert load_config(REPO / "configs" / "real_faces.yaml").stimuli["faces"].expression_map \
        == "synonyms"
    monkeypatch.setenv("FACES_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"stimuli\.faces\.root: directory not found"):
        load_config(REPO / "configs" / "real_faces.yaml")


def test_poster_config_falls_back_to_dlib_resnet_and_says_so(tmp_path, monkeypatch, real_nets):
    monkeypatch.setenv("KDEF_ROOT", str(tmp_path))
    monkeypatch.setenv("LFW_ROOT", str(tmp_path))
    monkeypatch.delenv("VGGFACE2_WEIGHTS", raising=False)
    cfg = load_config(REPO / "configs" / "poster_kdef.yaml")
    assert (cfg.models[0].name, cfg.models[0].arch, cfg.models[0].weights) == \
        ("dlib_resnet", "dlib_resnet", None)
    assert cfg.stimuli["kdef"].align.size == 150
    assert len(cfg.notes) == 1 and "VGGFACE2_WEIGHTS is unset" in cfg.notes[0]
    assert load_config(cfg, overrides={"seed": 1}).notes == cfg.notes  # not applied twice
    monkeypatch.setenv("VGGFACE2_WEIGHTS", str(tmp_path / "w.pkl"))
    (tmp_path / "w.pkl").write_bytes(b"x")
    cfg = load_config(REPO / "configs" / "poster_kdef.yaml")
    assert cfg.models[0].arch == "resnet50_vggface2" and cfg.notes == []
    assert cfg.stimuli["kdef"].align is None


def test_report_shows_notes_and_hides_faces_with_max_identities_0(tiny_stimuli, tmp_path):
    from facebrain.report._build import ReportData, write_report

    shown = write_report(ReportData(stimuli=tiny_stimuli, max_identities=8), tmp_path / "a")
    hidden = write_report(ReportData(stimuli=tiny_stimuli, max_identities=0,
                                     notes=["VGGFACE2_WEIGHTS is unset, so dlib_resnet"]),
                          tmp_path / "b")
    assert shown["n_figures"] == 1 and hidden["n_figures"] == 0
    html = (tmp_path / "b" / "report.html").read_text()
    assert "Faces are not shown (report.max_identities: 0)" in html
    assert "VGGFACE2_WEIGHTS is unset, so dlib_resnet" in html
    assert "<img" not in html and "data:image" not in html
