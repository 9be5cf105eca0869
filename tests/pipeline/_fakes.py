"""Tiny fakes of every input a shipped config reads, and the overrides that shrink it.

Faces come from the synthetic renderer, written under the real datasets' file
names (KDEF ``AF01/AF01HAS.JPG``, LFW ``Name/Name_0001.jpg``), so the loaders
parse them exactly as they parse the real thing.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (not gone, not a zombie); reads /proc (Linux)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


KDEF_CODE = {"fearful": "AF", "angry": "AN", "disgusted": "DI", "happy": "HA",
             "neutral": "NE", "sad": "SA", "surprised": "SU"}
# one identity in each of three different published kdef10 folds (0-based 8, 9, 46)
KDEF_PERSONS = ("F09", "F10", "M12")

#: shrinks configs/demo.yaml to seconds (same stages, same structure)
DEMO_TINY = {
    "threads": 1,
    "stimuli.train.n_identities": 4, "stimuli.train.images_per_identity": 8,
    "stimuli.train.image_size": 32,
    "stimuli.test.image_size": 32, "stimuli.test.identities": 6, "stimuli.test.views": ["S"],
    "stimuli.scanner.image_size": 32, "stimuli.scanner.identities": 4,
    "models[0].train.epochs": 1, "models[1].train.epochs": 1,
    "extract.layers": ["layer2", "layer4"],
    "transfer.directions[0].n_permutations": 2, "transfer.directions[0].n_folds": 3,
    "transfer.directions[1].n_permutations": 2,
    "transfer.directions[0].options": {"head_kw": {"alpha": 10.0}},
    "transfer.directions[1].options": {"head_kw": {"alpha": 10.0}},
    "transfer.directions[0].features": "srp:64", "transfer.directions[1].features": "srp:64",
    "brain.subjects": 2, "brain.runs": 1, "rsa.n_bootstrap": 50, "encoding.n_bootstrap": 200,
    "encoding.n_folds": 2, "encoding.inner_cv": 2, "encoding.alphas": [1.0, 100.0, 10000.0],
}

REVERSE_TINY = {
    "threads": 1,
    "stimuli.train.n_identities": 4, "stimuli.train.images_per_identity": 8,
    "stimuli.train.image_size": 32,
    "stimuli.test.image_size": 32, "stimuli.test.identities": 4, "stimuli.test.views": ["S"],
    "models[0].train.epochs": 1, "extract.layers": ["layer3", "avgpool"],
    "transfer.directions[0].n_permutations": 2, "transfer.directions[1].n_permutations": 0,
    "transfer.directions[1].n_folds": 2,
    "transfer.directions[0].options": {"head_kw": {"C": 0.1}},
    "transfer.directions[1].options": {"head_kw": {"C": 0.1}},
}

POSTER_TINY = {
    "threads": 1,
    "stimuli.kdef.views": ["S"], "stimuli.kdef.sessions": ["A"],
    "models[1].train.epochs": 1, "models[1].train.n_pairs": 24,
    "models[1].train.batch_size": 8,
    "extract.layers": ["layer4", "avgpool", "conv4", "embedding"],
    "transfer.directions[0].n_permutations": 0, "transfer.directions[1].n_permutations": 2,
    "transfer.directions[0].options": {"head_kw": {"max_iter": 20}},
    "transfer.directions[1].options": {"head_kw": {"max_iter": 20}},
    "transfer.directions[2].n_permutations": 0, "transfer.directions[3].n_permutations": 2,
    "transfer.directions[2].features": "srp:64", "transfer.directions[3].features": "srp:64",
    "transfer.directions[2].options": {"head_kw": {"max_iter": 20}},
    "transfer.directions[3].options": {"head_kw": {"max_iter": 20}},
}

FMRI_TINY = {
    "threads": 1,
    "extract.layers": ["layer4", "avgpool"], "rsa.n_bootstrap": 0,
    "encoding.n_folds": 2, "encoding.inner_cv": 2, "encoding.alphas": [1.0, 100.0, 10000.0],
}


def render(identities, expressions, views, size: int, seed: int = 5):
    from facebrain.stimuli import synthetic_faces

    return synthetic_faces(identities, list(expressions), list(views), image_size=size,
                           seed=seed)


def make_kdef(root: Path, persons=KDEF_PERSONS, sessions=("A",), views=("S",), size=48) -> Path:
    """KDEF tree ``root/AF09/AF09HAS.JPG`` of synthetic faces (one person per identity)."""
    root = Path(root)
    stim = render(len(persons), list(KDEF_CODE), list(views), size)
    table = stim.table
    idents = sorted(table["identity"].unique())
    for i, sid in enumerate(stim.ids):
        row = table.loc[sid]
        person = persons[idents.index(row["identity"])]
        for s in sessions:
            name = f"{s}{person}{KDEF_CODE[row['expression']]}{row['view']}"
            path = root / f"{s}{person}" / f"{name}.JPG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(stim.load(i)).save(path, quality=90)
    return root


def make_lfw(root: Path, people=("Ann_Lee", "Bo_Chan", "Cy_Dunn", "Di_Ek"), per_person=6,
             size=64) -> Path:
    """LFW tree ``root/Name/Name_0001.jpg`` of synthetic faces (random expressions/views)."""
    from facebrain.stimuli import synthetic_identities

    root = Path(root)
    stim = synthetic_identities(len(people), per_person, seed=9, image_size=size)
    idents = sorted(stim.table["identity"].unique())
    counts: dict[str, int] = {}
    for i, sid in enumerate(stim.ids):
        name = people[idents.index(stim.table.loc[sid, "identity"])]
        counts[name] = counts.get(name, 0) + 1
        path = root / name / f"{name}_{counts[name]:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(stim.load(i)).save(path, quality=90)
    return root


def make_vggface2_weights(path: Path, seed: int = 0) -> Path:
    """A plain torch state dict of a randomly initialised ``resnet50_vggface2``."""
    import torch

    from facebrain.models import create

    torch.manual_seed(seed)
    model = create("resnet50_vggface2")
    torch.save(model.state_dict(), path)
    return path


def make_manifest(folder: Path, n_identities=6, expressions=("neutral", "happy", "sad"),
                  size=48):
    """A lab's stimuli saved as PNG files plus ``manifest.csv``; returns (path, StimulusSet)."""
    from facebrain.stimuli import StimulusSet

    stim = render(n_identities, expressions, ["S"], size, seed=11)
    path = stim.save(Path(folder) / "manifest.csv")
    return path, StimulusSet.load_manifest(path)


def make_bids(root: Path, stimuli, subjects=2) -> Path:
    """A BIDS dataset from the simulator (identity-driven FFA, expression pSTS, pixel EVC)."""
    from facebrain.brain import simulate

    return simulate(root, stimuli, subjects=subjects, runs=1, repeats=2,
                    rois=["rFFA", "rOFA", "rpSTS", "EVC"],
                    drivers={"rFFA": "identity", "rOFA": "identity", "rpSTS": "expression",
                             "EVC": "pixels"}, snr=2.0, seed=3)
