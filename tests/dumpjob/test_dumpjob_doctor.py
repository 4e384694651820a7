"""`doctor`, and AWS credentials from the instance role, on private instances (a private moto and
the project's IMDS emulator): without a profile doctor says the instance has no role; with one,
doctor and a full run work with nothing but the role's credentials from IMDSv2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import boto3
import pytest
from dumpjob_testbed import PrivateMoto, dumpjob, free_port, wait_until, write_config

from sandbox import config as sandbox_config

# The shared sandbox's MariaDB port (SANDBOX_PORT_BASE shifts it).
DB_PORT = sandbox_config.load().mariadb_port

BUCKET = sandbox_config.BUCKET
REGION = sandbox_config.REGION


def _checks(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


@pytest.fixture(scope="module")
def private_aws(sandbox, tmp_path_factory):
    """A private moto with two instances, one with an instance profile (role `dumpjob-host`) and one
    without, each behind its own IMDS emulator of the project (IMDSv2 required), a bucket and a
    secret for the shared MariaDB."""
    moto = PrivateMoto()
    kw = {"endpoint_url": moto.url, "region_name": REGION, "aws_access_key_id": "sandbox",
          "aws_secret_access_key": "sandbox"}
    iam, ec2 = boto3.client("iam", **kw), boto3.client("ec2", **kw)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="dumpjob-host", AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_instance_profile(InstanceProfileName="dumpjob-host")
    iam.add_role_to_instance_profile(InstanceProfileName="dumpjob-host", RoleName="dumpjob-host")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    with_role, without_role = (ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium",
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"})["Instances"][0]["InstanceId"]
        for _ in range(2))
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "dumpjob-host"}, InstanceId=with_role)
    boto3.client("s3", **kw).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    sm = boto3.client("secretsmanager", **kw)
    sm.create_secret(Name="rds/basis", SecretString=json.dumps({
        "host": "127.0.0.1", "port": DB_PORT, "username": sandbox_config.LEGACY_DB_USER,
        "password": sandbox_config.LEGACY_DB_PASSWORD}))
    sm.create_secret(Name="rds/incomplete", SecretString=json.dumps({"host": "127.0.0.1", "username": "x"}))
    processes, imds = [], {}
    try:
        for name, instance in (("role", with_role), ("none", without_role)):
            state = tmp_path_factory.mktemp(f"imds-{name}") / "state.json"
            state.write_text(json.dumps({"instance_id": instance}))
            port = free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "sandbox.imds", "--port", str(port), "--moto-url", moto.url,
                 "--state", str(state)], cwd=sandbox_config.REPO, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
            wait_until(lambda p=port: _answers(p), 30, "the IMDS emulator")
            imds[name] = f"http://127.0.0.1:{port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        base.update(AWS_ENDPOINT_URL=moto.url, AWS_DEFAULT_REGION=REGION, DUMPJOB_NO_SYSLOG="1",
                    AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent")
        yield {"base": base, "imds": imds, "s3": boto3.client("s3", **kw)}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
        moto.stop()


def _answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _config(tmp_path, jobs: dict) -> str:
    (tmp_path / "work").mkdir(exist_ok=True)
    return str(write_config(tmp_path / "jobs.yml", jobs, {"bucket": BUCKET, "lock_dir": str(tmp_path / "lock"),
                                                          "work_dir": str(tmp_path / "work")}))


@pytest.fixture
def limited_user(sandbox, private_aws, uid):
    """A DB user with SELECT on basis only, and its secret `rds/limited` in the private moto."""
    user = f"dj_lim_{uid}"
    sandbox.sql(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'Limited#1'; GRANT SELECT ON basis.* TO '{user}'@'%';")
    sm = boto3.client("secretsmanager", endpoint_url=private_aws["base"]["AWS_ENDPOINT_URL"], region_name=REGION,
                      aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    sm.create_secret(Name=f"rds/limited-{uid}", SecretString=json.dumps(
        {"host": "127.0.0.1", "port": DB_PORT, "username": user, "password": "Limited#1"}))
    yield f"rds/limited-{uid}"
    sandbox.sql(f"DROP USER IF EXISTS '{user}'@'%'")


def test_doctor_on_an_instance_without_role(private_aws, limited_user, tmp_path):
    # static keys in the environment (as on the legacy host), an instance without a profile
    env = {**private_aws["base"], "AWS_EC2_METADATA_SERVICE_ENDPOINT": private_aws["imds"]["none"],
           "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}
    config = _config(tmp_path, {
        "good": {"kind": "mysqldump", "secret_id": "rds/basis", "databases": ["basis"],
                 "key": "dumps/good_{date:%Y%m%d}.sql.gz"},
        "status": {"kind": "query", "secret_id": "rds/basis", "database": "basis", "query": "SELECT id FROM contracts",
                   "key": "dumps/status_{date:%Y%m%d}.csv.gz"},
        "nosecret": {"kind": "mysqldump", "secret_id": "rds/missing", "databases": ["basis"],
                     "key": "dumps/x_{date:%Y%m%d}.sql.gz"},
        "incomplete": {"kind": "mysqldump", "secret_id": "rds/incomplete", "databases": ["basis"],
                       "key": "dumps/y_{date:%Y%m%d}.sql.gz"},
        "noprivs": {"kind": "mysqldump", "secret_id": limited_user, "databases": ["basis"],
                    "key": "dumps/z_{date:%Y%m%d}.sql.gz"},
    })
    result = dumpjob("doctor", "--config", config, "--json", env=env)
    assert result.code == 12
    report = result.json
    host = _checks(report)
    assert not host["instance_role"]["ok"] and "the instance has no IAM role" in host["instance_role"]["reason"]
    assert host["aws_identity"]["ok"] and "environment keys" in host["aws_identity"]["reason"]
    assert host["aws_identity"]["source"] == "env" and "role" not in host["aws_identity"]
    assert "role" not in host["instance_role"]
    jobs = {j["job"]: j for j in report["jobs"]}

    good = _checks(jobs["good"])
    assert jobs["good"]["ok"], good
    assert set(good) == {"config", "compression", "secret", "database", "privileges", "flavour", "bucket:dumps/",
                         "bucket:dumps-test/"}
    # which deflate implementation a run of the job will use (zlib-ng, pinned for the host)
    assert good["compression"]["ok"] and (good["compression"]["codec"], good["compression"]["deflate"]) == ("gzip",
                                                                                                          "zlib-ng")
    assert "gzip through zlib-ng" in good["compression"]["reason"]
    assert "(its level 3)" in good["compression"]["reason"]
    # and ISA-L for the tables it compresses nearly as well (pinned for the host too)
    assert good["compression"]["fast_deflate"] == "isal" and "ISA-L 1.9.1" in good["compression"]["reason"]
    assert "mariadb" in good["flavour"]["reason"] and "AWSCURRENT" in good["database"]["reason"]
    # how the dump's bytes reach dumpjob and are scanned: 512 KiB writes through stdbuf, StringZilla
    assert (good["flavour"]["output_buffer"], good["flavour"]["scanner"]) == ("stdbuf", "stringzilla")
    assert "output in 512 KiB writes (coreutils stdbuf -o 512K); rows counted with StringZilla" in \
        good["flavour"]["reason"]
    assert jobs["status"]["ok"] and "EXPLAIN" in _checks(jobs["status"])["privileges"]["reason"]
    missing = _checks(jobs["nosecret"])
    assert not missing["secret"]["ok"] and "does not exist" in missing["secret"]["reason"]
    assert not missing["database"]["ok"] and missing["bucket:dumps/"]["ok"]
    incomplete = _checks(jobs["incomplete"])
    assert not incomplete["secret"]["ok"] and "has no 'password' key" in incomplete["secret"]["reason"]
    lacking = _checks(jobs["noprivs"])
    assert lacking["database"]["ok"] and not lacking["privileges"]["ok"]
    assert "missing SHOW VIEW, TRIGGER, EVENT on basis" in lacking["privileges"]["reason"]
    assert sandbox_config.LEGACY_DB_PASSWORD not in result.stdout + result.stderr
    listed = private_aws["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert not [o for o in listed if ".dumpjob-doctor-" in o["Key"]], "doctor left its test objects"

    text = dumpjob("doctor", "good", "--config", config, env=env)
    assert text.code == 12 and "FAIL instance_role" in text.stdout and "ok   secret" in text.stdout
    assert "ok   compression" in text.stdout and "gzip through zlib-ng" in text.stdout
    # the fallback, when the environment asks for it (or zlib-ng is missing), is named as such
    fallback = dumpjob("doctor", "good", "--config", config, "--json", env={**env, "DUMPJOB_DEFLATE": "zlib"})
    compression = _checks(fallback.json["jobs"][0])["compression"]
    assert compression["ok"] and compression["deflate"] == "zlib" and "runs many times slower" in compression["reason"]
    alone = _checks(dumpjob("doctor", "good", "--config", config, "--json",
                            env={**env, "DUMPJOB_DEFLATE": "zlib-ng"}).json["jobs"][0])["compression"]
    assert alone["fast_deflate"] is None and "zlib-ng alone (DUMPJOB_DEFLATE=zlib-ng asks for it)" in alone["reason"]
    stdlib = _checks(dumpjob("doctor", "good", "--config", config, "--json",
                             env={**env, "DUMPJOB_SCAN": "stdlib"}).json["jobs"][0])["flavour"]
    assert stdlib["scanner"] == "stdlib" and "rows counted with the standard library" in stdlib["reason"]


def test_doctor_and_run_with_the_instance_role_only(private_aws, tmp_path):
    env = {**private_aws["base"], "AWS_EC2_METADATA_SERVICE_ENDPOINT": private_aws["imds"]["role"]}
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    config = _config(tmp_path, {"basis": {"kind": "mysqldump", "secret_id": "rds/basis", "databases": ["basis"],
                                          "tables": ["properties"], "key": "dumps/basis_{date:%Y%m%d}.sql.gz"}})
    result = dumpjob("doctor", "--config", config, "--json", env=env)
    assert result.code == 0, result.stdout + result.stderr
    host = _checks(result.json)
    assert host["instance_role"]["ok"] and "dumpjob-host" in host["instance_role"]["reason"]
    assert "assumed-role/dumpjob-host" in host["aws_identity"]["reason"]
    assert "the instance role" in host["aws_identity"]["reason"]
    assert host["instance_role"]["role"] == "dumpjob-host"
    assert (host["aws_identity"]["role"], host["aws_identity"]["source"]) == ("dumpjob-host", "iam-role")
    assert host["aws_identity"]["arn"] in host["aws_identity"]["reason"]

    run = dumpjob("run", "basis", "--config", config, "--date", "2026-05-01", "--json", env=env)
    assert run.code == 0, run.stderr
    head = private_aws["s3"].head_object(Bucket=BUCKET, Key="dumps/basis_20260501.sql.gz")
    assert head["ContentLength"] == run.json["compressed_bytes"]
