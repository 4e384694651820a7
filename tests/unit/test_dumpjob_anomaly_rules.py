"""dumpjob's anomaly check as a pure function: this run's raw bytes and rows per table against
the previous published manifest, with the default and with configured limits; and how that
manifest is found (moto in process)."""

from __future__ import annotations

from dumpjob.anomaly import RAW, AnomalyLimits, compare

PREVIOUS = {"url": "s3://b/dumps/basis_20260114.sql.gz", "date": "2026-01-14", "run_id": "r1",
            "raw_bytes": 1000, "tables": {"contracts": 100, "tenants": 40, "rooms": 10, "empty": 0}}
SAME_TABLES = {"contracts": 100, "tenants": 40, "rooms": 10, "empty": 0}
DEFAULT = AnomalyLimits()


def test_nothing_to_compare_with_is_no_anomaly():
    result = compare(None, 10, {"t": 1}, DEFAULT)
    assert not result.anomalous and result.previous is None
    assert result.describe() == "no earlier published dump of the job to compare with"
    assert result.record() == {"anomalous": False, "previous": None, "tables": [], "findings": []}


def test_a_dump_within_the_limits_is_no_anomaly():
    # 20 % fewer bytes and 50 % fewer rows are the limits themselves: not beyond them
    result = compare(PREVIOUS, 800, {**SAME_TABLES, "contracts": 50}, DEFAULT)
    assert not result.anomalous
    assert result.describe() == "within the limits against the dump of 2026-01-14 (s3://b/dumps/basis_20260114.sql.gz)"
    grown = compare(PREVIOUS, 5000, {**SAME_TABLES, "new_table": 7}, DEFAULT)
    assert not grown.anomalous


def test_a_table_with_60_percent_fewer_rows_is_named():
    result = compare(PREVIOUS, 900, {**SAME_TABLES, "contracts": 40}, DEFAULT)
    assert result.anomalous and result.tables == ["contracts"]
    assert "table contracts has 40 rows, 60 % fewer than 100 (limit 50 %)" in result.describe()
    assert result.record()["findings"] == [{"what": "contracts", "before": 100, "after": 40, "drop_percent": 60.0,
                                            "limit_percent": 50.0}]
    assert result.previous == {"url": PREVIOUS["url"], "date": "2026-01-14", "run_id": "r1"}


def test_raw_bytes_a_gone_table_and_an_emptied_table_each_count():
    tables = {"contracts": 100, "tenants": 0, "empty": 0}  # rooms gone, tenants emptied
    result = compare(PREVIOUS, 700, tables, DEFAULT)
    assert [f.what for f in result.findings] == [RAW, "rooms", "tenants"]
    assert result.tables == ["rooms", "tenants"]
    text = result.describe()
    assert "the dump has 700 bytes, 30 % fewer than 1000 (limit 20 %)" in text
    assert "table rooms is gone (it had 10 rows)" in text
    assert "table tenants has 0 rows, 100 % fewer than 40" in text


def test_limits_are_configurable():
    tables = {"contracts": 70, "tenants": 40, "empty": 0}
    loose = AnomalyLimits(raw_bytes_drop_percent=50, table_rows_drop_percent=80, table_gone=False)
    assert not compare(PREVIOUS, 600, tables, loose).anomalous
    strict = AnomalyLimits(raw_bytes_drop_percent=5, table_rows_drop_percent=25)
    assert [f.what for f in compare(PREVIOUS, 900, tables, strict).findings] == [RAW, "contracts", "rooms"]


def test_a_query_jobs_single_section_is_compared_by_rows():
    previous = {"url": "s3://b/q.csv.gz", "date": "2026-01-14", "raw_bytes": 100, "tables": {"(query)": 1000}}
    assert compare(previous, 95, {"(query)": 300}, DEFAULT).tables == ["(query)"]


def test_a_manifest_without_sizes_compares_what_it_has():
    previous = {"url": "s3://b/k", "date": "2026-01-14", "tables": {"t": "many"}}
    assert not compare(previous, 1, {}, DEFAULT).anomalous


def test_the_previous_dump_is_the_newest_published_manifest_of_the_lookback(aws_in_process):
    """History: the run's own day first, then the days before; a manifest whose run never published
    (no object, or another run's object at the key) or that is no JSON is passed over; S3 in
    process (moto)."""
    import io
    from datetime import datetime

    import boto3

    from dumpjob import config, manifest
    from dumpjob.log import Logger
    from dumpjob.retry import RetryPolicy
    from dumpjob.run import History

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="jram-gghouse", CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    job = config.parse({"jobs": {"basis": {
        "kind": "mysqldump", "secret_id": "s", "bucket": "jram-gghouse", "databases": ["basis"],
        "key": "dumps/basis_{date:%Y%m%d}.sql.gz"}}}).jobs["basis"]

    def dump(day: str, run: str, object_run: str | None, seconds: float = 10.0) -> None:
        key = f"dumps/basis_{day}.sql.gz"
        if object_run is not None:
            s3.put_object(Bucket="jram-gghouse", Key=key, Body=b"x", Metadata={manifest.RUN_METADATA: object_run})
        manifest.put(s3, "jram-gghouse", key, {"format": 2, "run_id": run, "date": day, "seconds": seconds,
                                                "url": f"s3://jram-gghouse/{key}", "raw_bytes": 1, "tables": {}})

    dump("20260310", "never", None)             # the run's own day: its run died before publishing
    dump("20260309", "lost", "someone-else")    # the object at the key is another run's
    dump("20260308", "good", "good", 40.0)
    dump("20260305", "older", "older", 100.0)
    dump("20260301", "too-old", "too-old")      # 9 days back: beyond the lookback
    s3.put_object(Bucket="jram-gghouse", Key="dumps/basis_20260307.sql.gz.manifest.json", Body=b"not json")

    history = History(job, datetime(2026, 3, 10, 5, 30), parallel=False)
    assert history.keys[0] == "dumps/basis_20260310.sql.gz" and len(history.keys) == 9
    found = history.manifests(s3)
    assert [doc["run_id"] for doc in found] == ["good", "older"]
    assert history.previous(s3)["run_id"] == "good"
    # the retries' estimate: 1.5 x the longest of the published runs found
    assert history.attempt_seconds(s3, RetryPolicy(), Logger(stream=io.StringIO())) == 150
