"""How the ``facebrain`` command's OpenMP threads wait at a barrier: spin first, or sleep.

torch's OpenMP runtime (libgomp) reads ``OMP_WAIT_POLICY`` once, when torch loads. Left
unset, a thread that reaches a barrier first spins for a while, then sleeps; ``PASSIVE``
makes it sleep at once, to be woken by the last thread to arrive. The split of work, and so
every result, is the same either way; only the speed differs, and which one is faster
depends on whether the run's threads have cores to themselves:

* **free cores**: spinning wins. Waking a sleeping thread is a system call and, on a
  virtual machine, an interrupt between virtual CPUs, paid at each of the hundreds of
  barriers of a training step. ``bench_training.py --step`` (small_resnet, 2 threads,
  idle 2-core VM), median step: 105-113 ms unset vs 143-245 ms ``PASSIVE`` (2026-12-03;
  the same VM type measured 72 vs 73 ms on 2026-12-02: the wake-up cost varies by host).
* **busy cores** (other processes, or more threads than cores left): a spinning thread
  holds the core its descheduled partner needs, so sleeping wins. Beside one CPU-bound
  process: 286-304 ms unset vs 189-197 ms ``PASSIVE`` (2026-12-03; 1.26 s vs 0.14 s on
  2026-12-02).

So the command measures, over 0.1 s before torch loads, how busy the CPUs it may run on
are, and sets ``PASSIVE`` only when the run's threads would not fit on the idle ones (or
when it cannot tell). A value of ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` already in the
environment is the user's choice and is kept. Spawned workers inherit the decision.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["busy_cpus", "choose_wait_policy", "config_threads", "set_wait_policy"]

#: variables that say how libgomp's threads wait; any of them set means the user chose
USER_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _cpu_times(stat: str, cpus: set[int] | None) -> tuple[float, float] | None:
    """(busy, total) jiffies summed over ``cpus`` (all when None) from a /proc/stat text."""
    busy = total = 0.0
    seen = False
    for line in stat.splitlines():
        name, *fields = line.split() or ("",)
        if not name.startswith("cpu") or name == "cpu":
            continue
        try:
            k = int(name[3:])
            # user nice system idle iowait irq softirq steal (guest time is inside user)
            vals = [float(v) for v in fields[:8]]
        except ValueError:
            continue
        if cpus is not None and k not in cpus or len(vals) < 5:
            continue
        seen = True
        total += sum(vals)
        busy += sum(vals) - vals[3] - vals[4]  # all but idle and iowait (steal included)
    return (busy, total) if seen else None


def busy_cpus(interval: float = 0.1, *, read=None, cpus: set[int] | None = None
              ) -> float | None:
    """How many of this process's CPUs other work keeps busy, measured over ``interval`` s.

    Sums the per-CPU lines of ``/proc/stat`` for the CPUs of this process's affinity mask
    (``cpus`` overrides it), before and after sleeping ``interval``; this process sleeps
    meanwhile, so what is counted is other processes' (and the kernel's) time, and time
    the hypervisor gave to other machines (steal: a virtual CPU that was not there to run
    a thread is as busy as one another process holds). Returns None where ``/proc/stat`` cannot be
    read (not Linux). ``read`` is a callable returning the file's text (tests).
    """
    if read is None:
        def read() -> str:
            return Path("/proc/stat").read_text()
    if cpus is None:
        try:
            cpus = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            cpus = None
    try:
        before = _cpu_times(read(), cpus)
        time.sleep(interval)
        after = _cpu_times(read(), cpus)
    except OSError:
        return None
    if before is None or after is None:
        return None
    d_busy, d_total = after[0] - before[0], after[1] - before[1]
    n = len(cpus) if cpus else None
    if d_total <= 0 or not n:
        return None
    return max(0.0, min(float(n), n * d_busy / d_total))


def choose_wait_policy(threads: int | None, cpus: int, busy: float | None) -> str | None:
    """``"PASSIVE"`` when ``threads`` would not fit on the idle CPUs, else None (libgomp's default).

    ``threads=None`` means one per CPU (the config's ``threads: null``). One thread has no
    barrier to wait at: None. ``busy=None`` (not measured) gives ``"PASSIVE"``, the choice
    that is never badly wrong.

    Examples
    --------
    >>> choose_wait_policy(2, 2, 0.1)  # the demo on an idle 2-core machine
    >>> choose_wait_policy(2, 2, 1.0)  # ... beside one busy process
    'PASSIVE'
    >>> choose_wait_policy(2, 8, 5.0)  # 2 threads, 3 of 8 cores idle
    >>> choose_wait_policy(None, 8, 1.0)  # a thread per core, one core taken
    'PASSIVE'
    """
    n = cpus if threads is None else min(int(threads), cpus)
    if n <= 1:
        return None
    if busy is None:
        return "PASSIVE"
    return "PASSIVE" if n > cpus - busy + 0.5 else None


def config_threads(config: str | os.PathLike | None, overrides=()) -> int | None | str:
    """The ``threads`` a run of ``config`` (with ``--set`` overrides) will use, read cheaply.

    Reads the YAML's top-level ``threads`` (the built-in demo's when ``config`` is None)
    and a ``threads=...`` override, without validating the config (that imports torch,
    which must load after the wait policy is set). Returns an int, None (``threads:
    null``, one per CPU), or ``"unknown"`` when the file cannot be read this way.
    """
    import yaml

    try:
        if config is None:
            from importlib import resources

            text = resources.files("facebrain").joinpath("configs/demo.yaml").read_text()
        else:
            text = Path(config).read_text()
        doc = yaml.safe_load(text)
        if not isinstance(doc, dict):
            return "unknown"  # not a config (load_config will say why)
        threads = doc.get("threads")
        for item in overrides or ():
            key, _, value = str(item).partition("=")
            if key.strip() == "threads":
                threads = yaml.safe_load(value)
        if threads is None or (isinstance(threads, int) and not isinstance(threads, bool)):
            return threads
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, TypeError):
        pass
    return "unknown"


def set_wait_policy(config=None, overrides=(), *, measure=None) -> str | None:
    """Set ``OMP_WAIT_POLICY`` for a run of ``config``; returns the value set (None: unset).

    Does nothing when the user set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``; must run
    before torch loads (libgomp reads the variable once). ``measure`` replaces
    :func:`busy_cpus` (tests).
    """
    if any(v in os.environ for v in USER_VARS):
        return os.environ.get("OMP_WAIT_POLICY")
    from ._workers import available_cpus

    threads = config_threads(config, overrides)
    cpus = available_cpus()
    threads = cpus if threads == "unknown" else threads
    if choose_wait_policy(threads, cpus, float(cpus)) is None:
        return None  # default even with every CPU busy (one thread): no 0.1 s measurement
    busy = (busy_cpus if measure is None else measure)()
    policy = choose_wait_policy(threads, cpus, busy)
    if policy is not None:
        os.environ["OMP_WAIT_POLICY"] = policy
    return policy
