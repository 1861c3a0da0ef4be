#!/bin/bash
# ipmi_sim chassis_control program of one vlab node: it owns the node's power (QEMU) and boot device.
#   chassis-control.sh NODE_DIR get power|boot ...          -> "parm:value" lines
#   chassis-control.sh NODE_DIR set power 1|0 | reset 1 | shutdown 1 | boot pxe|default|... | bootmode uefi|bios|default
# (ipmi_sim sends power/reset/shutdown/boot; the vlab's Redfish BMC also sends bootmode: its override's
# BootSourceOverrideMode, which picks the firmware of the next power-on: OVMF on q35, or SeaBIOS.)
# NODE_DIR/node.env (written by the harness) describes the machine. ipmi_sim blocks until this exits,
# so it must return at once: QEMU is fully detached (setsid, fds closed, stdio redirected).
set -u
D=$1; op=$2; shift 2
# shellcheck source=/dev/null
source "$D/node.env"   # NAME TAP MAC NIC FIRMWARE MEMORY_MIB DISK EXTRA_DISKS SERCON_FILE OVMF_CODE OVMF_VARS

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $*" >> "$D/power.log"; }

# Alive = pid exists and is not a zombie: detached QEMU is reparented to PID 1, which may reap it late.
qemu_pid() {
  local pid state
  pid=$(cat "$D/qemu.pid" 2>/dev/null) && [ -n "$pid" ] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ] && echo "$pid"
}

# QMP over a pipe chardev: QEMU holds qmp.in open read-write, so writing never blocks while it runs.
qmp() {
  timeout 2 bash -c 'printf "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"%s\"}\n" "$2" > "$1"' _ "$D/qmp.in" "$1"
}

boot_device() {
  case "$(cat "$D/bootdev" 2>/dev/null || echo default)" in
    pxe) echo pxe ;;
    *) echo disk ;;   # default/none/disk/bios/...: never PXE
  esac
}

# The machine's own firmware unless a boot override asked for a mode.
firmware() {
  case "$(cat "$D/bootmode" 2>/dev/null || echo default)" in
    uefi) echo uefi ;;
    bios) echo bios ;;
    *) echo "$FIRMWARE" ;;
  esac
}

power_on() {
  qemu_pid >/dev/null && return 0
  local bootdev nic_index disk_index firmware
  bootdev=$(boot_device)
  firmware=$(firmware)
  # bootindex + "-boot strict=on": the legacy "-boot c" is only a preference, SeaBIOS would fall back to PXE.
  if [ "$bootdev" = pxe ]; then nic_index=",bootindex=1"; disk_index=",bootindex=2"
  else nic_index=""; disk_index=",bootindex=1"; fi
  local args=(-name "$NAME" -m "$MEMORY_MIB" -smp 1 -boot strict=on -display none -vga none -monitor none
    -chardev "file,id=serial0,path=$D/serial.log,append=on" -serial chardev:serial0
    -chardev "pipe,id=qmp0,path=$D/qmp" -mon chardev=qmp0,mode=control
    -pidfile "$D/qemu.pid"
    -netdev "tap,id=net0,ifname=$TAP,script=no,downscript=no" -device "$NIC,netdev=net0,mac=$MAC$nic_index"
    -drive "file=$DISK,if=none,id=disk0,format=qcow2" -device "virtio-blk-pci,drive=disk0$disk_index")
  local extra n=1
  for extra in ${EXTRA_DISKS:-}; do
    args+=(-drive "file=$extra,if=none,id=disk$n,format=qcow2" -device "virtio-blk-pci,drive=disk$n")
    n=$((n + 1))
  done
  # Always TCG: /dev/kvm may exist on this machine kind, but guests die with "KVM internal error".
  if [ "$firmware" = uefi ]; then
    [ -e "$D/ovmf-vars.fd" ] || cp "$OVMF_VARS" "$D/ovmf-vars.fd"
    args+=(-machine q35,accel=tcg -drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE"
      -drive "if=pflash,format=raw,file=$D/ovmf-vars.fd")
  else
    # SeaBIOS "sercon": mirror the BIOS/iPXE text console to the serial port.
    args+=(-machine pc,accel=tcg -fw_cfg "name=etc/sercon-port,file=$SERCON_FILE")
  fi
  local wrap=()
  [ -x /usr/bin/time ] && wrap=(/usr/bin/time -f "%e s wall %U s user %S s sys %M KB rss" -o "$D/qemu.rusage")

  # (firmware named only when an override chose it: the line stays as older readers of power.log expect)
  if [ "$firmware" = "$FIRMWARE" ]; then log "power-on bootdev=$bootdev"; else log "power-on bootdev=$bootdev firmware=$firmware"; fi
  rm -f "$D/qemu.pid" "$D/qmp.in"
  mkfifo "$D/qmp.in"
  : >> "$D/qmp.out"
  (
    # ipmi_sim's sockets must not leak into QEMU (they would keep port 623 bound after ipmi_sim exits)
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    exec setsid "${wrap[@]}" qemu-system-x86_64 "${args[@]}" </dev/null >>"$D/qemu.out" 2>&1
  ) &
  local i
  for i in $(seq 100); do
    if qemu_pid >/dev/null; then sleep 0.2; qemu_pid >/dev/null && return 0; break; fi
    sleep 0.05
  done
  log "power-on failed: $(tail -n 1 "$D/qemu.out" 2>/dev/null)"
  echo "qemu failed to start: $(tail -n 1 "$D/qemu.out" 2>/dev/null)"
  return 1
}

power_off() {
  local pid i
  pid=$(qemu_pid) || return 0
  log "power-off"
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 50); do qemu_pid >/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
}

case "$op" in
  get)
    for parm in "$@"; do
      case "$parm" in
        power) if qemu_pid >/dev/null; then echo power:1; else echo power:0; fi ;;
        boot) echo "boot:$(cat "$D/bootdev" 2>/dev/null || echo default)" ;;
        *) echo "Invalid parameter: $parm"; exit 1 ;;
      esac
    done ;;
  set)
    while [ $# -gt 1 ]; do
      parm=$1; value=$2; shift 2
      case "$parm" in
        power) if [ "$value" = 1 ]; then power_on || exit 1; else power_off; fi ;;
        reset) qemu_pid >/dev/null && { log "reset"; qmp system_reset; } ;;
        shutdown) qemu_pid >/dev/null && { log "soft-off"; qmp system_powerdown; } ;;   # ACPI power button
        # Kept until changed; a real BMC clears a one-time boot device after one boot.
        boot) echo "$value" > "$D/bootdev"; log "bootdev=$value" ;;
        bootmode) echo "$value" > "$D/bootmode"; log "bootmode=$value" ;;
        identify) ;;
        *) echo "Invalid parameter: $parm"; exit 1 ;;
      esac
    done ;;
  *) echo "usage: chassis-control.sh NODE_DIR get|set ..."; exit 1 ;;
esac
exit 0
