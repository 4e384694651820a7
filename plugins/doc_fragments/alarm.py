# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the alarm modules (deadline_alarm, outcome_alarm) document alike: the name and state of
the alarm, its actions, check mode and diff mode (module_utils/cloudwatch_alarm)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  name:
    description: Alarm name.
    type: str
    required: true
  state:
    description: Whether the alarm exists.
    type: str
    choices: [present, absent]
    default: present
  alarm_actions:
    description: ARNs notified when the alarm fires (for example an SNS topic).
    type: list
    elements: str
    default: []
  ok_actions:
    description: ARNs notified when the alarm returns to OK.
    type: list
    elements: str
    default: []
  insufficient_data_actions:
    description: ARNs notified on INSUFFICIENT_DATA.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    description: Computes the alarm and compares it with the one in CloudWatch; writes nothing.
    support: full
  diff_mode:
    description: Shows the alarm's settings before and after when they differ.
    support: full
"""
