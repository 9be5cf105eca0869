"""Every public callable answers bad input with a facebrain error that is also a builtin.

The callables are found from the rooms' ``__all__`` lists (nothing is listed by hand), so a
new public function is covered the day it is exported. Each is called with no arguments and
with a battery of bad values (None, a negative int, NaN, a missing path, empty and NaN
arrays, an ``xr.Dataset`` without the ``stimulus`` dim, ...) in every required parameter;
public methods of public classes get the same battery on a small valid instance, and a few
central functions get bad *keyword* values on otherwise valid input. Whatever is raised must
be a :class:`facebrain.errors.FacebrainError` *and* a subclass of a builtin such as
``ValueError``/``TypeError``/``KeyError`` (so ``except ValueError`` keeps working).
Returning normally is fine (the value was acceptable); hanging is not.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import signal
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from facebrain.errors import FacebrainError

ROOMS = ("stimuli", "models", "training", "brain", "rsa", "transfer", "encoding", "activations")
EXTRA = (("pipeline", "run"), ("pipeline", "load_config"))
SECONDS = 60  # per call; a call that runs this long on junk input accepted it silently

#: (callable, bad value label) -> why an error that is not a FacebrainError is acceptable.
#: Only for things that are not input errors; every entry needs a reason.
ALLOW: dict[tuple[str, str], str] = {}

#: Known gaps, still failing: (callable, bad value label) -> what is missing. The test fails
#: when one of them starts passing, so the entry is removed with the fix.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def _public_callables() -> dict[str, object]:
    found, seen = {}, set()
    names = [(room, name) for room in ROOMS
             for name in importlib.import_module(f"facebrain.{room}").__all__] + list(EXTRA)
    for room, name in names:
        obj = getattr(importlib.import_module(f"facebrain.{room}"), name)
        if isinstance(obj, type) and issubclass(obj, (BaseException, Warning)):
            continue  # the error types themselves
        if callable(obj) and id(obj) not in seen:
            seen.add(id(obj))
            found[f"{room}.{name}"] = obj
    return found


PUBLIC = _public_callables()


def _bad_values(tmp_path) -> dict[str, object]:
    import torch

    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x00\xffnot an image, not a table\n\x01,\x02")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    return {
        "None": None,
        "negative int": -3,
        "nan": float("nan"),
        "bogus string": "no-such-thing",
        "missing path": str(tmp_path / "no" / "such.csv"),
        "empty list": [],
        "list of ints": [1, 2, 3],
        "empty array": np.empty((0,)),
        "nan matrix": np.full((4, 3), np.nan),
        "4-d array": np.zeros((2, 2, 2, 2)),
        "dataset without stimulus dim": xr.Dataset({"a": (("x",), [1.0, 2.0])}),
        "dataarray with wrong dims": xr.DataArray(np.zeros((2, 3)), dims=("a", "b")),
        "empty frame": pd.DataFrame(),
        "object": object(),
        "dict": {"bogus": 1},
        "directory": tmp_path,
        "garbage file": garbage,
        "empty file": str(empty),
        "wrong-shape tensor": torch.zeros(2, 5),
        "negative float": -0.5,
    }


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so library code cannot swallow it."""


def _builtin_base(err: BaseException) -> type | None:
    """The first builtin exception class (other than Exception itself) ``err`` is."""
    for klass in type(err).__mro__:
        if (klass.__module__ == "builtins" and issubclass(klass, Exception)
                and klass is not Exception and getattr(builtins, klass.__name__, None) is klass):
            return klass
    return None


def _outcome(fn, args=(), kwargs=None) -> str | None:
    """None when ``fn(*args, **kwargs)`` returns or raises a proper error; else the problem."""
    def alarm(signum, frame):
        raise _Timeout

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(SECONDS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*args, **(kwargs or {}))
    except _Timeout:
        return f"still running after {SECONDS} s"
    except FacebrainError as err:
        if _builtin_base(err) is None:
            return f"{type(err).__name__} subclasses no builtin error: {err}"
        if not str(err):
            return f"{type(err).__name__} has an empty message"
    except Exception as err:  # noqa: BLE001 - the point of the test
        return f"raised {type(err).__module__}.{type(err).__qualname__}: {str(err)[:200]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return None


