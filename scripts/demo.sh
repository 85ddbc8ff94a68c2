#!/usr/bin/env bash
# The agent's main job on an embedded default, from a fresh Debian 12 machine with Rust:
# installs what it needs, starts pcscd, and when no reader holds a card, puts the virtual
# ISO 7816 test card into the vpcd virtual reader; then lists the readers and runs the agent,
# which recognises every card inserted, until Ctrl-C (or EID_DEMO_SECONDS seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
./scripts/start-pcscd.sh
cargo build --quiet -p eid-agent -p eid-hardware-mocks
agent=target/debug/eid-agent

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

if ! "$agent" readers --json | grep -q '"card_present":true'; then
  echo "demo: no card in any reader; inserting the virtual test card into 'Virtual PCD 00 00'"
  target/debug/eid-virtual-card iso7816-test --vpcd 127.0.0.1:35963 &
  pids+=($!)
  # Wait (bounded) until pcscd sees it.
  for _ in $(seq 50); do
    "$agent" readers --json | grep -q '"card_present":true' && break
    sleep 0.1
  done
fi

"$agent" readers
echo
echo "demo: running the agent (Ctrl-C to stop)"
if [ -n "${EID_DEMO_SECONDS:-}" ]; then
  timeout --preserve-status -s INT "$EID_DEMO_SECONDS" "$agent" run || true
else
  "$agent" run
fi
