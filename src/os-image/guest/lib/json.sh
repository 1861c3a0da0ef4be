# JSON text from shell values (sourced by /init; POSIX sh as busybox ash runs it).
# Strings keep printable ASCII only: disk models, serials and DMI fields come from firmware and can hold anything.

# json_str VALUE -> "VALUE" escaped
json_str() {
  printf '"%s"' "$(printf '%s' "$1" | tr -cd '\040-\176' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

# json_opt VALUE -> "VALUE", or nothing for an empty value (so json_obj leaves the key out)
json_opt() {
  [ -n "$1" ] && json_str "$1"
}

# json_int VALUE -> the integer, or nothing when VALUE is no integer
json_int() {
  case "${1#-}" in
    '' | *[!0-9]*) ;;
    *) printf '%s' "$1" | sed -e 's/^\(-\{0,1\}\)0*\([0-9]\)/\1\2/' ;;
  esac
}

# json_bool VALUE -> true for 1/true/yes, false otherwise
json_bool() {
  case "$1" in
    1 | true | yes) printf true ;;
    *) printf false ;;
  esac
}

# json_obj KEY JSON [KEY JSON]... -> {"KEY":JSON,...}; a pair whose JSON is empty is left out
json_obj() {
  local out='' sep=''
  while [ $# -ge 2 ]; do
    if [ -n "$2" ]; then
      out="$out$sep\"$1\":$2"
      sep=,
    fi
    shift 2
  done
  printf '{%s}' "$out"
}

# json_arr JSON... -> [JSON,...]; empty items are left out
json_arr() {
  local out='' sep='' item
  for item in "$@"; do
    [ -n "$item" ] || continue
    out="$out$sep$item"
    sep=,
  done
  printf '[%s]' "$out"
}

# json_lines: one JSON value per input line -> [v1,v2,...]
json_lines() {
  local out='' sep='' line
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    out="$out$sep$line"
    sep=,
  done
  printf '[%s]' "$out"
}
