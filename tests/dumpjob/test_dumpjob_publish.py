"""The publish invariant: at every instant the object at the day's key is absent, the previous
complete object or the new complete one, and its manifest describes exactly that object or says
nothing. Each fault ends with the key's state checked by `dumpjob verify` (what the cutover's
record_run relies on) and no multipart upload left, after the next run at the latest.

S3 here is the shared moto behind S3Faults, an HTTP proxy that refuses or loses chosen requests;
DUMPJOB_TEST_STOP_AT stops the program (SIGSTOP) at a named step, so that a test can kill -9 or
signal it between two publishing steps."""

from __future__ import annotations

import json
import os
import signal

import pytest
from dumpjob_testbed import Fault, Running, S3Faults, assert_failed, dumpjob, snapshot, stopped

from sandbox import config as sandbox_config

BUCKET = sandbox_config.BUCKET


@pytest.fixture(scope="module")
def faults(sandbox):
    proxy = S3Faults(sandbox.settings.moto_port)
    yield proxy
    proxy.stop()


@pytest.fixture
def job(faults, env, jobfile, make_secret, prefix):
    faults.faults.clear()
    secret = make_secret()
    config = jobfile({"props": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
                                "tables": ["properties", "rooms"], "part_size_mib": 5,
                                "key": f"{prefix}/props_{{date:%Y%m%d}}.sql.gz"}})
    return {"config": config, "env": {**env, "AWS_ENDPOINT_URL_S3": faults.url}, "prefix": prefix}


def _key(job, day: str) -> str:
    return f"{job['prefix']}/props_{day.replace('-', '')}.sql.gz"


def _run(job, day: str, **env):
    return dumpjob("run", "props", "--config", job["config"], "--date", day, "--json", env={**job["env"], **env})


def _verify(job, day: str):
    return dumpjob("verify", f"s3://{BUCKET}/{_key(job, day)}", "--json", env=job["env"])


def _stopped_at(job, day: str, point: str) -> Running:
    """A run stopped (SIGSTOP) at the named publishing step."""
    run = Running("run", "props", "--config", job["config"], "--date", day,
                  env={**job["env"], "DUMPJOB_TEST_STOP_AT": point})
    run.wait_event("test_stop")
    stopped(run.proc.pid)
    return run


def _signalled(run: Running, sig: int):
    """Send a stopped run `sig`, let it go on, and wait for its end."""
    os.kill(run.proc.pid, sig)
    os.kill(run.proc.pid, signal.SIGCONT)
    return run.finish(timeout=30)


def _uploads(s3, job) -> list:
    return s3.list_multipart_uploads(Bucket=BUCKET, Prefix=job["prefix"] + "/").get("Uploads", [])


def _published(s3, job, day: str):
    """(object, manifest) snapshots at the day's key, None where there is none."""
    out = []
    for k in (_key(job, day), _key(job, day) + ".manifest.json"):
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=k).get("Contents", [])
        out.append(snapshot(s3, BUCKET, k) if any(o["Key"] == k for o in listed) else None)
    return tuple(out)


def _same(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and (a.etag, a.body) == (b.etag, b.body))


def test_manifest_write_refused_publishes_nothing_and_keeps_the_previous_dump(s3, faults, job):
    assert _run(job, "2026-04-01").code == 0
    before = _published(s3, job, "2026-04-01")
    faults.faults.append(Fault("PUT", suffix=".manifest.json", times=2))  # one per run
    again = _run(job, "2026-04-01")  # a re-run of the day: the previous dump must stay whole
    assert_failed(again, 7, "writing the manifest", "was denied", "upload aborted, nothing published")
    assert all(_same(a, b) for a, b in zip(_published(s3, job, "2026-04-01"), before))
    assert _verify(job, "2026-04-01").code == 0
    fresh = _run(job, "2026-04-02")  # a new day: nothing at all
    assert_failed(fresh, 7, "writing the manifest", f"s3://{BUCKET}/{_key(job, '2026-04-02')} holds what it held")
    assert _published(s3, job, "2026-04-02") == (None, None)
    assert_failed(_verify(job, "2026-04-02"), 10, "no manifest")
    assert not _uploads(s3, job)


def test_a_lost_complete_answer_is_resolved_by_the_object(s3, faults, job):
    # S3 completes the upload but the answer never arrives; botocore retries and hears NoSuchUpload
    # (what S3 answers once the completed upload is gone).
    faults.faults += [Fault("POST", query="uploadId=", action="lose_answer"),
                      Fault("POST", query="uploadId=", status=404, code="NoSuchUpload")]
    result = _run(job, "2026-04-03")
    assert result.code == 0, result.stderr
    assert [f.hits for f in faults.faults] == [1, 1]
    resolved = result.event("complete_resolved")
    assert resolved and resolved[0]["code"] == "NoSuchUpload"
    assert result.logs[-1]["event"] == "summary"
    assert _verify(job, "2026-04-03").code == 0
    assert not _uploads(s3, job)


