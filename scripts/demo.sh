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

# --- The cutover of one job (contract_status): parallel run, a validation, a cutover, a rollback.
# The program on the host needs the instance role: the profile is associated with the sandbox
# instance for this part (as phase 3 would) and detached again at the end, IMDSv2 left optional.
demo_instance() {
    $py - "$1" <<'PY'
import json, os, sys
import boto3
ec2 = boto3.client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_DEFAULT_REGION"],
                   aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
instance = json.load(open(".sandbox/state.json"))["instance_id"]
for a in ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance]}])["IamInstanceProfileAssociations"]:
    ec2.disassociate_iam_instance_profile(AssociationId=a["AssociationId"])
ec2.modify_instance_metadata_options(InstanceId=instance, HttpTokens="optional")
if sys.argv[1] == "attach":
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "jram-dumphost"}, InstanceId=instance)
PY
}
trap 'demo_instance detach' EXIT
demo_instance attach
crontab_before=$(podman exec "$SANDBOX_HOST" crontab -l -u ec2-user)
echo
echo "== parallel run of contract_status by hand (what its new cron entry runs), to dumps-test/"
podman exec -u dumpjob "$SANDBOX_HOST" dumpjob run contract_status --parallel --json
echo
echo "== validate.yml: compare today's legacy and new objects, record the verdict"
ansible-playbook -i inventories/sandbox playbooks/validate.yml | sed -n '/Show the per-job/,/^$/p'
echo
echo "== phase 4: cut contract_status over (the demo has one validated day, so the gate asks for one)"
ansible-playbook -i inventories/sandbox playbooks/phase4_cutover.yml -e job=contract_status \
    -e cutover_min_validated_days=1 | sed -n '/Show the per-job/,/^$/p'
podman exec "$SANDBOX_HOST" crontab -l -u ec2-user | grep '^#jram.dumphost' || true
echo
echo "== rollback: contract_status back to legacy, the crontab byte for byte"
ansible-playbook -i inventories/sandbox playbooks/rollback.yml -e job=contract_status -e to=legacy \
    | sed -n '/Show the per-job/,/^$/p'
if [ "$(podman exec "$SANDBOX_HOST" crontab -l -u ec2-user)" = "$crontab_before" ]; then
    echo "ec2-user's crontab is identical to before the cutover"
else
    echo "ec2-user's crontab differs from before the cutover" >&2
    exit 1
fi
