#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30; run it for 900 or more
# by hand before a release). Needs the nightly toolchain; installs cargo-fuzz
# if it is missing. Fails if a target does not build or finds a crash (the
# input is left in fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

seconds=${1:-30}
shift || true
targets=("$@")
# Nine targets of SECONDS each: CI's default of 30 s is four and a half minutes.
[ ${#targets[@]} -gt 0 ] || targets=(handshake handshake_stream frame protocol connection hub wire inflate extensions)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

mkdir -p target
for target in "${targets[@]}"; do
    echo "==> fuzzing $target for ${seconds}s"
    log=target/fuzz-$target.log
    # The seeds in corpus/<target>/seed-* stay; what the run finds is kept
    # beside them (ignored by git) for the next run.
    if ! cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz target $target failed; log: fuzz/$log, inputs: fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
done
echo "==> fuzzing passed: ${targets[*]}"
