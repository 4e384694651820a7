"""Helpers for the dumpjob tests: running the real `dumpjob` program, reading its JSON log lines,
a TCP proxy that can slow S3 down or cut it off, private MariaDB/moto processes, and the
"nothing was published" assertion every fault test ends with."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DUMPJOB = str(REPO / ".venv" / "bin" / "dumpjob")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the program ------------------------------------------------------------------------------
@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def logs(self) -> list[dict]:
        """Every stderr line, each of which must be one JSON object."""
        out = []
        for line in self.stderr.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"stderr line is not JSON: {line!r}") from None
        return out

    @property
    def errors(self) -> list[dict]:
        return [e for e in self.logs if e["level"] == "error"]

    @property
    def json(self):
        return json.loads(self.stdout)

    def event(self, name: str) -> list[dict]:
        return [e for e in self.logs if e["event"] == name]


def write_config(path: Path, jobs: dict, defaults: dict | None = None) -> Path:
    path.write_text(yaml.safe_dump({"defaults": defaults or {}, "jobs": jobs}, allow_unicode=True))
    return path


def dumpjob(*args: str, env: dict, timeout: float = 180) -> Result:
    proc = subprocess.run([DUMPJOB, *args], env=env, capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


class Running:
    """A `dumpjob` started in the background; its stderr lines are collected as they come."""

    def __init__(self, *args: str, env: dict):
        self.proc = subprocess.Popen([DUMPJOB, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_event(self, name: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                entry = json.loads(line)
                if entry["event"] == name:
                    return entry
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no '{name}' event; stderr so far: {self.lines}")

    def event_seen(self, name: str) -> bool:
        return any(json.loads(line)["event"] == name for line in list(self.lines))

    def finish(self, timeout: float = 180) -> Result:
        stdout = self.proc.stdout.read()  # stderr belongs to the reader thread
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return Result(self.proc.returncode, stdout, "\n".join(self.lines) + "\n")


def assert_failed(result: Result, code: int, *words: str) -> dict:
    """Exit code as documented, exactly one error line (the last), naming the cause."""
    assert result.code == code, f"exit {result.code}, expected {code}: {result.stderr}"
    logs = result.logs
    errors = [e for e in logs if e["level"] == "error"]
    assert len(errors) == 1, errors
    assert logs[-1] is errors[0] or logs[-1] == errors[0], "the error is not the last line"
    msg = errors[0]["msg"]
    assert "\n" not in msg
    for word in words:
        assert word.lower() in msg.lower(), f"{word!r} not in {msg!r}"
    assert errors[0]["exit_code"] == code
    return errors[0]


# -- S3 ---------------------------------------------------------------------------------------
@dataclass
class Snapshot:
    key: str
    etag: str
    last_modified: object
    body: bytes


def snapshot(s3, bucket: str, key: str) -> Snapshot:
    obj = s3.get_object(Bucket=bucket, Key=key)
    return Snapshot(key, obj["ETag"], obj["LastModified"], obj["Body"].read())


def assert_nothing_published(s3, bucket: str, key: str, previous: list[Snapshot] = ()) -> None:
    """No object and no manifest at the key, no incomplete upload under it, earlier objects untouched."""
    for k in (key, key + ".manifest.json"):
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=k).get("Contents", [])
        assert not [o for o in listed if o["Key"] == k], f"an object was published at {k}"
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
    assert not uploads, f"incomplete multipart uploads left: {uploads}"
    for before in previous:
        after = snapshot(s3, bucket, before.key)
        assert (after.etag, after.last_modified, after.body) == (before.etag, before.last_modified, before.body), \
            f"{before.key} was changed"


# -- a TCP proxy that slows or cuts S3 ------------------------------------------------------------
@dataclass
class Proxy:
    """Forwards 127.0.0.1:port to a target port; `rate` (bytes/s) throttles client→server traffic."""

    target: int
    rate: float | None = None
    port: int = field(default_factory=free_port)
    up_bytes: int = 0
    _listener: socket.socket | None = None
    _conns: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Proxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream:
                    self.up_bytes += len(data)
                    if self.rate:
                        time.sleep(len(data) / self.rate)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """S3 is gone: no listener (connections refused) and every open connection reset."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            except OSError:
                pass

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()


def wait_until(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# -- private servers ----------------------------------------------------------------------------
class PrivateMoto:
    """A moto server of our own, stopped by PID."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p",
                                      str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
        wait_until(lambda: _port_open(self.port), 60, "private moto")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def process_tree(root: int) -> list[int]:
    """root and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


# -- an HTTP proxy in front of S3 that refuses or loses chosen requests ---------------------------
@dataclass
class Fault:
    """Requests matching `method` and a path ending in `suffix` (and holding `query`, if set) get
    `action`: "error" answers `status` with S3 error `code` without forwarding (by default 403
    AccessDenied); "lose_answer" forwards the request and then drops the connection without
    answering (S3 did the work, the client never hears it). `times` requests are hit, then the
    fault is spent."""

    method: str
    suffix: str = ""
    query: str = ""
    action: str = "error"
    status: int = 403
    code: str = "AccessDenied"
    times: int = 1
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        where, _, query = path.partition("?")
        return (self.hits < self.times and method == self.method and where.endswith(self.suffix)
                and self.query in query)


class S3Faults:
    """Forwards HTTP to S3 (moto) on 127.0.0.1:target; `faults` decide what goes wrong."""

    HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"})

    def __init__(self, target: int):
        import http.client
        import http.server

        self.target = target
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, str, int]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        chunk = self.rfile.read(size)
                        self.rfile.readline()
                        if not size:
                            return out
                        out += chunk
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _any(self) -> None:
                body = self._body()
                fault = next((f for f in proxy.faults if f.matches(self.command, self.path)), None)
                if fault is not None:
                    fault.hits += 1
                if fault is not None and fault.action == "error":
                    proxy.seen.append((self.command, self.path, fault.status))
                    text = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                            f"<Message>{fault.code} (injected)</Message></Error>").encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.target, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy.HOP | {"expect"}}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                proxy.seen.append((self.command, self.path, answer.status))
                if fault is not None and fault.action == "lose_answer":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in proxy.HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                # a HEAD answer has no body but tells the object's length
                length = answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any  # noqa: N815 - http.server's names

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def stopped(pid: int, timeout: float = 60) -> None:
    """Wait until the process is stopped (state T), as DUMPJOB_TEST_STOP_AT leaves it."""
    def state() -> str:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    wait_until(lambda: state() == "T", timeout, f"process {pid} to stop")
