"""`dumpjob doctor [JOB]`: preflight checks, each reported as ok/fail with a reason.

Host checks (once): the instance role seen through IMDSv2, and the AWS identity the default
credential chain yields. Job checks: secret readable and complete, database reachable with it,
privileges sufficient, client/server flavour compatible, the bucket prefixes writable (a small
put and delete)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from . import aws, compress, db, mysqldump, scan
from .config import Job
from .errors import DumpJobError
from .keys import run_time
from .log import Logger
from .secret import fetch

IMDS_DEFAULT = "http://169.254.169.254"


class Found(str):
    """A passing check's reason that also carries machine-readable facts for `--json`."""

    def __new__(cls, reason: str, **facts: str | None):
        found = super().__new__(cls, reason)
        found.facts = {k: v for k, v in facts.items() if v is not None}
        return found


def _check(name: str, fn: Callable[[], str]) -> dict[str, Any]:
    try:
        reason = fn()
        return {"name": name, "ok": True, "reason": str(reason), **getattr(reason, "facts", {})}
    except DumpJobError as exc:
        return {"name": name, "ok": False, "reason": str(exc)}
    except (ClientError, BotoCoreError) as exc:
        return {"name": name, "ok": False, "reason": aws.describe(exc)}


def instance_role() -> Found:
    """The role name the instance metadata service hands out, via an IMDSv2 token."""
    if os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        raise DumpJobError("instance metadata is disabled (AWS_EC2_METADATA_DISABLED=true)")
    base = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", IMDS_DEFAULT).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise DumpJobError(f"AWS_EC2_METADATA_SERVICE_ENDPOINT '{base}' is not an http(s) URL")
    try:
        token = _imds(f"{base}/latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    except urllib.error.HTTPError as exc:
        raise DumpJobError(f"the instance metadata service at {base} refused an IMDSv2 token (HTTP {exc.code}); "
                           "check the instance's metadata options") from None
    except OSError:
        raise DumpJobError(f"no instance metadata service answers at {base}; this is not an EC2 instance or "
                           "IMDS is blocked (hop limit?)") from None
    url = f"{base}/latest/meta-data/iam/security-credentials/"
    try:
        roles = _imds(url, "GET", {"X-aws-ec2-metadata-token": token}).split()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise DumpJobError("the instance has no IAM role (IMDS answered 404 for iam/security-credentials/); "
                               "attach the instance profile (phase 3)") from None
        raise DumpJobError(f"the instance metadata service answered HTTP {exc.code} for the role") from None
    except OSError:
        raise DumpJobError(f"the instance metadata service at {base} stopped answering") from None
    if not roles:
        raise DumpJobError("the instance has no IAM role (IMDS listed none); attach the instance profile (phase 3)")
    return Found(f"instance role '{roles[0]}' (IMDSv2)", role=roles[0])


def _imds(url: str, method: str, headers: dict[str, str]) -> str:
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310 - http(s) checked above
    with urllib.request.urlopen(request, timeout=2) as answer:  # noqa: S310
        return answer.read().decode()


def identity(sess) -> Found:
    credentials = sess.get_credentials()
    if credentials is None:
        raise DumpJobError("no AWS credentials found (no instance role and no keys); attach the instance profile")
    who = aws.client(sess, "sts", attempts=2).get_caller_identity()
    source = {"iam-role": "the instance role", "env": "environment keys", "shared-credentials-file":
              "~/.aws/credentials keys", "assume-role": "an assumed role"}.get(credentials.method, credentials.method)
    role = who["Arn"].split("/")[1] if ":assumed-role/" in who["Arn"] else None
    return Found(f"{who['Arn']} (credentials from {source})", arn=who["Arn"], role=role,
                 source=credentials.method)


def compression(job: Job) -> Found:
    """The codec a run of the job will use: for gzip, which deflate implementations (zlib-ng and,
    per table, ISA-L; else zlib-ng alone; else zlib)."""
    spec = job.compression
    threads = compress.threads_for(spec)
    if spec.type == "zstd":
        try:
            import zstandard
        except ImportError:
            raise DumpJobError("compression zstd needs the 'zstandard' package, which is not installed; install "
                               "dumpjob[zstd] or use gzip") from None
        return Found(f"zstd level {spec.level} (zstandard {zstandard.__version__}), {threads} threads",
                     codec="zstd", implementation="zstandard", implementation_version=zstandard.__version__)
    impl = compress.deflate_implementation()
    note = ""
    if impl.name == "zlib":
        why = "DUMPJOB_DEFLATE=zlib asks for it" if os.environ.get("DUMPJOB_DEFLATE") else "'zlib-ng' is not installed"
        note = f"; the standard library's zlib ({why}) runs many times slower than zlib-ng"
    if impl.name == "zlib-ng" and spec.level <= compress.FAST_UP_TO and not impl.tries_fast(spec.level):
        why = "DUMPJOB_DEFLATE=zlib-ng asks for it" if os.environ.get("DUMPJOB_DEFLATE") else "'isal' is not installed"
        note = f"; zlib-ng alone ({why}), without ISA-L for the tables it compresses well"
    found = Found(f"gzip through {impl.describe(spec.level)}, {threads} threads{note}", codec="gzip",
                  deflate=impl.name, implementation=impl.name, implementation_version=impl.version)
    found.facts["fast_deflate"] = "isal" if impl.tries_fast(spec.level) else None  # null: one library
    return found


def check_job(job: Job, sess, log: Logger) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = [_check("compression", lambda: compression(job))]
    sm = aws.client(sess, "secretsmanager", attempts=2)
    state: dict[str, Any] = {}

    def secret() -> str:
        creds = fetch(sm, job.secret_id)
        log.add_secret(creds.password)
        return (f"secret '{job.secret_id}' has host, port, username and password (user {creds.username} at "
                f"{creds.host}:{creds.port})")

    checks.append(_check("secret", secret))

    def database() -> Found:
        database = job.database if job.kind == "query" else None
        creds, conn = db.login(sm, job.secret_id, lambda c: db.connect(c, database=database, ssl_ca=job.ssl_ca,
                                                                       timeout=job.connect_timeout),
                               remember=log.add_secret)
        state["conn"] = conn
        state["server"] = db.server_info(conn)
        cipher = db.tls_cipher(conn)
        tls = (f"TLS {cipher}, certificate and host name verified against {job.ssl_ca}" if job.ssl_ca else
               f"TLS {cipher}, certificate not verified (no 'ssl_ca')" if cipher else "without TLS")
        found = Found(f"logged in as {creds.username} to {state['server'].flavour} {state['server'].version} at "
                      f"{creds.host}:{creds.port} with the secret's {creds.stage}, {tls}")
        found.facts["tls"] = cipher  # null without TLS
        return found

    checks.append(_check("database", database))

    def privileges() -> str:
        if "conn" not in state:
            raise DumpJobError("not checked: no database connection")
        conn = state["conn"]
        if job.kind == "query":
            with conn.cursor() as cur:
                try:
                    cur.execute("EXPLAIN " + job.query)
                except Exception as exc:  # reported as the check's reason
                    raise DumpJobError(f"the job's query cannot run ({db.reason(exc)})") from None
            return "the job's query passes EXPLAIN"
        missing = db.missing_privileges(conn, job.databases)
        if missing:
            raise DumpJobError("missing " + "; ".join(f"{', '.join(p)} on {d}" for d, p in missing.items()))
        return f"{', '.join(db.DUMP_PRIVILEGES)} on {', '.join(job.databases)}"

    checks.append(_check("privileges", privileges))

    if job.kind == "mysqldump":
        def flavour() -> Found:
            client = mysqldump.detect_client(job.mysqldump)
            search = scan.search_implementation()
            facts = {"client": client.version_line, "client_flavour": client.flavour,
                     "output_buffer": "stdbuf" if client.wrapper else "none", "scanner": search.name}
            stream = (f"; output in {client.output_buffering}; rows counted with "
                      f"{'StringZilla ' + search.version if search.name == 'stringzilla' else 'the standard library'}")
            if "server" not in state:
                return Found(f"{client.flavour} client {client.version_line}; the mode is known once the database "
                             f"answers{stream}", **facts)
            server = state["server"]
            compat = mysqldump.compatibility(client, server, job.flavour_mismatch)
            how = {mysqldump.NATIVE: "same flavour",
                   mysqldump.MARIADB_ON_MYSQL: "MariaDB's sandbox-mode line " + (
                       "dropped from the dump" if compat.drop_sandbox_line else "kept (flavour_mismatch: keep)"),
                   mysqldump.MYSQL_ON_MARIADB: "with " + " ".join(compat.flags)}[compat.mode]
            return Found(f"{client.flavour} client {client.version_line} dumps {server.flavour} {server.version}: "
                         f"mode {compat.mode} ({how}){stream}", **facts, server_flavour=server.flavour,
                         server_version=server.version, mode=compat.mode)

        checks.append(_check("flavour", flavour))
    if "conn" in state:
        state["conn"].close()

    s3 = aws.client(sess, "s3", attempts=2)
    when = run_time(job.timezone)
    prefixes = []
    for key in (job.object_key(when), job.object_key(when, parallel=True)):
        prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
        if prefix not in prefixes:
            prefixes.append(prefix)
    for prefix in prefixes:
        checks.append(_check(f"bucket:{prefix or '/'}", lambda p=prefix: _writable(s3, job, p)))
    return checks


def _writable(s3, job: Job, prefix: str) -> str:
    key = f"{prefix}.dumpjob-doctor-{uuid.uuid4().hex}"
    args = {"Bucket": job.bucket, "Key": key, "Body": b"dumpjob doctor\n"}
    if job.sse_kms_key_id:
        args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=job.sse_kms_key_id)
    try:
        s3.put_object(**args)
    except (ClientError, BotoCoreError) as exc:
        if aws.error_code(exc) == "NoSuchBucket":
            raise DumpJobError(f"bucket '{job.bucket}' does not exist") from None
        raise DumpJobError(f"cannot write s3://{job.bucket}/{prefix} ({aws.describe(exc)})") from None
    try:
        s3.delete_object(Bucket=job.bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:
        raise DumpJobError(f"wrote but cannot delete s3://{job.bucket}/{key} ({aws.describe(exc)})") from None
    return f"wrote and deleted a test object under s3://{job.bucket}/{prefix}"


def doctor(jobs: list[Job], log: Logger) -> dict[str, Any]:
    region = next((j.region for j in jobs if j.region), None)
    sess = aws.session(region)
    host = [_check("instance_role", instance_role), _check("aws_identity", lambda: identity(sess))]
    results = []
    for job in jobs:
        checks = [{"name": "config", "ok": True, "reason": f"job '{job.name}' ({job.kind}) is valid"}]
        checks += check_job(job, aws.session(job.region or region), log)
        results.append({"job": job.name, "ok": all(c["ok"] for c in checks), "checks": checks})
    ok = all(c["ok"] for c in host) and all(r["ok"] for r in results)
    return {"ok": ok, "checks": host, "jobs": results}
