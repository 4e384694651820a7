"""The plan infers a job's phase from the host when the ledger has none, and never archives an
interpreter or a script another job still runs."""

from __future__ import annotations

import datetime as dt

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import crontab_edit as edit
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as lg
from ansible_collections.jram.dumphost.plugins.module_utils.cutover_plan import Request, infer_phase, plan
from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError

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
