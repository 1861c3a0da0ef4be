# forseti.mode=inventory (sourced by /init only in that mode): one JSON document describing the machine, POSTed
# to forseti.report; schema: schemas/inventory-report.schema.json in the forseti repository. Read-only: it reads
# sysfs, /proc, the DMI tables (dmidecode) and the BMC (ipmitool over /dev/ipmi0), and opens no disk.

INVENTORY_FORMAT=forseti-inventory/v1

dmi() {
  sysread "/sys/class/dmi/id/$1"
}

inventory_dmi() {
  json_obj \
    system "$(json_obj vendor "$(json_opt "$(dmi sys_vendor)")" product "$(json_opt "$(dmi product_name)")" \
      version "$(json_opt "$(dmi product_version)")" serial "$(json_opt "$(dmi product_serial)")" \
      uuid "$(json_opt "$(dmi product_uuid)")" sku "$(json_opt "$(dmi product_sku)")" family "$(json_opt "$(dmi product_family)")")" \
    board "$(json_obj vendor "$(json_opt "$(dmi board_vendor)")" product "$(json_opt "$(dmi board_name)")" serial "$(json_opt "$(dmi board_serial)")")" \
    bios "$(json_obj vendor "$(json_opt "$(dmi bios_vendor)")" version "$(json_opt "$(dmi bios_version)")" date "$(json_opt "$(dmi bios_date)")")" \
    chassis "$(json_obj vendor "$(json_opt "$(dmi chassis_vendor)")" serial "$(json_opt "$(dmi chassis_serial)")" assetTag "$(json_opt "$(dmi chassis_asset_tag)")")"
}

# inventory_cpus -> {model, sockets, cores, threads} from /proc/cpuinfo (cores: per socket "cpu cores", summed)
inventory_cpus() {
  local model sockets cores threads
  model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  set -- $(awk -F': *' '
    /^processor/ { threads++ }
    /^physical id/ { socket = $2; if (!(socket in seen)) { seen[socket] = 1; sockets++ } }
    /^cpu cores/ { if (!(socket in cores)) { cores[socket] = $2; total += $2 } }
    END { if (!sockets) sockets = 1; if (!total) total = threads; print sockets, total, threads }' /proc/cpuinfo)
  json_obj model "$(json_opt "$model")" sockets "$(json_int "$1")" cores "$(json_int "$2")" threads "$(json_int "$3")"
}

# dimms -> one tab-separated line per installed memory device of DMI type 17:
# locator, bytes, type, speed (MT/s), manufacturer, serial, part number
dimms() {
  dmidecode -t 17 2>>"$LOG" | awk -F': ' '
    function flush() {
      if (size > 0) printf "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\n", locator, size, type, speed, maker, serial, part
      size = 0; locator = type = speed = maker = serial = part = ""
    }
    /^Memory Device/ { flush(); inside = 1; next }
    /^Handle / { flush(); inside = 0 }
    !inside { next }
    { sub(/^[[:space:]]+/, "", $1) }
    $1 == "Size" {
      split($2, f, " ")
      unit = f[2]
      size = f[1] * (unit == "TB" ? 1099511627776 : unit == "GB" ? 1073741824 : unit == "MB" ? 1048576 : unit == "kB" || unit == "KB" ? 1024 : 0)
    }
    $1 == "Locator" { locator = $2 }
    $1 == "Type" { type = $2 }
    $1 == "Speed" { speed = ($2 ~ /^[0-9]+/) ? $2 + 0 : "" }
    $1 == "Manufacturer" { maker = $2 }
    $1 == "Serial Number" { serial = $2 }
    $1 == "Part Number" { part = $2 }
    END { flush() }'
}

clean_dmi_string() {
  case "$1" in
    '' | Unknown | 'Not Specified' | 'Not Provided' | NO\ DIMM | None | '<OUT OF SPEC>') ;;
    *) printf '%s' "$1" ;;
  esac
}

inventory_memory() {
  local locator bytes type speed maker serial part total=0 list usable tab
  tab=$(printf '\t')
  list=$(dimms | while IFS=$tab read -r locator bytes type speed maker serial part; do
    json_obj locator "$(json_opt "$locator")" sizeBytes "$bytes" type "$(json_opt "$(clean_dmi_string "$type")")" \
      speedMTs "$(json_int "$speed")" manufacturer "$(json_opt "$(clean_dmi_string "$maker")")" \
      serial "$(json_opt "$(clean_dmi_string "$serial")")" partNumber "$(json_opt "$(clean_dmi_string "$part")")"
    echo
  done | json_lines)
  for bytes in $(dimms | cut -f2); do total=$((total + bytes)); done
  usable=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024))
  if [ "$total" -gt 0 ]; then
    json_obj totalBytes "$total" source '"dmi"' usableBytes "$usable" dimms "$list"
  else
    json_obj totalBytes "$usable" source '"kernel"' usableBytes "$usable" dimms '[]'
  fi
}

