#!/usr/bin/env bash
# The agent's main job on an embedded default, from a fresh Debian 12 machine with Rust:
# installs what it needs, starts pcscd, and when no reader holds a card puts a virtual Portuguese
# Citizen Card (CC1, the default citizen, a freshly generated test PKI) into the vpcd virtual
# reader "Virtual PCD 00 00" and a virtual passport (eMRTD with PACE, CAN 123456) into
# "Virtual PCD 00 01"; then runs the agent (the localhost HTTPS bridge) and the reference
# enrolment service trusting the virtual cards' test PKI, prints the URL to open, the virtual
# card's PINs and the desk operator's password, and waits until Ctrl-C (or EID_DEMO_SECONDS
# seconds).
#
# EID_DEMO_PROFILE picks another virtual Citizen Card (pteid-cc2; `eid-virtual-card --list`).
# With a real card in a reader, no virtual card is inserted, and the enrolment service trusts the
# Citizen Card roots named by EID_DEMO_CARD_TRUST (PEM files, space-separated; without them it
# refuses real cards as untrusted, as it should).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
./scripts/start-pcscd.sh
cargo build --quiet -p eid-agent -p eid-hardware-mocks -p eid-enrolment
agent=target/debug/eid-agent
enrolment=target/debug/eid-enrolment
card=target/debug/eid-virtual-card

port="${EID_DEMO_PORT:-8443}"
origin="https://localhost:$port"
work=$(mktemp -d -t eid-demo.XXXXXX)
data_dir="${EID_DEMO_DATA_DIR:-$work/enrolment}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (bounded) until `eid-agent readers` shows a card whose line matches $1.
wait_for_reader() {
  for _ in $(seq 600); do
    "$agent" readers --json | grep -q "$1" && return 0
    sleep 0.1
  done
  echo "demo: the virtual card did not appear in pcscd" >&2
  return 1
}

card_trust=()
csca=()
virtual=""
profile="${EID_DEMO_PROFILE:-pteid-cc1}"
if ! "$agent" readers --json | grep -q '"card_present":true'; then
  virtual=yes
  echo "demo: no card in any reader; inserting a virtual Citizen Card ($profile) and a virtual passport"
  # The first start generates RSA-3072 keys (a few seconds).
  "$card" "$profile" --vpcd 127.0.0.1:35963 --export-pki "$work/pki-card" >"$work/card.log" 2>&1 &
  pids+=($!)
  "$card" emrtd-pace --vpcd 127.0.0.1:35964 --export-pki "$work/pki-passport" >"$work/passport.log" 2>&1 &
  pids+=($!)
  wait_for_reader '"id":"pteid-'
  card_trust=(--card-trust "$work/pki-card/root.pem" --card-trust "$work/pki-card/auth-sub-ca.pem")
  for _ in $(seq 100); do [ -f "$work/pki-passport/csca/csca-utopia.pem" ] && break; sleep 0.1; done
  csca=(--csca "$work/pki-passport/csca")
else
  for f in ${EID_DEMO_CARD_TRUST:-}; do card_trust+=(--card-trust "$f"); done
  if [ ${#card_trust[@]} -eq 0 ]; then
    echo "demo: a card is in a reader; set EID_DEMO_CARD_TRUST to the Citizen Card root and" \
      "authentication sub-CA PEM files, or the enrolment service refuses it as untrusted" >&2
    # An unrelated root so that the service starts; every real card is refused with a clear message.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=no anchor" \
      -keyout /dev/null -out "$work/none.pem" -days 1 2>/dev/null
    card_trust=(--card-trust "$work/none.pem")
  fi
fi

"$agent" readers
echo

echo "demo: starting the agent (localhost HTTPS bridge on https://127.0.0.1:24180)"
config_dir="${EID_AGENT_CONFIG_DIR:-$HOME/.config/eid-agent}"
"$agent" run >"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
for _ in $(seq 200); do
  [ -f "$config_dir/tls/ca.pem" ] && curl -s --cacert "$config_dir/tls/ca.pem" \
    https://127.0.0.1:24180/v1/status >/dev/null 2>&1 && break
  kill -0 "$agent_pid" 2>/dev/null || { echo "demo: the agent stopped:" >&2; cat "$work/agent.log" >&2; exit 1; }
  sleep 0.1
done

echo "demo: starting the enrolment service ($origin)"
mkdir -p "$data_dir"
operator_password=$(openssl rand -hex 6)
printf '%s\n' "$operator_password" |
  "$enrolment" operator add desk --password-stdin --data-dir "$data_dir" >/dev/null
"$enrolment" serve --listen "127.0.0.1:$port" --origin "$origin" --data-dir "$data_dir" \
  "${card_trust[@]}" "${csca[@]}" --outbox "$data_dir/outbox.jsonl" \
  --port-file "$work/enrolment.port" >"$work/enrolment.log" 2>&1 &
enrolment_pid=$!
pids+=("$enrolment_pid")
for _ in $(seq 200); do
  curl -sk -o /dev/null "$origin/" 2>/dev/null && break
  kill -0 "$enrolment_pid" 2>/dev/null || { echo "demo: the enrolment service stopped:" >&2; cat "$work/enrolment.log" >&2; exit 1; }
  sleep 0.1
done

cat <<EOF

================================================================================
 Enrolment demo: open  $origin/
================================================================================
 Citizen (at home, with a card reader):  $origin/enrol
 Mobile key login (no card):             $origin/login
 Citizen Shop desk (passport):           $origin/desk   operator "desk", password $operator_password
 One-time codes (development outbox):    $origin/dev/outbox
EOF
if [ -n "$virtual" ]; then
  cat <<EOF

 Virtual Citizen Card ($profile) in "Virtual PCD 00 00": authentication PIN 1111,
   signature PIN 2222, address PIN 3333 (the agent asks for them in its own window).
 Virtual passport (emrtd-pace) in "Virtual PCD 00 01": CAN 123456
   (or MRZ: document IDP000017, born 880214, expires 330901).
EOF
fi
cat <<EOF

 Certificates: the service uses a self-signed certificate and the agent a local CA that is not
 yet in your browser's trust store (\`eid-agent install\` will do that). Until then, open
 $origin/ and https://127.0.0.1:24180/v1/status once each and accept the warning.
 Logs: $work/agent.log, $work/enrolment.log
================================================================================

EOF
echo "demo: curl -k $origin/ ->"
curl -sk "$origin/" | head -c 400 || true
echo
echo "..."
echo "demo: running until Ctrl-C${EID_DEMO_SECONDS:+ (or $EID_DEMO_SECONDS s)}"
if [ -n "${EID_DEMO_SECONDS:-}" ]; then
  sleep "$EID_DEMO_SECONDS"
else
  wait "$enrolment_pid" || true
fi
