"""Failure classes of dumpjob, each with its own documented exit code.

Each failure is also transient or permanent (`transient`): a run with a `deadline` tries again
after a transient one (the database unreachable or lost, S3 failing, the server interrupting the
dump) and stops at once after a permanent one (configuration, a missing secret, a login refused
with both secret stages, TLS verification, a signal...). The class gives the default, the place
that raises an error may say otherwise (a missing bucket is a storage error, and permanent)."""

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
    ANOMALY = 13  # published, but smaller than the previous dump beyond the job's limits
    ANOMALY_REFUSED = 14  # not published: smaller beyond the limits and the job says refuse


class DumpJobError(Exception):
    """A failure with a message that names the cause and the next step, never a secret.

    The message is kept as given, whitespace included: it may quote another program's output that
    holds a secret, and redaction must see the raw text before anything normalises it. The logger
    (`Logger.redact`) redacts it and then makes it the one line every error is printed as."""

    exit_code = ExitCode.INTERNAL
    kind = "internal"
    transient = False

    def __init__(self, message: str, transient: bool | None = None):
        super().__init__(str(message))
        if transient is not None:
            self.transient = transient

    @property
    def message(self) -> str:
        return str(self)

    def extended(self, suffix: str) -> DumpJobError:
        """The same failure (class and transience) with `suffix` appended to its message."""
        error = DumpJobError.__new__(type(self))
        Exception.__init__(error, f"{self}; {suffix}")
        error.__dict__.update(self.__dict__)
        return error


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
    transient = True  # S3 unreachable, throttling, 5xx; refusals and missing buckets say otherwise


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


class AnomalyRefusedError(DumpJobError):
    exit_code = ExitCode.ANOMALY_REFUSED
    kind = "anomaly_refused"
