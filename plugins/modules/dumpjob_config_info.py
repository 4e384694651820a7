# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dumpjob_config_info
short_description: Validate dumpjob's jobs with dumpjob check-config and return them as data
version_added: 0.1.0
description:
  - Writes O(defaults) and O(jobs) as the job file C(dumpjob) reads into a private temporary file (mode 0600,
    removed before the module returns), runs C(dumpjob check-config --skip-host-files --json) on it with
    O(python) and the C(dumpjob) package of O(src), and returns what dumpjob parsed as data.
  - Runs where the task runs; the C(jram.dumphost.job_config) role delegates it to the controller, before any
    role changes anything.
  - A job file dumpjob rejects fails the task with dumpjob's one-line reason and the inventory variable to fix
    (C(dumpjob_jobs['JOB'].KEY) or C(dumpjob_defaults.KEY)).
  - Changes nothing, in check mode too.
author:
  - JRAM infrastructure team (@jram)
options:
  jobs:
    description:
      - Job name to job, in dumpjob's job-file format (the inventory's C(dumpjob_jobs)).
    type: dict
    required: true
  defaults:
    description:
      - Keys every job inherits unless it sets them (the inventory's C(dumpjob_defaults)).
    type: dict
    default: {}
  python:
    description:
      - The Python that runs C(python -m dumpjob check-config); it needs PyYAML. By default the one the module runs
        with.
    type: path
  src:
    description:
      - The directory holding the C(dumpjob) package (put on C(PYTHONPATH)); the collection ships it in C(src/).
    type: path
    required: true
notes:
  - The files a job names on the host (C(ssl_ca)) are not checked (C(--skip-host-files)); the C(jram.dumphost.dumpjob)
    role checks them on the host.
  - The job file never holds a secret value (jobs name their secret by C(secret_id); dumpjob rejects unknown keys).
seealso:
  - module: jram.dumphost.dumpjob_doctor_info
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
"""

EXAMPLES = r"""
- name: Validate the jobs on the controller
  jram.dumphost.dumpjob_config_info:
    jobs: "{{ dumpjob_jobs }}"
    defaults: "{{ dumpjob_defaults | default({}) }}"
    src: /path/to/ansible_collections/jram/dumphost/src
  delegate_to: localhost
  become: false
  register: job_config_check
"""

RETURN = r"""
jobs:
  description:
    - Per job, its own keys merged over O(defaults) (as dumpjob merges them) with the keys dumpjob derives
      (C(parallel_key), C(legacy_key), C(timezone), C(bucket), C(key), C(schedule)) as dumpjob computed them.
  returned: success
  type: dict
  sample:
    basis:
      kind: mysqldump
      databases: [basis]
      secret_id: jram/dumphost/basis-reader
      bucket: jram-gghouse
      key: "dumps/basis_{date:%Y%m%d}.sql.gz"
      parallel_key: "dumps-test/basis_{date:%Y%m%d}.sql.gz"
      legacy_key: "dumps/basis_{date:%Y%m%d}.sql.gz"
      schedule: "30 5 * * *"
      timezone: Asia/Tokyo
parsed:
  description: The jobs as C(dumpjob check-config --json) answered (C(kind), C(bucket), C(key), C(parallel_key),
    C(legacy_key), C(schedule), C(timezone), C(compression) type, C(deadline) or null).
  returned: success
  type: dict
  sample:
    basis: {kind: mysqldump, bucket: jram-gghouse, compression: gzip, schedule: "30 5 * * *", timezone: Asia/Tokyo,
            deadline: "06:40"}
"""

import os
import sys
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import dumpjob_config, dumpjob_program


def check(module):
    p = module.params
    fd, path = tempfile.mkstemp(prefix="dumpjob-jobs.", suffix=".yml", dir=module.tmpdir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp: mode 0600
            handle.write(dumpjob_config.document(p["defaults"], p["jobs"]))
        rc, out, err = module.run_command(
            [p["python"] or sys.executable, "-m", "dumpjob", "check-config", "--skip-host-files", "--config", path,
             "--json"],
            environ_update={"PYTHONPATH": p["src"], "PYTHONDONTWRITEBYTECODE": "1"})
    finally:
        os.unlink(path)
    answer = dumpjob_program.answer(out) if rc == 0 else None
    if answer is None or not isinstance(answer.get("jobs"), dict):
        module.fail_json(msg=dumpjob_config.refusal(out, err, path))
    return {"changed": False, "parsed": answer["jobs"],
            "jobs": dumpjob_config.merged(p["defaults"], p["jobs"], answer["jobs"])}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            jobs=dict(type="dict", required=True),
            defaults=dict(type="dict", default={}),
            python=dict(type="path"),
            src=dict(type="path", required=True),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**check(module))


if __name__ == "__main__":
    main()
