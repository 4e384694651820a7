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
CANNOT_CONNECT = re.compile(r"\b(2002|2003|2005)\b|Can't connect|Unknown (MySQL|MariaDB) server host", re.I)
ACCESS_DENIED = re.compile(r"\b(1045|1698)\b|Access denied", re.I)
STDERR_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Client:
    path: str
    version_line: str
    flavour: str  # "mariadb" or "mysql"
    major: int


def detect_client(program: str) -> Client:
    path = shutil.which(program)
    if path is None:
        raise ConfigError(f"'{program}' not found on PATH; install the MySQL or MariaDB client or set 'mysqldump' "
                          "in the job to its path")
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                              env=child_env(), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"'{path} --version' failed ({type(exc).__name__}); check the client installation") from None
    line = (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else ""
    if proc.returncode != 0 or "Ver" not in line:
        raise ConfigError(f"'{path} --version' did not identify a mysqldump client; check the client installation")
    flavour = "mariadb" if "mariadb" in line.lower() else "mysql"
    m = re.search(r"Distrib (\d+)\.", line) if flavour == "mariadb" else re.search(r"Ver (\d+)\.", line)
    return Client(path=path, version_line=line, flavour=flavour, major=int(m.group(1)) if m else 0)


def check_compatible(client: Client, server: ServerInfo, allow_mismatch: bool) -> None:
    if client.flavour == "mariadb" and server.flavour == "mysql" and not allow_mismatch:
        raise ConfigError(f"the MariaDB client ({client.path}) would dump a MySQL {server.version} server; install "
                          "MySQL's mysqldump or set 'allow_flavour_mismatch: true' in the job")


def flags(client: Client, server: ServerInfo, job: Job) -> list[str]:
    """The options after --defaults-extra-file, as this client accepts them."""
    args = list(COMMON_FLAGS)
    if client.flavour == "mysql":
        args.insert(2, "--set-gtid-purged=OFF")
        if client.major >= 8 and (server.flavour == "mariadb" or server.major < 8):
            args.append("--column-statistics=0")
    if job.no_data:
        args.append("--no-data")
    if len(job.databases) == 1:
        args += ["--", job.databases[0], *job.tables]
    else:
        args += ["--databases", "--", *job.databases]
    return args


def option_file(creds: DbCredentials, ssl_ca: Optional[str]) -> bytes:
    """A [client] option group; values quoted with backslash escapes, as the client's parser expects."""
    lines = ["[client]", f"user={_quote(creds.username)}", f"password={_quote(creds.password)}",
             f"host={_quote(creds.host)}", f"port={creds.port}", "protocol=TCP"]
    if ssl_ca:
        lines.append(f"ssl-ca={_quote(ssl_ca)}")
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
    _stderr_thread: Optional[threading.Thread] = None

    @classmethod
    def start(cls, client: Client, args: list[str], creds: DbCredentials, ssl_ca: Optional[str],
              transport: str, work_dir: str) -> DumpProcess:
        content = option_file(creds, ssl_ca)
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
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    pass_fds=pass_fds, env=child_env(), bufsize=0)
        except OSError as exc:
            _cleanup(private_dir)
            raise ConfigError(f"cannot start {client.path} ({exc.strerror})") from None
        finally:
            for fd in pass_fds:
                os.close(fd)
        dump = cls(proc=proc, argv=argv, private_dir=private_dir)
        dump._stderr_thread = threading.Thread(target=dump._read_stderr, name="mysqldump-stderr", daemon=True)
        dump._stderr_thread.start()
        _grow_pipe(proc.stdout.fileno())
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


def failure(returncode: int, stderr_lines: list[str], extra_harmless: tuple[str, ...], raw_bytes: int):
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
    if CONNECTION_LOST.search(text):
        return DatabaseError(f"database connection lost during the dump after {raw_bytes} bytes ({first}); "
                             "check the server and retry")
    if CANNOT_CONNECT.search(text):
        return DatabaseError(f"mysqldump cannot reach the database ({first})")
    if ACCESS_DENIED.search(text):
        return DatabaseError(f"mysqldump was refused by the database ({first}); check the account's privileges")
    if returncode != 0:
        return DumpIncompleteError(f"mysqldump exited {returncode} after {raw_bytes} bytes ({first or 'no message'})")
    return DumpIncompleteError(f"mysqldump wrote an unexpected message on stderr ({first}); if it is harmless, "
                          "add a pattern for it to 'harmless_warnings'")


def _grow_pipe(fd: int) -> None:
    try:
        import fcntl
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass


def _cleanup(private_dir: Optional[str]) -> None:
    if private_dir:
        shutil.rmtree(private_dir, ignore_errors=True)
