"""The plan infers a job's phase from the host when the ledger has none, and never archives an
interpreter or a script another job still runs."""

from __future__ import annotations

import datetime as dt

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import crontab_edit as edit
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as lg
from ansible_collections.jram.dumphost.plugins.module_utils.cutover_plan import Request, infer_phase, plan
from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError, LegacyLineError

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)


def request(phase="retired", match="x.sh", **extra):
    base = dict(job="j", phase=phase, where="crontab of user ec2-user", system=False, match=match, regex=False,
                script=None, archive_script=True, specs=("30 20 * * *",), schedule="30 5 * * *",
                timezone="Asia/Tokyo", host_zone="Etc/UTC", cron_user="dumpjob", program="/usr/local/bin/dumpjob",
                env_lines=tuple(edit.validate_env({})), controller_user="alice")
    base.update(extra)
    return Request(**base)


def in_cutover():
    ledger = lg.empty()
    lg.record_transition(ledger, "j", "parallel", "cutover", NOW, "alice")
    lg.record_run(ledger, "j", "2026-11-24", "ok")
    lg.record_run(ledger, "j", "2026-11-25", "ok")
    return ledger


@pytest.mark.parametrize(("crontab", "cron_d", "phase"), [
    ("0 1 * * * /home/u/x.sh\n", None, "legacy"),
    ("0 1 * * * /home/u/x.sh\n", "anything\n", "parallel"),
    (f"#jram.dumphost[j] disabled {lg.utc_stamp(NOW)}: 0 1 * * * /home/u/x.sh\n", "anything\n", "cutover"),
    (f"#jram.dumphost[j] disabled {lg.utc_stamp(NOW)}: 0 1 * * * /home/u/x.sh\n", None, "cutover"),
    ("MAILTO=x\n", "anything\n", "retired"),
])
def test_infer_phase(crontab, cron_d, phase):
    lines = edit.split_lines(crontab)
    state = edit.locate(lines, "j", edit.compile_match("x.sh", False), False, "c", "x.sh")
    assert infer_phase(state, cron_d) == phase


def test_interpreter_first_commands_need_an_explicit_script():
    crontab = "0 1 * * * /bin/bash /home/u/x.sh\n"
    with pytest.raises(InvalidOptionError, match="system directory"):
        plan(request(), crontab, "x\n", in_cutover(), NOW)
    done = plan(request(script="/home/u/x.sh"), crontab, "x\n", in_cutover(), NOW)
    assert done.script == "/home/u/x.sh" and done.crontab_after == ""


def test_unparseable_command_needs_an_explicit_script_or_no_archive():
    crontab = "0 1 * * * cd /home/u && ./x.sh\n"
    with pytest.raises(InvalidOptionError, match=r"set legacy\.script, or legacy\.archive_script: false"):
        plan(request(), crontab, "x\n", in_cutover(), NOW)
    assert plan(request(archive_script=False), crontab, "x\n", in_cutover(), NOW).script is None


def test_the_program_itself_is_never_archived():
    crontab = "0 1 * * * /usr/local/bin/dumpjob-old x.sh\n"
    with pytest.raises(InvalidOptionError, match="not archived"):
        plan(request(script="/usr/local/bin/dumpjob"), crontab, "x\n", in_cutover(), NOW)


def test_retired_twice_plans_nothing():
    ledger = in_cutover()
    lg.record_transition(ledger, "j", "cutover", "retired", NOW, "alice")
    cron_d = edit.render_cron_d("j", "retired", ["30 20 * * *"], "30 5 * * *", "Asia/Tokyo", "Etc/UTC", "dumpjob",
                                "/usr/local/bin/dumpjob", list(edit.validate_env({})))
    again = plan(request(), "MAILTO=x\n", cron_d, ledger, NOW)
    assert again.move == "stay" and not again.crontab_changed and not again.cron_d_changed
    assert again.script is None and again.transition is None


def in_parallel():
    ledger = lg.empty()
    lg.record_transition(ledger, "j", "legacy", "parallel", NOW, "alice")
    lg.record_verdict(ledger, "j", "2026-11-24", "identical", when=NOW)
    lg.record_verdict(ledger, "j", "2026-11-25", "identical", when=NOW)
    return ledger


