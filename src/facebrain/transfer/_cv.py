"""Cross-validation schemes for transfer probes.

Every scheme assigns each stimulus to exactly one *test* fold; a fold's
training set is every other stimulus. Schemes:

``"leave-identity-out"``
    ``n_folds`` folds of whole identities (GroupKFold-like): identities are
    shuffled with ``seed`` and dealt round-robin, so fold sizes differ by at
    most one identity. Use it for expression probes.
``"leave-expression-out"`` / ``"leave-view-out"``
    one fold per expression (view); train on the others. Use for identity probes.
``"kfold"``
    :class:`~sklearn.model_selection.StratifiedKFold` on the target (shuffled, seeded).
``"kdef10"``
    the 10 published KDEF identity folds (``facebrain/data/kdef10_folds.json``);
    identity labels ``F01..F35`` are numbered 0..34 and ``M01..M35`` 35..69.
a stimulus coordinate name
    an explicit fold table: the coordinate's values are the folds.
a mapping or Series ``stimulus_id -> fold``
    explicit folds for every stimulus.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pandas as pd

from .._boundary import public
from .._deprecation import user_stacklevel
from ..errors import MissingKeyError, ParameterError, ParameterTypeError

__all__ = ["SCHEMES", "Folds", "kdef10_folds", "kdef_identity_index", "make_folds"]

SCHEMES = ("kdef10", "kfold", "leave-expression-out", "leave-identity-out", "leave-view-out")

_KDEF_ID = re.compile(r"^[AB]?([FM])(\d{2})$")


@public
@dataclass
class Folds:
    """Test-fold assignment of every stimulus.

    Attributes
    ----------
    assignment : ndarray of shape (n_stimuli,)
        Index (into ``names``) of the fold in which each stimulus is tested.
    names : list of str
        Fold names (``"fold0"``, an expression, ``"set1"``...).
    scheme : str
        Description of the scheme, stored in result attrs.
    groups : ndarray of shape (n_stimuli,) or None
        Label the scheme keeps together (identity, expression, view), if any.
    """

    assignment: np.ndarray
    names: list[str]
    scheme: str
    groups: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @property
    def n_folds(self) -> int:
        return len(self.names)

    def splits(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_index, test_index)`` per fold, in fold order."""
        for k in range(self.n_folds):
            test = self.assignment == k
            yield np.flatnonzero(~test), np.flatnonzero(test)


def _table(data) -> pd.DataFrame:
    """Stimulus table (index = ids) from an Activations Dataset, a StimulusSet or a DataFrame."""
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "table") and isinstance(data.table, pd.DataFrame):
        return data.table
    if hasattr(data, "coords") and "stimulus" in getattr(data, "dims", {}):
        cols = {
            str(c): np.asarray(v.values) for c, v in data.coords.items()
            if v.dims == ("stimulus",) and c != "stimulus"
        }
        ids = np.asarray(data["stimulus"].values).astype(str)
        return pd.DataFrame(cols, index=pd.Index(ids, name="stimulus_id"))
    raise ParameterTypeError(
        f"expected Activations (xr.Dataset with a 'stimulus' dim), a StimulusSet or a "
        f"DataFrame; got {type(data).__name__}"
    )


def _column(table: pd.DataFrame, name: str, why: str) -> np.ndarray:
    if name not in table.columns:
        raise MissingKeyError(
            f"cv={why!r} needs a stimulus label {name!r}; available labels: {list(table.columns)}"
        )
    return table[name].astype(str).to_numpy()


@public
def kdef10_folds() -> dict:
    """The published KDEF folds and their provenance (``data/kdef10_folds.json``)."""
    text = resources.files("facebrain").joinpath("data/kdef10_folds.json").read_text()
    return json.loads(text)


