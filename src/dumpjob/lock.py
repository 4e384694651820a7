"""One run per job at a time: an exclusive flock on <lock_dir>/<job>.lock, released by the kernel
when the process ends, however it ends."""

from __future__ import annotations

import fcntl
import os

from .errors import ConfigError, LockHeldError


class JobLock:
    def __init__(self, lock_dir: str, job: str):
        self.path = os.path.join(lock_dir, f"{job}.lock")
        self.job = job
        self._fd: int | None = None

    def acquire(self) -> JobLock:
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot create the lock file {self.path} ({exc.strerror}); make 'lock_dir' "
                              "writable for the dumpjob user") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeldError(f"job '{self.job}' is already running (pid {holder}, lock {self.path}); "
                                "this run stops without touching anything") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JobLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
