# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what `dms_checks` judges from a MySQL/MariaDB source, read-only, with PyMySQL.

Two logins: the replication user (what DMS itself will see: its grants, the binary log settings,
RDS's retention setting) and optionally an admin/dump login for what a replication user cannot
see (triggers, routines, foreign keys, SHOW SLAVE STATUS). Every session is put into READ ONLY
transaction mode first and runs only SELECT and SHOW."""

from __future__ import annotations

import re
import socket

VARIABLES = ("log_bin", "binlog_format", "binlog_row_image", "binlog_checksum", "log_bin_compress",
             "binlog_transaction_compression", "server_id", "binlog_expire_logs_seconds", "expire_logs_days",
             "read_only", "innodb_read_only", "log_slave_updates", "log_replica_updates", "time_zone",
             "system_time_zone", "net_read_timeout", "net_write_timeout", "wait_timeout", "max_statement_time",
             "max_execution_time", "max_allowed_packet", "character_set_server", "require_secure_transport",
             "aurora_version")
LOB_TYPES = ("tinyblob", "blob", "mediumblob", "longblob", "tinytext", "text", "mediumtext", "longtext", "json")
DATE_TYPES = ("date", "datetime", "timestamp")


def _ident(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"


def connect(pymysql, login: dict, ssl_ca: str | None, timeout: int):
    """A read-only session; raises pymysql's errors."""
    kwargs = dict(host=login["host"], port=int(login["port"]), user=login["username"], password=login["password"],
                  connect_timeout=timeout, read_timeout=600, charset="utf8mb4", autocommit=True)
    if ssl_ca:
        kwargs["ssl"] = {"ca": ssl_ca}
    conn = pymysql.connect(**kwargs)
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION READ ONLY")
    return conn


def rows(conn, query: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query, args)
        return list(cur.fetchall())


def port_reachable(host: str, port: int, timeout: int) -> dict:
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return {"host": host, "port": int(port), "reachable": True, "error": ""}
    except OSError as exc:
        return {"host": host, "port": int(port), "reachable": False, "error": str(exc)}


def _first(pymysql, conns, query, args=None):
    """The first login that may run the query: (rows, None) or (None, the last error)."""
    error = "no login"
    for conn in conns:
        if conn is None:
            continue
        try:
            return rows(conn, query, args), None
        except pymysql.MySQLError as exc:
            error = f"{exc.args[0]}: {exc.args[1]}" if len(exc.args) > 1 else str(exc)
    return None, error


def _replica(pymysql, conns, flavor):
    """The primary it replicates from, False for a primary, None when no login may tell."""
    for query in ("SHOW SLAVE STATUS", "SHOW REPLICA STATUS"):
        found, _error = _first(pymysql, conns, query)
        if found is not None:
            return (found[0][1] or "unknown") if found else False
    # Without SLAVE MONITOR: MariaDB counts its running replica threads in a status anyone may read.
    if flavor == "mariadb":
        found, _error = _first(pymysql, conns, "SHOW GLOBAL STATUS LIKE 'Slaves_running'")
        if found:
            return "a primary (Slaves_running > 0)" if int(found[0][1]) > 0 else False
    return None


def gather(pymysql, repl, admin, databases: list[str], rds: dict | None, options: dict) -> dict:
    """repl/admin: open connections (repl may be None when its login failed; one must exist)."""
    conns = [c for c in (repl, admin) if c is not None]
    main = conns[0]
    version = rows(main, "SELECT VERSION()")[0][0]
    variables = dict(rows(
        main, "SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + ", ".join(["%s"] * len(VARIABLES)) + ")", VARIABLES))
    flavor = "mariadb" if "mariadb" in version.lower() else "mysql"
    facts = {"flavor": flavor, "version": version, "variables": variables, "rds": rds, "grants": [],
             "tables": [], "lob_columns": [], "generated_columns": [], "invisible_columns": [], "cascading_fks": [],
             "partitioned": [], "triggers": [], "views": [], "routines": [], "typed_columns": [],
             "timestamp_columns": [], "charset_columns": [], "zero_dates": {}}
    if repl is not None:
        # The password hash stays out of the report.
        facts["grants"] = [re.sub(r" IDENTIFIED (BY PASSWORD|VIA|WITH) .*$", "", r[0])
                           for r in rows(repl, "SHOW GRANTS FOR CURRENT_USER()")]
    if rds is not None:
        replica = rds.get("replica_of") or False
        found, error = _first(pymysql, conns,
                              "SELECT value FROM mysql.rds_configuration WHERE name = 'binlog retention hours'")
        value = found[0][0] if found else None
        facts["rds_retention_hours"] = int(value) if value not in (None, "", "NULL") else None
        facts["rds_retention_error"] = error if found is None else ""
    else:
        replica = _replica(pymysql, [admin, repl], flavor)
    facts["replica"] = replica
    inventory = admin or repl
    placeholders = ", ".join(["%s"] * len(databases))
    schema = f"IN ({placeholders})"

    def q(query):
        # Only the placeholders of `schema` are formatted in; the database names are parameters.
        return rows(inventory, query, tuple(databases))

    def scan(query):
        # Identifiers come from information_schema and are quoted by _ident.
        return rows(inventory, query)[0][0]

    keyed = {(r[0], r[1]) for r in q(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA " + schema  # noqa: S608
        + " AND NON_UNIQUE = 0 GROUP BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME HAVING SUM(NULLABLE = 'YES') = 0")}
    multi = len(databases) > 1

    def name(db, table):
        return f"{db}.{table}" if multi else table

    listed = q("SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE, TABLE_TYPE FROM information_schema.TABLES "  # noqa: S608
               "WHERE TABLE_SCHEMA " + schema + " ORDER BY TABLE_SCHEMA, TABLE_NAME")
    for db, table, engine, kind in listed:
        if kind == "VIEW":
            facts["views"].append(name(db, table))
        else:
            facts["tables"].append({"name": name(db, table), "schema": db, "table": table, "engine": engine,
                                    "has_key": (db, table) in keyed})
    base = {(t["schema"], t["table"]) for t in facts["tables"]}
    columns = q("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_NULLABLE, EXTRA, CHARACTER_SET_NAME "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA " + schema
                + " ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION")
    for db, table, column, dtype, nullable, extra, charset in columns:
        if (db, table) not in base:
            continue
        full = f"{name(db, table)}.{column}"
        extra = (extra or "").upper()
        dtype = dtype.lower()
        facts["typed_columns"].append({"table": name(db, table), "column": column, "type": dtype})
        if dtype in LOB_TYPES:
            col = {"table": name(db, table), "column": column, "type": dtype, "nullable": nullable == "YES",
                   "max_length": None}
            if options["lob_scan"]:
                col["max_length"] = int(scan(f"SELECT COALESCE(MAX(LENGTH({_ident(column)})), 0) "  # noqa: S608
                                             f"FROM {_ident(db)}.{_ident(table)}"))
            facts["lob_columns"].append(col)
        if ("GENERATED" in extra and "DEFAULT_GENERATED" not in extra) or extra in ("VIRTUAL", "PERSISTENT", "STORED"):
            facts["generated_columns"].append(full)
        if "INVISIBLE" in extra:
            facts["invisible_columns"].append(full)
        if dtype == "timestamp":
            facts["timestamp_columns"].append(full)
        if charset:
            facts["charset_columns"].append({"table": name(db, table), "column": column, "charset": charset})
        if options["deep_scan"] and dtype in DATE_TYPES:
            zeros = int(scan(f"SELECT COUNT(*) FROM {_ident(db)}.{_ident(table)} "  # noqa: S608
                             f"WHERE {_ident(column)} < '0001-01-01'"))
            if zeros:
                facts["zero_dates"][full] = zeros
    facts["cascading_fks"] = [f"{name(db, table)}.{constraint} ({rule})" for db, table, constraint, rule in q(
        "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, CONCAT('ON DELETE ', DELETE_RULE, ' ON UPDATE ', "  # noqa: S608
        "UPDATE_RULE) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA " + schema
        + " AND (DELETE_RULE IN ('CASCADE', 'SET NULL') OR UPDATE_RULE IN ('CASCADE', 'SET NULL')) ORDER BY 1, 2, 3")]
    facts["partitioned"] = [name(db, table) for db, table in q(
        "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA "  # noqa: S608
        + schema
        + " AND PARTITION_NAME IS NOT NULL ORDER BY 1, 2")]
    triggers = q("SELECT TRIGGER_SCHEMA, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, EVENT_OBJECT_TABLE "
                 "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA " + schema + " ORDER BY 1, 2")
    facts["triggers"] = [f"{name(db, trigger)} ({timing} {event} ON {table})"
                         for db, trigger, timing, event, table in triggers]
    facts["routines"] = [f"{name(db, routine)} ({kind})" for db, routine, kind in q(
        "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA "  # noqa: S608
        + schema + " ORDER BY 1, 2")]
    facts["inventory_login"] = "admin" if admin is not None else "replication"
    status = None
    # MySQL 8.4 removed SHOW MASTER STATUS for SHOW BINARY LOG STATUS; MariaDB has both spellings.
    for query in ("SHOW MASTER STATUS", "SHOW BINARY LOG STATUS"):
        status, _error = _first(pymysql, conns, query)
        if status is not None:
            break
    facts["binlog_position"] = {"file": status[0][0], "position": int(status[0][1])} if status else None
    return facts
