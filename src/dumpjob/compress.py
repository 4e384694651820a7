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
fastest levels were 12-14 % larger, see docs/dumpjob.md, "Performance")."""

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

from .config import Compression
from .errors import ConfigError

BLOCK = 1 << 20
WINDOW = 32 * 1024
Emit = Callable[[bytes], None]
ZLIB_NG_LEVELS = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 4, 8: 6, 9: 9}


@dataclass(frozen=True)
class Deflate:
    """A raw-deflate implementation: `zlib` is a module with zlib's compressobj/crc32/crc32_combine."""

    name: str  # zlib-ng | zlib
    version: str
    zlib: ModuleType
    levels: Optional[dict[int, int]] = None  # gzip level → the library's, when its scale differs

    def level(self, gzip_level: int) -> int:
        return self.levels[gzip_level] if self.levels else gzip_level

    def describe(self, gzip_level: int) -> str:
        mapped = f" (its level {self.level(gzip_level)})" if self.levels else ""
        return f"{self.name} {self.version}, gzip level {gzip_level}{mapped}"


def deflate_implementation(prefer: Optional[str] = None) -> Deflate:
    """The deflate library gzip runs on: `prefer` (default: the environment's DUMPJOB_DEFLATE, to
    measure one against the other), else zlib-ng when the `zlib-ng` package is installed, else zlib."""
    prefer = prefer or os.environ.get("DUMPJOB_DEFLATE") or None
    if prefer not in (None, "zlib-ng", "zlib"):
        raise ConfigError(f"DUMPJOB_DEFLATE={prefer!r} names no deflate implementation; use zlib-ng or zlib, or "
                          "unset it")
    if prefer != "zlib":
        try:
            import zlib_ng
            from zlib_ng import zlib_ng as zlib_ng_module
        except ImportError:
            if prefer == "zlib-ng":
                raise ConfigError("DUMPJOB_DEFLATE=zlib-ng but the 'zlib-ng' package is not installed; install it "
                                  "or unset DUMPJOB_DEFLATE") from None
        else:
            return Deflate("zlib-ng", zlib_ng.__version__, zlib_ng_module, ZLIB_NG_LEVELS)
    return Deflate("zlib", zlib.ZLIB_RUNTIME_VERSION, zlib)


def threads_for(spec: Compression) -> int:
    return spec.threads or max(1, os.cpu_count() or 1)


class GzipParallel:
    def __init__(self, level: int, threads: int, emit: Emit, implementation: Optional[Deflate] = None):
        self.implementation = implementation or deflate_implementation()
        self.level = self.implementation.level(level)
        self.emit = emit
        self.crc = 0
        self.size = 0
        self.cpu_seconds = 0.0  # the workers' CPU time spent deflating (and CRC-32 with zlib-ng)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gzip")
        self._pending: deque[Future] = deque()
        self._max_pending = threads * 2 + 1
        self._previous_tail = b""
        # the standard library's zlib has no crc32_combine: there the CRC is computed here, in order
        self._combine = getattr(self.implementation.zlib, "crc32_combine", None)
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        self.emit(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([xfl, 3]))  # no name, mtime 0, OS unix

    def feed(self, block: bytes) -> None:
        if not block:
            return
        if self._combine is None:
            self.crc = zlib.crc32(block, self.crc)
        self._pending.append(self._pool.submit(_deflate, self.implementation.zlib, block, self._previous_tail,
                                               self.level, self._combine is not None))
        self._previous_tail = block[-WINDOW:]
        while self._pending and (len(self._pending) > self._max_pending or self._pending[0].done()):
            self._emit_block(self._pending.popleft())

    def _emit_block(self, future: Future) -> None:
        data, crc, size, cpu = _result(future)
        self.cpu_seconds += cpu
        if self._combine is not None:
            self.crc = self._combine(self.crc, crc, size) if self.size else crc
        self.size += size
        self.emit(data)

    def finish(self) -> None:
        while self._pending:
            self._emit_block(self._pending.popleft())
        # a final empty fixed-Huffman block, then CRC-32 and ISIZE
        self.emit(b"\x03\x00" + struct.pack("<II", self.crc & 0xFFFFFFFF, self.size & 0xFFFFFFFF))
        self.close()

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _deflate(lib: ModuleType, block: bytes, dictionary: bytes, level: int,
             crc: bool) -> tuple[bytes, int, int, float]:
    started = time.thread_time()
    if dictionary:
        c = lib.compressobj(level, lib.DEFLATED, -15, 8, lib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        c = lib.compressobj(level, lib.DEFLATED, -15, 8, lib.Z_DEFAULT_STRATEGY)
    data = c.compress(block) + c.flush(lib.Z_SYNC_FLUSH)
    return data, lib.crc32(block) if crc else 0, len(block), time.thread_time() - started


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
        cctx = zstandard.ZstdCompressor(level=level, threads=threads if threads > 1 else 0, write_checksum=True)
        self._obj = cctx.compressobj()
        self._flush_finish = zstandard.COMPRESSOBJ_FLUSH_FINISH

    def feed(self, block: bytes) -> None:
        self.size += len(block)
        out = self._obj.compress(block)
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
