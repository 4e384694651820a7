# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness of a MySQL/MariaDB source for AWS DMS full load + CDC, from facts already read.

`findings(facts, options)` turns what `dms_source.gather` read from the database (and the AWS
API) into one finding per check: `{id, severity, observed, expected, remediation, objects}`.
Severity `fail` blocks CDC, `warn` is a risk to decide on, `info` means ready (or an inventory).
Ids mirror AWS's premigration assessment keys (`mysql-check-binlog-format`, `mariadb-...`);
checks AWS has no key for carry a plain id (`source-triggers`, `lob-truncation`, ...).
`changes(...)` collects the exact changes to ask the source's owner for; `markdown(...)` is the
report. Pure functions: no database, no AWS, no Ansible."""

from __future__ import annotations

import json
import re

SEVERITIES = ("fail", "warn", "info")
# The source versions the DMS user guide lists (MySQL 5.5-8.4; MariaDB 10.0.24+, 10.2-10.6, 11.4).
SUPPORTED = {"mysql": [((5, 5), (8, 4))],
             "mariadb": [((10, 0, 24), (10, 0, 999)), ((10, 2), (10, 6)), ((11, 4, 3), (11, 4, 5))]}
RDS_MAX_RETENTION_HOURS = 168
SPATIAL_TYPES = ("geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
                 "geometrycollection")
CHARSETS_OK = ("utf8mb4", "utf8mb3", "utf8", "latin1", "ascii", "binary")
TIMEOUT_MIN = 300
# Parameter-group values DMS needs (the static ones need a reboot of the instance).
PARAMETERS = {"binlog_format": "ROW", "binlog_row_image": "FULL"}
PARAMETER_CHECKS = {"binlog_format": "binlog-format", "binlog_row_image": "binlog-image",
                    "log_bin_compress": "binlog-compression", "binlog_transaction_compression": "binlog-compression"}


def version_tuple(version: str) -> tuple:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("-")[0])[:3])


def _within(version: tuple, low: tuple, high: tuple) -> bool:
    return low <= version[:len(low)] and version[:len(high)] <= high


def supported_version(flavor: str, version: str) -> bool:
    v = version_tuple(version)
    return any(_within(v, low, high) for low, high in SUPPORTED[flavor])


def _on(value) -> bool:
    return str(value).upper() in ("ON", "1", "YES", "TRUE")


def quote(name: str) -> str:
    return "'" + str(name).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"


def required_retention_hours(options: dict) -> int:
    """At least 24 h, and at least the expected full load plus the time CDC needs to catch up."""
    need = options["expected_full_load_hours"] + options["catch_up_hours"]
    return max(24, int(-(-need // 1)))


def retention_call(need: int) -> str:
    return f"mysql.rds_set_configuration('binlog retention hours', {min(need, RDS_MAX_RETENTION_HOURS)})"


def parse_grants(lines: list[str]) -> dict[str, set[str]]:
    """`SHOW GRANTS` lines -> {"*.*": {"REPLICATION SLAVE", ...}, "basis.*": {"SELECT"}}."""
    out: dict[str, set[str]] = {}
    for line in lines:
        m = re.match(r"GRANT (.+?) ON (\S+) TO ", line)
        if not m:
            continue
        scope = m.group(2).replace("`", "")
        privileges = {p.strip().upper() for p in re.split(r",(?![^(]*\))", m.group(1))}
        out.setdefault(scope, set()).update(privileges)
    return out


def missing_grants(grants: dict[str, set[str]], databases: list[str]) -> dict[str, list]:
    """What the replication user lacks: {"*.*": [...], "basis.*": ["SELECT"]}."""
    everything = grants.get("*.*", set())
    if "ALL PRIVILEGES" in everything:
        return {}
    # MariaDB >= 10.5.2 shows REPLICATION CLIENT as BINLOG MONITOR.
    client = {"REPLICATION CLIENT", "BINLOG MONITOR"}
    missing: dict[str, list] = {}
    need = []
    if not everything & client:
        need.append("REPLICATION CLIENT")
    if "REPLICATION SLAVE" not in everything and "REPLICATION REPLICA" not in everything:
        need.append("REPLICATION SLAVE")
    if need:
        missing["*.*"] = need
    for db in databases:
        scope = grants.get(f"{db}.*", set())
        if not ({"SELECT", "ALL PRIVILEGES"} & (scope | everything)):
            missing[f"{db}.*"] = ["SELECT"]
    return missing


def finding(fid, severity, observed, expected, remediation="", objects=None):
    if severity not in SEVERITIES:
        raise ValueError(f"finding {fid}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    return {"id": fid, "severity": severity, "observed": observed, "expected": expected,
            "remediation": remediation if severity != "info" else "", "objects": list(objects or [])}


def findings(facts: dict, options: dict) -> list[dict]:
    p = f"{facts['flavor']}-check-"
    v = facts["variables"]
    rds = facts.get("rds")
    out = []
    add = out.append

    # --- connection and network -------------------------------------------------------------
    net = facts["network"]
    add(finding("network-port-reachable", "info" if net["reachable"] else "fail",
                f"{net['host']}:{net['port']} "
                + ("reachable" if net["reachable"] else f"not reachable: {net['error']}"),
                "the source's port reachable from the replication instance's network",
                "allow TCP from the DMS replication instance's security group to the source's port"))
    login = facts["login"]
    add(finding("replication-user-login", "info" if login["ok"] else "fail",
                f"{login['user']} " + ("logs in" if login["ok"] else f"cannot log in: {login['error']}"),
                "the replication user of the DMS source endpoint logs in",
                f"create the user (statement under 'Changes to ask for'); "
                f"its password is in secret {login['secret']}"))

    # --- version -------------------------------------------------------------------------------
    ok = supported_version(facts["flavor"], facts["version"])
    add(finding(p + "supported-version", "info" if ok else "warn", facts["version"],
                "a source version in the DMS user guide's list (MySQL 5.5-8.4; MariaDB 10.0.24+, 10.2-10.6, 11.4)",
                "test the full load and CDC on this version first, "
                "or ask which supported version the vendor can offer"))

    # --- binary log -------------------------------------------------------------------------------
    log_bin = _on(v.get("log_bin"))
    observed = f"log_bin={v.get('log_bin')}"
    backups_ok = True
    if rds:
        observed += f", BackupRetentionPeriod={rds['backup_retention_period']}"
        backups_ok = rds["backup_retention_period"] > 0
    add(finding(p + "binlog-enabled", "info" if log_bin and backups_ok else "fail", observed,
                "log_bin=ON" + (", automated backups on (BackupRetentionPeriod > 0)" if rds else ""),
                "turn on automated backups (BackupRetentionPeriod >= 1), which turns on the binary log"
                if rds else "start the server with log_bin (and server_id), e.g. log_bin=mysql-bin in my.cnf"))
    add(finding(p + "binlog-format", "info" if str(v.get("binlog_format")).upper() == "ROW" else "fail",
                f"binlog_format={v.get('binlog_format')}", "binlog_format=ROW",
                "set binlog_format=ROW (parameter group / my.cnf); sessions opened before keep the old format"))
    image = v.get("binlog_row_image")
    add(finding(p + "binlog-image", "info" if image is None or str(image).upper() == "FULL" else "fail",
                f"binlog_row_image={image}", "binlog_row_image=FULL", "set binlog_row_image=FULL"))
    compress_var = "log_bin_compress" if facts["flavor"] == "mariadb" else "binlog_transaction_compression"
    add(finding(p + "binlog-compression", "fail" if _on(v.get(compress_var)) else "info",
                f"{compress_var}={v.get(compress_var)}", f"{compress_var}=OFF", f"set {compress_var}=OFF"))
    old_dms = version_tuple(options["dms_engine_version"]) <= (3, 4, 7)
    checksum = str(v.get("binlog_checksum")).upper()
    add(finding("binlog-checksum", "fail" if old_dms and checksum != "NONE" else "info",
                f"binlog_checksum={checksum} (DMS {options['dms_engine_version']})",
                "binlog_checksum=NONE for DMS 3.4.7 and older; any value for newer engines",
                "set binlog_checksum=NONE, or use DMS 3.5 or newer"))
    server_id = int(v.get("server_id") or 0)
    add(finding(p + "server-id", "info" if server_id >= 1 else "fail", f"server_id={server_id}", "server_id >= 1",
                "set server_id to a positive number unique in the replication topology"))

    # --- retention ------------------------------------------------------------------------------
    need = required_retention_hours(options)
    if rds:
        hours = facts.get("rds_retention_hours")
        fid = p + "binlog-retention-time"
        observed = f"binlog retention hours={'NULL' if hours is None else hours}"
        if facts.get("rds_retention_error"):
            observed += f" ({facts['rds_retention_error']})"
        good = log_bin and hours is not None and need <= hours
        remediation = f"CALL {retention_call(need)}"
        if need > RDS_MAX_RETENTION_HOURS:
            remediation += f"; RDS keeps at most {RDS_MAX_RETENTION_HOURS} h: shorten the full load"
        add(finding(fid, "info" if good else "fail", observed,
                    f">= {need} h (full load {options['expected_full_load_hours']} h + catch-up "
                    f"{options['catch_up_hours']} h, at least 24 h)", remediation))
    else:
        seconds = int(v.get("binlog_expire_logs_seconds") or 0)
        days = float(v.get("expire_logs_days") or 0)
        hours = seconds / 3600 if seconds else days * 24
        forever = not seconds and not days
        good = log_bin and (forever or hours >= need)
        observed = (f"binlog_expire_logs_seconds={seconds}, expire_logs_days={v.get('expire_logs_days')}"
                    + ("" if log_bin else " (the binary log is off: nothing is retained)"))
        add(finding(p + "expire-logs-days", "info" if good else "fail", observed,
                    f"binary logs kept >= {need} h", f"set binlog_expire_logs_seconds={need * 3600}"))

    # --- role ----------------------------------------------------------------------------------
    role = facts.get("replica")
    if role is None:
        add(finding(p + "database-role", "warn", "unknown: neither login may run SHOW SLAVE STATUS",
                    "a primary", "give the admin login SLAVE MONITOR / REPLICATION CLIENT, or check by hand"))
    elif role:
        chained = _on(v.get("log_slave_updates") or v.get("log_replica_updates"))
        add(finding(p + "source-replica", "warn" if chained else "fail",
                    f"replica of {role}; log_slave_updates={v.get('log_slave_updates')}",
                    "a primary, or a replica with log_slave_updates=ON",
                    "point DMS at the primary, or set log_slave_updates=ON on this replica"))
    else:
        read_only = _on(v.get("read_only")) or _on(v.get("innodb_read_only"))
        add(finding(p + "database-role", "warn" if read_only else "info",
                    f"primary; read_only={v.get('read_only')}", "a writable primary",
                    "a read-only primary does not write the changes DMS is to capture: check the endpoint"))

    # --- grants ----------------------------------------------------------------------------------
    if login["ok"]:
        missing = missing_grants(parse_grants(facts["grants"]), options["databases"])
        add(finding(p + "replication-privileges", "fail" if "*.*" in missing else "info",
                    "; ".join(facts["grants"]) or "no grants",
                    "REPLICATION CLIENT (BINLOG MONITOR on MariaDB >= 10.5.2) and REPLICATION SLAVE ON *.*",
                    "grant the missing privileges (statement under 'Changes to ask for')", missing.get("*.*", [])))
        selects = [scope for scope in missing if scope != "*.*"]
        add(finding(p + "select-privileges", "fail" if selects else "info",
                    f"SELECT missing on {', '.join(selects)}" if selects else "SELECT on every database",
                    f"SELECT on {', '.join(d + '.*' for d in options['databases'])}",
                    "grant SELECT (statement under 'Changes to ask for')", selects))

    # --- schema shape ------------------------------------------------------------------------------
    tables = facts["tables"]
    keyless = [t["name"] for t in tables if not t["has_key"]]
    add(finding("table-with-no-primary-key-or-unique-constraint", "warn" if keyless else "info",
                f"{len(keyless)} table(s) without a primary key or NOT NULL unique key", "none",
                "add a primary key (or a NOT NULL unique key): without one DMS scans the whole table for each change, "
                "may apply duplicates and cannot validate the table", keyless))
    lobs = facts["lob_columns"]
    lob_keyless = sorted({c["table"] for c in lobs if c["table"] in keyless})
    add(finding("table-with-lob-but-without-primary-key-or-unique-constraint", "fail" if lob_keyless else "info",
                f"{len(lob_keyless)} table(s) with LOB columns and no key", "none",
                "add a primary key: DMS cannot replicate LOB columns of a table without one", lob_keyless))
    limit = options["lob_max_size_kb"] * 1024
    over = [c for c in lobs if (c.get("max_length") or 0) > limit]
    add(finding("lob-truncation", "warn" if over else "info",
                "; ".join(f"{c['table']}.{c['column']} {c['type']} largest {c.get('max_length')} bytes"
                          for c in lobs)
                or "no LOB columns",
                f"largest LOB value <= LobMaxSize {options['lob_max_size_kb']} KB "
                "(longer values are truncated silently in limited LOB mode)",
                "use full LOB mode for these columns, or set LobMaxSize (KB) above the largest value",
                [f"{c['table']}.{c['column']}" for c in over]))
    packet = int(v.get("max_allowed_packet") or 0)
    too_big = [c for c in lobs if (c.get("max_length") or 0) > packet]
    add(finding(p + "max-allowed-packet-lob", "fail" if too_big else "info",
                f"max_allowed_packet={packet}", "max_allowed_packet above the largest LOB value",
                "raise max_allowed_packet", [f"{c['table']}.{c['column']}" for c in too_big]))
    not_null = [f"{c['table']}.{c['column']}" for c in lobs if not c["nullable"]]
    add(finding("full-lob-not-nullable-at-target", "warn" if not_null else "info",
                f"{len(not_null)} NOT NULL LOB column(s)", "LOB columns nullable on the target",
                "create these columns nullable on the target (full LOB mode inserts NULL first, then the value)",
                not_null))
    odd = [t["name"] for t in tables if (t["engine"] or "").upper() != "INNODB"]
    add(finding(p + "table-storage-engine", "warn" if odd else "info", f"{len(odd)} non-InnoDB table(s)",
                "InnoDB tables", "convert to InnoDB: other engines are not transactional for CDC", odd))
    for key, what in (("generated_columns", "generated-columns"), ("invisible_columns", "invisible-columns")):
        cols = facts[key]
        add(finding(p + what, "warn" if cols else "info", f"{len(cols)} {what.replace('-', ' ')}", "none",
                    "exclude these columns in the table mapping or recreate them on the target", cols))
    add(finding(p + "cascade-constraints", "warn" if facts["cascading_fks"] else "info",
                f"{len(facts['cascading_fks'])} cascading foreign key(s)",
                "none",
                "cascaded changes are not in the binary log as their own rows: drop or disable the target's "
                "cascading keys and let DMS apply the source's rows", facts["cascading_fks"]))
    add(finding(p + "table-partition", "warn" if facts["partitioned"] else "info",
                f"{len(facts['partitioned'])} partitioned table(s)", "none",
                "create the partitions on the target yourself; partition DDL is not replicated", facts["partitioned"]))
    add(finding("source-triggers", "warn" if facts["triggers"] else "info",
                f"{len(facts['triggers'])} trigger(s)", "none active on the target until the cutover",
                "create the triggers on the target only at the cutover: DMS replicates the rows they wrote, "
                "an active target trigger writes them a second time", facts["triggers"]))
    add(finding("source-views", "info", f"{len(facts['views'])} view(s)", "recreated on the target by hand",
                "", facts["views"]))
    add(finding("source-routines", "info", f"{len(facts['routines'])} routine(s)", "recreated on the target by hand",
                "", facts["routines"]))
    unsupported = [c for c in facts["typed_columns"] if c["type"] in SPATIAL_TYPES]
    add(finding("unsupported-data-types-in-source", "warn" if unsupported else "info",
                f"{len(unsupported)} spatial column(s)", "none", "spatial values arrive as BLOB: transform them",
                [f"{c['table']}.{c['column']}" for c in unsupported]))

    # --- time zone, dates, character sets, timeouts ---------------------------------------------
    zone = v.get("time_zone")
    effective = v.get("system_time_zone") if str(zone).upper() == "SYSTEM" else zone
    utc = str(effective).upper() in ("UTC", "+00:00", "GMT", "ETC/UTC", "Z")
    stamps = facts["timestamp_columns"]
    add(finding("timestamp-time-zone", "warn" if stamps and not utc else "info",
                f"time_zone={zone} (effective {effective}); {len(stamps)} TIMESTAMP column(s)",
                "UTC, or the endpoint's ServerTimezone set and tested",
                f"set ServerTimezone={effective} on the source endpoint and compare a TIMESTAMP row "
                "after the full load",
                stamps))
    if options["deep_scan"]:
        zeros = facts.get("zero_dates") or {}
        add(finding("zero-dates", "warn" if zeros else "info",
                    "; ".join(f"{k}: {n}" for k, n in zeros.items()) or "no zero dates", "no zero dates",
                    "zero dates become NULL on the target: fix them on the source or accept NULL", list(zeros)))
    else:
        add(finding("zero-dates", "info", "not scanned (deep_scan=false)", "no zero dates", ""))
    odd_charsets = [f"{c['table']}.{c['column']} ({c['charset']})" for c in facts["charset_columns"]
                    if c["charset"] not in CHARSETS_OK]
    add(finding("character-sets", "warn" if odd_charsets else "info",
                f"{len(odd_charsets)} column(s) in other character sets", f"one of {', '.join(CHARSETS_OK)}",
                "convert the columns or test them: DMS converts through UTF-8", odd_charsets))
    short = [name for name in ("net_read_timeout", "net_write_timeout", "wait_timeout")
             if v.get(name) is not None and int(v[name]) < TIMEOUT_MIN]
    add(finding("source-timeouts", "warn" if short else "info",
                ", ".join(f"{name}={v[name]}" for name in short) or "every timeout >= 300 s",
                f"net_read_timeout, net_write_timeout, wait_timeout >= {TIMEOUT_MIN}",
                f"set them to {TIMEOUT_MIN} (parameter group / my.cnf): a full load of a large table outlives "
                "shorter timeouts", short))
    statement_var = "max_statement_time" if facts["flavor"] == "mariadb" else "max_execution_time"
    limited = float(v.get(statement_var) or 0) > 0
    add(finding(p + "max-statement-time", "warn" if limited else "info", f"{statement_var}={v.get(statement_var)}",
                f"{statement_var}=0", f"set {statement_var}=0: the full load's SELECTs run long"))

    # --- AWS API: the parameter group ---------------------------------------------------------------
    if rds:
        group = rds.get("parameters") or {}
        wrong = {name: group.get(name) for name, want in PARAMETERS.items()
                 if group.get(name) is not None and str(group[name]).upper() != want}
        unset = [name for name in PARAMETERS if group.get(name) is None]
        observed = ", ".join(f"{k}={group.get(k)}" for k in PARAMETERS) + f" in {rds.get('parameter_group')}"
        add(finding("rds-parameter-group", "fail" if wrong else ("warn" if unset else "info"), observed,
                    ", ".join(f"{k}={w}" for k, w in PARAMETERS.items()) + " in the instance's parameter group",
                    "change the parameter group (see 'Changes to ask for'); a default group must be copied first",
                    sorted(wrong) + unset))
    return out


def summary(found: list[dict]) -> dict:
    counts = {s: sum(1 for f in found if f["severity"] == s) for s in SEVERITIES}
    return {**counts, "ready": counts["fail"] == 0}


def changes(facts: dict, found: list[dict], options: dict) -> dict:
    """The exact changes to ask for: SQL for the source's admin, parameter-group values (RDS) or
    my.cnf lines (self-managed), and the AWS CLI calls."""
    by_id = {f["id"]: f for f in found}
    p = f"{facts['flavor']}-check-"
    v = facts["variables"]
    rds = facts.get("rds")
    user = facts["login"]["user_host"]
    sql, params, cli = [], {}, []

    def failing(fid):
        return fid in by_id and by_id[fid]["severity"] == "fail"

    if failing("replication-user-login"):
        secret = facts["login"]["secret"]
        sql.append(f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY '<password from secret {secret}>';")
    if facts["login"]["ok"]:
        missing = missing_grants(parse_grants(facts["grants"]), options["databases"])
    else:
        missing = {"*.*": ["REPLICATION CLIENT", "REPLICATION SLAVE"],
                   **{f"{d}.*": ["SELECT"] for d in options["databases"]}}
    for scope, privileges in missing.items():
        db, _sep, table = scope.partition(".")
        target = "*.*" if scope == "*.*" else f"{_ident(db)}.{table}"
        sql.append(f"GRANT {', '.join(privileges)} ON {target} TO {user};")
    wanted = {}
    if failing(p + "binlog-format"):
        wanted["binlog_format"] = "ROW"
    if failing(p + "binlog-image"):
        wanted["binlog_row_image"] = "FULL"
    compress_var = "log_bin_compress" if facts["flavor"] == "mariadb" else "binlog_transaction_compression"
    if failing(p + "binlog-compression"):
        wanted[compress_var] = "OFF"
    if failing("binlog-checksum"):
        wanted["binlog_checksum"] = "NONE"
    need = required_retention_hours(options)
    if rds:
        if failing(p + "binlog-retention-time"):
            sql.append(f"CALL {retention_call(need)};")
        group = rds.get("parameters") or {}
        wanted = {**PARAMETERS, **wanted}
        params = {k: w for k, w in wanted.items() if group.get(k) is None or str(group[k]).upper() != w}
        pending = sorted(k for k in wanted if k not in params and k in PARAMETER_CHECKS
                         and failing(p + PARAMETER_CHECKS[k]))
        if pending:
            # The group holds the value already; the server runs another until it is rebooted.
            cli.append(f"aws rds reboot-db-instance --db-instance-identifier {rds['identifier']}"
                       f"  # the parameter group sets {', '.join(pending)}; the server does not run it yet")
        if params:
            cli.append("aws rds modify-db-parameter-group --db-parameter-group-name "
                       f"{rds.get('parameter_group')} --parameters "
                       + " ".join(f"ParameterName={k},ParameterValue={w},ApplyMethod=immediate"
                                  for k, w in params.items()))
        if rds["backup_retention_period"] < 1:
            cli.append(f"aws rds modify-db-instance --db-instance-identifier {rds['identifier']} "
                       "--backup-retention-period 1 --apply-immediately")
    else:
        if failing(p + "expire-logs-days"):
            wanted["binlog_expire_logs_seconds"] = str(need * 3600)
        if failing(p + "binlog-enabled"):
            params["log_bin"] = "mysql-bin"
            if int(v.get("server_id") or 0) < 1:
                params["server_id"] = "2"
        params.update(wanted)
        # Dynamic on a running self-managed server; my.cnf (params) makes them survive a restart.
        for name, value in wanted.items():
            quoted = value if value.isdigit() else quote(value)
            sql.append(f"SET GLOBAL {name} = {quoted};")
    return {"sql": sql, "parameters": params, "aws_cli": cli,
            "my_cnf": [] if rds else [f"{k} = {w}" for k, w in params.items()]}


def markdown(report: dict) -> str:
    src = report["source"]
    s = report["summary"]
    lines = [f"# DMS readiness of {src['endpoint']}", "",
             f"- Source: {src['flavor']} {src['version']}, "
             + (f"RDS instance `{src['rds_identifier']}`" if src["rds_identifier"]
                else "self-managed (no RDS instance has this endpoint)"),
             f"- Checked as: `{report['login_user']}`; databases: {', '.join(report['databases'])}"
             + (f"; on {report['checked_on']} (UTC)" if report.get("checked_on") else ""),
             f"- Verdict: **{'ready' if s['ready'] else 'not ready'}** ({s['fail']} missing, {s['warn']} to decide, "
             f"{s['info']} ready)", ""]
    sections = (("fail", "Missing (blocks full load + CDC)"), ("warn", "To decide (risks)"), ("info", "Ready"))
    for severity, title in sections:
        rows = [f for f in report["findings"] if f["severity"] == severity]
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["(none)", ""]
            continue
        lines += ["| check | observed | expected | what to do |", "|---|---|---|---|"]
        for f in rows:
            objects = f" ({', '.join(f['objects'])})" if f["objects"] else ""
            cells = [f"`{f['id']}`", f["observed"] + objects, f["expected"], f["remediation"] or "-"]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        lines.append("")
    ch = report["changes"]
    lines += ["## Changes to ask for", ""]
    if not any(ch.values()):
        lines += ["(none)", ""]
    if ch["parameters"] and src["rds_identifier"]:
        lines += ["Parameter group values:", "", "| parameter | value |", "|---|---|"]
        lines += [f"| `{k}` | `{w}` |" for k, w in ch["parameters"].items()] + [""]
    if ch["aws_cli"]:
        lines += ["AWS CLI:", "", "```sh", *ch["aws_cli"], "```", ""]
    if ch["sql"]:
        lines += ["SQL, run by the source's administrator:", "", "```sql", *ch["sql"], "```", ""]
    if ch["my_cnf"]:
        lines += ["my.cnf (`[mysqld]`), so that the settings survive a restart:", "",
                  "```ini", *ch["my_cnf"], "```", ""]
    return "\n".join(lines)


def as_json(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
