"""cron_cutover's main(), driven as Ansible drives it, on a legacy system crontab file, cron.d
directory, ledger and archive under a temporary directory: check mode predicts exactly and
changes nothing, a second run changes nothing, the round trip restores every byte, and gates and
bad input are refused with a clear message before anything changes."""

from __future__ import annotations

import json
import multiprocessing
import re
import resource
import signal
import stat
from pathlib import Path

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as lg
from ansible_collections.jram.dumphost.plugins.modules import cron_cutover
from sandboxtest import run_module

LEGACY = (
    "# legacy dump jobs, kept by hand\n"
    "MAILTO=dba-alerts@jram.example\r\n"
    "SHELL=/bin/bash\n"
    "\n"
    "30\t20 * * *\troot  {home}/ggh_datatransit.sh >> /var/log/t.log 2>&1   \n"
    "0  21 * * * root {home}/ggh_contract_status.sh\n"
    "#0 21 * * * root {home}/ggh_contract_status.sh --old-copy\n"
    "0 19 * * 6 root {home}/ggh_schema_snapshot.sh"
)
MARKER_TIME = re.compile(r"(#jram\.dumphost\[[^\]]+\] disabled )[0-9TZ:-]+(: )")


class Host:
    """A host in a directory: the module's paths all point inside it."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "home"
        self.home.mkdir()
        for name in ("ggh_datatransit.sh", "ggh_contract_status.sh", "ggh_schema_snapshot.sh"):
            script = self.home / name
            script.write_text(f"#!/bin/bash\n# {name}\nDB_PASS='GgH0use#2019'\n")
            script.chmod(0o755)
        self.legacy = root / "etc-cron.d" / "legacy-dumps"
        self.legacy.parent.mkdir()
        self.original = LEGACY.format(home=self.home).encode()
        self.legacy.write_bytes(self.original)
        self.legacy.chmod(0o640)
        self.cron_dir = root / "cron.d"
        self.cron_dir.mkdir()
        self.ledger = root / "lib" / "cutover.json"
        self.archive = root / "lib" / "legacy-archive"
        self.program = root / "bin" / "dumpjob"
        self.program.parent.mkdir()
        self.program.write_text("#!/bin/sh\nexit 0\n")
        self.program.chmod(0o755)

    def args(self, job="datatransit", phase="parallel", match=None, **extra) -> dict:
        match = match or {"datatransit": "ggh_datatransit.sh", "contract_status": "ggh_contract_status.sh",
                          "schema_snapshot": "ggh_schema_snapshot.sh"}[job]
        args = dict(job=job, phase=phase, legacy=dict(file=str(self.legacy), match=match),
                    schedule={"datatransit": "30 5 * * *", "contract_status": "0 6 * * *",
                              "schema_snapshot": "0 4 * * sun"}[job],
                    host_timezone="Etc/UTC", cron_user="root", dumpjob_bin=str(self.program),
                    cron_dir=str(self.cron_dir), ledger_path=str(self.ledger), archive_dir=str(self.archive),
                    controller_user="alice")
        args.update(extra)
        return args

    def snapshot(self) -> dict:
        """Every file and directory under the host with its bytes and mode."""
        found = {}
        for path in sorted(self.root.rglob("*")):
            info = path.lstat()
            found[str(path)] = (stat.S_IMODE(info.st_mode), path.read_bytes() if path.is_file() else None)
        return found

    def record(self, fn, *args, **kw):
        ledger = lg.load(str(self.ledger))
        fn(ledger, *args, **kw)
        lg.write(str(self.ledger), ledger)


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def run(args: dict, check: bool = False, diff: bool = True) -> dict:
    return run_module(cron_cutover.main, args, check=check, diff=diff)


def normalised(diff):
    return json.loads(MARKER_TIME.sub(r"\1<time>\2", json.dumps(diff)))


def change(host: Host, args: dict, expect_transition: bool = True) -> dict:
    """The integration pattern: check (changed) -> apply (changed, same diff) -> check -> apply
    (both unchanged), with check mode leaving every byte alone."""
    before = host.snapshot()
    predicted = run(args, check=True)
    assert predicted.get("failed") is not True, predicted["msg"]
    assert predicted["changed"] is True and predicted["diff"]
    assert host.snapshot() == before, "check mode changed something"
    applied = run(args)
    assert applied["changed"] is True
    assert normalised(applied["diff"]) == normalised(predicted["diff"])
    assert (applied["transition"] is not None) == expect_transition
    for key in ("phase", "previous_phase", "move", "host_schedule", "legacy_state", "legacy_lines", "cron_file"):
        assert applied[key] == predicted[key], key
    after = host.snapshot()
    again = run(args, check=True)
    assert again["changed"] is False and "diff" not in again and again["transition"] is None
    final = run(args)
    assert final["changed"] is False and "diff" not in final
    assert host.snapshot() == after, "a second run changed something"
    return applied


def validate_days(host: Host, job: str, *days: str) -> None:
    for day in days:
        host.record(lg.record_verdict, job, day, "identical", {"tables": 3})


def test_round_trip_legacy_parallel_cutover_parallel_legacy_restores_every_byte(host):
    parallel = change(host, host.args(phase="parallel"))
    assert parallel["previous_phase"] == "legacy" and parallel["move"] == "forward"
    assert parallel["host_schedule"] == ["30 20 * * *"] and parallel["legacy_state"] == "active"
    assert parallel["diff"] == [{
        "before": "", "before_header": "/dev/null", "after_header": str(host.cron_dir / "dumpjob-datatransit"),
        "after": "# jram.dumphost: job datatransit, phase parallel. Managed by jram.dumphost.cron_cutover; "
                 "local edits are replaced.\n"
                 "# Schedule '30 5 * * *' in Asia/Tokyo, written below in the host zone Etc/UTC (cron here fires "
                 "on the host clock).\n"
                 "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                 "# At boot: the scheduled run missed while the host was down, if the job's deadline has not "
                 "passed.\n"
                 f"@reboot root {host.program} catch-up datatransit --parallel\n"
                 f"30 20 * * * root {host.program} run datatransit --parallel\n"}]
    assert host.legacy.read_bytes() == host.original
    entry = host.cron_dir / "dumpjob-datatransit"
    assert stat.S_IMODE(entry.stat().st_mode) == 0o644

    validate_days(host, "datatransit", "2026-11-23", "2026-11-24")
    cutover = change(host, host.args(phase="cutover"))
    assert [d["after_header"] for d in cutover["diff"]] == [f"{host.legacy}, lines of job datatransit", str(entry)]
    own_line = f"30\t20 * * *\troot  {host.home}/ggh_datatransit.sh >> /var/log/t.log 2>&1   \n"
    assert cutover["diff"][0]["before"] == own_line
    assert "MAILTO" not in json.dumps(cutover["diff"])  # nothing of the crontab but the job's own line
    legacy_after = host.legacy.read_text()
    assert re.search(r"^#jram\.dumphost\[datatransit\] disabled \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: "
                     r"30\t20 \* \* \*\troot  .*ggh_datatransit\.sh >> /var/log/t\.log 2>&1   $", legacy_after, re.M)
    assert entry.read_text().endswith(f"30 20 * * * root {host.program} run datatransit\n")
    assert stat.S_IMODE(host.legacy.stat().st_mode) == 0o640  # the legacy file keeps its mode
    assert cutover["legacy_state"] == "disabled" and cutover["legacy_lines"] == [5]

    back = change(host, host.args(phase="parallel"))
    assert back["move"] == "rollback"
    assert host.legacy.read_bytes() == host.original
    change(host, host.args(phase="legacy"))
    assert host.legacy.read_bytes() == host.original
    assert not entry.exists()

    ledger = json.loads(host.ledger.read_text())
    transitions = ledger["jobs"]["datatransit"]["transitions"]
    moves = [(t["from"], t["to"], t["forced"], t["controller_user"]) for t in transitions]
    assert moves == [("legacy", "parallel", False, "alice"), ("parallel", "cutover", False, "alice"),
                     ("cutover", "parallel", False, "alice"), ("parallel", "legacy", False, "alice")]
    assert ledger["jobs"]["datatransit"]["phase"] == "legacy"
    assert stat.S_IMODE(host.ledger.stat().st_mode) == 0o600


def test_cutover_straight_back_to_legacy(host):
    change(host, host.args(phase="parallel"))
    validate_days(host, "datatransit", "2026-11-23", "2026-11-24")
    change(host, host.args(phase="cutover"))
    rollback = change(host, host.args(phase="legacy"))
    assert rollback["move"] == "rollback" and len(rollback["diff"]) == 2
    assert host.legacy.read_bytes() == host.original


def refused(host: Host, args: dict, *needles: str) -> dict:
    """Refused in check mode and for real, with the message, and nothing changed."""
    before = host.snapshot()
    for check in (True, False):
        result = run(args, check=check)
        assert result.get("failed") is True and result.get("changed", False) is False, result
        for needle in needles:
            assert needle in result["msg"], result["msg"]
        assert "\n" not in result["msg"]
    assert host.snapshot() == before
    return result


def test_cutover_without_validations_is_refused(host):
    change(host, host.args(phase="parallel"))
    refused(host, host.args(phase="cutover"), "parallel -> cutover of job datatransit refused",
            "0 validated day(s)", "dump_compare", "force: true with a reason")
    validate_days(host, "datatransit", "2026-11-24")
    refused(host, host.args(phase="cutover"), "1 validated day(s) (2026-11-24) since its entry into parallel at",
            "of the 2 needed")


def test_cutover_of_a_second_job_during_the_soak_is_refused(host):
    for job in ("datatransit", "contract_status"):
        change(host, host.args(job=job, phase="parallel"))
        validate_days(host, job, "2026-11-23", "2026-11-24")
    change(host, host.args(job="contract_status", phase="cutover"))
    refused(host, host.args(phase="cutover"), "job contract_status entered cutover at", "soak_days=2", "wait until")
    forced = change(host, host.args(phase="cutover", force=True, reason="the window is tonight"))
    assert forced["transition"]["forced"] is True and forced["transition"]["reason"] == "the window is tonight"
    assert "job contract_status entered cutover" in forced["transition"]["overridden"][0]


def test_skipping_a_phase_is_refused_even_with_force(host):
    refused(host, host.args(phase="cutover"), "legacy -> cutover skips a phase", "move the job to parallel first")
    refused(host, host.args(phase="cutover", force=True, reason="hurry"), "skips a phase")
    refused(host, host.args(phase="retired"), "retired is reached only from cutover")


def test_retire_needs_production_runs_then_archives_the_script(host):
    change(host, host.args(phase="parallel"))
    change(host, host.args(phase="cutover", force=True, reason="validated by hand"))
    refused(host, host.args(phase="retired"), "cutover -> retired of job datatransit refused",
            "successful production runs on 0 day(s)", "record_run")
    host.record(lg.record_run, "datatransit", "2026-11-25", "ok")
    host.record(lg.record_run, "datatransit", "2026-11-26", "ok")
    script = host.home / "ggh_datatransit.sh"
    content = script.read_bytes()
    predicted = run(host.args(phase="retired"), check=True)
    assert predicted["changed"] is True and script.exists()
    assert predicted["archived"] == {"source": str(script),
                                     "archive": str(host.archive / "datatransit" / "ggh_datatransit.sh")}
    retired = change(host, host.args(phase="retired"))
    archived = host.archive / "datatransit" / "ggh_datatransit.sh"
    assert not script.exists() and archived.read_bytes() == content
    assert stat.S_IMODE(archived.stat().st_mode) == 0o600 and stat.S_IMODE(host.archive.stat().st_mode) == 0o700
    assert retired["archived"]["mode"] == "0755" and retired["legacy_state"] == "absent"
    # only the job's line went; every other byte is the original
    expected = b"".join(line for line in host.original.splitlines(keepends=True) if b"ggh_datatransit" not in line)
    assert host.legacy.read_bytes() == expected
    ledger = json.loads(host.ledger.read_text())
    assert ledger["jobs"]["datatransit"]["archived"][0]["archive"] == str(archived)
    refused(host, host.args(phase="cutover"), "retired, which is final")


def test_retiring_a_script_shared_with_another_line_is_refused(host):
    shared = host.original + f"\n0 3 * * * root {host.home}/ggh_datatransit.sh --weekly-full\n".encode()
    host.legacy.write_bytes(shared)
    args = host.args(phase="parallel", match=f"{host.home}/ggh_datatransit.sh >>")
    change(host, args)
    change(host, {**args, "phase": "cutover", "force": True, "reason": "x"})
    host.record(lg.record_run, "datatransit", "2026-11-25", "ok")
    host.record(lg.record_run, "datatransit", "2026-11-26", "ok")
    refused(host, {**args, "phase": "retired"}, "still used by another active line", "--weekly-full")
    retired = change(host, {**args, "phase": "retired", "legacy": {**args["legacy"], "archive_script": False}})
    assert retired["archived"] is None and (host.home / "ggh_datatransit.sh").exists()


def test_check_mode_predicts_a_forced_cutover_transition(host):
    change(host, host.args(phase="parallel"))
    args = host.args(phase="cutover", force=True, reason="CS needs it")
    predicted = run(args, check=True)
    applied = run(args)
    for key in ("from", "to", "forced", "overridden", "reason", "controller_user", "job"):
        assert predicted["transition"][key] == applied["transition"][key]


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"job": "main.job"}, "job name 'main.job' is not usable"),
    ({"schedule": "30 5 * *"}, "has 4 fields"),
    ({"schedule": "0 5 1 * *"}, "day-of-month 1 moved to the day before"),
    ({"host_timezone": "Europe/London"}, "daylight saving time"),
    ({"timezone": "Asia/Tokio"}, "'Asia/Tokio' is unknown"),
    ({"cron_env": {"AWS_SECRET_ACCESS_KEY": "x"}}, "must not set AWS_SECRET_ACCESS_KEY"),
    ({"force": True}, "force: true needs a reason"),
    ({"force": True, "reason": " "}, "force: true needs a reason"),
    ({"min_validated_days": 0}, "min_validated_days is 0"),
    ({"dumpjob_bin": "dumpjob"}, "must be an absolute path"),
    ({"legacy": {"match": "ggh_datatransit.sh"}}, "one of the following is required: user, file"),
    ({"legacy": {"match": "x", "user": "ec2-user", "file": "/etc/cron.d/x"}}, "mutually exclusive"),
    ({"legacy": {"match": "nothing-like-it", "file": "LEGACY"}}, "no active line in the"),
    ({"legacy": {"match": "ggh_", "file": "LEGACY"}}, "matches 3 different commands"),
    ({"legacy": {"match": "x", "file": "/nonexistent/legacy"}}, "legacy.file /nonexistent/legacy does not exist"),
    ({"legacy": {"match": "x", "user": "no-such-user-here"}}, "legacy.user no-such-user-here does not exist"),
    ({"schedule": None}, "phase is parallel but all of the following are missing: schedule"),
])
def test_bad_input_is_refused_before_anything_changes(host, overrides, needle):
    if "legacy" in overrides and overrides["legacy"].get("file") == "LEGACY":
        overrides = {"legacy": {**overrides["legacy"], "file": str(host.legacy)}}
    args = {**host.args(), **overrides}
    if args.get("schedule") is None:
        del args["schedule"]
    refused(host, args, needle)


def test_a_job_file_pointed_at_the_modules_own_entry_is_refused(host):
    refused(host, host.args(legacy={"file": str(host.cron_dir / "dumpjob-datatransit"), "match": "x"}),
            "the file this module writes")


def test_missing_cron_user_fails_for_real_but_only_warns_in_check_mode(host):
    args = host.args(cron_user="no-such-dumpjob")
    predicted = run(args, check=True)
    assert predicted["changed"] is True
    assert "user no-such-dumpjob (cron_user) does not exist" in json.dumps(predicted["warnings"])
    before = host.snapshot()
    failed = run(args)
    assert failed["failed"] and "create it first" in failed["msg"]
    assert host.snapshot() == before


def test_a_line_readded_by_hand_next_to_its_disabled_copy_is_refused(host):
    change(host, host.args(phase="parallel"))
    change(host, host.args(phase="cutover", force=True, reason="x"))
    host.legacy.write_bytes(host.legacy.read_bytes() + f"\n30 20 * * * root {host.home}/ggh_datatransit.sh\n".encode())
    refused(host, host.args(phase="legacy"), "both an active line of job datatransit", "remove one of them")


def test_a_corrupt_ledger_stops_everything(host):
    host.ledger.parent.mkdir()
    host.ledger.write_text("{")
    refused(host, host.args(), f"ledger {host.ledger} is not valid JSON")


def test_without_a_ledger_the_phase_is_read_from_the_host(host):
    change(host, host.args(phase="parallel"))
    host.ledger.unlink()
    again = run(host.args(phase="parallel"))
    assert again["changed"] is False and again["previous_phase"] == "parallel"
    refused(host, host.args(phase="cutover"), "0 validated day(s)")
    assert not host.ledger.exists()


def test_the_entry_is_repaired_without_a_transition(host):
    change(host, host.args(phase="parallel"))
    entry = host.cron_dir / "dumpjob-datatransit"
    entry.write_text("# edited by hand\n")
    repaired = change(host, host.args(phase="parallel"), expect_transition=False)
    assert repaired["move"] == "stay" and "run datatransit --parallel" in entry.read_text()


def test_schedule_change_rewrites_the_entry_only(host):
    change(host, host.args(phase="parallel"))
    moved = change(host, host.args(phase="parallel", schedule="45 5 * * *"), expect_transition=False)
    assert moved["host_schedule"] == ["45 20 * * *"] and len(moved["diff"]) == 1


def test_cron_env_lines_are_written(host):
    change(host, host.args(cron_env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:18169",
                                     "MAILTO": "dba-alerts@jram.example"}))
    text = (host.cron_dir / "dumpjob-datatransit").read_text()
    assert "\nAWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:18169\nMAILTO=dba-alerts@jram.example\n" in text


def test_no_diff_when_not_asked(host):
    result = run(host.args(), check=True, diff=False)
    assert result["changed"] is True and "diff" not in result


def _run_with_file_size_limit(args: dict, limit: int, queue) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    queue.put(run(args))


def test_a_retirement_cut_short_after_archiving_is_put_back_whole(host):
    # A big legacy file, so that the disk "fills up" when it is rewritten, after the archive.
    padding = ("# " + "x" * 98 + "\n") * 200
    host.original = padding.encode() + host.original
    host.legacy.write_bytes(host.original)
    change(host, host.args(phase="parallel"))
    change(host, host.args(phase="cutover", force=True, reason="x"))
    host.record(lg.record_run, "datatransit", "2026-11-25", "ok")
    host.record(lg.record_run, "datatransit", "2026-11-26", "ok")
    before = host.snapshot()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_with_file_size_limit, args=(host.args(phase="retired"), 16384, queue))
    proc.start()
    proc.join(60)
    failed = queue.get(timeout=5)
    assert failed["failed"] and failed["changed"] is False
    assert f"cannot write {host.legacy}" in failed["msg"] and "the host and the ledger are as before" in failed["msg"]
    assert "\n" not in failed["msg"] and "run the task again" not in failed["msg"]
    assert host.snapshot() == before  # the script is back in place with its mode, the archive gone, the ledger as was

    finished = run(host.args(phase="retired"))
    assert finished["changed"] is True and finished["transition"]["to"] == "retired"
    assert b"ggh_datatransit" not in host.legacy.read_bytes()
    assert run(host.args(phase="retired"))["changed"] is False


MOVES = [  # (phase before, phase after, number of writes of the move)
    ("legacy", "parallel", 2),     # new entry, ledger
    ("parallel", "cutover", 3),    # new entry, legacy line, ledger
    ("cutover", "parallel", 3),    # legacy line, new entry, ledger
    ("cutover", "legacy", 3),      # legacy line, new entry removed, ledger
    ("cutover", "retired", 4),     # new entry, archive, legacy line, ledger
]


def _bring(host: Host, phase: str) -> None:
    if phase == "legacy":
        return
    run(host.args(phase="parallel"))
    validate_days(host, "datatransit", "2026-11-23", "2026-11-24")
    if phase != "parallel":
        run(host.args(phase="cutover", force=True, reason="test"))
        host.record(lg.record_run, "datatransit", "2026-11-25", "ok")
        host.record(lg.record_run, "datatransit", "2026-11-26", "ok")


@pytest.mark.parametrize(("start", "target", "writes"), MOVES)
def test_a_move_stopped_after_any_write_leaves_host_and_ledger_as_before(host, monkeypatch, start, target, writes):
    """The test hook stops the move after its 1st, 2nd... write: every byte, mode and file is as
    before, the error is one line, and the same move then goes through."""
    _bring(host, start)
    before = host.snapshot()
    for n in range(1, writes + 1):
        monkeypatch.setenv(cron_cutover.FAIL_AFTER_WRITES, str(n))
        failed = run(host.args(phase=target))
        assert failed.get("failed") is True and failed["changed"] is False, failed
        assert f"{start} -> {target} of job datatransit not made: stopped after write {n} " in failed["msg"]
        assert "put back" in failed["msg"] and "\n" not in failed["msg"]
        assert host.snapshot() == before, f"write {n} was not put back"
    monkeypatch.setenv(cron_cutover.FAIL_AFTER_WRITES, str(writes + 1))  # more than the move makes
    done = run(host.args(phase=target))
    assert done["changed"] is True and done["phase"] == target and "failed" not in done


def test_the_test_hook_must_be_a_count(host, monkeypatch):
    monkeypatch.setenv(cron_cutover.FAIL_AFTER_WRITES, "first")
    refused(host, host.args(), "is not a number of writes")


def test_no_password_of_the_crontab_reaches_the_diff_or_an_error(host):
    secret_lines = ("0 2 * * * root mysqldump -uroot -pS3cret basis | gzip > /x.gz\n"
                    "MYSQL_PWD=S3cret\n"
                    "0 3 * * * root /opt/x.sh --password=S3cret\n")
    host.original = host.original + b"\n" + secret_lines.encode()
    host.legacy.write_bytes(host.original)
    args = host.args(phase="parallel", match="mysqldump -uroot")
    results = [change(host, args)]
    results.append(change(host, {**args, "phase": "cutover", "force": True, "reason": "x"}))
    results.append(change(host, {**args, "phase": "legacy"}))
    assert host.legacy.read_bytes() == host.original
    text = json.dumps(results)
    assert "S3cret" not in text, re.findall(r".{0,80}S3cret.{0,20}", text)
    assert "-p****" in text and "ggh_" not in text
    ambiguous = refused(host, host.args(phase="parallel", legacy={"file": str(host.legacy), "regex": True,
                                                                  "match": "mysqldump|--password="}),
                        "matches 2 different commands")
    assert "S3cret" not in ambiguous["msg"] and "-p****" in ambiguous["msg"]


FAKE_CRONTAB = """#!/bin/sh
# A stand-in for the system's crontab command, for user crontabs kept under $CRONTAB_SPOOL:
# -l -u USER prints one, -u USER FILE installs one; it refuses a file holding REFUSE (as the real
# command refuses a line it cannot parse) and garbles one holding GARBLE and a disabled line (a
# read-back mismatch of the new crontab, not of the old one put back).
spool="$CRONTAB_SPOOL"
if [ "$1" = "-l" ]; then
    [ -f "$spool/$3" ] || { echo "no crontab for $3" >&2; exit 1; }
    cat "$spool/$3"; exit 0
