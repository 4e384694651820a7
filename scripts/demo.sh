#!/bin/bash
# make demo: the whole migration on the sandbox, in the order an operator runs it.
#
#   legacy jobs (run by hand) -> phase 1 (AWS side) -> phase 2 (host: harden, dumpjob, every job
#   in parallel) -> phase 3 (instance role, IMDSv2) -> validation -> phase 4 for every job ->
#   retire the static keys -> rotate the database password -> the per-job status, the objects in
#   S3 and the credential scan.
#
# Phase 3 comes before the validation here: the parallel runs write to S3 with the instance
# role's credentials, so without the role there is nothing to compare. On a real host the order
# is the same (phase 3 is live and needs no downtime).
#
# Days are compressed into minutes: each job's new run and a copy of the legacy object stand for
# two back-dated nights, and phase 4 is told that no soak time is needed between jobs
# (-e cutover_soak_days=0). Everything else runs as in production, gates included.
#
# The sandbox is left running for exploration; `make sandbox-down` stops it. Running the demo
# again on a used sandbox starts from the legacy state: the demo's host is recreated.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
# The bundled AWS collections announce future removals on every run; not the demo's subject.
export ANSIBLE_DEPRECATION_WARNINGS=False
started=$SECONDS
state=${SANDBOX_STATE:-.sandbox}
DAYS=(2025-01-10 2025-01-11)
JOBS=(basis contract_status schema_weekly)

