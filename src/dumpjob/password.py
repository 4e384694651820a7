"""`dumpjob password JOB ACTION`: the database half of a single-user rotation of the job's secret.

The controller creates the new password as the secret's AWSPENDING version and later moves
AWSCURRENT to it (playbooks/rotate_db_password.yml); this program, on the dump host and as the
user the dumps run as, changes the database account's own password between the two stages:

- `status`: which of the secret's stages the database accepts now (a login attempt with each,
  over the job's verified TLS connection); changes nothing.
- `set`: the account's password becomes AWSPENDING's (logged in with AWSCURRENT); nothing to do
  when the database accepts AWSPENDING already.
- `test`: log in with AWSPENDING and check the job's privileges with it.
- `revert`: the account's password becomes AWSCURRENT's again (logged in with AWSPENDING): the
  database half of a rollback.

The new password travels only inside the SQL statement over that connection, never argv, the
environment or a log (every value read is redacted from every line)."""

from __future__ import annotations

from typing import Any, Optional

from . import aws, db
from .config import Job
from .errors import DatabaseError, SecretError
from .log import Logger
from .secret import CURRENT, PENDING, DbCredentials, fetch

ACTIONS = ("status", "set", "test", "revert")


def change_statement(server: db.ServerInfo) -> tuple[str, int]:
    """The statement that changes the logged-in account's own password, and how many passwords it
    takes (the new one, then the current one).

    MySQL 8.0.13+ checks the current password when the account has password_require_current
    (PASSWORD REQUIRE CURRENT): `REPLACE 'current'` names it, and is accepted without that option
    too. MariaDB has no REPLACE clause, and its ALTER USER needs the CREATE USER privilege even on
    the account itself, which a read-only dump account lacks; SET PASSWORD without FOR changes the
    caller's own password with no privilege."""
    if server.flavour == "mysql":
        if _version(server.version) >= (8, 0, 13):
            return "ALTER USER CURRENT_USER() IDENTIFIED BY %s REPLACE %s", 2
        return "ALTER USER CURRENT_USER() IDENTIFIED BY %s", 1
    return "SET PASSWORD = PASSWORD(%s)", 1


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("-", 1)[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


class Rotation:
    """The job's secret's two stages and the database, for one action."""

    def __init__(self, job: Job, log: Logger, sm=None):
        self.job, self.log = job, log
        self.sm = sm or aws.client(aws.session(job.region), "secretsmanager", attempts=3)
        self.database = job.database if job.kind == "query" else None

    def read(self, stage: str) -> Optional[DbCredentials]:
        creds = fetch(self.sm, self.job.secret_id, stage)
        if creds is not None:
            self.log.add_secret(creds.password)
        return creds

    def connect(self, creds: DbCredentials):
        return db.connect(creds, database=self.database, ssl_ca=self.job.ssl_ca, timeout=self.job.connect_timeout)

    def accepts(self, creds: Optional[DbCredentials]) -> bool:
        if creds is None:
            return False
        try:
            self.connect(creds).close()
        except db.AuthFailedError:
            return False
        return True

    def stages(self) -> tuple[DbCredentials, Optional[DbCredentials]]:
        current = self.read(CURRENT)
        pending = self.read(PENDING)
        if pending is not None and pending.version_id == current.version_id:
            pending = None  # AWSPENDING left on the current version: no rotation in progress
        if pending is not None and (pending.username, pending.host, pending.port) != \
                (current.username, current.host, current.port):
            raise SecretError(f"secret '{self.job.secret_id}': AWSPENDING names another account or server than "
                              "AWSCURRENT; a single-user rotation changes only the password: remove AWSPENDING "
                              "(playbooks/rotate_db_password.yml -e rotation=rollback) and start again")
        return current, pending

    def status(self) -> dict[str, Any]:
        current, pending = self.stages()
        ok_pending = self.accepts(pending)
        ok_current = (pending is not None and pending.password == current.password and ok_pending) or \
            self.accepts(current)
        accepted = [s for s, ok in ((CURRENT, ok_current), (PENDING, ok_pending)) if ok]
        return {"ok": True, "action": "status", "changed": False, "secret": self.job.secret_id,
                "user": current.username, "server": f"{current.host}:{current.port}",
                "current_version": current.version_id, "pending_version": pending.version_id if pending else None,
                "accepts": accepted}

    def change(self, action: str) -> dict[str, Any]:
        """`set` (to AWSPENDING) or `revert` (to AWSCURRENT)."""
        current, pending = self.stages()
        if pending is None:
            if action == "revert":
                if not self.accepts(current):
                    raise DatabaseError(f"the database refuses the secret's {CURRENT} and no {PENDING} version "
                                        f"exists; set the password of '{current.username}' to {CURRENT} by hand")
                return self._result(action, False, current, None, f"the database accepts {CURRENT}; nothing to do")
            raise SecretError(f"secret '{self.job.secret_id}' has no {PENDING} version: run the rotation's create "
                              "step first (playbooks/rotate_db_password.yml)")
        target, login = (pending, current) if action == "set" else (current, pending)
        if self.accepts(target):
            return self._result(action, False, current, pending, f"the database accepts {target.stage}; nothing to do")
        try:
            conn = self.connect(login)
        except db.AuthFailedError:
            raise DatabaseError(f"the database refuses both the secret's {CURRENT} and {PENDING} for user "
                                f"'{current.username}'; set its password to one of them by hand") from None
        try:
            server = db.server_info(conn)
            statement, count = change_statement(server)
            params = (target.password, login.password)[:count]
            with conn.cursor() as cur:
                try:
                    cur.execute(statement, params)
                except Exception as exc:  # the driver's error, redacted below
                    raise DatabaseError(f"changing the password of '{current.username}' on {server.flavour} "
                                        f"{server.version} failed ({self.log.redact(db.reason(exc))}); the account "
                                        f"keeps its {login.stage} password") from None
        finally:
            conn.close()
        if not self.accepts(target):
            raise DatabaseError(f"the password of '{current.username}' was changed but the database refuses "
                                f"{target.stage}; log in as an administrator and check the account")
        self.log.info("password", f"the password of '{current.username}' at {current.host}:{current.port} is now "
                      f"the secret's {target.stage} (version {target.version_id})")
        return self._result(action, True, current, pending, f"the database now accepts {target.stage}")

    def test(self) -> dict[str, Any]:
        current, pending = self.stages()
        if pending is None:
            raise SecretError(f"secret '{self.job.secret_id}' has no {PENDING} version to test: run the create and "
                              "set steps first")
        try:
            conn = self.connect(pending)
        except db.AuthFailedError:
            raise DatabaseError(f"the database refuses the secret's {PENDING} for user '{pending.username}': run "
                                "the set step first") from None
        try:
            server = db.server_info(conn)
            missing = {} if self.job.kind == "query" else db.missing_privileges(conn, self.job.databases)
        finally:
            conn.close()
        if missing:
            raise DatabaseError(f"logged in with {PENDING} but user '{pending.username}' lacks "
                                + "; ".join(f"{', '.join(p)} on {d}" for d, p in missing.items()))
        return self._result("test", False, current, pending,
                            f"logged in with {PENDING} to {server.flavour} {server.version}; privileges sufficient")

    def _result(self, action: str, changed: bool, current: DbCredentials, pending: Optional[DbCredentials],
                msg: str) -> dict[str, Any]:
        return {"ok": True, "action": action, "changed": changed, "msg": msg, "secret": self.job.secret_id,
                "user": current.username, "server": f"{current.host}:{current.port}",
                "current_version": current.version_id, "pending_version": pending.version_id if pending else None}


def password(job: Job, action: str, log: Logger) -> dict[str, Any]:
    rotation = Rotation(job, log)
    if action == "status":
        return rotation.status()
    if action == "test":
        return rotation.test()
    return rotation.change(action)
