"""Representational similarity analysis: RDMs, rsatoolbox-exact comparisons, bootstraps.

Built on rsatoolbox ``RDMs``; comparisons run through vectorised kernels in
``COMPARISONS`` (rank once, compare many; Kendall's tau in O(n log n)).

Bootstraps run on a dask cluster when ``client=`` is given, e.g. an existing one::

    from dask.distributed import Client
    client = Client("tcp://scheduler-host:8786")
    res = facebrain.rsa.compare(acts, brain, bootstrap=1000, client=client)

Sample ``b`` always comes from ``numpy.random.default_rng([seed, b])``, so the
result equals the local run.
"""

from ._compare import compare, noise_ceiling
from ._kernels import COMPARISONS
from ._rdm import label_rdm, rdm

__all__ = ["COMPARISONS", "compare", "label_rdm", "noise_ceiling", "rdm"]