fi
if grep -q REFUSE "$3"; then
    printf '"%s":2: bad minute\\nerrors in crontab file, can'"'"'t install.\\n' "$3" >&2; exit 1
fi
if grep -q GARBLE "$3" && grep -q '^#jram.dumphost.' "$3"; then sed 's/GARBLE/garbled/' "$3" > "$spool/$2"; exit 0; fi
cat "$3" > "$spool/$2"
"""


@pytest.fixture
def user_host(host, tmp_path, monkeypatch):
    """The host with root's crontab behind a stand-in crontab command."""
    bin_dir, spool = tmp_path / "fakebin", tmp_path / "spool"
    bin_dir.mkdir()
    spool.mkdir()
    (bin_dir / "crontab").write_text(FAKE_CRONTAB)
    (bin_dir / "crontab").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("CRONTAB_SPOOL", str(spool))
    host.spool = spool / "root"
    return host


@pytest.mark.parametrize("poison", ["REFUSE", "GARBLE"])
def test_a_crontab_the_command_refuses_or_garbles_puts_the_new_entry_back(user_host, poison):
    host = user_host
    host.spool.write_text(f"MAILTO=root\n0 1 * * * {host.home}/ggh_datatransit.sh\n")
    args = host.args(legacy={"user": "root", "match": "ggh_datatransit.sh"})
    change(host, args)
    validate_days(host, "datatransit", "2026-11-23", "2026-11-24")
    # Another tool adds a line the pre-check lets through, the command does not.
    host.spool.write_text(host.spool.read_text() + f"# {poison}\n")
    before = host.snapshot()
    failed = run({**args, "phase": "cutover"})
    assert failed.get("failed") is True and failed["changed"] is False, failed
    assert failed["msg"].startswith("parallel -> cutover of job datatransit not made: ")
    expected = "refused the new crontab (1): " if poison == "REFUSE" else "reads back differently"
    assert expected in failed["msg"] and "the host and the ledger are as before" in failed["msg"]
    assert "\n" not in failed["msg"]
    assert host.snapshot() == before


def test_a_user_crontab_without_a_final_newline_is_refused_before_anything(user_host):
    host = user_host
    host.spool.write_text(f"0 1 * * * {host.home}/ggh_datatransit.sh\n")
    args = host.args(legacy={"user": "root", "match": "ggh_datatransit.sh"})
    change(host, args)
    host.spool.write_text(f"0 1 * * * {host.home}/ggh_datatransit.sh")
    refused(host, {**args, "phase": "cutover", "force": True, "reason": "x"},
            "the crontab of user root cannot be changed for job datatransit (as it is, it does not end with a line "
            "break", "nothing was changed")
