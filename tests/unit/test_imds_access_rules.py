"""jram.dumphost.imds_access: who may reach the metadata service (allow_list), the rule file and
unit rendered for production (169.254.169.254:80 and fd00:ec2::254) and for the sandbox's emulator
on loopback, checked by this machine's nft without loading them, and the module's refusals, which
come before anything is read or changed on the host."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import imds_access as ia
from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError
from ansible_collections.jram.dumphost.plugins.modules import imds_access
from sandboxtest import run_module

JOBS = {job: {"legacy": {"user": "ec2-user", "match": f"/home/ec2-user/scripts/{job}.sh"}}
        for job in ("basis", "contract_status", "schema_weekly")}
ALL_RETIRED = {job: "retired" for job in JOBS}
BASE = ["root", "dumpjob"]


def allowed(phases=None, keys=None, holders=(), jobs=JOBS) -> list:
    return sorted(ia.allow_list(BASE, jobs, phases or {}, keys or {}, list(holders)))


# --- who is allowed, along the journey ---------------------------------------------------------

def test_before_any_move_the_legacy_user_is_allowed_for_its_jobs():
    found = ia.allow_list(BASE, JOBS, {}, {}, [])
    assert sorted(found) == ["dumpjob", "ec2-user", "root"]
    assert found["ec2-user"][0] == ("legacy job(s) not retired: basis (legacy), contract_status (legacy), "
                                    "schema_weekly (legacy)")
    assert found["root"] == ["always allowed"]


def test_a_job_in_cutover_still_keeps_its_legacy_user():
    assert allowed({"basis": "cutover", "contract_status": "retired"}) == ["dumpjob", "ec2-user", "root"]


def test_every_job_retired_but_keys_not_retired_yet_keeps_the_user_for_the_proof():
    found = ia.allow_list(BASE, JOBS, ALL_RETIRED, {}, [])
    assert found["ec2-user"] == ["static key not retired yet (key retirement has not run)"]


def test_every_job_and_the_key_retired_refuses_the_user():
    assert allowed(ALL_RETIRED, {"ec2-user": {"state": "retired"}}) == ["dumpjob", "root"]
    assert allowed(ALL_RETIRED, {"ec2-user": {"state": "deleted"}}) == ["dumpjob", "root"]


def test_the_key_retired_but_a_job_not_keeps_the_user():
    assert allowed({"basis": "retired"}, {"ec2-user": {"state": "retired"}}) == ["dumpjob", "ec2-user", "root"]


def test_a_rollback_of_key_retirement_lets_the_user_back():
    found = ia.allow_list(BASE, JOBS, ALL_RETIRED, {"ec2-user": {"state": "rolled_back"}}, [])
    assert found["ec2-user"] == ["static key written back by the rollback of key retirement"]
    # the pending states the roles pass are plain strings
    assert allowed(ALL_RETIRED, {"ec2-user": "rolled_back"}) == ["dumpjob", "ec2-user", "root"]
    assert allowed(ALL_RETIRED, {"ec2-user": "retired"}) == ["dumpjob", "root"]


def test_once_key_retirement_ran_a_legacy_user_it_did_not_record_held_no_key():
    jobs = {**JOBS, "other": {"legacy": {"user": "batch"}}}
    phases = {**ALL_RETIRED, "other": "retired"}
    assert allowed(phases, {"ec2-user": {"state": "retired"}}, jobs=jobs) == ["dumpjob", "root"]
    assert allowed(phases, {}, jobs=jobs) == ["batch", "dumpjob", "ec2-user", "root"]


def test_key_holders_about_to_be_proven_are_allowed():
    found = ia.allow_list(BASE, JOBS, ALL_RETIRED, {"ec2-user": {"state": "retired"}}, ["reports"])
    assert found["reports"] == ["holds a static key that key retirement proves the instance role for"]


def test_a_job_without_legacy_user_is_refused_in_one_line():
    with pytest.raises(InvalidOptionError, match=r"^legacy_jobs: job basis names no legacy.user: give each job"):
        ia.allow_list(BASE, {"basis": {"legacy": {"match": "x"}}}, {}, {}, [])


# --- the rule file and the unit ------------------------------------------------------------------

PRODUCTION = ia.render_rules("jram_dumphost_imds", ia.addresses(["169.254.169.254", "fd00:ec2::254"]), 80,
                             {"root": 0, "dumpjob": 998, "ec2-user": 1000})


def test_production_rules_refuse_other_users_on_both_addresses_port_80():
    lines = PRODUCTION.splitlines()
    assert lines[4:7] == ["table inet jram_dumphost_imds {}", "delete table inet jram_dumphost_imds",
                          "table inet jram_dumphost_imds {"]
    assert "\t\ttype filter hook output priority filter; policy accept;" in lines
    assert ("\t\tip daddr 169.254.169.254 tcp dport 80 meta skuid != { 0, 998, 1000 } counter reject with tcp reset "
            "comment \"metadata service: allowed users only\"") in lines
    assert ("\t\tip6 daddr fd00:ec2::254 tcp dport 80 meta skuid != { 0, 998, 1000 } counter reject with tcp reset "
            "comment \"metadata service: allowed users only\"") in lines
    assert "# at 169.254.169.254, fd00:ec2::254 port 80: root (0), dumpjob (998), ec2-user (1000)." in lines


def test_sandbox_rules_match_only_the_emulators_port_on_loopback():
    text = ia.render_rules("jram_dumphost_imds_18169", ia.addresses(["127.0.0.1"]), 18169, {"root": 0})
    rules = [line for line in text.splitlines() if "daddr" in line]
    assert rules == ["\t\tip daddr 127.0.0.1 tcp dport 18169 meta skuid != { 0 } counter reject with tcp reset "
                     "comment \"metadata service: allowed users only\""]


def test_rendering_is_stable_whatever_the_order_of_users():
    a = ia.render_rules("t", [ipaddress.ip_address("169.254.169.254")], 80, {"ec2-user": 1000, "root": 0})
    b = ia.render_rules("t", [ipaddress.ip_address("169.254.169.254")], 80, {"root": 0, "ec2-user": 1000})
    assert a == b


@pytest.mark.skipif(not shutil.which("nft"), reason="nft is not installed on this machine")
def test_this_machines_nft_accepts_the_production_rules_without_loading_them(tmp_path):
    path = tmp_path / "imds.nft"
    path.write_text(PRODUCTION)
    proc = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    if "Operation not permitted" in proc.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN")
    assert proc.returncode == 0, proc.stderr
    listed = subprocess.run(["nft", "list", "table", "inet", "jram_dumphost_imds"], capture_output=True, text=True)
    assert listed.returncode != 0, "nft -c loaded the table"


def test_unit_loads_the_file_at_boot_and_deletes_the_table_on_stop():
    unit = ia.render_unit("jram_dumphost_imds", "/etc/jram-dumphost/imds-access.nft", "/usr/sbin/nft").splitlines()
    for line in ("Type=oneshot", "RemainAfterExit=yes", "ExecStart=/usr/sbin/nft -f /etc/jram-dumphost/imds-access.nft",
                 "ExecStop=-/usr/sbin/nft delete table inet jram_dumphost_imds", "WantedBy=sysinit.target",
                 "Before=network-pre.target shutdown.target cron.service crond.service"):
        assert line in unit


@pytest.mark.parametrize(("call", "message"), [
    (lambda: ia.check_table("jram-imds"),
     r"^table 'jram-imds' is not an nftables table name .*: fix imds_access_table$"),
    (lambda: ia.check_port(0), r"^port 0 is not a TCP port \(1-65535\): fix imds_access_port$"),
    (lambda: ia.addresses(["metadata.google"]), r"^addresses: 'metadata.google' is not an IP address"),
    (lambda: ia.addresses([]), r"^addresses is empty"),
    (lambda: ia.check_unit("imds"), r"^unit 'imds' is not a systemd service name"),
    (lambda: ia.check_users(["bad user"], "users"), r"^users: 'bad user' is not a user name"),
])
def test_bad_input_is_one_line_naming_the_fix(call, message):
    with pytest.raises(InvalidOptionError, match=message):
        call()


# --- the module's refusals: before anything is read or changed ----------------------------------

def _args(tmp_path, **extra) -> dict:
    return {"table": "jram_dumphost_imds_unittest", "path": str(tmp_path / "etc" / "imds.nft"),
            "unit_dir": str(tmp_path / "units"), "addresses": ["127.0.0.1"], "port": 1, **extra}


@pytest.mark.parametrize("check", [True, False])
def test_an_unknown_user_is_refused_before_any_change(tmp_path, check):
    result = run_module(imds_access.main, _args(tmp_path, users=["root", "no-such-user-xyz"]), check=check)
    assert result["failed"]
    assert result["msg"] == ("user no-such-user-xyz (always allowed) does not exist on this host: create it, or "
                             "remove it from imds_access_extra_users / cutover_jobs; nothing was changed")
    assert not list(tmp_path.iterdir())


def test_an_unknown_legacy_user_names_its_jobs(tmp_path):
    jobs = {"basis": {"legacy": {"user": "no-such-legacy-xyz"}}}
    result = run_module(imds_access.main, _args(tmp_path, legacy_jobs=jobs))
    assert result["msg"].startswith("user no-such-legacy-xyz (legacy job(s) not retired: basis (legacy); static key "
                                    "not retired yet (key retirement has not run)) does not exist on this host")


def test_a_bad_table_name_is_refused(tmp_path):
    result = run_module(imds_access.main, _args(tmp_path, table="1bad"))
    assert result["failed"] and "fix imds_access_table" in result["msg"]
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not shutil.which("systemctl"), reason="no systemctl here")
def test_later_steps_leave_a_host_without_the_rule_set_alone(tmp_path):
    result = run_module(imds_access.main, _args(tmp_path, only_if_installed=True), check=False)
    assert not result.get("failed"), result
    assert (result["changed"], result["installed"]) == (False, False)
    assert not list(tmp_path.iterdir())
