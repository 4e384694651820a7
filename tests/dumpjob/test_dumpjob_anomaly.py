"""A shrunken dump is noticed: 60 % of a table's rows deleted between two runs, against the real
MariaDB (a database of the test's own) and moto. The job that publishes anyway exits 13, names the
table in one log line and puts Anomaly = 1; the job set to refuse publishes nothing and exits 14
saying why."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from dumpjob_testbed import assert_failed, assert_nothing_published, dumpjob

BUCKET = "jram-gghouse"


@pytest.fixture
def shrinking_db(sandbox, uid):
    """A database of the test's own: `items` (1000 rows) and `notes` (20 rows); dropped afterwards."""
    name = f"dj_anom_{uid}"
    sandbox.sql(f"CREATE DATABASE `{name}`")
    sandbox.sql("CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(40) NOT NULL);"
                "INSERT INTO items SELECT seq, CONCAT('item number ', seq) FROM seq_1_to_1000;"
                "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT);"
                "INSERT INTO notes SELECT seq, REPEAT('n', 50) FROM seq_1_to_20;", name)
    yield name
    sandbox.sql(f"DROP DATABASE IF EXISTS `{name}`")


def _metric(sandbox, namespace: str, job: str, name: str) -> tuple[float, float, float]:
    """(lowest, highest, number) of the metric's datapoints of the last hour."""
    now = datetime.now(timezone.utc)
    points = sandbox.client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=[{"Name": "Job", "Value": job}],
        StartTime=now - timedelta(hours=1), EndTime=now + timedelta(hours=1), Period=7200,
        Statistics=["Minimum", "Maximum", "SampleCount"])["Datapoints"]
    assert len(points) == 1, points
    return points[0]["Minimum"], points[0]["Maximum"], points[0]["SampleCount"]


def test_a_table_that_lost_60_percent_of_its_rows_is_an_anomaly(sandbox, s3, env, jobfile, make_secret, prefix, uid,
                                                                shrinking_db):
    namespace = f"DumpJobTest/{uid}"
    secret = make_secret()
    job = {"kind": "mysqldump", "secret_id": secret, "databases": [shrinking_db]}
    config = jobfile({"shrink": {**job, "key": f"{prefix}/shrink_{{date:%Y%m%d}}.sql.gz"},
                      "guarded": {**job, "key": f"{prefix}/guarded_{{date:%Y%m%d}}.sql.gz",
                                  "anomaly": {"action": "refuse"}}},
                     metrics_namespace=namespace)
    for name in ("shrink", "guarded"):
        first = dumpjob("run", name, "--config", config, "--date", "2026-03-01", "--json", env=env)
        assert first.code == 0, first.stderr
        assert first.json["anomaly"] == {"anomalous": False, "previous": None, "tables": [], "findings": []}
        assert not first.event("anomaly")

    sandbox.sql(f"DELETE FROM `{shrinking_db}`.items WHERE id % 5 < 3")  # 600 of the 1000 rows

    second = dumpjob("run", "shrink", "--config", config, "--date", "2026-03-02", "--json", env=env)
    assert second.code == 13, second.stderr
    assert second.json["ok"] is True and second.json["anomaly"]["tables"] == ["items"]
    lines = second.event("anomaly")
    assert len(lines) == 1 and lines[0]["level"] == "warning" and lines[0]["tables"] == ["items"]
    assert "table items has 400 rows, 60 % fewer than 1000 (limit 50 %)" in lines[0]["msg"]
    assert "notes" not in lines[0]["msg"] and not second.errors
    key = f"{prefix}/shrink_20260302.sql.gz"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key + ".manifest.json")["Body"].read())
    assert manifest["tables"]["items"] == 400 and manifest["anomaly"]["tables"] == ["items"]
    assert manifest["anomaly"]["previous"]["date"] == "2026-03-01"
    assert dumpjob("verify", f"s3://{BUCKET}/{key}", env=env).code == 0, "the anomalous dump is published whole"
    assert _metric(sandbox, namespace, "shrink", "Anomaly") == (0.0, 1.0, 2)
    assert _metric(sandbox, namespace, "shrink", "Succeeded") == (1.0, 1.0, 2)

    refused = dumpjob("run", "guarded", "--config", config, "--date", "2026-03-02", "--json", env=env)
    error = assert_failed(refused, 14, "anomaly: smaller than the dump of 2026-03-01",
                          "table items has 400 rows, 60 % fewer than 1000", "not published (anomaly.action: refuse",
                          "upload aborted, nothing published")
    assert error["error"] == "anomaly_refused" and refused.json["exit_code"] == 14
    assert_nothing_published(s3, BUCKET, f"{prefix}/guarded_20260302.sql.gz")
    assert _metric(sandbox, namespace, "guarded", "Anomaly") == (0.0, 1.0, 2)
    assert _metric(sandbox, namespace, "guarded", "Succeeded") == (0.0, 1.0, 2)
    # exactly one object and one manifest per day for each job
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")["Contents"])
    assert listed == [f"{prefix}/{name}_{day}.sql.gz{suffix}" for name, day in
                      (("guarded", "20260301"), ("shrink", "20260301"), ("shrink", "20260302"))
                      for suffix in ("", ".manifest.json")]
