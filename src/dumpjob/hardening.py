"""What `dumpjob` does to its own process before any command reads a secret.

- No core dumps: RLIMIT_CORE (0, 0), inherited by mysqldump, so a crash of either cannot write the
  password (or the dump's data) to a core file or hand it to a crash collector.
- Not dumpable: prctl(PR_SET_DUMPABLE, 0), so that no other process of the same user can ptrace it
  or read its memory through /proc/<pid>/mem (mysqldump, after exec, is a separate program).
- MYSQL_PWD is removed from the environment, with one warning: dumpjob never uses it (the password
  comes from Secrets Manager, and mysqldump gets a minimal environment), and a password in the
  environment is readable in /proc/<pid>/environ. It does not stop the run: refusing would lose the
  night's dump over a variable the run does not read, and the role refuses it at deploy time.

Linux only; elsewhere (a developer's laptop) the process is left as it is, silently."""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Optional

from .log import Logger

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


def protect_memory() -> list[str]:
    """Set RLIMIT_CORE to (0, 0) and the process not dumpable; the problems met (empty when both hold)."""
    if not sys.platform.startswith("linux"):
        return []
    problems = []
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as exc:
        problems.append(f"cannot set RLIMIT_CORE to 0 ({exc}); a crash may write a core file")
    try:
        libc = _libc()
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            problems.append(f"prctl(PR_SET_DUMPABLE, 0) failed ({os.strerror(err)}); other processes of this user "
                            "may read this process's memory")
    except (OSError, AttributeError) as exc:
        problems.append(f"prctl is not available ({exc}); other processes of this user may read this process's "
                        "memory")
    return problems


def dumpable() -> Optional[int]:
    """prctl(PR_GET_DUMPABLE): 0 when protect_memory() took effect; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    return int(_libc().prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))


def drop_mysql_pwd(log: Logger) -> None:
    """Remove MYSQL_PWD from the environment (its value redacted from every line), warning once."""
    value = os.environ.pop("MYSQL_PWD", None)
    if value is None:
        return
    log.add_secret(value)
    log.warning("environment", "MYSQL_PWD is set in dumpjob's environment; dumpjob ignores it (the password "
                "comes from Secrets Manager) and removed it: delete it from /etc/dumpjob/environment, the "
                "crontab or the calling shell, since other processes can read a password in the environment")


def harden(log: Logger) -> None:
    """Everything above, each problem logged once as a warning; nothing here stops the run."""
    for problem in protect_memory():
        log.warning("hardening", problem)
    drop_mysql_pwd(log)


def _libc():
    """The C library's symbols, through the interpreter itself (it links libc; no ldconfig lookup)."""
    return ctypes.CDLL(None, use_errno=True)
