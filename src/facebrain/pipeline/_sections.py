"""The sections of a run's configuration: one dataclass per YAML section.

:class:`facebrain.pipeline.Config` (``_config.py``) holds one of each and checks the
cross-references between them; each section here checks its own values in
``_check(key)``, naming the full key path. Renamed keys are read with a
``FutureWarning`` (``_config.RENAMED_KEYS``; in Python, the classes' renamed keywords).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._deprecation import renamed_kwargs
from ._typed import ConfigError

__all__ = [
    "LOADER_OPTIONS",
    "AlignConfig",
    "BrainConfig",
    "ConfoundsConfig",
    "DriverConfig",
    "EncodingConfig",
    "ExtractConfig",
    "ModelConfig",
    "ModelFallback",
    "RSAConfig",
    "ReportConfig",
    "StimulusConfig",
    "StimulusSource",
    "TrainConfig",
    "TransferConfig",
    "TransferDirection",
]

StimulusSource = Literal[
    "synthetic_kdef", "synthetic_identities", "kdef", "lfw", "folder", "manifest", "table",
    "fer2013", "vggface2",
]
_NEEDS_ROOT = {"kdef", "lfw", "folder", "vggface2"}
_NEEDS_FILE = {"manifest", "table", "fer2013"}


def _exists(path: Path | None, key: str, kind: str, hint: str = "") -> None:
    if path is None:
        return
    ok = path.is_dir() if kind == "dir" else path.is_file()
    if not ok:
        what = "directory" if kind == "dir" else "file"
        extra = " (it is a file)" if kind == "dir" and path.is_file() else ""
        extra = " (it is a directory)" if kind == "file" and path.is_dir() else extra
        raise ConfigError(f"{key}: {what} not found: {path}{extra}.{' ' + hint if hint else ''}")


@dataclass
class AlignConfig:
    """Face detection and alignment of a stimulus set (``stimuli.<name>.align``).

    The options of :func:`facebrain.stimuli.align_faces`; the chips are written
    into the stimuli stage's folder, so they are cached (and recomputed) with it.
    """

    method: Literal["dlib"] = "dlib"
    size: int = 150
    padding: float = 0.25
    detector: Literal["hog", "cnn", "hog+cnn"] = "hog+cnn"
    upsample: int | Literal["auto"] = "auto"
    pick: Literal["one", "largest", "best"] = "one"
    use_boxes: bool = True

    def _check(self, key: str) -> None:
        if self.size < 8:
            raise ConfigError(f"{key}.size: expected an int >= 8 (pixels), got {self.size}")
        if not 0 <= self.padding <= 4:
            raise ConfigError(f"{key}.padding: expected 0 <= padding <= 4, got {self.padding}")
        if self.upsample != "auto" and not 0 <= self.upsample <= 4:
            raise ConfigError(f"{key}.upsample: expected 'auto' or an int in 0..4, got "
                              f"{self.upsample}")


#: Keyword options of the stimulus loaders that are also ``stimuli.<name>`` keys
#: (set ones are passed on; a key the source's loader lacks is a config error).
LOADER_OPTIONS = ("expression_map", "rename", "path_column", "id_column", "required",
                  "strict", "verify", "on_duplicate", "variant", "identity_meta", "bboxes",
                  "bbox_margin")


@dataclass
class StimulusConfig:
    """One named stimulus set (``stimuli.<name>``).

    ``source`` picks the loader: the synthetic presets need no files; ``kdef``,
    ``lfw``, ``folder`` and ``vggface2`` read ``root``; ``manifest`` / ``table``
    / ``fer2013`` read ``path``. ``query`` (a pandas query on the table) and
    ``views`` / ``expressions`` / ``sessions`` pick a subset.
    """

    source: StimulusSource
    root: Path | None = None
    path: Path | None = None
    pattern: str | None = None
    n_identities: int = 20
    images_per_identity: int = 20
    image_size: int = 64
    seed: int | None = None
    views: list[str] | None = None
    expressions: list[str] | None = None
    sessions: list[str] | None = None
    identities: int | None = None
    query: str | None = None
    max_per_identity: int | None = None
    split: str = "train"
    align: AlignConfig | None = None
    # label and loading options of the Python loaders (None: the loader's default)
    expression_map: str | dict[str, str] | None = None
    rename: dict[str, str] | None = None
    path_column: str | None = None
    id_column: str | None = None
    required: list[str] | None = None
    strict: bool | None = None
    verify: Literal["fast", "full", "none"] | None = None
    on_duplicate: Literal["warn", "drop", "raise", "ignore"] | None = None
    variant: str | None = None
    identity_meta: Path | None = None
    bboxes: Path | None = None
    bbox_margin: float | None = None

    def _check(self, key: str) -> None:
        from ._stimuli_options import check_loader_options

        check_loader_options(self, key)
        if self.source in _NEEDS_ROOT:
            if self.root is None:
                raise ConfigError(f"{key}.root: required for source {self.source!r} (a directory)")
            _exists(self.root, f"{key}.root", "dir", "Point it at the dataset's top folder.")
        if self.source in _NEEDS_FILE:
            if self.path is None:
                raise ConfigError(f"{key}.path: required for source {self.source!r} (a file)")
            _exists(self.path, f"{key}.path", "file")
        if self.source == "folder" and not self.pattern:
            raise ConfigError(
                f"{key}.pattern: required for source 'folder' (a regex with named groups, "
                r"e.g. 'subject(?P<identity>\d+)\.(?P<expression>\w+)$')"
            )
        for name in ("n_identities", "images_per_identity", "image_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{key}.{name}: expected a positive int, got {getattr(self, name)}")


@dataclass
class TrainConfig:
    """How to train a model (``models[i].train``).

    ``lr``, ``optimizer`` and ``schedule`` left unset use the training
    function's defaults; ``schedule: none`` turns the schedule off. ``augment``
    is true (:class:`facebrain.training.LightAugment`'s defaults), false, or a
    mapping of LightAugment's parameters (``{max_shift: 0}``). ``options``
    go to :func:`facebrain.training.fit_classifier` / ``fit_siamese`` unchanged.
    """

    stimuli: str
    target: Literal["identity", "expression", "verification"] = "identity"
    epochs: int = 5
    batch_size: int = 64
    lr: float | None = None
    optimizer: str | None = None
    schedule: str | None = None
    augment: bool | dict[str, Any] = True
    val_fraction: float = 0.1
    seed: int | None = None
    n_pairs: int = 2000
    pairs_file: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def _check(self, key: str) -> None:
        if self.epochs < 1:
            raise ConfigError(f"{key}.epochs: expected a positive int, got {self.epochs}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"{key}.val_fraction: expected 0 <= value < 1, got {self.val_fraction}")
        _exists(self.pairs_file, f"{key}.pairs_file", "file")
        if isinstance(self.augment, dict):
            from ..training._common import light_augment

            try:
                light_augment(self.augment)
            except (TypeError, ValueError) as err:
                raise ConfigError(f"{key}.augment: {err}") from None


@dataclass
class ModelFallback:
    """What replaces a model whose ``weights`` are not given (``models[i].fallback``).

    When ``weights`` is empty (typically an unset ``${VAR:-}``) and the model is not
    trained, the ``set`` overrides (``--set``-style keys, e.g. ``models[0].arch:
    dlib_resnet``) are applied to the whole config before it is checked, and
    ``reason`` is added to the config's ``notes`` (shown in the report).
    """

    reason: str
    set: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """One network (``models[i]``): an architecture plus weights, a training spec, or neither.

    Neither gives a randomly initialised network (seeded), the untrained control.
    ``layers`` overrides ``extract.layers`` for this network.
    """

    name: str
    arch: str
    weights: Path | None = None
    sha256: str | None = None
    num_classes: int | None = None
    new_head: bool = False
    train: TrainConfig | None = None
    layers: list[str] | None = None
    seed: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    fallback: ModelFallback | None = None

    def _check(self, key: str) -> None:
        _exists(self.weights, f"{key}.weights", "file",
                "Download the weights yourself and give their path (nothing is downloaded).")


@dataclass
class ExtractConfig:
    """Which stimulus set and layers go through every network (``extract``)."""

    stimuli: str = "test"
    layers: list[str] | None = None
    reduce: str | dict[str, str] | None = "avgpool"
    batch_size: int = 64
    device: str = "cpu"
    # fit pca:N reducers on this subset only (a query on the stimulus table or ids);
    # cross-validated stages (probe, encoding) refuse stimuli inside the fit, so choose
    # a subset disjoint from the probed / scanned stimuli
    pca_fit_on: str | list[str] | None = None


@dataclass
class TransferDirection:
    """One probe (``transfer.directions[i]``): a target label decoded from frozen layers.

    ``options`` go to :func:`facebrain.transfer.probe` unchanged (e.g.
    ``head_kw: {C: 0.1}``, ``reduce: "pca:64"``).

    ``features`` is how spatial layers (C x H x W) are turned into probe features:
    ``srp:N`` (default ``srp:2048``, a seeded sparse random projection that keeps
    the spatial layout), ``avgpool`` (mean over positions: the poster's final-layer
    protocol) or ``extract`` (the extract stage's features as they are). 1-D layers
    are used as they are. ``baselines`` adds ``pixels`` (grayscale at ``pixel_size``
    px through the same reducer) and ``untrained`` (each trained network's seeded
    twin) beside the networks; see :mod:`facebrain.pipeline._baselines`.
    """

    target: str
    name: str | None = None
    models: list[str] | None = None
    layers: list[str] | None = None
    cv: str = "leave-identity-out"
    n_folds: int = 10
    head: Literal["logistic", "fc", "ridge"] = "logistic"
    n_permutations: int = 0
    seed: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    features: str = "srp:2048"
    baselines: list[str] = field(default_factory=list)
    pixel_size: int = 32

    def _check(self, key: str) -> None:
        if self.n_permutations < 0:
            raise ConfigError(f"{key}.n_permutations: expected int >= 0, got {self.n_permutations}")
        import re

        if self.features not in ("avgpool", "extract", "none") and not re.fullmatch(
                r"srp:[1-9]\d*", str(self.features)):
            raise ConfigError(
                f"{key}.features: expected 'srp:N' (N >= 1), 'avgpool', 'extract' or 'none', got "
                f"{self.features!r} (pca:N would be fitted on every stimulus, test folds "
                "included; use options.reduce: 'pca:N' to fit it inside the folds)")
        from ._baselines import check_baselines

        self.baselines = check_baselines(self.baselines, f"{key}.baselines")
        if self.pixel_size < 2:
            raise ConfigError(f"{key}.pixel_size: expected an int >= 2, got {self.pixel_size}")

    @property
    def label(self) -> str:
        return self.name or self.target


@dataclass
class TransferConfig:
    """Transfer probes and disentanglement measures (``transfer``)."""

    directions: list[TransferDirection] = field(default_factory=list)
    disentangle: bool = True
    factors: list[str] = field(default_factory=lambda: ["identity", "expression"])


@dataclass
class DriverConfig:
    """What drives a simulated ROI (``brain.drivers.<roi>``).

    ``kind: layer`` uses ``model``'s ``layer`` activations on the test set;
    ``labels`` uses the ``labels`` columns (mixed by ``weights``); ``pixels``
    the images themselves.
    """

    kind: Literal["layer", "labels", "pixels"]
    model: str | None = None
    layer: str | None = None
    labels: list[str] | None = None
    weights: list[float] | None = None
    seed: int | None = None

    def _check(self, key: str) -> None:
        if self.kind == "layer" and (not self.model or not self.layer):
            raise ConfigError(f"{key}: kind 'layer' needs both 'model' and 'layer'")
        if self.kind == "labels" and not self.labels:
            raise ConfigError(f"{key}.labels: kind 'labels' needs a list of label columns")


_NuisanceModel = Literal["basic", "power2", "derivatives", "full"]


@dataclass
class ConfoundsConfig:
    """fMRIPrep confounds regressed from BIDS derivatives (``brain.confounds``).

    nilearn's :func:`~nilearn.interfaces.fmriprep.load_confounds` strategy and
    parameters, with its defaults; ``brain.confounds: null`` regresses none. Used
    when the runs come with fMRIPrep confound tables (``brain.derivatives``, or a
    simulation with ``brain.options.confounds: true``).
    """

    strategy: list[Literal["motion", "high_pass", "wm_csf", "global_signal", "compcor",
                           "scrub"]] = field(
        default_factory=lambda: ["motion", "high_pass", "wm_csf"])
    motion: _NuisanceModel = "full"
    wm_csf: _NuisanceModel = "basic"
    global_signal: _NuisanceModel = "basic"
    compcor: Literal["anat_combined", "anat_separated", "temporal", "temporal_anat_combined",
                     "temporal_anat_separated"] = "anat_combined"
    n_compcor: int | Literal["all"] = "all"
    scrub: int = 5
    fd_threshold: float = 0.5
    std_dvars_threshold: float = 1.5
    demean: bool = True

    def _check(self, key: str) -> None:
        if "compcor" in self.strategy and "high_pass" not in self.strategy:
            raise ConfigError(f"{key}.strategy: 'compcor' needs 'high_pass' too (fMRIPrep's "
                              "CompCor components are computed after its high-pass filter)")
        if self.n_compcor != "all" and self.n_compcor < 1:
            raise ConfigError(f"{key}.n_compcor: expected 'all' or a positive int, got "
                              f"{self.n_compcor}")
        if self.scrub < 0:
            raise ConfigError(f"{key}.scrub: expected an int >= 0, got {self.scrub}")
        for name in ("fd_threshold", "std_dvars_threshold"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{key}.{name}: expected a number > 0, got "
                                  f"{getattr(self, name)}")


@dataclass
class BrainConfig:
    """Brain responses (``brain``): simulated with planted drivers, or read from BIDS."""

    source: Literal["simulate", "bids", "none"] = "simulate"
    stimuli: str = "test"
    subjects: int | list[str] | Literal["all"] = 2
    runs: int = 2
    repeats: int = 2
    tr: float = 2.0
    snr: float = 1.0
    rois: list[str] | None = None
    drivers: dict[str, DriverConfig] = field(default_factory=dict)
    seed: int | None = None
    root: Path | None = None
    task: str = "faces"
    space: str | None = None
    derivatives: Path | None = None
    masks: dict[str, Path] = field(default_factory=dict)
    method: Literal["lss", "lsa"] = "lss"
    hrf_model: str = "glover"
    high_pass: float = 0.01
    options: dict[str, Any] = field(default_factory=dict)
    confounds: ConfoundsConfig | None = field(default_factory=ConfoundsConfig)
    signal_scaling: bool | int | list[int] = 0  # nilearn's FirstLevelModel default
    slice_time_ref: float | None = None  # None: from the sidecars (StartTime, SliceTiming)
    out_of_range: Literal["error", "drop"] = "error"

    def _check(self, key: str) -> None:
        if self.signal_scaling is True or self.signal_scaling not in (False, 0, 1, [0, 1]):
            raise ConfigError(f"{key}.signal_scaling: expected false, 0, 1 or [0, 1] "
                              f"(nilearn's FirstLevelModel), got {self.signal_scaling!r}")
        if self.slice_time_ref is not None and not 0 <= self.slice_time_ref <= 1:
            raise ConfigError(f"{key}.slice_time_ref: expected a fraction of the TR in [0, 1] "
                              f"or null (from the sidecars), got {self.slice_time_ref}")
        if self.source == "bids":
            if self.root is None:
                raise ConfigError(f"{key}.root: required for source 'bids' (the dataset folder)")
            _exists(self.root, f"{key}.root", "dir")
            _exists(self.derivatives, f"{key}.derivatives", "dir")
            for roi, p in self.masks.items():
                _exists(p, f"{key}.masks.{roi}", "file")
        if self.source == "simulate" and not isinstance(self.subjects, int):
            raise ConfigError(f"{key}.subjects: the simulator needs a number of subjects, got "
                              f"{self.subjects!r}")
        if isinstance(self.subjects, int) and self.subjects < 1:
            raise ConfigError(f"{key}.subjects: expected a positive int, got {self.subjects}")


def _check_scored_section(section, key: str) -> None:
    """The checks shared by ``rsa`` and ``encoding``: baseline names, ``n_bootstrap >= 0``."""
    from ._baselines import check_baselines

    section.baselines = check_baselines(section.baselines, f"{key}.baselines")
    if section.n_bootstrap < 0:
        raise ConfigError(f"{key}.n_bootstrap: expected an int >= 0, got {section.n_bootstrap}")


@dataclass
class RSAConfig:
    """Representational similarity analysis (``rsa``).

    ``standardize`` z-scores every unit of a layer across the brain's stimuli before
    its RDM is computed, so each unit weighs the same (high-variance units do not
    dominate the distances); brain responses are used as they are.
    """

    enabled: bool = True
    method: str = "spearman"
    rdm_method: str = "correlation"
    standardize: bool = True
    n_bootstrap: int = 200  # "bootstrap" before 0.2 (still read, with a FutureWarning)
    over: Literal["stimuli", "subjects", "both"] = "stimuli"
    ceiling: bool = True  # "noise_ceiling" before 0.2 (still read, with a FutureWarning)
    models: list[str] | None = None
    layers: list[str] | None = None
    seed: int | None = None
    # baseline candidates beside the networks (pipeline/_baselines.py); n_bootstrap > 0
    # gives the paired best-vs-runner-up intervals and the selection-corrected p
    baselines: list[str] = field(default_factory=lambda: ["pixels", "untrained"])
    pixel_size: int = 32

    def _check(self, key: str) -> None:
        _check_scored_section(self, key)


# the renamed keywords of RENAMED_KEYS, also for configs built in Python
RSAConfig.__init__ = renamed_kwargs(bootstrap="n_bootstrap",
                                    noise_ceiling="ceiling")(RSAConfig.__init__)


@dataclass
class EncodingConfig:
    """Voxelwise encoding (``encoding``)."""

    enabled: bool = True
    cv: str = "leave-identity-out"
    n_folds: int = 5
    inner_cv: int = 5
    alphas: list[float] | None = None
    models: list[str] | None = None
    layers: list[str] | None = None
    # paired bootstrap over identities of the held-out predictions (cheap: no refits);
    # "bootstrap" before 0.2 (still read, with a FutureWarning)
    n_bootstrap: int = 1000
    baselines: list[str] = field(default_factory=lambda: ["pixels", "untrained"])
    pixel_size: int = 32

    def _check(self, key: str) -> None:
        _check_scored_section(self, key)


EncodingConfig.__init__ = renamed_kwargs(bootstrap="n_bootstrap")(EncodingConfig.__init__)


@dataclass
class ReportConfig:
    """The HTML report (``report``).

    ``max_identities`` caps the rows of the stimulus contact sheet; 0 shows no
    face at all (share a report of a licensed face set without its images).
    """

    enabled: bool = True
    title: str = "facebrain report"
    max_identities: int = 8
    glass_brain: bool = True
