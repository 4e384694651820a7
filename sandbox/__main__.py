"""python -m sandbox {up,down,status,legacy-run,s3-ls,...}: the local stand-in for production."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
from zoneinfo import ZoneInfo

from . import aws, host, mariadb, procs
from .config import BUCKET, LEGACY_DB_PASSWORD, LEGACY_IAM_USER, REGION, Settings, load

IMDS = "imds"
LEGACY_JOBS = ("ggh_datatransit.sh", "ggh_contract_status.sh", "ggh_schema_snapshot.sh")


def read_state(s: Settings) -> dict:
    try:
        return json.loads(s.state_file.read_text())
    except FileNotFoundError:
        return {}


def write_private(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def env_lines(s: Settings, state: dict) -> dict[str, str]:
    return {
        "MARIADB_HOST": "127.0.0.1",
        "MARIADB_PORT": str(s.mariadb_port),
        "MARIADB_SOCKET": str(s.mariadb_socket),
        "MARIADB_SSL_CA": str(mariadb.ssl_ca(s)),
        "AWS_ENDPOINT_URL": s.moto_url,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": s.imds_url,
        "AWS_DEFAULT_REGION": REGION,
        # moto accepts any key while it does not enforce IAM; these are not credentials.
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "SANDBOX_HOST": s.host,
        "SANDBOX_INSTANCE_ID": state["instance_id"],
        "SANDBOX_BUCKET": BUCKET,
        "SANDBOX_STATE": str(s.state),
    }


def imds_up(s: Settings) -> None:
    if procs.pid_alive(s.pidfile(IMDS)) and procs.port_open(s.imds_port):
        return
    if procs.port_open(s.imds_port):
        raise procs.SandboxError(
            f"port {s.imds_port} is already taken; stop what listens there or set SANDBOX_PORT_BASE")
    procs.start_daemon([sys.executable, "-m", "sandbox.imds", "--port", str(s.imds_port),
                        "--moto-url", s.moto_url, "--state", str(s.state_file)],
                       s.pidfile(IMDS), s.logfile(IMDS), env={**os.environ, "PYTHONPATH": str(s.state.parent)})
    procs.wait_for(lambda: procs.port_open(s.imds_port), "IMDS emulator", timeout=30, log=s.logfile(IMDS))


def up(s: Settings) -> None:
    s.state.mkdir(mode=0o700, parents=True, exist_ok=True)
    step("MariaDB", f"127.0.0.1:{s.mariadb_port}")
    mariadb.up(s)
    step("moto", s.moto_url)
    before = read_state(s)
    state = aws.up(s, dict(before))
    write_private(s.state_file, json.dumps(state, indent=2) + "\n")
    step("IMDS emulator", s.imds_url)
    imds_up(s)
    step("dump host", f"container {s.host}")
    created = host.up(s, state)
    if not created and before.get("legacy_key") and before["legacy_key"] != state["legacy_key"]:
        host.refresh_legacy_key(s, before["legacy_key"], state["legacy_key"])
    # The sandbox's stand-in for a vault: phase 1 reads the DB password from here.
    write_private(s.state / "db_password", LEGACY_DB_PASSWORD)
    env = env_lines(s, state)
    write_private(s.env_file, "".join(f"export {k}={v}\n" for k, v in env.items()))
    print(f"sandbox: up; 'source {s.env_file}' for its addresses, 'make sandbox-down' to stop it")


def down(s: Settings) -> None:
    pieces = (("dump host", host.down), ("IMDS emulator", lambda x: procs.stop_daemon(x.pidfile(IMDS))),
              ("moto", aws.down), ("MariaDB", mariadb.down), ("DMS target", mariadb.target_down))
    stopped = [name for name, stop in pieces if stop(s)]
    s.env_file.unlink(missing_ok=True)
    print("sandbox: stopped " + (", ".join(stopped) if stopped else "nothing (was not running)"))


def status(s: Settings) -> int:
    parts = {
        "mariadb": mariadb.running(s),
        "moto": aws.running(s),
        "imds": procs.pid_alive(s.pidfile(IMDS)) is not None,
        "host": host.container_state(s) == "running",
    }
    for name, ok in parts.items():
        print(f"{name:8} {'running' if ok else 'stopped'}")
    return 0 if all(parts.values()) else 3


def legacy_run(s: Settings, jobs: list[str]) -> int:
    rc = 0
    for job in jobs or LEGACY_JOBS:
        proc = host.run_legacy(s, job)
        print(f"{job}: exit {proc.returncode}")
        if proc.returncode:
            print((proc.stdout + proc.stderr).strip(), file=sys.stderr)
            rc = 1
    return rc


def s3_ls(s: Settings, prefix: str) -> int:
    s3 = aws.client(s, "s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            print(f"{obj['LastModified']:%Y-%m-%d %H:%M:%S}  {obj['Size']:>12,}  s3://{BUCKET}/{obj['Key']}")
    return 0


def backdate_legacy(s: Settings, days: list[str]) -> int:
    """Copy each legacy object of today (JST, as the legacy scripts name them) to the same key
    with each given day's date, as if the legacy jobs had run on those nights."""
    s3 = aws.client(s, "s3")
    today = dt.datetime.now(ZoneInfo("Asia/Tokyo")).strftime("%Y%m%d")
    keys = [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="dumps/")
            for obj in page.get("Contents", []) if today in obj["Key"]]
    if not keys:
        print(f"sandbox: error: no legacy object of today ({today}) under dumps/: run legacy-run first",
              file=sys.stderr)
        return 1
    for day in days:
        stamp = dt.date.fromisoformat(day).strftime("%Y%m%d")
        for key in keys:
            s3.copy_object(Bucket=BUCKET, Key=key.replace(today, stamp), CopySource={"Bucket": BUCKET, "Key": key})
            print(f"s3://{BUCKET}/{key.replace(today, stamp)}  (copy of {key})")
    return 0


