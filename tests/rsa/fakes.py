"""Small fake Activations and BrainResponses with known structure (asymmetric shapes)."""

from __future__ import annotations

import xarray as xr


def stimulus_ids(n: int) -> list[str]:
    return [f"s{i:03d}" for i in range(n)]


def fake_activations(rng, n=14, layers=(("conv", 9), ("fc", 5)), latent=None, noise=1.0,
                     n_identities=7):
    """Activations: each layer = latent @ random map + noise; identity/expression coords."""
    ids = stimulus_ids(n)
    if latent is None:
        latent = rng.normal(size=(n, 4))
    data = {}
    for name, units in layers:
        x = latent @ rng.normal(size=(latent.shape[1], units)) + noise * rng.normal(size=(n, units))
        data[name] = (("stimulus", f"{name}_unit"), x)
    return xr.Dataset(
        data,
        coords={
            "stimulus": ids,
            "identity": ("stimulus", [f"p{i % n_identities}" for i in range(n)]),
            "expression": ("stimulus", [("neutral", "happy", "sad")[i % 3] for i in range(n)]),
        },
    )


def fake_brain(rng, n=14, rois=("FFA", "OFA"), subjects=("01", "02", "03"), n_vox=6,
               latent=None, noise=1.0, repeats=None, noise_ceiling=False):
    """BrainResponses (stimulus, voxel) or (stimulus, repeat, voxel) with roi/subject coords."""
    ids = stimulus_ids(n)
    if latent is None:
        latent = rng.normal(size=(n, 4))
    roi, sub, vox = [], [], []
    for r in rois:
        for s in subjects:
            roi += [r] * n_vox
            sub += [s] * n_vox
            vox += [f"{s}|{r}|{i}" for i in range(n_vox)]
    signal = latent @ rng.normal(size=(latent.shape[1], len(vox)))
    coords = {"stimulus": ids, "voxel": vox, "roi": ("voxel", roi), "subject": ("voxel", sub),
              "x": ("voxel", rng.normal(size=len(vox))), "y": ("voxel", rng.normal(size=len(vox))),
              "z": ("voxel", rng.normal(size=len(vox))),
              "identity": ("stimulus", [f"p{i % 7}" for i in range(n)])}
    if noise_ceiling:
        coords["noise_ceiling"] = ("voxel", rng.uniform(0.2, 0.9, len(vox)))
    if repeats:
        data = signal[:, None, :] + noise * rng.normal(size=(n, repeats, len(vox)))
        dims = ("stimulus", "repeat", "voxel")
    else:
        data = signal + noise * rng.normal(size=(n, len(vox)))
        dims = ("stimulus", "voxel")
    return xr.DataArray(data, dims=dims, coords=coords, name="responses",
                        attrs={"space": "MNI152NLin2009cAsym", "source": "simulated", "tr": 2.0})
