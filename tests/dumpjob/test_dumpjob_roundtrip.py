"""A real run against the shared MariaDB and moto: the dump restores, the manifest tells the
truth, verify agrees, and zstd, SSE-KMS, metrics and multi-database jobs work."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import zlib
from datetime import datetime, timedelta, timezone

import pytest
from dumpjob_testbed import assert_failed, dumpjob

from dumpjob.upload import part_size

TABLES = ("access_logs", "contract_status_history", "contracts", "documents", "payments", "properties", "rooms",
          "tenants")


@pytest.fixture
def prefix(s3, uid):
    """A key prefix of this test's own, emptied afterwards."""
    name = f"dumpjob-tests/{uid}"
    yield name
    listed = s3.list_objects_v2(Bucket="jram-gghouse", Prefix=name).get("Contents", [])
    for obj in listed:
        s3.delete_object(Bucket="jram-gghouse", Key=obj["Key"])


@pytest.fixture
def scratch_db(sandbox, uid):
    name = f"dj_rt_{uid}"
    yield name
    sandbox.sql(f"DROP DATABASE IF EXISTS `{name}`")


def _checksums(sandbox, database: str) -> dict[str, str]:
    out = sandbox.sql(f"CHECKSUM TABLE {', '.join(f'`{database}`.`{t}`' for t in TABLES)} EXTENDED")
    return {line.split("\t")[0].split(".", 1)[1]: line.split("\t")[1] for line in out.splitlines()}


def test_dump_restores_with_equal_checksums_routines_triggers_and_views(sandbox, s3, env, jobfile, make_secret,
                                                                       prefix, scratch_db):
    secret = make_secret()
    config = jobfile({"basis": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
                                "key": f"{prefix}/dumps/basis_{{date:%Y%m%d}}.sql.gz", "schedule": "30 5 * * *"}})
    result = dumpjob("run", "basis", "--config", config, "--date", "2026-01-15", "--json", env=env)
    assert result.code == 0, result.stderr
    summary = result.json
    key = f"{prefix}/dumps/basis_20260115.sql.gz"
    assert summary["key"] == key and summary["ok"] is True
    assert next(e["event"] for e in result.logs) == "start" and result.logs[-1]["event"] == "summary"
    # the end of the stream is logged before publishing, with the sizes the summary reports
    events = [e["event"] for e in result.logs]
    assert events.index("mysqldump") < events.index("streamed") < events.index("summary")
    (streamed,) = result.event("streamed")
    assert (streamed["raw_bytes"], streamed["compressed_bytes"], streamed["parts"]) == (
        summary["raw_bytes"], summary["compressed_bytes"], summary["parts"])
    assert 0 < streamed["seconds"] <= summary["seconds"]

    body = s3.get_object(Bucket="jram-gghouse", Key=key)["Body"].read()
    dump = subprocess.run(["gunzip", "-c"], input=body, capture_output=True, check=True).stdout
    assert dump.rstrip().splitlines()[-1].startswith(b"-- Dump completed")

    # restore into a fresh database with the real client, then compare table checksums
    sandbox.sql(f"CREATE DATABASE `{scratch_db}` CHARACTER SET utf8mb4")
    subprocess.run(["mariadb", "--no-defaults", f"--socket={sandbox.settings.mariadb_socket}", "-uroot",
                    "--default-character-set=utf8mb4", scratch_db], input=dump, check=True, capture_output=True)
    original, restored = _checksums(sandbox, "basis"), _checksums(sandbox, scratch_db)
    assert set(original) == set(TABLES)
    assert restored == original
    assert "sp_contract_status_counts" in sandbox.sql(
        f"SELECT routine_name FROM information_schema.routines WHERE routine_schema = '{scratch_db}'")
    assert "trg_contracts_status_history" in sandbox.sql(
        f"SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = '{scratch_db}'")
    assert "v_active_contracts" in sandbox.sql(
        f"SELECT table_name FROM information_schema.views WHERE table_schema = '{scratch_db}'")
    assert sandbox.sql(f"SELECT COUNT(*) FROM `{scratch_db}`.v_active_contracts") == \
        sandbox.sql("SELECT COUNT(*) FROM basis.v_active_contracts")

    # the manifest: sizes, checksum, row counts per table, versions, no secret
    doc = json.loads(s3.get_object(Bucket="jram-gghouse", Key=key + ".manifest.json")["Body"].read())
    assert doc["sha256"] == summary["sha256"] and doc["compressed_bytes"] == len(body) == summary["compressed_bytes"]
    assert doc["raw_bytes"] == len(dump)
    for table in TABLES:
        assert doc["tables"][table] == int(sandbox.sql(f"SELECT COUNT(*) FROM basis.`{table}`"))
    assert doc["versions"]["mysqldump"].startswith("mysqldump") and "MariaDB" in doc["versions"]["server"]
    assert doc["flags"][0] == "--defaults-extra-file=<credentials>"
    assert "--single-transaction" in doc["flags"] and "--set-gtid-purged=OFF" not in doc["flags"]
    assert "GgH0use" not in json.dumps(doc)
    head = s3.head_object(Bucket="jram-gghouse", Key=key, ChecksumMode="ENABLED")
    # S3 checked each part's CRC-32 on arrival; the object's is the CRC-32 of the parts' (S3 adds
    # "-<parts>", moto does not)
    sizes = [part_size(n, 8) for n in range(1, summary["parts"])]
    bounds = [sum(sizes[:i]) for i in range(len(sizes) + 1)] + [len(body)]
    crcs = b"".join(zlib.crc32(body[a:b]).to_bytes(4, "big") for a, b in zip(bounds, bounds[1:]))
    assert head["ChecksumCRC32"].split("-")[0] == base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode()
    assert head["ContentType"] == "application/gzip"

    verified = dumpjob("verify", f"s3://jram-gghouse/{key}", "--json", env=env)
    assert verified.code == 0, verified.stdout + verified.stderr
    assert {c["name"] for c in verified.json["checks"]} >= {"sha256", "trailer", "rows", "raw_size"}


