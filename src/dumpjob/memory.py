"""Fewer malloc arenas for gzip runs. glibc gives each thread that allocates an arena of its own,
up to eight per core, and every arena keeps resident memory. A gzip run's threads (the reader, the
deflate workers, the uploads, the upload's start) allocate little through malloc: Python's
objects come from its own allocator, and blocks of a MiB are mapped and unmapped whole. Two
arenas cut the benchmark's peak RSS by about 4 MiB (82-83 → 77-79 MiB) at the same wall time. A
zstd run is left as it is: zstandard's workers allocate their job buffers through malloc, and
with two arenas its peak RSS rose by about 5 MiB. MALLOC_ARENA_MAX in the environment, when set,
is left to glibc; elsewhere than glibc nothing is done (docs/dumpjob.md, "Performance")."""

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
