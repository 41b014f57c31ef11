"""One run at a time per cache: a second run on the same cache says who holds it and exits 2.

Two runs could share a cache safely (SQLite), but each would buy the answers the other is buying.
The lock is an advisory `flock` on `<cache>.lock`, which the operating system releases when the
holder ends however it ends (kill -9 included), so a stale lock never blocks a rerun. The file says
who holds it (process id, host, start time, never the command line, which may hold secrets) and is
left in place afterwards: removing it could let a third run lock a file the second is about to lock.
Read-only commands (`status`, `export`) take no lock: SQLite lets them read while a run writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import StoreError


def lock_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".lock")


@contextlib.contextmanager
def hold_cache(cache: Path) -> Iterator[None]:
    """Hold the cache's lock for the duration, or raise StoreError naming the process that holds it."""
    path = lock_path(cache)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")
    except OSError as error:
        raise StoreError(f"cannot lock the cache {cache} ({error.strerror}); pass a writable --cache") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StoreError(
                f"the cache {cache} is in use by {holder}; wait for that run to end, or pass another --cache"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        handle.write(f"synthcv process {os.getpid()} on {socket.gethostname()} since {started}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
