"""Verification pairs: sample them from a StimulusSet, check a pairs table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._boundary import public
from .._utils import check_random_state
from ..errors import DataFormatError

__all__ = ["check_pairs", "sample_pairs"]


@public
def sample_pairs(
    stimuli, n_pairs: int, *, seed: int = 0, same_fraction: float = 0.5, by: str = "identity",
    folds: int | None = None,
) -> pd.DataFrame:
    """Draw same/different pairs of images from a StimulusSet.

    A *same* pair is two different images sharing the ``by`` value; a
    *different* pair is two images with different values. Pairs are unique
    (unordered) as long as the set allows; the draw is uniform over eligible
    ``by`` values first, then over their images, like LFW's protocol.

    Parameters
    ----------
    stimuli : StimulusSet
    n_pairs : int
        Number of pairs; ``round(same_fraction * n_pairs)`` are *same* pairs.
    seed : int
    same_fraction : float in [0, 1]
    by : str
        Label column defining "same" (``"identity"`` for face verification).
    folds : int, optional
        Split the ``by`` values into this many disjoint groups and draw pairs
        within each, adding a ``fold`` column (people never cross folds, as in
        LFW's ``pairs.txt``), ``n_pairs // folds`` pairs per fold.

    Returns
    -------
    DataFrame with columns ``left, right`` (stimulus ids), ``same`` (bool)
    [, ``fold`` (int)].

    Examples
    --------
    >>> from facebrain.stimuli import synthetic_identities
    >>> faces = synthetic_identities(20, 3)
    >>> pairs = sample_pairs(faces, 60, seed=0, folds=10)
    >>> len(pairs), int(pairs["same"].sum()), pairs["fold"].nunique()
    (60, 30, 10)
    """
    if by not in stimuli.table.columns:
        raise KeyError(f"column {by!r} not found; available: {list(stimuli.table.columns)}")
    if int(n_pairs) < 1:
        raise ValueError(f"n_pairs must be >= 1; got {n_pairs!r}")
    if not 0 <= float(same_fraction) <= 1:
        raise ValueError(f"same_fraction must be in [0, 1]; got {same_fraction!r}")
    rng = check_random_state(seed)
    values = stimuli.table[by].astype(str).to_numpy()
    ids = stimuli.ids.to_numpy().astype(str)
    if folds is None:
        return _draw(ids, values, int(n_pairs), float(same_fraction), rng, by)
    folds = int(folds)
    people = np.array(sorted(set(values)))
    if folds < 2 or 2 * folds > len(people):
        raise ValueError(
            f"folds must be between 2 and half the number of distinct {by!r} values "
            f"({len(people)} // 2 = {len(people) // 2}), so that every fold holds two or "
            f"more for 'different' pairs; got folds={folds}"
        )
    groups = np.array_split(rng.permutation(people), folds)
    per = int(n_pairs) // folds
    if per < 1:
        raise ValueError(f"n_pairs={n_pairs} is smaller than folds={folds}")
    frames = []
    for k, group in enumerate(groups):
        keep = np.isin(values, group)
        df = _draw(ids[keep], values[keep], per, float(same_fraction), rng, by)
        df["fold"] = k
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _draw(ids, values, n_pairs, same_fraction, rng, by) -> pd.DataFrame:
    groups: dict[str, np.ndarray] = {}
    for v in sorted(set(values)):
        groups[v] = np.flatnonzero(values == v)
    n_same = round(same_fraction * n_pairs)
    n_diff = n_pairs - n_same
    multi = [v for v, rows in groups.items() if len(rows) >= 2]
    names = list(groups)
    if n_same and not multi:
        raise ValueError(
            f"cannot draw 'same' pairs: no {by!r} value has two or more images. Use "
            "same_fraction=0 or a set with repeated identities."
        )
    if n_diff and len(names) < 2:
        raise ValueError(
            f"cannot draw 'different' pairs: all images share {by}={names[0]!r}."
        )
    rows, seen = [], set()

    def add(a: int, b: int, same: bool, last_try: bool) -> bool:
        # unique unordered pairs while possible; a duplicate only after 50 failed draws
        key = (min(a, b), max(a, b))
        if key in seen and not last_try:
            return False
        seen.add(key)
        rows.append((ids[a], ids[b], same))
        return True

    for _ in range(n_same):
        for attempt in range(50):
            v = multi[rng.integers(len(multi))]
            a, b = rng.choice(groups[v], size=2, replace=False)
            if add(int(a), int(b), True, attempt == 49):
                break
    for _ in range(n_diff):
        for attempt in range(50):
            i, j = rng.choice(len(names), size=2, replace=False)
            a = rng.choice(groups[names[i]])
            b = rng.choice(groups[names[j]])
            if add(int(a), int(b), False, attempt == 49):
                break
    df = pd.DataFrame(rows, columns=["left", "right", "same"])
    df["left"] = df["left"].astype(str)
    df["right"] = df["right"].astype(str)
    df["same"] = df["same"].astype(bool)
    return df


def check_pairs(pairs: pd.DataFrame, stimuli, *, name: str = "pairs") -> pd.DataFrame:
    """Validate a pairs table against a StimulusSet; returns a clean copy.

    Needs ``left, right, same`` (``same`` boolean or 0/1); ids must exist in
    ``stimuli`` (the missing ones are named).
    """
    if not isinstance(pairs, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame; got {type(pairs).__name__}")
    missing = [c for c in ("left", "right", "same") if c not in pairs.columns]
    if missing:
        raise DataFormatError(
            f"{name} lacks column(s) {missing}; it has {list(pairs.columns)}. A pairs table "
            "has left, right (stimulus ids), same (bool) and optionally fold "
            "(see facebrain.stimuli.load_lfw_pairs or sample_pairs)."
        )
    if len(pairs) == 0:
        raise ValueError(f"{name} is empty: there are no pairs to train or evaluate on.")
    out = pairs.copy()
    out["left"] = out["left"].astype(str)
    out["right"] = out["right"].astype(str)
    same = out["same"]
    if same.dtype != bool:
        vals = set(pd.unique(same.astype(str).str.lower()))
        ok = {"0", "1", "true", "false", "0.0", "1.0"}
        if not vals <= ok:
            raise DataFormatError(
                f"{name}['same'] must be boolean or 0/1; found values {sorted(vals - ok)[:5]}"
            )
        out["same"] = same.astype(str).str.lower().isin(["1", "true", "1.0"])
    known = set(stimuli.ids)
    absent = sorted((set(out["left"]) | set(out["right"])) - known)
    if absent:
        raise KeyError(
            f"{name} names stimulus ids that are not in the StimulusSet: "
            f"{absent[:5]}{' ...' if len(absent) > 5 else ''} ({len(absent)} in all). "
            "Pass the StimulusSet the pairs were made from."
        )
    return out.reset_index(drop=True)
