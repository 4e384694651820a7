"""Where the cutover walk ends: basis and contract_status retired (legacy lines gone, scripts in
the root-only archive, new entries on their real schedules in production), schema_weekly still
in parallel next to its untouched legacy line, and the ledger telling the whole story. The
states in between are asserted by tests/molecule/test_scenarios.py as the steps run."""

import json
import os
from pathlib import Path

import pytest

testinfra_hosts = [f"podman://{os.environ.get('SANDBOX_HOST', 'jram-dumphost')}-cutover"]

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = {"basis": "ggh_datatransit.sh", "contract_status": "ggh_contract_status.sh"}


@pytest.fixture(scope="module")
def ledger(host):
    return json.loads(host.check_output("cat /var/lib/dumpjob/cutover.json"))


def test_phases(ledger):
    assert {job: rec["phase"] for job, rec in ledger["jobs"].items()} == \
        {"basis": "retired", "contract_status": "retired", "schema_weekly": "parallel"}


def test_transitions_tell_the_walk(ledger):
    moves = {job: [(t["from"], t["to"], t["forced"]) for t in rec["transitions"]]
             for job, rec in ledger["jobs"].items()}
    assert moves["basis"] == [("legacy", "parallel", False), ("parallel", "cutover", False),
                              ("cutover", "legacy", False), ("legacy", "parallel", False),
                              ("parallel", "cutover", True), ("cutover", "retired", False)]
    assert moves["contract_status"] == [("legacy", "parallel", False), ("parallel", "cutover", False),
                                        ("cutover", "retired", False)]
    forced = ledger["jobs"]["basis"]["transitions"][4]
    assert forced["reason"].startswith("molecule cutover scenario")
    assert any("job contract_status entered cutover" in gate and "soak_days=2" in gate
               for gate in forced["overridden"]), forced


def test_retire_gate_evidence(ledger):
    for job in SCRIPTS:
        runs = [(r["date"], r["status"]) for r in ledger["jobs"][job]["runs"] if r["mode"] == "production"]
        assert len(runs) == 2 and all(status == "ok" for _, status in runs), runs


def test_legacy_lines_of_retired_jobs_are_gone_and_the_rest_untouched(host):
    original = (REPO / "sandbox/legacy/crontab").read_text()
    expected = "".join(line for line in original.splitlines(keepends=True)
                       if not any(f"/home/ec2-user/scripts/{script} " in line for script in SCRIPTS.values()))
    assert host.check_output("crontab -l -u ec2-user").rstrip("\n") == expected.rstrip("\n")


@pytest.mark.parametrize("job", sorted(SCRIPTS))
def test_legacy_script_archived_root_only(host, job):
    script = SCRIPTS[job]
    assert not host.file(f"/home/ec2-user/scripts/{script}").exists
    archived = host.file(f"/var/lib/dumpjob/legacy-archive/{job}/{script}")
    assert archived.exists
    assert (archived.user, archived.mode) == ("root", 0o600)
    assert host.file("/var/lib/dumpjob/legacy-archive").mode == 0o700


@pytest.mark.parametrize("job, line", [
    ("basis", "30 20 * * * dumpjob /usr/local/bin/dumpjob run basis\n"),
    ("contract_status", "0 21 * * * dumpjob /usr/local/bin/dumpjob run contract_status\n"),
    ("schema_weekly", "0 19 * * 6 dumpjob /usr/local/bin/dumpjob run schema_weekly --parallel\n"),
])
def test_new_entries_on_their_real_schedules(host, job, line):
    entry = host.file(f"/etc/cron.d/dumpjob-{job}").content_string
    assert entry.endswith(line), entry


def test_schema_snapshot_keeps_its_legacy_line(host):
    assert "\n0 19 * * 6   /home/ec2-user/scripts/ggh_schema_snapshot.sh" in host.check_output("crontab -l -u ec2-user")
    assert host.file("/home/ec2-user/scripts/ggh_schema_snapshot.sh").exists
    assert host.service("cron").is_running
