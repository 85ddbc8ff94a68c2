#!/usr/bin/env bash
# Makes sure a pcscd with the vpcd virtual readers is running. Starts `pcscd -f` in the background
# when none runs (CI containers have no systemd); leaves a running one alone.
set -euo pipefail

socket=${PCSCLITE_CSOCK_NAME:-/run/pcscd/pcscd.comm}
vpcd_listening() { (exec 3<>/dev/tcp/127.0.0.1/35963) 2>/dev/null; }

if pgrep -x pcscd >/dev/null && [ -S "$socket" ] && vpcd_listening; then
  exit 0
fi
if pgrep -x pcscd >/dev/null; then
  # Running but not answering (or started before vpcd was installed): restart it.
  pkill -x pcscd || true
  for _ in $(seq 50); do pgrep -x pcscd >/dev/null || break; sleep 0.1; done
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
log=${TMPDIR:-/tmp}/eid-pcscd.log
$sudo setsid pcscd -f >"$log" 2>&1 < /dev/null &
for _ in $(seq 100); do
  if [ -S "$socket" ] && vpcd_listening; then
    echo "start-pcscd: pcscd running (log: $log)"
    exit 0
  fi
  sleep 0.1
done
echo "start-pcscd: pcscd did not come up; its log:" >&2
cat "$log" >&2
exit 1
