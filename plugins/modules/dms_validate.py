# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dms_validate
short_description: Compare the AWS DMS target with the source, table by table (read-only on both)
version_added: 0.3.0
description:
  - Connects with PyMySQL to the source (the dump's secret or the replication user's) and to the DMS target
    (a secret of its own), both RDS secret JSON from Secrets Manager, TLS verified against O(ssl_ca) and
    O(target_ssl_ca); every session is put into read-only transaction mode, so check mode runs the same
    comparison as a normal run and neither database is ever changed.
  - Compares every base table of O(databases) on either side - views, which DMS does not copy, are left out -
    and reports per table V(identical), V(rows_differ), V(columns_differ), V(missing_table) (on the target) or
    V(extra_table) (on the target only).
  - Rows are compared by row count and content digest, the sum of each row's SHA-256 modulo 2^256 that
    C(dumpjob compare) keeps per table, computed by the servers; only counts and digests cross the network.
  - A table with a primary key (or a NOT NULL unique key) is walked in key order, in ranges of O(chunk_rows)
    source rows; a range whose digest differs is narrowed to the differing keys, counted as C(changed),
    C(missing_on_target) and C(extra_on_target), with up to O(sample_keys) key values each - never a row value.
  - A table without such a key is compared by its multiset digest (C(method=multiset)); when it differs, both
    sides' sorted row hashes are merged as a stream and a changed row counts as one missing and one extra
    row (C(changed) is null, no key can be named).
  - Column sets are compared too; the rows are compared on the columns both sides have.
  - CDC keeps changing the target after the source; the ranges that differ, of every table, are read again
    together O(settle_rechecks) times, O(settle_seconds) apart, before they count as different (the wait does
    not grow with the number of differing ranges), and an append-only table named in
    O(append_only) is compared only up to the target's high-water mark of that column.
author:
  - JRAM infrastructure team (@jram)
options:
  source_secret_id:
    description: The Secrets Manager secret of the source login (RDS secret JSON - host, port, username, password, dbname).
    type: str
    required: true
  target_secret_id:
    description: The Secrets Manager secret of the DMS target login (RDS secret JSON).
    type: str
    required: true
  databases:
    description: The databases to compare (the same names on both sides); default the source secret's C(dbname).
    type: list
    elements: str
  exclude_tables:
    description: Tables left out of the comparison (C(table) or C(database.table)), e.g. those the task's table mappings exclude.
    type: list
    elements: str
    default: []
  append_only:
    description:
      - C(database.table) to an ever-increasing column (an id, a creation time) of a table that only grows; only
        the rows up to the target's maximum of that column (how far CDC has got), read when the table's comparison
        starts, are compared on both sides.
    type: dict
    default: {}
  ssl_ca:
    description: CA bundle that verifies the source's TLS certificate (the RDS bundle); without it no TLS.
    type: path
  target_ssl_ca:
    description: CA bundle that verifies the target's TLS certificate; default O(ssl_ca).
    type: path
  chunk_rows:
    description: Source rows per key range of a keyed table.
    type: int
    default: 10000
  sample_keys:
    description: At most this many key values per kind of difference and table (V(0) for none).
    type: int
    default: 5
  settle_rechecks:
    description: How many rounds the differing ranges are read again in before they count as different.
    type: int
    default: 2
  settle_seconds:
    description: Seconds before each round (the CDC latency to allow for).
    type: float
    default: 15
  connect_timeout:
    description: Seconds to wait for each login.
    type: int
    default: 10
requirements:
  - PyMySQL
  - boto3
notes:
  - Neither password appears in the result. The comparison reads every row of both sides (on the servers); run
    it at a quiet moment of the source, as the dump does.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
seealso:
  - module: jram.dumphost.dms_validation_ledger
  - module: jram.dumphost.dms_readiness
"""

EXAMPLES = r"""
- name: Compare the Aurora copy with the vendor's database
  jram.dumphost.dms_validate:
    source_secret_id: jram/dumphost/basis-reader
    target_secret_id: jram/dumphost/dms-target
    ssl_ca: /etc/dumpjob/rds-ca-bundle.pem
    append_only:
      basis.contract_status_history: id
  register: dms_validation

- name: Show the tables that differ
  ansible.builtin.debug:
    msg: "{{ dms_validation.lines }}"
"""

RETURN = r"""
verdict:
  description: V(identical) when every table is, else V(different).
  returned: always
  type: str
  sample: different
tables:
  description: One entry per table.
  returned: always
  type: list
  elements: dict
  sample:
    - table: basis.contracts
      verdict: rows_differ
      method: key
      key: [id]
      key_kind: primary
      source_rows: 2000
      target_rows: 2000
      changed: 1
      missing_on_target: 0
      extra_on_target: 0
      sample_keys: {changed: [17], missing_on_target: [], extra_on_target: []}
      columns: {missing_on_target: [], extra_on_target: [], type_differs: []}
      chunks: 1
      differing_chunks: 1
      rechecks: 2
      narrowed: true
      high_water: null
      source_digest: 3f0c...
      target_digest: 9a71...
summary:
  description: Tables per verdict, and C(tables) in all.
  returned: always
  type: dict
  sample: {tables: 8, identical: 7, rows_differ: 1, columns_differ: 0, missing_table: 0, extra_table: 0}
