"""Run the heavy steps on a dask cluster: same numbers as the single-process run.

Point Client at your cluster's scheduler (Client("tcp://scheduler:8786")); here a
LocalCluster with 2 workers stands in for it. The pipeline does the same with
`facebrain run CONFIG --scheduler tcp://scheduler:8786` (or `scheduler:` in the config).

    python examples/05_scale_with_dask.py
"""

import numpy as np
import torch
from dask.distributed import Client, LocalCluster

from facebrain.activations import extract
from facebrain.models import create
from facebrain.stimuli import synthetic_kdef
from facebrain.transfer import probe

if __name__ == "__main__":
    faces = synthetic_kdef(seed=0, image_size=64).subset("view == 'S' and session == 'A'")
    torch.manual_seed(0)
    model = create("small_resnet", num_classes=10)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        acts = extract(model, faces, ["layer3", "layer4"], reduce="avgpool",
                       store="acts_dask.zarr", resume=False, client=client)
        res = probe(acts, "expression", n_permutations=20, seed=0, client=client)
    local = probe(acts.load(), "expression", n_permutations=20, seed=0)
    print(res["accuracy_mean"].values, res["p_value"].values)
    print("identical to the local run:",
          np.allclose(res["null_accuracy"].values, local["null_accuracy"].values))
