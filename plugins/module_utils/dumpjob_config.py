# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job file as the inventory gives it (``dumpjob_defaults``, ``dumpjob_jobs``) and what
``dumpjob check-config --json`` answers about it. Pure: the module writes the file and runs the
program."""

from __future__ import annotations

import copy
import json
import re

from ansible_collections.jram.dumphost.plugins.module_utils import dumpjob_program

_WHERE = re.compile(r"job '([^']+)': (?:missing |unknown )?key '([^']+)'")
# What check-config derives and the inventory's own value must win over (a compression setting
# stays as the inventory wrote it: dumpjob answers only its type).
NOT_MERGED = ("compression",)


def document(defaults: dict, jobs: dict) -> str:
    """The job file dumpjob reads. JSON is YAML, and leaves no room for a YAML reading of a value
    (``no``, ``08``) that the inventory did not mean."""
    return json.dumps({"defaults": defaults, "jobs": jobs}, indent=2, ensure_ascii=False) + "\n"


def refusal(stdout: str, stderr: str, path: str) -> str:
    """The one-line refusal of a job file dumpjob rejected, naming the inventory variable to fix."""
    answer = dumpjob_program.answer(stdout) or {}
    reason = answer.get("error") or dumpjob_program.last_line(stderr) or "dumpjob produced no output"
    reason = " ".join(str(reason).replace(f"config {path}: ", "").replace(path, "the job file").split())
    where = _WHERE.search(reason)
    fix = (f"dumpjob_jobs['{where.group(1)}'].{where.group(2)} (or dumpjob_defaults.{where.group(2)})" if where
           else "dumpjob_jobs / dumpjob_defaults")
    return f"dumpjob_jobs is invalid: {reason} (found by dumpjob check-config; fix {fix} in the inventory)"


def _combine(base: dict, over: dict) -> dict:
    """``base`` with ``over`` merged in, dicts recursively (Ansible's combine(recursive=true))."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _combine(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merged(defaults: dict, jobs: dict, parsed: dict) -> dict:
    """Per job: its own keys merged over the defaults (as dumpjob merges them), then the keys
    dumpjob derives (parallel_key, legacy_key, timezone...) as dumpjob computed them."""
    out = {}
    for job, derived in parsed.items():
        mine = _combine(defaults, jobs.get(job) or {})
        out[job] = _combine(mine, {key: value for key, value in derived.items() if key not in NOT_MERGED})
    return out
