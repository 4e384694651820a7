"""The pure parts of dumpjob, checked against real tools where one exists (gunzip, zstd, mysqldump)."""

from __future__ import annotations

import gzip
import itertools
import os
import random
import re
import subprocess
import sys

import pytest

from dumpjob import compress, mysqldump, priority, upload
from dumpjob.config import Compression, CsvFormat
from dumpjob.csvout import CsvEncoder
from dumpjob.digest import dump_sections
from dumpjob.errors import ConfigError, DatabaseError, DumpIncompleteError
from dumpjob.scan import DumpScanner, search_implementation
from dumpjob.secret import DbCredentials

TRICKY = (b"-- Dumping data for table `t`\n"
          b"INSERT INTO `t` VALUES (1,'a),(b'),(2,'x\\\\'),(3,'it\\'s (\\\\'),(4,NULL),(5,'(('),(6,0x28);\n"
          b"INSERT INTO `t` VALUES\n(7,'a),\\n(b'),\n(8,'\\\\');\n"
          b"-- Dump completed on 2026-01-01 00:00:00\n")


@pytest.fixture(scope="module")
def real_dump(sandbox) -> bytes:
    """A real dump of the seeded basis, made by the real mysqldump as root."""
    proc = subprocess.run(["mysqldump", "--no-defaults", f"--socket={sandbox.settings.mariadb_socket}", "-uroot",
                           "--single-transaction", "--quick", "--routines", "--events", "--triggers", "--hex-blob",
                           "--default-character-set=utf8mb4", "basis"], capture_output=True, check=True)
    return proc.stdout


@pytest.fixture(params=["stringzilla", "stdlib"])
def new_scanner(request):
    """Scanners on each search implementation: StringZilla's (the default) and the standard
    library's (the fallback) must count alike."""
    search = search_implementation(request.param)
    assert search.name == request.param
    return lambda: DumpScanner(search=search)


def _feed(scanner: DumpScanner, data: bytes, sizes: list[int], seed: int = 1) -> DumpScanner:
    rnd = random.Random(seed)
    i = 0
    while i < len(data):
        n = rnd.choice(sizes)
        scanner.feed(data[i:i + n])
        i += n
    return scanner


def test_scanner_counts_rows_of_a_real_dump_whatever_the_chunking(sandbox, real_dump, new_scanner):
    expected = {t: int(sandbox.sql(f"SELECT COUNT(*) FROM basis.`{t}`").strip())
                for t in ("access_logs", "contract_status_history", "contracts", "documents", "payments",
                          "properties", "rooms", "tenants")}
    for sizes in ([1 << 20], [4096, 65536], [97, 131, 1009]):
        scanner = _feed(new_scanner(), real_dump, sizes)
        assert scanner.rows == expected
        assert scanner.trailer_ok and scanner.trailer.startswith("-- Dump completed on")


def test_scanner_counts_oracle_style_one_line_inserts(real_dump, new_scanner):
    # Oracle's mysqldump writes a whole extended INSERT on one line.
    oracle = re.sub(rb"VALUES\n", b"VALUES ", real_dump).replace(b"),\n(", b"),(")
    assert oracle != real_dump
    expected = _feed(new_scanner(), real_dump, [1 << 20]).rows
    assert _feed(new_scanner(), oracle, [1 << 20]).rows == expected
    # tiny chunks on a prefix that ends inside a statement: every split point of strings and escapes
    start = oracle.index(b"-- Dumping data for table `tenants`")
    head = oracle[start:start + 150_000]
    assert b"\\\\" in head and b'\\"' in head and b"\\n" in head  # escaped backslash, quote, line break
    whole = _feed(new_scanner(), head, [1 << 20]).rows
    assert whole["tenants"] > 500
    assert _feed(new_scanner(), head, [3, 5, 11]).rows == whole


def test_scanner_ignores_parentheses_quotes_and_escapes_inside_strings(new_scanner):
    for cut in range(len(TRICKY)):
        scanner = new_scanner()
        scanner.feed(TRICKY[:cut])
        scanner.feed(TRICKY[cut:])
        assert scanner.rows == {"t": 8}, cut
    assert _feed(new_scanner(), TRICKY, [1, 2, 3]).rows == {"t": 8}


