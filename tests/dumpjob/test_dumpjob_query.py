"""The `query` kind: a SELECT streamed to RFC 4180 CSV that MariaDB's own LOAD DATA reads back
exactly (quotes, commas, line breaks, NULL versus the string 'NULL', Japanese, binary)."""

from __future__ import annotations

import csv
import gzip
import io
import subprocess

import pytest
from dumpjob_testbed import assert_failed, dumpjob

BUCKET = "jram-gghouse"
VALUES = {
    1: "plain", 2: 'He said "hi"', 3: "a,b,c", 4: "line1\nline2", 5: "crlf\r\nend", 6: None, 7: "", 8: "NULL",
    9: "日本語テキスト 🐈", 10: " padded ", 11: "back\\slash", 12: '"', 13: "comma, \"quote\" and\nbreak",
}


@pytest.fixture
def csvdb(sandbox, uid):
    name = f"dj_csv_{uid}"
    rows = []
    for i, text in VALUES.items():
        s = "NULL" if text is None else "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace(
            "\n", "\\n").replace("\r", "\\r") + "'"
        n = "NULL" if i % 4 == 0 else str(i * 1000 - 7)
        d = "NULL" if i % 5 == 0 else f"'2026-01-{i:02d} 03:04:05.678'"
        b = "NULL" if i % 3 == 0 else f"X'00{i:02x}ff'"
        rows.append(f"({i}, {s}, {n}, {d}, {b})")
    sandbox.sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4;"
                f"CREATE TABLE `{name}`.t (id INT PRIMARY KEY, s VARCHAR(100) NULL, n INT NULL, d DATETIME(3) NULL,"
                f" b VARBINARY(10) NULL);"
                f"CREATE TABLE `{name}`.t2 LIKE `{name}`.t;"
                f"INSERT INTO `{name}`.t VALUES {', '.join(rows)};")
    yield name
    sandbox.sql(f"DROP DATABASE IF EXISTS `{name}`")


def test_csv_round_trips_through_load_data(sandbox, s3, env, jobfile, make_secret, prefix, csvdb, tmp_path):
    secret = make_secret()
    config = jobfile({"export": {"kind": "query", "secret_id": secret, "database": csvdb,
                                 "query": "SELECT id, s, n, d, b FROM t ORDER BY id",
                                 "key": f"{prefix}/export_{{date:%Y%m%d}}.csv.gz", "min_rows": 1}})
    result = dumpjob("run", "export", "--config", config, "--date", "2026-03-01", "--json", env=env)
    assert result.code == 0, result.stderr
    assert result.json["rows"] == len(VALUES)
    key = f"{prefix}/export_20260301.csv.gz"
    data = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert data.startswith(b"id,s,n,d,b\r\n") and data.endswith(b"\r\n")

    # An independent RFC 4180 reader sees the header, every value, and NULL only where it was NULL.
    records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert records[0] == ["id", "s", "n", "d", "b"]
    by_id = {int(r[0]): r for r in records[1:]}
    assert len(by_id) == len(VALUES)
    for i, text in VALUES.items():
        assert by_id[i][1] == ("NULL" if text is None else text)
    assert by_id[1][4] == "0x0001FF" and by_id[3][4] == "NULL" and by_id[1][3] == "2026-01-01 03:04:05.678"
    assert b',NULL,' in data and b',"NULL",' in data  # the NULL token unquoted, the string 'NULL' quoted

    # MariaDB's LOAD DATA reads the file back into the same rows, NULLs included.
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    load = (f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE t2 CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' "
            "OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\r\\n' IGNORE 1 LINES "
            "(id, s, n, d, @b) SET b = IF(@b = 'NULL', NULL, UNHEX(SUBSTRING(@b, 3)))")
    subprocess.run(["mariadb", "--no-defaults", f"--socket={sandbox.settings.mariadb_socket}", "-uroot",
                    "--local-infile=1", "--default-character-set=utf8mb4", csvdb], input=load.encode(), check=True,
                   capture_output=True)
    assert sandbox.sql("SELECT COUNT(*) FROM t2", csvdb).strip() == str(len(VALUES))
    mismatches = sandbox.sql("SELECT COUNT(*) FROM t JOIN t2 USING (id) WHERE NOT (t.s <=> t2.s) OR "
                             "NOT (t.n <=> t2.n) OR NOT (t.d <=> t2.d) OR NOT (t.b <=> t2.b)", csvdb)
    assert mismatches.strip() == "0"
    assert sandbox.sql("SELECT id FROM t2 WHERE s IS NULL", csvdb).split() == ["6"]
    assert sandbox.sql("SELECT id FROM t2 WHERE s = 'NULL'", csvdb).split() == ["8"]
    assert sandbox.sql("SELECT id FROM t2 WHERE s = ''", csvdb).split() == ["7"]

    verified = dumpjob("verify", f"s3://{BUCKET}/{key}", "--json", env=env)
    assert verified.code == 0, verified.stdout
    assert next(c for c in verified.json["checks"] if c["name"] == "rows")["ok"]


def test_query_failures_publish_nothing(s3, env, jobfile, make_secret, prefix, csvdb):
    secret = make_secret()
    config = jobfile({
        "bad": {"kind": "query", "secret_id": secret, "database": csvdb, "query": "SELECT nope FROM t",
                "key": f"{prefix}/bad_{{date:%Y%m%d}}.csv.gz"},
        "empty": {"kind": "query", "secret_id": secret, "database": csvdb, "query": "SELECT * FROM t WHERE id < 0",
                  "key": f"{prefix}/empty_{{date:%Y%m%d}}.csv.gz", "min_rows": 1},
        "nodb": {"kind": "query", "secret_id": secret, "database": f"{csvdb}_missing", "query": "SELECT 1",
                 "key": f"{prefix}/nodb_{{date:%Y%m%d}}.csv.gz"}})
    assert_failed(dumpjob("run", "bad", "--config", config, env=env), 5, "query failed", "Unknown column")
    assert_failed(dumpjob("run", "empty", "--config", config, env=env), 6, "returned 0 rows", "min_rows")
    assert_failed(dumpjob("run", "nodb", "--config", config, env=env), 5, "does not exist")
    for name in ("bad", "empty", "nodb"):
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/{name}_").get("Contents", [])
        assert not listed
        assert not s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{prefix}/{name}_").get("Uploads")
