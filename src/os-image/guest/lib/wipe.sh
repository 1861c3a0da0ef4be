# forseti.mode=wipe (sourced by /init only in that mode): erases every selected disk with the forseti.wipe method
# and reports each disk as start/progress/finish events (report.sh). Methods:
#   metadata  wipefs -a on every partition (last first), then on the disk; then the first and last MiB zeroed
#             (the backup GPT lives at the end) and the partition table re-read
#   zero      the whole disk zeroed: blkdiscard -z (the kernel's write-zeroes, offloaded where the device can),
#             dd from /dev/zero where that fails; a progress event per twentieth
#   secure    the drive's own erase: NVMe Format NVM (cryptographic erase where supported, else user-data
#             erase) or Sanitize; ATA SECURITY ERASE UNIT (not when the BIOS left security frozen); SCSI SANITIZE.
#             Where none applies (a RAID controller's logical drive, virtio, USB) or it fails: zero instead,
#             reported as WARN with the reason.
# Globals read: WIPE, LOG; set per disk: DISK_RESULT, METHOD, REASON.

MIB=1048576

# zero_range DISK OFFSET LENGTH (bytes); sets ZERO_TOOL to what did it. util-linux's blkdiscard by its path:
# busybox's ash runs its own applets first, and busybox's blkdiscard has no -z.
zero_range() {
  if /usr/sbin/blkdiscard -z -o "$2" -l "$3" "/dev/$1" 2>>"$LOG"; then
    ZERO_TOOL='blkdiscard -z'
    return 0
  fi
  dd if=/dev/zero of="/dev/$1" bs=1M seek="$2" count="$3" oflag=seek_bytes iflag=count_bytes conv=fsync 2>>"$LOG" || return 1
  ZERO_TOOL=dd
}

# is_zero DISK OFFSET LENGTH: reads the range back from the device (O_DIRECT where the device allows it)
is_zero() {
  rm -f /tmp/verify.bin
  dd if="/dev/$1" of=/tmp/verify.bin bs=1M skip="$2" count="$3" iflag=skip_bytes,count_bytes,direct 2>/dev/null ||
    dd if="/dev/$1" of=/tmp/verify.bin bs=1M skip="$2" count="$3" iflag=skip_bytes,count_bytes 2>>"$LOG" || return 1
  [ "$(($(wc -c </tmp/verify.bin)))" = "$3" ] && [ "$(($(tr -d '\000' </tmp/verify.bin | wc -c)))" = 0 ]
}

# ends DISK BYTES -> "OFFSET LENGTH" lines of the first and the last MiB (the whole disk when it is that small)
ends() {
  if [ "$2" -le $((2 * MIB)) ]; then
    echo "0 $2"
  else
    echo "0 $MIB"
    echo "$(($2 - MIB)) $MIB"
  fi
}

