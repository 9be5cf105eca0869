"""Extract layer activations of a network into a resumable zarr store (xarray Dataset).

    python examples/02_extract_activations.py
"""

import torch

from facebrain.activations import extract
from facebrain.models import create
from facebrain.stimuli import synthetic_kdef

torch.manual_seed(0)
model = create("small_resnet", num_classes=10)  # or create("resnet50_vggface2", weights=path)
faces = synthetic_kdef(seed=0, image_size=64).subset("view == 'S' and session == 'A'")

acts = extract(model, faces, ["layer2", "layer4", "avgpool"], reduce="avgpool",
               store="acts.zarr")  # rerun: finished batches are reused
print(acts)
x = acts.fb.matrix("layer4")  # ndarray (n_stimuli, n_units)
codes, names = acts.fb.labels("expression")
print(x.shape, names)
