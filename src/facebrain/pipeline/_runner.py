"""The stage runner: keys, caching, resumption, progress lines, the dask client."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from .._errors import FacebrainError
from .._utils import atomic_path, file_sha256, stable_hash
from ._cache import MANIFEST, remove_tree, validate_manifest, write_manifest
from ._config import Config, load_config
from ._typed import ConfigError, to_plain

__all__ = ["RunResult", "Stage", "StageContext", "StageError", "run"]


class StageError(FacebrainError, RuntimeError):
    """A stage could not run (missing capability, bad input data, full disk...)."""


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline.

    Parameters
    ----------
    name : str
        Folder name and the name used by ``--from``.
    fn : callable
        ``fn(ctx: StageContext) -> dict | None``; writes its outputs under
        ``ctx.dir`` and returns a small JSON-friendly summary kept in the manifest.
    inputs : tuple of str
        Names of earlier stages whose outputs it reads (their keys enter its key).
    section : callable
        ``section(config) -> object``: the part of the config that defines it.
    fingerprint : callable, optional
        ``fingerprint(config) -> object``: content of input files (weight hashes,
        dataset listings) that should invalidate the stage when it changes.
    enabled : callable, optional
        ``enabled(config) -> bool``; a disabled stage is skipped and passes None on.
    version : str
        Bump when the stage's code changes its outputs.
    heavy : bool
        Receives the dask client when one is configured.
    resumable : bool
        A partial folder left by a killed run is kept (checkpoints, zarr stores);
        otherwise it is cleared before the stage runs again.
    code : tuple of str
        facebrain sub-packages whose source files enter the key, so that a code
        change (a new default, a fixed bug) recomputes the stage.
    """

    name: str
    fn: Callable[[StageContext], dict | None]
    inputs: tuple[str, ...] = ()
    section: Callable[[Config], Any] = lambda cfg: None
    fingerprint: Callable[[Config], Any] | None = None
    enabled: Callable[[Config], bool] = lambda cfg: True
    version: str = "1"
    heavy: bool = False
    resumable: bool = False
    code: tuple[str, ...] = ()


@dataclass
class StageContext:
    """What a stage function receives."""

    config: Config
    stage: str
    dir: Path
    run_dir: Path
    inputs: dict[str, Path | None]
    keys: dict[str, str | None]
    client: Any = None
    log: Callable[[str], None] = print
    resumed: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)

    def input(self, name: str) -> Path:
        """Folder of a finished upstream stage; an error if it was disabled."""
        path = self.inputs.get(name)
        if path is None:
            raise StageError(
                f"stage {self.stage!r} needs the output of stage {name!r}, which is disabled "
                "in this config. Enable it or disable this stage."
            )
        return path

    @property
    def seed(self) -> int:
        return self.config.seed


@dataclass
class RunResult:
    """What :func:`run` returns: where everything went and how long it took."""

    run_dir: Path
    config: Config
    keys: dict[str, str | None]
    dirs: dict[str, Path | None]
    timings: dict[str, float]
    statuses: dict[str, str]
    summaries: dict[str, dict]

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    @property
    def results(self) -> Path:
        return self.run_dir / "results.nc"


_FP_CACHE: dict[tuple, str] = {}