zero_ends() {
  local disk=$1
  set -- $(ends "$1" "$2")
  while [ $# -ge 2 ]; do
    zero_range "$disk" "$1" "$2" || return 1
    shift 2
  done
}

ends_are_zero() {
  local disk=$1
  set -- $(ends "$1" "$2")
  while [ $# -ge 2 ]; do
    is_zero "$disk" "$1" "$2" || return 1
    shift 2
  done
}

# signatures DISK -> the signatures wipefs still finds on the disk (read-only listing), comma-separated
signatures() {
  wipefs --noheadings --output TYPE "/dev/$1" 2>>"$LOG" | sort -u | tr '\n' ',' | sed 's/,$//'
}

wipe_metadata() {
  local disk=$1 bytes=$2 part count=0
  for part in $(disk_partitions "$disk"); do
    wipefs -a "/dev/$part" >>"$LOG" 2>&1 || { REASON="wipefs -a /dev/$part failed"; return 1; }
    count=$((count + 1))
  done
  wipefs -a "/dev/$disk" >>"$LOG" 2>&1 || { REASON="wipefs -a /dev/$disk failed"; return 1; }
  zero_ends "$disk" "$bytes" || { REASON='zeroing the first and last MiB failed'; return 1; }
  METHOD="wipefs -a on $count partition(s) and the disk, first and last MiB zeroed ($ZERO_TOOL)"
}

wipe_zero() {
  local disk=$1 bytes=$2 chunk offset=0 length
  chunk=$(((bytes / 20 + MIB - 1) / MIB * MIB))
  [ "$chunk" -lt "$MIB" ] && chunk=$MIB
  [ "$chunk" -gt $((16 * 1024 * MIB)) ] && chunk=$((16 * 1024 * MIB))
  while [ "$offset" -lt "$bytes" ]; do
    length=$chunk
    [ $((offset + length)) -gt "$bytes" ] && length=$((bytes - offset))
    zero_range "$disk" "$offset" "$length" || { REASON="zeroing failed at byte $offset"; return 1; }
    offset=$((offset + length))
    report_event progress "forseti-wipe/disk/$disk" "zeroed $offset of $bytes bytes" '' \
      "$(json_obj disk "$(json_str "$disk")" bytesDone "$offset" bytesTotal "$bytes" percent "$((offset * 100 / bytes))")"
  done
  METHOD="whole disk zeroed ($ZERO_TOOL)"
}

# hex_field NAME TEXT -> the value of "NAME : value" in nvme-cli's human output, as a number
hex_field() {
  printf '%s\n' "$2" | awk -F: -v name="$1" '{ key = $1; gsub(/[[:space:]]/, "", key) } key == name { gsub(/[[:space:]]/, "", $2); print $2; exit }'
}

secure_nvme() {
  local disk=$1 ctrl=${1%n*} id fna sanicap ses=1 sanact status deadline
  id=$(nvme id-ctrl "/dev/$ctrl" 2>>"$LOG") || { REASON="nvme id-ctrl /dev/$ctrl failed"; return 2; }
  fna=$(hex_field fna "$id")
  sanicap=$(hex_field sanicap "$id")
  # FNA bit 2: Format NVM supports cryptographic erase (Secure Erase Settings 2)
  [ $((${fna:-0} & 4)) -ne 0 ] && ses=2
  if nvme format "/dev/$disk" --ses=$ses --force --timeout=14400000 >>"$LOG" 2>&1; then
    METHOD="NVMe Format NVM, secure erase setting $ses ($([ $ses = 2 ] && echo cryptographic || echo user data) erase)"
    return 0
  fi
  # SANICAP bit 0 crypto erase, bit 1 block erase; Sanitize erases every namespace of the controller
  if [ $((${sanicap:-0} & 1)) -ne 0 ]; then sanact=4; elif [ $((${sanicap:-0} & 2)) -ne 0 ]; then sanact=2; else
    REASON='NVMe Format NVM failed and the controller has no Sanitize'
    return 2
  fi
  nvme sanitize "/dev/$ctrl" --sanact=$sanact >>"$LOG" 2>&1 || { REASON="NVMe Sanitize (action $sanact) refused"; return 2; }
  deadline=$(($(uptime_s) + 6 * 3600))
  while [ "$(uptime_s)" -lt "$deadline" ]; do
    sleep 5
    status=$(nvme sanitize-log "/dev/$ctrl" 2>>"$LOG" | awk -F: '/SSTAT/ { gsub(/[[:space:]]/, "", $NF); print $NF; exit }')
    case $((${status:-0} & 7)) in
      1 | 4) METHOD="NVMe Sanitize ($([ $sanact = 4 ] && echo crypto || echo block) erase)"; return 0 ;;
      3) REASON='NVMe Sanitize failed (sanitize log status 3)'; return 1 ;;
    esac
  done
  REASON='NVMe Sanitize did not finish within 6 hours'
  return 1
}

# ata_security < `hdparm -I` -> the lines of its Security section, blanks squeezed ("supported", "not frozen"...)
ata_security() {
  awk '/^Security:/ { on = 1; next } on && /^[^[:space:]]/ { on = 0 } on { gsub(/[[:space:]]+/, " "); sub(/^ /, ""); sub(/ $/, ""); if ($0 != "") print }'
}

secure_ata() {
  local disk=$1 info security erase=--security-erase
  info=$(hdparm -I "/dev/$disk" 2>>"$LOG") || { REASON='hdparm -I failed'; return 2; }
  security=$(printf '%s\n' "$info" | ata_security)
  printf '%s\n' "$security" | grep -qx 'supported' || { REASON='the drive has no ATA security feature set'; return 2; }
  printf '%s\n' "$security" | grep -qx 'frozen' && { REASON='ATA security is frozen (the BIOS froze it at boot; a suspend and resume or a hot-plug unfreezes it)'; return 2; }
  printf '%s\n' "$security" | grep -qx 'enabled' && { REASON='ATA security is already enabled (a user password is set)'; return 2; }
  printf '%s\n' "$security" | grep -qx 'supported: enhanced erase' && erase=--security-erase-enhanced
  hdparm --user-master u --security-set-pass forseti "/dev/$disk" >>"$LOG" 2>&1 || { REASON='setting a temporary ATA password failed'; return 2; }
  if hdparm --user-master u $erase forseti "/dev/$disk" >>"$LOG" 2>&1; then
    METHOD="ATA SECURITY ERASE UNIT ($([ $erase = --security-erase-enhanced ] && echo enhanced || echo normal))"
    return 0
  fi
  hdparm --user-master u --security-disable forseti "/dev/$disk" >>"$LOG" 2>&1
  REASON='ATA security erase failed (the temporary password was removed again)'
  return 2
}

secure_scsi() {
  local disk=$1 kind
  for kind in crypto block; do
    if sg_sanitize --quick "--$kind" "/dev/$disk" >>"$LOG" 2>&1; then
      METHOD="SCSI SANITIZE ($kind erase)"
      return 0
    fi
  done
  REASON='the device refused SCSI SANITIZE (crypto and block erase)'
  return 2
}

