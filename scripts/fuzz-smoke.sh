#!/usr/bin/env bash
# Smoke-fuzz every cargo-fuzz target in fuzz/ for N seconds each (default 30), starting from the
# committed seeds in fuzz/seeds/<target>/. Fails if any target crashes, panics, leaks, times out or
# runs out of memory; the failing input is left in fuzz/artifacts/<target>/.
#
#   scripts/fuzz-smoke.sh            # 30 s per target
#   scripts/fuzz-smoke.sh 300        # 5 min per target
#   FUZZ_TARGETS="tlv fci" scripts/fuzz-smoke.sh 60
#   FUZZ_SANITIZER=none scripts/fuzz-smoke.sh   # no AddressSanitizer
#
# Works on a stable toolchain: the sanitizer-coverage instrumentation cargo-fuzz adds is all -C
# flags, but AddressSanitizer (its default) is -Zsanitizer=address, which stable rustc only accepts
# with RUSTC_BOOTSTRAP=1. On nightly that variable changes nothing. With FUZZ_SANITIZER=none the
# build needs no unstable flag at all (eid-protocols is unsafe-free, so ASan mostly guards the
# dependencies' unsafe code).
# New targets added to fuzz/Cargo.toml are picked up automatically (`cargo fuzz list`).
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [seconds-per-target]   (got '$seconds')" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"
cd "$root"

export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz_dir")
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "no fuzz targets found in $fuzz_dir" >&2
    exit 1
fi

# Debug assertions and overflow checks on: an arithmetic overflow in a parser is a finding.
build_flags=(--fuzz-dir "$fuzz_dir" --debug-assertions --sanitizer "${FUZZ_SANITIZER:-address}")

echo "==> building ${#targets[@]} fuzz targets: ${targets[*]}"
cargo fuzz build "${build_flags[@]}"

log_dir="$fuzz_dir/target/fuzz-smoke"   # not in artifacts/: cargo-fuzz reports the newest file there
mkdir -p "$log_dir"

declare -a summary=()
failed=0
for t in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$t"      # writable: libFuzzer adds what it finds here (git-ignored)
    seeds="$fuzz_dir/seeds/$t"        # committed, read-only for the run
    artifacts="$fuzz_dir/artifacts/$t"
    log="$log_dir/$t.log"
    stamp="$log_dir/$t.start"
    mkdir -p "$corpus" "$artifacts"
    corpora=("$corpus")
    if [[ -d "$seeds" ]]; then
        corpora+=("$seeds")
    else
        echo "warning: no seeds for $t in $seeds" >&2
    fi

    echo "==> fuzzing $t for ${seconds}s (log: ${log#"$root"/})"
    touch "$stamp"
    start=$SECONDS
    rc=0
    cargo fuzz run "${build_flags[@]}" "$t" "${corpora[@]}" -- \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        >"$log" 2>&1 || rc=$?
    elapsed=$((SECONDS - start))
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    corpus_size="$(find "$corpus" -type f | wc -l | tr -d ' ')"

    if [[ $rc -eq 0 ]]; then
        line="ok     $t: ${elapsed}s, ${execs:-?} execs, corpus $corpus_size files"
    else
        failed=1
        line="FAILED $t: exit $rc after ${elapsed}s, ${execs:-?} execs"
        {
            echo "---- last lines of ${log#"$root"/} ----"
            tail -n 40 "$log"
            echo "---- why ----"
            # The Rust panic message (the line after "panicked at", plus the location), or
            # libFuzzer's own verdict (timeout, out of memory, leak, sanitizer report).
            grep -A1 -m1 'panicked at' "$log" || grep -m1 -E '^SUMMARY|ERROR: libFuzzer' "$log" || true
            echo "---- new artifacts (hex) ----"
            find "$artifacts" -type f -newer "$stamp" -print | while read -r f; do
                echo "${f#"$root"/}: $(od -An -v -tx1 "$f" | tr -d ' \n' | tr 'a-f' 'A-F' | cut -c1-1024)"
                echo "  reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz $t ${f#"$root"/}"
            done
        } >&2
    fi
    rm -f "$stamp"
    echo "$line"
    summary+=("$line")
done

echo
echo "==> summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