def test_verify_fails_on_a_tampered_object(sandbox, s3, env, jobfile, make_secret, prefix):
    secret = make_secret()
    config = jobfile({"basis": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
                                "tables": ["properties"], "key": f"{prefix}/p_{{date:%Y%m%d}}.sql.gz"}})
    assert dumpjob("run", "basis", "--config", config, "--date", "2026-01-16", env=env).code == 0
    key = f"{prefix}/p_20260116.sql.gz"
    dump = gzip.decompress(s3.get_object(Bucket="jram-gghouse", Key=key)["Body"].read())
    s3.put_object(Bucket="jram-gghouse", Key=key, Body=gzip.compress(dump.replace(b"-- Dump completed", b"-- cut")))
    result = dumpjob("verify", f"s3://jram-gghouse/{key}", "--json", env=env)
    assert result.code == 10
    failed = {c["name"] for c in result.json["checks"] if not c["ok"]}
    assert {"run", "sha256", "trailer"} <= failed
    missing = dumpjob("verify", f"s3://jram-gghouse/{prefix}/nothing.sql.gz", env=env)
    assert_failed(missing, 10, "no manifest")


def test_zstd_with_sse_kms(sandbox, s3, env, jobfile, make_secret, prefix):
    kms = sandbox.client("kms")
    key_id = kms.create_key(Description="dumpjob test")["KeyMetadata"]["KeyId"]
    secret = make_secret()
    config = jobfile({"basis": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
                                "key": f"{prefix}/basis_{{date:%Y%m%d}}.sql.zst", "sse_kms_key_id": key_id,
                                "compression": {"type": "zstd", "level": 1}}})
    result = dumpjob("run", "basis", "--config", config, "--date", "2026-01-17", env=env)
    assert result.code == 0, result.stderr
    key = f"{prefix}/basis_20260117.sql.zst"
    head = s3.head_object(Bucket="jram-gghouse", Key=key)
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]
    assert s3.head_object(Bucket="jram-gghouse", Key=key + ".manifest.json")["ServerSideEncryption"] == "aws:kms"
    body = s3.get_object(Bucket="jram-gghouse", Key=key)["Body"].read()
    dump = subprocess.run(["zstd", "-d", "-c"], input=body, capture_output=True, check=True).stdout
    assert b"CREATE TABLE `tenants`" in dump and dump.rstrip().splitlines()[-1].startswith(b"-- Dump completed")
    assert dumpjob("verify", f"s3://jram-gghouse/{key}", env=env).code == 0


