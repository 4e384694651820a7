"""Talking to the database with PyMySQL: the preflight login (with the AWSPENDING fallback during
a rotation), the server's flavour, the account's privileges, and the cursor of the `query` kind."""

from __future__ import annotations

import fnmatch
import ssl
from dataclasses import dataclass
from typing import Callable, Optional

import pymysql
from pymysql import converters

from .errors import ConfigError, DatabaseError
from .secret import CURRENT, PENDING, DbCredentials, fetch

AUTH_ERRORS = {1045, 1698, 1251}
LOST_CONNECTION = {2006, 2013, 2055, 4031}
# The server stopped the session on its side: shutting down, the query or the connection killed.
SERVER_INTERRUPTED = {1053, 1317, 1927}
# Errors of a login that a later attempt may not meet: the server down, unreachable, restarting,
# out of connections, or the name not resolved for a moment.
UNREACHABLE = {1040, 1053, 2002, 2003, 2005, 2006, 2013, 2055, 4031}
# Only the encoders: result values stay the text the server sent, exactly as mysql --batch shows them.
TEXT_CONV = {k: v for k, v in converters.conversions.items() if isinstance(k, type)}
DUMP_PRIVILEGES = ("SELECT", "SHOW VIEW", "TRIGGER", "EVENT")


@dataclass(frozen=True)
class ServerInfo:
    version: str
    flavour: str  # "mariadb" or "mysql"

    @property
    def major(self) -> int:
        try:
            return int(self.version.split(".", 1)[0])
        except ValueError:
            return 0


def connect(creds: DbCredentials, database: Optional[str] = None, ssl_ca: Optional[str] = None,
            timeout: int = 10, read_timeout: Optional[int] = None) -> pymysql.connections.Connection:
    """A connection, or DatabaseError naming why; authentication failures keep their MySQL error code.

    With `ssl_ca` the connection is TLS or nothing: the server's certificate must chain to that CA
    and name the host the secret gives (as `ssl-verify-server-cert` / `ssl-mode=VERIFY_IDENTITY`
    make mysqldump check it)."""
    context = tls_context(ssl_ca) if ssl_ca else None
    try:
        return pymysql.connect(host=creds.host, port=creds.port, user=creds.username,
                               password=creds.password.encode("utf-8"),
                               database=database, charset="utf8mb4", conv=TEXT_CONV, connect_timeout=timeout,
                               read_timeout=read_timeout, ssl=context, autocommit=True)
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else 0
        if ssl_ca and tls_failure(exc):
            raise DatabaseError(f"TLS verification of {creds.host}:{creds.port} failed against the CA {ssl_ca} "
                                f"({tls_failure(exc)}); fix 'ssl_ca' or the secret's host") from None
        if code in AUTH_ERRORS:
            raise AuthFailedError(f"authentication failed for user '{creds.username}' at "
                                  f"{creds.host}:{creds.port}") from None
        if code == 1049:
            raise DatabaseError(f"database '{database}' does not exist on {creds.host}:{creds.port}; "
                                "fix 'database'/'databases' in the job") from None
        if code == 1044:
            raise DatabaseError(f"user '{creds.username}' may not use database '{database}'; grant it SELECT") from None
        raise DatabaseError(f"cannot reach database {creds.host}:{creds.port} ({reason(exc)}); "
                            "check the host, port, security group and that the server runs",
                            transient=code in UNREACHABLE) from None
    except pymysql.err.MySQLError as exc:
        raise DatabaseError(f"cannot log in to database {creds.host}:{creds.port} ({reason(exc)})") from None


def tls_context(ssl_ca: str) -> ssl.SSLContext:
    """A client context that requires a certificate chaining to `ssl_ca` and naming the host."""
    try:
        context = ssl.create_default_context(cafile=ssl_ca)
    except FileNotFoundError:
        raise ConfigError(f"the CA file {ssl_ca} ('ssl_ca') does not exist; install it (role dumpjob: "
                          "dumpjob_ssl_ca_bundle) or fix 'ssl_ca' in the job") from None
    except PermissionError:
        raise ConfigError(f"the CA file {ssl_ca} ('ssl_ca') cannot be read by this user; make it readable "
                          "(root-owned, mode 0644)") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"the CA file {ssl_ca} ('ssl_ca') holds no usable PEM certificate "
                          f"({type(exc).__name__}); replace it with the CA bundle") from None
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    # OpenSSL's default chain rules, as mysqldump applies them (Python 3.13 adds X509_STRICT).
    context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    return context


def tls_failure(exc: BaseException) -> Optional[str]:
    """What failed in the TLS handshake behind a PyMySQL error, or None when it was no TLS failure."""
    cause = getattr(exc, "original_exception", None)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {cause.verify_message}".rstrip(".")
    if isinstance(cause, ssl.SSLError):
        return f"TLS handshake failed: {cause.reason or cause}"
    if exc.args and exc.args[0] == 2026:  # CR_SSL_CONNECTION_ERROR: the server offers no TLS
        return str(exc.args[1]) if len(exc.args) > 1 else "TLS connection error"
    return None


