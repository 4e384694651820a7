"""What cron_cutover returns never carries a password-shaped token: the masking of diffs and
errors hides the value and keeps the rest of the line readable."""

from __future__ import annotations

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils.output_mask import mask_text, mask_value

SECRET = "S3cret"


@pytest.mark.parametrize(("text", "masked"), [
    ("30 20 * * * mysqldump -uroot -pS3cret basis | gzip > /x 2>&1",
     "30 20 * * * mysqldump -uroot -p**** basis | gzip > /x 2>&1"),
    ("0 1 * * * mysql -p'S3 cret' -h db", "0 1 * * * mysql -p**** -h db"),
    ('0 1 * * * mysql -p"S3cret" -h db', "0 1 * * * mysql -p**** -h db"),
    ("0 1 * * * MYSQL_PWD=S3cret mysql -e 'x'", "0 1 * * * MYSQL_PWD=**** mysql -e 'x'"),
    ("MYSQL_PWD='S3cret'", "MYSQL_PWD=****"),
    ("0 1 * * * /opt/x.sh --password=S3cret --user=a", "0 1 * * * /opt/x.sh --password=**** --user=a"),
    ("0 1 * * * /opt/x.sh --db-pass S3cret", "0 1 * * * /opt/x.sh --db-pass ****"),
    ("mysql -e \"CREATE USER a IDENTIFIED BY 'S3cret'\"", "mysql -e \"CREATE USER a IDENTIFIED BY ****\""),
    ("ALTER USER a IDENTIFIED WITH mysql_native_password BY 'S3cret';",
     "ALTER USER a IDENTIFIED WITH mysql_native_password BY ****;"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz", "aws_secret_access_key = ****"),
    ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7ABCDEFG", "AWS_ACCESS_KEY_ID=AKIA****"),
    ("x wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz y", "x **** y"),
    ("DB_PASS='S3cret' mysql://u:S3cret@h/db", "DB_PASS=**** mysql://u:****@h/db"),
    ("#jram.dumphost[basis] disabled 2026-11-27T01:02:03Z: 0 1 * * * mysqldump -pS3cret b\r",
     "#jram.dumphost[basis] disabled 2026-11-27T01:02:03Z: 0 1 * * * mysqldump -p**** b\r"),
])
def test_password_shapes_are_masked(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", [
    "30 20 * * * /home/ec2-user/scripts/ggh_datatransit.sh >> /home/ec2-user/logs/ggh.log 2>&1",
    "0 1 * * * mkdir -p /tmp/x && /opt/my-pkg/run -P3306",
    "MAILTO=dba-alerts@jram.example\r",
    "# jram.dumphost: job basis, phase parallel. Managed by jram.dumphost.cron_cutover; local edits are replaced.",
    "30 20 * * * dumpjob /usr/local/bin/dumpjob run basis --parallel",
    "legacy.match 'ggh_' matches 3 different commands in /etc/cron.d/x (line 5: a; line 6: b)",
])
def test_everything_else_is_kept(text):
    assert mask_text(text) == text


def test_a_line_the_scanner_still_flags_is_masked_whole():
    text = 'x = {"password": "S3cret"}'
    masked = mask_text(text)
    assert SECRET not in masked


def test_values_are_masked_through_dicts_and_lists():
    diff = [{"before": "0 1 * * * mysql -pS3cret\n", "after": "", "before_header": "h"}]
    assert SECRET not in str(mask_value(diff)) and mask_value(diff)[0]["before"] == "0 1 * * * mysql -p****\n"
    assert mask_value(3) == 3 and mask_value(None) is None
