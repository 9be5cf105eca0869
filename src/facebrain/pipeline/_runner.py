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
from .._boundary import public
from .._deprecation import user_stacklevel
from .._utils import atomic_path, environment, file_sha256, stable_hash
from ..errors import DiskFullError, FacebrainError, StageError, enospc_in_chain
from ._cache import MANIFEST, remove_tree, validate_manifest, write_manifest
from ._config import Config, load_config
from ._lock import RunLock
from ._typed import ConfigError, to_plain

__all__ = ["RunResult", "Stage", "StageContext", "StageError", "run"]



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
    written: list[Path] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    @property
    def results(self) -> Path:
        return self.run_dir / "results.nc"


_FP_CACHE: dict[tuple, str] = {}


def cached_file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content, memoised within one run.

    The memo key is ``(path, device, inode, size, mtime_ns, ctime_ns)`` and
    :func:`run` clears the memo when it starts, so every run reads every input
    file once: a file rewritten in place (even with the same size and with its
    mtime restored, as ``cp -p``, ``rsync -t`` or ``touch -r`` do) changes the
    hash. ``size + mtime`` alone would miss those edits and the edits made
    within one timestamp tick, serving stale numbers; hashing costs one read
    of the inputs per run (about 1 s per GB), which is the price of never
    being stale.
    """
    p = Path(path)
    st = p.stat()
    k = (str(p.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if k not in _FP_CACHE:
        _FP_CACHE[k] = file_sha256(p)
    return _FP_CACHE[k]


def clear_fingerprint_cache() -> None:
    """Forget memoised input hashes (done at the start of every :func:`run`)."""
    _FP_CACHE.clear()


#: folders never part of a dataset's content (version-control internals reached via symlinks)
_SKIP_DIRS = frozenset({"__pycache__", ".git", ".datalad", ".svn", ".hg"})


def tree_fingerprint(root: str | os.PathLike, *, exclude: tuple[str, ...] = ()) -> str:
    """Content hash of a folder: every file's relative path, size and SHA-256.

    Adding, removing, renaming or rewriting a file in place (an edited
    ``events.tsv``, a retouched image) changes it. Symlinked files and folders
    are followed (DataLad / git-annex datasets are symlinks); version-control
    folders (``.git``, ``.datalad``) and the folders named in ``exclude``
    (relative to ``root``) are skipped.
    """
    root = Path(root)
    skip = {Path(e).as_posix() for e in exclude}
    items = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS
                             and (rel_dir / d).as_posix() not in skip)
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not p.is_file():
                continue
            items.append(((rel_dir / name).as_posix(), p.stat().st_size, cached_file_sha256(p)))
    return stable_hash(items, length=32)


def files_fingerprint(paths) -> dict[str, str | None]:
    """``{path: sha256 or None if missing}`` for individual input files."""
    out = {}
    for p in paths:
        p = Path(p)
        out[str(p)] = cached_file_sha256(p) if p.is_file() else None
    return out


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


@public
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
        ``written`` lists the files this run published in the run folder.

    Raises
    ------
    ConfigError
        Invalid config or ``out`` (empty, or a file).
    RunLockedError
        Another run holds the run folder (the message names its pid, host and start).
    DiskFullError
        The device filled up; finished stages are kept and a rerun continues.
    StageError
        A stage failed (the cause is attached).

    Examples
    --------
    Skipped when the docstrings are tested: the demo trains two networks (minutes);
    ``tests/pipeline`` runs it at a tiny size.

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
    run_dir = check_out_dir(out, cfg.name)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"--out: {run_dir} (or a folder above it) is a file; give a folder "
                          "for the run's outputs.") from None
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DiskFullError(f"no space left on device to create {run_dir}", run_dir) from err
        raise ConfigError(f"--out: cannot create {run_dir}: {err}") from err
    with RunLock(run_dir) as lock:
        if lock.stale:
            log(f"[run] taking over the lock of a run that died without releasing it "
                f"(pid {lock.stale.get('pid', '?')} on {lock.stale.get('host', '?')}, "
                f"started {lock.stale.get('started', '?')})")
        return _run_locked(cfg, run_dir, stages, from_stage, scheduler, client, log)


def check_out_dir(out: str | os.PathLike | None, name: str) -> Path:
    """The run folder for ``--out`` (default ``results/<name>``); refuse '' and files."""
    if out is None:
        return Path("results") / name
    if str(out).strip() == "":
        raise ConfigError("--out: empty path; give a folder for the run's outputs, e.g. "
                          "--out results/demo (or leave --out out for results/<config name>).")
    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out: {run_dir} is a file, not a folder; give a folder for the "
                          "run's outputs (it is created if missing).")
    for parent in run_dir.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out: {parent} (a folder above {run_dir}) is a file; give "
                                  "a folder for the run's outputs.")
            break
    return run_dir


#: files :func:`run` publishes in the run folder
ARTEFACTS = ("report.html", "report.png", "results.nc")


def _run_locked(cfg, run_dir, stages, from_stage, scheduler, client, log) -> RunResult:
    clear_fingerprint_cache()  # hash every input file afresh in every run
    from ._stages import clear_stimuli_memo

    clear_stimuli_memo()  # synthetic sets are built once per run
    env = environment()  # recorded in every manifest and run.json (read once per run)
    # whatever is published in the run folder is from the last run that reached its end:
    # clear the previous run's files first, so a failed or killed run never shows them
    for name in ARTEFACTS:
        if (run_dir / name).is_file() or (run_dir / name).is_symlink():
            (run_dir / name).unlink()

    own_client = own_cluster = None
    address = scheduler or cfg.scheduler
    keys: dict[str, str | None] = {}
    dirs: dict[str, Path | None] = {}
    timings: dict[str, float] = {}
    statuses: dict[str, str] = {}
    summaries: dict[str, dict] = {}
    written: list[Path] = []
    forcing = False
    current = None
    try:
        if client is None and address:
            own_client, own_cluster = _connect(address)
            client = own_client
            log(f"[scheduler] connected to {client.scheduler.address if client else address}")
        for stage in stages:
            current = stage.name
            forcing = forcing or stage.name == from_stage
            if not stage.enabled(cfg):
                keys[stage.name] = None
                dirs[stage.name] = None
                statuses[stage.name] = "disabled"
                timings[stage.name] = 0.0
                log(f"[{stage.name}] disabled")
                continue
            try:
                key = stage_key(stage, cfg, keys)
            except OSError as err:  # an input file that cannot be read for its hash
                raise StageError(
                    f"stage {stage.name!r}: cannot read input {err.filename or ''} to hash it "
                    f"({err.strerror or err}); check that the file exists and is readable."
                ) from err
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
                    warnings.warn(msg, RuntimeWarning, stacklevel=user_stacklevel())
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
                    raise DiskFullError(
                        f"stage {stage.name!r}: no space left on device while writing "
                        f"{err.filename or partial}. Free some space and run again: finished "
                        "stages are kept, and this one resumes or restarts (it is not marked "
                        "done).", err.filename or partial) from err
                raise StageError(f"stage {stage.name!r} failed: {type(err).__name__}: {err}"
                                 ) from err
            except FacebrainError:
                raise
            except Exception as err:  # name the stage; the cause stays attached
                if enospc_in_chain(err):  # e.g. torch's zip writer wrapping the OSError
                    raise DiskFullError(
                        f"stage {stage.name!r}: no space left on device while writing in "
                        f"{partial} ({type(err).__name__}: {err}). Free some space and run "
                        "again: finished stages are kept.", partial) from err
                raise StageError(f"stage {stage.name!r} failed: {type(err).__name__}: {err}"
                                 ) from err
            elapsed = time.perf_counter() - t0
            try:
                write_manifest(partial, {
                    "stage": stage.name, "key": key, "inputs": ctx.keys,
                    "config": to_plain(stage.section(cfg)), "elapsed_s": elapsed,
                    "facebrain_version": __version__, "summary": summary,
                    "environment": env,
                })
            except OSError as err:
                if err.errno == errno.ENOSPC:
                    raise DiskFullError(
                        f"stage {stage.name!r}: no space left on device while writing its "
                        f"manifest in {partial}. Free some space and run again.", partial
                    ) from err
                raise
            os.replace(partial, final)
            dirs[stage.name] = final
            statuses[stage.name] = "resumed" if resumed else "computed"
            timings[stage.name] = elapsed
            summaries[stage.name] = summary
            log(f"[{stage.name}] {elapsed:.1f} s" + (" (resumed)" if resumed else ""))
    except BaseException:
        if current is not None and current not in statuses:
            statuses[current] = "failed"
        statuses.update({st.name: "not run" for st in stages if st.name not in statuses})
        _finish(run_dir, cfg, keys, dirs, timings, statuses, written, log, env, ok=False)
        raise
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
    _finish(run_dir, cfg, keys, dirs, timings, statuses, written, log, env, ok=True)
    return RunResult(run_dir=run_dir, config=cfg, keys=keys, dirs=dirs, timings=timings,
                     statuses=statuses, summaries=summaries, written=written)




def _finish(run_dir, cfg, keys, dirs, timings, statuses, written, log, env, *,
            ok: bool) -> None:
    """Write run.json and publish report/results from this run's finished stages.

    Never raises on a failed run (the stage's own error is the one to show).
    """
    try:
        _write_json(run_dir / "run.json", {
            "config": cfg.to_dict(), "config_source": cfg.source, "keys": keys,
            "dirs": {k: str(v) if v else None for k, v in dirs.items()},
            "timings_s": timings, "statuses": statuses, "facebrain_version": __version__,
            "environment": env, "finished": ok,
        })
        written.extend(_publish(run_dir, dirs.get("report")))
        if not (run_dir / "results.nc").is_file():
            path = _results_from_stages(run_dir, cfg, keys, dirs, timings, statuses)
            if path is not None:
                written.append(path)
    except Exception as err:
        if ok:
            raise
        log(f"[run] could not write results.nc from the finished stages: {err}")


def _results_from_stages(run_dir, cfg, keys, dirs, timings, statuses) -> Path | None:
    """``results.nc`` from the finished stages' outputs (no report, or it failed)."""
    from .._runfolder import write_results
    from ..report._build import collect_run, result_groups

    ctx = StageContext(config=cfg, stage="results", dir=run_dir, run_dir=run_dir,
                       inputs={k: v for k, v in dirs.items() if v is not None},
                       keys=dict(keys), log=lambda line: None, timings=dict(timings),
                       statuses=dict(statuses))
    groups = result_groups(collect_run(ctx, figures=False))
    if not groups:
        return None
    return write_results(groups, run_dir / "results.nc")


def _publish(run_dir: Path, report_dir: Path | None) -> list[Path]:
    """Copy the report stage's ``report.html`` / ``results.nc`` to the run folder (atomically)."""
    if report_dir is None:
        return []
    import shutil

    out = []
    for name in ARTEFACTS:
        src = report_dir / name
        if not src.is_file():
            continue
        dst = run_dir / name
        with atomic_path(dst, suffix=Path(name).suffix) as tmp:
            shutil.copyfile(src, tmp)
            tmp.chmod(0o644)
        out.append(dst)
    return out
