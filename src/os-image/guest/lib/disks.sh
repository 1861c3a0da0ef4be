# Disks, read from sysfs only (sourced by /init): nothing here opens a disk. Shared by wipe and inventory.
# Globals read: DISKS_WANTED (forseti.disks, comma-separated), REMOVABLE_OK (forseti.removable=1).

sysread() {
  cat "$1" 2>/dev/null | tr -d '\000' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | head -n 1
}

# all_disks -> every whole disk under /sys/block that is hardware: no loop, ram, zram, sr, dm, md, nbd or floppy
all_disks() {
  local dir name
  for dir in /sys/block/*; do
    name=${dir##*/}
    case "$name" in
      loop* | ram* | zram* | sr* | dm-* | md* | nbd* | fd*) continue ;;
    esac
    [ -e "$dir/device" ] || continue
    echo "$name"
  done
}

disk_bytes() {
  echo $(($(cat "/sys/block/$1/size") * 512))
}

# disk_transport NAME -> nvme | virtio | sata | sas | usb | scsi
disk_transport() {
  local path
  case "$1" in
    nvme*) echo nvme; return ;;
    vd*) echo virtio; return ;;
  esac
  path=$(readlink -f "/sys/block/$1")
  case "$path" in
    */usb*) echo usb ;;
    */ata[0-9]*) echo sata ;;
    */end_device-* | */sas_* | */port-*) echo sas ;;
    */virtio*) echo virtio ;;
    *) echo scsi ;;
  esac
}

# disk_hctl NAME -> host:channel:target:lun of a SCSI disk, nothing otherwise
disk_hctl() {
  local hctl
  hctl=$(readlink -f "/sys/block/$1/device")
  hctl=${hctl##*/}
  case "$hctl" in
    *:*:*:*) echo "$hctl" ;;
  esac
}

# disk_controller NAME -> the SCSI host's driver (hpsa, megaraid_sas, ahci, mpt3sas, virtio_scsi...), or nothing
disk_controller() {
  local hctl
  hctl=$(disk_hctl "$1")
  [ -n "$hctl" ] && sysread "/sys/class/scsi_host/host${hctl%%:*}/proc_name"
}

disk_model() {
  sysread "/sys/block/$1/device/model"
}

# disk_vendor NAME -> the SCSI INQUIRY vendor (virtio's device/vendor is a PCI ID, NVMe has none)
disk_vendor() {
  case "$1" in
    sd*) sysread "/sys/block/$1/device/vendor" ;;
  esac
}

# disk_serial NAME -> NVMe and virtio serials from sysfs, SCSI/SATA from the unit serial number VPD page (0x80)
disk_serial() {
  if [ -f "/sys/block/$1/device/serial" ]; then
    sysread "/sys/block/$1/device/serial"
  elif [ -f "/sys/block/$1/serial" ]; then
    sysread "/sys/block/$1/serial"
  elif [ -f "/sys/block/$1/device/vpd_pg80" ]; then
    tail -c +5 "/sys/block/$1/device/vpd_pg80" 2>/dev/null | tr -d '\000' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//'
  fi
}

disk_rotational() {
  sysread "/sys/block/$1/queue/rotational"
}

# disk_type NAME -> nvme | ssd | hdd
disk_type() {
  case "$1" in
    nvme*) echo nvme ;;
    *) [ "$(disk_rotational "$1")" = 1 ] && echo hdd || echo ssd ;;
  esac
}

disk_removable() {
  [ "$(sysread "/sys/block/$1/removable")" = 1 ] || [ "$(disk_transport "$1")" = usb ]
}

# disk_logical NAME -> 0 when the disk is a logical drive of a RAID controller (no secure erase reaches the media)
disk_logical() {
  local hctl channel
  hctl=$(disk_hctl "$1")
  channel=$(echo "$hctl" | cut -d: -f2)
  case "$(disk_controller "$1")" in
    hpsa | smartpqi) disk_model "$1" | grep -q 'LOGICAL VOLUME' ;;
    # megaraid_sas puts virtual drives on channels 2 and up (MEGASAS_IS_LOGICAL), physical ones below
    megaraid_sas) [ "${channel:-0}" -ge 2 ] ;;
    # aacraid exposes its containers on channel 0, the physical disks behind them on higher channels
    aacraid) [ "${channel:-1}" = 0 ] ;;
    *) return 1 ;;
  esac
}

# disk_partitions NAME -> its partitions, highest number first (logical partitions before the extended one)
disk_partitions() {
  local part
  for part in "/sys/block/$1/$1"*; do
    [ -f "$part/partition" ] && echo "$(cat "$part/partition") ${part##*/}"
  done | sort -rn | cut -d' ' -f2
}

# selected_disks -> the disks this run works on: forseti.disks if given, else every disk, removable and USB
# disks only with forseti.removable=1
selected_disks() {
  local name
  for name in $(all_disks); do
    if [ -n "$DISKS_WANTED" ]; then
      case ",$DISKS_WANTED," in *",$name,"*) ;; *) continue ;; esac
    elif [ "$REMOVABLE_OK" != 1 ] && disk_removable "$name"; then
      say "skipping /dev/$name: removable or USB (forseti.removable=1 includes it)"
      continue
    fi
    echo "$name"
  done
}

# settle_disks: waits until the set of disks has not changed for 2 s (RAID controllers and NVMe probe late), 30 s at most
settle_disks() {
  local last='' now stable=0 deadline
  deadline=$(($(uptime_s) + 30))
  while [ "$(uptime_s)" -lt "$deadline" ]; do
    now=$(all_disks | tr '\n' ' ')
    if [ "$now" = "$last" ]; then
      stable=$((stable + 1))
      [ "$stable" -ge 4 ] && return 0
    else
      stable=0
      last=$now
    fi
    sleep 0.5
  done
}
