"""One JSON object per line on stderr, copied to journald (or syslog) when the host has one.

Every line passes through redaction of the secret values the run has seen, so that a secret
cannot reach a log even through an error message quoted from another program."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
from datetime import datetime, timezone
from typing import Any, TextIO

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SYSLOG_SOCKET = "/dev/log"
PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3}
REDACTED = "[REDACTED]"


class Logger:
    def __init__(self, job: str | None = None, stream: TextIO | None = None, system_log: bool = False):
        self.job = job
        self.stream = stream or sys.stderr
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._sink = _system_sink() if system_log else None

    def add_secret(self, value: str | None) -> None:
        """Remember a secret value so that no log line ever carries it."""
        if value and len(value) >= 3:
            self._secrets.add(value)
            self._secrets.add(json.dumps(value, ensure_ascii=False)[1:-1])
            self._secrets.add(json.dumps(value)[1:-1])

    def redact(self, text: str) -> str:
        for value in sorted(self._secrets, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def log(self, level: str, event: str, msg: str, **fields: Any) -> None:
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "level": level, "event": event}
        if self.job:
            record["job"] = self.job
        record["msg"] = " ".join(str(msg).split())
        record.update(fields)
        line = self.redact(json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()
            if self._sink is not None:
                self._sink(PRIORITY.get(level, 6), line)

    def info(self, event: str, msg: str, **fields: Any) -> None:
        self.log("info", event, msg, **fields)

    def warning(self, event: str, msg: str, **fields: Any) -> None:
        self.log("warning", event, msg, **fields)

    def error(self, event: str, msg: str, **fields: Any) -> None:
        self.log("error", event, msg, **fields)


def _system_sink():
    """A function sending one line to journald (native protocol) or syslog, or None when neither exists."""
    if os.environ.get("DUMPJOB_NO_SYSLOG") == "1":
        return None
    if os.path.exists(JOURNAL_SOCKET):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

        def journal(priority: int, line: str) -> None:
            payload = f"MESSAGE={line}\nPRIORITY={priority}\nSYSLOG_IDENTIFIER=dumpjob\n".encode()
            with contextlib.suppress(OSError):
                sock.sendto(payload, JOURNAL_SOCKET)
        return journal
    if os.path.exists(SYSLOG_SOCKET):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

        def syslog(priority: int, line: str) -> None:
            with contextlib.suppress(OSError):
                sock.sendto(f"<{8 + priority}>dumpjob[{os.getpid()}]: {line}".encode(), SYSLOG_SOCKET)
        return syslog
    return None
