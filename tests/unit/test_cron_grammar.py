"""One cron grammar, two homes: the collection's (plugins/module_utils/cron_schedule.py, used by
cron_cutover, deadline_alarm and crontab_edit) and the dump program's check of a job's schedule
(src/dumpjob/config.py, installed on its own without Ansible, so it cannot import the first).
One table: both accept, or both refuse, every expression in it; and what they accept, cron's
crontab command accepts too (crontab_edit's reading of a whole crontab line)."""

from __future__ import annotations

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import crontab_edit
from ansible_collections.jram.dumphost.plugins.module_utils.cron_schedule import parse_schedule
from ansible_collections.jram.dumphost.plugins.module_utils.errors import ScheduleError

from dumpjob.config import cron_problem

ACCEPTED = [
    "30 5 * * *", "0 4 * * sun", "0 4 * * SUN", "0 4 * * 0,7", "0 4 * * 7", "*/15 1-5 * * mon-fri",
    "0 0 1 jan-mar,dec *", "59 23 31 12 6", "0-59/10 0-23/2 1-31/3 1-12/4 0-6/2", "0 0 * * *",
    "5,10,15 1,2 * * *", "0\t4  *\t* *", "00 04 01 01 00", "*/1 * * * *",
    "@daily", "@DAILY", "@weekly", "@monthly", "@yearly", "@annually", "@hourly", "@midnight", "@reboot",
]
REFUSED = [
    "", "   ", "every day", "30 5 * *", "30 5 * * * *", "30 5 * * *\n", "30 5 * *\n*", "30 5\r* * *",
    "60 5 * * *", "30 24 * * *", "0 0 0 * *", "0 0 32 * *", "0 0 * 0 *", "0 0 * 13 *", "0 0 * * 8",
    "5-3 * * * *", "0 0 * * sat-sun", "0 0 * dec-jan *",          # backwards: cron never fires them
    "5/3 * * * *", "0 4/2 * * *",                                   # a step needs a range or *
    "*/0 * * * *", "1-5/0 * * * *", "*/-1 * * * *", "*/x * * * *", "*/5/2 * * * *",
    "1- * * * *", "-1 * * * *", "1-2-3 * * * *", "1,,2 * * * *", "1, * * * *", ",1 * * * *", "*-5 * * * *",
    "? * * * *", "L * * * *", "0 0 * foo *", "0 0 * * funday", "jan 0 * * *", "0 0 mon * *",
    "\u0663 * * * *",                                               # an Arabic-Indic digit
    "@every5", "@reboot now", "@", "@daily *",
]


def collection_accepts(expression: str) -> bool:
    try:
        parse_schedule(expression)
    except ScheduleError:
        return False
    return True


@pytest.mark.parametrize("expression", ACCEPTED)
def test_both_accept(expression):
    assert collection_accepts(expression)
    assert cron_problem(expression) is None
    # and cron's crontab command takes it in a line of a user and of a system crontab
    assert crontab_edit.entry_problem(f"{expression} /usr/local/bin/x", False) is None
    assert crontab_edit.entry_problem(f"{expression} root /usr/local/bin/x", True) is None


@pytest.mark.parametrize("expression", REFUSED)
def test_both_refuse(expression):
    assert not collection_accepts(expression)
    assert cron_problem(expression)


@pytest.mark.parametrize(("expression", "reason"), [
    ("5-3 * * * *", None), ("5/3 * * * *", None),                   # cron installs (and never fires) these
    ("60 5 * * *", "minute 60 out of range 0-59"), ("*/0 * * * *", "minute step must be 1 or more"),
    ("0 0 * foo *", "bad month field"), ("@every5", "unknown schedule shorthand @every5"),
])
def test_a_crontab_line_is_read_as_cron_reads_it(expression, reason):
    assert crontab_edit.entry_problem(f"{expression} /usr/local/bin/x", False) == reason