@public
def kdef_identity_index(label: str) -> int:
    """0-based KDEF identity number: ``F01..F35 -> 0..34``, ``M01..M35 -> 35..69``.

    A leading session letter (``AF01``) is ignored.
    """
    m = _KDEF_ID.match(str(label))
    if not m or not 1 <= int(m.group(2)) <= 35:
        raise ParameterError(
            f"identity {label!r} is not a KDEF identity (F01..F35 or M01..M35, optionally "
            "with a session letter A/B); cv='kdef10' only applies to KDEF-format labels"
        )
    return (0 if m.group(1) == "F" else 35) + int(m.group(2)) - 1


@public
def make_folds(data, cv="leave-identity-out", *, target: str | None = None, n_folds: int = 10,
               seed: int = 0) -> Folds:
    """Assign every stimulus of ``data`` to a test fold.

    Parameters
    ----------
    data : Activations, StimulusSet or DataFrame
        Provides the stimulus labels.
    cv : str or mapping
        A scheme from :data:`SCHEMES`, a stimulus label name (explicit folds) or
        a mapping / Series ``stimulus_id -> fold``.
    target : str, optional
        Label being decoded (needed by ``"kfold"``).
    n_folds : int
        Folds of ``leave-identity-out`` and ``kfold``.
    seed : int
        Shuffling seed of ``leave-identity-out`` and ``kfold``.

    Returns
    -------
    Folds

    Examples
    --------
    >>> from facebrain.activations import extract
    >>> from facebrain.models import create
    >>> from facebrain.stimuli import synthetic_faces
    >>> faces = synthetic_faces(6, ["neutral", "happy", "sad"], ["S", "HL"], image_size=32)
    >>> acts = extract(create("small_resnet", width=8), faces, ["layer3", "avgpool"],
    ...                progress=False)
    >>> folds = make_folds(acts, "leave-identity-out", n_folds=3)
    >>> people = acts["identity"].values
    >>> [sorted(set(people[test]) & set(people[train])) for train, test in folds.splits()]
    [[], [], []]
    """
    table = _table(data)
    n = len(table)
    if isinstance(cv, str) and cv == "leave-identity-out":
        ids = _column(table, "identity", cv)
        uniq = np.array(sorted(set(ids)))
        if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
            raise ParameterError(f"n_folds must be an integer >= 2; got {n_folds!r}")
        if len(uniq) < n_folds:
            raise ParameterError(
                f"leave-identity-out with n_folds={n_folds} needs at least {n_folds} identities; "
                f"the stimuli have {len(uniq)}. Pass n_folds<={len(uniq)}."
            )
        order = np.random.default_rng(seed).permutation(len(uniq))
        fold_of = {uniq[j]: pos % n_folds for pos, j in enumerate(order)}
        assignment = np.array([fold_of[i] for i in ids], dtype=np.int64)
        return Folds(assignment, [f"fold{k}" for k in range(n_folds)],
                     f"leave-identity-out(n_folds={n_folds}, seed={seed})", groups=ids)
    if isinstance(cv, str) and cv in ("leave-expression-out", "leave-view-out"):
        col = "expression" if cv == "leave-expression-out" else "view"
        values = _column(table, col, cv)
        names = sorted(set(values))
        if col == "expression":
            from ..stimuli import CANONICAL_EXPRESSIONS

            names = [e for e in CANONICAL_EXPRESSIONS if e in names] + [
                e for e in names if e not in CANONICAL_EXPRESSIONS]
        if len(names) < 2:
            raise ParameterError(f"cv={cv!r} needs at least 2 {col} values; the stimuli have {names}")
        lookup = {v: k for k, v in enumerate(names)}
        return Folds(np.array([lookup[v] for v in values], np.int64), names, cv, groups=values)
    if isinstance(cv, str) and cv == "kfold":
        from sklearn.model_selection import StratifiedKFold

        if target is None:
            raise ParameterError("cv='kfold' is stratified on the target; pass target=")
        y = _column(table, target, cv)
        if target != "identity" and "identity" in table.columns and \
                table["identity"].nunique() < n:
            warnings.warn(
                f"cv='kfold' for target {target!r}: images of the same identity fall in "
                "training and test folds (identities are mixed across folds), so accuracy "
                "includes recognising people seen in training; use cv='leave-identity-out' "
                "for generalisation to new faces.", UserWarning, stacklevel=user_stacklevel())
        assignment = np.empty(n, np.int64)
        skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for k, (_, test) in enumerate(skf.split(np.zeros(n), y)):
            assignment[test] = k
        return Folds(assignment, [f"fold{k}" for k in range(n_folds)],
                     f"kfold(n_folds={n_folds}, seed={seed})")
    if isinstance(cv, str) and cv == "kdef10":
        spec = kdef10_folds()
        ids = _column(table, "identity", cv)
        fold_of = {i: k for k, members in enumerate(spec["folds"]) for i in members}
        idx = np.array([kdef_identity_index(i) for i in ids])
        assignment = np.array([fold_of[i] for i in idx], np.int64)
        present = sorted(set(assignment.tolist()))
        if len(present) < 2:
            raise ParameterError(
                f"cv='kdef10': the stimuli's identities fall in {len(present)} of the 10 "
                "published folds; at least 2 are needed"
            )
        if len(present) < 10:
            warnings.warn(
                f"cv='kdef10': folds {[f'set{k + 1}' for k in range(10) if k not in present]} "
                "have no stimuli here and are skipped", UserWarning, stacklevel=user_stacklevel(),
            )
        remap = {k: j for j, k in enumerate(present)}
        return Folds(np.array([remap[a] for a in assignment], np.int64),
                     [f"set{k + 1}" for k in present], "kdef10", groups=ids,
                     info={"numbering": spec["numbering"]})
    if isinstance(cv, str):
        if cv in table.columns:
            values = table[cv].astype(str).to_numpy()
            names = sorted(set(values))
            if len(names) < 2:
                raise ParameterError(f"fold column {cv!r} has a single value {names}; need >= 2 folds")
            lookup = {v: k for k, v in enumerate(names)}
            return Folds(np.array([lookup[v] for v in values], np.int64), names,
                         f"column:{cv}")
        raise ParameterError(
            f"unknown cv {cv!r}; use one of {list(SCHEMES)}, a stimulus label column "
            f"({list(table.columns)}) or a mapping stimulus_id -> fold"
        )
    if isinstance(cv, (Mapping, pd.Series)):
        mapping = {str(k): v for k, v in (cv.items())}
        missing = [i for i in table.index if str(i) not in mapping]
        if missing:
            raise MissingKeyError(
                f"the fold table has no entry for {len(missing)} stimuli, e.g. {missing[:5]}; "
                "give every stimulus_id a fold"
            )
        values = np.array([str(mapping[str(i)]) for i in table.index])
        names = sorted(set(values))
        if len(names) < 2:
            raise ParameterError(f"the fold table has a single fold {names}; need >= 2")
        lookup = {v: k for k, v in enumerate(names)}
        return Folds(np.array([lookup[v] for v in values], np.int64), names, "explicit")
    raise ParameterTypeError(f"cv must be a scheme name, a label column or a mapping; got {type(cv)}")


def check_folds(folds: Folds, y: np.ndarray, classes: list[str], target: str) -> None:
    """Every fold needs test stimuli and every class in its training set."""
    for k, (train, test) in enumerate(folds.splits()):
        name = folds.names[k]
        if len(test) == 0 or len(train) == 0:
            raise ParameterError(
                f"fold {name!r} has {len(train)} training and {len(test)} test stimuli; "
                "each fold needs both"
            )
        absent = sorted(set(range(len(classes))) - set(np.unique(y[train]).tolist()))
        if absent:
            names = [classes[c] for c in absent]
            raise ParameterError(
                f"fold {name!r} leaves {target} class(es) {names} out of training (all their "
                f"stimuli are in the test fold), so the head can never predict them. Use a cv "
                f"scheme that keeps every {target} in training (e.g. leave-identity-out for "
                "expression, leave-expression-out for identity), or drop those classes."
            )
