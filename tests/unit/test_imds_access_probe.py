"""jram.dumphost.imds_access's probe: after a change, a child process that runs as each user asks
a metadata service for an IMDSv2 token, so the rule set sees a socket owned by that user. Proven
here against a real HTTP server on loopback that reads, for each connection, the owner of the
client's socket from /proc/net/tcp; and against a closed port for a refused connection. The
probe's refusals come before anything is changed."""

from __future__ import annotations

import http.server
import os
import pwd
import socket
import threading
import typing

import pytest
from ansible_collections.jram.dumphost.plugins.modules import imds_access
from sandboxtest import run_module

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the probe drops to another user: needs root")


def _socket_owner(port: int, peer: int) -> int | None:
    """The uid owning the TCP socket from 127.0.0.1:port to 127.0.0.1:peer (/proc/net/tcp, as
    ss -e reads it). Both ends: under a parallel suite another process's socket to another
    server may have the same local port."""
    with open("/proc/net/tcp", encoding="ascii") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == f"0100007F:{port:04X}" and fields[2] == f"0100007F:{peer:04X}":
                return int(fields[7])
    return None


class _TokenServer(http.server.BaseHTTPRequestHandler):
    owners: typing.ClassVar[list] = []

    def do_PUT(self):  # the http.server interface
        self.owners.append(_socket_owner(self.client_address[1], self.server.server_address[1]))
        body = b"probe-token-not-returned" if self.path == "/latest/api/token" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _TokenServer.owners = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _TokenServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", _TokenServer.owners
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_probe_asks_as_the_user_and_returns_no_token(server):
    url, owners = server
    assert imds_access.probe_as("nobody", url) == "token"
    assert imds_access.probe_as("root", url) == "token"
    assert owners == [pwd.getpwnam("nobody").pw_uid, 0]


def test_a_closed_port_is_seen_as_refused():
    assert imds_access.probe_as("nobody", _closed_port_url()) == "refused"


def test_an_answer_without_token_is_an_error(server):
    url, _owners = server
    assert imds_access.probe_as("nobody", url + "/nothing-here").startswith("error: ")


def test_probes_report_what_each_user_saw_and_skip_a_refusal_of_an_allowed_user(server):
    url, owners = server
    wanted = [{"user": "root", "expect": "token"}, {"user": "nobody", "expect": "refused"},
              {"user": "nobody", "expect": "token"}]
    results, failed = imds_access.run_probes(url, wanted, {"root": {}, "nobody": {}})
    assert results == [{"user": "root", "expect": "token", "outcome": "token"},
                       {"user": "nobody", "expect": "refused", "outcome": "skipped"},
                       {"user": "nobody", "expect": "token", "outcome": "token"}]
    assert failed == []
    results, failed = imds_access.run_probes(url, [{"user": "nobody", "expect": "refused"}], {"root": {}})
    assert failed == [{"user": "nobody", "expect": "refused", "outcome": "token"}]
    assert len(owners) == 3


def _args(tmp_path, **extra) -> dict:
    return {"table": "jram_dumphost_imds_unittest", "path": str(tmp_path / "etc" / "imds.nft"),
            "unit_dir": str(tmp_path / "units"), "addresses": ["127.0.0.1"], "port": 1, **extra}


@pytest.mark.parametrize(("extra", "message"), [
    ({"probe": [{"user": "nobody", "expect": "token"}]},
     "probe names users but probe_url is empty: set probe_url to the metadata service's base URL, such as "
     "http://169.254.169.254"),
    ({"probe_url": "169.254.169.254", "probe": []},
     "probe_url must be the metadata service's base URL, such as http://169.254.169.254 (got '169.254.169.254')"),
    ({"probe_url": "http://127.0.0.1:1", "probe": [{"user": "no-such-probe-user", "expect": "refused"}]},
     "probe user no-such-probe-user does not exist on this host: create it or probe another user; nothing was "
     "changed"),
])
def test_bad_probe_options_are_refused_before_any_change(tmp_path, extra, message):
    result = run_module(imds_access.main, _args(tmp_path, **extra))
    assert result["failed"] and result["msg"] == message
    assert not list(tmp_path.iterdir())
