"""The pure logic of the DMS validation (plugins/module_utils/dms_validation.py and
dms_validation_ledger.py): the digest is dumpjob compare's, ranges and keys, differences, verdicts,
the ledger's day verdicts and gate. The servers' side runs in tests/integration/test_dms_validate.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import dms_validation as v
from ansible_collections.jram.dumphost.plugins.module_utils import dms_validation_ledger as ledger
from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError, LedgerError

from dumpjob.digest import Section


def test_the_digest_is_dumpjobs_multiset_digest():
    rows = [f"row {i}".encode() for i in range(50)] + [b"row 7"]  # a duplicate counts twice
    section = Section("t", "table")
    for row in rows:
        section.add_row(row)
    hashes = [hashlib.sha256(r).hexdigest() for r in rows]
    assert v.multiset_digest(hashes) == section.summary()["content_sha256"]
    assert v.multiset_digest(reversed(hashes)) == v.multiset_digest(hashes)  # order-independent


def test_slice_sums_fold_into_the_same_digest():
    rng = random.Random(4)
    hashes = ["f" * 64, "f" * 64] + [f"{rng.getrandbits(256):064x}" for _ in range(200)]  # wraps modulo 2^256
    slices = [sum(int(h[16 * i:16 * i + 16], 16) for h in hashes) for i in range(4)]
    assert v.combine(slices) == v.multiset_digest(hashes)
    assert v.combine([None] * 4) == "0" * 64  # SUM over no row is NULL
    a, b = hashes[:100], hashes[100:]
    assert v.add_digests(v.multiset_digest(a), v.multiset_digest(b)) == v.multiset_digest(hashes)


def test_row_text_renders_each_type_and_null():
    assert v.column_text("body", "MEDIUMBLOB") == "IFNULL(CONCAT(CHAR_LENGTH(HEX(`body`)), ':', HEX(`body`)), 'N')"
    assert "CONVERT(`name` USING utf8mb4)" in v.column_text("name", "varchar")
    assert "CAST(`paid_on` AS CHAR)" in v.column_text("paid_on", "date")
    assert v.ident("we`ird") == "`we``ird`"
    assert v.row_hash_sql([("id", "int"), ("n", "text")]).startswith("SHA2(CONCAT(IFNULL(CONCAT(CHAR_LENGTH(CAST(`id`")
    with pytest.raises(v.ValidationError):
        v.row_hash_sql([])


def test_key_ranges():
    assert v.range_where(["id"], None, None) == ("", [])
    assert v.range_where(["id"], (5,), (9,)) == (" WHERE `id` > %s AND `id` <= %s", [5, 9])
    where, args = v.range_where(["a", "b"], (1, "x"), None, ("logged_at", "2026-11-30"))
    assert where == " WHERE (`a`, `b`) > (%s, %s) AND `logged_at` <= %s" and args == [1, "x", "2026-11-30"]
    assert v.order_by(["a", "b"]) == " ORDER BY `a`, `b`"
    sql = v.digest_sql("`basis`.`t`", "SHA2('x', 256)", " WHERE `id` > %s")
    assert sql.count("SUM(CAST(CONV(SUBSTRING(h, ") == 4 and sql.endswith("FROM `basis`.`t` WHERE `id` > %s) AS r")


def test_column_sets():
    src = [("id", "int", "int(10) unsigned"), ("name", "varchar", "varchar(50)"), ("gone", "text", "text")]
    tgt = [("ID", "int", "int unsigned"), ("name", "varchar", "varchar(50)"), ("added", "int", "int(11)")]
    found = v.compare_columns(src, tgt)
    assert found == {"missing_on_target": ["gone"], "extra_on_target": ["added"],
                     "type_differs": ["id: int(10) unsigned -> int unsigned"],
                     "common": [("id", "int"), ("name", "varchar")]}


def test_keyed_differences_name_keys_never_values():
    src = {(1,): "a", (2,): "b", (3,): "c", (4,): "d", (b"\x01",): "e"}
    tgt = {(1,): "a", (2,): "B", (4,): "d", (9,): "z", (10,): "y", (b"\x01",): "E"}
    found = v.diff_keyed(src, tgt, limit=1)
    assert found["counts"] == {"changed": 2, "missing_on_target": 1, "extra_on_target": 2}
    assert found["samples"] == {"changed": [2], "missing_on_target": [3], "extra_on_target": [9]}
    assert v.sample((1, dt.date(2026, 11, 30), b"\xff")) == [1, "2026-11-30", "0xff"]


def test_keyless_differences_by_merging_sorted_hashes():
    assert v.diff_sorted(["a", "b", "b", "c"], ["a", "b", "c"]) == {
        "changed": None, "missing_on_target": 1, "extra_on_target": 0}
    # a changed row: one missing, one extra
    assert v.diff_sorted(["a", "c", "e"], ["a", "d", "e"]) == {
        "changed": None, "missing_on_target": 1, "extra_on_target": 1}
    assert v.diff_sorted([], ["x", "y"])["extra_on_target"] == 2
    assert v.diff_sorted(iter(["a"]), iter([]))["missing_on_target"] == 1


def entry(name, **kw):
    base = {"table": name, "method": "key", "source_rows": 3, "target_rows": 3, "source_digest": "0" * 64,
            "target_digest": "0" * 64, "changed": 0, "missing_on_target": 0, "extra_on_target": 0,
            "columns": {"missing_on_target": [], "extra_on_target": [], "type_differs": []}}
    base.update(kw)
    base["verdict"] = v.table_verdict(base)
    return base


def test_verdicts_summary_and_ledger_details():
    same = entry("basis.a")
    rows = entry("basis.b", target_rows=2, missing_on_target=1, target_digest="1" * 64)
    digest_only = entry("basis.c", changed=1, target_digest="2" * 64)
    cols = entry("basis.d", columns={"missing_on_target": [], "extra_on_target": ["x"], "type_differs": []})
    missing = entry("basis.e", missing=True)
    extra = entry("basis.f", extra=True)
    assert [t["verdict"] for t in (same, rows, digest_only, cols, missing, extra)] == [
        "identical", "rows_differ", "rows_differ", "columns_differ", "missing_table", "extra_table"]
    assert v.overall([same]) == "identical" and v.overall([same, cols]) == "different"
    assert v.summary([same, rows, cols]) == {"tables": 3, "identical": 1, "rows_differ": 1, "columns_differ": 1,
                                             "missing_table": 0, "extra_table": 0}
    rows["sample_keys"] = {"changed": [], "missing_on_target": [42], "extra_on_target": []}
    details = v.ledger_details([same, rows, cols])
    assert details["tables"]["basis.a"] == {"verdict": "identical"}
    assert details["tables"]["basis.b"] == {"verdict": "rows_differ", "changed": 0, "missing_on_target": 1,
                                            "extra_on_target": 0, "columns_missing_on_target": [],
                                            "columns_extra_on_target": []}
    assert "42" not in json.dumps(details)  # no key value in the ledger
    assert v.line(rows) == "basis.b: rows differ (key, 3 source rows, 2 target rows; 0 changed, 1 missing on target, " \
                           "0 extra on target)"
    assert v.line({"table": "basis.f", "verdict": "extra_table"}) == "basis.f: extra table"


def test_chunk_rows_must_be_positive():
    with pytest.raises(v.ValidationError, match="chunk_rows must be 1 or more"):
        v.Comparison(None, None, chunk_rows=0)


WHEN = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)


def test_ledger_records_a_day_once_and_a_new_result_supersedes():
    doc = ledger.empty()
    first = ledger.record(doc, "2026-11-30", "identical", {"tables": {"basis.a": {"verdict": "identical"}}}, WHEN)
    assert first == {"date": "2026-11-30", "verdict": "identical", "recorded_at": "2026-11-30T12:00:00Z",
                     "details": {"tables": {"basis.a": {"verdict": "identical"}}}}
    assert ledger.record(doc, "2026-11-30", "identical", {"tables": {"basis.a": {"verdict": "identical"}}}) is None
    assert ledger.record(doc, "2026-11-30", "different", {"tables": {}}, WHEN) is not None
    assert ledger.by_date(doc)["2026-11-30"]["verdict"] == "different" and len(doc["verdicts"]) == 2
    with pytest.raises(InvalidOptionError, match="not a YYYY-MM-DD calendar date"):
        ledger.record(doc, "2026-02-30", "identical")
    with pytest.raises(InvalidOptionError, match="is not one of identical, different, incomplete"):
        ledger.record(doc, "2026-11-30", "equivalent")


def test_streak_and_gate():
    doc = ledger.empty()
    assert ledger.gate(doc, 3)["problems"][-1].startswith("no verdict recorded yet")
    for day, verdict in (("2026-11-25", "identical"), ("2026-11-26", "different"), ("2026-11-27", "identical"),
                         ("2026-11-28", "identical"), ("2026-11-30", "identical")):
        ledger.record(doc, day, verdict, {}, WHEN)
    assert ledger.streak(doc) == ["2026-11-30"]  # the 29th has no verdict: the run starts again
    ledger.record(doc, "2026-11-29", "identical", {}, WHEN)
    assert ledger.streak(doc) == ["2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"]
    assert ledger.gate(doc, 4, "2026-12-01") == {
        "open": True, "problems": [], "consecutive_identical_days": ledger.streak(doc),
        "latest": {"date": "2026-11-30", "verdict": "identical"}}
    closed = ledger.gate(doc, 5, "2026-12-03")
    assert closed["open"] is False and closed["problems"] == [
        "4 consecutive identical day(s), 5 needed",
        "the latest verdict is of 2026-11-30, 3 days old: run playbooks/dms_validate.yml"]
    assert ledger.month_ends(ledger.streak(doc)) == ["2026-11-30"]
    assert ledger.gate(doc, 4, "2026-12-01", month_end=True)["open"] is True
    ledger.record(doc, "2026-11-30", "different", {}, WHEN)
    assert ledger.streak(doc) == []
    ledger.record(doc, "2026-12-01", "identical", {}, WHEN)
    assert ledger.gate(doc, 1, "2026-12-01", month_end=True)["problems"] == [
        "no month end among the consecutive identical days"]
    assert ledger.month_ends(["2028-02-28", "2028-02-29", "2026-12-31", "2026-12-30"]) == ["2028-02-29", "2026-12-31"]


def test_ledger_file_shape(tmp_path):
    path = tmp_path / "dms_validation.json"
    assert ledger.load(str(path)) == ledger.empty()
    path.write_text("{not json")
    with pytest.raises(LedgerError, match="is not valid JSON"):
        ledger.load(str(path))
    path.write_text(json.dumps({"version": 1, "jobs": {}}))
    with pytest.raises(LedgerError, match="is not a DMS validation ledger"):
        ledger.load(str(path))
    path.write_text(json.dumps({"version": 2, "verdicts": []}))
    with pytest.raises(LedgerError, match="upgrade the collection"):
        ledger.load(str(path))
    path.write_text(json.dumps({"version": 1, "verdicts": [{"date": "2026-11-30", "verdict": "maybe"}]}))
    with pytest.raises(LedgerError, match="an entry is malformed"):
        ledger.load(str(path))
