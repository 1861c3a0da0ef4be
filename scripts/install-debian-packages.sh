#!/usr/bin/env bash
# Installs the Debian packages forseti's tests, demo and (with --bench) benchmarks need: the virtual lab (QEMU with iPXE ROMs, OVMF,
# OpenIPMI's ipmi_sim with the headers its test module builds against, ipmitool, iproute2), real protocol clients,
# systemd-analyze and adduser for the Debian package test, and sfdisk/mkfs for the disks the OS image test wipes.
# Idempotent: does nothing when all are there.
set -euo pipefail
PACKAGES=(qemu-system-x86 qemu-utils ipxe-qemu ipxe ovmf openipmi libopenipmi-dev ipmitool iproute2 tftp-hpa atftp curl busybox udhcpc isc-dhcp-client radvd nftables dnsmasq-base openssl chromium systemd adduser fdisk e2fsprogs)
# --bench: also the reference servers the benchmarks measure forseti against (never started as services).
[ "${1:-}" = --bench ] && PACKAGES+=(tftpd-hpa nginx-light)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages (run as root to install): ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# radvd's package starts a host-wide service; keep it from starting (the tests run radvd inside a namespace only).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
