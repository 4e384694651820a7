"""A lower CPU priority for the threads whose work can wait: the codec's and the uploads'.

The dump's critical path is mysqldump (and, where the server runs on the same cores, the server):
the codec and the uploads work through buffers and catch up whenever the client waits for rows.
On the benchmark's two cores, the codec's threads at nice +15 let the client run when it can: the
median of five runs ended 2.5 % sooner with gzip and 3.5 % with zstd, with the same CPU (see
docs/dumpjob.md, "Performance"). The uploads stay as they are: the last part's upload and the
completion are on the critical path. Linux
keeps a nice value per thread; an unprivileged process may raise its threads' values, never lower
them, so the reading thread and the process stay as they were. DUMPJOB_BACKGROUND_NICE (0-19)
sets the increment; 0 leaves every thread as it is."""

from __future__ import annotations

import os
import threading

from .errors import ConfigError

DEFAULT_INCREMENT = 15


def increment() -> int:
    raw = os.environ.get("DUMPJOB_BACKGROUND_NICE", "")
    if not raw:
        return DEFAULT_INCREMENT
    if not raw.isdigit() or int(raw) > 19:
        raise ConfigError(f"DUMPJOB_BACKGROUND_NICE={raw!r} is not a nice increment; use 0-19, or unset it")
    return int(raw)


def lower(tid: int, by: int) -> bool:
    """Raise thread `tid`'s nice value by `by` (at most to 19); False when the system refused."""
    if by <= 0:
        return False
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + by))
    except OSError:
        return False
    return True


def lower_this_thread() -> None:
    """A thread pool's initializer: the worker lowers its own priority."""
    lower(threading.get_native_id(), increment())


def lower_foreign_threads() -> int:
    """Lower the threads a library started (zstandard's workers), i.e. every thread of this process
    that Python's threading did not start; how many were lowered."""
    ours = {t.native_id for t in threading.enumerate()}
    by = increment()
    try:
        tasks = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return 0
    return sum(lower(tid, by) for tid in tasks if tid not in ours)