lines:
  description: One line per table that is not identical.
  returned: always
  type: list
  elements: str
  sample: ["basis.contracts: rows differ (key, 2000 source rows, 2000 target rows; 1 changed, 0 missing on target, ...)"]
details:
  description: What M(jram.dumphost.dms_validation_ledger) records - per table its verdict and counts, no value.
  returned: always
  type: dict
  sample: {tables: {basis.contracts: {verdict: rows_differ, changed: 1, missing_on_target: 0, extra_on_target: 0}}}
source:
  description: The source endpoint and secret compared.
  returned: always
  type: dict
  sample: {endpoint: "vendor.abc.ap-northeast-1.rds.amazonaws.com:3306", secret: jram/dumphost/basis-reader}
target:
  description: The target endpoint and secret compared.
  returned: always
  type: dict
  sample: {endpoint: "basis.cluster-abc.ap-northeast-1.rds.amazonaws.com:3306", secret: jram/dumphost/dms-target}
seconds:
  description: How long the comparison took.
  returned: always
  type: float
  sample: 12.5
"""

import os
import time

try:
    import pymysql
    import pymysql.cursors
except ImportError:
    pymysql = None

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils import dms_source
from ansible_collections.jram.dumphost.plugins.module_utils import dms_validation as validation
from ansible_collections.jram.dumphost.plugins.module_utils.dms_secrets import read_secret


def connect(module, login, secret_id, ssl_ca):
    try:
        conn = dms_source.connect(pymysql, login, ssl_ca, module.params["connect_timeout"])
        validation.session(conn)
        return conn
    except pymysql.MySQLError as exc:
        module.fail_json(msg=f"cannot connect to {login['host']}:{login['port']} as {login['username']} (secret "
                             f"{secret_id}): {exc}; check the address, the security group, the grants and the CA")


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            source_secret_id=dict(type="str", required=True),
            target_secret_id=dict(type="str", required=True),
            databases=dict(type="list", elements="str"),
            exclude_tables=dict(type="list", elements="str", default=[]),
            append_only=dict(type="dict", default={}),
            ssl_ca=dict(type="path"),
            target_ssl_ca=dict(type="path"),
            chunk_rows=dict(type="int", default=10000),
            sample_keys=dict(type="int", default=5, no_log=False),
            settle_rechecks=dict(type="int", default=2),
            settle_seconds=dict(type="float", default=15),
            connect_timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    if pymysql is None:
        module.fail_json(msg=missing_required_lib("PyMySQL"))
    p = module.params
    for name, least in (("chunk_rows", 1), ("sample_keys", 0), ("settle_rechecks", 0), ("settle_seconds", 0),
                        ("connect_timeout", 1)):
        if p[name] < least:
            module.fail_json(msg=f"{name} must be {least} or more, got {p[name]}")
    bad = [f"{k}: {v!r}" for k, v in p["append_only"].items() if "." not in k or not isinstance(v, str) or not v]
    if bad:
        module.fail_json(msg=f"append_only takes database.table: column, not {', '.join(bad)}")
    target_ca = p["target_ssl_ca"] or p["ssl_ca"]
    for name, path in (("ssl_ca", p["ssl_ca"]), ("target_ssl_ca", target_ca)):
        if path and not os.path.isfile(path):
            module.fail_json(msg=f"{name} {path} is not a file: point it at the server's CA bundle")
    secrets = module.client("secretsmanager", retry_decorator=AWSRetry.jittered_backoff())
    source_login = read_secret(module, secrets, p["source_secret_id"])
    target_login = read_secret(module, secrets, p["target_secret_id"])
    databases = p["databases"] or ([source_login["dbname"]] if source_login.get("dbname") else [])
    if not databases:
        module.fail_json(msg=f"no databases: secret {p['source_secret_id']} has no dbname; set databases")

    started = time.monotonic()
    source = connect(module, source_login, p["source_secret_id"], p["ssl_ca"])
    target = connect(module, target_login, p["target_secret_id"], target_ca)
    comparison = validation.Comparison(source, target, p["chunk_rows"], p["sample_keys"], p["settle_rechecks"],
                                       p["settle_seconds"], streaming_cursor=pymysql.cursors.SSCursor)
    try:
        tables = validation.compare(comparison, databases, p["exclude_tables"], p["append_only"])
    except validation.ValidationError as exc:
        module.fail_json(msg=str(exc))
    except pymysql.MySQLError as exc:
        module.fail_json(msg=f"reading the databases failed: {exc}; give both logins SELECT on {', '.join(databases)}")
    finally:
        source.close()
        target.close()
    module.exit_json(
        changed=False,
        verdict=validation.overall(tables),
        tables=tables,
        summary=validation.summary(tables),
        lines=[validation.line(t) for t in tables if t["verdict"] != "identical"],
        details=validation.ledger_details(tables),
        source={"endpoint": f"{source_login['host']}:{source_login['port']}", "secret": p["source_secret_id"]},
        target={"endpoint": f"{target_login['host']}:{target_login['port']}", "secret": p["target_secret_id"]},
        seconds=round(time.monotonic() - started, 3),
    )


if __name__ == "__main__":
    main()