def _required(fn) -> tuple[list[str], list[str]]:
    """Required positional and keyword-only parameter names of ``fn``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], []
    pos, kw = [], []
    for p in sig.parameters.values():
        if p.default is not inspect.Parameter.empty or p.name == "self":
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            pos.append(p.name)
        elif p.kind is p.KEYWORD_ONLY:
            kw.append(p.name)
    return pos, kw


def _battery(fn, tmp_path, name: str) -> list[str]:
    """Problems of ``fn`` over the bad-value battery (required parameters all set to it)."""
    problems = []
    pos, kw = _required(fn)
    if pos or kw:
        msg = _outcome(fn)
        if msg:
            problems.append(f"{name}() -> {msg}")
    targets = pos or kw
    if not targets:  # nothing required: put the bad value in the first parameter instead
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        # (a flag whose default is a bool accepts any truthy value, as Python does)
        targets = [p.name for p in params[:1]
                   if p.default is not None and not isinstance(p.default, bool)]
    if not targets:
        return problems
    for label, value in _bad_values(tmp_path).items():
        if (name, label) in ALLOW:
            continue
        kwargs = {p: value for p in targets}
        msg = _outcome(fn, kwargs=kwargs)
        if (name, label) in KNOWN_GAPS:
            if not msg:
                problems.append(f"{name}({label}) is fixed: remove it from KNOWN_GAPS")
        elif msg:
            problems.append(f"{name}({label}) -> {msg}")
    return problems


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a call writes, it writes here


def test_callables_found():
    assert len(PUBLIC) > 80
    for name in ("stimuli.StimulusSet", "rsa.compare", "encoding.RidgeEncoder", "transfer.probe",
                 "activations.extract", "pipeline.run", "models.create"):
        assert name in PUBLIC


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_bad_arguments_raise_facebrain_errors(name, tmp_path):
    problems = _battery(PUBLIC[name], tmp_path, name)
    assert not problems, "\n".join(problems)


# -- public methods of public classes, on small valid instances ---------------------------


def _acts(n=12) -> xr.Dataset:
    rng = np.random.default_rng(0)
    ids = [f"s{i:02d}" for i in range(n)]
    return xr.Dataset(
        {"conv": (("stimulus", "conv_unit"), rng.normal(size=(n, 7))),
         "fc": (("stimulus", "fc_unit"), rng.normal(size=(n, 4)))},
        coords={"stimulus": ids,
                "identity": ("stimulus", [f"p{i % 4}" for i in range(n)]),
                "expression": ("stimulus", [("neutral", "happy", "sad")[i % 3] for i in range(n)])},
    )


def _brain(n=12) -> xr.DataArray:
    rng = np.random.default_rng(1)
    vox = [f"{s}|{r}|{i}" for r in ("FFA", "OFA") for s in ("01", "02") for i in range(3)]
    return xr.DataArray(
        rng.normal(size=(n, len(vox))), dims=("stimulus", "voxel"),
        coords={"stimulus": [f"s{i:02d}" for i in range(n)], "voxel": vox,
                "roi": ("voxel", [v.split("|")[1] for v in vox]),
                "subject": ("voxel", [v.split("|")[0] for v in vox])},
        name="responses")


def _instances(tiny_stimuli):
    from facebrain.encoding import RidgeEncoder
    from facebrain.models import small_resnet
    from facebrain.transfer import TorchLinearClassifier

    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(20, 5)), rng.normal(size=(20, 3))
    return {
        "StimulusSet": tiny_stimuli,
        "FacebrainAccessor": _acts().fb,
        "RidgeEncoder(unfitted)": RidgeEncoder(),
        "RidgeEncoder(fitted)": RidgeEncoder(alphas=[1.0, 10.0]).fit(X, Y),
        "TorchLinearClassifier(unfitted)": TorchLinearClassifier(),
        "SmallResNet": small_resnet(num_classes=3, width=4, input_size=32),
    }


def _not_facebrain_api(cls: type, name: str) -> str | None:
    """Why method ``name`` of a facebrain class is left out of the battery, or None."""
    owner = next(k for k in cls.__mro__ if name in vars(k))
    if name == "forward":
        return ("FaceNet.forward is torch's hot path (model(x)); left unwrapped and unchecked "
                "for speed and tracing; forward_layers, the facebrain API, checks x")
    if owner.__module__.split(".")[0] == "torch":
        return "torch.nn.Module's own API (to, load_state_dict...): torch's errors, not ours"
    if name == "get_metadata_routing" or (name.startswith("set_") and name.endswith("_request")):
        return ("scikit-learn's metadata routing: raises RuntimeError unless routing is "
                "enabled globally (a configuration switch, not the input)")
    return None


def test_public_methods(tiny_stimuli, tmp_path):
    problems = []
    for label, obj in _instances(tiny_stimuli).items():
        for name in dir(type(obj)):
            if name.startswith("_") or _not_facebrain_api(type(obj), name):
                continue
            if isinstance(inspect.getattr_static(obj, name), property):
                continue  # properties: below
            attr = getattr(obj, name)
            if not callable(attr):
                continue
            problems += _battery(attr, tmp_path, f"{label}.{name}")
    assert not problems, "\n".join(problems)


def test_unfitted_attributes_are_facebrain_not_fitted_errors():
    from facebrain.encoding import RidgeEncoder
    from facebrain.errors import NotFittedError

    for name in ("coef_",):
        with pytest.raises(NotFittedError) as info:
            getattr(RidgeEncoder(), name)
        assert isinstance(info.value, AttributeError) and isinstance(info.value, ValueError)
        assert "fit" in str(info.value)
    from sklearn.exceptions import NotFittedError as SklearnNotFitted

    with pytest.raises(SklearnNotFitted) as info:  # what sklearn's estimator checks want
        RidgeEncoder().predict(np.zeros((3, 2)))
    assert isinstance(info.value, NotFittedError)
    assert str(info.value).startswith("RidgeEncoder.predict: ")
    assert type(info.value.__cause__) is SklearnNotFitted  # chained, traceback kept


# -- bad keyword values on otherwise valid input ------------------------------------------

BAD_KEYWORDS = {"bogus string": "bogus", "negative int": -1, "nan": float("nan"),
                "object": object(), "empty list": []}


def _keyword_calls(tiny_stimuli):
    from facebrain import activations, encoding, models, rsa, stimuli, training, transfer

    acts, brain = _acts(), _brain()
    net = models.small_resnet(num_classes=3, width=4, input_size=32)
    return {
        "rsa.rdm": (rsa.rdm, (acts,), {}),
        "rsa.compare": (rsa.compare, (acts, brain), {"bootstrap": 0}),
        "rsa.label_rdm": (rsa.label_rdm, (acts, "identity"), {}),
        "transfer.make_folds": (transfer.make_folds, (acts,), {"cv": "leave-identity-out"}),
        "transfer.probe": (transfer.probe, (acts, "expression"), {"cv": "leave-identity-out"}),
        "transfer.fit_head": (transfer.fit_head, (acts, "expression"), {"layer": "fc"}),
        "encoding.evaluate": (encoding.evaluate, (acts, brain), {}),
        "StimulusSet.subset": (tiny_stimuli.subset, ([0, 1],), {}),
        "StimulusSet.load": (tiny_stimuli.load, (0,), {}),
        "transfer.cross_decode": (transfer.cross_decode, (acts, "expression"),
                                  {"train": "identity in ['p0', 'p1']",
                                   "test": "identity in ['p2', 'p3']"}),
        "transfer.factor_variance": (transfer.factor_variance, (acts,), {}),
        "transfer.subspace_angles": (transfer.subspace_angles, (acts,), {}),
        "stimuli.synthetic_faces": (stimuli.synthetic_faces, (2, ["neutral", "happy"], ["S"]),
                                    {"image_size": 16}),
        "stimuli.contact_sheet": (stimuli.contact_sheet, (tiny_stimuli,), {"size": 16}),
        "activations.extract": (activations.extract, (net, tiny_stimuli),
                                {"layers": ["avgpool"], "progress": False}),
        "training.split_train_val": (training.split_train_val, (tiny_stimuli, "identity"), {}),
        "training.sample_pairs": (training.sample_pairs, (tiny_stimuli, 6), {}),
    }


@pytest.mark.parametrize("which", [
    "rsa.rdm", "rsa.compare", "rsa.label_rdm", "transfer.make_folds", "transfer.probe",
    "transfer.fit_head", "transfer.cross_decode", "transfer.factor_variance",
    "transfer.subspace_angles", "encoding.evaluate", "StimulusSet.subset", "StimulusSet.load",
    "stimuli.synthetic_faces", "stimuli.contact_sheet", "activations.extract",
    "training.split_train_val", "training.sample_pairs"])
def test_bad_keyword_values(which, tiny_stimuli):
    fn, args, base = _keyword_calls(tiny_stimuli)[which]
    assert _outcome(fn, args, base) is None, "the valid base call must work"
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD]
    problems = []
    for p in params:
        for label, value in BAD_KEYWORDS.items():
            msg = _outcome(fn, args, {**base, p.name: value})
            if (which, f"{p.name}={label}") in KNOWN_GAPS:
                if not msg:
                    problems.append(f"{which}({p.name}={label}) is fixed: remove it from "
                                    "KNOWN_GAPS")
            elif msg:
                problems.append(f"{which}({p.name}={label}) -> {msg}")
    assert not problems, "\n".join(problems)


# -- the boundary itself --------------------------------------------------------------------


def test_boundary_keeps_signature_docs_pickling_and_chains_the_cause():
    import pickle

    from facebrain import rsa
    from facebrain.errors import MissingKeyError, ShapeError
    from facebrain.stimuli import StimulusSet

    assert next(iter(inspect.signature(rsa.rdm).parameters)) == "data"
    assert rsa.rdm.__doc__ and rsa.rdm.__name__ == "rdm"
    assert pickle.loads(pickle.dumps(rsa.rdm)) is rsa.rdm
    assert "table" in inspect.signature(StimulusSet).parameters
    # a third-party KeyError deep inside: translated, chained, traceback kept
    acts = _acts()
    with pytest.raises(MissingKeyError) as info:
        rsa.label_rdm(acts.drop_vars("identity"), "identity")
    assert isinstance(info.value, KeyError) and "identity" in str(info.value)
    with pytest.raises(ShapeError, match="no 'stimulus' dim"):
        rsa.rdm(xr.Dataset({"a": (("x",), [1.0, 2.0])}))


def test_boundary_translates_only_builtins_and_passes_the_rest():
    from facebrain._boundary import public
    from facebrain.errors import (
        IndexOutOfRangeError,
        MissingFileError,
        NotAFolderError,
        ParameterAttributeError,
        ParameterError,
    )

    def raiser(err):
        @public
        def f():
            raise err
        return f

    cases = [(ValueError("v"), ParameterError), (IndexError("i"), IndexOutOfRangeError),
             (AttributeError("a"), ParameterAttributeError),
             (FileNotFoundError(2, "gone", "x.csv"), MissingFileError),
             (NotADirectoryError("n"), NotAFolderError)]
    for err, want in cases:
        with pytest.raises(want) as info:
            raiser(err)()
        assert info.value.__cause__ is err and "f: " in str(info.value)
        assert isinstance(info.value, type(err)) and isinstance(info.value, FacebrainError)
    assert raiser(FileNotFoundError(2, "gone", "x.csv")).__name__ == "f"
    with pytest.raises(MissingFileError) as info:
        raiser(FileNotFoundError(2, "gone", "x.csv"))()
    assert info.value.filename == "x.csv" and info.value.errno == 2
    assert str(info.value) == "[Errno 2] f: gone: 'x.csv'"
    for err in (RuntimeError("r"), PermissionError("p"), KeyboardInterrupt()):
        with pytest.raises(type(err)) as info:
            raiser(err)()
        assert info.value is err  # not translated, not wrapped
    mine = ParameterError("already ours")
    with pytest.raises(ParameterError) as info:
        raiser(mine)()
    assert info.value is mine

    @public
    def gen(n):
        yield from range(n)
        raise KeyError("late")

    it = gen(2)
    assert [next(it), next(it)] == [0, 1]
    with pytest.raises(KeyError) as info:
        next(it)
    assert isinstance(info.value, FacebrainError)


# -- targeted messages, per room ------------------------------------------------------------


def test_stimuli_messages(tiny_stimuli, tmp_path):
    from facebrain import stimuli
    from facebrain.errors import (
        IndexOutOfRangeError,
        MissingFileError,
        MissingKeyError,
        NotAFolderError,
        ParameterError,
    )

    with pytest.raises(IndexOutOfRangeError, match="index 99 out of range for 18 stimuli"):
        tiny_stimuli.load(99)
    with pytest.raises(IndexError):
        tiny_stimuli.load(99)
    with pytest.raises(MissingKeyError, match="label column 'nope' not found"):
        tiny_stimuli.labels("nope")
    with pytest.raises(MissingFileError, match="image not found"):
        stimuli.read_image(tmp_path / "gone.png")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotAFolderError, match="must be a folder"):
        stimuli.load_kdef(tmp_path / "file.txt")
    with pytest.raises(ParameterError, match="split must be 'train' or 'test'"):
        stimuli.load_vggface2(tmp_path, split="val")


def test_models_messages():
    import torch

    from facebrain import models
    from facebrain.errors import MissingKeyError, ParameterError, ParameterTypeError, ShapeError

    with pytest.raises(MissingKeyError, match="unknown model 'resnet5'.*Did you mean"):
        models.create("resnet5")
    with pytest.raises(ParameterTypeError, match="model name must be a non-empty str"):
        models.create(3)
    with pytest.raises(ParameterError, match="num_classes must be an int >= 1; got -3"):
        models.DenseNetGray(num_classes=-3)
    net = models.small_resnet(num_classes=3, width=4, input_size=32)
    with pytest.raises(ShapeError, match=r"x must be a float tensor \(N, C, H, W\)"):
        net.forward_layers(torch.zeros(2, 5))


def test_brain_messages(tmp_path, tiny_stimuli):
    from facebrain import brain
    from facebrain.errors import OutputExistsError, ParameterTypeError

    with pytest.raises(ParameterTypeError, match="load_bids: root must be a path"):
        brain.load_bids(3, subject="01", task="faces")
    with pytest.raises(ParameterTypeError, match="rdms_by_subject must be an rsatoolbox RDMs"):
        brain.rsa_noise_ceiling("not rdms")
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="exists and is not empty; pass overwrite=True"):
        brain.simulate(tmp_path, tiny_stimuli)
    with pytest.raises(FileExistsError):
        brain.simulate(tmp_path, tiny_stimuli)
    with pytest.raises(ParameterTypeError, match="simulate: stimuli must be a StimulusSet"):
        brain.simulate(tmp_path / "new", "stimuli.csv")
    with pytest.raises(ParameterTypeError, match="responses must be a list of BrainResponses"):
        brain.concat_responses("abc")


def test_check_device():
    from facebrain._utils import check_device
    from facebrain.errors import ParameterError

    assert str(check_device("cpu")) == "cpu"
    for bad in ("gpu", -1, object()):
        with pytest.raises(ParameterError, match="is not a torch device"):
            check_device(bad, where="extract")


def test_rsa_and_transfer_messages():
    from facebrain import rsa, transfer
    from facebrain.errors import MissingKeyError, ParameterError, ParameterTypeError

    acts, brain_r = _acts(), _brain()
    with pytest.raises(ParameterError, match="method='bogus' is not a comparison method"):
        rsa.compare(acts, brain_r, method="bogus")
    with pytest.raises(ParameterTypeError, match="rdm: data must be Activations"):
        rsa.rdm(object())
    with pytest.raises(ParameterTypeError, match="acts must be Activations"):
        transfer.probe([1, 2], "expression")
    with pytest.raises(ParameterTypeError, match="target must be a str"):
        transfer.probe(acts, 3)
    with pytest.raises(MissingKeyError, match=r"no layer\(s\) \['nope'\]"):
        transfer.probe(acts, "expression", layers=["nope"])
    with pytest.raises(ParameterError, match="unknown cv 'bogus'"):
        transfer.make_folds(acts, cv="bogus")
