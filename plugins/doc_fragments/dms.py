# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the DMS provisioning modules (dms_endpoint_mysql, dms_replication_instance,
dms_replication_task) document alike: their tags, check mode and diff mode."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  tags:
    description:
      - Tags of the resource. The role C(jram.dumphost.dms) gives every resource the collection's tags, and its
        teardown finds what to delete by them (M(jram.dumphost.dms_provision_info)).
    type: dict
    default: {}
  purge_tags:
    description: Remove tags not in O(tags).
    type: bool
    default: true
attributes:
  check_mode:
    description: Describes the resource and reports what would change; writes and records nothing.
    support: full
  diff_mode:
    description: Shows the managed settings and tags (and a task's status) before and after when they differ.
    support: full
"""
