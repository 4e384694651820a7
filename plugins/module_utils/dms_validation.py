# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare the DMS target with the source, table by table, read-only on both.

The content digest is the one `dumpjob compare` keeps per table (src/dumpjob/digest.py): the sum
of each row's SHA-256 modulo 2^256, an order-independent (multiset) digest. Here the servers
compute it: every row becomes one canonical text (per column its length, ``:`` and its value in a
type-independent rendering, ``N`` for NULL), hashed with SHA2(...,256) by the server, and the sum
is read as four sums of 64-bit slices (``SUM`` of ``BIGINT UNSIGNED`` is an exact DECIMAL), which
:func:`combine` folds into the same 256-bit sum. Only counts and digests cross the network.

A table with a primary key (or a NOT NULL unique key) is walked in key order, in chunks of
``chunk_rows`` source rows bounded by key values; a chunk whose count or digest differs is
narrowed to the differing keys by reading (key, row hash) pairs of that range from both sides,
so memory is bounded by the chunk. A table without such a key is compared by its multiset digest
and, when it differs, by a streamed merge of both sides' sorted row hashes: a changed row counts as
one missing and one extra row, and no key can be named.

No row value leaves this module: results carry counts, digests and, for keyed tables, up to
``sample_keys`` key values per kind of difference."""

from __future__ import annotations

import time

MOD = 1 << 256
SLICES = 4
# How a column is rendered in the canonical row text (by the source's DATA_TYPE).
BINARY_TYPES = ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit", "geometry", "point",
                "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection")
TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json")
TABLE_VERDICTS = ("identical", "columns_differ", "rows_differ", "missing_table", "extra_table")
DIFF_KINDS = ("changed", "missing_on_target", "extra_on_target")


class ValidationError(Exception):
    """Bad input or a state that prevents the comparison; the message names the cause and the fix."""


def ident(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"


def table_ref(database: str, table: str) -> str:
    return f"{ident(database)}.{ident(table)}"


def column_text(name: str, data_type: str) -> str:
    """The SQL of one column's part of the canonical row text."""
    column = ident(name)
    data_type = data_type.lower()
    if data_type in BINARY_TYPES:
        value = f"HEX({column})"
    elif data_type in TEXT_TYPES:
        value = f"CONVERT({column} USING utf8mb4)"
    else:
        value = f"CAST({column} AS CHAR)"
    return f"IFNULL(CONCAT(CHAR_LENGTH({value}), ':', {value}), 'N')"


def row_hash_sql(columns: list) -> str:
    """SQL for the SHA-256 (hex) of a row's canonical text; columns are (name, data_type) pairs."""
    if not columns:
        raise ValidationError("no column to compare")
    return "SHA2(CONCAT(" + ", ".join(column_text(n, t) for n, t in columns) + "), 256)"


def digest_sql(ref: str, hash_sql: str, where: str) -> str:
    slices = ", ".join(f"SUM(CAST(CONV(SUBSTRING(h, {1 + 16 * i}, 16), 16, 10) AS UNSIGNED))"
                       for i in range(SLICES))
    return f"SELECT COUNT(*), {slices} FROM (SELECT {hash_sql} AS h FROM {ref}{where}) AS r"  # noqa: S608


def combine(slice_sums) -> str:
    """The 256-bit multiset digest (hex) from the four sums of 64-bit slices of the row hashes."""
    total = 0
    for i, part in enumerate(slice_sums):
        total += int(part or 0) << (64 * (SLICES - 1 - i))
    return f"{total % MOD:064x}"


def multiset_digest(row_hashes) -> str:
    """The same digest from hex row hashes (dumpjob's Section.add_row sum)."""
    return f"{sum(int(h, 16) for h in row_hashes) % MOD:064x}"


def add_digests(a: str, b: str) -> str:
    return f"{(int(a, 16) + int(b, 16)) % MOD:064x}"


