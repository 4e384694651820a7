"""The host's zone is read the way cron's libc reads it, files are replaced atomically with the
intended mode, and a retired script lands root-only in the archive before the original goes."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import host_files as hf
from ansible_collections.jram.dumphost.plugins.module_utils.errors import HostError, ScheduleError

ZONEINFO = "/usr/share/zoneinfo"
needs_tzdata = pytest.mark.skipif(not os.path.exists(f"{ZONEINFO}/Asia/Tokyo"), reason="no system tzdata here")


@needs_tzdata
@pytest.mark.parametrize(("target", "name"), [("Etc/UTC", "Etc/UTC"), ("Asia/Tokyo", "Asia/Tokyo"),
                                              ("posix/Asia/Tokyo", "Asia/Tokyo")])
def test_host_zone_from_a_symlink(tmp_path, target, name):
    if not os.path.exists(f"{ZONEINFO}/{target}"):
        pytest.skip(f"{target} not in this tzdata")
    link = tmp_path / "localtime"
    link.symlink_to(f"{ZONEINFO}/{target}")
    zone, got = hf.host_zone(str(link))
    assert got == name
    assert dt.datetime(2026, 7, 1, tzinfo=zone).utcoffset() == dt.datetime(2026, 7, 1, tzinfo=hf.zone(name)).utcoffset()


@needs_tzdata
def test_host_zone_from_a_copied_file(tmp_path):
    copy = tmp_path / "localtime"
    copy.write_bytes(Path(f"{ZONEINFO}/America/New_York").read_bytes())
    zone, name = hf.host_zone(str(copy))
    assert name == str(copy)
    assert dt.datetime(2026, 1, 1, 12, tzinfo=zone).utcoffset() == dt.timedelta(hours=-5)
    assert dt.datetime(2026, 7, 1, 12, tzinfo=zone).utcoffset() == dt.timedelta(hours=-4)


def test_no_localtime_means_utc(tmp_path):
    zone, name = hf.host_zone(str(tmp_path / "missing"))
    assert name == "UTC" and dt.datetime(2026, 7, 1, tzinfo=zone).utcoffset() == dt.timedelta(0)


def test_garbage_localtime_is_refused(tmp_path):
    bad = tmp_path / "localtime"
    bad.write_text("not a tzfile")
    with pytest.raises(ScheduleError, match="cannot read the host's time zone"):
        hf.host_zone(str(bad))


def test_unknown_zone_names():
    with pytest.raises(ScheduleError, match="'Asia/Tokio' is unknown on the host"):
        hf.zone("Asia/Tokio")
    with pytest.raises(ScheduleError, match="unknown on the host"):
        hf.zone("../../etc/passwd")


def test_write_file_is_atomic_with_mode_and_keeps_bytes(tmp_path):
    path = tmp_path / "dumpjob-x"
    text = "a\r\n\tb  \n\udcff"  # a CR, a tab, trailing spaces and a byte that is not UTF-8
    hf.write_file(str(path), text, 0o644, os.getuid(), os.getgid())
    assert path.read_bytes() == b"a\r\n\tb  \n\xff"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert hf.read_text(str(path)) == text
    hf.write_file(str(path), "new\n", 0o600)
    assert path.read_text() == "new\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["dumpjob-x"]
    assert hf.read_text(str(tmp_path / "missing")) is None


def test_write_into_a_missing_directory_is_a_host_error(tmp_path):
    with pytest.raises(HostError, match="cannot write"):
        hf.write_file(str(tmp_path / "nope" / "f"), "x", 0o644)


def test_archive_script_moves_it_root_only(tmp_path):
    script = tmp_path / "home" / "ggh_datatransit.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/bash\nDB_PASS='secret'\n")
    script.chmod(0o755)
    archive = tmp_path / "archive"
    record = hf.archive_script(str(script), str(archive), "datatransit")
    dest = archive / "datatransit" / "ggh_datatransit.sh"
    assert not script.exists()
    assert dest.read_text() == "#!/bin/bash\nDB_PASS='secret'\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700 and stat.S_IMODE(dest.parent.stat().st_mode) == 0o700
    assert record == {"source": str(script), "archive": str(dest), "sha256": hf.sha256(str(dest)), "mode": "0755",
                      "uid": os.getuid(), "gid": os.getgid()}
    assert sorted(os.listdir(dest.parent)) == ["ggh_datatransit.sh"]


def test_archive_refuses_to_overwrite_a_different_archived_file(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("new\n")
    dest = tmp_path / "archive" / "job" / "job.sh"
    dest.parent.mkdir(parents=True)
    dest.write_text("older\n")
    with pytest.raises(HostError, match="already exists with other content"):
        hf.archive_script(str(script), str(tmp_path / "archive"), "job")
    assert script.read_text() == "new\n" and dest.read_text() == "older\n"
