"""Hygiene of the process and of its output: a password with runs of whitespace (two spaces, a tab,
a line break) never reaches a log or an error line, raw or in a normalised form (redaction acts
before whitespace is collapsed); dumpjob writes no core file and is not dumpable; MYSQL_PWD in its
environment is dropped with one warning.

The unit tests embed the password in the raw text on purpose, so that redaction has to act; the
runs show the real paths (a run and the doctor with such a password, a secret that cannot be used)."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from dumpjob_testbed import Proxy, Running, assert_failed, dumpjob

from dumpjob import cli
from dumpjob.errors import DatabaseError, ExitCode
from dumpjob.log import REDACTED, Logger, one_line

# Works as a real MariaDB password (and in the option file mysqldump reads).
SPACED = "two  spaces\tand a tab"
# A line break too: only where the path allows (a MySQL option file cannot carry it).
BROKEN = "two  spaces\tand a\nline break"


def forms(password: str) -> list[str]:
    """What a leak could look like: raw, whitespace-collapsed, and each JSON-escaped."""
    out = [password, one_line(password)]
    return out + [json.dumps(f, ensure_ascii=a)[1:-1] for f in list(out) for a in (True, False)]


def assert_no_leak(password: str, *texts: str) -> None:
    for text in texts:
        for form in forms(password):
            assert form not in text, f"{form!r} leaked in {text[-2000:]!r}"


# -- unit level: the password is in the raw text, redaction must act ------------------------------
@pytest.mark.parametrize("password", [SPACED, BROKEN])
def test_a_log_line_redacts_before_it_collapses_whitespace(password):
    out = io.StringIO()
    log = Logger(job="basis", stream=out)
    log.add_secret(password)
    log.warning("mysqldump_stderr", f"mysqldump: Access denied (using password: {password}) \n  retrying",
                quoted=f"server said '{password}'", nested={"argv": ["--x", password]})
    line = out.getvalue()
    assert line.count("\n") == 1, "not one line"
    record = json.loads(line)
    assert_no_leak(password, line)
    assert record["msg"] == f"mysqldump: Access denied (using password: {REDACTED}) retrying"
    assert record["quoted"] == f"server said '{REDACTED}'" and record["nested"] == {"argv": ["--x", REDACTED]}


@pytest.mark.parametrize("password", [SPACED, BROKEN])
def test_the_error_line_and_the_json_answer_redact_before_they_collapse(password, capsys):
    out = io.StringIO()
    log = Logger(job="basis", stream=out)
    log.add_secret(password)
    exc = DatabaseError(f"login refused: the server quoted {password!s}\nand\t{json.dumps(password)} ; fix it")
    code = cli._fail(argparse.Namespace(json=True), log, exc)
    stdout = capsys.readouterr().out
    assert code == ExitCode.DATABASE
    assert out.getvalue().count("\n") == 1 and stdout.count("\n") == 1, "not one line each"
    assert_no_leak(password, out.getvalue(), stdout)
    answer = json.loads(stdout)
    assert answer["error"] == f"login refused: the server quoted {REDACTED} and \"{REDACTED}\" ; fix it"
    assert json.loads(out.getvalue())["msg"] == answer["error"]


def test_the_doctor_report_is_redacted_in_json_and_in_text(capsys):
    log = Logger(stream=io.StringIO())
    log.add_secret(SPACED)
    report = {"ok": False, "checks": [], "jobs": [{"job": "basis", "ok": False, "checks": [
        {"name": "database", "ok": False, "reason": f"cannot log in: '{SPACED}'\nrejected"}]}]}
    for as_json in (True, False):
        clean = cli._redacted(log, report)
        cli._print(argparse.Namespace(json=as_json), log, clean, cli._doctor_text(clean))
        stdout = capsys.readouterr().out
        assert_no_leak(SPACED, stdout)
        assert f"cannot log in: '{REDACTED}' rejected" in stdout


# -- real runs ------------------------------------------------------------------------------------
@pytest.fixture
def slow_s3(sandbox):
    """S3 (the shared moto) behind a throttling proxy, so that a run lasts a few seconds."""
    proxy = Proxy(target=sandbox.settings.moto_port, rate=250_000).start()
    yield proxy
    proxy.stop()


def test_a_password_with_spaces_and_a_tab_works_and_never_leaks(env, jobfile, make_secret, db_user, prefix, slow_s3):
    user = db_user(SPACED)
    secret = make_secret(username=user, password=SPACED)
    config = jobfile({"basis": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
                                "tables": ["rooms"], "key": f"{prefix}/basis_{{date:%Y%m%d}}.sql.gz"}})
    run = Running("run", "basis", "--config", config, "--json", env={**env, "AWS_ENDPOINT_URL_S3": slow_s3.url})
    # While it runs: no core file for dumpjob nor for its mysqldump child (RLIMIT_CORE is inherited).
    started = run.wait_event("mysqldump")
    limits = {pid: _core_limit(pid) for pid in (run.proc.pid, started["pid"])}
    result = run.finish()
    assert result.code == 0, result.stderr
    assert limits[run.proc.pid] == ("0", "0"), limits
    assert limits[started["pid"]] in (("0", "0"), None), limits  # None: mysqldump was already done
    assert result.logs[-1]["event"] == "summary" and result.json["rows"] > 0
    doctor = dumpjob("doctor", "basis", "--config", config, "--json", env=env)
    assert "logged in as" in json.dumps(doctor.json), doctor.stdout
    assert_no_leak(SPACED, result.stdout, result.stderr, doctor.stdout, doctor.stderr)


def _core_limit(pid: int) -> tuple[str, str] | None:
    try:
        text = Path(f"/proc/{pid}/limits").read_text()
    except OSError:
        return None
    line = next(line for line in text.splitlines() if line.startswith("Max core file size"))
    return tuple(line.split()[4:6])


def test_a_password_with_a_line_break_is_refused_without_echoing_it(env, jobfile, make_secret, prefix):
    secret = make_secret(password=BROKEN)
    config = jobfile({"basis": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
                                "key": f"{prefix}/basis_{{date:%Y%m%d}}.sql.gz"}})
    result = dumpjob("run", "basis", "--config", config, "--json", env=env)
    assert_failed(result, 4, "has a 'password' with a line break")
    assert json.loads(result.stdout)["exit_code"] == 4
    assert_no_leak(BROKEN, result.stdout, result.stderr)


# -- the process ----------------------------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
def test_the_hardening_function_makes_the_process_undumpable_without_core_files():
    code = ("import ctypes, resource\n"
            "from dumpjob import hardening\n"
            "before = hardening.dumpable()\n"
            "problems = hardening.protect_memory()\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "print(before, libc.prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE), problems)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split(" ", 2) == ["1", "0", "(0, 0) []\n"], out


def test_mysql_pwd_in_the_environment_is_dropped_with_one_warning(env, jobfile):
    config = jobfile({"basis": {"kind": "mysqldump", "secret_id": "dumpjob-test/unused", "databases": ["basis"],
                                "key": "dumps/basis_{date:%Y%m%d}.sql.gz"}})
    result = dumpjob("check-config", "--config", config, "--json", env={**env, "MYSQL_PWD": SPACED})
    assert result.code == 0, result.stderr
    warnings = result.event("environment")
    assert len(warnings) == 1 and warnings[0]["level"] == "warning", result.stderr
    assert "MYSQL_PWD" in warnings[0]["msg"] and "/etc/dumpjob/environment" in warnings[0]["msg"]
    assert_no_leak(SPACED, result.stdout, result.stderr)