def test_a_refused_complete_puts_the_previous_manifest_back(s3, faults, job):
    assert _run(job, "2026-04-04").code == 0
    before = _published(s3, job, "2026-04-04")
    faults.faults.append(Fault("POST", query="uploadId=", times=5))
    result = _run(job, "2026-04-04")
    assert_failed(result, 7, "completing the upload", "upload aborted, nothing published",
                  "and its manifest hold what they held before")
    assert all(_same(a, b) for a, b in zip(_published(s3, job, "2026-04-04"), before))
    assert _verify(job, "2026-04-04").code == 0
    assert not _uploads(s3, job)


# point -> (object at the key, manifest at the key, verify's exit) after kill -9 there, on a new day
KILLED = {
    "streamed": (False, False, 10),
    "manifest_written": (False, True, 10),
    "completed": (True, True, 0),
    "published": (True, True, 0),
}


@pytest.mark.parametrize("point", list(KILLED))
def test_kill_9_between_publishing_steps_leaves_a_state_verify_classifies(s3, job, point):
    day = {"streamed": "2026-04-05", "manifest_written": "2026-04-06", "completed": "2026-04-07",
           "published": "2026-04-08"}[point]
    run = _stopped_at(job, day, point)
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait(timeout=30)
    has_object, has_manifest, verify_code = KILLED[point]
    obj, man = _published(s3, job, day)
    assert (obj is not None, man is not None) == (has_object, has_manifest)
    verified = _verify(job, day)
    assert verified.code == verify_code, verified.stdout + verified.stderr
    if point == "manifest_written":
        assert "never published" in verified.json["error"]
    left = _uploads(s3, job)
    assert bool(left) == (not has_object), left  # killed before completing: the upload is still there
    # the next run of the job (another day) aborts what the dead run left, and publishes
    following = _run(job, "2026-04-20")
    assert following.code == 0, following.stderr
    assert bool(following.event("stale_upload")) == (not has_object)
    assert not _uploads(s3, job)


def test_kill_9_after_the_manifest_of_a_rerun_leaves_the_previous_object_undescribed(s3, job):
    assert _run(job, "2026-04-09").code == 0
    previous_object, _ = _published(s3, job, "2026-04-09")
    run = _stopped_at(job, "2026-04-09", "manifest_written")
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait(timeout=30)
    obj, _ = _published(s3, job, "2026-04-09")
    assert _same(obj, previous_object)  # the key still holds the previous complete object
    verified = _verify(job, "2026-04-09")
    assert verified.code == 10
    run_check = next(c for c in verified.json["checks"] if c["name"] == "run")
    assert not run_check["ok"] and "died between its manifest and its upload" in run_check["reason"]
    assert _run(job, "2026-04-09").code == 0  # the next run of the day publishes a described dump
    assert _verify(job, "2026-04-09").code == 0
    assert not _uploads(s3, job)


def test_sigterm_between_streaming_and_publishing_aborts_at_once(s3, job):
    run = _stopped_at(job, "2026-04-10", "streamed")
    result = _signalled(run, signal.SIGTERM)
    assert_failed(result, 9, "stopped by SIGTERM", "upload aborted, nothing published")
    assert _published(s3, job, "2026-04-10") == (None, None)
    assert not _uploads(s3, job)


def test_sigterm_after_the_manifest_still_aborts_before_the_point_of_no_return(s3, job):
    assert _run(job, "2026-04-11").code == 0
    before = _published(s3, job, "2026-04-11")
    run = _stopped_at(job, "2026-04-11", "manifest_written")
    result = _signalled(run, signal.SIGTERM)
    assert_failed(result, 9, "stopped by SIGTERM", "nothing published", "and its manifest hold what they held before")
    assert all(_same(a, b) for a, b in zip(_published(s3, job, "2026-04-11"), before))
    assert _verify(job, "2026-04-11").code == 0
    assert not _uploads(s3, job)