def tls_cipher(conn: pymysql.connections.Connection) -> Optional[str]:
    """The session's negotiated TLS cipher as the server reports it, None without TLS."""
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cur.fetchone()
    return row[1] if row and row[1] else None


class AuthFailedError(DatabaseError):
    """The server refused the user name and password."""


Connection = pymysql.connections.Connection


def login(sm, secret_id: str, use: Callable[[DbCredentials], Connection],
          on_retry: Callable[[str], None] = lambda msg: None,
          remember: Callable[[str], None] = lambda secret: None) -> tuple[DbCredentials, Connection]:
    """Credentials that the server accepts and an open connection made with them.

    On an authentication failure the secret is read again and AWSPENDING is tried once: a rotation
    may have changed the password between the read and the login. `remember` sees every password
    read, so that the logger can redact it."""

    def read(stage: str) -> Optional[DbCredentials]:
        creds = fetch(sm, secret_id, stage)
        if creds is not None:
            remember(creds.password)
        return creds

    first = read(CURRENT)
    try:
        return first, use(first)
    except AuthFailedError as exc:
        on_retry(f"{exc} with {CURRENT}; reading the secret again and trying {PENDING}")
        failure = exc
    tried = [first.password]
    candidates = []
    again = read(CURRENT)
    if again.password not in tried or (again.username, again.host) != (first.username, first.host):
        candidates.append(again)
    pending = read(PENDING)
    if pending is not None:
        candidates.append(pending)
    for creds in candidates:
        if creds.password in tried and creds.username == first.username:
            continue
        tried.append(creds.password)
        try:
            return creds, use(creds)
        except AuthFailedError as exc:
            failure = exc
    stages = f"{CURRENT} and {PENDING}" if pending is not None else f"{CURRENT} (no {PENDING} version exists)"
    raise DatabaseError(f"{failure} with the secret's {stages}; set the secret '{secret_id}' to the user's "
                        "current password") from None


def server_info(conn: pymysql.connections.Connection) -> ServerInfo:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION(), @@version_comment")
        version, comment = cur.fetchone()
    flavour = "mariadb" if "mariadb" in f"{version} {comment}".lower() else "mysql"
    return ServerInfo(version=version, flavour=flavour)


def missing_privileges(conn: pymysql.connections.Connection, databases: tuple[str, ...],
                       needed: tuple[str, ...] = DUMP_PRIVILEGES) -> dict[str, list[str]]:
    """Per database, the privileges of `needed` the current account lacks (global or schema grants)."""
    with conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        user, _at, host = cur.fetchone()[0].rpartition("@")
        grantee = f"'{user}'@'{host}'"
        cur.execute("SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s", (grantee,))
        global_privs = {row[0] for row in cur.fetchall()}
        cur.execute("SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = %s",
                    (grantee,))
        schema_privs = cur.fetchall()
    missing = {}
    for database in databases:
        have = set(global_privs)
        for pattern, privilege in schema_privs:
            if _schema_matches(pattern, database):
                have.add(privilege)
        lacking = [p for p in needed if p not in have]
        if lacking:
            missing[database] = lacking
    return missing


def _schema_matches(pattern: str, database: str) -> bool:
    glob = pattern.replace("\\_", "\0").replace("\\%", "\1").replace("%", "*").replace("_", "?")
    glob = glob.replace("\0", "_").replace("\1", "%")
    return fnmatch.fnmatchcase(database, glob)


def drop_connection(conn: Connection) -> None:
    """Close the connection's socket without reading what the server still sends (closing a
    cursor of an unbuffered result would read it all first)."""
    force_close = getattr(conn, "_force_close", None)  # PyMySQL's own, without COM_QUIT
    if force_close is not None:
        force_close()
        # Nothing left to drain: neither a cursor closed later nor the result's finaliser may read.
        result, conn._result = getattr(conn, "_result", None), None
        if result is not None:
            result.unbuffered_active = False
    elif conn.open:
        conn.close()


def is_lost_connection(exc: BaseException) -> bool:
    return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and exc.args[0] in LOST_CONNECTION


def is_server_interruption(exc: BaseException) -> bool:
    """The server ended the query or the session itself (shutdown, KILL)."""
    return isinstance(exc, pymysql.err.MySQLError) and bool(exc.args) and exc.args[0] in SERVER_INTERRUPTED


def reason(exc: BaseException) -> str:
    if exc.args and isinstance(exc.args[0], int) and len(exc.args) > 1:
        return f"error {exc.args[0]}: {exc.args[1]}"
    return f"{type(exc).__name__}: {exc}"
