"""cron_cutover with built_in_production: a job initialised directly in production on a new host
(playbooks/site.yml). The ledger records one honest transition (from nothing to cutover, marked
built), the production entry is written, a second run changes nothing, and a host or ledger with
any legacy history of the job is refused before anything changes."""

from __future__ import annotations

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as lg
from ansible_collections.jram.dumphost.plugins.modules import cron_cutover
from sandboxtest import run_module
from test_cron_cutover_module import Host


@pytest.fixture
def new_host(tmp_path):
    """A host without any legacy line: its legacy crontab holds other settings only."""
    host = Host(tmp_path)
    host.legacy.write_text("MAILTO=dba-alerts@jram.example\n")
    host.original = host.legacy.read_bytes()
    return host


def built(host: Host, job: str = "datatransit", **extra) -> dict:
    return host.args(job=job, **{"phase": "cutover", "built_in_production": True, **extra})


def run(args: dict, check: bool = False) -> dict:
    return run_module(cron_cutover.main, args, check=check)


def test_a_new_host_gets_the_production_entry_and_one_built_transition(new_host):
    args = built(new_host)
    before = new_host.snapshot()
    planned = run(args, check=True)
    assert planned["changed"] and planned["move"] == "built" and planned["transition"]["built"] is True
    assert new_host.snapshot() == before

    applied = run(args)
    assert applied["changed"] and applied["phase"] == "cutover"
    entry = (new_host.cron_dir / "dumpjob-datatransit").read_text()
    assert " run datatransit" in entry and "--parallel" not in entry
    ledger = lg.load(str(new_host.ledger))
    (transition,) = ledger["jobs"]["datatransit"]["transitions"]
    assert (transition["from"], transition["to"], transition["built"]) == (None, "cutover", True)
    assert "built in production on a new host" in transition["reason"]
    assert ledger["jobs"]["datatransit"]["verdicts"] == [] and ledger["jobs"]["datatransit"]["runs"] == []
    assert new_host.legacy.read_bytes() == new_host.original  # the legacy crontab is never written

    again = run(args)
    assert not again["changed"] and again["move"] == "stay" and again["transition"] is None
    assert not run(args, check=True)["changed"]
    assert len(lg.load(str(new_host.ledger))["jobs"]["datatransit"]["transitions"]) == 1


def test_a_legacy_user_the_new_host_lacks_counts_as_an_empty_crontab(new_host):
    args = built(new_host, legacy={"user": "no-such-legacy-user", "match": "ggh_datatransit.sh"})
    assert run(args)["changed"]
    plain = {**args, "built_in_production": False}
    refused = run(plain)
    assert refused["failed"] and "legacy.user no-such-legacy-user does not exist" in refused["msg"]


def test_a_host_with_legacy_lines_of_the_job_is_refused(tmp_path):
    host = Host(tmp_path)   # the legacy host: active lines of every job
    before = host.snapshot()
    refused = run(built(host))
    assert refused["failed"] and "has legacy lines of job datatransit (line 5)" in refused["msg"]
    assert "migrate the job phase by phase" in refused["msg"]
    assert host.snapshot() == before


def test_a_ledger_with_history_of_the_job_is_refused(new_host):
    new_host.record(lg.record_transition, "datatransit", "legacy", "parallel", lg.parse_stamp("2026-11-20T00:00:00Z"),
                    "alice")
    before = new_host.snapshot()
    refused = run(built(new_host))
    assert refused["failed"] and "the ledger records a history of job datatransit (phase parallel)" in refused["msg"]
    assert new_host.snapshot() == before


def test_built_is_only_for_production(new_host):
    refused = run(built(new_host, phase="parallel"))
    assert refused["failed"] and "phase must be cutover, not parallel" in refused["msg"]
