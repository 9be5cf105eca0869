"""The report's "which candidate fits each ROI" table, from the pooled selection datasets.

Each ROI row says what was selected (the best candidate over every network layer,
the reference features and the baselines), how far it is ahead of the runner-up
(paired bootstrap interval) and the p that it is ahead of every other candidate,
corrected for having picked it from the data; with a planted driver (simulated
brain) it says whether the driver was recovered:

- ``yes``: the driver is selected and it is significantly ahead of every other
  candidate (``p_diff_fwe < alpha``);
- ``tied``: the driver is selected, or is the runner-up, but the lead is not
  significant (the data cannot tell the two apart);
- ``no``: anything else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["recovery", "selection_rows"]

ALPHA = 0.05


def _f(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return x


def recovery(pooled, roi: str, planted: str, alpha: float = ALPHA) -> dict[str, Any]:
    """Selection facts of one ROI and, with a ``planted`` candidate, the verdict."""
    r = pooled.sel(roi=roi)
    cands = [str(c) for c in pooled["candidate"].values]
    score = np.asarray(r["score"].values, float)
    order = [cands[i] for i in np.argsort(-np.where(np.isfinite(score), score, -np.inf),
                                          kind="stable")]
    best = str(r["best_candidate"].values)
    runner = str(r["runnerup_candidate"].values)
    p = _f(r["p_diff_fwe"].values)
    out: dict[str, Any] = {
        "selected": best, "runner_up": runner, "score": _f(r["score"].sel(candidate=best))
        if best else float("nan"),
        "diff": _f(r["diff_best_runnerup"].values),
        "diff_ci": [_f(r["diff_ci_low"].values), _f(r["diff_ci_high"].values)],
        "p_diff_fwe": p,
        "p_fwe": _f(r["p_value_fwe"].sel(candidate=best)) if best else float("nan"),
    }
    if planted:
        out["planted"] = planted
        out["planted_rank"] = order.index(planted) + 1 if planted in order else None
        separable = np.isfinite(p) and p < alpha
        if best == planted and separable:
            out["verdict"] = "yes"
        elif planted in (best, runner) and not separable:
            out["verdict"] = "tied"
        else:
            out["verdict"] = "no"
    return out


def _fmt(x, spec=".3f") -> str:
    return format(x, spec) if np.isfinite(_f(x)) else "n/a"


def selection_rows(selections: dict, rois: list[str], planted: dict[str, str]):
    """Table rows (one per ROI) and the recovery summary ``{roi: {method: facts}}``."""
    rows, summary = [], {}
    for roi in rois:
        row = [roi, planted.get(roi, "")]
        facts = {}
        for method in ("rsa", "encoding"):
            pooled = selections.get(method)
            if pooled is None or roi not in [str(x) for x in pooled["roi"].values]:
                row += ["", "", "", "", ""]
                continue
            f = recovery(pooled, roi, planted.get(roi, ""))
            facts[method] = f
            lo, hi = f["diff_ci"]
            row += [f["selected"], _fmt(f["score"]), f["runner_up"],
                    f"{_fmt(f['diff'])} [{_fmt(lo)}, {_fmt(hi)}]", _fmt(f["p_diff_fwe"])]
        verdicts = [f.get("verdict") for f in facts.values() if "verdict" in f]
        row.append("yes" if verdicts and all(v == "yes" for v in verdicts) else
                   "tied" if verdicts and all(v in ("yes", "tied") for v in verdicts) else
                   "no" if verdicts else "")
        rows.append(row)
        if facts:
            summary[roi] = facts
    return rows, summary
