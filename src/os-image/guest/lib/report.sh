# Reporting to the agent (sourced by /init). Every POST is bounded: REPORT_TIMEOUT seconds per attempt, at most
# REPORT_TRIES attempts with backoff 1, 2, 4, 8, 16 s; a 4xx answer is final. After three reports in a row
# failed, further progress reports get one attempt each, so a dead receiver slows a wipe by seconds, not hours.
# Globals read: REPORT_URL, TOKEN, LOG, BOOT_EPOCH, NET_OK.

REPORT_TRIES=${REPORT_TRIES:-5}
REPORT_TIMEOUT=${REPORT_TIMEOUT:-15}
REPORT_FAILURES=0

# now_ts -> seconds since the epoch with milliseconds, like curtin's and cloud-init's float timestamps
now_ts() {
  awk -v boot="${BOOT_EPOCH:-0}" '{ printf "%.3f", boot + $1 }' /proc/uptime
}

# post URL CONTENT_TYPE FILE [TRIES] -> 0 when the server answered 2xx
post() {
  local url=$1 type=$2 file=$3 tries=${4:-$REPORT_TRIES} attempt=1 delay=1
  [ -n "$url" ] && [ "${NET_OK:-0}" = 1 ] || return 1
  while :; do
    set -- -q -O /tmp/post.out -U forseti-os-image --header "Content-Type: $type"
    [ -n "$TOKEN" ] && set -- "$@" --header "Authorization: Bearer $TOKEN"
    if timeout "$REPORT_TIMEOUT" wget "$@" --post-file "$file" "$url" 2>/tmp/post.err; then
      REPORT_FAILURES=0
      return 0
    fi
    sed 's/^/  wget: /' /tmp/post.err >>"$LOG"
    # A 4xx is the agent refusing (token, address): asking again would get the same answer.
    grep -q 'HTTP/1\.[01] 4' /tmp/post.err && break
    [ "$attempt" -ge "$tries" ] && break
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2))
    [ "$delay" -gt 16 ] && delay=16
  done
  REPORT_FAILURES=$((REPORT_FAILURES + 1))
  return 1
}

# post_json URL JSON [TRIES]
post_json() {
  printf '%s' "$2" >/tmp/post.json
  post "$1" application/json /tmp/post.json "$3"
}

# report_event TYPE NAME DESCRIPTION RESULT FORSETI_JSON [FILES_JSON]
# One event in the JSON format of curtin's and cloud-init's webhook reporters: name, description, event_type
# (start | finish | progress), origin, timestamp, level, and on finish result (SUCCESS | WARN | FAIL). As curtin
# does, descriptions of start events begin "started: ", finish "finished: " or "failed: ", and level is INFO, WARN
# for WARN and ERROR for FAIL. Extra facts go under "forseti"; log files under "files" (curtin's own extension).
report_event() {
  local type=$1 name=$2 description=$3 result=$4 extra=$5 files=$6 level=INFO prefix='' tries=$REPORT_TRIES
  case "$type" in
    start) prefix='started: ' ;;
    finish)
      prefix='finished: '
      [ "$result" = WARN ] && level=WARN
      [ "$result" = FAIL ] && { level=ERROR; prefix='failed: '; }
      ;;
  esac
  local body
  body=$(json_obj name "$(json_str "$name")" description "$(json_str "$prefix$description")" \
    event_type "$(json_str "$type")" origin '"forseti"' timestamp "$(now_ts)" level "$(json_str "$level")" \
    result "$(json_opt "$result")" forseti "$extra" files "$files")
  say "event $type $name${result:+ $result}: $description"
  # Once the receiver failed three times in a row, only the run's own start and finish get every attempt.
  [ "$REPORT_FAILURES" -ge 3 ] && [ "$name" != "${name%/*}" ] && tries=1
  [ -z "$REPORT_URL" ] || post_json "$REPORT_URL" "$body" "$tries" || say "event $name not delivered"
}

# log_files_json -> curtin's "files" list holding the end of this run's log, base64
log_files_json() {
  json_arr "$(json_obj path '"/tmp/forseti.log"' encoding '"base64"' content "\"$(tail -c 16384 "$LOG" | base64 | tr -d '\n')\"")"
}

# phone_home: the agent's phone-home (form role=&mac=&ip=, Bearer token), for agents that know no events yet
phone_home() {
  [ -n "$CALLBACK" ] || return 0
  printf 'role=%s&mac=%s&ip=%s' "$ROLE" "$NET_MAC" "$NET_IP" >/tmp/phone-home.form
  if post "$CALLBACK" application/x-www-form-urlencoded /tmp/phone-home.form 3; then
    marker "PHONE-HOME-OK mac=$NET_MAC ip=$NET_IP"
  else
    marker "PHONE-HOME-FAILED"
  fi
}
