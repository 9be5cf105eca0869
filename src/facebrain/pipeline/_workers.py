"""Run independent jobs of one stage in parallel processes (the train stage's networks,
the transfer stage's candidates, the report's ``results.nc`` beside its figures).

Each job runs in a fresh ``spawn`` process with the stage's thread cap, so a job
computes exactly what it computes in the stage's own process: same code, same
seeds, same thread count (a training's numbers depend on the thread count, never
on which process runs it or on what runs beside it). A failing job stops the
others (their checkpoints are written atomically, so a rerun resumes them) and
its exception is raised in the parent with the job's traceback attached as a note.
A job process dies with its parent (a killed run leaves nothing writing on).
"""

from __future__ import annotations

import errno
import gc
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Self

from .._utils import available_cpus
from ..errors import StageError, enospc_in_chain
from ._runner import _thread_limit

__all__ = ["ENV_PROCESSES", "BesideJob", "available_cpus", "run_in_processes", "spare_process",
           "stage_processes"]

#: Environment variable capping the processes of a stage (1: run jobs one after another).
ENV_PROCESSES = "FACEBRAIN_STAGE_PROCESSES"


def stage_processes(threads: int | None, n_jobs: int) -> int:
    """How many processes run ``n_jobs`` independent jobs capped at ``threads`` each.

    ``min(n_jobs, cpus // threads)``: jobs run side by side only when the
    config caps threads (``threads: null`` lets one job use every core) and
    the cores fit them without oversubscription. ``FACEBRAIN_STAGE_PROCESSES``
    lowers the number (``1``: one after another, in the stage's own process).
    """
    if not threads or n_jobs < 2:
        return 1
    n = min(n_jobs, max(1, available_cpus() // int(threads)))
    raw = os.environ.get(ENV_PROCESSES, "").strip()
    if raw:
        try:
            cap = int(raw)
        except ValueError:
            raise StageError(f"{ENV_PROCESSES}={raw!r} is not an integer; unset it or give "
                             "e.g. 1 (no parallel processes)") from None
        n = min(n, max(1, cap))
    return n


def spare_process() -> bool:
    """Whether one job process may run beside the stage's own work.

    True on two or more CPUs unless ``FACEBRAIN_STAGE_PROCESSES=1``. For work whose
    results do not depend on where or beside what it runs (single-threaded jobs, files
    written as they would be in the stage's process).
    """
    return stage_processes(1, 2) >= 2


def _die_with_parent(parent: int) -> None:
    """End this process when the parent dies (killed runs leave no orphan writing on)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: poll instead
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)


def _worker(conn, fn: Callable, args: tuple, threads: int | None, parent: int) -> None:
    _die_with_parent(parent)
    try:
        with _thread_limit(threads):
            out = fn(*args)
        conn.send((True, out))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent
        if not isinstance(err, OSError) and enospc_in_chain(err):
            # a full disk wrapped in another error (torch's zip writer): the cause chain
            # does not survive pickling, so send the OSError the runner turns into DiskFullError
            err = OSError(errno.ENOSPC, f"{type(err).__name__}: {err}")
        err.add_note("in a parallel stage process:\n" + traceback.format_exc())
        try:
            conn.send((False, err))
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            conn.send((False, StageError(f"{type(err).__name__}: {err}\n"
                                         + traceback.format_exc())))
    finally:
        conn.close()
        # The parent joins this process after reading its result. A spawned process ends
        # with the interpreter's full finalisation, whose collection of torch's cyclic
        # objects took 1.1-1.3 s of that wait; frozen, they are left to the OS (0.25 s).
        # What the job wrote is closed by now; only __del__ of objects in cycles is
        # skipped, which Python does not promise at exit (as facebrain.cli does).
        gc.freeze()


def _start(ctx, fn: Callable, args: tuple, threads: int | None, name: str):
    """Start ``fn(*args)`` in a spawned process; return its (receiving end, process)."""
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=(send, fn, tuple(args), threads, os.getpid()),
                       name=name)
    proc.start()
    send.close()
    return recv, proc


def _collect(recv, proc, what: str):
    """The value a job process sent (its exception raised here); joins the process."""
    try:
        ok, payload = recv.recv()
    except EOFError:
        proc.join()
        raise StageError(
            f"a parallel stage process ({what}) died with exit code {proc.exitcode} before "
            f"reporting (killed, or out of memory?). Run again (finished work is kept), or "
            f"set {ENV_PROCESSES}=1."
        ) from None
    finally:
        recv.close()
    proc.join()
    if not ok:
        raise payload
    return payload


def _stop(recv, proc) -> None:
    proc.terminate()
    proc.join()
    recv.close()


class BesideJob:
    """``fn(*args)`` in one spawned process while the caller goes on with other work.

    :meth:`result` waits for it (its exception is raised there, with the job's
    traceback as a note); :meth:`cancel` ends it. As a context manager, a job whose
    result was not collected is cancelled on exit (an error in the caller's own
    work leaves nothing running).
    """

    def __init__(self, fn: Callable, args: Sequence = (), threads: int | None = 1,
                 name: str = "beside") -> None:
        self.name = name
        self._recv, self._proc = _start(mp.get_context("spawn"), fn, tuple(args), threads,
                                        f"facebrain-{name}")
        self._done = False

    def result(self):
        self._done = True
        return _collect(self._recv, self._proc, self.name)

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            _stop(self._recv, self._proc)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.cancel()


def run_in_processes(fn: Callable, jobs: Sequence[tuple], processes: int,
                     threads: int | None) -> list:
    """``[fn(*args) for args in jobs]``, at most ``processes`` at a time, in order.

    ``fn`` must be importable (a module-level function) and its arguments and
    result picklable. The first failure terminates the running jobs and is
    raised here.
    """
    ctx = mp.get_context("spawn")
    results: list = [None] * len(jobs)
    pending = list(enumerate(jobs))
    running: dict = {}
    try:
        while pending or running:
            while pending and len(running) < processes:
                k, args = pending.pop(0)
                recv, proc = _start(ctx, fn, tuple(args), threads, f"facebrain-job-{k}")
                running[recv] = (proc, k)
            for recv in wait(list(running)):
                proc, k = running.pop(recv)
                results[k] = _collect(recv, proc, f"job {k + 1} of {len(jobs)}")
    finally:
        for recv, (proc, _) in running.items():
            _stop(recv, proc)
    return results
