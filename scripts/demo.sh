#!/bin/bash
# make demo: bring the sandbox up, run each of today's legacy jobs once inside the dump host,
# and show what landed in S3. The sandbox is left running for exploration.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python

$py -m sandbox up
echo
echo "== legacy jobs, run by hand as ec2-user (as cron would at 05:30/06:00 JST and weekly)"
$py -m sandbox legacy-run
echo
echo "== s3://jram-gghouse/dumps/ (moto)"
$py -m sandbox s3-ls dumps/
cat <<'TIPS'

The sandbox is still running. To look around:
  source .sandbox/env                                  # addresses of MariaDB, moto, IMDS
  podman exec -it jram-dumphost bash                   # the dump host (systemd, cron)
  podman exec jram-dumphost crontab -l -u ec2-user     # today's legacy crontab
  .venv/bin/python -m sandbox s3-ls                    # everything in the bucket
  mariadb --socket="$MARIADB_SOCKET" basis             # the vendor database, as root
Stop it with: make sandbox-down
TIPS