def test_scanner_implementation_is_chosen_by_the_environment_or_refused(monkeypatch):
    monkeypatch.setenv("DUMPJOB_SCAN", "stdlib")
    assert DumpScanner().search.name == "stdlib"
    monkeypatch.setenv("DUMPJOB_SCAN", "simd")
    with pytest.raises(ConfigError, match="DUMPJOB_SCAN='simd' names no scanner implementation; use stringzilla"):
        search_implementation()
    monkeypatch.delenv("DUMPJOB_SCAN")
    assert search_implementation().name == "stringzilla"  # installed with dumpjob, as on the host


def test_scanner_counts_a_one_line_insert_longer_than_its_carry(new_scanner):
    # Oracle's client with a large net_buffer_length (or one big row) writes INSERT lines of many MiB.
    rows = b",".join(b"(%d,'row %d, with (parens) and \\'quotes\\'',0x%s)" % (i, i, b"AB" * 30) for i in range(40000))
    dump = b"-- Dumping data for table `big`\nINSERT INTO `big` VALUES " + rows + b";\n-- Dump completed on x\n"
    assert len(dump) > 4 * (1 << 20)
    for size in (65536, 1 << 20):
        assert _feed(new_scanner(), dump, [size]).rows == {"big": 40000}


def test_scanner_sees_a_missing_trailer(real_dump, new_scanner):
    truncated = real_dump[: len(real_dump) // 2]
    assert not _feed(new_scanner(), truncated, [65536]).trailer_ok
    cut_trailer = real_dump[: real_dump.rindex(b"-- Dump completed")]
    assert not _feed(new_scanner(), cut_trailer, [65536]).trailer_ok


@pytest.mark.parametrize(("implementation", "size_limit"),
                         [("zlib-ng+isal", 1.10), ("zlib-ng", 1.10), ("zlib", 1.02)])
def test_parallel_gzip_is_one_valid_gzip_stream(real_dump, implementation, size_limit):
    """What the gzip path writes, on zlib-ng with ISA-L per table (the default), on zlib-ng alone and
    on the standard library's zlib (the fallback), is one ordinary gzip member: the stdlib gzip
    module and the system's gunzip give back the dump byte for byte, whatever the block sizes fed."""
    deflate = compress.deflate_implementation(implementation)
    assert deflate.label == implementation
    written: list[dict] = []

    def write(sizes: list[int], alternate: bool = False) -> bytes:
        out: list[bytes] = []
        gz = compress.make(Compression("gzip", 6, 2), out.append, deflate)
        if alternate and gz.chooser is not None:  # blocks of both libraries in one stream, whatever the data
            turns = itertools.cycle([compress.FAST, compress.STRONG])
            gz.chooser.mode = lambda group: next(turns)
        scanner = DumpScanner()
        rnd = random.Random(7)
        i = 0
        while i < len(real_dump):
            n = rnd.choice(sizes)
            scanner.feed(real_dump[i:i + n])
            gz.feed(real_dump[i:i + n], scanner.table)  # as run feeds it: the table keys ISA-L's choice
            i += n
        gz.finish()
        assert gz.cpu_seconds > 0
        written.append(gz.blocks_written)
        return b"".join(out)

    for data in (write([compress.BLOCK], True), write([compress.BLOCK, 1, 333, 70_000], True)):  # as run; odd sizes
        assert data.startswith(b"\x1f\x8b\x08") and gzip.decompress(data) == real_dump
        proc = subprocess.run(["gunzip", "-c"], input=data, capture_output=True, check=True)
        assert proc.stdout == real_dump
        assert subprocess.run(["gzip", "-t"], input=data).returncode == 0
    # fed 1 MiB blocks as a run does, near the legacy gzip -6 at the default level: zlib within 2 %,
    # zlib-ng within the production limit of 10 %
    legacy = subprocess.run(["gzip", "-6", "-c"], input=real_dump, capture_output=True, check=True).stdout
    assert len(write([compress.BLOCK])) <= len(legacy) * size_limit
    if deflate.fast is not None:  # both libraries wrote blocks of the one stream
        assert all(w["isal"] > 0 and w["zlib-ng"] > 0 for w in written[:2]), written
        assert sum(written[2].values()) == -(-len(real_dump) // compress.BLOCK)
    else:
        assert written[0] is None


def test_isal_takes_a_table_only_while_its_samples_stay_within_the_margin():
    """The choice per table: a table's first block is a sample (deflated both ways); until its
    result is in, the next blocks go to zlib-ng; then ISA-L while its samples are within 5 % of
    zlib-ng's, with a new sample every 16th block, so a table whose data changes is followed."""
    chooser = compress.Chooser()
    both, fast, strong = compress.BOTH, compress.FAST, compress.STRONG
    assert [chooser.mode("logs"), chooser.mode("logs")] == [both, strong]  # no sample back yet
    chooser.record("logs", both, (104, 100), fast)  # ISA-L 4 % larger: within the margin
    chooser.record("logs", strong, (0, 0), strong)
    assert [chooser.mode("logs") for _ in range(13)] == [fast] * 13  # blocks 3 to 15
    assert chooser.mode("logs") == both  # block 16: a new sample
    chooser.record("logs", both, (400, 100), strong)  # the data changed: ISA-L 4 times larger
    assert chooser.mode("logs") == strong  # (104 + 400) > (100 + 100) × 1.05
    # another table has its own samples
    assert chooser.mode("payments") == both
    chooser.record("payments", both, (109, 100), strong)  # 9 % larger: zlib-ng
    assert chooser.mode("payments") == strong
    # only the last 8 samples count
    for _ in range(8):
        chooser.record("logs", both, (100, 100), fast)
    assert chooser.mode("logs") == fast
    assert chooser.written == {strong: 3, fast: 9}


def test_isal_is_tried_up_to_level_6_and_named_or_refused():
    deflate = compress.deflate_implementation()
    assert deflate.label == "zlib-ng+isal"
    assert [deflate.tries_fast(n) for n in range(1, 10)] == [True] * 6 + [False] * 3
    assert "and ISA-L 1.9.1 (its level 2) for each table whose output it keeps within 5% of zlib-ng's" in \
        deflate.describe(6)
    assert "ISA-L" not in deflate.describe(9)
    assert compress.deflate_implementation("zlib-ng").fast is None
    out: list[bytes] = []
    gz = compress.make(Compression("gzip", 9, 2), out.append, deflate)
    gz.feed(b"x" * 1000, "t")
    gz.finish()
    assert gz.blocks_written is None  # level 9: zlib-ng alone


def test_gzip_runs_on_zlib_ng_when_installed_and_says_so():
    """zlib-ng is pinned for the host: the default gzip path uses it, maps the levels, and an
    override that names nothing usable is refused in one line."""
    deflate = compress.deflate_implementation()
    assert deflate.name == "zlib-ng" and deflate.label == "zlib-ng+isal"
    assert [deflate.level(n) for n in range(1, 10)] == [1, 1, 2, 2, 3, 3, 4, 6, 9]
    assert "zlib-ng" in deflate.describe(6) and "its level 3" in deflate.describe(6)
    assert compress.deflate_implementation("zlib").level(6) == 6
    with pytest.raises(ConfigError, match="DUMPJOB_DEFLATE='pigz'"):
        compress.deflate_implementation("pigz")


def test_the_client_runs_without_stdbuf_when_stdbuf_fails(tmp_path, monkeypatch):
    """A stdbuf that cannot run the client (no libstdbuf.so, a static client) is left out: the
    client runs as it is, with stdio's writes, instead of failing the dump."""
    assert mysqldump.detect_client("mysqldump").wrapper[1:] == ("-o", "512K")  # the host's stdbuf works
    broken = tmp_path / "stdbuf"
    broken.write_text("#!/bin/sh\necho \"stdbuf: failed to find 'libstdbuf.so'\" >&2\nexit 126\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    client = mysqldump.detect_client("mysqldump")
    assert client.wrapper == () and client.output_buffering.startswith("4 KiB writes")
    assert client.flavour == "mariadb"


def _nice(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def test_the_codec_threads_run_at_a_lower_priority_than_the_reading_thread(monkeypatch):
    """The codec's threads (ours for gzip, zstandard's own for zstd) yield the CPU to mysqldump;
    the reading thread keeps its priority. DUMPJOB_BACKGROUND_NICE sets the increment."""
    import threading

    base = _nice(threading.get_native_id())
    block = bytes(range(256)) * 4096
    gz = compress.make(Compression("gzip", 6, 2), lambda data: None)
    gz.feed(block, "t")
    gz._pool.submit(lambda: None).result()  # the pool starts its threads as work arrives
    workers = [t.native_id for t in threading.enumerate() if t.name.startswith("gzip")]
    assert workers and all(_nice(tid) >= min(19, base + priority.DEFAULT_INCREMENT) for tid in workers)
    gz.finish()
    assert _nice(threading.get_native_id()) == base

    ours = {t.native_id for t in threading.enumerate()}
    z = compress.make(Compression("zstd", 1, 2), lambda data: None)
    z.feed(block * 8)
    foreign = [int(t) for t in os.listdir("/proc/self/task") if int(t) not in ours]
    assert foreign, "zstandard started no worker threads"
    assert all(_nice(tid) >= min(19, base + priority.DEFAULT_INCREMENT) for tid in foreign)  # once or more
    z.finish()
    assert _nice(threading.get_native_id()) == base

    monkeypatch.setenv("DUMPJOB_BACKGROUND_NICE", "0")
    assert priority.increment() == 0 and not priority.lower(threading.get_native_id(), 0)
    monkeypatch.setenv("DUMPJOB_BACKGROUND_NICE", "lots")
    with pytest.raises(ConfigError, match="DUMPJOB_BACKGROUND_NICE='lots' is not a nice increment; use 0-19"):
        priority.increment()


def test_zstd_stream_is_read_by_the_zstd_tool(real_dump):
    out: list[bytes] = []
    z = compress.make(Compression("zstd", 1, 2), out.append)
    z.feed(real_dump)
    z.finish()
    proc = subprocess.run(["zstd", "-d", "-c"], input=b"".join(out), capture_output=True, check=True)
    assert proc.stdout == real_dump


def test_part_sizes_fit_a_terabyte_in_ten_thousand_parts():
    assert upload.capacity(8) >= 10**12
    assert upload.part_size(1, 8) == 8 << 20
    assert upload.part_size(1001, 8) == 16 << 20
    assert all(upload.part_size(n, 8) >= 5 << 20 for n in (1, 5000, 10000))
    assert upload.part_size(10000, 8) <= 5 << 30  # S3's largest part


def test_csv_encoding_quotes_what_rfc4180_requires():
    enc = CsvEncoder(CsvFormat())
    line = enc.line(["plain", 'say "hi"', "a,b", "two\nlines", "", None, "NULL", " pad", "日本語", b"\x00\xff"])
    assert line == 'plain,"say ""hi""","a,b","two\nlines","",NULL,"NULL"," pad",日本語,0x00FF\r\n'


@pytest.mark.parametrize("password", ['p"q', "a\\b", "x y", "$#;'", "パス\\\"ワード", "end\\"])
def test_option_file_quoting_is_read_back_by_the_real_client(password, tmp_path):
    creds = DbCredentials("db.example", 3306, "u", password)
    path = tmp_path / "client.cnf"
    path.write_bytes(mysqldump.option_file(creds, None))
    proc = subprocess.run(["my_print_defaults", f"--defaults-file={path}", "client"], capture_output=True,
                          text=True, check=True)
    assert f"--password={password}" in proc.stdout.splitlines()


def test_stderr_and_exit_status_classification():
    assert mysqldump.failure(0, [], (), 10) is None
    assert mysqldump.failure(0, ["mysqldump: Deprecated program name. It will be removed"], (), 10) is None
    assert isinstance(mysqldump.failure(-9, [], (), 10), DumpIncompleteError)
    lost = mysqldump.failure(2, ["mysqldump: Error 2013: Lost connection to server during query"], (), 10)
    assert isinstance(lost, DatabaseError)
    noise = mysqldump.failure(0, ["mysqldump: Couldn't read status"], (), 10)
    assert isinstance(noise, DumpIncompleteError) and "harmless_warnings" in str(noise)
    assert mysqldump.failure(0, ["mysqldump: Couldn't read status"], (r"Couldn't read status",), 10) is None


def test_digest_calls_rebatched_rows_equivalent_not_identical(real_dump):
    oracle = re.sub(rb"VALUES\n", b"VALUES ", real_dump).replace(b"),\n(", b"),(")
    a = dump_sections(iter(real_dump.split(b"\n")))
    b = dump_sections(iter(oracle.split(b"\n")))
    assert a["tenants"]["content_sha256"] == b["tenants"]["content_sha256"]
    assert a["tenants"]["rows"] == b["tenants"]["rows"] > 0
    assert a["tenants"]["ddl_sha256"] == b["tenants"]["ddl_sha256"]
    from dumpjob.compare import compare_sections
    verdicts = {t["name"]: t["verdict"] for t in compare_sections(a, b)}
    assert verdicts["tenants"] == "equivalent"
    assert verdicts["(routines basis)"] == "identical"


def test_log_lines_reach_journald_and_never_carry_a_secret(tmp_path, monkeypatch):
    import io
    import json
    import socket

    from dumpjob import log

    path = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    monkeypatch.setattr(log, "JOURNAL_SOCKET", path)
    monkeypatch.delenv("DUMPJOB_NO_SYSLOG", raising=False)
    out = io.StringIO()
    logger = log.Logger(job="basis", stream=out, system_log=True)
    logger.add_secret('pa"ss\\word')
    logger.error("error", 'login failed for pa"ss\\word', exit_code=5)
    datagram = server.recv(65536).decode()
    fields = dict(line.split("=", 1) for line in datagram.strip().split("\n"))
    assert fields["PRIORITY"] == "3" and fields["SYSLOG_IDENTIFIER"] == "dumpjob"
    record = json.loads(fields["MESSAGE"])
    assert record["job"] == "basis" and record["exit_code"] == 5 and "[REDACTED]" in record["msg"]
    assert "ss\\\\word" not in datagram and "ss\\\\word" not in out.getvalue() and 'pa\\"ss' not in out.getvalue()
    server.close()


ARENAS_PROGRAM = """
import ctypes, os, sys, threading
from dumpjob import memory
took = memory.limit_arenas() if sys.argv[1] == "limit" else False
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
ready, done = threading.Barrier(7), threading.Event()
def allocate():
    libc.malloc(64 * 1024)  # below the mmap threshold: from the thread's arena
    ready.wait()
    done.wait()
threads = [threading.Thread(target=allocate) for _ in range(6)]
for t in threads:
    t.start()
ready.wait()
os.write(1, f"{took}\\n".encode())
libc.malloc_stats()  # to stderr, one 'Arena N:' block per arena
done.set()
"""


@pytest.mark.parametrize("mode, env, took, most", [("limit", {}, "True", 2), ("leave", {}, "False", 99),
                                                  ("limit", {"MALLOC_ARENA_MAX": "4"}, "False", 4)])
def test_malloc_arenas_are_limited_unless_the_environment_says(mode, env, took, most):
    """Six allocating threads share at most two arenas once limit_arenas() ran; without it glibc
    gives them more, and MALLOC_ARENA_MAX in the environment is left to glibc."""
    proc = subprocess.run([sys.executable, "-c", ARENAS_PROGRAM, mode], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env)
    assert proc.returncode == 0, proc.stderr
    arenas = len(re.findall(r"^Arena \d+:", proc.stderr, re.M))
    assert proc.stdout.strip() == took
    assert 1 <= arenas <= most
    if mode == "leave":
        assert arenas > 2  # the limit is what makes the difference