def key_status(s: Settings) -> int:
    """The legacy IAM user's access keys and their status."""
    iam = aws.client(s, "iam")
    keys = iam.list_access_keys(UserName=LEGACY_IAM_USER)["AccessKeyMetadata"]
    print(", ".join(f"{k['AccessKeyId']} {k['Status']}" for k in keys) or "no access key")
    return 0


def vendor_ready(s: Settings, switch: str) -> int:
    """The source MariaDB in (or out of) the state AWS DMS needs (docs/dms.md)."""
    if switch != "status":
        mariadb.set_vendor_ready(s, switch == "on")
    state = "on" if mariadb.vendor_ready(s) else "off"
    print(f"sandbox: vendor-ready {state} (MariaDB at 127.0.0.1:{s.mariadb_port}"
          + (f", replication user {mariadb.DMS_REPLICATION_USER})" if state == "on" else ")"))
    return 0


def dms_target(s: Settings, action: str) -> int:
    """The second MariaDB that stands in for the DMS target (docs/dms.md)."""
    if action == "up":
        mariadb.target_up(s)
    elif action == "down":
        mariadb.target_down(s)
    state = "running" if mariadb.target_running(s) else "stopped"
    print(f"sandbox: DMS target {state} (MariaDB at 127.0.0.1:{mariadb.target_port(s)}"
          + (f", user {mariadb.DMS_TARGET_USER}, database basis)" if state == "running" else ")"))
    return 0


def step(what: str, where: str) -> None:
    print(f"sandbox: {what:14} {where}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="start every piece (idempotent)")
    sub.add_parser("down", help="stop every piece; keeps the data and the image cache")
    sub.add_parser("status", help="what is running (exit 3 if not everything)")
    run = sub.add_parser("legacy-run", help="run legacy jobs by hand inside the host, as ec2-user")
    run.add_argument("jobs", nargs="*", help=f"default: all of {', '.join(LEGACY_JOBS)}")
    prov = sub.add_parser("provision-legacy", help="put another container (e.g. molecule's) into the legacy state")
    prov.add_argument("container")
    sub.add_parser("detach-profile", help="remove any instance profile association from the sandbox instance")
    back = sub.add_parser("backdate-legacy", help="copy today's legacy objects to the keys of past days")
    back.add_argument("days", nargs="+", metavar="YYYY-MM-DD")
    sub.add_parser("key-status", help=f"the access keys of the IAM user {LEGACY_IAM_USER}")
    ls = sub.add_parser("s3-ls", help="list objects in the sandbox bucket")
    ls.add_argument("prefix", nargs="?", default="")
    ready = sub.add_parser("vendor-ready", help="the source MariaDB in the state AWS DMS needs (binlog, "
                                                "retention, rds_* stand-ins, replication user) or back")
    ready.add_argument("switch", choices=["on", "off", "status"])
    target = sub.add_parser("dms-target", help="a second MariaDB standing in for the DMS target (not started by up)")
    target.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    s = load()
    try:
        if args.cmd == "up":
            up(s)
        elif args.cmd == "down":
            down(s)
        elif args.cmd == "status":
            return status(s)
        elif args.cmd == "legacy-run":
            return legacy_run(s, args.jobs)
        elif args.cmd == "provision-legacy":
            host.provision(dataclasses.replace(s, host=args.container), read_state(s))
        elif args.cmd == "detach-profile":
            print(f"sandbox: detached {aws.detach_profiles(s, read_state(s)['instance_id']) or 'nothing'}")
        elif args.cmd == "backdate-legacy":
            return backdate_legacy(s, args.days)
        elif args.cmd == "key-status":
            return key_status(s)
        elif args.cmd == "s3-ls":
            return s3_ls(s, args.prefix)
        elif args.cmd == "vendor-ready":
            return vendor_ready(s, args.switch)
        elif args.cmd == "dms-target":
            return dms_target(s, args.action)
    except procs.SandboxError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
