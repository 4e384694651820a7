"""Compressors that use every core and emit their output in order.

gzip: one gzip member made of independently deflated 1 MiB blocks, each primed with the last
32 KiB of the block before (pigz's method), so the stream is a single ordinary gzip file that
`gunzip` and every gzip library read. The blocks deflate in parallel threads (each library
releases the GIL) with zlib-ng (the `zlib-ng` package) when it is installed, else with the
standard library's zlib. With zlib-ng each block's CRC-32 is computed by its worker and combined
in order (crc32_combine), so the reading thread only hands blocks over. zstd: one zstd frame
from the zstandard library's own worker threads.

The job's `compression.level` keeps gzip's scale 1-9 (1 fastest, 9 smallest) and its meaning:
6, the default, is the balance, about the size of `gzip -6`. zlib takes it as it is. zlib-ng's
levels are faster and stronger than zlib's of the same number, so they are mapped 1-2 → 1,
3-4 → 2, 5-6 → 3, 7 → 4, 8 → 6, 9 → 9: the default 6 (zlib-ng 3) writes about 5 % more than
`gzip -6` on the benchmark's 1.1 GiB dump at about 3-5 times zlib's speed (zlib-ng 2 and ISA-L's
fastest levels were 12-14 % larger, see docs/dumpjob.md, "Performance").

Per table, ISA-L: where the `isal` package is installed, levels 1-6 also try ISA-L's level 2,
about three times faster than zlib-ng's level 3 and, depending on the data, from a few percent
smaller to half again larger. Each table's first block and every 16th after it are deflated both
ways (the smaller is written); the table's other blocks go to ISA-L while its output over the
last 8 such samples is within 5 % of zlib-ng's, else to zlib-ng. On the benchmark's dump that
sends the large log table to ISA-L and the rest to zlib-ng: output about 2 % larger, the codec's
CPU about a quarter lower. Levels 7-9 put size first and stay on zlib-ng."""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before Python 3.11
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Optional

from . import priority
from .config import Compression
from .errors import ConfigError

BLOCK = 1 << 20
WINDOW = 32 * 1024
Emit = Callable[[bytes], None]
ZLIB_NG_LEVELS = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 4, 8: 6, 9: 9}
FAST_LEVEL = 2  # ISA-L's
FAST_UP_TO = 6  # gzip levels that try ISA-L per table
FAST_MARGIN = 0.05  # ISA-L's blocks are used where their output is within this of zlib-ng's
SAMPLE_EVERY = 16  # every 16th block of a table is deflated both ways
SAMPLES = 8  # the samples a table's choice looks at
STRONG, FAST, BOTH = "strong", "fast", "both"


@dataclass(frozen=True)
class Deflate:
    """A raw-deflate implementation: `zlib` is a module with zlib's compressobj/crc32/crc32_combine."""

    name: str  # zlib-ng | zlib
    version: str
    zlib: ModuleType
    levels: Optional[dict[int, int]] = None  # gzip level → the library's, when its scale differs
    fast: Optional[ModuleType] = None  # ISA-L's zlib-like module (the `isal` package), tried per table
    fast_version: str = ""

    @property
    def label(self) -> str:
        """What DUMPJOB_DEFLATE calls this: zlib-ng+isal, zlib-ng or zlib."""
        return f"{self.name}+isal" if self.fast is not None else self.name

    def level(self, gzip_level: int) -> int:
        return self.levels[gzip_level] if self.levels else gzip_level

    def tries_fast(self, gzip_level: int) -> bool:
        return self.fast is not None and gzip_level <= FAST_UP_TO

    def describe(self, gzip_level: int) -> str:
        mapped = f" (its level {self.level(gzip_level)})" if self.levels else ""
        text = f"{self.name} {self.version}, gzip level {gzip_level}{mapped}"
        if self.tries_fast(gzip_level):
            text += (f", and ISA-L {self.fast_version} (its level {FAST_LEVEL}) for each table whose output it keeps "
                     f"within {FAST_MARGIN:.0%} of zlib-ng's")
        return text


