"""Failure classes of dumpjob, each with its own documented exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    CONFIG = 3
    SECRET = 4
    DATABASE = 5
    DUMP_INCOMPLETE = 6
    STORAGE = 7
    LOCK_HELD = 8
    INTERRUPTED = 9
    VERIFY_FAILED = 10
    DIFFERENT = 11
    CHECK_FAILED = 12


class DumpJobError(Exception):
    """A failure with a message that names the cause and the next step, never a secret.

    The message is kept as given, whitespace included: it may quote another program's output that
    holds a secret, and redaction must see the raw text before anything normalises it. The logger
    (`Logger.redact`) redacts it and then makes it the one line every error is printed as."""

    exit_code = ExitCode.INTERNAL
    kind = "internal"

    def __init__(self, message: str):
        super().__init__(str(message))

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(DumpJobError):
    exit_code = ExitCode.CONFIG
    kind = "config"


class SecretError(DumpJobError):
    exit_code = ExitCode.SECRET
    kind = "secret"


class DatabaseError(DumpJobError):
    exit_code = ExitCode.DATABASE
    kind = "database"


class DumpIncompleteError(DumpJobError):
    exit_code = ExitCode.DUMP_INCOMPLETE
    kind = "dump_incomplete"


class StorageError(DumpJobError):
    exit_code = ExitCode.STORAGE
    kind = "storage"


class LockHeldError(DumpJobError):
    exit_code = ExitCode.LOCK_HELD
    kind = "lock_held"


class RunInterruptedError(DumpJobError):
    exit_code = ExitCode.INTERRUPTED
    kind = "interrupted"


class VerifyFailedError(DumpJobError):
    exit_code = ExitCode.VERIFY_FAILED
    kind = "verify_failed"


class UsageError(DumpJobError):
    exit_code = ExitCode.USAGE
    kind = "usage"
