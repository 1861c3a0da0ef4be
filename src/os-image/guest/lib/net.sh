# Network by DHCP (sourced by /init): every NIC is brought up, then udhcpc runs on each NIC with carrier, in
# turn, until one gets an address or DHCP_TIMEOUT seconds have passed. Sets NET_OK=1, NET_IF, NET_IP, NET_MAC.

# nics -> names of the physical NICs (those with a device behind them), sorted
nics() {
  local dir
  for dir in /sys/class/net/*; do
    [ -e "$dir/device" ] && echo "${dir##*/}"
  done
}

uptime_s() {
  cut -d. -f1 /proc/uptime
}

net_up() {
  local deadline ifc tried
  NET_OK=0
  ip link set lo up
  deadline=$(($(uptime_s) + 10))
  while [ -z "$(nics)" ] && [ "$(uptime_s)" -lt "$deadline" ]; do sleep 0.2; done
  for ifc in $(nics); do
    # bnx2 and bnx2x load their firmware here: without it the NIC stays down (its MAC is still inventoried).
    ip link set "$ifc" up 2>>"$LOG" || say "NIC $ifc does not come up (missing firmware? see dmesg: $(dmesg | grep -i firmware | tail -n 1))"
  done
  deadline=$(($(uptime_s) + ${DHCP_TIMEOUT:-90}))
  while [ "$(uptime_s)" -lt "$deadline" ]; do
    tried=0
    for ifc in $(nics); do
      [ "$(cat "/sys/class/net/$ifc/carrier" 2>/dev/null)" = 1 ] || continue
      tried=1
      if udhcpc -i "$ifc" -f -q -n -t 3 -T 2 -V forseti-os-image -s /etc/udhcpc.script >>"$LOG" 2>&1 && [ -s "/tmp/net/$ifc.ip" ]; then
        NET_OK=1
        NET_IF=$ifc
        NET_IP=$(cat "/tmp/net/$ifc.ip")
        NET_MAC=$(cat "/sys/class/net/$ifc/address")
        return 0
      fi
    done
    [ "$tried" = 1 ] || sleep 1
  done
  return 1
}