def test_metrics_record_success_and_failure(sandbox, env, jobfile, make_secret, prefix, uid):
    namespace = f"DumpJobTest/{uid}"
    secret = make_secret()
    jobs = {"ok": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"], "tables": ["rooms"],
                   "key": f"{prefix}/rooms_{{date:%Y%m%d}}.sql.gz"},
            "broken": {"kind": "mysqldump", "secret_id": f"{secret}-missing", "databases": ["basis"],
                       "key": f"{prefix}/broken_{{date:%Y%m%d}}.sql.gz"}}
    config = jobfile(jobs, metrics_namespace=namespace)
    assert dumpjob("run", "ok", "--config", config, env=env).code == 0
    assert dumpjob("run", "broken", "--config", config, env=env).code == 4
    cw = sandbox.client("cloudwatch")
    now = datetime.now(timezone.utc)

    def stat(job: str, metric: str) -> float:
        points = cw.get_metric_statistics(Namespace=namespace, MetricName=metric, StartTime=now - timedelta(hours=1),
                                          EndTime=now + timedelta(hours=1), Period=3600, Statistics=["Maximum"],
                                          Dimensions=[{"Name": "Job", "Value": job}])["Datapoints"]
        assert points, f"no {metric} datapoint for {job}"
        return points[0]["Maximum"]

    assert stat("ok", "Succeeded") == 1.0 and stat("ok", "Bytes") > 0 and stat("ok", "Seconds") > 0
    assert stat("broken", "Succeeded") == 0.0


def test_several_databases_with_tables_counted_per_database(sandbox, s3, env, jobfile, make_secret, prefix,
                                                              scratch_db):
    sandbox.sql(f"CREATE DATABASE `{scratch_db}`; CREATE TABLE `{scratch_db}`.t (id INT PRIMARY KEY, v TEXT);"
                f"INSERT INTO `{scratch_db}`.t VALUES (1, 'a'), (2, NULL), (3, 'c');")
    secret = make_secret()
    config = jobfile({"two": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis", scratch_db],
                              "key": f"{prefix}/two_{{date:%Y%m%d}}.sql.gz"},
                      "schema": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"], "no_data": True,
                                 "key": f"{prefix}/schema_{{date:%Y%m%d}}.sql.gz"}})
    result = dumpjob("run", "two", "--config", config, "--date", "2026-01-18", "--json", env=env)
    assert result.code == 0, result.stderr
    doc = json.loads(s3.get_object(Bucket="jram-gghouse", Key=f"{prefix}/two_20260118.sql.gz.manifest.json")["Body"]
                     .read())
    assert doc["tables"][f"{scratch_db}.t"] == 3
    assert doc["tables"]["basis.rooms"] == int(sandbox.sql("SELECT COUNT(*) FROM basis.rooms"))
    assert "--databases" in doc["flags"]
    schema = dumpjob("run", "schema", "--config", config, "--date", "2026-01-18", "--json", env=env)
    assert schema.code == 0, schema.stderr
    dump = gzip.decompress(s3.get_object(Bucket="jram-gghouse", Key=f"{prefix}/schema_20260118.sql.gz")["Body"].read())
    assert b"CREATE TABLE `contracts`" in dump and schema.json["rows"] == 0
    assert not [line for line in dump.splitlines() if line.startswith(b"INSERT INTO `")]
