"""One run per output folder: an ``fcntl.flock`` on ``<run_dir>/.facebrain.lock``.

The lock is held on an open file for the whole run; the kernel releases it when
the process exits, however it exits (crash, ``kill -9``, power loss on a local
disk). The file also records the holder (pid, host, start time) so that a
second run can say who is using the folder. A lock file whose lock nobody holds
is stale: its recorded holder died without cleaning up; the next run takes it
over and says so.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Self

from .._deprecation import user_stacklevel
from ..errors import RunLockedError

__all__ = ["LOCK_NAME", "RunLock", "read_holder"]

LOCK_NAME = ".facebrain.lock"


def read_holder(path: str | os.PathLike) -> dict:
    """The holder recorded in a lock file (``{}`` when empty or unreadable)."""
    try:
        data = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict) -> str:
    if not holder:
        return "an unknown process (the lock file records no holder)"
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
            f"started {holder.get('started', '?')}")


class RunLock:
    """Exclusive lock on a run folder; use as a context manager.

    Parameters
    ----------
    run_dir : path
        The run's output folder (created by the caller).

    Attributes
    ----------
    stale : dict or None
        After acquiring: the holder recorded by a previous run that died while
        holding the folder (its lock was free), else None.

    Raises
    ------
    RunLockedError
        When another process holds the lock; the message names its pid, host and
        start time and how to proceed.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.stale: dict | None = None
        self._fd: int | None = None

    def acquire(self) -> Self:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                warnings.warn(
                    f"{self.path}: this file system does not support locks ({err}); two runs "
                    "on this output folder would not be stopped. Use a local folder for --out "
                    "to be safe.", RuntimeWarning, stacklevel=user_stacklevel())
                return self
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            holder = read_holder(self.path)
            raise RunLockedError(
                f"{self.path.parent}: another facebrain run is using this output folder "
                f"({_describe(holder)}; lock file {self.path}). Wait for it to finish, stop it, "
                "or choose another --out."
            ) from None
        previous = read_holder(self.path)
        if previous and not previous.get("released"):
            # nobody held the lock, yet the file names a holder: it died without releasing
            self.stale = previous
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError:  # a full disk: the lock holds, only the holder's name is missing
            pass
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            holder = read_holder(self.path)
            holder["released"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError:  # a full disk must not hide the run's own error
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