def deflate_implementation(prefer: Optional[str] = None) -> Deflate:
    """The deflate libraries gzip runs on: `prefer` (default: the environment's DUMPJOB_DEFLATE, to
    measure one against the other), else zlib-ng with ISA-L per table when the `zlib-ng` and `isal`
    packages are installed, else zlib-ng alone, else zlib."""
    prefer = prefer or os.environ.get("DUMPJOB_DEFLATE") or None
    if prefer not in (None, "zlib-ng+isal", "zlib-ng", "zlib"):
        raise ConfigError(f"DUMPJOB_DEFLATE={prefer!r} names no deflate implementation; use zlib-ng+isal, zlib-ng or "
                          "zlib, or unset it")
    if prefer == "zlib":
        return Deflate("zlib", zlib.ZLIB_RUNTIME_VERSION, zlib)
    try:
        import zlib_ng
        from zlib_ng import zlib_ng as zlib_ng_module
    except ImportError:
        if prefer is not None:
            raise ConfigError(f"DUMPJOB_DEFLATE={prefer} but the 'zlib-ng' package is not installed; install it or "
                              "unset DUMPJOB_DEFLATE") from None
        return Deflate("zlib", zlib.ZLIB_RUNTIME_VERSION, zlib)
    fast, fast_version = None, ""
    if prefer != "zlib-ng":
        try:
            import isal
            from isal import isal_zlib
        except ImportError:
            if prefer is not None:
                raise ConfigError("DUMPJOB_DEFLATE=zlib-ng+isal but the 'isal' package is not installed; install it "
                                  "or unset DUMPJOB_DEFLATE") from None
        else:
            fast, fast_version = isal_zlib, isal.__version__
    return Deflate("zlib-ng", zlib_ng.__version__, zlib_ng_module, ZLIB_NG_LEVELS, fast, fast_version)


class Chooser:
    """Which library deflates a table's next block (see the module's docstring): STRONG (zlib-ng),
    FAST (ISA-L) or BOTH (a sample; the smaller output is written). Told the sizes of each sample
    in order, as the blocks are written."""

    def __init__(self):
        self._samples: dict[Optional[str], deque[tuple[int, int]]] = {}
        self._blocks: dict[Optional[str], int] = {}
        self._pending: dict[Optional[str], int] = {}
        self.written = {STRONG: 0, FAST: 0}  # blocks written by each library

    def mode(self, group: Optional[str]) -> str:
        n = self._blocks[group] = self._blocks.get(group, 0) + 1
        samples = self._samples.get(group)
        if not samples:
            if self._pending.get(group):
                return STRONG  # the table's first sample is still being deflated
            self._pending[group] = self._pending.get(group, 0) + 1
            return BOTH
        if n % SAMPLE_EVERY == 0:
            self._pending[group] = self._pending.get(group, 0) + 1
            return BOTH
        fast = sum(sizes[0] for sizes in samples)
        strong = sum(sizes[1] for sizes in samples)
        return FAST if fast <= strong * (1 + FAST_MARGIN) else STRONG

    def record(self, group: Optional[str], mode: str, sizes: tuple[int, int], chosen: str) -> None:
        """A block was written: `sizes` is (ISA-L's, zlib-ng's) output of a sample."""
        self.written[chosen] += 1
        if mode == BOTH:
            self._pending[group] -= 1
            self._samples.setdefault(group, deque(maxlen=SAMPLES)).append(sizes)


def threads_for(spec: Compression) -> int:
    return spec.threads or max(1, os.cpu_count() or 1)


class GzipParallel:
    def __init__(self, level: int, threads: int, emit: Emit, implementation: Optional[Deflate] = None):
        self.implementation = implementation or deflate_implementation()
        self.level = self.implementation.level(level)
        self.chooser = Chooser() if self.implementation.tries_fast(level) else None
        self.emit = emit
        self.crc = 0
        self.size = 0
        self.cpu_seconds = 0.0  # the workers' CPU time spent deflating (and CRC-32 with zlib-ng)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gzip",
                                        initializer=priority.lower_this_thread)
        self._pending: deque[tuple[Future, Optional[str], str]] = deque()
        self._max_pending = threads * 2 + 1
        self._previous_tail = b""
        # the standard library's zlib has no crc32_combine: there the CRC is computed here, in order
        self._combine = getattr(self.implementation.zlib, "crc32_combine", None)
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        self.emit(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([xfl, 3]))  # no name, mtime 0, OS unix

    def feed(self, block: bytes, group: Optional[str] = None) -> None:
        """Deflate `block` after the ones before; `group` (the table it belongs to) keys the choice
        between zlib-ng and ISA-L."""
        if not block:
            return
        if self._combine is None:
            self.crc = zlib.crc32(block, self.crc)
        mode = self.chooser.mode(group) if self.chooser is not None else STRONG
        future = self._pool.submit(_deflate, self.implementation, block, self._previous_tail, self.level,
                                   self._combine is not None, mode)
        self._pending.append((future, group, mode))
        self._previous_tail = block[-WINDOW:]
        while self._pending and (len(self._pending) > self._max_pending or self._pending[0][0].done()):
            self._emit_block(*self._pending.popleft())

    @property
    def blocks_written(self) -> Optional[dict[str, int]]:
        """Blocks each library's output was written for, when ISA-L is tried per table."""
        if self.chooser is None:
            return None
        return {self.implementation.name: self.chooser.written[STRONG], "isal": self.chooser.written[FAST]}

    def _emit_block(self, future: Future, group: Optional[str], mode: str) -> None:
        data, crc, size, cpu, sizes, chosen = _result(future)
        if self.chooser is not None:
            self.chooser.record(group, mode, sizes, chosen)
        self.cpu_seconds += cpu
        if self._combine is not None:
            self.crc = self._combine(self.crc, crc, size) if self.size else crc
        self.size += size
        self.emit(data)

    def finish(self) -> None:
        while self._pending:
            self._emit_block(*self._pending.popleft())
        # a final empty fixed-Huffman block, then CRC-32 and ISIZE
        self.emit(b"\x03\x00" + struct.pack("<II", self.crc & 0xFFFFFFFF, self.size & 0xFFFFFFFF))
        self.close()

    def close(self) -> None:
        for pending in self._pending:
            pending[0].cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _deflate(impl: Deflate, block: bytes, dictionary: bytes, level: int, crc: bool,
             mode: str) -> tuple[bytes, int, int, float, tuple[int, int], str]:
    """Deflate one block (in a worker thread; the libraries release the GIL): its output, CRC-32,
    length, CPU seconds, (ISA-L's, zlib-ng's) output sizes for a sample, and which one is written."""
    started = time.thread_time()
    strong = _raw(impl.zlib, level, block, dictionary) if mode != FAST else None
    fast = _raw(impl.fast, FAST_LEVEL, block, dictionary) if mode != STRONG else None
    if strong is None or (fast is not None and len(fast) <= len(strong)):
        data, chosen = fast, FAST
    else:
        data, chosen = strong, STRONG
    sizes = (len(fast), len(strong)) if mode == BOTH else (0, 0)
    return (data, impl.zlib.crc32(block) if crc else 0, len(block), time.thread_time() - started, sizes,
            chosen)