def test_the_sweep_aborts_only_this_jobs_stale_uploads(s3, job):
    mine = s3.create_multipart_upload(Bucket=BUCKET, Key=_key(job, "2026-03-01"))["UploadId"]
    other_key = f"{job['prefix']}/props_archive_20260301.sql.gz"  # same prefix, another job's template
    other = s3.create_multipart_upload(Bucket=BUCKET, Key=other_key)["UploadId"]
    try:
        result = _run(job, "2026-04-12")
        assert result.code == 0, result.stderr
        assert "aborted 1 incomplete upload(s) of this job" in result.event("stale_upload")[0]["msg"]
        left = {(u["Key"], u["UploadId"]) for u in _uploads(s3, job)}
        assert left == {(other_key, other)} and mine not in {u for _, u in left}
    finally:
        s3.abort_multipart_upload(Bucket=BUCKET, Key=other_key, UploadId=other)


# what another writer leaves at the key while the run is stopped right after completing its upload
REPLACED = {
    "another run's object": lambda run_id: ("an older dumpjob", b"another writer's dump\n"),
    "this run's id but another size": lambda run_id: (run_id, b"short\n"),
}


@pytest.mark.parametrize("case", list(REPLACED))
def test_a_key_that_holds_another_object_fails_with_exit_7_and_is_left_in_place(s3, faults, job, case):
    """The size/run mismatch after completing (once a delete of the object) now fails the run
    loudly and leaves the object alone: the instance role has no s3:DeleteObject on the prefixes."""
    day = {"another run's object": "2026-04-13", "this run's id but another size": "2026-04-14"}[case]
    key = _key(job, day)
    run = _stopped_at(job, day, "completed")
    run_id = json.loads(s3.get_object(Bucket=BUCKET, Key=key + ".manifest.json")["Body"].read())["run_id"]
    writer_run, body = REPLACED[case](run_id)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata={"dumpjob-run": writer_run})
    seen = len(faults.seen)
    os.kill(run.proc.pid, signal.SIGCONT)
    result = run.finish(timeout=60)
    assert_failed(result, 7, f"s3://{BUCKET}/{key}", f"holds {len(body)} bytes of run {writer_run}",
                  "left as it is (dumpjob deletes no dump)", "find what else writes to the key",
                  "then run the job again")
    assert not [r for r in faults.seen[seen:] if r[0] == "DELETE"], faults.seen[seen:]
    obj, man = _published(s3, job, day)
    assert obj is not None and obj.body == body  # the other writer's object, untouched
    assert json.loads(man.body)["run_id"] == run_id  # this run's manifest, which describes nothing there
    assert _verify(job, day).code == 10
    assert not _uploads(s3, job)


# -- the upload's start, in its own thread while the dump begins ---------------------------------
def test_a_run_that_fails_before_the_dump_never_creates_an_upload(s3, faults, job, jobfile, make_secret):
    """The upload's checks start with the run, but CreateMultipartUpload waits for the login: a
    refused login ends the run with the login's error alone, and S3 never saw an upload."""
    secret = make_secret(password="not-the-Password#9")
    config = jobfile({"props": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
                                "tables": ["properties"], "key": f"{job['prefix']}/props_{{date:%Y%m%d}}.sql.gz"}})
    result = dumpjob("run", "props", "--config", config, "--date", "2026-04-20", env=job["env"])
    error = assert_failed(result, 5, "authentication failed")
    assert "upload" not in error["msg"] and not result.event("mysqldump")
    assert not [seen for seen in faults.seen if seen[0] == "POST" and job["prefix"] in seen[1]
                and seen[1].endswith("?uploads")]
    assert not _uploads(s3, job)


def test_a_refused_upload_start_stops_the_dump(s3, faults, job):
    """CreateMultipartUpload refused while the dump has begun: exit 7 naming the refusal,
    mysqldump stopped, nothing published and no upload left."""
    faults.faults.append(Fault("POST", query="uploads", times=10))
    result = _run(job, "2026-04-21")
    assert_failed(result, 7, "starting the upload to", "was denied", "nothing published")
    assert faults.faults[0].hits == 1  # a refusal is not retried
    assert result.event("mysqldump")  # the dump did not wait for the upload
    assert _published(s3, job, "2026-04-21") == (None, None)
    assert not _uploads(s3, job)


def test_parts_wait_for_a_slow_upload_start(s3, faults, job):
    """CreateMultipartUpload answered SlowDown twice (botocore tries again) while the dump streams:
    the parts wait for the upload, and the run publishes a dump verify accepts."""
    faults.faults.append(Fault("POST", query="uploads", status=503, code="SlowDown", times=2))
    result = _run(job, "2026-04-22")
    assert result.code == 0, result.stderr
    assert faults.faults[0].hits == 2
    assert _verify(job, "2026-04-22").code == 0
    assert not _uploads(s3, job)
