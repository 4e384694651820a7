"""A private MariaDB server from the distribution's binaries: own data directory, socket and
loopback port; seeded with the `basis` schema and the legacy reader account."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from string import Template

from . import procs, tls
from .config import LEGACY_DB_PASSWORD, LEGACY_DB_USER, Settings

HERE = Path(__file__).resolve().parent / "mariadb"
NAME = "mariadb"


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if path:
            return path
    raise procs.SandboxError(f"none of {', '.join(names)} found; run 'make setup' to install mariadb-server")


def client_argv(s: Settings, database: str | None = None) -> list[str]:
    """Root's client over the socket (unix_socket authentication, no password)."""
    argv = [_binary("mariadb", "mysql"), "--no-defaults", f"--socket={s.mariadb_socket}", "-uroot",
            "--default-character-set=utf8mb4"]
    return argv + ([database] if database else [])


def sql(s: Settings, statements: str, database: str | None = None) -> str:
    proc = procs.run([*client_argv(s, database), "--batch", "--skip-column-names"],
                     "mariadb client", input=statements)
    return proc.stdout


def running(s: Settings) -> bool:
    return procs.pid_alive(s.pidfile(NAME)) is not None and s.mariadb_socket.exists()


def up(s: Settings) -> None:
    if len(str(s.mariadb_socket)) > 100:
        raise procs.SandboxError(
            f"socket path {s.mariadb_socket} is too long for a unix socket; set SANDBOX_STATE to a shorter directory")
    datadir = s.mariadb_dir / "data"
    fresh = not (datadir / "mysql").is_dir()
    if fresh:
        datadir.mkdir(parents=True, exist_ok=True)
        procs.run([_binary("mariadb-install-db", "mysql_install_db"), "--no-defaults", f"--datadir={datadir}",
                   "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"],
                  "mariadb-install-db")
    server_tls, remade = tls.ensure(tls_dir(s))
    if running(s) and not serves_tls(s):
        # Started by an earlier `up` without TLS: restart it with the certificate.
        print(f"sandbox: MariaDB at 127.0.0.1:{s.mariadb_port} serves no TLS; restarting it with TLS", flush=True)
        down(s)
    elif running(s) and remade:
        sql(s, "FLUSH SSL")  # a renewed certificate, loaded without a restart
    started = not running(s)
    if started:
        s.mariadb_socket.unlink(missing_ok=True)
        if procs.port_open(s.mariadb_port):
            raise procs.SandboxError(
                f"port {s.mariadb_port} is already taken; stop what listens there or set SANDBOX_PORT_BASE")
        procs.start_daemon(
            [_binary("mariadbd", "mysqld"), "--no-defaults", f"--datadir={datadir}",
             f"--socket={s.mariadb_socket}", f"--port={s.mariadb_port}", "--bind-address=127.0.0.1",
             f"--pid-file={s.mariadb_dir / 'mariadbd.pid'}", "--user=root", "--skip-name-resolve",
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
             "--innodb-buffer-pool-size=512M", "--innodb-log-file-size=256M", "--max-allowed-packet=256M",
             "--log-bin-trust-function-creators=1", "--event-scheduler=OFF",
             # TLS offered, not required: the legacy scripts on the dump host connect without it.
             f"--ssl-ca={server_tls.ca}", f"--ssl-cert={server_tls.cert}", f"--ssl-key={server_tls.key}"],
            s.pidfile(NAME), s.logfile(NAME))
        procs.wait_for(lambda: _answers(s), "MariaDB", timeout=90, log=s.logfile(NAME))
    if not seeded(s):
        seed(s)
    _ensure_legacy_account(s, reset_password=started)


def tls_dir(s: Settings) -> Path:
    return s.mariadb_dir / "tls"


def ssl_ca(s: Settings) -> Path:
    """The CA that signed the server's certificate (MARIADB_SSL_CA in .sandbox/env)."""
    return tls.files(tls_dir(s)).ca


def serves_tls(s: Settings) -> bool:
    return sql(s, "SHOW GLOBAL VARIABLES LIKE 'have_ssl'").split() == ["have_ssl", "YES"]


def _answers(s: Settings) -> bool:
    if not s.mariadb_socket.exists():
        return False
    proc = subprocess.run([*client_argv(s), "-e", "SELECT 1"], capture_output=True)
    return proc.returncode == 0


def row_counts(scale: int) -> dict[str, int]:
    return {
        "contracts": scale,
        "properties": max(scale // 40, 5),
        "rooms": max(scale // 2, 10),
        "payments": scale * 12,
        "documents": max(scale // 4, 4),
        "access_logs": scale * 10,
    }


def seeded(s: Settings) -> bool:
    # access_logs is filled last: rows there mean a seed ran to its end.
    probe = ("SELECT COUNT(*) > 0 FROM information_schema.tables "
             "WHERE table_schema = 'basis' AND table_name = 'access_logs'")
    return sql(s, probe).strip() == "1" and sql(s, "SELECT EXISTS (SELECT 1 FROM basis.access_logs)").strip() == "1"


def seed(s: Settings, scale: int | None = None) -> None:
    """(Re)create `basis` and fill it; `scale` is the number of contracts (SANDBOX_SCALE)."""
    counts = row_counts(scale or s.scale)
    drop(s)
    sql(s, (HERE / "schema.sql").read_text())
    sql(s, Template((HERE / "seed.sql").read_text()).substitute(counts))


def drop(s: Settings) -> None:
    sql(s, "DROP DATABASE IF EXISTS basis")


def _ensure_legacy_account(s: Settings, reset_password: bool) -> None:
    # The vendor's read-only account: what mysqldump needs for a consistent dump with routines,
    # triggers, views and events. Reachable over TCP only, as on RDS. A sandbox started from down
    # is in the legacy state (moto's secrets are gone with it): the password a rotation
    # (playbooks/rotate_db_password.yml, make demo) gave the account goes back to the legacy one.
    reset = f"ALTER USER '{LEGACY_DB_USER}'@'%' IDENTIFIED BY '{LEGACY_DB_PASSWORD}';" if reset_password else ""
    sql(s, f"""
CREATE USER IF NOT EXISTS '{LEGACY_DB_USER}'@'%' IDENTIFIED BY '{LEGACY_DB_PASSWORD}';
{reset}
GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT, PROCESS, RELOAD ON *.* TO '{LEGACY_DB_USER}'@'%';
GRANT SELECT ON mysql.proc TO '{LEGACY_DB_USER}'@'%';
""")


def down(s: Settings) -> bool:
    return procs.stop_daemon(s.pidfile(NAME), timeout=60)
