"""An EC2 instance metadata service that answers like a real instance's, driven by the moto
instance record: IMDSv2 tokens; role credentials only while an instance profile is associated;
token-less requests refused once the instance's metadata options say `http_tokens=required`.

Run: python -m sandbox.imds --port PORT --moto-url URL --state STATE_JSON
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105 (a header name)
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
REGION = "ap-northeast-1"


class Instance:
    """What the metadata service knows, read from moto at each request."""

    def __init__(self, moto_url: str, state_path: Path):
        self.moto_url = moto_url
        self.state_path = state_path
        self._creds: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def _client(self, service: str):
        state = json.loads(self.state_path.read_text())
        key = state.get("imds_key") or {"id": "sandbox", "secret": "sandbox"}
        return boto3.client(service, endpoint_url=self.moto_url, region_name=REGION,
                            aws_access_key_id=key["id"], aws_secret_access_key=key["secret"],
                            config=Config(retries={"max_attempts": 1}))

    @property
    def instance_id(self) -> str:
        return json.loads(self.state_path.read_text())["instance_id"]

    def describe(self) -> dict:
        ec2 = self._client("ec2")
        return ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"][0]["Instances"][0]

    def profile(self) -> dict | None:
        """The associated instance profile with its role, or None."""
        ec2 = self._client("ec2")
        assocs = ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [self.instance_id]}])["IamInstanceProfileAssociations"]
        assocs = [a for a in assocs if a.get("State", "associated") == "associated"]
        if not assocs:
            return None
        arn = assocs[0]["IamInstanceProfile"]["Arn"]
        iam = self._client("iam")
        profile = iam.get_instance_profile(InstanceProfileName=arn.rsplit("/", 1)[-1])["InstanceProfile"]
        if not profile["Roles"]:
            return None
        return {"arn": arn, "id": profile["InstanceProfileId"], "role": profile["Roles"][0]}

    def credentials(self, role: dict) -> dict:
        with self._lock:
            cached = self._creds.get(role["Arn"])
            if cached and cached[0] > time.time() + 900:
                return cached[1]
            sts = self._client("sts")
            c = sts.assume_role(RoleArn=role["Arn"], RoleSessionName=self.instance_id,
                                DurationSeconds=3600)["Credentials"]
            answer = {
                "Code": "Success",
                "LastUpdated": _iso(dt.datetime.now(dt.timezone.utc)),
                "Type": "AWS-HMAC",
                "AccessKeyId": c["AccessKeyId"],
                "SecretAccessKey": c["SecretAccessKey"],
                "Token": c["SessionToken"],
                "Expiration": _iso(c["Expiration"]),
            }
            self._creds[role["Arn"]] = (c["Expiration"].timestamp(), answer)
            return answer


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Tokens:
    def __init__(self):
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.time() + ttl
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            return self._tokens.get(token, 0) > time.time()


def make_handler(instance: Instance, tokens: Tokens):
    class Handler(BaseHTTPRequestHandler):
        server_version = "EC2ws"
        sys_version = ""

        def _send(self, code: int, body: str = "", ctype: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self):
            if self.path != "/latest/api/token":
                return self._send(404, "Not Found")
            try:
                ttl = int(self.headers.get(TTL_HEADER, ""))
            except ValueError:
                return self._send(400, "Missing or invalid token TTL")
            if not 1 <= ttl <= 21600:
                return self._send(400, "Token TTL out of range")
            if self.headers.get("X-Forwarded-For"):
                return self._send(403, "Forbidden")
            return self._send(200, tokens.issue(ttl))

        def do_GET(self):
            token = self.headers.get(TOKEN_HEADER)
            try:
                desc = instance.describe()
            except Exception as exc:  # moto down or instance gone: answer as a broken IMDS would
                return self._send(500, f"metadata unavailable: {exc.__class__.__name__}")
            options = desc.get("MetadataOptions", {})
            if options.get("HttpEndpoint", "enabled") == "disabled":
                return self._send(403, "Forbidden")
            if token is not None and not tokens.valid(token):
                return self._send(401, "Unauthorized")
            if token is None and options.get("HttpTokens", "optional") == "required":
                return self._send(401, "Unauthorized")
            return self._answer(self.path.split("?", 1)[0], desc)

        def _answer(self, path: str, desc: dict):
            az = desc.get("Placement", {}).get("AvailabilityZone", REGION + "a")
            simple = {
                "/latest/meta-data/instance-id": desc["InstanceId"],
                "/latest/meta-data/ami-id": desc.get("ImageId", ""),
                "/latest/meta-data/instance-type": desc.get("InstanceType", ""),
                "/latest/meta-data/local-ipv4": desc.get("PrivateIpAddress", ""),
                "/latest/meta-data/local-hostname": desc.get("PrivateDnsName", ""),
                "/latest/meta-data/placement/availability-zone": az,
                "/latest/meta-data/placement/region": az[:-1],
            }
            if path in simple:
                return self._send(200, simple[path])
            if path in ("/latest/meta-data", "/latest/meta-data/"):
                listing = ["ami-id", "iam/", "instance-id", "instance-type", "local-hostname", "local-ipv4",
                           "placement/"]
                return self._send(200, "\n".join(listing))
            if path == "/latest/dynamic/instance-identity/document":
                doc = {"instanceId": desc["InstanceId"], "imageId": desc.get("ImageId"), "region": az[:-1],
                       "availabilityZone": az, "instanceType": desc.get("InstanceType"),
                       "accountId": desc.get("OwnerId", "123456789012"), "architecture": "x86_64"}
                return self._send(200, json.dumps(doc, indent=2), "application/json")
            if path.startswith("/latest/meta-data/iam"):
                return self._iam(path)
            return self._send(404, "Not Found")

        def _iam(self, path: str):
            profile = instance.profile()
            if profile is None:
                return self._send(404, "Not Found")
            role = profile["role"]
            base = "/latest/meta-data/iam/security-credentials"
            if path in ("/latest/meta-data/iam", "/latest/meta-data/iam/"):
                return self._send(200, "info\nsecurity-credentials/")
            if path == "/latest/meta-data/iam/info":
                info = {"Code": "Success", "LastUpdated": _iso(dt.datetime.now(dt.timezone.utc)),
                        "InstanceProfileArn": profile["arn"], "InstanceProfileId": profile["id"]}
                return self._send(200, json.dumps(info, indent=2), "application/json")
            if path in (base, base + "/"):
                return self._send(200, role["RoleName"])
            if path == f"{base}/{role['RoleName']}":
                return self._send(200, json.dumps(instance.credentials(role), indent=2), "application/json")
            return self._send(404, "Not Found")

        def log_message(self, fmt, *args):  # one line per request, never a token or credential
            print(f"{self.address_string()} {self.command} {self.path.split('?', 1)[0]} -> {args[1]}", flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--moto-url", required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Instance(args.moto_url, args.state), Tokens()))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
