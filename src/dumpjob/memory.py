"""Fewer malloc arenas. glibc gives each thread that allocates an arena of its own, up to eight
per core, and every arena keeps resident memory. A run's threads (the reader, the codec's, the
uploads', the upload's start) allocate little through malloc: Python's objects come from its own
allocator, and blocks of a MiB are mapped and unmapped whole. Two arenas cut the benchmark's peak
RSS by about 4 MiB at the same wall time (docs/dumpjob.md, "Performance"). MALLOC_ARENA_MAX in the
environment, when set, is left to glibc. Elsewhere than glibc, nothing is done."""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def limit_arenas() -> bool:
    """Before any thread starts: at most ARENAS malloc arenas; True when glibc took it."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(M_ARENA_MAX, ARENAS) == 1