wipe_secure() {
  local disk=$1 bytes=$2 transport rc=2
  transport=$(disk_transport "$disk")
  case "$transport" in
    nvme) secure_nvme "$disk" ;;
    sata) secure_ata "$disk" ;;
    sas | scsi)
      if disk_logical "$disk"; then
        REASON="logical drive of a $(disk_controller "$disk") RAID controller: no secure erase reaches the physical disks"
        false
      else
        secure_scsi "$disk"
      fi
      ;;
    *) REASON="a $transport disk has no secure erase command"; false ;;
  esac
  rc=$?
  [ "$rc" = 0 ] && return 0
  say "secure erase of /dev/$disk: $REASON; zeroing it instead"
  local why=$REASON
  wipe_zero "$disk" "$bytes" || return 1
  METHOD="secure erase unsupported ($why): $METHOD instead"
  DISK_RESULT=WARN
}

# wipe_disk DISK: one disk from start event to finish event; sets DISK_RESULT
wipe_disk() {
  local disk=$1 bytes model serial left facts description
  bytes=$(disk_bytes "$disk")
  model=$(disk_model "$disk")
  serial=$(disk_serial "$disk")
  facts=$(json_obj disk "$(json_str "$disk")" sizeBytes "$bytes" wipe "$(json_str "$WIPE")" model "$(json_opt "$model")" serial "$(json_opt "$serial")" transport "$(json_str "$(disk_transport "$disk")")")
  report_event start "forseti-wipe/disk/$disk" "wiping /dev/$disk ($bytes bytes${model:+, $model}) with $WIPE" '' "$facts"
  DISK_RESULT=SUCCESS METHOD='' REASON=''
  case "$WIPE" in
    metadata) wipe_metadata "$disk" "$bytes" ;;
    zero) wipe_zero "$disk" "$bytes" ;;
    secure) wipe_secure "$disk" "$bytes" ;;
  esac || DISK_RESULT=FAIL
  blockdev --rereadpt "/dev/$disk" 2>>"$LOG"
  local verified=false
  if [ "$DISK_RESULT" != FAIL ]; then
    left=$(signatures "$disk")
    if [ -n "$left" ]; then
      DISK_RESULT=FAIL REASON="signatures still found: $left"
    elif [ "$WIPE" != secure ] || [ "$DISK_RESULT" = WARN ]; then
      # a zeroing method: the first and last MiB must read back as zeroes (a drive's own erase may leave random data)
      if ends_are_zero "$disk" "$bytes"; then verified=true; else DISK_RESULT=FAIL REASON='the first or last MiB does not read back as zeroes'; fi
    else
      verified=true
    fi
  fi
  description="/dev/$disk ($bytes bytes, $WIPE): ${METHOD:-not wiped}${REASON:+; $REASON}"
  [ "$DISK_RESULT" = WARN ] && description="/dev/$disk ($bytes bytes, $WIPE): $METHOD"
  report_event finish "forseti-wipe/disk/$disk" "$description" "$DISK_RESULT" \
    "$(json_obj disk "$(json_str "$disk")" sizeBytes "$bytes" wipe "$(json_str "$WIPE")" method "$(json_opt "$METHOD")" reason "$(json_opt "$REASON")" verified "$verified")"
}

wipe_main() {
  local disks disk count=0 overall=SUCCESS results='' sep='' files=''
  disks=$(selected_disks)
  for disk in $disks; do count=$((count + 1)); done
  report_event start forseti-wipe "wiping $count disk(s) with $WIPE: $(echo $disks)" '' \
    "$(json_obj wipe "$(json_str "$WIPE")" disks "$(for disk in $disks; do json_str "$disk"; echo; done | json_lines)" mac "$(json_opt "$NET_MAC")" ip "$(json_opt "$NET_IP")" image "$(json_str "$(head -n 1 /etc/forseti-release)")")"
  if [ "$count" = 0 ]; then
    report_event finish forseti-wipe "no disk found to wipe (block devices: $(ls /sys/block | tr '\n' ' '))" FAIL \
      "$(json_obj wipe "$(json_str "$WIPE")" disks '{}')" "$(log_files_json)"
    echo FAIL >/tmp/result
    return
  fi
  for disk in $disks; do
    wipe_disk "$disk"
    results="$results$sep\"$disk\":\"$DISK_RESULT\""
    sep=,
    case "$DISK_RESULT" in
      FAIL) overall=FAIL ;;
      WARN) [ "$overall" = SUCCESS ] && overall=WARN ;;
    esac
  done
  [ "$overall" = SUCCESS ] || files=$(log_files_json)
  report_event finish forseti-wipe "$count disk(s) wiped with $WIPE: $(echo "$results" | tr -d '"')" "$overall" \
    "$(json_obj wipe "$(json_str "$WIPE")" disks "{$results}")" "$files"
  echo "$overall" >/tmp/result
  [ "$overall" = FAIL ] || phone_home
}