def key_condition(key: list, op: str) -> str:
    if len(key) == 1:
        return f"{ident(key[0])} {op} %s"
    return "(" + ", ".join(ident(k) for k in key) + f") {op} (" + ", ".join(["%s"] * len(key)) + ")"


def range_where(key: list, lower, upper, mark=None) -> tuple:
    """(WHERE clause, arguments) of the key range (lower, upper]; None is open. ``mark``: an
    optional (column, value) high-water mark, rows at or below it only."""
    parts, args = [], []
    if lower is not None:
        parts.append(key_condition(key, ">"))
        args += list(lower)
    if upper is not None:
        parts.append(key_condition(key, "<="))
        args += list(upper)
    if mark is not None:
        parts.append(f"{ident(mark[0])} <= %s")
        args.append(mark[1])
    return (" WHERE " + " AND ".join(parts) if parts else ""), args


def order_by(key: list) -> str:
    return " ORDER BY " + ", ".join(ident(k) for k in key)


def plain(value):
    """A key value as JSON can carry it."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if value is None or isinstance(value, (int, str)):
        return value
    return str(value)


def sample(key_values: tuple):
    values = [plain(v) for v in key_values]
    return values[0] if len(values) == 1 else values


def compare_columns(source: list, target: list) -> dict:
    """Column sets of one table. source/target: (name, data_type, column_type) in ordinal order.
    Returns missing/extra column names, the type differences, and the common columns (source order,
    source types) the rows are compared on."""
    target_types = {c[0].lower(): c for c in target}
    source_names = {c[0].lower() for c in source}
    common = [(c[0], c[1]) for c in source if c[0].lower() in target_types]
    return {
        "missing_on_target": [c[0] for c in source if c[0].lower() not in target_types],
        "extra_on_target": [c[0] for c in target if c[0].lower() not in source_names],
        "type_differs": [f"{c[0]}: {c[2]} -> {target_types[c[0].lower()][2]}" for c in source
                         if c[0].lower() in target_types and c[2].lower() != target_types[c[0].lower()][2].lower()],
        "common": common,
    }


def diff_keyed(source: dict, target: dict, limit: int) -> dict:
    """Differences between two {key tuple: row hash} maps of one key range."""
    out = {kind: 0 for kind in DIFF_KINDS}
    samples = {kind: [] for kind in DIFF_KINDS}

    def note(kind, key):
        out[kind] += 1
        if len(samples[kind]) < limit:
            samples[kind].append(sample(key))

    for key, digest in source.items():
        if key not in target:
            note("missing_on_target", key)
        elif target[key] != digest:
            note("changed", key)
    for key in target:
        if key not in source:
            note("extra_on_target", key)
    return {"counts": out, "samples": samples}


def diff_sorted(source, target) -> dict:
    """Missing and extra rows from two streams of row hashes, each sorted ascending (a merge)."""
    missing = extra = 0
    src, tgt = iter(source), iter(target)
    a, b = next(src, None), next(tgt, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a < b):
            missing += 1
            a = next(src, None)
        elif a is None or b < a:
            extra += 1
            b = next(tgt, None)
        else:
            a, b = next(src, None), next(tgt, None)
    return {"changed": None, "missing_on_target": missing, "extra_on_target": extra}


def table_verdict(entry: dict) -> str:
    if entry.get("missing"):
        return "missing_table"
    if entry.get("extra"):
        return "extra_table"
    if entry["source_rows"] != entry["target_rows"] or entry["source_digest"] != entry["target_digest"]:
        return "rows_differ"
    columns = entry["columns"]
    if columns["missing_on_target"] or columns["extra_on_target"]:
        return "columns_differ"
    return "identical"


def overall(tables: list) -> str:
    return "identical" if all(t["verdict"] == "identical" for t in tables) else "different"


def summary(tables: list) -> dict:
    counts = {verdict: 0 for verdict in TABLE_VERDICTS}
    for t in tables:
        counts[t["verdict"]] += 1
    counts["tables"] = len(tables)
    return counts


def ledger_details(tables: list) -> dict:
    """What the day's ledger entry keeps: each table's verdict and, for a differing one, the counts
    and column names - no row value, no key value, no row count (which moves with the source)."""
    details = {"tables": {}}
    for t in tables:
        entry = {"verdict": t["verdict"]}
        if t["verdict"] == "rows_differ":
            entry.update({kind: t.get(kind) for kind in DIFF_KINDS})
        if t["verdict"] in ("rows_differ", "columns_differ"):
            entry["columns_missing_on_target"] = t["columns"]["missing_on_target"]
            entry["columns_extra_on_target"] = t["columns"]["extra_on_target"]
        details["tables"][t["table"]] = entry
    return details


def line(t: dict) -> str:
    """One line per table for an operator; keys, never values."""
    name, verdict = t["table"], t["verdict"]
    if verdict in ("missing_table", "extra_table"):
        return f"{name}: {verdict.replace('_', ' ')}"
    text = (f"{name}: {verdict.replace('_', ' ')} ({t['method']}, {t['source_rows']} source rows, "
            f"{t['target_rows']} target rows")
    if verdict == "rows_differ":
        counts = ", ".join(f"{t[k]} {k.replace('_', ' ')}" for k in DIFF_KINDS if t.get(k) is not None)
        text += f"; {counts}"
    cols = t["columns"]
    if cols["missing_on_target"] or cols["extra_on_target"]:
        text += (f"; columns missing on target: {', '.join(cols['missing_on_target']) or '-'}, extra on target: "
                 f"{', '.join(cols['extra_on_target']) or '-'}")
    return text + ")"


# --- Reading the servers ------------------------------------------------------------------------

def session(conn) -> None:
    """Both sides render TIMESTAMP values in UTC, whatever their time zones."""
    with conn.cursor() as cur:
        cur.execute("SET SESSION time_zone = '+00:00'")


def _rows(conn, query: str, args=None) -> list:
    with conn.cursor() as cur:
        cur.execute(query, args or None)
        return list(cur.fetchall())


def inventory(conn, databases: list) -> dict:
    """{(db, table): {"columns": [(name, data_type, column_type)], "key": [names], "key_kind"}} of
    the base tables (views, which DMS does not copy, are left out)."""
    marks = ", ".join(["%s"] * len(databases))
    args = tuple(databases)
    where = f"WHERE TABLE_SCHEMA IN ({marks})"
    listed = _rows(conn, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "  # noqa: S608
                         f"{where} AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1, 2", args)
    tables = {(db, t): {"columns": [], "key": [], "key_kind": None} for db, t in listed}
    columns = _rows(conn, "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE "  # noqa: S608
                          f"FROM information_schema.COLUMNS {where} ORDER BY 1, 2, ORDINAL_POSITION", args)
    for db, t, name, data_type, column_type in columns:
        if (db, t) in tables:
            tables[(db, t)]["columns"].append((name, data_type, column_type))
    indexes: dict = {}
    unique = _rows(conn, "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME, NULLABLE "  # noqa: S608
                         f"FROM information_schema.STATISTICS {where} AND NON_UNIQUE = 0 "
                         "ORDER BY 1, 2, 3, SEQ_IN_INDEX", args)
    for db, t, index, column, nullable in unique:
        indexes.setdefault((db, t), {}).setdefault(index, []).append((column, nullable == "YES"))
    for table, found in indexes.items():
        if table not in tables:
            continue
        usable = {name: [c[0] for c in cols] for name, cols in found.items() if not any(c[1] for c in cols)}
        if "PRIMARY" in usable:
            tables[table].update(key=usable["PRIMARY"], key_kind="primary")
        elif usable:
            first = sorted(usable)[0]
            tables[table].update(key=usable[first], key_kind=f"unique {first}")
    return tables


class Comparison:
    """One comparison run: two read-only connections and the options (see the module).

    :meth:`table` reads each range of a table once from both sides and keeps the ranges that
    differ; :meth:`finish` then reads those again, ``settle_rechecks`` rounds ``settle_seconds``
    apart for every table at once (CDC may still be applying the last changes: the wait does not
    grow with the number of differing ranges), and narrows what still differs."""

    def __init__(self, source, target, chunk_rows=10000, sample_keys=5, settle_rechecks=2, settle_seconds=15.0,
                 streaming_cursor=None, sleep=time.sleep):
        if chunk_rows < 1:
            raise ValidationError(f"chunk_rows must be 1 or more, got {chunk_rows}")
        self.source, self.target = source, target
        self.chunk_rows = chunk_rows
        self.sample_keys = sample_keys
        self.settle_rechecks = settle_rechecks
        self.settle_seconds = settle_seconds
        self.streaming_cursor = streaming_cursor
        self.sleep = sleep
        self.pending: list = []  # ranges that differ, waiting for finish()

    def _digests(self, sql, args) -> tuple:
        out = []
        for conn in (self.source, self.target):
            row = _rows(conn, sql, args)[0]
            out.append((int(row[0]), combine(row[1:])))
        return tuple(out)

    def high_water(self, ref: str, column: str):
        """How far CDC has got in an append-only table: the target's maximum of the column. Rows
        above it (on the source, not applied yet) are not compared."""
        return _rows(self.target, f"SELECT MAX({ident(column)}) FROM {ref}")[0][0]  # noqa: S608

    def table(self, name, ref, key, columns, mark=None) -> dict:
        hash_sql = row_hash_sql(columns)
        entry = {"table": name, "key": list(key), "method": "key" if key else "multiset",
                 "source_rows": 0, "target_rows": 0, "source_digest": f"{0:064x}", "target_digest": f"{0:064x}",
                 "changed": 0 if key else None, "missing_on_target": 0, "extra_on_target": 0,
                 "sample_keys": {kind: [] for kind in DIFF_KINDS}, "chunks": 0, "differing_chunks": 0,
                 "rechecks": 0, "narrowed": True}
        lower = None
        while True:
            upper = None
            if key:
                where, args = range_where(key, lower, None, mark)
                found = _rows(self.source, f"SELECT {', '.join(ident(k) for k in key)} FROM {ref}{where}"  # noqa: S608
                                           f"{order_by(key)} LIMIT 1 OFFSET {self.chunk_rows - 1}", args)
                upper = tuple(found[0]) if found else None
            where, args = range_where(key, lower, upper, mark)
            sql = digest_sql(ref, hash_sql, where)
            a, b = self._digests(sql, args)
            entry["chunks"] += 1
            if a == b:
                self._account(entry, a, b)
            else:
                self.pending.append({"entry": entry, "ref": ref, "key": list(key), "hash_sql": hash_sql,
                                     "where": where, "args": args, "sql": sql, "digests": (a, b)})
            if upper is None:
                return entry
            lower = upper

    @staticmethod
    def _account(entry, a, b):
        entry["source_rows"] += a[0]
        entry["target_rows"] += b[0]
        entry["source_digest"] = add_digests(entry["source_digest"], a[1])
        entry["target_digest"] = add_digests(entry["target_digest"], b[1])

    def finish(self) -> None:
        """Settle the differing ranges of every table compared, then narrow what still differs."""
        pending = self.pending
        for _round in range(self.settle_rechecks):
            if not pending:
                break
            self.sleep(self.settle_seconds)
            still = []
            for item in pending:
                if item["entry"]["rechecks"] <= _round:
                    item["entry"]["rechecks"] = _round + 1
                a, b = item["digests"] = self._digests(item["sql"], item["args"])
                if a == b:
                    self._account(item["entry"], a, b)
                else:
                    still.append(item)
            pending = still
        for item in pending:
            entry = item["entry"]
            a, b = item["digests"]
            self._account(entry, a, b)
            entry["differing_chunks"] += 1
            if item["key"]:
                self._narrow(entry, item, a[0], b[0])
            else:
                self._merge(entry, item)
        self.pending = []

    def _narrow(self, entry, item, source_rows, target_rows):
        key = item["key"]
        if target_rows > 4 * self.chunk_rows:
            # Too many rows on the target in one range to hold: counts only.
            entry["narrowed"] = False
            entry["missing_on_target"] += max(0, source_rows - target_rows)
            entry["extra_on_target"] += max(0, target_rows - source_rows)
            return
        sql = (f"SELECT {', '.join(ident(k) for k in key)}, {item['hash_sql']} "  # noqa: S608
               f"FROM {item['ref']}{item['where']}")
        n = len(key)
        maps = [{tuple(r[:n]): r[n] for r in _rows(conn, sql, item["args"])} for conn in (self.source, self.target)]
        found = diff_keyed(maps[0], maps[1], self.sample_keys)
        for kind in DIFF_KINDS:
            entry[kind] += found["counts"][kind]
            room = self.sample_keys - len(entry["sample_keys"][kind])
            entry["sample_keys"][kind] += found["samples"][kind][:max(0, room)]

    def _merge(self, entry, item):
        # Sorted by bytes on both servers, whatever the connection's collation: the order Python compares in.
        sql = f"SELECT {item['hash_sql']} AS h FROM {item['ref']}{item['where']} ORDER BY CAST(h AS BINARY)"  # noqa: S608
        cursors = [conn.cursor(self.streaming_cursor) if self.streaming_cursor else conn.cursor()
                   for conn in (self.source, self.target)]
        try:
            for cur in cursors:
                cur.execute(sql, item["args"] or None)
            found = diff_sorted((r[0] for r in cursors[0]), (r[0] for r in cursors[1]))
        finally:
            for cur in cursors:
                cur.close()
        entry.update(found)


def qualified(db: str, table: str) -> str:
    return f"{db}.{table}"


def compare(comparison: Comparison, databases: list, exclude: list, append_only: dict) -> list:
    """Every table of the databases on either side, compared; a list of per-table results."""
    source = inventory(comparison.source, databases)
    target = inventory(comparison.target, databases)
    skip = {name.lower() for name in exclude}
    unknown = [t for t in append_only if "." not in t]
    if unknown:
        raise ValidationError(f"append_only: name tables as database.table, not {', '.join(unknown)}")
    results = []
    for where in sorted(set(source) | set(target)):
        name = qualified(*where)
        if name.lower() in skip or where[1].lower() in skip:
            continue
        empty = {"missing_on_target": [], "extra_on_target": [], "type_differs": []}
        if where not in target or where not in source:
            missing = where not in target
            side = source if missing else target
            entry = {"table": name, "key": [], "method": None, "missing": missing, "extra": not missing,
                     "columns": {**empty, ("missing_on_target" if missing else "extra_on_target"):
                                 [c[0] for c in side[where]["columns"]]}}
            entry["verdict"] = table_verdict(entry)
            del entry["missing"], entry["extra"]
            results.append(entry)
            continue
        columns = compare_columns(source[where]["columns"], target[where]["columns"])
        key = source[where]["key"]
        target_columns = {c[0].lower() for c in target[where]["columns"]}
        if any(k.lower() not in target_columns for k in key):
            key = []  # the key column is not on the target: only the multiset digest can compare
        ref = table_ref(*where)
        mark = None
        if name in append_only:
            column = append_only[name]
            if column.lower() not in target_columns or column not in [c[0] for c in source[where]["columns"]]:
                raise ValidationError(f"append_only: {name} has no column {column} on both sides: name an "
                                      "ever-increasing column (an id or a creation time)")
            value = comparison.high_water(ref, column)
            # An empty target has no mark: everything is compared (and found missing).
            mark = (column, value) if value is not None else None
        entry = comparison.table(name, ref, key, columns.pop("common"), mark)
        entry["key_kind"] = source[where]["key_kind"] if key else None
        entry["columns"] = columns
        entry["high_water"] = {"column": mark[0], "value": plain(mark[1])} if mark else None
        results.append(entry)
    comparison.finish()
    for entry in results:
        if "verdict" not in entry:
            entry["verdict"] = table_verdict(entry)
    return results
