"""The mysqldump child: which client this is, the flags it accepts, how the password reaches it
(an inherited pipe read as `--defaults-extra-file=/dev/fd/N`, or a 0600 file in a private
directory), and what its exit status and stderr mean."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Optional

from .config import Job
from .db import ServerInfo
from .errors import ConfigError, DatabaseError, DumpIncompleteError
from .secret import DbCredentials

COMMON_FLAGS = ["--single-transaction", "--quick", "--no-tablespaces", "--routines", "--events", "--triggers",
                "--hex-blob", "--default-character-set=utf8mb4"]
# Lines a healthy run may print on stderr; anything else fails the dump.
HARMLESS = [
    r"^(mysqldump|mariadb-dump): Deprecated program name\b.*",
    r"^(mysqldump|mariadb-dump): \[Warning\] Using a password on the command line interface can be insecure\.$",
    r"^Warning: A partial dump from a server that has GTIDs\b.*",
    r"^Warning: .*--set-gtid-purged.*",
]
CONNECTION_LOST = re.compile(r"\b(2013|2006|2055|4031)\b|Lost connection|server has gone away", re.I)
SERVER_INTERRUPTED = re.compile(r"\b(1053|1317|1927)\b|Server shutdown in progress|Query execution was interrupted|"
                                r"Connection was killed", re.I)
CANNOT_CONNECT = re.compile(r"\b(2002|2003|2005)\b|Can't connect|Unknown (MySQL|MariaDB) server host", re.I)
ACCESS_DENIED = re.compile(r"\b(1045|1698)\b|Access denied", re.I)
# At connect: MariaDB 'Got error: 2026: "TLS/SSL error: Validation of SSL server certificate failed" when trying
# to connect'; MySQL 'Got error: 2026: SSL connection error: ... when trying to connect'. A 2026 during the dump
# ("TLS/SSL error: unexpected eof while reading when dumping table") is a lost connection, not a verification.
TLS_FAILED = re.compile(r"(\b2026\b|TLS/SSL error|SSL connection error|certificate verify failed).*"
                        r"when trying to connect", re.I)
# The option that makes each client verify the server's certificate and host name against ssl-ca:
# MariaDB's clients (10.5, 10.11) do not verify without it; MySQL 8's client has only ssl-mode.
VERIFY_OPTION = {"mariadb": "ssl-verify-server-cert", "mysql": "ssl-mode=VERIFY_IDENTITY"}
STDERR_LIMIT = 64 * 1024


# The clients write their output through stdio, which buffers a pipe in 4 KiB pieces: about
# 290,000 writes per GiB, each waking the reader. Run under coreutils' `stdbuf -o` they write
# 512 KiB at a time: the benchmark's dump then costs client and reader 0.3-0.5 CPU-seconds less
# per GiB in a run (1.7 behind `| cat`; see docs/dumpjob.md, "Performance"). Without a working
# stdbuf the client runs as it is (slower, same bytes).
OUTPUT_BUFFER_KIB = 512


@dataclass(frozen=True)
class Client:
    path: str
    version_line: str
    flavour: str  # "mariadb" or "mysql"
    major: int
    wrapper: tuple[str, ...] = ()  # what runs the client: stdbuf and its output-buffer option, or nothing

    @property
    def output_buffering(self) -> str:
        """How the client's output reaches the pipe, for logs and `doctor`."""
        if self.wrapper:
            return f"{OUTPUT_BUFFER_KIB} KiB writes (coreutils stdbuf -o {OUTPUT_BUFFER_KIB}K)"
        return "4 KiB writes (stdio's default; coreutils' stdbuf is missing or failed)"