step() { printf '\n== [%3ss] %s\n' "$((SECONDS - started))" "$*"; }
# Run a playbook; its whole output when it failed, else the part `show` picks.
run_play() {
    if ! out=$(ansible-playbook -i inventories/sandbox "$@" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "demo: ansible-playbook $* failed (output above)" >&2
        exit 1
    fi
}
# The recap.
play() { run_play "$@"; sed -n '/PLAY RECAP/,$p' <<<"$out" | grep -v '^$'; }
# The message of the last playbook run's task named TASK (e.g. the closing scan's report), on one line.
task_report() {
    sed -n "/$1/,/^\$/p" <<<"$out" | grep -v '^TASK\|^ok:\|^$' \
        | sed "s/^ *\(msg: \)\?//; s/^'//; s/'$//; /^[|>]-$/d" | tr '\n' ' '
}
scan_report() { task_report 'Report the scan'; }
# The per-job status table the cutover role prints at the end of each cutover playbook.
status() { run_play "$@"; sed -n '/Show the per-job/,/^$/p' <<<"$out" | grep -v '^TASK'; }
# A playbook run that must be refused: its one-line refusal, or the whole output if it went through.
refused() {
    local out
    if out=$(ANSIBLE_CALLBACK_RESULT_FORMAT=json ansible-playbook -i inventories/sandbox "$@" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "demo: ansible-playbook $* was not refused (output above)" >&2
        exit 1
    fi
    grep -o '"msg": "[^"]*' <<<"$out" | head -n 1 | sed 's/^"msg": "/  refused: /'
}
# A command on the host; its log lines only when it failed.
on_host() {
    local out
    if ! out=$(podman exec "$@" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "demo: podman exec $* failed (output above)" >&2
        exit 1
    fi
}

# Whether USER on the host gets an IMDSv2 token from the metadata service: "gets a token" or "refused".
imds_token() {
    if podman exec -u "$1" "$SANDBOX_HOST" curl -fs -o /dev/null -m 5 -X PUT \
            -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/api/token"; then
        echo "gets a token"
    else
        echo "refused"
    fi
}
# Fail unless each USER=EXPECTED holds for the metadata service, printing what each one got.
expect_imds() {
    local pair user want got
    for pair in "$@"; do
        user=${pair%%=*} want=${pair#*=}
        got=$(imds_token "$user")
        echo "metadata service as $user: $got"
        [ "$got" = "$want" ] || { echo "demo: expected $user: $want" >&2; exit 1; }
    done
}

$py -m sandbox up
set -a; . "$state/env"; set +a
# A used sandbox: start the journey again from the legacy host and a clean AWS side.
if [ -e "$state/demo-used" ]; then
    step "the sandbox ran a demo before: recreate the host in its legacy state and reset AWS"
    $py -m sandbox down >/dev/null
    $py -m sandbox up >/dev/null
    set -a; . "$state/env"; set +a
fi
touch "$state/demo-used"

step "legacy jobs, run by hand as ec2-user (as cron would at 05:30/06:00 JST and weekly)"
$py -m sandbox legacy-run
$py -m sandbox s3-ls dumps/

step "phase 1: IAM role, least-privilege policy, instance profile, DB secret (against moto)"
play playbooks/phase1_infra.yml

step "phase 2: harden the host, install dumpjob, every job in parallel next to its legacy line"
play playbooks/phase2_parallel.yml
podman exec "$SANDBOX_HOST" ls /etc/cron.d/ | grep dumpjob- | sed 's/^/new entry: /'

step "phase 3: associate the instance profile live, require IMDSv2, verify from the host"
play playbooks/phase3_attach_role.yml
expect_imds root="gets a token" dumpjob="gets a token" ec2-user="gets a token" nobody="refused"

step "validation: two nights of legacy and parallel runs per job, compared and recorded"
$py -m sandbox backdate-legacy "${DAYS[@]}"
for job in "${JOBS[@]}"; do
    for day in "${DAYS[@]}"; do
        on_host -u dumpjob "$SANDBOX_HOST" dumpjob run "$job" --parallel --date "$day"
        echo "$job $day: published to dumps-test/"
    done
done
play playbooks/validate.yml -e cutover_validate_date="${DAYS[0]}"
status playbooks/validate.yml -e cutover_validate_date="${DAYS[1]}"

step "phase 4: cut every job over, one run per job (the gates count the validated days)"
for job in "${JOBS[@]}"; do
    play playbooks/phase4_cutover.yml -e job="$job" -e cutover_soak_days=0 | grep -v '^PLAY RECAP'
done
podman exec "$SANDBOX_HOST" crontab -l -u ec2-user | grep '^#jram.dumphost' || true

step "phase 4, retirement: two nights of production runs per job recorded, then every job retired"
for job in "${JOBS[@]}"; do
    for day in "${DAYS[@]}"; do
        on_host -u dumpjob "$SANDBOX_HOST" dumpjob run "$job" --date "$day"
    done
done
for day in "${DAYS[@]}"; do
    play playbooks/validate.yml -e cutover_validate_date="$day" >/dev/null
done
for job in "${JOBS[@]}"; do
    run_play playbooks/phase4_cutover.yml -e job="$job" -e to=retired
    echo "$job retired; scan: $(scan_report)"
done

step "retire the static keys: prove the role serves ec2-user, escrow, remove, deactivate, scan"
run_play playbooks/retire_static_keys.yml
echo "scan: $(scan_report)"
sed -n '/PLAY RECAP/,$p' <<<"$out" | grep -v '^$'
expect_imds dumpjob="gets a token" ec2-user="refused"

step "rotate the database password: the password the legacy scripts held for years stops working"
run_play playbooks/rotate_db_password.yml
task_report 'Report the rotation' || true; echo
$py - <<'PY'
import os
import sys

import pymysql

leaked = open(os.path.join(os.environ["SANDBOX_STATE"], "db_password")).read().strip()
try:
    pymysql.connect(host="127.0.0.1", port=int(os.environ["MARIADB_PORT"]), user="ggh_reader", password=leaked,
                    ssl={"ca": os.environ["MARIADB_SSL_CA"]}, connect_timeout=10).close()
except pymysql.err.OperationalError as exc:
    if exc.args[0] != 1045:
        raise
    print("the legacy password is refused by the database (access denied); AWSCURRENT holds the new one")
    sys.exit(0)
sys.exit("demo: the legacy password still opens the database after the rotation")
PY
run_play playbooks/retire_static_keys.yml
scan=$(scan_report)
echo "key retirement again (changes nothing), its closing scan: $scan"
if ! grep -q 'no longer valid' <<<"$scan" || grep -q 'changed=[1-9]' <<<"$out"; then
    printf '%s\n' "$out" >&2
    echo "demo: after the rotation, the closing scan should call the archived password no longer valid" >&2
    exit 1
fi

step "the end state guards itself: no rollback may cut the production jobs off the role"
for phase in 3 1; do
    for mode in --check ""; do
        echo "rollback.yml -e phase=$phase $mode"
        refused playbooks/rollback.yml -e phase="$phase" $mode
    done
done
if ! summary=$(podman exec -u dumpjob "$SANDBOX_HOST" dumpjob run basis --json 2>&1 | tail -n 1) \
        || ! url=$($py -c 'import json, sys; print(json.loads(sys.argv[1])["url"])' "$summary" 2>/dev/null); then
    printf '%s\n' "$summary" >&2
    echo "demo: the production dump of basis failed after the refused rollbacks" >&2
    exit 1
fi
echo "the next production dump still publishes, on the role: $url"

step "where the journey ended"
status playbooks/validate.yml
$py -m sandbox s3-ls
echo "IAM access key of legacy-dump: $($py -m sandbox key-status)"
echo "what each job published on the demo's two nights of production runs (dumpjob status):"
podman exec -u dumpjob "$SANDBOX_HOST" dumpjob status --date "${DAYS[1]}" --days 2 2>/dev/null | sed 's/^/  /'
report=$(podman exec -u dumpjob "$SANDBOX_HOST" dumpjob status --date "${DAYS[1]}" --days 2 --json)
$py - "$report" "${JOBS[@]}" <<'PY'
import json
import sys

report = {job["job"]: job for job in json.loads(sys.argv[1])["jobs"]}
for name in sys.argv[2:]:
    runs = report.get(name, {}).get("runs", [])
    published = [run["day"] for run in runs if run["outcome"].startswith("published")]
    print(f"  {name}: published on {', '.join(published) or 'no day'}; next run {report[name]['next_run']}")
    if not published:
        sys.exit(f"demo: dumpjob status shows no published run of {name} on the demo's days")
PY
echo "ec2-user's crontab now:"
podman exec "$SANDBOX_HOST" crontab -l -u ec2-user | sed 's/^/  /'
echo "credential scan of the host, its default places and the legacy archive (values masked):"
scan=$(ANSIBLE_LOAD_CALLBACK_PLUGINS=1 ANSIBLE_STDOUT_CALLBACK=ansible.posix.json \
    ansible -i inventories/sandbox dumphost -b -m jram.dumphost.credential_scan -a '{"max_file_size": "1M"}')
$py - "$scan" <<'PY'
import json
import sys

result = next(iter(json.loads(sys.argv[1])["plays"][0]["tasks"][0]["hosts"].values()))
findings = result["findings"]
archived = [f for f in findings if f["archived"]]
print(f"  {result['files_scanned']} file(s) scanned, {len(findings) - len(archived)} finding(s) outside the archive")
for f in archived:
    print(f"  archived (root-only; its password was rotated away): {f['path']}:{f['line']}:{f['kind']}")
if not archived or any(not f["path"].startswith("/var/lib/dumpjob/legacy-archive/") for f in archived):
    sys.exit("demo: the scan did not report the archived legacy scripts' password as archived")
PY
printf '\n== done in %ss. The sandbox is still running:\n' "$((SECONDS - started))"
cat <<'TIPS'
  source .sandbox/env                                          # addresses of MariaDB, moto, IMDS
  podman exec -it jram-dumphost bash                           # the dump host (systemd, cron)
  podman exec jram-dumphost ls /etc/cron.d                     # the new entries, one per job
  podman exec jram-dumphost cat /var/lib/dumpjob/cutover.json  # the ledger of every move
  ansible-playbook playbooks/rollback.yml -e phase=keys        # the static key back, within the grace period
  ansible-playbook playbooks/rollback.yml -e phase=3 --check   # refused: the jobs run on the role (docs/cutover.md)
  ansible-playbook playbooks/rotate_db_password.yml           # rotate the database password again (docs/rotation.md)
Stop it with: make sandbox-down
TIPS
