"""One JSON object per line on stderr, copied to journald (or syslog) when the host has one.

Every line passes through redaction of the secret values the run has seen, so that a secret
cannot reach a log even through an error message quoted from another program. Redaction acts on
the raw text first and only then is the text normalised (whitespace collapsed, JSON-escaped); the
normalised forms of every secret are redacted too, so that a password holding two spaces or a tab
cannot pass through a normaliser almost in clear."""

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
        """Remember a secret value so that no log line ever carries it, raw or in a normalised form."""
        # A new set, swapped in whole: a thread logging meanwhile iterates over the previous one.
        self._secrets = self._secrets | secret_forms(value)

    def adopt_secrets(self, other: Logger) -> Logger:
        """This logger, redacting also every secret `other` has seen; returns self."""
        self._secrets = self._secrets | other._secrets
        return self

    def redact(self, text: str) -> str:
        """`text` without any form of a secret: redacted raw, then normalised and redacted again.

        The result is one line (whitespace collapsed), as every log line and error line is."""
        return self.scrub(one_line(self.scrub(str(text))))

    def redact_value(self, value: Any) -> Any:
        """A field value with every secret form redacted from its strings, raw first (before json.dumps
        escapes them; the escaped forms are redacted from the whole line afterwards). Values that are
        not JSON types become their str(), as json.dumps(default=str) would have made them."""
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, dict):
            return {self.redact_value(k): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_value(v) for v in value]
        return self.scrub(str(value))

    def scrub(self, text: str) -> str:
        """`text` with every form of a secret replaced, and otherwise unchanged."""
        for value in sorted(self._secrets, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def log(self, level: str, event: str, msg: str, **fields: Any) -> None:
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "level": level, "event": event}
        if self.job:
            record["job"] = self.job
        record["msg"] = self.redact(str(msg))
        for key, value in fields.items():
            record[key] = self.redact_value(value)
        line = self.scrub(json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")))
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


def one_line(text: str) -> str:
    """`text` with every run of whitespace (spaces, tabs, line breaks) collapsed to one space."""
    return " ".join(text.split())


def secret_forms(value: str | None) -> set[str]:
    """The forms in which a secret can appear in a log or an error line: raw, whitespace-collapsed,
    and each of them JSON-escaped (with and without ASCII escapes) and quoted by repr(). Values
    under 3 characters are not redacted (they would blank ordinary words)."""
    if not value or len(value) < 3:
        return set()
    forms = {value, one_line(value)}
    for form in list(forms):
        forms.add(json.dumps(form, ensure_ascii=False)[1:-1])
        forms.add(json.dumps(form)[1:-1])
        forms.add(repr(form)[1:-1])
    return {form for form in forms if len(form) >= 3}


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
