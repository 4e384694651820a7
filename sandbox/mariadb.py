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
# The replication user the vendor creates for AWS DMS (`python -m sandbox vendor-ready on`).
DMS_REPLICATION_USER = "dms_repl"
DMS_REPLICATION_PASSWORD = "Dms-Repl#2026"  # noqa: S105 (a sandbox-only account)
DMS_USER_SQL = f"'{DMS_REPLICATION_USER}'@'%'"


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if path:
            return path
    raise procs.SandboxError(f"none of {', '.join(names)} found; run 'make setup' to install mariadb-server")


def client_argv(s: Settings, database: str | None = None, socket: Path | None = None) -> list[str]:
    """Root's client over the socket (unix_socket authentication, no password)."""
    argv = [_binary("mariadb", "mysql"), "--no-defaults", f"--socket={socket or s.mariadb_socket}", "-uroot",
            "--default-character-set=utf8mb4"]
    return argv + ([database] if database else [])


def sql(s: Settings, statements: str, database: str | None = None) -> str:
    proc = procs.run([*client_argv(s, database), "--batch", "--skip-column-names"],
                     "mariadb client", input=statements)
    return proc.stdout


def running(s: Settings) -> bool:
    return procs.pid_alive(s.pidfile(NAME)) is not None and s.mariadb_socket.exists()


