#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with the Rust toolchain:
# installs what it needs, starts pcscd (with the vpcd virtual readers), checks formatting and
# lints, compile-checks the fuzz targets, runs the benchmarks once (figures, not gates), then every test
# in both tiers (in-process and through the real pcscd).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
./scripts/start-pcscd.sh
# The enrolment store's tests run on SQLite and, with this, on PostgreSQL too.
EID_TEST_POSTGRES_URL=$(./scripts/start-postgres.sh)
export EID_TEST_POSTGRES_URL

export CARGO_TERM_COLOR=never
# Tests that need pcscd fail instead of skipping when it is missing.
export EID_REQUIRE_PCSCD=1
# This script started (or checked) pcscd itself, so the restart test may bounce it.
export EID_TEST_RESTART_PCSCD=1
# The PN532 emulator's tests fail instead of skipping when libnfc's tools are missing.
export EID_REQUIRE_LIBNFC=1

echo "== fmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== fuzz targets (compile check)"
cargo check --quiet --manifest-path fuzz/Cargo.toml
echo "== benchmarks (figures printed in one run, medians and ratios; not a gate)"
echo "-- our session layer against raw PC/SC on the same virtual card"
EID_BENCH_ROUNDS=${EID_BENCH_ROUNDS:-15} cargo bench --quiet -p eid-tests --bench apdu_overhead
echo "-- Citizen Card: everything read through pcscd, ours against OpenSC's pkcs15-tool (APDUs, time)"
EID_BENCH_ROUNDS=${EID_BENCH_ROUNDS_CARD:-3} cargo bench --quiet -p eid-tests --bench pteid_read
echo "-- eMRTD: full read through pcscd per profile (APDUs, time, secure messaging overhead)"
EID_BENCH_ROUNDS=${EID_BENCH_ROUNDS_CARD:-3} cargo bench --quiet -p eid-tests --bench emrtd_read
echo "-- eMRTD over NFC: full read through the real libnfc and the emulated PN532 against pcscd + vpcd (APDUs, time)"
EID_BENCH_ROUNDS=${EID_BENCH_ROUNDS_CARD:-3} cargo bench --quiet -p eid-tests --bench nfc_read
echo "-- PACE handshake compute time per curve, secure messaging wrap + unwrap per APDU"
EID_BENCH_ROUNDS=${EID_BENCH_ROUNDS_CARD:-3} cargo bench --quiet -p eid-protocols --bench pace
echo "-- the localhost bridge: authenticate through HTTPS against the card crate directly, status latency"
EID_BENCH_ROUNDS=${EID_BENCH_ROUNDS_CARD:-5} cargo bench --quiet -p eid-agent --bench bridge
echo "== JS client unit tests (node --test)"
node --test web/test/
echo "== the README's first command, as a newcomer runs it (virtual cards, agent, enrolment service)"
demo_log=$(mktemp)
EID_DEMO_SECONDS=3 ./scripts/demo.sh >"$demo_log" 2>&1 || { cat "$demo_log"; exit 1; }
grep -q 'Enrolment demo: open  https://localhost:8443/' "$demo_log" &&
  grep -qi '<!doctype html>' "$demo_log" ||
  { echo "demo: the printed URL did not answer with the start page"; cat "$demo_log"; exit 1; }
echo "demo: up, printed its URL, and answered curl -k on it"
rm -f "$demo_log"
echo "== Debian package: build, dpkg -i, doctor --json, purge"
./scripts/test-deb.sh
echo "== tests (in-process tier and real pcscd + vpcd tier)"
# Browser tests fail instead of skipping when Chromium is missing.
export EID_REQUIRE_BROWSER=1
log=$(mktemp)
cargo test --workspace --quiet 2>&1 | tee "$log"
# One closing line for the whole run (cargo's own last line is a crate's doc tests).
grep -E '^test result:' "$log" | awk '{p += $4; f += $6} END {printf "tests: %d passed, %d failed\n", p, f}'
rm -f "$log"
