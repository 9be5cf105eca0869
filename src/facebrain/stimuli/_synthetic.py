"""Synthetic FACS faces with known generating factors: the built-in stimulus set.

Three entry points, all returning a :class:`~facebrain.stimuli.StimulusSet`
whose pixels are rendered lazily, row by row, from the parameters stored in its
table (``id_*`` identity parameters, ``au_*`` action-unit intensities, ``yaw``
and the per-image nuisance):

- :func:`synthetic_faces`: a full factorial design you choose;
- :func:`synthetic_kdef`: KDEF's design (70 people x 7 expressions x 5 views x 2
  sessions = 4,900 images);
- :func:`synthetic_identities`: a training crawl (random expression, intensity,
  view and nuisance per image, like VGGFace2).

Calibration against real photographs (issue 11): the action units' amplitudes
come from measurements of posed expressions (smile width and commissure
excursion, upper-lip lift, incisor display, brow raise; sources in
``_synthetic_features``), never from a network result. The check is the
within-person / between-person pixel ratio (64 px grey, frontal, neutral vs
expression of one person over neutral vs neutral of two people), ~0.3 on real
frontal photographs. ``benchmarks/bench_synthetic.py`` measures it on
:func:`synthetic_kdef`, whose every image is its own photograph (~0.30), and
prints its two parts: the expression alone (:func:`synthetic_faces`, nuisance
shared: ~0.07) and re-photographing the same neutral face (~0.27). At 64 px
1 mm of face is ~0.2 px, so a realistic expression moves few pixels; most of
the real-photograph ratio is the sitter's re-positioning between exposures.

Identity index ranges never overlap between the presets for a given seed:
:func:`synthetic_faces` uses the indices you pass (by default ``0..n-1``),
:func:`synthetic_kdef` uses ``KDEF_INDEX_BASE + 0..69`` and
:func:`synthetic_identities` uses ``IDENTITIES_INDEX_BASE + k``. A network
trained on one preset is therefore tested on new people.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .._boundary import public
from ..errors import ParameterError, ParameterTypeError, ShapeError
from ._stimulus_set import CANONICAL_EXPRESSIONS, StimulusSet
from ._synthetic_params import (
    AU_COLUMNS,
    EXPRESSION_PROTOTYPES,
    IDENTITY_COLUMNS,
    NUISANCE_COLUMNS,
    NUISANCE_PROFILES,
    VIEW_YAW,
    crawl_draw,
    expression_aus,
    identity_params,
    nuisance_params,
)
from ._synthetic_render import render_face

__all__ = [
    "IDENTITIES_INDEX_BASE",
    "KDEF_INDEX_BASE",
    "SyntheticFaceSource",
    "synthetic_faces",
    "synthetic_identities",
    "synthetic_kdef",
]

#: First identity index of :func:`synthetic_kdef` (70 indices from here).
KDEF_INDEX_BASE = 900_000
#: First identity index of :func:`synthetic_identities`.
IDENTITIES_INDEX_BASE = 1_000_000
_KDEF_N_PER_GENDER = 35

#: KDEF file-name codes of the canonical expressions.
KDEF_EXPRESSION_CODES = {
    "neutral": "NE",
    "happy": "HA",
    "sad": "SA",
    "angry": "AN",
    "fearful": "AF",
    "disgusted": "DI",
    "surprised": "SU",
}
KDEF_VIEWS = tuple(VIEW_YAW)
PARAM_COLUMNS = IDENTITY_COLUMNS + AU_COLUMNS + NUISANCE_COLUMNS


@public
class SyntheticFaceSource:
    """Picklable image source rendering row ``i`` from its stored parameters.

    Parameters
    ----------
    params : ndarray of shape (n_images, n_params)
        One row of ``id_*``, ``au_*`` and nuisance values per image.
    columns : sequence of str
        The parameter names, in column order.
    image_size : int
        Height and width of the rendered images.

    Examples
    --------
    >>> s = synthetic_faces(1, ["happy"], ["S"])
    >>> src = s.image_source
    >>> src(0).shape, src(0).dtype
    ((112, 112, 3), dtype('uint8'))
    """

    def __init__(self, params: np.ndarray, columns: Sequence[str], image_size: int) -> None:
        params = np.ascontiguousarray(params, dtype=np.float64)
        columns = tuple(columns)
        if params.ndim != 2 or params.shape[1] != len(columns):
            raise ShapeError(
                f"params must have shape (n_images, {len(columns)}) to match columns; "
                f"got {params.shape}"
            )
        self.params = params
        self.columns = columns
        self.image_size = int(image_size)

    def __len__(self) -> int:
        return len(self.params)

    def __repr__(self) -> str:
        return f"SyntheticFaceSource({len(self)} images, {self.image_size}x{self.image_size})"

    def parameters(self, i: int) -> dict:
        """The parameter dict of image ``i``."""
        return dict(zip(self.columns, self.params[int(i)].tolist()))

    def _key(self, i: int) -> tuple:
        return (self.params[int(i)].tobytes(), self.columns, self.image_size)

    def __call__(self, i: int) -> np.ndarray:
        key = self._key(i)
        img = _RENDERED.get(key)
        if img is None:
            img = render_face(self.parameters(i), self.image_size)
            _RENDERED.put(key, img)
        return img.copy()

    def prerender(self, indices=None, *, chunks: int = 2, map_chunks=None) -> int:
        """Render faces this process does not keep yet, ``chunks`` blocks at a time.

        Parameters
        ----------
        indices : array-like of int, optional
            Rows to render (default: all).
        chunks : int
            Blocks the missing rows are split into.
        map_chunks : callable, optional
            ``map_chunks(fn, jobs) -> list`` runs ``fn(*job)`` for each job, e.g. in
            other processes (the pipeline passes its process runner); default: here,
            one after another. ``fn`` is a picklable module-level function.

        Returns
        -------
        int
            Faces rendered (0 when all were kept, or when they would not all fit in
            the process's memo, where rendering ahead would only evict them).

        Faces are a pure function of their parameters, so where they are rendered
        changes nothing in their pixels; later ``source(i)`` calls return them.
        """
        idx = np.arange(len(self)) if indices is None else np.unique(np.asarray(indices, int))
        missing = [int(i) for i in idx if _RENDERED.get(self._key(i)) is None]
        need = len(missing) * self.image_size ** 2 * 3
        if not missing or need > _RENDERED.max_bytes:
            return 0
        blocks = [b for b in np.array_split(np.asarray(missing), max(1, int(chunks))) if b.size]
        jobs = [(self.params[b], self.columns, self.image_size) for b in blocks]
        run = map_chunks if map_chunks is not None else (
            lambda fn, js: [fn(*j) for j in js])
        for b, imgs in zip(blocks, run(_render_rows, jobs)):
            for i, img in zip(b.tolist(), imgs):
                _RENDERED.put(self._key(i), img)
        return len(missing)


def _render_rows(params: np.ndarray, columns: tuple, image_size: int) -> list[np.ndarray]:
    """Faces for rows of parameters (a job of :meth:`SyntheticFaceSource.prerender`)."""
    return [render_face(dict(zip(columns, row.tolist())), image_size) for row in params]


class _RenderMemo:
    """Faces rendered in this process, keyed by their full input (parameters, size).

    :func:`render_face` is a pure function of its parameters, so a face drawn
    again (every pipeline stage reads the same test set; the pixel baselines and
    the contact sheet read it again) is the same array: it is kept, up to
    ``max_bytes`` (least recently used first out), and copied on the way out.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            img = self._items.get(key)
            if img is not None:
                self._items.move_to_end(key)
            return img

    def put(self, key: tuple, img: np.ndarray) -> None:
        if img.nbytes > self.max_bytes:
            return
        img = img.copy()
        img.flags.writeable = False
        with self._lock:
            if key in self._items:
                return
            self._items[key] = img
            self.nbytes += img.nbytes
            while self.nbytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.nbytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.nbytes = 0


#: rendered faces of this process (~12 KB per 64 px face; 256 MB holds ~20,000)
_RENDERED = _RenderMemo(256 * 2**20)


# ---------------------------------------------------------------- validation
def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterTypeError(f"{name} must be an int; got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def _check_names(name: str, values, allowed: Sequence[str]) -> list[str]:
    if isinstance(values, str):
        values = [values]
    values = list(values)
    if not values:
        raise ParameterError(f"{name} is empty; pass at least one of {list(allowed)}")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ParameterError(f"unknown {name[:-1]} {bad[0]!r} in {name}; allowed: {list(allowed)}")
    if len(set(values)) != len(values):
        raise ParameterError(f"{name} has duplicates: {values}; list each value once")
    return values


def _check_identities(identities) -> list[int]:
    if isinstance(identities, (int, np.integer)) and not isinstance(identities, bool):
        n = _check_int("identities", identities, 1)
        return list(range(n))
    try:
        idx = list(identities)
    except TypeError:
        raise ParameterTypeError(
            f"identities must be a count (int) or a sequence of identity indices; got {identities!r}"
        ) from None
    if not idx:
        raise ParameterError("identities is empty; pass a count >= 1 or a list of indices")
    out = [_check_int("identity index", i, 0) for i in idx]
    if len(set(out)) != len(out):
        raise ParameterError(f"identities has duplicate indices: {out}")
    return out


def _check_intensities(intensity) -> list[float]:
    vals = [intensity] if np.isscalar(intensity) else list(intensity)
    if not vals:
        raise ParameterError("intensity is empty; pass a float in [0, 2] or a list of them")
    out = []
    for v in vals:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ParameterTypeError(f"intensity must be a float or a list of floats; got {v!r}") from None
        if not 0.0 <= f <= 2.0:
            raise ParameterError(f"intensity must lie in [0, 2] (1 = full prototype); got {f}")
        out.append(f)
    if len(set(out)) != len(out):
        raise ParameterError(f"intensity has duplicates: {out}")
    return out


def _identity(seed: int, index: int) -> tuple[str, dict]:
    """Gender and parameters of one identity; KDEF's indices have their gender fixed."""
    gender = None
    if KDEF_INDEX_BASE <= index < KDEF_INDEX_BASE + 2 * _KDEF_N_PER_GENDER:
        gender = "F" if index - KDEF_INDEX_BASE < _KDEF_N_PER_GENDER else "M"
    return identity_params(seed, index, gender)


#: Nuisance that changes from one photograph to the next within a session.
PHOTO_COLUMNS = ("shift_x", "shift_y", "scale", "noise_sigma", "noise_seed")


def _photo_nuisance(seed: int, index: int, key: tuple[int, ...]) -> dict:
    """Head position and sensor noise of one photograph (lab profile).

    In a photographed set such as KDEF every expression is a separate exposure:
    the studio lights stay put for the session, but the sitter's head moves a
    little between shots and each exposure has its own sensor noise.
    """
    photo = nuisance_params(seed, index, key, "lab")
    return {k: photo[k] for k in PHOTO_COLUMNS}


def _build(rows: list[dict], ids: list[str], image_size: int, name: str, notes: dict):
    table = pd.DataFrame(rows, index=pd.Index(ids, name="stimulus_id"))
    source = SyntheticFaceSource(table[list(PARAM_COLUMNS)].to_numpy(np.float64),
                                 PARAM_COLUMNS, image_size)
    table["noise_seed"] = table["noise_seed"].astype(np.int64)
    return StimulusSet(table, image_source=source, name=name, notes=notes)


def _row(label, index, gender, expression, view, intensity, ip, aus, nuis, **extra) -> dict:
    row = {"identity": label, "identity_index": int(index), "expression": expression,
           "view": view, **extra, "gender": gender, "intensity": float(intensity)}
    row.update(ip)
    row.update(aus)
    row.update(nuis)
    return row


# ------------------------------------------------------------------ public
@public
def synthetic_faces(
    identities: int | Iterable[int],
    expressions: str | Sequence[str],
    views: str | Sequence[str],
    *,
    image_size: int = 112,
    intensity: float | Sequence[float] = 1.0,
    samples: int = 1,
    seed: int = 0,
    nuisance: str = "lab",
) -> StimulusSet:
    """Procedural faces with known identity, FACS expression, view and nuisance.

    Rows follow the full factorial design identity x expression x view x
    intensity x sample. Pixels are rendered lazily from the per-row parameters.

    Parameters
    ----------
    identities : int or sequence of int
        A count ``n`` (identity indices ``0..n-1``) or explicit non-negative
        indices. The same (seed, index) always gives the same person.
    expressions : str or sequence of str
        Names from ``CANONICAL_EXPRESSIONS`` (neutral, happy, sad, angry,
        fearful, disgusted, surprised); each is an Ekman prototype of FACS
        action units (see ``EXPRESSION_PROTOTYPES``).
    views : str or sequence of str
        KDEF view codes: ``FL`` (-90 deg), ``HL`` (-45), ``S`` (0), ``HR`` (45),
        ``FR`` (90); positive yaw turns the nose to image right.
    image_size : int
        Height and width in pixels (>= 16).
    intensity : float or sequence of float
        Scale of the prototype's action units, in [0, 2]; 0 gives the neutral face.
    samples : int
        Nuisance samples per (identity, view): different lighting, jitter and
        sensor noise, same face.
    seed : int
        Master seed of every random draw.
    nuisance : {"lab", "crawl"}
        Nuisance distribution: controlled lab photos (KDEF-like) or an
        internet crawl (strong lighting, jitter, noise, random backgrounds).

    Returns
    -------
    StimulusSet
        Table columns: ``identity, identity_index, expression, view, sample,
        gender, intensity, id_*, au_*, yaw, light_*, shift_x, shift_y, scale,
        noise_sigma, noise_seed, bg_*, cloth_*``.

    Notes
    -----
    Images differing only in expression or intensity share their nuisance
    (drawn from (seed, identity index, view, sample)), so expression is the only
    change between them and intensity 0 reproduces the neutral image exactly.
    That is a controlled contrast, not a photograph: two real photographs of one
    person also differ by head position and sensor noise (see
    :func:`synthetic_kdef`, which draws those per photograph).

    Examples
    --------
    >>> faces = synthetic_faces(3, ["neutral", "happy"], ["S", "HR"], seed=1)
    >>> len(faces), faces.load(0).shape
    (12, (112, 112, 3))
    """
    idx = _check_identities(identities)
    exprs = _check_names("expressions", expressions, CANONICAL_EXPRESSIONS)
    vws = _check_names("views", views, KDEF_VIEWS)
    ints = _check_intensities(intensity)
    samples = _check_int("samples", samples, 1)
    image_size = _check_int("image_size", image_size, 16)
    seed = _check_int("seed", seed, 0)
    if nuisance not in NUISANCE_PROFILES:
        raise ParameterError(f"unknown nuisance {nuisance!r}; allowed: {list(NUISANCE_PROFILES)}")
    view_code = {v: k for k, v in enumerate(KDEF_VIEWS)}
    rows, ids = [], []
    for index in idx:
        gender, ip = _identity(seed, index)
        label = f"id{index:05d}"
        for e in exprs:
            for vw in vws:
                for it in ints:
                    aus = expression_aus(e, it)
                    for smp in range(samples):
                        nuis = {"yaw": VIEW_YAW[vw],
                                **nuisance_params(seed, index, (view_code[vw], smp), nuisance)}
                        rows.append(_row(label, index, gender, e, vw, it, ip, aus, nuis,
                                         sample=smp))
                        ids.append(f"{label}_{e}_{vw}_i{round(it * 100):03d}_s{smp}")
    notes = {"generator": "synthetic_faces", "seed": seed, "nuisance": nuisance,
             "expression_prototypes": {k: {f"AU{a}": v for a, v in d.items()}
                                       for k, d in EXPRESSION_PROTOTYPES.items()}}
    return _build(rows, ids, image_size, "synthetic_faces", notes)


@public
def synthetic_kdef(seed: int = 0, image_size: int = 112) -> StimulusSet:
    """Synthetic faces in KDEF's design: 70 people x 7 expressions x 5 views x 2 sessions.

    35 female (``F01``..``F35``) and 35 male (``M01``..``M35``) identities, the
    seven canonical expressions at full intensity, views ``FL, HL, S, HR, FR``
    and sessions ``A``/``B`` that differ only in nuisance (lighting, jitter,
    sensor noise). As in KDEF, every image is its own photograph: lighting is
    fixed per (person, view, session), while head position (shift, scale) and
    sensor noise are drawn per photograph, so two expressions of one person
    differ by the expression plus a small re-positioning, never by the
    expression alone (use :func:`synthetic_faces` for that controlled contrast). Stimulus ids mirror KDEF's file names:
    ``{session}{gender}{number:02d}{expression code}{view}``, e.g. ``AF01HAS``.

    Parameters
    ----------
    seed : int
        Master seed.
    image_size : int
        Height and width in pixels.

    Returns
    -------
    StimulusSet
        4,900 rows; columns ``identity, identity_index, expression, view,
        session, gender, intensity, kdef_code, id_*, au_*, yaw, ...``.

    Examples
    --------
    >>> kdef = synthetic_kdef()
    >>> len(kdef), kdef.ids[0]
    (4900, 'AF01NEFL')
    """
    seed = _check_int("seed", seed, 0)
    image_size = _check_int("image_size", image_size, 16)
    rows, ids = [], []
    for k in range(2 * _KDEF_N_PER_GENDER):
        index = KDEF_INDEX_BASE + k
        gender, ip = _identity(seed, index)
        label = f"{gender}{k % _KDEF_N_PER_GENDER + 1:02d}"
        for si, session in enumerate("AB"):
            for ei, e in enumerate(CANONICAL_EXPRESSIONS):
                code = KDEF_EXPRESSION_CODES[e]
                aus = expression_aus(e, 1.0)
                for vi, vw in enumerate(KDEF_VIEWS):
                    nuis = {"yaw": VIEW_YAW[vw], **nuisance_params(seed, index, (vi, si), "lab")}
                    nuis.update(_photo_nuisance(seed, index, (vi, si, 1 + ei)))
                    rows.append(_row(label, index, gender, e, vw, 1.0, ip, aus, nuis,
                                     session=session, kdef_code=code))
                    ids.append(f"{session}{label}{code}{vw}")
    notes = {"generator": "synthetic_kdef", "seed": seed, "nuisance": "lab",
             "index_range": [KDEF_INDEX_BASE, KDEF_INDEX_BASE + 70]}
    return _build(rows, ids, image_size, "synthetic_kdef", notes)


@public
def synthetic_identities(
    n_identities: int, images_per_identity: int, seed: int = 0, image_size: int = 112
) -> StimulusSet:
    """A training crawl: many images per person with random expression, view and nuisance.

    Each image draws its expression (mostly neutral and happy, as on the web),
    intensity (0.3 to 1.2), continuous yaw (normal around frontal, sd 35 deg,
    clipped to +-90; ``view`` is the nearest KDEF code) and crawl nuisance
    (strong lighting, translation/scale jitter, sensor noise, random
    background and clothing). Identity indices start at
    ``IDENTITIES_INDEX_BASE``, so they never overlap :func:`synthetic_kdef`.

    Parameters
    ----------
    n_identities : int
        Number of people (>= 1); labels ``n000000``, ``n000001``, ...
    images_per_identity : int
        Images per person (>= 1).
    seed : int
        Master seed.
    image_size : int
        Height and width in pixels.

    Returns
    -------
    StimulusSet
        Stimulus ids ``n000003_0007`` (identity, image number).

    Examples
    --------
    >>> train = synthetic_identities(10, 4)
    >>> len(train), train.table["identity"].nunique()
    (40, 10)
    """
    n_identities = _check_int("n_identities", n_identities, 1)
    images_per_identity = _check_int("images_per_identity", images_per_identity, 1)
    seed = _check_int("seed", seed, 0)
    image_size = _check_int("image_size", image_size, 16)
    yaws = np.array(list(VIEW_YAW.values()))
    rows, ids = [], []
    for k in range(n_identities):
        index = IDENTITIES_INDEX_BASE + k
        gender, ip = _identity(seed, index)
        label = f"n{k:06d}"
        for j in range(images_per_identity):
            e, it, yaw = crawl_draw(seed, index, j)
            vw = KDEF_VIEWS[int(np.argmin(np.abs(yaws - yaw)))]
            nuis = {"yaw": yaw, **nuisance_params(seed, index, (len(KDEF_VIEWS), j), "crawl")}
            rows.append(_row(label, index, gender, e, vw, it, ip,
                             expression_aus(e, it), nuis, image=j))
            ids.append(f"{label}_{j:04d}")
    notes = {"generator": "synthetic_identities", "seed": seed, "nuisance": "crawl",
             "index_range": [IDENTITIES_INDEX_BASE, IDENTITIES_INDEX_BASE + n_identities]}
    return _build(rows, ids, image_size, "synthetic_identities", notes)
