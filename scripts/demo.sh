#!/bin/bash
# make demo: bring the sandbox up, run each of today's legacy jobs once inside the dump host,
# show what landed in S3, then run phase 1 (AWS side) and phase 2 (host half). The sandbox is
# left running for exploration.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"

$py -m sandbox up
set -a; . .sandbox/env; set +a
echo
echo "== legacy jobs, run by hand as ec2-user (as cron would at 05:30/06:00 JST and weekly)"
$py -m sandbox legacy-run
echo
echo "== s3://jram-gghouse/dumps/ (moto)"
$py -m sandbox s3-ls dumps/

echo
echo "== phase 1: IAM role, least-privilege policy, instance profile, DB secret (against moto)"
ansible-playbook -i inventories/sandbox playbooks/phase1_infra.yml | sed -n '/PLAY RECAP/,$p'
echo
echo "== phase 2 (host half): harden the host, install dumpjob next to the legacy jobs"
ansible-playbook -i inventories/sandbox playbooks/phase2_parallel.yml | sed -n '/PLAY RECAP/,$p'
echo "dumpjob on the host:"
podman exec "$SANDBOX_HOST" dumpjob check-config
podman exec "$SANDBOX_HOST" crontab -l -u ec2-user | grep -c '^[0-9]' | sed 's/^/legacy cron jobs still in place: /'
cat <<'TIPS'

The sandbox is still running. To look around:
  source .sandbox/env                                  # addresses of MariaDB, moto, IMDS
  podman exec -it jram-dumphost bash                   # the dump host (systemd, cron)
  podman exec jram-dumphost crontab -l -u ec2-user     # today's legacy crontab
  .venv/bin/python -m sandbox s3-ls                    # everything in the bucket
  mariadb --socket="$MARIADB_SOCKET" basis             # the vendor database, as root
Stop it with: make sandbox-down
TIPS
