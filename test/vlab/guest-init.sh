#!/bin/sh
# /init of the vlab guest initramfs: load the NIC driver, DHCP like an installed OS would, phone home, stay up.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
uptime_s() { cut -d' ' -f1 /proc/uptime; }

ROLE=; CALLBACK=; TOKEN=; POWEROFF=
set -f   # a callback URL may hold glob characters
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    role=*) ROLE=${arg#role=} ;;
    forseti.callback=*) CALLBACK=${arg#forseti.callback=} ;;
    forseti.token=*) TOKEN=${arg#forseti.token=} ;;
    vlab.poweroff) POWEROFF=1 ;;
  esac
done
set +f
echo "VLAB-MARKER: BOOTED role=$ROLE uptime=$(uptime_s)"

# No modprobe/modules.dep here: /etc/vlab-modules lists the modules in dependency order.
while read -r module; do insmod "/lib/modules/$module.ko" 2>/dev/null; done < /etc/vlab-modules

# ACPI power button (BMC "power soft"): the first key event powers off, as an OS would.
for dev in /sys/class/input/event*; do
  [ "$(cat "$dev/device/name" 2>/dev/null)" = "Power Button" ] || continue
  (dd if="/dev/input/${dev##*/}" bs=24 count=1 >/dev/null 2>&1 && echo "VLAB: power button" && poweroff -f) &
done

IFACE=
i=0
while [ -z "$IFACE" ] && [ $i -lt 100 ]; do
  IFACE=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
  [ -n "$IFACE" ] || { sleep 0.1; i=$((i + 1)); }
done
ip link set lo up
[ -n "$IFACE" ] && ip link set "$IFACE" up

IP=
MAC=$(cat "/sys/class/net/$IFACE/address" 2>/dev/null)
if [ -n "$IFACE" ] && udhcpc -i "$IFACE" -f -q -n -t 10 -T 2 -s /etc/udhcpc.script; then
  IP=$(cat /tmp/ip)
  echo "VLAB-MARKER: DHCP-OK ip=$IP mac=$MAC uptime=$(uptime_s)"
else
  echo "VLAB-MARKER: DHCP-FAILED interfaces=$(ls /sys/class/net | tr '\n' ' ')"
fi

if [ -n "$IP" ] && [ -n "$CALLBACK" ]; then
  tries=0
  until timeout 15 wget -q -O- --header "Authorization: Bearer $TOKEN" \
      --post-data "role=$ROLE&mac=$MAC&ip=$IP" "$CALLBACK"; do
    tries=$((tries + 1))
    [ $tries -ge 3 ] && break
    sleep 2
  done
  if [ $tries -lt 3 ]; then
    echo
    echo "VLAB-MARKER: PHONE-HOME-OK role=$ROLE mac=$MAC ip=$IP uptime=$(uptime_s)"
  else
    echo "VLAB-MARKER: PHONE-HOME-FAILED role=$ROLE mac=$MAC"
  fi
elif [ -n "$IP" ]; then
  echo "VLAB-MARKER: PHONE-HOME-FAILED no forseti.callback= on the kernel command line"
fi

if [ -n "$POWEROFF" ]; then
  echo "VLAB: powering off (vlab.poweroff)"
  poweroff -f
fi
echo "VLAB: running"
while :; do sleep 3600; done
