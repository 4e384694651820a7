#!/bin/bash
# Build the sandbox dump host's root filesystem with debootstrap and write it as a tarball.
# Usage: build.sh OUTPUT.tar
# The image is plain Debian bookworm with systemd, cron, sshd (installed, not enabled) and
# the tools today's dump host has: the MariaDB client, gzip and the AWS CLI.
set -euo pipefail

out=${1:?usage: build.sh OUTPUT.tar}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
awscli_version=${AWSCLI_VERSION:-1.42.8}
root=$(mktemp -d /var/tmp/jram-rootfs.XXXXXX)

cleanup() {
    for m in proc sys dev/pts dev; do
        mountpoint -q "$root/$m" && umount -l "$root/$m" || true
    done
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT

packages=systemd,systemd-sysv,dbus,cron,openssh-server,sudo,python3,python3-venv,\
mariadb-client,gzip,zstd,ca-certificates,procps,tzdata,less,iproute2,logrotate,curl,passwd,python3-apt

echo "image: debootstrap bookworm from $mirror (a few minutes)" >&2
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; echo "image: debootstrap failed; full log in $root.log" >&2; exit 1; }
rm -f "$root.log"

echo "image: installing the AWS CLI $awscli_version into /opt/awscli" >&2
# The wheels are fetched here, with this machine's pip and its network settings, and installed
# in the chroot offline.
wheels="$root/tmp/awscli-wheels"
"${PYTHON:-python3}" -m pip download --quiet --disable-pip-version-check --dest "$wheels" \
    --only-binary=:all: --implementation cp --python-version 3.11 \
    --platform "manylinux2014_$(uname -m)" --platform "manylinux_2_17_$(uname -m)" \
    "awscli==$awscli_version" 2> >(grep -v "^WARNING: Location '" >&2)
chroot "$root" python3 -m venv /opt/awscli
chroot "$root" env -i PATH=/usr/bin:/bin /opt/awscli/bin/pip install --quiet --no-index \
    --disable-pip-version-check --find-links /tmp/awscli-wheels "awscli==$awscli_version"
rm -rf "$wheels"
ln -sf /opt/awscli/bin/aws "$root/usr/local/bin/aws"

# A container boots systemd as PID 1: keep only what makes sense without hardware.
for unit in ssh.service ssh.socket systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
            e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
    chroot "$root" systemctl disable "$unit" >/dev/null 2>&1 || true
done
for unit in getty@tty1.service console-getty.service systemd-logind.service \
            sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
            dev-hugepages.mount systemd-remount-fs.service systemd-firstboot.service \
            systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
            systemd-hwdb-update.service ldconfig.service; do
    chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done
# sshd's privilege separation directory normally comes with a running ssh.service; sshd -t
# needs it even while the service is stopped.
echo 'd /run/sshd 0755 root root -' >"$root/etc/tmpfiles.d/sshd-privsep.conf"
ln -sf /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"
echo Etc/UTC >"$root/etc/timezone"
echo dumphost >"$root/etc/hostname"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/root/.cache

mkdir -p "$(dirname "$out")"
tar --numeric-owner --xattrs -C "$root" -cf "$out.partial" .
mv "$out.partial" "$out"
echo "image: wrote $out ($(du -h "$out" | cut -f1))" >&2