def detect_client(program: str) -> Client:
    """The client `program` names, run through stdbuf when stdbuf works with it (see OUTPUT_BUFFER_KIB)."""
    path = shutil.which(program)
    if path is None:
        raise ConfigError(f"'{program}' not found on PATH; install the MySQL or MariaDB client or set 'mysqldump' "
                          "in the job to its path")
    stdbuf = shutil.which("stdbuf", path=child_env()["PATH"])
    wrapper: tuple[str, ...] = (stdbuf, "-o", f"{OUTPUT_BUFFER_KIB}K") if stdbuf else ()
    proc = _version(wrapper, path)
    if wrapper and (proc is None or proc.returncode != 0):
        wrapper = ()  # stdbuf cannot preload its library here (a static client, a missing libstdbuf.so)
        proc = _version(wrapper, path)
    if proc is None:
        raise ConfigError(f"'{path} --version' failed to run; check the client installation")
    line = (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else ""
    if proc.returncode != 0 or "Ver" not in line:
        raise ConfigError(f"'{path} --version' did not identify a mysqldump client; check the client installation")
    flavour = "mariadb" if "mariadb" in line.lower() else "mysql"
    m = re.search(r"Distrib (\d+)\.", line) if flavour == "mariadb" else re.search(r"Ver (\d+)\.", line)
    return Client(path=path, version_line=line, flavour=flavour, major=int(m.group(1)) if m else 0, wrapper=wrapper)


def _version(wrapper: tuple[str, ...], path: str) -> Optional[subprocess.CompletedProcess]:
    try:
        return subprocess.run([*wrapper, path, "--version"], capture_output=True, text=True, timeout=30,
                              env=child_env(), check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


# What a client/server pair is called in logs, the manifest and `doctor`.
NATIVE = "native"
MARIADB_ON_MYSQL = "mariadb-client-mysql-server"
MYSQL_ON_MARIADB = "mysql-client-mariadb-server"
# The first line current MariaDB clients (10.5.25+, 10.11.8+, 11.x) write. MySQL's `mysql` client
# stops at it ("Unknown command '\-'"), so a dump of a MySQL server must not carry it.
SANDBOX_LINE = re.compile(rb"^/\*M!999999\\- enable the sandbox mode \*/ ?\r?$")


@dataclass(frozen=True)
class Compatibility:
    """How this client dumps this server: the mode's name, the flags the pair needs and whether
    the MariaDB sandbox-mode first line is dropped from the stream."""

    mode: str
    client_flavour: str
    server_flavour: str
    flags: tuple[str, ...]
    drop_sandbox_line: bool

    @property
    def record(self) -> dict:
        """The manifest's `compatibility` entry."""
        return {"mode": self.mode, "client": self.client_flavour, "server": self.server_flavour,
                "sandbox_line": "dropped" if self.drop_sandbox_line else "kept"}


def compatibility(client: Client, server: ServerInfo, mismatch: str = "adapt") -> Compatibility:
    """The flags and stream handling this (client, server) pair needs; ConfigError when the job
    refuses a mismatch (`flavour_mismatch: refuse`).

    A MariaDB client dumping a MySQL server is production's normal case (Amazon Linux 2023 ships
    only `mariadb105`): the common flags work on both, and with `adapt` (the default) the sandbox-mode
    line, which only MariaDB's tools understand, is dropped so that MySQL's client can restore the
    dump; `keep` leaves it. Oracle's client needs `--set-gtid-purged=OFF` (RDS has GTIDs; a dump must
    not carry SET @@GLOBAL.GTID_PURGED), and from version 8 `--column-statistics=0` against servers
    without the COLUMN_STATISTICS table (MariaDB, MySQL < 8)."""
    if client.flavour == server.flavour:
        mode = NATIVE
    else:
        mode = MARIADB_ON_MYSQL if client.flavour == "mariadb" else MYSQL_ON_MARIADB
    if mode != NATIVE and mismatch == "refuse":
        raise ConfigError(f"the {client.flavour} client ({client.path}) would dump a {server.flavour} "
                          f"{server.version} server and the job sets 'flavour_mismatch: refuse'; install the "
                          f"{server.flavour} client or set 'flavour_mismatch: adapt'")
    extra: list[str] = []
    if client.flavour == "mysql":
        extra.append("--set-gtid-purged=OFF")
        if client.major >= 8 and (server.flavour == "mariadb" or server.major < 8):
            extra.append("--column-statistics=0")
    return Compatibility(mode, client.flavour, server.flavour, tuple(extra),
                         drop_sandbox_line=(mode == MARIADB_ON_MYSQL and mismatch == "adapt"))


def flags(compat: Compatibility, job: Job) -> list[str]:
    """The options after --defaults-extra-file, as this client accepts them."""
    args = [*COMMON_FLAGS, *compat.flags]
    if job.no_data:
        args.append("--no-data")
    if len(job.databases) == 1:
        args += ["--", job.databases[0], *job.tables]
    else:
        args += ["--databases", "--", *job.databases]
    return args


class FirstLineFilter:
    """Drops the stream's first line when it is exactly MariaDB's sandbox-mode line; every other
    byte passes unchanged (a dump without that line comes out byte-identical)."""

    LIMIT = 256  # the sandbox line is 40 bytes: a longer first line cannot be it

    def __init__(self, active: bool):
        self._pending: Optional[bytes] = b"" if active else None
        self.dropped = False

    def feed(self, data: bytes) -> bytes:
        if self._pending is None:
            return data
        head = self._pending + data
        end = head.find(b"\n")
        if end < 0:
            if len(head) <= self.LIMIT:
                self._pending = head
                return b""
            self._pending = None
            return head
        self._pending = None
        if SANDBOX_LINE.match(head[:end]):
            self.dropped = True
            return head[end + 1:]
        return head

    def flush(self) -> bytes:
        """What is still held back once the stream ended (a first line without a line end)."""
        rest, self._pending = self._pending or b"", None
        return rest


def option_file(creds: DbCredentials, ssl_ca: Optional[str], flavour: str = "mariadb") -> bytes:
    """A [client] option group; values quoted with backslash escapes, as the client's parser expects.
    With `ssl_ca`, the client of `flavour` verifies the server's certificate and host name."""
    lines = ["[client]", f"user={_quote(creds.username)}", f"password={_quote(creds.password)}",
             f"host={_quote(creds.host)}", f"port={creds.port}", "protocol=TCP"]
    if ssl_ca:
        lines += [f"ssl-ca={_quote(ssl_ca)}", VERIFY_OPTION[flavour]]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def child_env() -> dict[str, str]:
    """A minimal environment for children: no AWS credentials, no MYSQL_PWD, nothing secret."""
    keep = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return env


@dataclass
class DumpProcess:
    """A running mysqldump whose stdout is a pipe; stderr is collected by a thread (bounded)."""

    proc: subprocess.Popen
    argv: list[str]
    private_dir: Optional[str] = None
    stderr_lines: list[str] = field(default_factory=list)
    pipe_size: int = 0  # of the stdout pipe, once grown
    _stderr_thread: Optional[threading.Thread] = None

    @classmethod
    def start(cls, client: Client, args: list[str], creds: DbCredentials, ssl_ca: Optional[str],
              transport: str, work_dir: str) -> DumpProcess:
        content = option_file(creds, ssl_ca, client.flavour)
        private_dir = None
        pass_fds: tuple[int, ...] = ()
        if transport == "pipe":
            read_fd, write_fd = os.pipe()
            try:
                os.write(write_fd, content)  # a few hundred bytes: fits the pipe buffer
            finally:
                os.close(write_fd)
            defaults = f"/dev/fd/{read_fd}"
            pass_fds = (read_fd,)
        else:
            private_dir = tempfile.mkdtemp(prefix="dumpjob-", dir=work_dir)  # mode 0700
            defaults = os.path.join(private_dir, "client.cnf")
            fd = os.open(defaults, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, content)
            finally:
                os.close(fd)
        argv = [client.path, f"--defaults-extra-file={defaults}", *args]
        try:
            proc = subprocess.Popen([*client.wrapper, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=pass_fds, env=child_env(), bufsize=0)
        except OSError as exc:
            _cleanup(private_dir)
            raise ConfigError(f"cannot start {client.path} ({exc.strerror})") from None
        finally:
            for fd in pass_fds:
                os.close(fd)
        dump = cls(proc=proc, argv=argv, private_dir=private_dir)
        dump._stderr_thread = threading.Thread(target=dump._read_stderr, name="mysqldump-stderr", daemon=True)
        dump._stderr_thread.start()
        dump.pipe_size = _grow_pipe(proc.stdout.fileno())
        return dump

    def _read_stderr(self) -> None:
        total = 0
        for raw in self.proc.stderr:
            if total < STDERR_LIMIT:
                self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                total += len(raw)

    @property
    def stdout_fd(self) -> int:
        return self.proc.stdout.fileno()

    def wait(self) -> int:
        code = self.proc.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=10)
        self.close()
        return code

    def stop(self) -> None:
        """Stop the child (TERM, then KILL) and release what it holds."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.close()

    def close(self) -> None:
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        _cleanup(self.private_dir)
        self.private_dir = None

    def public_flags(self) -> list[str]:
        return [a if not a.startswith("--defaults-extra-file=") else "--defaults-extra-file=<credentials>"
                for a in self.argv[1:]]


def failure(returncode: int, stderr_lines: list[str], extra_harmless: tuple[str, ...], raw_bytes: int,
            ssl_ca: Optional[str] = None):
    """The error a finished mysqldump run stands for, or None when exit status and stderr are clean."""
    patterns = [re.compile(p) for p in (*HARMLESS, *extra_harmless)]
    unexpected = [line for line in stderr_lines if line.strip() and not any(p.search(line) for p in patterns)]
    first = unexpected[0][:300] if unexpected else ""
    text = "\n".join(unexpected)
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else -returncode
        return DumpIncompleteError(f"mysqldump was killed by {name} after {raw_bytes} bytes")
    if returncode == 0 and not unexpected:
        return None
    if TLS_FAILED.search(text):
        against = f"against the CA {ssl_ca}" if ssl_ca else "(no 'ssl_ca' set)"
        return DatabaseError(f"mysqldump's TLS connection to the database failed {against} ({first}); fix "
                             "'ssl_ca' or the secret's host")
    if CONNECTION_LOST.search(text):
        return DatabaseError(f"database connection lost during the dump after {raw_bytes} bytes ({first}); "
                             "check the server and retry", transient=True)
    if SERVER_INTERRUPTED.search(text):
        return DatabaseError(f"the database server interrupted the dump after {raw_bytes} bytes ({first}); "
                             "check the server's log and retry", transient=True)
    if CANNOT_CONNECT.search(text):
        return DatabaseError(f"mysqldump cannot reach the database ({first})", transient=True)
    if ACCESS_DENIED.search(text):
        return DatabaseError(f"mysqldump was refused by the database ({first}); check the account's privileges")
    if returncode != 0:
        return DumpIncompleteError(f"mysqldump exited {returncode} after {raw_bytes} bytes ({first or 'no message'})")
    return DumpIncompleteError(f"mysqldump wrote an unexpected message on stderr ({first}); if it is harmless, "
                               "add a pattern for it to 'harmless_warnings'")


def _grow_pipe(fd: int) -> int:
    """Grow the pipe to 1 MiB (what an unprivileged process may, by default); its size, 0 if unknown."""
    try:
        import fcntl
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        return fcntl.fcntl(fd, getattr(fcntl, "F_GETPIPE_SZ", 1032))
    except OSError:
        return 0


def _cleanup(private_dir: Optional[str]) -> None:
    if private_dir:
        shutil.rmtree(private_dir, ignore_errors=True)