def cached_file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, memoised on (path, size, mtime) within the process."""
    p = Path(path)
    st = p.stat()
    k = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if k not in _FP_CACHE:
        _FP_CACHE[k] = file_sha256(p)
    return _FP_CACHE[k]


def tree_fingerprint(root: str | os.PathLike) -> str:
    """Cheap change detection for a dataset folder.

    Hashes every directory's relative path, mtime and sorted entry names (no
    per-file ``stat``, so a tree of millions of images costs one directory
    listing each). Adding, removing or renaming a file changes it; rewriting a
    file in place under the same name does not (use ``--from stimuli`` then).
    """
    root = Path(root)
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        st = os.stat(dirpath)
        items.append((Path(dirpath).relative_to(root).as_posix(), st.st_mtime_ns,
                      stable_hash(sorted(filenames), length=16)))
    return stable_hash(items, length=32)


_CODE_CACHE: dict[str, str] = {}


def code_fingerprint(package: str) -> str:
    """Hash of the source and data files of ``facebrain.<package>`` (memoised)."""
    if package not in _CODE_CACHE:
        root = Path(__file__).resolve().parents[1] / package
        items = [(root.name, file_sha256(root))] if root.is_file() else []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".pyc", ".pyo")):
                    continue
                p = Path(dirpath) / name
                items.append((p.relative_to(root).as_posix(), file_sha256(p)))
        _CODE_CACHE[package] = stable_hash(items, length=32)
    return _CODE_CACHE[package]


def stage_key(stage: Stage, config: Config, keys: Mapping[str, str | None]) -> str:
    """Stable hash of the stage's config section, its inputs' keys, its version and code."""
    payload = {
        "stage": stage.name,
        "version": f"{__version__}/{stage.version}",
        "code": {p: code_fingerprint(p) for p in stage.code},
        "seed": config.seed,
        "config": to_plain(stage.section(config)),
        "inputs": {name: keys.get(name) for name in stage.inputs},
        "fingerprint": to_plain(stage.fingerprint(config)) if stage.fingerprint else None,
    }
    return stable_hash(payload, length=16)


def _connect(address: str | None):
    if not address:
        return None, None
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - dask is a dependency
        raise StageError(f"scheduler {address!r} needs dask.distributed: {err}") from err
    if address == "local" or address.startswith("local:"):
        n = int(address.split(":", 1)[1]) if ":" in address else 2
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        return Client(cluster), cluster
    try:
        return Client(address), None  # waits distributed.comm.timeouts.connect
    except (OSError, TimeoutError) as err:
        raise StageError(
            f"scheduler: could not connect to dask scheduler at {address!r} ({err}). Start one "
            "with `dask scheduler` (and workers with `dask worker ADDRESS`), or use "
            "scheduler: local:N for a local cluster."
        ) from err


@contextmanager
def _thread_limit(n: int | None):
    """Cap torch and BLAS/OpenMP threads while a stage runs (no-op for None)."""
    if not n:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def _write_json(path: Path, obj) -> None:
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))


def run(
    config: str | os.PathLike | Mapping | Config | None = None,
    *,
    out: str | os.PathLike | None = None,
    from_stage: str | None = None,
    scheduler: str | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    stages: Sequence[Stage] | None = None,
    client=None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the pipeline described by ``config``, reusing every stage already done.

    Parameters
    ----------
    config : path, mapping, Config or None
        A YAML file, parsed data or a :class:`Config`; None runs the built-in demo.
    out : path, optional
        Run directory (default ``results/<config name>``).
    from_stage : str, optional
        Recompute this stage and every later one even when cached.
    scheduler : str, optional
        Address of a dask scheduler (``tcp://host:8786``) or ``local:N``;
        overrides ``config.scheduler``. Heavy stages receive the client.
    overrides : mapping or list of ``key=value``, optional
        Config overrides applied before validation (the CLI's ``--set``).
    stages : sequence of Stage, optional
        Replace the built-in stages (tests inject small fakes here).
    client : dask.distributed.Client, optional
        An already-connected client (takes precedence over ``scheduler``).
    log : callable, optional
        Receives one progress line per stage (default: print to stderr).

    Returns
    -------
    RunResult

    Examples
    --------
    >>> res = run("configs/demo.yaml", out="results/demo")  # doctest: +SKIP
    >>> res.report                                           # doctest: +SKIP
    PosixPath('results/demo/report.html')
    """
    cfg = load_config(config, overrides=overrides)
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)
    if stages is None:
        from ._stages import default_stages

        stages = default_stages()
    names = [s.name for s in stages]
    if from_stage is not None and from_stage not in names:
        raise ConfigError(f"--from: unknown stage {from_stage!r}; stages are {', '.join(names)}")
    run_dir = Path(out) if out is not None else Path("results") / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)

    own_client = own_cluster = None
    address = scheduler or cfg.scheduler
    if client is None and address:
        own_client, own_cluster = _connect(address)
        client = own_client
        log(f"[scheduler] connected to {client.scheduler.address if client else address}")

    keys: dict[str, str | None] = {}
    dirs: dict[str, Path | None] = {}
    timings: dict[str, float] = {}
    statuses: dict[str, str] = {}
    summaries: dict[str, dict] = {}
    forcing = False
    try:
        for stage in stages:
            forcing = forcing or stage.name == from_stage
            if not stage.enabled(cfg):
                keys[stage.name] = None
                dirs[stage.name] = None
                statuses[stage.name] = "disabled"
                timings[stage.name] = 0.0
                log(f"[{stage.name}] disabled")
                continue
            key = stage_key(stage, cfg, keys)
            keys[stage.name] = key
            final = run_dir / stage.name / key
            partial = run_dir / stage.name / f"{key}.partial"
            t0 = time.perf_counter()
            reason = validate_manifest(final, key)
            if reason is None and not forcing:
                dirs[stage.name] = final
                statuses[stage.name] = "cached"
                manifest = json.loads((final / MANIFEST).read_text())
                summaries[stage.name] = manifest.get("summary") or {}
                timings[stage.name] = float(manifest.get("elapsed_s", 0.0))
                log(f"[{stage.name}] {time.perf_counter() - t0:.1f} s (cached)")
                continue
            if final.exists():
                if reason != "missing" and not forcing:
                    msg = (f"stage {stage.name!r}: output in {final} is not valid ({reason}); "
                           "recomputing it")
                    warnings.warn(msg, RuntimeWarning, stacklevel=2)
                    log(f"[{stage.name}] warning: {reason}; recomputing")
                remove_tree(final)
            resumed = False
            if partial.exists():
                if stage.resumable and not forcing:
                    resumed = True
                    log(f"[{stage.name}] resuming the partial output of an interrupted run")
                else:
                    remove_tree(partial)
            partial.mkdir(parents=True, exist_ok=True)
            ctx = StageContext(
                config=cfg, stage=stage.name, dir=partial, run_dir=run_dir,
                inputs={n: dirs.get(n) for n in stage.inputs},
                keys={n: keys.get(n) for n in stage.inputs},
                client=client if stage.heavy else None, log=log, resumed=resumed,
                timings=dict(timings), statuses=dict(statuses),
            )
            try:
                with _thread_limit(cfg.threads):
                    summary = stage.fn(ctx) or {}
            except OSError as err:
                if err.errno == errno.ENOSPC:
                    raise StageError(
                        f"stage {stage.name!r}: no space left on device while writing {partial}. "
                        "Free some space and run again: finished stages are kept, and this one "
                        "is not marked done."
                    ) from err
                raise StageError(f"stage {stage.name!r} failed: {type(err).__name__}: {err}"
                                 ) from err
            except FacebrainError:
                raise
            except Exception as err:  # name the stage; the cause stays attached
                raise StageError(f"stage {stage.name!r} failed: {type(err).__name__}: {err}"
                                 ) from err
            elapsed = time.perf_counter() - t0
            write_manifest(partial, {
                "stage": stage.name, "key": key, "inputs": ctx.keys,
                "config": to_plain(stage.section(cfg)), "elapsed_s": elapsed,
                "facebrain_version": __version__, "summary": summary,
            })
            os.replace(partial, final)
            dirs[stage.name] = final
            statuses[stage.name] = "resumed" if resumed else "computed"
            timings[stage.name] = elapsed
            summaries[stage.name] = summary
            log(f"[{stage.name}] {elapsed:.1f} s" + (" (resumed)" if resumed else ""))
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
    _write_json(run_dir / "run.json", {
        "config": cfg.to_dict(), "config_source": cfg.source, "keys": keys,
        "dirs": {k: str(v) if v else None for k, v in dirs.items()},
        "timings_s": timings, "statuses": statuses, "facebrain_version": __version__,
    })
    _publish(run_dir, dirs.get("report"))
    return RunResult(run_dir=run_dir, config=cfg, keys=keys, dirs=dirs, timings=timings,
                     statuses=statuses, summaries=summaries)


def _publish(run_dir: Path, report_dir: Path | None) -> None:
    """Copy the report stage's ``report.html`` / ``results.nc`` to the run folder (atomically)."""
    if report_dir is None:
        return
    import shutil

    for name in ("report.html", "results.nc", "report.png"):
        src = report_dir / name
        if not src.is_file():
            continue
        dst = run_dir / name
        if dst.is_file() and dst.stat().st_size == src.stat().st_size and \
                file_sha256(dst) == file_sha256(src):
            continue
        with atomic_path(dst, suffix=Path(name).suffix) as tmp:
            shutil.copyfile(src, tmp)
            tmp.chmod(0o644)

