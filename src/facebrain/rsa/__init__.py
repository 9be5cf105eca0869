"""Representational similarity analysis: RDMs, rsatoolbox-exact comparisons, bootstraps.

Built on rsatoolbox ``RDMs``; comparisons run through vectorised kernels in
``COMPARISONS`` (rank once, compare many; Kendall's tau in O(n log n)).

Bootstraps run on a dask cluster when ``client=`` is given, e.g. an existing one::

    from dask.distributed import Client
    client = Client("tcp://scheduler-host:8786")
    res = facebrain.rsa.compare(acts, brain, n_bootstrap=1000, client=client)

Sample ``b`` always comes from ``numpy.random.default_rng([seed, b])``, so the
result equals the local run, and results of several networks computed with the same
stimuli, subjects and seed are paired: ``select_candidates({"net": res1, "twin": res2},
"score_mean", "bootstrap_score")`` pools them and picks the best candidate per ROI with a
paired interval for its lead and a selection-corrected p; ``network_contrasts`` compares two
networks at each shared layer.
"""

from typing import TYPE_CHECKING

from .._lazy import attach

# public name -> defining module; imported on first access (import time stays small)
__getattr__, __dir__, __all__ = attach(__name__, {
    ".._selection": ["network_contrasts", "select_candidates"],
    "..brain._reliability": ["rsa_noise_ceiling"],
    "._compare": ["compare"],
    "._kernels": ["COMPARISONS"],
    "._rdm": ["label_rdm", "rdm"],
}, deprecated={
    "noise_ceiling": ("._compare", "roi_noise_ceiling",
                      ("use facebrain.rsa.rsa_noise_ceiling(RDMs(vectors), method) (the same "
                       "function as facebrain.brain.rsa_noise_ceiling) or compare(..., "
                       "ceiling=True)")),
})

if TYPE_CHECKING:  # eager imports for static analysis
    from .._selection import network_contrasts, select_candidates
    from ..brain._reliability import rsa_noise_ceiling
    from ._compare import compare
    from ._kernels import COMPARISONS
    from ._rdm import label_rdm, rdm