inventory_disks() {
  local disk
  for disk in $(all_disks); do
    json_obj name "$(json_str "$disk")" model "$(json_opt "$(disk_model "$disk")")" vendor "$(json_opt "$(disk_vendor "$disk")")" \
      serial "$(json_opt "$(disk_serial "$disk")")" sizeBytes "$(disk_bytes "$disk")" type "$(json_str "$(disk_type "$disk")")" \
      rotational "$(json_bool "$(disk_rotational "$disk")")" transport "$(json_str "$(disk_transport "$disk")")" \
      removable "$(disk_removable "$disk" && echo true || echo false)" controller "$(json_opt "$(disk_controller "$disk")")" \
      logicalDrive "$(disk_logical "$disk" && echo true || echo false)"
    echo
  done | json_lines
}

inventory_nics() {
  local nic dir speed driver
  for nic in $(nics); do
    dir=/sys/class/net/$nic
    speed=$(sysread "$dir/speed")
    [ "${speed:-0}" -gt 0 ] 2>/dev/null || speed=''
    driver=$(readlink "$dir/device/driver")
    json_obj name "$(json_str "$nic")" mac "$(json_str "$(sysread "$dir/address")")" driver "$(json_opt "${driver##*/}")" \
      link "$(json_bool "$(sysread "$dir/carrier")")" speedMbps "$(json_int "$speed")" \
      boot "$([ "$nic" = "$NET_IF" ] && echo true || echo false)" ipv4 "$([ "$nic" = "$NET_IF" ] && json_opt "$NET_IP")"
    echo
  done | json_lines
}

# lan_field NAME < ipmitool output -> the value of that row; ipmitool prints rows as printf("%-24s: %s")
lan_field() {
  awk -v name="$1" '{
    at = index($0, ":"); if (!at) next
    key = substr($0, 1, at - 1); sub(/[[:space:]]+$/, "", key)
    if (key == name) { value = substr($0, at + 1); gsub(/^[[:space:]]+|[[:space:]]+$/, "", value); print value; exit }
  }'
}

# inventory_bmc -> the BMC seen from the host over the system interface, or nothing when there is no /dev/ipmi0
inventory_bmc() {
  local info lan address source
  [ -c /dev/ipmi0 ] || return 0
  info=$(timeout 30 ipmitool -I open mc info 2>>"$LOG")
  # ipmitool looks for the first 802.3 LAN channel itself
  lan=$(timeout 60 ipmitool -I open lan print 2>>"$LOG")
  address=$(printf '%s\n' "$lan" | lan_field 'IP Address')
  case "$(printf '%s\n' "$lan" | lan_field 'IP Address Source')" in
    *DHCP*) source=dhcp ;;
    *Static*) source=static ;;
    *BIOS*) source=bios ;;
    '') source='' ;;
    *) source=other ;;
  esac
  [ "$address" = 0.0.0.0 ] && address=''
  json_obj interface '"ipmi"' \
    manufacturerId "$(json_int "$(printf '%s\n' "$info" | lan_field 'Manufacturer ID')")" \
    firmware "$(json_opt "$(printf '%s\n' "$info" | lan_field 'Firmware Revision')")" \
    ipmiVersion "$(json_opt "$(printf '%s\n' "$info" | lan_field 'IPMI Version')")" \
    address "$(json_opt "$address")" addressSource "$(json_opt "$source")" \
    netmask "$(json_opt "$(printf '%s\n' "$lan" | lan_field 'Subnet Mask')")" \
    gateway "$(json_opt "$(printf '%s\n' "$lan" | lan_field 'Default Gateway IP')")" \
    mac "$(json_opt "$(printf '%s\n' "$lan" | lan_field 'MAC Address' | tr A-F a-f)")"
}

inventory_document() {
  json_obj format "$(json_str "$INVENTORY_FORMAT")" timestamp "$(now_ts)" image "$(json_str "$(head -n 1 /etc/forseti-release)")" \
    boot "$(json_obj interface "$(json_opt "$NET_IF")" mac "$(json_opt "$NET_MAC")" ip "$(json_opt "$NET_IP")")" \
    dmi "$(inventory_dmi)" cpus "$(inventory_cpus)" memory "$(inventory_memory)" \
    disks "$(inventory_disks)" nics "$(inventory_nics)" bmc "$(inventory_bmc)"
}

inventory_main() {
  local document
  document=$(inventory_document)
  printf '%s\n' "$document" >/tmp/inventory.json
  say "inventory: $(wc -c </tmp/inventory.json) bytes"
  if post_json "$REPORT_URL" "$document"; then
    marker 'INVENTORY-SENT'
    echo SUCCESS >/tmp/result
  else
    marker 'INVENTORY-NOT-SENT'
    echo FAIL >/tmp/result
  fi
}
