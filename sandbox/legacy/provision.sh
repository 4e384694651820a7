#!/bin/bash
# Put a fresh sandbox host into the state today's production host is in. Runs inside the
# container once, right after it is created; the files it installs were copied to $SRC.
# Inputs (environment): SRC DB_HOST DB_PORT DB_PASS AWS_KEY_ID AWS_SECRET AWS_ENDPOINT IMDS_ENDPOINT
set -euo pipefail

id ec2-user >/dev/null 2>&1 || useradd --create-home --uid 1000 --shell /bin/bash ec2-user
echo 'ec2-user ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users

home=/home/ec2-user
install -d -o ec2-user -g ec2-user -m 0755 "$home/scripts" "$home/logs" "$home/work"
install -d -o ec2-user -g ec2-user -m 0700 "$home/.ssh" "$home/.aws"
for script in ggh_datatransit.sh ggh_contract_status.sh ggh_schema_snapshot.sh; do
    sed -e "s|@DB_HOST@|$DB_HOST|" -e "s|@DB_PORT@|$DB_PORT|" -e "s|@DB_PASS@|$DB_PASS|" \
        "$SRC/$script" >"$home/scripts/$script"
    chown ec2-user:ec2-user "$home/scripts/$script"
    chmod 0755 "$home/scripts/$script"
done

# The admin's login key, as EC2 puts it there.
if [ ! -s "$home/.ssh/authorized_keys" ]; then
    ssh-keygen -q -t ed25519 -N '' -C ec2-user@admin-laptop -f "$home/.ssh/admin_key"
    mv "$home/.ssh/admin_key.pub" "$home/.ssh/authorized_keys"
    rm -f "$home/.ssh/admin_key"
fi

umask 077
cat >"$home/.aws/credentials" <<CREDS
[default]
aws_access_key_id = $AWS_KEY_ID
aws_secret_access_key = $AWS_SECRET
CREDS
# Sandbox only: where the AWS APIs and the instance metadata service are, and more patience
# with the emulated metadata service than the 1 s botocore allows a real one (it asks moto at
# each request, which takes longer on a busy machine). Production has no such lines; the
# defaults point at AWS and at 169.254.169.254.
cat >"$home/.aws/config" <<CONF
[default]
region = ap-northeast-1
output = json
endpoint_url = $AWS_ENDPOINT
ec2_metadata_service_endpoint = $IMDS_ENDPOINT
metadata_service_timeout = 5
metadata_service_num_attempts = 3
CONF
chown -R ec2-user:ec2-user "$home/.ssh" "$home/.aws"
chmod 0600 "$home/.ssh/authorized_keys" "$home/.aws/credentials" "$home/.aws/config"

crontab -u ec2-user "$SRC/crontab"
rm -rf "$SRC"
systemctl enable --now cron >/dev/null 2>&1
