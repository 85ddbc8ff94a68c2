#!/usr/bin/env bash
# The agent's main job on an embedded default, from a fresh Debian 12 machine with Rust:
# installs what it needs, starts pcscd, and when no reader holds a card, puts a virtual
# Portuguese Citizen Card (CC1, the default citizen, a freshly generated test PKI) into the vpcd
# virtual reader; then lists the readers, reads the citizen's identity with its SOD check
# chained to the virtual card's root, and runs the agent, which recognises every card inserted,
# until Ctrl-C (or EID_DEMO_SECONDS seconds). EID_DEMO_PROFILE picks another virtual card
# (`target/debug/eid-virtual-card --list`).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
./scripts/start-pcscd.sh
cargo build --quiet -p eid-agent -p eid-hardware-mocks
agent=target/debug/eid-agent

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

profile="${EID_DEMO_PROFILE:-pteid-cc1}"
trust=""
if ! "$agent" readers --json | grep -q '"card_present":true'; then
  echo "demo: no card in any reader; inserting a virtual card ($profile) into 'Virtual PCD 00 00'"
  pki_dir=$(mktemp -d)
  trap 'cleanup; rm -rf "$pki_dir"' EXIT
  case "$profile" in
    pteid-*) target/debug/eid-virtual-card "$profile" --vpcd 127.0.0.1:35963 --export-pki "$pki_dir" &
             trust="$pki_dir/root.pem" ;;
    *)       target/debug/eid-virtual-card "$profile" --vpcd 127.0.0.1:35963 & ;;
  esac
  pids+=($!)
  # Wait (bounded) until pcscd sees it; the first start generates RSA-3072 keys (a few seconds).
  for _ in $(seq 600); do
    "$agent" readers --json | grep -q '"card_present":true' && break
    sleep 0.1
  done
fi

"$agent" readers
echo
if "$agent" readers --json | grep -q '"id":"pteid-'; then
  echo "demo: the citizen's identity, read from the card (no PIN needed), with the SOD check"
  if [ -n "$trust" ]; then
    "$agent" card identity --trust "$trust" || true
  else
    "$agent" card identity || true
  fi
  echo
fi
echo "demo: running the agent with its localhost HTTPS bridge (Ctrl-C to stop)"
config_dir="${EID_AGENT_CONFIG_DIR:-$HOME/.config/eid-agent}"
if [ -n "${EID_DEMO_SECONDS:-}" ]; then
  timeout --preserve-status -s INT "$EID_DEMO_SECONDS" "$agent" run &
else
  "$agent" run &
fi
agent_pid=$!
pids+=("$agent_pid")
# Once it listens, ask it what a website would (the local CA made at first start is trusted
# here for curl only; `eid-agent install`, next, puts it in the browsers' trust stores).
for _ in $(seq 100); do
  [ -f "$config_dir/tls/ca.pem" ] && curl -s --cacert "$config_dir/tls/ca.pem" \
    https://127.0.0.1:24180/v1/status >/dev/null 2>&1 && break
  kill -0 "$agent_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$agent_pid" 2>/dev/null; then
  echo "demo: GET https://127.0.0.1:24180/v1/status ->"
  curl -s --cacert "$config_dir/tls/ca.pem" https://127.0.0.1:24180/v1/status || true
  echo
  echo "demo: API document: https://127.0.0.1:24180/v1/openapi.json; JS client: web/eid-bridge.js"
fi
wait "$agent_pid" || true
