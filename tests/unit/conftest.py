"""Make this checkout importable as ``ansible_collections.jram.dumphost``.

ansible.cfg resolves the collection through ``.collections``; when that link does not lead back
to this checkout, the tests link it themselves in a private directory removed at exit."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sandboxtest import collections_root

REPO = Path(__file__).resolve().parents[2]


ROOT = collections_root()
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


import pytest  # noqa: E402 (after the path set-up above)


@pytest.fixture
def aws_in_process(monkeypatch):
    """AWS in this process (moto's mock_aws) with fake credentials and ap-northeast-1, and nothing
    of the caller's AWS settings (profile, session token, endpoint) reaching boto3."""
    from moto import mock_aws

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "ap-northeast-1")):
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


@pytest.fixture(scope="module")
def moto_url():
    """moto in server mode, started in this process on a free loopback port, for one test module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