def up(s: Settings, reset_password: bool = True) -> None:
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
            [_binary("mariadbd", "mysqld"), "--no-defaults", f"--datadir={datadir}", *vendor_ready_args(s),
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
    _ensure_legacy_account(s, reset_password=started and reset_password)


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


# --- The "vendor ready" state: what AWS DMS needs of the source (docs/dms.md) -----------------
# Off by default. On, the server runs with the binary log as the vendor's RDS would after the
# readiness report's changes, carries stand-ins for RDS's mysql.rds_* retention objects and the
# replication user DMS logs in as. The switch survives `down`/`up` (a marker file in the data
# directory's parent) until it is turned off.
VENDOR_READY_ARGS = ("--log-bin=mysql-bin", "--binlog-format=ROW", "--binlog-row-image=FULL", "--server-id=2",
                     "--binlog-expire-logs-seconds=172800")
VENDOR_RETENTION_HOURS = 48
RDS_STUBS = """
CREATE TABLE IF NOT EXISTS mysql.rds_configuration (
  name VARCHAR(100) NOT NULL PRIMARY KEY,
  value VARCHAR(100) NULL,
  description VARCHAR(300) NOT NULL
) ENGINE=InnoDB;
INSERT IGNORE INTO mysql.rds_configuration VALUES
  ('binlog retention hours', NULL, 'hours before binary logs are automatically deleted'),
  ('source delay', '0', 'replication delay in seconds to this instance'),
  ('target delay', '0', 'replication delay in seconds to a future read replica');
DROP PROCEDURE IF EXISTS mysql.rds_set_configuration;
DROP PROCEDURE IF EXISTS mysql.rds_show_configuration;
DELIMITER //
CREATE PROCEDURE mysql.rds_set_configuration(IN p_name VARCHAR(100), IN p_value INT)
  MODIFIES SQL DATA
BEGIN
  IF p_name = 'binlog retention hours' AND p_value IS NOT NULL AND (p_value < 1 OR p_value > 168) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'binlog retention hours must be NULL or 1..168';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM mysql.rds_configuration WHERE name = p_name) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'unknown configuration name';
  END IF;
  UPDATE mysql.rds_configuration SET value = p_value WHERE name = p_name;
END//
CREATE PROCEDURE mysql.rds_show_configuration()
  READS SQL DATA
BEGIN
  SELECT name, value, description FROM mysql.rds_configuration ORDER BY name;
END//
DELIMITER ;
"""


def vendor_marker(s: Settings) -> Path:
    return s.mariadb_dir / "vendor-ready"


def vendor_ready_args(s: Settings) -> tuple[str, ...]:
    return VENDOR_READY_ARGS if vendor_marker(s).exists() else ()


def vendor_ready(s: Settings) -> bool:
    return sql(s, "SELECT @@log_bin").strip() == "1"


def set_vendor_ready(s: Settings, on: bool) -> None:
    """Restart the running server into (or out of) the vendor-ready state; its data stays."""
    if not running(s):
        raise procs.SandboxError("MariaDB is not running: start the sandbox first (python -m sandbox up)")
    if on:
        vendor_marker(s).write_text("log_bin, ROW, FULL, server_id, retention, rds_* stubs, replication user\n")
    else:
        if vendor_ready(s):
            sql(s, "RESET MASTER")  # the binary logs of the vendor-ready time go with it
        sql(s, f"DROP USER IF EXISTS {DMS_USER_SQL}; DROP PROCEDURE IF EXISTS mysql.rds_set_configuration; "
               "DROP PROCEDURE IF EXISTS mysql.rds_show_configuration; DROP TABLE IF EXISTS mysql.rds_configuration;")
        vendor_marker(s).unlink(missing_ok=True)
    if vendor_ready(s) != on:
        down(s)
        up(s, reset_password=False)
    if on:
        sql(s, RDS_STUBS)
        sql(s, f"""
CALL mysql.rds_set_configuration('binlog retention hours', {VENDOR_RETENTION_HOURS});
CREATE USER IF NOT EXISTS {DMS_USER_SQL} IDENTIFIED BY '{DMS_REPLICATION_PASSWORD}';
GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO {DMS_USER_SQL};
GRANT SELECT ON basis.* TO {DMS_USER_SQL};
GRANT SELECT ON mysql.rds_configuration TO {DMS_USER_SQL};
""")


# --- The DMS target: a second, empty MariaDB standing in for the Aurora MySQL target ---------
# Started only on request (`python -m sandbox dms-target up`), on the source's port + 50, with
# local_infile on as the Aurora target's parameter group must have it, the sandbox's TLS
# certificate, an empty `basis` and the account DMS writes as.
TARGET = "mariadb-target"
DMS_TARGET_USER = "dms_target"
DMS_TARGET_PASSWORD = "Dms-Target#2026"  # noqa: S105 (a sandbox-only account)


def target_dir(s: Settings) -> Path:
    return s.state / TARGET


def target_socket(s: Settings) -> Path:
    return target_dir(s) / "mysqld.sock"


def target_port(s: Settings) -> int:
    return s.mariadb_port + 50


def target_sql(s: Settings, statements: str, database: str | None = None) -> str:
    proc = procs.run([*client_argv(s, database, target_socket(s)), "--batch", "--skip-column-names"],
                     "mariadb client (DMS target)", input=statements)
    return proc.stdout


def target_running(s: Settings) -> bool:
    return procs.pid_alive(s.pidfile(TARGET)) is not None and target_socket(s).exists()


def target_up(s: Settings) -> None:
    datadir = target_dir(s) / "data"
    if not (datadir / "mysql").is_dir():
        datadir.mkdir(parents=True, exist_ok=True)
        procs.run([_binary("mariadb-install-db", "mysql_install_db"), "--no-defaults", f"--datadir={datadir}",
                   "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"],
                  "mariadb-install-db (DMS target)")
    if not target_running(s):
        server_tls, _ = tls.ensure(tls_dir(s))
        target_socket(s).unlink(missing_ok=True)
        if procs.port_open(target_port(s)):
            raise procs.SandboxError(
                f"port {target_port(s)} is already taken; stop what listens there or set SANDBOX_PORT_BASE")
        procs.start_daemon(
            [_binary("mariadbd", "mysqld"), "--no-defaults", f"--datadir={datadir}", f"--socket={target_socket(s)}",
             f"--port={target_port(s)}", "--bind-address=127.0.0.1", f"--pid-file={target_dir(s) / 'mariadbd.pid'}",
             "--user=root", "--skip-name-resolve", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_general_ci", "--innodb-buffer-pool-size=128M", "--max-allowed-packet=256M",
             "--local-infile=1", f"--ssl-ca={server_tls.ca}", f"--ssl-cert={server_tls.cert}",
             f"--ssl-key={server_tls.key}"],
            s.pidfile(TARGET), s.logfile(TARGET))
        procs.wait_for(lambda: target_socket(s).exists() and subprocess.run(
            [*client_argv(s, socket=target_socket(s)), "-e", "SELECT 1"], capture_output=True).returncode == 0,
            "MariaDB (DMS target)", timeout=90, log=s.logfile(TARGET))
    target_sql(s, f"""
CREATE DATABASE IF NOT EXISTS basis CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE USER IF NOT EXISTS '{DMS_TARGET_USER}'@'%' IDENTIFIED BY '{DMS_TARGET_PASSWORD}';
GRANT ALL PRIVILEGES ON basis.* TO '{DMS_TARGET_USER}'@'%';
""")


def target_down(s: Settings) -> bool:
    return procs.stop_daemon(s.pidfile(TARGET), timeout=60)
