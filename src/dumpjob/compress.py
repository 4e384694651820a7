"""Compressors that use every core and emit their output in order.

gzip: one gzip member made of independently deflated 1 MiB blocks, each primed with the last
32 KiB of the block before (pigz's method), so the stream is a single ordinary gzip file that
`gunzip` and every gzip library read. zlib releases the GIL, so the blocks deflate in parallel
threads. zstd: one zstd frame from the zstandard library's own worker threads."""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before Python 3.11
from typing import Callable

from .config import Compression

BLOCK = 1 << 20
WINDOW = 32 * 1024
Emit = Callable[[bytes], None]


def threads_for(spec: Compression) -> int:
    return spec.threads or max(1, os.cpu_count() or 1)


class GzipParallel:
    def __init__(self, level: int, threads: int, emit: Emit):
        self.level = level
        self.emit = emit
        self.crc = 0
        self.size = 0
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gzip")
        self._pending: deque[Future] = deque()
        self._max_pending = threads * 2 + 1
        self._previous_tail = b""
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        self.emit(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([xfl, 3]))  # no name, mtime 0, OS unix

    def feed(self, block: bytes) -> None:
        if not block:
            return
        self.crc = zlib.crc32(block, self.crc)
        self.size += len(block)
        self._pending.append(self._pool.submit(_deflate, block, self._previous_tail, self.level))
        self._previous_tail = block[-WINDOW:]
        while self._pending and (len(self._pending) > self._max_pending or self._pending[0].done()):
            self.emit(_result(self._pending.popleft()))

    def finish(self) -> None:
        while self._pending:
            self.emit(_result(self._pending.popleft()))
        # a final empty fixed-Huffman block, then CRC-32 and ISIZE
        self.emit(b"\x03\x00" + struct.pack("<II", self.crc & 0xFFFFFFFF, self.size & 0xFFFFFFFF))
        self.close()

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _deflate(block: bytes, dictionary: bytes, level: int) -> bytes:
    if dictionary:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
    return c.compress(block) + c.flush(zlib.Z_SYNC_FLUSH)


def _result(future: Future) -> bytes:
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


def make(spec: Compression, emit: Emit):
    threads = threads_for(spec)
    if spec.type == "zstd":
        return Zstd(spec.level, threads, emit)
    return GzipParallel(spec.level, threads, emit)


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
