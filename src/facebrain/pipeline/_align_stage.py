"""``stimuli.<name>.align``: aligned face chips as part of the stimuli stage's output."""

from __future__ import annotations

import shutil

import pandas as pd

from .._utils import atomic_path
from ._runner import StageContext, StageError

__all__ = ["align_stimuli"]


def _safe(sid: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in sid)


def align_stimuli(ctx: StageContext, name: str, spec, stim):
    """Align ``stim`` as ``spec.align`` says; chips go to ``<stage>/aligned/<name>/``.

    Detections are cached across runs in ``<run>/cache/align`` (keyed by image
    content and every parameter, so never stale); the chips themselves are
    copied into the stage folder, which the stage manifest then covers. The
    returned set has paths relative to the stage folder. Rejected images are
    listed in ``<name>.rejected.csv``.
    """
    from ..stimuli import StimulusSet, align_faces

    a = spec.align
    try:
        out = align_faces(stim, size=a.size, padding=a.padding, method=a.method,
                          detector=a.detector, upsample=a.upsample, pick=a.pick,
                          use_boxes=a.use_boxes, cache_dir=ctx.run_dir / "cache" / "align",
                          name=name)
    except ImportError as err:
        raise StageError(f"stimuli.{name}.align: {err}") from err
    folder = ctx.dir / "aligned" / name
    folder.mkdir(parents=True, exist_ok=True)
    rel = []
    for i, sid in enumerate(out.ids):
        dst = folder / f"{_safe(str(sid))}.png"
        src = out.path_of(i)
        with atomic_path(dst, suffix=".png") as tmp:
            shutil.copyfile(src, tmp)
        rel.append(dst.relative_to(ctx.dir).as_posix())
    table = out.table.copy()
    table["path"] = rel
    rejected = out.rejected if len(out.rejected) else pd.DataFrame(columns=["path", "reason"])
    with atomic_path(ctx.dir / f"{name}.rejected.csv", suffix=".csv") as tmp:
        rejected.to_csv(tmp, index=False)
    notes = dict(out.notes)
    notes["align"] = {k: v for k, v in notes.get("align", {}).items() if k != "cache_dir"}
    ctx.log(f"[stimuli] {name}: aligned {len(out)} of {len(stim)} images "
            f"({len(stim) - len(out)} without a usable face; see {name}.rejected.csv)")
    return StimulusSet(table, root=ctx.dir, name=name, rejected=out.rejected, notes=notes)