def _raw(lib: ModuleType, level: int, block: bytes, dictionary: bytes) -> bytes:
    """Raw deflate of `block` primed with `dictionary`, ended by a sync flush (byte-aligned, not final)."""
    if dictionary:
        c = lib.compressobj(level, lib.DEFLATED, -15, 8, lib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        c = lib.compressobj(level, lib.DEFLATED, -15, 8, lib.Z_DEFAULT_STRATEGY)
    return c.compress(block) + c.flush(lib.Z_SYNC_FLUSH)


def _result(future: Future):
    while True:
        try:
            return future.result(timeout=1.0)  # short waits keep signals deliverable
        except FutureTimeout:
            continue


class Zstd:
    def __init__(self, level: int, threads: int, emit: Emit):
        import zstandard

        self.emit = emit
        self.size = 0
        self.cpu_seconds = None  # spent in zstandard's own threads, not measured
        self.blocks_written = None
        self._lowered = False
        cctx = zstandard.ZstdCompressor(level=level, threads=threads if threads > 1 else 0, write_checksum=True)
        self._obj = cctx.compressobj()
        self._flush_finish = zstandard.COMPRESSOBJ_FLUSH_FINISH

    def feed(self, block: bytes, group: Optional[str] = None) -> None:
        self.size += len(block)
        out = self._obj.compress(block)
        if not self._lowered:  # zstandard starts its workers at the first block
            self._lowered = True
            priority.lower_foreign_threads()
        if out:
            self.emit(out)

    def finish(self) -> None:
        out = self._obj.flush(self._flush_finish)
        if out:
            self.emit(out)

    def close(self) -> None:
        pass


def make(spec: Compression, emit: Emit, implementation: Optional[Deflate] = None):
    threads = threads_for(spec)
    if spec.type == "zstd":
        return Zstd(spec.level, threads, emit)
    return GzipParallel(spec.level, threads, emit, implementation)


def decompressor(head: bytes):
    """An object with .decompress(data) for the stream starting with `head` (gzip, zstd or plain)."""
    if head.startswith(b"\x1f\x8b"):
        return _MultiMemberGzip()
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return _MultiFrameZstd()
    return _Plain()


class _MultiMemberGzip:
    """gzip, including concatenated members (what `gzip` and `pigz` may write)."""

    def __init__(self):
        self._d = zlib.decompressobj(31)
        self._fed = False

    def decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            self._fed = True
            out.append(self._d.decompress(data))
            if self._d.eof:
                data = self._d.unused_data
                self._d = zlib.decompressobj(31)
                self._fed = False
            else:
                data = b""
        return b"".join(out)

    @property
    def complete(self) -> bool:
        """True when the input ended at the end of a member."""
        return not self._fed


class _MultiFrameZstd:
    """zstd, including concatenated frames."""

    def __init__(self):
        import zstandard

        self._new = zstandard.ZstdDecompressor().decompressobj
        self._d = self._new()
        self._fed = False

    def decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            self._fed = True
            out.append(self._d.decompress(data))
            if self._d.eof:
                data = self._d.unused_data
                self._d = self._new()
                self._fed = False
            else:
                data = b""
        return b"".join(out)

    @property
    def complete(self) -> bool:
        return not self._fed


class _Plain:
    complete = True

    def decompress(self, data: bytes) -> bytes:
        return data
