"""The pure logic of DMS provisioning (plugins/module_utils/dms_provision.py): the table mappings
built from the inventory's rules, the desired-versus-current comparison, tag changes, and the
start gate on the readiness report."""

from __future__ import annotations

import json

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import dms_provision as dp

PATH = "/root/dms-readiness/dms_readiness.json"


def test_table_mappings_in_order_with_defaults():
    doc = dp.table_mappings([{"schema": "basis"}, {"schema": "basis", "table": "access_logs", "action": "exclude"}])
    assert doc == {"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "include-basis-%",
         "object-locator": {"schema-name": "basis", "table-name": "%"}, "rule-action": "include"},
        {"rule-type": "selection", "rule-id": "2", "rule-name": "exclude-basis-access_logs",
         "object-locator": {"schema-name": "basis", "table-name": "access_logs"}, "rule-action": "exclude"}]}
    assert json.loads(dp.mappings_json(doc)) == doc
    assert dp.mappings_json(doc) == dp.mappings_json(json.loads(json.dumps(doc, indent=2)))


@pytest.mark.parametrize("rules, needle", [
    ([], "no table rules"),
    (["basis"], "rule 1 is not a mapping"),
    ([{"table": "contracts"}], "rule 1 names no schema"),
    ([{"schema": "basis", "action": "drop"}], "action 'drop' is neither include nor exclude"),
    ([{"schema": "basis", "tables": "x"}], "unknown keys tables"),
    ([{"schema": "basis"}, {"schema": "basis", "table": "%"}], "rule 2 repeats basis.%"),
    ([{"schema": "basis", "action": "exclude"}], "only exclude"),
])
def test_bad_table_rules_are_refused_in_one_line(rules, needle):
    with pytest.raises(dp.ProvisionError) as exc:
        dp.table_mappings(rules)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_settings_compare_as_a_subset_of_what_aws_stores():
    stored = {"TargetMetadata": {"LobMaxSize": 32, "SupportLobs": True, "TargetSchema": ""},
              "Logging": {"EnableLogging": True}}
    assert dp.subset_differences(stored, {"TargetMetadata": {"LobMaxSize": 32}}) == []
    assert dp.subset_differences(stored, {"TargetMetadata": {"LobMaxSize": 64}, "Other": 1}) == \
        ["Other", "TargetMetadata.LobMaxSize"]
    current = {"A": "x", "Groups": ["sg-2", "sg-1"], "Settings": stored, "Unmanaged": 5}
    assert dp.setting_changes(current, {"A": "x", "Groups": ["sg-1", "sg-2"], "Settings": {"Logging": {}},
                                        "Unmanaged": None}) == {}
    assert dp.setting_changes(current, {"A": "y", "Groups": ["sg-1"]}) == {"A": ("x", "y"),
                                                                          "Groups": (["sg-2", "sg-1"], ["sg-1"])}


def test_tag_changes_and_ownership():
    assert dp.tag_changes({"Project": "jram-dumphost", "Old": "1"}, {"Project": "jram-dumphost", "N": 2}, True) == \
        ({"N": "2"}, ["Old"])
    assert dp.tag_changes({"Old": "1"}, {}, False) == ({}, [])
    owner = {"Project": "jram-dumphost", "Component": "dms"}
    assert dp.carries({"Project": "jram-dumphost", "Component": "dms", "ManagedBy": "ansible"}, owner)
    assert not dp.carries({"Project": "jram-dumphost"}, owner)
    assert not dp.carries({"Project": "jram-dumphost"}, {})


def report(*findings):
    return {"findings": [{"id": i, "severity": s} for i, s in findings]}


def test_start_gate_passes_a_recent_report_without_fail():
    allowed, reason = dp.start_gate(report(("source-triggers", "warn"), ("x", "info")), 2.0, 168, "", PATH)
    assert allowed and reason == f"readiness report {PATH} passed (2.0 h old)"


@pytest.mark.parametrize("the_report, age, needle", [
    (None, None, f"no readiness report at {PATH}: run playbooks/dms_readiness.yml first"),
    ("not json", None, "is not a readiness report"),
    (report(("mysql-check-binlog-format", "fail"), ("source-triggers", "warn"), ("mysql-check-server-id", "fail")),
     1.0, "fails mysql-check-binlog-format, mysql-check-server-id: have the vendor make the changes"),
    (report(("source-triggers", "warn")), 200.0, "is 200 h old (at most 168 h): run playbooks/dms_readiness.yml"),
])
def test_start_gate_refuses_in_one_line_with_the_fix(the_report, age, needle):
    allowed, reason = dp.start_gate(the_report, age or 0.0, 168, "", PATH)
    assert not allowed
    assert reason.startswith("the replication task is not started: ") and needle in reason
    assert reason.endswith(", or give start_override_reason") and "\n" not in reason
    assert "source-triggers" not in reason


def test_start_gate_override_is_named_with_what_it_overrides():
    allowed, reason = dp.start_gate(report(("mysql-check-binlog-format", "fail")), 1.0, 168, " vendor confirmed ", PATH)
    assert allowed
    assert reason.startswith("override: vendor confirmed (refused otherwise: the readiness report")
    assert "mysql-check-binlog-format" in reason


def test_start_gate_age_zero_accepts_any_age():
    assert dp.start_gate(report(), 10000.0, 0, "", PATH)[0]