ODD = {
    "crlf": "MAILTO=a@b\r\n0 1 * * * /home/u/x.sh >> /l 2>&1\r\n0 2 * * * /home/u/y.sh\r\n",
    "tabs and spaces": "0\t1 * *  *\t/home/u/x.sh  \t\n",
    "comments between": "# one\n\n0 1 * * * /home/u/x.sh\n# two\n  # three\n0 3 * * * /home/u/y.sh\n",
    "env lines": "SHELL=/bin/bash\nPATH = /usr/bin:/bin\n0 1 * * * /home/u/x.sh\nMAILTO=\"\"\n",
    "duplicate lines": "0 1 * * * /home/u/x.sh\n0 1 * * * /home/u/x.sh\n5 1 * * * /home/u/x.sh\n",
    "@reboot": "@reboot /home/u/x.sh\n@daily /home/u/y.sh\n",
    "very long line": "0 1 * * * /home/u/x.sh " + "a" * 4000 + "\n",
    "names and steps": "*/15 1-5/2 1,15 jan-mar mon-fri /home/u/x.sh\n0 0 * * 7 /home/u/y.sh\n",
    "non-utf8 bytes": b"0 1 * * * /home/u/x.sh # caf\xe9\n".decode("utf-8", "surrogateescape"),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_crontabs_go_through_with_every_other_byte_kept(name):
    """cutover, then back to parallel: the crontab is the original byte for byte, and only the
    job's lines change in between."""
    crontab = ODD[name]
    cutover = plan(request(phase="cutover"), crontab, "x\n", in_parallel(), NOW)
    assert cutover.crontab_changed and cutover.job_after.startswith("#jram.dumphost[j] disabled ")
    kept = [line for line in edit.split_lines(crontab) if "x.sh" not in line]
    assert [line for line in edit.split_lines(cutover.crontab_after) if "x.sh" not in line] == kept
    ledger = cutover.ledger
    back = plan(request(phase="parallel"), cutover.crontab_after, cutover.cron_d_after, ledger, NOW)
    assert back.crontab_after == crontab and back.job_after == cutover.job_before


@pytest.mark.parametrize(("crontab", "needle"), [
    ("0 1 * * * /home/u/x.sh", "does not end with a line break"),
    ("0 1 * * * /home/u/x.sh\n61 1 * * * /home/u/y.sh\n", "line 2 is not an entry the crontab command accepts "
                                                          "(minute 61 out of range 0-59)"),
    ("0 1 * * * /home/u/x.sh\n@every5 /home/u/y.sh\n", "unknown schedule shorthand"),
    ("0 1 * * * /home/u/x.sh\n0 1 * *\n", "line 2 is not an entry"),
])
def test_a_crontab_the_crontab_command_would_refuse_is_refused_before_anything(crontab, needle):
    with pytest.raises(LegacyLineError, match="nothing was changed") as exc:
        plan(request(phase="cutover"), crontab, "x\n", in_parallel(), NOW)
    assert needle in str(exc.value) and "/home/u/y.sh" not in str(exc.value)


def test_a_system_crontab_file_without_a_final_newline_goes_through():
    crontab = "0 1 * * * root /home/u/x.sh"
    cutover = plan(request(phase="cutover", system=True), crontab, "x\n", in_parallel(), NOW)
    assert not cutover.crontab_after.endswith("\n")
    back = plan(request(phase="parallel", system=True), cutover.crontab_after, "x\n", cutover.ledger, NOW)
    assert back.crontab_after == crontab


def test_the_diff_texts_hold_only_the_jobs_lines():
    crontab = "MYSQL_PWD=other\n0 1 * * * /home/u/x.sh\n0 2 * * * mysqldump -pOther db\n"
    cutover = plan(request(phase="cutover"), crontab, "x\n", in_parallel(), NOW)
    assert cutover.job_before == "0 1 * * * /home/u/x.sh\n"
    assert cutover.job_after == f"#jram.dumphost[j] disabled {lg.utc_stamp(NOW)}: 0 1 * * * /home/u/x.sh\n"
    retired = plan(request(archive_script=False), cutover.crontab_after, "x\n", in_cutover(), NOW)
    assert retired.job_before == cutover.job_after and retired.job_after == ""
