"""The progress line: how far along a dump is against the previous dump's raw size, and the time
left at the rate so far - none without a previous size, and no time left once the dump is past it."""

from __future__ import annotations

import io
import json

from dumpjob.log import Logger
from dumpjob.run import Progress, estimate

MIB = 2**20


def test_percent_and_time_left_at_the_rate_so_far():
    assert estimate(256 * MIB, 1024 * MIB, 60.0) == (25.0, 180.0)
    assert estimate(0, 1024 * MIB, 5.0) == (0.0, None)  # nothing dumped yet: no rate
    assert estimate(1100 * MIB, 1024 * MIB, 60.0)[1] is None  # past the previous size
    assert estimate(100, None, 60.0) == (None, None)
    assert estimate(100, 0, 60.0) == (None, None)


def _line(raw: int, expected, elapsed: float) -> dict:
    out = io.StringIO()
    progress = Progress(Logger("basis", out), 10.0)
    progress.raw, progress.compressed, progress.expected, progress.table = raw, raw // 5, expected, "contracts"
    progress.report(elapsed)
    return json.loads(out.getvalue())


def test_the_line_says_how_far_along_and_how_long_is_left():
    line = _line(512 * MIB, 1024 * MIB, 150.0)
    assert line["percent"] == 50.0 and line["eta_seconds"] == 150
    assert "512 MiB dumped (50% of the previous dump's size, about 2 min 30 s left)" in line["msg"]
    assert line["table"] == "contracts"


def test_without_a_previous_dump_or_past_it_the_line_says_no_time():
    first = _line(512 * MIB, None, 150.0)
    assert first["percent"] is None and first["eta_seconds"] is None and "previous" not in first["msg"]
    grown = _line(1100 * MIB, 1024 * MIB, 150.0)
    assert grown["eta_seconds"] is None and "107% of the previous dump's size, past it" in grown["msg"]
