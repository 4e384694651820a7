"""The legacy line is found by its command, disabled with a marker carrying the job name, and
restored byte for byte, on crontabs as untidy as real ones; the new cron.d entry renders in
cron's grammar."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import crontab_edit as edit
from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError, LegacyLineError

REPO = Path(__file__).resolve().parents[2]
WHEN = "2026-11-25T23:26:04Z"
MAIN = "/home/ec2-user/scripts/ggh_datatransit.sh"
STATUS = "/home/ec2-user/scripts/ggh_contract_status.sh"
SNAPSHOT = "/home/ec2-user/scripts/ggh_schema_snapshot.sh"

# Everything odd a hand-kept crontab has: CRLF lines, tabs, trailing spaces, env lines with and
# without spaces, a comment and a commented-out copy naming the script, @daily, a line that
# looks the same twice, and no newline at the end.
UGLY = (
    "MAILTO=dba-alerts@jram.example\n"
    "SHELL=/bin/bash\r\n"
    "FOO = bar baz\n"
    "# ggh_datatransit.sh runs at 05:30 JST\n"
    "#30 20 * * * /home/ec2-user/scripts/ggh_datatransit.sh --old\n"
    "\n"
    "30\t20 * * *\t/home/ec2-user/scripts/ggh_datatransit.sh >> /home/ec2-user/logs/t.log 2>&1   \n"
    "0  21 * * * /home/ec2-user/scripts/ggh_contract_status.sh\r\n"
    "   \t\n"
    "@daily /home/ec2-user/scripts/ggh_schema_snapshot.sh\n"
    "0 19 * * 6 /home/ec2-user/scripts/ggh_schema_snapshot.sh"
)


def locate(text, job, match, regex=False, system=False):
    return edit.locate(edit.split_lines(text), job, edit.compile_match(match, regex), system, "crontab", match)


def disable_restore(text, job, match, system=False):
    lines = edit.split_lines(text)
    state = locate(text, job, match, system=system)
    disabled = edit.disable(lines, state, job, WHEN)
    after = edit.locate(disabled, job, edit.compile_match(match, False), system, "crontab", match)
    restored = edit.restore(disabled, after)
    return state, "".join(disabled), after, "".join(restored)


@pytest.mark.parametrize("text", ["", "a", "\n", "a\n", "a\nb", "a\r\nb\r\n", "\n\n", "x\r", "a\n\nb\n\n\n",
                                  "tab\t\nsp  \n", "\u3042\n\x0c\x1c\u2028\n"])
def test_split_lines_keeps_every_byte(text):
    lines = edit.split_lines(text)
    assert "".join(lines) == text
    assert all(line.endswith("\n") for line in lines[:-1])
    assert all("\n" not in line[:-1] for line in lines)


def test_split_lines_random_texts_round_trip():
    rng = random.Random(5)
    for _ in range(500):
        text = "".join(rng.choice("ab #*\t\r\n=\u3042") for _ in range(rng.randrange(40)))
        assert "".join(edit.split_lines(text)) == text


def test_finds_the_job_line_not_comments_or_env_lines():
    state = locate(UGLY, "datatransit", "ggh_datatransit.sh")
    assert state.status == "active"
    assert [entry.index for entry in state.active] == [6]
    assert state.active[0].schedule == "30 20 * * *"
    assert state.command == f"{MAIN} >> /home/ec2-user/logs/t.log 2>&1"


@pytest.mark.parametrize(("job", "match", "index"), [
    ("datatransit", "ggh_datatransit.sh", 6),
    ("contract_status", "ggh_contract_status.sh", 7),   # CRLF line
])
def test_disable_and_restore_byte_for_byte(job, match, index):
    _, disabled, after, restored = disable_restore(UGLY, job, match)
    before_lines = edit.split_lines(UGLY)
    disabled_lines = edit.split_lines(disabled)
    assert restored == UGLY
    assert after.status == "disabled" and after.disabled == (index,)
    assert disabled_lines[index] == f"#jram.dumphost[{job}] disabled {WHEN}: " + before_lines[index]
    # every other line is untouched
    assert [line for i, line in enumerate(disabled_lines) if i != index] == \
           [line for i, line in enumerate(before_lines) if i != index]
    assert edit.marker_job(disabled_lines[index]) == job


def test_crlf_line_keeps_its_carriage_return_inside_the_marker():
    _, disabled, _, _ = disable_restore(UGLY, "contract_status", "ggh_contract_status.sh")
    assert f"disabled {WHEN}: 0  21 * * * {STATUS}\r\n" in disabled


def test_a_job_line_that_appears_twice_is_one_job_disabled_and_restored_together():
    state, disabled, after, restored = disable_restore(UGLY, "snapshot", SNAPSHOT)
    assert [entry.index for entry in state.active] == [9, 10]
    assert after.disabled == (9, 10)
    assert restored == UGLY
    # the last line had no newline and still has none
    assert disabled.endswith(f"#jram.dumphost[snapshot] disabled {WHEN}: 0 19 * * 6 {SNAPSHOT}")


def test_identical_duplicate_lines_round_trip():
    text = f"0 1 * * * {MAIN}\n0 1 * * * {MAIN}\n"
    state, disabled, after, restored = disable_restore(text, "datatransit", MAIN)
    assert len(state.active) == 2 and after.status == "disabled" and restored == text
    assert disabled.count("#jram.dumphost[datatransit]") == 2


def test_a_match_spanning_different_commands_is_refused_with_the_lines():
    with pytest.raises(LegacyLineError) as exc:
        locate(UGLY, "all", "ggh_")
    message = str(exc.value)
    assert "matches 3 different commands" in message and "line 7:" in message and "line 8:" in message
    assert "make legacy.match specific" in message


def test_regex_match_and_a_bad_regex():
    state = locate(UGLY, "datatransit", r"ggh_data\w+\.sh\b", regex=True)
    assert [entry.index for entry in state.active] == [6]
    with pytest.raises(InvalidOptionError, match="not a valid regular expression"):
        edit.compile_match("ggh_(", True)
    with pytest.raises(InvalidOptionError, match=r"legacy\.match is empty"):
        edit.compile_match("  ", False)


def test_other_jobs_markers_are_left_alone():
    _, disabled, _, _ = disable_restore(UGLY, "datatransit", "ggh_datatransit.sh")
    lines = edit.split_lines(disabled)
    status = locate(disabled, "contract_status", "ggh_contract_status.sh")
    twice = edit.disable(lines, status, "contract_status", WHEN)
    # restoring contract_status leaves datatransit disabled
    back = edit.restore(twice, edit.locate(twice, "contract_status", edit.compile_match("x", False), False, "c", "x"))
    assert "".join(back) == disabled
    # and the datatransit marker is neither active nor contract_status's
    assert locate(disabled, "datatransit", "ggh_datatransit.sh").status == "disabled"


def test_mixed_state_is_reported():
    _, disabled, _, _ = disable_restore(UGLY, "datatransit", "ggh_datatransit.sh")
    readded = disabled + f"\n30 20 * * * {MAIN}\n"
    assert locate(readded, "datatransit", MAIN).status == "mixed"


def test_remove_drops_only_the_jobs_lines():
    state = locate(UGLY, "snapshot", SNAPSHOT)
    lines = edit.split_lines(UGLY)
    removed = "".join(edit.remove(lines, state))
    assert SNAPSHOT not in removed
    assert removed == "".join(lines[:9])
    _, disabled, after, _ = disable_restore(UGLY, "datatransit", MAIN)
    assert "".join(edit.remove(edit.split_lines(disabled), after)) == "".join(
        line for i, line in enumerate(edit.split_lines(UGLY)) if i != 6)


def test_system_crontab_lines_have_a_user_field():
    text = "SHELL=/bin/sh\n# m h dom mon dow user command\n15 3 * * *  root  /usr/local/sbin/legacy-dump.sh --all\n"
    state = locate(text, "legacy", "legacy-dump.sh", system=True)
    assert state.active[0].user == "root" and state.active[0].schedule == "15 3 * * *"
    assert state.command == "/usr/local/sbin/legacy-dump.sh --all"
    _, _, _, restored = disable_restore(text, "legacy", "legacy-dump.sh", system=True)
    assert restored == text


def test_the_sandbox_legacy_crontab_round_trips_for_each_job():
    text = (REPO / "sandbox/legacy/crontab").read_text()
    for job, script in (("datatransit", MAIN), ("contract_status", STATUS), ("schema_snapshot", SNAPSHOT)):
        state, disabled, after, restored = disable_restore(text, job, script)
        assert len(state.active) == 1 and after.status == "disabled" and restored == text
        assert disabled != text


def test_parse_job_line_shapes():
    assert edit.parse_job_line("@reboot /x\n", 0, False).schedule == "@reboot"
    assert edit.parse_job_line("  # 30 20 * * * /x\n", 0, False) is None
    assert edit.parse_job_line("PATH=/usr/bin:/bin\n", 0, False) is None
    assert edit.parse_job_line("MAILTO = \"\"\n", 0, False) is None
    assert edit.parse_job_line("30 20 * *\n", 0, False) is None  # too short: cron skips it
    assert edit.parse_job_line("30 20 * * * FOO=1 /x\n", 0, False).command == "FOO=1 /x"
    assert edit.parse_job_line("*/5 * * * * root /x y\r\n", 0, True).command == "/x y"


def test_script_of_and_its_other_users():
    assert edit.script_of(f"{MAIN} >> /log 2>&1") == MAIN
    assert edit.script_of("cd /home/ec2-user && ./run.sh") is None
    assert edit.script_of("$HOME/x.sh") is None
    text = f"0 1 * * * {MAIN}\n0 2 * * * /usr/bin/flock -n /tmp/l {MAIN} --again\n"
    state = locate(text, "datatransit", f"{MAIN}$", regex=True)
    users = edit.other_users_of(edit.split_lines(text), MAIN, state, False)
    assert [entry.index for entry in users] == [1]


def test_disabled_commands_reads_the_original_commands():
    _, disabled, after, _ = disable_restore(UGLY, "datatransit", MAIN)
    assert edit.disabled_commands(edit.split_lines(disabled), after, False) == [
        f"{MAIN} >> /home/ec2-user/logs/t.log 2>&1"]


@pytest.mark.parametrize("name", ["datatransit", "contract_status", "contract-status", "job2", "A"])
def test_job_names_accepted(name):
    assert edit.validate_job_name(name) == name


@pytest.mark.parametrize("name", ["", "a.b", "a b", "-x", "_x", "x/y", "ジョブ", "a" * 65, "x]"])
def test_job_names_refused(name):
    with pytest.raises(InvalidOptionError, match="cron ignores"):
        edit.validate_job_name(name)


def test_env_lines_defaults_order_and_refusals():
    lines = edit.validate_env({"ZED": "1", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:18169",
                               "MAILTO": ""})
    assert lines[:2] == ["SHELL=/bin/sh", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert lines[2:] == ["AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:18169", "MAILTO=", "ZED=1"]
    assert edit.validate_env({"PATH": "/opt/bin:/usr/bin"})[1] == "PATH=/opt/bin:/usr/bin"
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"):
        with pytest.raises(InvalidOptionError, match=f"must not set {name}: static AWS credentials"):
            edit.validate_env({name: "x"})
    with pytest.raises(InvalidOptionError, match="CRON_TZ: the schedule is already converted"):
        edit.validate_env({"CRON_TZ": "Asia/Tokyo"})
    with pytest.raises(InvalidOptionError, match="line break"):
        edit.validate_env({"A": "x\ny"})
    with pytest.raises(InvalidOptionError, match="would strip"):
        edit.validate_env({"A": " x"})
    with pytest.raises(InvalidOptionError, match="would strip"):
        edit.validate_env({"A": '"x"'})
    with pytest.raises(InvalidOptionError, match="not a valid environment variable name"):
        edit.validate_env({"1A": "x"})


def test_program_and_user_validation():
    assert edit.validate_program("/usr/local/bin/dumpjob") == "/usr/local/bin/dumpjob"
    for bad in ("dumpjob", "/opt/my dumpjob", "/x%y", "/x;rm"):
        with pytest.raises(InvalidOptionError, match="dumpjob_bin"):
            edit.validate_program(bad)
    assert edit.validate_cron_user("dumpjob") == "dumpjob"
    with pytest.raises(InvalidOptionError, match="cron_user"):
        edit.validate_cron_user("Dump Job")


def test_rendered_entry_is_deterministic_and_in_cron_grammar():
    env = edit.validate_env({"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:18169"})
    text = edit.render_cron_d("datatransit", "parallel", ["30 20 * * *"], "30 5 * * *", "Asia/Tokyo", "Etc/UTC",
                              "dumpjob", "/usr/local/bin/dumpjob", env)
    assert text == edit.render_cron_d("datatransit", "parallel", ["30 20 * * *"], "30 5 * * *", "Asia/Tokyo",
                                      "Etc/UTC", "dumpjob", "/usr/local/bin/dumpjob", env)
    assert text.endswith("30 20 * * * dumpjob /usr/local/bin/dumpjob run datatransit --parallel\n")
    assert "# Schedule '30 5 * * *' in Asia/Tokyo, written below in the host zone Etc/UTC" in text
    prod = edit.render_cron_d("datatransit", "cutover", ["0 18 * * 0", "0 3 * * 1"], "0 3,12 * * 1",
                              "Asia/Tokyo", "Etc/UTC", "dumpjob", "/usr/local/bin/dumpjob", env)
    entries = [line for line in prod.splitlines()
               if not line.startswith("#") and not re.match(r"^[A-Z_0-9]+=", line)]
    assert entries[0] == "@reboot dumpjob /usr/local/bin/dumpjob catch-up datatransit"
    assert entries[1:] == ["0 18 * * 0 dumpjob /usr/local/bin/dumpjob run datatransit",
                           "0 3 * * 1 dumpjob /usr/local/bin/dumpjob run datatransit"]
    assert "\n@reboot dumpjob /usr/local/bin/dumpjob catch-up datatransit --parallel\n30 20 * * * " in text
    assert edit.system_file_problem(prod) is None and edit.system_file_problem(text) is None
    assert [edit.entry_problem(line, True) for line in entries] == [None, None, None]
    # 4 fields: the command's path is read as the day of week; a user name cron would not take
    assert edit.entry_problem("30 20 * * /usr/local/bin/dumpjob run x", True) == "bad day-of-week field"
    assert edit.entry_problem("30 20 * * * Dump/Job /usr/local/bin/dumpjob run x", True) == "bad user name"
    assert edit.system_file_problem("30 20 * * dumpjob\n") == "its line 1 is not a system crontab entry"
